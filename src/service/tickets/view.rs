//! Tickets and timeline events as the API shows them to a given caller.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::db::dialect::{self, LookupKind};
use crate::db::models::{TicketEventRow, TicketRow};
use crate::db::schema::users;
use crate::db::DbConn;
use crate::domain::role::{ActorRole, Role};
use crate::domain::ticket::{self, Action, ClosedBy, EventKind, Level, Source, Status, Urgency};
use crate::domain::validate::mask_phone;
use crate::error::AppResult;

use super::{no_deadline, relation_of};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NamedRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryRef {
    pub id: i64,
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LocationView {
    pub text: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Metres (radius, as the resident's browser reported it); only with coordinates.
    pub accuracy_m: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResidentRef {
    pub id: i64,
    pub display_name: String,
    /// Always masked (`138****5678`); `reveal-phone` shows it and is recorded.
    pub phone_masked: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketView {
    pub id: i64,
    /// Human reference: street code, local date, sequence (`YC-20261127-0042`).
    pub reference: String,
    pub status: Status,
    pub level: Level,
    /// Plain words for residents: 「小区党支部已受理」「已上报社区党支部」「待您确认」…
    pub status_text: String,
    pub street: NamedRef,
    pub community: NamedRef,
    pub compound: NamedRef,
    pub building: Option<NamedRef>,
    pub category: CategoryRef,
    pub urgency: Urgency,
    pub title: String,
    pub description: String,
    pub location: Option<LocationView>,
    /// Shown to staff only.
    pub resident: Option<ResidentRef>,
    pub assignee: Option<NamedRef>,
    pub assigned_handler: Option<String>,
    pub resolution_note: Option<String>,
    pub decline_reason: Option<String>,
    pub escalation_count: i32,
    pub rating: Option<i32>,
    pub rating_comment: Option<String>,
    pub closed_by: Option<ClosedBy>,
    pub attachment_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Answer deadline at the current level.
    pub ack_due_at: Option<DateTime<Utc>>,
    /// Settle deadline at the current level.
    pub resolve_due_at: Option<DateTime<Utc>>,
    /// 等待居民补充: the settle clock is paused until the resident adds information.
    pub waiting_on_resident: bool,
    /// Optimistic-concurrency version; changes with every action.
    pub version: i32,
    /// How the call came in (`app`: the resident's own).
    pub source: Source,
    /// The level whose staff entered the call, for a call entered on a resident's behalf or an
    /// own finding ("由小区党支部代为登记").
    pub entered_by_level: Option<Level>,
    /// Staff only: who entered it.
    pub entered_by: Option<NamedRef>,
    /// The reference on the platform a hotline call came from.
    pub external_ref: Option<String>,
    /// The resident asked to be hidden from the compound branch.
    pub identity_hidden: bool,
    /// An own finding's raising level (it confirms the closure).
    pub raised_level: Option<Level>,
    pub transfer_count: i32,
    pub urge_count: i32,
    /// Disputes (有异议) of the resident at the current level: a reopened ticket has one.
    pub disputes_at_level: i32,
    /// Extensions granted at the current level.
    pub extensions_granted: i32,
    /// When the pending decision is due: a decline review, or an extension request.
    pub decide_due_at: Option<DateTime<Utc>>,
    /// A pending extension request.
    pub extension: Option<ExtensionView>,
    /// Resolved tickets only: when the ticket completes by itself unless the resident confirms
    /// or disputes it first (`resolved_at` + `sla.auto_close_days`); null in every other status.
    pub auto_close_at: Option<DateTime<Utc>>,
    // The fields below are [`Clock`]'s and stay last, in its order: a kept page writes each
    // view's JSON up to here once and only these on every request (`kept_json`).
    /// Seconds left on the running clock (negative once breached); null when no clock runs.
    pub due_in_seconds: Option<i64>,
    /// Seconds until the ticket counts as 即将超时 — its clock's warning point in working time,
    /// the rule of `GET /tickets?due_soon=true` (0 or less: it does now); null when no answer or
    /// settle clock runs.
    pub due_soon_in_seconds: Option<i64>,
    /// Past the running deadline now, or marked overdue at the street level.
    pub overdue: bool,
    /// What the caller may do now.
    pub allowed_actions: Vec<Action>,
}

/// What a ticket's view derives from the time of the request and from the caller beyond their
/// role: the last fields of [`TicketView`], in the same order.
#[derive(Debug, Clone, Serialize)]
pub struct Clock {
    pub due_in_seconds: Option<i64>,
    pub due_soon_in_seconds: Option<i64>,
    pub overdue: bool,
    pub allowed_actions: Vec<Action>,
}

impl Clock {
    /// The clock fields of `t`'s view for `user` at `now`.
    pub fn of(user: &AuthUser, t: &TicketRow, now: DateTime<Utc>) -> Clock {
        Clock::with_facts(user, t, &t.to_domain().facts(), now)
    }

    /// [`Clock::of`] with the ticket's rule facts already at hand.
    fn with_facts(
        user: &AuthUser,
        t: &TicketRow,
        f: &ticket::RuleFacts,
        now: DateTime<Utc>,
    ) -> Clock {
        let running = match f.status {
            Status::Open => t.ack_due_at,
            Status::Acknowledged => t.resolve_due_at,
            Status::DeclineReview => t.decide_due_at,
            _ => None,
        };
        let due_in_seconds = running
            .filter(|_| t.paused_at.is_none())
            .map(|d| (utc(d) - now).num_seconds());
        // `schedule()` keeps the warning point in `next_check_at` until the warning is sent.
        let warned = match f.status {
            Status::Open => t.ack_warned,
            Status::Acknowledged => t.resolve_warned,
            _ => false,
        };
        let due_soon_in_seconds = match f.status {
            Status::Open | Status::Acknowledged if due_in_seconds.is_some() => {
                if warned {
                    Some(0)
                } else {
                    t.next_check_at.map(|c| (utc(c) - now).num_seconds())
                }
            }
            _ => None,
        };
        Clock {
            due_in_seconds,
            due_soon_in_seconds,
            overdue: t.overdue || (t.due_at != no_deadline() && utc(t.due_at) < now),
            allowed_actions: ticket::allowed_actions(f, relation_of(user, t), now),
        }
    }
}

impl TicketView {
    fn clock(&self) -> Clock {
        Clock {
            due_in_seconds: self.due_in_seconds,
            due_soon_in_seconds: self.due_soon_in_seconds,
            overdue: self.overdue,
            allowed_actions: self.allowed_actions.clone(),
        }
    }

    /// This view's JSON up to its clock fields, with the comma before them: the part that stays
    /// the same for every caller of the same role until the ticket changes. `None` should the
    /// JSON not end with the clock fields (a field added after them), so the caller writes the
    /// whole view instead.
    pub fn kept_json(&self) -> Option<Vec<u8>> {
        let mut full = serde_json::to_vec(self).ok()?;
        let clock = serde_json::to_vec(&self.clock()).ok()?;
        // `full` is `{…,` followed by `clock` without its opening brace.
        let comma = full.len().checked_sub(clock.len())?;
        if full.get(comma) != Some(&b',') || full.get(comma + 1..)? != clock.get(1..)? {
            return None;
        }
        full.truncate(comma + 1);
        Some(full)
    }
}

/// Appends a view to `out` from its [`TicketView::kept_json`] and its clock now.
pub fn write_kept_view(out: &mut Vec<u8>, kept: &[u8], clock: &Clock) -> serde_json::Result<()> {
    out.extend_from_slice(kept);
    let start = out.len();
    serde_json::to_writer(&mut *out, clock)?;
    // Drop the clock's own opening brace: its fields continue the kept part.
    out.remove(start);
    Ok(())
}

/// An extension request waiting for the level above.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExtensionView {
    /// The resolve deadline asked for.
    pub requested_due_at: DateTime<Utc>,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    /// The decision clock ran out (recorded against the approver); it can still be decided.
    pub unanswered: bool,
}

/// What a compound sees of a resident who asked to be hidden from it.
pub const ANONYMOUS_RESIDENT: &str = "匿名居民";

/// Whether `user` must not learn who the resident of `t` is: compound staff, when the
/// resident asked to be hidden from the compound.
pub fn hides_resident_from(user: &AuthUser, t: &TicketRow) -> bool {
    t.identity_hidden && user.role == Role::CompoundStaff
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

pub fn status_text(status: Status, level: Level, escalations: i32) -> String {
    match status {
        Status::Open if escalations > 0 || level != Level::Compound => {
            format!("已上报{}，待受理", level.label_zh())
        }
        Status::Open => format!("待{}受理", level.label_zh()),
        Status::Acknowledged => format!("{}已受理，处理中", level.label_zh()),
        Status::Resolved => "已办结，待您确认".into(),
        Status::Closed => "已完成".into(),
        Status::Declined => format!("{}不予受理", level.label_zh()),
        Status::DeclineReview => format!("不予受理，{}复核中", level.label_zh()),
        Status::Withdrawn => "已撤回".into(),
    }
}

/// Views for several tickets with one query for what they refer to, not one per ticket.
pub fn tickets(
    conn: &mut DbConn,
    user: &AuthUser,
    rows: &[TicketRow],
    now: DateTime<Utc>,
    auto_close_after: chrono::Duration,
) -> AppResult<Vec<TicketView>> {
    let found = Lookups::read(conn, rows)?;
    Ok(build(user, rows, &found, now, auto_close_after))
}

/// What the views of some tickets show besides their rows: the units' and people's names, the
/// categories, the photo counts.
#[derive(Debug, Default)]
pub struct Lookups {
    units: HashMap<i64, String>,
    /// Residents, assignees and whoever entered a call: name and phone.
    people: HashMap<i64, (String, Option<String>)>,
    /// The level of each staff member among `people` ("由社区党支部代为登记").
    staff_levels: HashMap<i64, Level>,
    /// Code and name.
    cats: HashMap<i64, (String, String)>,
    counts: HashMap<i64, i64>,
}

impl Lookups {
    /// One statement for all of `rows`.
    pub fn read(conn: &mut DbConn, rows: &[TicketRow]) -> AppResult<Lookups> {
        let mut unit_ids: Vec<i64> = Vec::new();
        let mut user_ids: Vec<i64> = Vec::new();
        let mut cat_ids: Vec<i64> = Vec::new();
        let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
        for t in rows {
            unit_ids.extend([t.street_id, t.community_id, t.compound_id]);
            unit_ids.extend(t.building_id);
            user_ids.push(t.resident_id);
            user_ids.extend(t.assignee_id);
            user_ids.extend(t.entered_by);
            cat_ids.push(t.category_id);
        }
        unit_ids.sort_unstable();
        unit_ids.dedup();
        user_ids.sort_unstable();
        user_ids.dedup();
        cat_ids.sort_unstable();
        cat_ids.dedup();
        let mut l = Lookups::default();
        let found = dialect::view_lookups(
            conn,
            dialect::ViewIds {
                units: &unit_ids,
                people: &user_ids,
                categories: &cat_ids,
                tickets: &ids,
            },
        )?;
        for row in found {
            let kind = row.kind();
            let text = row.a.unwrap_or_default();
            match kind {
                Some(LookupKind::Unit) => {
                    l.units.insert(row.id, text);
                }
                Some(LookupKind::Person) => {
                    if let Some(level) = row.role.and_then(Level::of_role) {
                        l.staff_levels.insert(row.id, level);
                    }
                    l.people.insert(row.id, (text, row.b));
                }
                Some(LookupKind::Category) => {
                    l.cats.insert(row.id, (text, row.b.unwrap_or_default()));
                }
                Some(LookupKind::Attachment) => *l.counts.entry(row.id).or_default() += 1,
                // The statement writes only the four kinds above.
                None => {}
            }
        }
        Ok(l)
    }

    /// About the bytes held (for a keeper's budget).
    pub fn weight(&self) -> usize {
        let entry = 48;
        self.units.values().map(|n| entry + n.len()).sum::<usize>()
            + self
                .people
                .values()
                .map(|(n, p)| entry + n.len() + p.as_ref().map_or(0, String::len))
                .sum::<usize>()
            + self
                .cats
                .values()
                .map(|(c, n)| entry + c.len() + n.len())
                .sum::<usize>()
            + entry * (self.staff_levels.len() + self.counts.len())
    }
}

/// The views of `rows` for `user` at `now`, from what `found` looked up for them.
pub fn build(
    user: &AuthUser,
    rows: &[TicketRow],
    found: &Lookups,
    now: DateTime<Utc>,
    auto_close_after: chrono::Duration,
) -> Vec<TicketView> {
    let Lookups {
        units,
        people,
        staff_levels,
        cats,
        counts,
    } = found;
    let named = |id: i64| NamedRef {
        id,
        name: units.get(&id).cloned().unwrap_or_default(),
    };
    rows.iter()
        .map(|t| {
            let f = t.to_domain().facts();
            let clock = Clock::with_facts(user, t, &f, now);
            let is_staff = user.role != Role::Resident;
            let (cat_code, cat_name) = cats.get(&t.category_id).cloned().unwrap_or_default();
            TicketView {
                id: t.id,
                reference: t.reference.clone(),
                status: f.status,
                level: f.level,
                status_text: status_text(f.status, f.level, t.escalation_count),
                street: named(t.street_id),
                community: named(t.community_id),
                compound: named(t.compound_id),
                building: t.building_id.map(named),
                category: CategoryRef {
                    id: t.category_id,
                    code: cat_code,
                    name: cat_name,
                },
                urgency: t.urgency,
                title: t.title.clone(),
                description: t.description.clone(),
                location: if t.location_text.is_some() || t.latitude.is_some() {
                    Some(LocationView {
                        text: t.location_text.clone(),
                        latitude: t.latitude,
                        longitude: t.longitude,
                        accuracy_m: t.location_accuracy_m,
                    })
                } else {
                    None
                },
                // An own finding has no resident; a hidden resident is nobody to the compound.
                resident: (is_staff && t.source != Source::OwnFinding).then(|| {
                    if hides_resident_from(user, t) {
                        return ResidentRef {
                            id: 0,
                            display_name: ANONYMOUS_RESIDENT.into(),
                            phone_masked: None,
                        };
                    }
                    let (name, phone) = people.get(&t.resident_id).cloned().unwrap_or_default();
                    ResidentRef {
                        id: t.resident_id,
                        display_name: name,
                        phone_masked: phone.map(|p| mask_phone(&p)),
                    }
                }),
                assignee: t.assignee_id.map(|a| NamedRef {
                    id: a,
                    name: people.get(&a).map(|p| p.0.clone()).unwrap_or_default(),
                }),
                assigned_handler: t.assigned_handler.clone(),
                resolution_note: t.resolution_note.clone(),
                decline_reason: t.decline_reason.clone(),
                escalation_count: t.escalation_count,
                rating: t.rating,
                rating_comment: t.rating_comment.clone(),
                closed_by: t.closed_by,
                attachment_count: counts.get(&t.id).copied().unwrap_or(0),
                created_at: utc(t.created_at),
                updated_at: utc(t.updated_at),
                acknowledged_at: t.acknowledged_at.map(utc),
                resolved_at: t.resolved_at.map(utc),
                closed_at: t.closed_at.map(utc),
                ack_due_at: t.ack_due_at.map(utc),
                resolve_due_at: t.resolve_due_at.map(utc),
                waiting_on_resident: t.paused_at.is_some(),
                version: t.version,
                source: t.source,
                entered_by_level: t
                    .entered_by
                    .and_then(|id| staff_levels.get(&id).copied())
                    .or(t.raised_level)
                    .filter(|_| t.source.entered_by_staff()),
                entered_by: t.entered_by.filter(|_| is_staff).map(|id| NamedRef {
                    id,
                    name: people.get(&id).map(|p| p.0.clone()).unwrap_or_default(),
                }),
                external_ref: t.external_ref.clone(),
                identity_hidden: t.identity_hidden,
                raised_level: t.raised_level,
                transfer_count: t.transfer_count,
                urge_count: t.urge_count,
                disputes_at_level: t.disputes_at_level,
                extensions_granted: t.extensions_granted,
                decide_due_at: t.decide_due_at.map(utc),
                extension: match (t.extension_due_at, t.extension_requested_at) {
                    (Some(due), Some(at)) => Some(ExtensionView {
                        requested_due_at: utc(due),
                        reason: t.extension_reason.clone().unwrap_or_default(),
                        requested_at: utc(at),
                        unanswered: t.extension_lapsed,
                    }),
                    _ => None,
                },
                auto_close_at: t
                    .resolved_at
                    .filter(|_| f.status == Status::Resolved)
                    .map(|r| utc(r) + auto_close_after),
                due_in_seconds: clock.due_in_seconds,
                due_soon_in_seconds: clock.due_soon_in_seconds,
                overdue: clock.overdue,
                allowed_actions: clock.allowed_actions,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorView {
    pub id: Option<i64>,
    /// A person's name for staff; residents see the branch (e.g. 「小区党支部」), not the person.
    pub name: String,
    pub role: ActorRole,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    pub action: EventKind,
    pub actor: ActorView,
    /// The level the action was taken at.
    pub level: Level,
    pub level_after: Level,
    pub status_before: Option<Status>,
    pub status_after: Status,
    pub reason: Option<String>,
    pub note: Option<String>,
    /// Internal notes are never shown to residents.
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

pub fn events(
    conn: &mut DbConn,
    user: &AuthUser,
    ticket: Option<&TicketRow>,
    rows: Vec<TicketEventRow>,
) -> AppResult<Vec<EventView>> {
    let is_resident = user.role == Role::Resident;
    // The resident of a ticket whose resident is hidden from the caller.
    let hidden = ticket
        .filter(|t| hides_resident_from(user, t))
        .map(|t| t.resident_id);
    let mut ids: Vec<i64> = rows.iter().filter_map(|e| e.actor_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let names: HashMap<i64, String> = users::table
        .filter(users::id.eq_any(&ids))
        .select((users::id, users::display_name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .filter(|e| !(is_resident && e.internal))
        .map(|e| {
            let name = match e.actor_id {
                None => ActorRole::System.label_zh().to_string(),
                Some(id) if is_resident && id == user.id => "我".to_string(),
                // Residents see the branch or the role, never a staff member's name.
                Some(_) if is_resident => e.actor_role.label_zh().to_string(),
                Some(id) if hidden == Some(id) => ANONYMOUS_RESIDENT.to_string(),
                Some(id) => names.get(&id).cloned().unwrap_or_default(),
            };
            let reason = if is_resident && e.action == EventKind::Assign {
                None
            } else {
                e.reason
            };
            // What a resident told the callback stays with the levels above the compound: the
            // compound may be whom they complained about (pressed to withdraw or to rate).
            let callback = matches!(e.action, EventKind::Callback | EventKind::CallbackReopen);
            let note = if callback && (is_resident || user.role == Role::CompoundStaff) {
                None
            } else {
                e.note
            };
            EventView {
                id: e.id,
                action: e.action,
                actor: ActorView {
                    id: if is_resident || (hidden.is_some() && e.actor_id == hidden) {
                        None
                    } else {
                        e.actor_id
                    },
                    name,
                    role: e.actor_role,
                },
                level: e.level,
                level_after: e.level_after,
                status_before: e.status_before,
                status_after: e.status_after,
                reason,
                note,
                internal: e.internal,
                created_at: utc(e.created_at),
            }
        })
        .collect())
}
