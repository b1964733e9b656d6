//! Tickets: the call (create) and the answers (actions), each in one write transaction that
//! checks the state it changes.

pub mod query;
pub mod view;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::prelude::*;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::db::models::{NewTicketEvent, TicketRow};
use crate::db::schema::{categories, idempotency_keys, ticket_sequences, tickets, users};
use crate::db::DbConn;
use crate::domain::org::OrgKind;
use crate::domain::role::Role;
use crate::domain::ticket::{
    self, Action, DisputeOutcome, EscalationReason, Facts, Level, Relation, Scope, Status, Urgency,
};
use crate::domain::validate;
use crate::error::{AppError, AppResult};
use crate::service::org;
use crate::service::sla::SlaEngine;

/// `due_at` when no clock runs: sorts last in every queue.
pub fn no_deadline() -> NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Address or description of the place.
    pub text: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// A resident's call.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    pub compound_id: i64,
    pub building_id: Option<i64>,
    pub category_id: i64,
    #[serde(default = "default_urgency")]
    pub urgency: Urgency,
    /// 1–80 characters.
    pub title: String,
    /// 1–2,000 characters.
    pub description: String,
    pub location: Option<Location>,
}

fn default_urgency() -> Urgency {
    Urgency::Normal
}

/// The body of `POST /tickets/{id}/{action}`; which fields an action needs is in its description.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Text of a comment, the resolution note (resolve), guidance (return), the explanation of a
    /// call up (escalate) or of a dispute, or the rating comment (confirm). Alias: `comment`.
    #[serde(alias = "comment", alias = "text")]
    pub note: Option<String>,
    /// Comment only: an internal note residents never see.
    pub internal: Option<bool>,
    /// Escalate: `beyond_authority` | `needs_resources` | `needs_enforcement` | `cross_compound` | `other`.
    /// Decline: the reason given to the resident.
    pub reason: Option<String>,
    /// Assign: a staff member of the accountable unit.
    pub assignee_id: Option<i64>,
    /// Assign: a named handler instead, e.g. the property company or a volunteer team.
    pub handler: Option<String>,
    /// Confirm: satisfaction 1–5.
    pub rating: Option<i32>,
}

/// A validated action, ready to apply.
enum Checked {
    Acknowledge {
        note: Option<String>,
    },
    Comment {
        note: String,
        internal: bool,
    },
    Assign {
        assignee_id: Option<i64>,
        handler: Option<String>,
    },
    Resolve {
        note: String,
    },
    Escalate {
        reason: EscalationReason,
        note: String,
    },
    Decline {
        reason: String,
    },
    Return {
        note: String,
    },
    Confirm {
        rating: i32,
        comment: Option<String>,
    },
    Dispute {
        note: Option<String>,
    },
    Withdraw {
        note: Option<String>,
    },
    RevealPhone,
    WaitOnResident {
        note: String,
    },
}

fn optional_text(field: &'static str, v: &Option<String>, max: usize) -> AppResult<Option<String>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Ok(Some(validate::text(field, s, max)?)),
        None => Ok(None),
    }
}

fn required_text(field: &'static str, v: &Option<String>, max: usize) -> AppResult<String> {
    Ok(validate::text(field, v.as_deref().unwrap_or(""), max)?)
}

fn check_body(action: Action, b: &ActionRequest) -> AppResult<Checked> {
    Ok(match action {
        Action::Acknowledge => Checked::Acknowledge {
            note: optional_text("note", &b.note, 2000)?,
        },
        Action::Comment => Checked::Comment {
            note: required_text("note", &b.note, 2000)?,
            internal: b.internal.unwrap_or(false),
        },
        Action::Assign => {
            let handler = optional_text("handler", &b.handler, 80)?;
            if b.assignee_id.is_none() && handler.is_none() {
                return Err(AppError::validation(
                    "missing_field",
                    "请指定处理人 assignee_id 或处理单位 handler",
                ));
            }
            Checked::Assign {
                assignee_id: b.assignee_id,
                handler,
            }
        }
        Action::Resolve => Checked::Resolve {
            note: required_text("note（办结说明）", &b.note, 2000)?,
        },
        Action::Escalate => {
            let reason = match b.reason.as_deref() {
                Some("beyond_authority") => EscalationReason::BeyondAuthority,
                Some("needs_resources") => EscalationReason::NeedsResources,
                Some("needs_enforcement") => EscalationReason::NeedsEnforcement,
                Some("cross_compound") => EscalationReason::CrossCompound,
                Some("other") => EscalationReason::Other,
                _ => {
                    return Err(AppError::validation(
                        "invalid_reason",
                        "上报原因 reason 须为 beyond_authority、needs_resources、needs_enforcement、cross_compound 或 other",
                    ))
                }
            };
            Checked::Escalate {
                reason,
                note: required_text("note（上报说明）", &b.note, 2000)?,
            }
        }
        Action::Decline => Checked::Decline {
            reason: required_text("reason（不予受理理由）", &b.reason, 500)?,
        },
        Action::Return => Checked::Return {
            note: required_text("note（退回指导意见）", &b.note, 2000)?,
        },
        Action::Confirm => {
            let rating = b.rating.ok_or_else(|| {
                AppError::validation("missing_field", "请为办理结果评分 rating（1–5）")
            })?;
            if !(1..=5).contains(&rating) {
                return Err(AppError::validation(
                    "invalid_rating",
                    "评分 rating 须为 1–5",
                ));
            }
            Checked::Confirm {
                rating,
                comment: optional_text("comment", &b.note, 500)?,
            }
        }
        Action::Dispute => Checked::Dispute {
            note: optional_text("note", &b.note, 2000)?,
        },
        Action::Withdraw => Checked::Withdraw {
            note: optional_text("note", &b.note, 500)?,
        },
        Action::RevealPhone => Checked::RevealPhone,
        Action::WaitOnResident => Checked::WaitOnResident {
            note: required_text("note（需要居民补充的内容）", &b.note, 2000)?,
        },
    })
}

pub fn facts(t: &TicketRow) -> Facts {
    Facts {
        status: Status::parse(&t.status).unwrap_or(Status::Closed),
        level: Level::parse(&t.level).unwrap_or(Level::Street),
        returned_by_community: t.returned_by_community,
        returned_by_street: t.returned_by_street,
        declined_at: t.declined_at.map(|d| d.and_utc()),
        paused: t.paused_at.is_some(),
    }
}

pub fn relation_of(user: &AuthUser, t: &TicketRow) -> Relation {
    ticket::relation(
        user.role,
        user.id,
        user.org_unit_id,
        &Scope {
            street_id: t.street_id,
            community_id: t.community_id,
            compound_id: t.compound_id,
            resident_id: t.resident_id,
            level: Level::parse(&t.level).unwrap_or(Level::Street),
        },
    )
}

/// A ticket the caller may see, else 404 (so ids cannot be probed).
pub fn load_visible(
    conn: &mut DbConn,
    user: &AuthUser,
    id: i64,
) -> AppResult<(TicketRow, Relation)> {
    let t: Option<TicketRow> = tickets::table
        .find(id)
        .select(TicketRow::as_select())
        .first(conn)
        .optional()?;
    let t = t.ok_or(AppError::NotFound)?;
    match relation_of(user, &t) {
        Relation::None => Err(AppError::NotFound),
        r => Ok((t, r)),
    }
}

/// Starts the clocks of the level the ticket has just arrived at.
pub fn arrive_at_level(t: &mut TicketRow, level: Level, sla: &SlaEngine, now: DateTime<Utc>) {
    let urgency = Urgency::parse(&t.urgency).unwrap_or(Urgency::Normal);
    let clocks = sla.clocks(level, t.category_id, urgency, now);
    t.level = level.as_str().into();
    t.status = Status::Open.as_str().into();
    t.level_entered_at = now.naive_utc();
    t.level_acknowledged_at = None;
    t.ack_due_at = Some(clocks.ack_due.naive_utc());
    t.resolve_due_at = Some(clocks.resolve_due.naive_utc());
    t.ack_warned = false;
    t.resolve_warned = false;
    t.disputes_at_level = 0;
    t.assignee_id = None;
    t.assigned_handler = None;
    t.resolved_at = None;
    t.resolution_note = None;
    t.declined_at = None;
    t.decline_reason = None;
    t.paused_at = None;
    t.paused_minutes = 0;
    set_schedule(t, sla);
}

/// Derives the queue's sort key and the sweeper's next look from status and clocks.
pub fn set_schedule(t: &mut TicketRow, sla: &SlaEngine) {
    let status = Status::parse(&t.status).unwrap_or(Status::Closed);
    let level = Level::parse(&t.level).unwrap_or(Level::Street);
    let urgency = Urgency::parse(&t.urgency).unwrap_or(Urgency::Normal);
    let entered = t.level_entered_at.and_utc();
    let clocks = sla.clocks(level, t.category_id, urgency, entered);
    let warn_offset = |due: NaiveDateTime, warn: DateTime<Utc>, policy_due: DateTime<Utc>| {
        // Warnings keep their lead time even when the stored due time differs from the policy's.
        due - (policy_due - warn)
    };
    match status {
        Status::Open => {
            let due = t.ack_due_at.unwrap_or_else(no_deadline);
            t.due_at = due;
            let warn = warn_offset(due, clocks.ack_warn, clocks.ack_due);
            t.next_check_at = Some(if t.ack_warned { due } else { warn.min(due) });
        }
        Status::Acknowledged if t.paused_at.is_some() => {
            // Paused: the deadline waits; the sweeper looks again when the pause cap runs out.
            t.due_at = t.resolve_due_at.unwrap_or_else(no_deadline);
            t.next_check_at = t.paused_at.map(|p| {
                sla.pause_ends(
                    clocks.clock,
                    p.and_utc(),
                    Duration::minutes(t.paused_minutes),
                )
                .naive_utc()
            });
        }
        Status::Acknowledged => {
            let due = t.resolve_due_at.unwrap_or_else(no_deadline);
            t.due_at = due;
            let warn = warn_offset(due, clocks.resolve_warn, clocks.resolve_due);
            t.next_check_at = Some(if t.resolve_warned { due } else { warn.min(due) });
        }
        Status::Resolved => {
            t.due_at = no_deadline();
            t.next_check_at = t.resolved_at.map(|r| r + sla.auto_close_after);
        }
        Status::Closed | Status::Declined | Status::Withdrawn => {
            t.due_at = no_deadline();
            t.next_check_at = None;
        }
    }
    if t.overdue && status.is_active() {
        // At the top an overdue ticket has nothing more to breach; only the queue order matters.
        t.next_check_at = None;
    }
}

/// Restarts a paused settle clock at `now`: the deadline moves back by the paused working time,
/// never by more than what is left of the per-level cap.
pub fn resume(t: &mut TicketRow, sla: &SlaEngine, now: DateTime<Utc>) {
    let Some(paused_at) = t.paused_at else { return };
    let level = Level::parse(&t.level).unwrap_or(Level::Street);
    let urgency = Urgency::parse(&t.urgency).unwrap_or(Urgency::Normal);
    let clock = sla.clocks(level, t.category_id, urgency, now).clock;
    let (extension, total) = sla.pause_extension(
        clock,
        paused_at.and_utc(),
        now,
        Duration::minutes(t.paused_minutes),
    );
    if let Some(due) = t.resolve_due_at {
        t.resolve_due_at = Some(sla.extend(clock, due.and_utc(), extension).naive_utc());
    }
    t.paused_minutes = total.num_minutes();
    t.paused_at = None;
}

fn next_reference(
    conn: &mut DbConn,
    street_id: i64,
    street_code: &str,
    now: DateTime<Utc>,
) -> AppResult<String> {
    let day = now.with_timezone(&Shanghai).format("%Y%m%d").to_string();
    let bumped: Option<i32> = diesel::update(
        ticket_sequences::table
            .filter(ticket_sequences::street_id.eq(street_id))
            .filter(ticket_sequences::day.eq(&day)),
    )
    .set(ticket_sequences::last_value.eq(ticket_sequences::last_value + 1))
    .returning(ticket_sequences::last_value)
    .get_result(conn)
    .optional()?;
    let seq = match bumped {
        Some(v) => v,
        None => {
            diesel::insert_into(ticket_sequences::table)
                .values((
                    ticket_sequences::street_id.eq(street_id),
                    ticket_sequences::day.eq(&day),
                    ticket_sequences::last_value.eq(1),
                ))
                .execute(conn)?;
            1
        }
    };
    Ok(format!("{street_code}-{day}-{seq:04}"))
}

pub fn request_hash(input: &CreateTicket) -> String {
    hex::encode(Sha256::digest(format!("{input:?}").as_bytes()))
}

pub enum Created {
    New(TicketRow),
    /// The same Idempotency-Key was seen before: the ticket it created.
    Replayed(TicketRow),
}

/// Validates everything that needs no database before the transaction starts.
pub fn precheck_create(input: &CreateTicket) -> AppResult<(String, String, Option<String>)> {
    let title = validate::text("title（标题）", &input.title, 80)?;
    let description = validate::text("description（描述）", &input.description, 2000)?;
    let mut location_text = None;
    if let Some(loc) = &input.location {
        location_text = optional_text("location.text", &loc.text, 200)?;
        if loc
            .latitude
            .is_some_and(|v| !(-90.0..=90.0).contains(&v) || v.is_nan())
            || loc
                .longitude
                .is_some_and(|v| !(-180.0..=180.0).contains(&v) || v.is_nan())
        {
            return Err(AppError::validation("invalid_location", "经纬度超出范围"));
        }
        if loc.latitude.is_some() != loc.longitude.is_some() {
            return Err(AppError::validation(
                "invalid_location",
                "经度和纬度须同时提供",
            ));
        }
    }
    Ok((title, description, location_text))
}

pub fn create(
    conn: &mut DbConn,
    user: &AuthUser,
    input: &CreateTicket,
    idempotency_key: Option<&str>,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<Created> {
    if user.role != Role::Resident {
        return Err(AppError::Forbidden);
    }
    let (title, description, location_text) = precheck_create(input)?;
    let hash = request_hash(input);
    if let Some(key) = idempotency_key {
        let seen: Option<(i64, String)> = idempotency_keys::table
            .filter(idempotency_keys::user_id.eq(user.id))
            .filter(idempotency_keys::idem_key.eq(key))
            .select((idempotency_keys::ticket_id, idempotency_keys::request_hash))
            .first(conn)
            .optional()?;
        if let Some((ticket_id, seen_hash)) = seen {
            if seen_hash != hash {
                return Err(AppError::conflict(
                    "idempotency_key_reused",
                    "该 Idempotency-Key 已用于另一内容不同的请求",
                ));
            }
            let t = tickets::table
                .find(ticket_id)
                .select(TicketRow::as_select())
                .first(conn)?;
            return Ok(Created::Replayed(t));
        }
    }
    let compound = org::require_kind(conn, input.compound_id, OrgKind::Compound, "compound_id")?;
    if compound.archived_at.is_some() {
        return Err(AppError::validation("unknown_org_unit", "该小区已停用"));
    }
    let community_id = compound
        .parent_id
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("compound without community")))?;
    let community = org::require_kind(conn, community_id, OrgKind::Community, "compound_id")?;
    let street_id = community
        .parent_id
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("community without street")))?;
    let street = org::require_kind(conn, street_id, OrgKind::Street, "compound_id")?;
    if let Some(b) = input.building_id {
        let building = org::require_kind(conn, b, OrgKind::Building, "building_id")?;
        if building.parent_id != Some(compound.id) {
            return Err(AppError::validation(
                "unknown_org_unit",
                "该楼栋不属于所选小区",
            ));
        }
    }
    let category_ok: i64 = categories::table
        .filter(categories::id.eq(input.category_id))
        .filter(categories::archived_at.is_null())
        .count()
        .get_result(conn)?;
    if category_ok == 0 {
        return Err(AppError::validation("unknown_category", "问题类别不存在"));
    }
    let reference = next_reference(conn, street.id, street.code.as_deref().unwrap_or("HY"), now)?;
    let ts = now.naive_utc();
    let mut row = TicketRow {
        id: 0,
        reference,
        status: Status::Open.as_str().into(),
        level: Level::Compound.as_str().into(),
        street_id: street.id,
        community_id: community.id,
        compound_id: compound.id,
        building_id: input.building_id,
        category_id: input.category_id,
        urgency: input.urgency.as_str().into(),
        title,
        description,
        location_text,
        latitude: input.location.as_ref().and_then(|l| l.latitude),
        longitude: input.location.as_ref().and_then(|l| l.longitude),
        resident_id: user.id,
        assignee_id: None,
        assigned_handler: None,
        resolution_note: None,
        decline_reason: None,
        declined_at: None,
        rating: None,
        rating_comment: None,
        closed_by: None,
        escalation_count: 0,
        disputes_at_level: 0,
        returned_by_community: false,
        returned_by_street: false,
        level_entered_at: ts,
        level_acknowledged_at: None,
        ack_due_at: None,
        resolve_due_at: None,
        due_at: no_deadline(),
        next_check_at: None,
        ack_warned: false,
        resolve_warned: false,
        overdue: false,
        version: 0,
        created_at: ts,
        updated_at: ts,
        acknowledged_at: None,
        resolved_at: None,
        closed_at: None,
        paused_at: None,
        paused_minutes: 0,
    };
    arrive_at_level(&mut row, Level::Compound, sla, now);
    let id: i64 = diesel::insert_into(tickets::table)
        .values(&row)
        .returning(tickets::id)
        .get_result(conn)?;
    row.id = id;
    record(
        conn,
        &row,
        Some(user),
        "create",
        None,
        Level::Compound,
        None,
        None,
        false,
        now,
    )?;
    if let Some(key) = idempotency_key {
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::user_id.eq(user.id),
                idempotency_keys::idem_key.eq(key),
                idempotency_keys::ticket_id.eq(id),
                idempotency_keys::request_hash.eq(&hash),
                idempotency_keys::created_at.eq(ts),
            ))
            .execute(conn)?;
    }
    tracing::info!(ticket_id = id, reference = %row.reference, "ticket created");
    Ok(Created::New(row))
}

/// Appends a timeline event. `before_level` is the level the action was taken at.
#[allow(clippy::too_many_arguments)]
pub fn record(
    conn: &mut DbConn,
    t: &TicketRow,
    actor: Option<&AuthUser>,
    action: &str,
    status_before: Option<Status>,
    before_level: Level,
    reason: Option<&str>,
    note: Option<&str>,
    internal: bool,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let event_id: i64 = diesel::insert_into(crate::db::schema::ticket_events::table)
        .values(NewTicketEvent {
            ticket_id: t.id,
            actor_id: actor.map(|a| a.id),
            actor_role: actor.map(|a| a.role.as_str()).unwrap_or("system").into(),
            action: action.into(),
            level: before_level.as_str().into(),
            status_before: status_before.map(|s| s.as_str().into()),
            status_after: t.status.clone(),
            level_after: t.level.clone(),
            reason: reason.map(str::to_string),
            note: note.map(str::to_string),
            internal,
            created_at: now.naive_utc(),
        })
        .returning(crate::db::schema::ticket_events::id)
        .get_result(conn)?;
    // >>> notify hook (branch `notify`): outbox rows in the same transaction as the event.
    crate::notify::enqueue_for_event(
        conn,
        &crate::notify::EventCtx {
            ticket: t,
            event_id,
            action,
            actor_id: actor.map(|a| a.id),
            actor_role: actor.map(|a| a.role.as_str()).unwrap_or("system"),
            level_before: before_level,
            reason,
            internal,
            now,
        },
    )?;
    // <<< notify hook
    // The dashboard's per-ticket facts follow every change, in the same transaction.
    crate::service::stats::facts::refresh(conn, t)?;
    Ok(())
}

/// What an action returns besides the ticket.
pub enum Outcome {
    Ticket(TicketRow),
    Phone(TicketRow, String),
}

/// Applies `action` by `user` to ticket `id`: checks visibility (404), role (403), state (409
/// with the allowed actions), then writes the new state only if nobody changed it meanwhile.
pub fn act(
    conn: &mut DbConn,
    user: &AuthUser,
    id: i64,
    action: Action,
    body: &ActionRequest,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<Outcome> {
    let checked = check_body(action, body)?;
    let (old, relation) = load_visible(conn, user, id)?;
    let f = facts(&old);
    if !ticket::relation_may(relation, action) {
        return Err(AppError::Forbidden);
    }
    if !ticket::state_allows(&f, relation, action, now) {
        let allowed: Vec<&str> = ticket::allowed_actions(&f, relation, now)
            .iter()
            .map(|a| a.as_str())
            .collect();
        return Err(AppError::Conflict {
            code: "action_not_allowed",
            message: format!(
                "工单当前状态（{}，{}）不允许“{}”操作",
                f.status.as_str(),
                f.level.label_zh(),
                action.label_zh()
            ),
            details: Some(serde_json::json!({ "allowed_actions": allowed })),
        });
    }
    let mut t = old.clone();
    let ts = now.naive_utc();
    let level = f.level;
    let mut reason: Option<String> = None;
    let mut note: Option<String> = None;
    let mut internal = false;
    let mut phone = None;
    let mut event_action = action.as_str().to_string();
    match checked {
        Checked::Acknowledge { note: n } => {
            t.status = Status::Acknowledged.as_str().into();
            t.level_acknowledged_at = Some(ts);
            t.acknowledged_at.get_or_insert(ts);
            note = n;
        }
        Checked::Comment {
            note: n,
            internal: i,
        } => {
            note = Some(n);
            internal = i && relation == Relation::Accountable;
            if relation == Relation::Owner && t.paused_at.is_some() {
                // The resident answered: the settle clock runs again.
                resume(&mut t, sla, now);
                reason = Some("clock_resumed".into());
            }
        }
        Checked::WaitOnResident { note: n } => {
            t.paused_at = Some(ts);
            note = Some(n);
        }
        Checked::Assign {
            assignee_id,
            handler,
        } => {
            if let Some(a) = assignee_id {
                let unit_of_level = match level {
                    Level::Compound => old.compound_id,
                    Level::Community => old.community_id,
                    Level::Street => old.street_id,
                };
                let ok: i64 = users::table
                    .filter(users::id.eq(a))
                    .filter(users::role.eq(level.staff_role().as_str()))
                    .filter(users::org_unit_id.eq(unit_of_level))
                    .filter(users::disabled_at.is_null())
                    .count()
                    .get_result(conn)?;
                if ok == 0 {
                    return Err(AppError::validation(
                        "invalid_assignee",
                        "处理人须为本单位的在职工作人员",
                    ));
                }
            }
            t.assignee_id = assignee_id;
            t.assigned_handler = handler.clone();
            reason = assignee_id.map(|a| format!("user:{a}"));
            note = handler;
        }
        Checked::Resolve { note: n } => {
            t.paused_at = None;
            t.status = Status::Resolved.as_str().into();
            t.resolved_at = Some(ts);
            t.resolution_note = Some(n.clone());
            t.acknowledged_at.get_or_insert(ts);
            t.level_acknowledged_at.get_or_insert(ts);
            note = Some(n);
        }
        Checked::Escalate { reason: r, note: n } => {
            let up = level.up().ok_or_else(|| {
                AppError::conflict("action_not_allowed", "街党工委为最高层级，无法再上报")
            })?;
            t.escalation_count += 1;
            arrive_at_level(&mut t, up, sla, now);
            reason = Some(r.as_str().into());
            note = Some(n);
        }
        Checked::Decline { reason: r } => {
            t.paused_at = None;
            t.status = Status::Declined.as_str().into();
            t.declined_at = Some(ts);
            t.decline_reason = Some(r.clone());
            reason = Some(r);
        }
        Checked::Return { note: n } => {
            let down = level
                .down()
                .ok_or_else(|| AppError::conflict("action_not_allowed", "小区党支部为最低层级"))?;
            match level {
                Level::Community => t.returned_by_community = true,
                Level::Street => t.returned_by_street = true,
                Level::Compound => {}
            }
            arrive_at_level(&mut t, down, sla, now);
            note = Some(n);
        }
        Checked::Confirm { rating, comment } => {
            t.status = Status::Closed.as_str().into();
            t.closed_at = Some(ts);
            t.closed_by = Some("resident".into());
            t.rating = Some(rating);
            t.rating_comment = comment.clone();
            reason = Some(format!("rating:{rating}"));
            note = comment;
        }
        Checked::Dispute { note: n } => {
            match ticket::dispute_outcome(&f, old.disputes_at_level) {
                DisputeOutcome::ReopenSameLevel => {
                    t.status = Status::Open.as_str().into();
                    t.disputes_at_level += 1;
                    t.resolved_at = None;
                    t.level_acknowledged_at = None;
                    t.paused_at = None;
                    // The settle clock restarts at the same level: new deadlines from now.
                    let urgency = Urgency::parse(&t.urgency).unwrap_or(Urgency::Normal);
                    let clocks = sla.clocks(level, t.category_id, urgency, now);
                    t.level_entered_at = ts;
                    t.ack_due_at = Some(clocks.ack_due.naive_utc());
                    t.resolve_due_at = Some(clocks.resolve_due.naive_utc());
                    t.ack_warned = false;
                    t.resolve_warned = false;
                }
                DisputeOutcome::CallUp(up) => {
                    t.escalation_count += 1;
                    arrive_at_level(&mut t, up, sla, now);
                    reason = Some("resident_dispute".into());
                }
            }
            note = n;
        }
        Checked::Withdraw { note: n } => {
            t.status = Status::Withdrawn.as_str().into();
            t.closed_at = Some(ts);
            t.closed_by = Some("resident".into());
            note = n;
        }
        Checked::RevealPhone => {
            let p: Option<String> = users::table
                .find(old.resident_id)
                .select(users::phone)
                .first(conn)?;
            phone = Some(p.unwrap_or_default());
            internal = true;
            event_action = "reveal_phone".into();
        }
    }
    set_schedule(&mut t, sla);
    t.updated_at = ts;
    t.version = old.version + 1;
    // The state check travels with the write: if anyone changed the ticket since we read it,
    // nothing is written and the caller gets a clean conflict.
    let changed = diesel::update(
        tickets::table
            .filter(tickets::id.eq(old.id))
            .filter(tickets::version.eq(old.version)),
    )
    .set(&t)
    .execute(conn)?;
    if changed == 0 {
        return Err(AppError::conflict(
            "conflict",
            "工单已被他人处理，请刷新后重试",
        ));
    }
    record(
        conn,
        &t,
        Some(user),
        &event_action,
        Some(f.status),
        level,
        reason.as_deref(),
        note.as_deref(),
        internal,
        now,
    )?;
    tracing::info!(
        ticket_id = t.id,
        action = action.as_str(),
        user_id = user.id,
        "ticket action"
    );
    Ok(match phone {
        Some(p) => Outcome::Phone(t, p),
        None => Outcome::Ticket(t),
    })
}
