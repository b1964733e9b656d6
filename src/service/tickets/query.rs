//! Reading tickets: the caller's queue with filters, keyset pagination and a total; timelines.

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::db::models::{TicketEventRow, TicketRow};
use crate::db::schema::{ticket_events, tickets};
use crate::db::sqlite_plans::status_in;
use crate::db::{DbConn, MultiBackend};
use crate::domain::role::Role;
use crate::domain::text_enum::TextEnum;
use crate::domain::ticket::{Level, Source, Status, Urgency};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Running deadline first (the default for staff).
    #[default]
    Due,
    /// Newest first (the default for residents).
    Created,
    /// Most recently changed first.
    Updated,
}

/// A staff queue besides the caller's own (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueView {
    Supervision,
    Decisions,
}

/// Filters for `GET /tickets`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TicketFilter {
    pub level: Option<Level>,
    /// One or more statuses, comma-separated: `open,acknowledged`.
    pub status: Option<String>,
    /// Category id.
    pub category: Option<i64>,
    pub community_id: Option<i64>,
    pub compound_id: Option<i64>,
    pub urgency: Option<Urgency>,
    /// Only tickets past their running deadline (or marked overdue at the street).
    pub overdue: Option<bool>,
    /// Only tickets assigned to the caller.
    pub assigned_to_me: Option<bool>,
    /// Only tickets whose running deadline falls before this instant (RFC 3339).
    pub due_before: Option<DateTime<Utc>>,
    /// `true`: 「即将超时」 in working time — open or acknowledged tickets whose running clock
    /// (answer or settle, not paused) has passed its warning point (a quarter of the allowance
    /// left, at most one working hour; docs/domain.md) but not its deadline. The warning point
    /// is the one the ticket's schedule stored when the clock started, so this holds before the
    /// sweeper has sent the warning; afterwards the clock's warned flag keeps the ticket listed.
    /// A pending extension request whose decision falls before the warning point lists the
    /// ticket from that decision time. `false` is the same as leaving it out.
    pub due_soon: Option<bool>,
    /// Only tickets the resident disputed at their current level (reopened there by 有异议).
    pub disputed: Option<bool>,
    /// Staff: only tickets that went up from the caller's unit and are now accountable above it (「已上报」).
    pub went_up: Option<bool>,
    /// One or more sources, comma-separated: `phone,desk`.
    pub source: Option<String>,
    /// Staff: `supervision` (督办) = the lower levels' tickets in the caller's scope that wait on
    /// them (open, acknowledged, or a decline under review below the caller); `decisions`
    /// (待我决定) = decline reviews at the caller's level and extension requests the caller's
    /// level must decide. Combine with `due_before` / `overdue` for near-due and overdue.
    pub view: Option<QueueView>,
    /// Text in reference, title or description.
    pub q: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub sort: Option<Sort>,
    /// 1–100, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// Sort key in microseconds since the epoch.
    k: i64,
    id: i64,
}

fn encode_cursor(k: NaiveDateTime, id: i64) -> String {
    let c = Cursor {
        k: k.and_utc().timestamp_micros(),
        id,
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&c).unwrap_or_default())
}

fn decode_cursor(s: &str) -> AppResult<(NaiveDateTime, i64)> {
    let bad = || AppError::validation("invalid_cursor", "分页游标 cursor 无效");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let k = DateTime::<Utc>::from_timestamp_micros(c.k).ok_or_else(bad)?;
    Ok((k.naive_utc(), c.id))
}

pub(crate) type Boxed<'a> = tickets::BoxedQuery<'a, MultiBackend>;

fn parse_statuses(s: &str) -> AppResult<Vec<Status>> {
    parse_list::<Status>(s, "invalid_status", "状态")
}

/// A comma-separated list of one closed set's values. An unknown value is refused without
/// echoing it (it is the client's raw input).
fn parse_list<T: TextEnum>(s: &str, code: &'static str, what: &str) -> AppResult<Vec<T>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| T::parse(x).ok_or_else(|| AppError::validation(code, format!("未知{what}值"))))
        .collect()
}

/// The caller's scope plus the filters, without paging.
pub(crate) fn filtered<'a>(
    user: &AuthUser,
    f: &TicketFilter,
    now: DateTime<Utc>,
) -> AppResult<Boxed<'a>> {
    let mut q = tickets::table.into_boxed::<MultiBackend>();
    let unit = user.org_unit_id.unwrap_or(-1);
    q = match user.role {
        Role::Resident => q.filter(tickets::resident_id.eq(user.id)),
        Role::CompoundStaff => q.filter(tickets::compound_id.eq(unit)),
        Role::CommunityStaff => q.filter(tickets::community_id.eq(unit)),
        Role::StreetStaff => q.filter(tickets::street_id.eq(unit)),
        Role::Admin => q,
    };
    if let Some(l) = f.level {
        q = q.filter(tickets::level.eq(l.as_str()));
    }
    if let Some(s) = f.status.as_deref() {
        let list = parse_statuses(s)?;
        if !list.is_empty() {
            q = q.filter(status_in(&list));
        }
    }
    if let Some(s) = f.source.as_deref() {
        let list = parse_list::<Source>(s, "invalid_source", "来源")?;
        if !list.is_empty() {
            q = q.filter(tickets::source.eq_any(list.into_iter().map(Source::as_str)));
        }
    }
    if let Some(v) = f.view {
        let Some(mine) = Level::of_role(user.role) else {
            return Err(AppError::validation(
                "invalid_view",
                "督办和待我决定视图仅供工作人员使用",
            ));
        };
        let below: Vec<&str> = Level::ALL
            .into_iter()
            .filter(|l| *l < mine)
            .map(Level::as_str)
            .collect();
        q = match v {
            QueueView::Supervision => q.filter(tickets::level.eq_any(below)).filter(status_in(&[
                Status::Open,
                Status::Acknowledged,
                Status::DeclineReview,
            ])),
            QueueView::Decisions => {
                let review = tickets::status
                    .eq("decline_review")
                    .and(tickets::level.eq(mine.as_str()));
                match mine.down() {
                    Some(down) => q.filter(
                        review.or(tickets::extension_due_at
                            .is_not_null()
                            .and(tickets::status.eq("acknowledged"))
                            .and(tickets::level.eq(down.as_str()))),
                    ),
                    None => q.filter(review),
                }
            }
        };
    }
    if let Some(c) = f.category {
        q = q.filter(tickets::category_id.eq(c));
    }
    if let Some(c) = f.community_id {
        q = q.filter(tickets::community_id.eq(c));
    }
    if let Some(c) = f.compound_id {
        q = q.filter(tickets::compound_id.eq(c));
    }
    if let Some(u) = f.urgency {
        q = q.filter(tickets::urgency.eq(u.as_str()));
    }
    let now_ts = now.naive_utc();
    match f.overdue {
        Some(true) => q = q.filter(tickets::overdue.eq(true).or(tickets::due_at.lt(now_ts))),
        Some(false) => q = q.filter(tickets::overdue.eq(false).and(tickets::due_at.ge(now_ts))),
        None => {}
    }
    match f.disputed {
        Some(true) => q = q.filter(tickets::disputes_at_level.gt(0)),
        Some(false) => q = q.filter(tickets::disputes_at_level.eq(0)),
        None => {}
    }
    if f.assigned_to_me == Some(true) {
        q = q.filter(tickets::assignee_id.eq(user.id));
    }
    if let Some(d) = f.due_before {
        q = q.filter(tickets::due_at.lt(d.naive_utc()));
    }
    if f.due_soon == Some(true) {
        // `schedule()` stores the warning point as `next_check_at` until the warning is sent,
        // then the deadline (with the clock's warned flag set).
        let open = Status::Open.as_str();
        let acknowledged = Status::Acknowledged.as_str();
        q = q.filter(
            status_in(&[Status::Open, Status::Acknowledged])
                .and(tickets::paused_at.is_null())
                .and(tickets::overdue.eq(false))
                .and(tickets::due_at.ge(now_ts))
                .and(
                    tickets::next_check_at
                        .le(now_ts)
                        .or(tickets::status.eq(open).and(tickets::ack_warned.eq(true)))
                        .or(tickets::status
                            .eq(acknowledged)
                            .and(tickets::resolve_warned.eq(true))),
                ),
        );
    }
    if f.went_up == Some(true) {
        let above: Vec<&str> = match Level::of_role(user.role) {
            Some(Level::Compound) => vec!["community", "street"],
            Some(Level::Community) => vec!["street"],
            _ => vec![],
        };
        q = q.filter(tickets::level.eq_any(above));
    }
    if let Some(text) = crate::domain::validate::search(f.q.as_deref())? {
        let clean: String = text
            .chars()
            .filter(|c| !matches!(c, '%' | '_' | '\\'))
            .take(50)
            .collect();
        let pattern = format!("%{clean}%");
        let upper = format!("%{}%", clean.to_uppercase());
        q = q.filter(
            tickets::reference
                .like(upper)
                .or(tickets::title.like(pattern.clone()))
                .or(tickets::description.like(pattern)),
        );
    }
    if let Some(d) = f.created_from {
        q = q.filter(tickets::created_at.ge(d.naive_utc()));
    }
    if let Some(d) = f.created_to {
        q = q.filter(tickets::created_at.lt(d.naive_utc()));
    }
    Ok(q)
}

#[derive(Debug)]
pub struct Page {
    pub rows: Vec<TicketRow>,
    pub next_cursor: Option<String>,
    pub total: i64,
}

/// The caller's page of tickets. `known_total`: the scope's total when the caller already has
/// it (see `totals`), which spares counting the scope.
pub fn list(
    conn: &mut DbConn,
    user: &AuthUser,
    f: &TicketFilter,
    now: DateTime<Utc>,
    known_total: Option<i64>,
) -> AppResult<Page> {
    let limit = f.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(AppError::validation("invalid_limit", "limit 须为 1–100"));
    }
    let sort = f.sort.unwrap_or(if user.role == Role::Resident {
        Sort::Created
    } else {
        Sort::Due
    });
    let mut q = filtered(user, f, now)?;
    let total: i64 = match known_total {
        Some(t) => t,
        None => filtered(user, f, now)?.count().get_result(conn)?,
    };
    let cursor = f.cursor.as_deref().map(decode_cursor).transpose()?;
    q = match sort {
        Sort::Due => {
            if let Some((k, id)) = cursor {
                q = q.filter(
                    tickets::due_at
                        .gt(k)
                        .or(tickets::due_at.eq(k).and(tickets::id.gt(id))),
                );
            }
            q.order((tickets::due_at.asc(), tickets::id.asc()))
        }
        Sort::Created => {
            if let Some((k, id)) = cursor {
                q = q.filter(
                    tickets::created_at
                        .lt(k)
                        .or(tickets::created_at.eq(k).and(tickets::id.lt(id))),
                );
            }
            q.order((tickets::created_at.desc(), tickets::id.desc()))
        }
        Sort::Updated => {
            if let Some((k, id)) = cursor {
                q = q.filter(
                    tickets::updated_at
                        .lt(k)
                        .or(tickets::updated_at.eq(k).and(tickets::id.lt(id))),
                );
            }
            q.order((tickets::updated_at.desc(), tickets::id.desc()))
        }
    };
    let mut rows: Vec<TicketRow> = q
        .select(TicketRow::as_select())
        .limit(limit + 1)
        .load(conn)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|t| {
            let k = match sort {
                Sort::Due => t.due_at,
                Sort::Created => t.created_at,
                Sort::Updated => t.updated_at,
            };
            encode_cursor(k, t.id)
        })
    } else {
        None
    };
    Ok(Page {
        rows,
        next_cursor,
        total,
    })
}

pub fn events(conn: &mut DbConn, ticket_id: i64) -> AppResult<Vec<TicketEventRow>> {
    Ok(ticket_events::table
        .filter(ticket_events::ticket_id.eq(ticket_id))
        .order(ticket_events::id.asc())
        .select(TicketEventRow::as_select())
        .load(conn)?)
}
