//! The one path by which a ticket changes in the database. A transition from the domain is
//! stored with everything that must change with it, in the caller's transaction: the row
//! (only if nobody changed it since it was read), the timeline event(s), the notification
//! outbox rows and the dashboard's per-ticket facts. Staff and resident actions, the call
//! itself and the SLA sweeper all come through here.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::auth::AuthUser;
use crate::db::models::{NewTicketEvent, TicketContent, TicketRow};
use crate::db::schema::{ticket_events, tickets};
use crate::db::DbConn;
use crate::domain::role::ActorRole;
use crate::domain::ticket::{Event, Ticket, Transition};
use crate::error::{AppError, AppResult};
use crate::service::sla::SlaEngine;

/// Who made a change, as the timeline records it.
#[derive(Debug, Clone, Copy)]
pub struct Author {
    pub id: Option<i64>,
    pub role: ActorRole,
}

impl Author {
    pub const SYSTEM: Author = Author {
        id: None,
        role: ActorRole::System,
    };
}

impl From<&AuthUser> for Author {
    fn from(u: &AuthUser) -> Author {
        Author {
            id: Some(u.id),
            role: u.role.into(),
        }
    }
}

/// Stores a new call: the row, its `create` event, outbox rows and facts. Returns the row with
/// its id.
pub fn insert_new(
    conn: &mut DbConn,
    content: TicketContent,
    call: &Transition,
    by: Author,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<TicketRow> {
    let mut row = TicketRow::new(&call.ticket, content, now.naive_utc());
    row.id = diesel::insert_into(tickets::table)
        .values(&row)
        .returning(tickets::id)
        .get_result(conn)?;
    record(conn, None, &row, &call.events, by, sla, now)?;
    Ok(row)
}

/// Stores `transition` of the ticket read as `before`. If anyone changed the ticket since it
/// was read, nothing is written and the caller gets a 409 `conflict`.
pub fn commit(
    conn: &mut DbConn,
    before: &TicketRow,
    transition: &Transition,
    by: Author,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<TicketRow> {
    let mut row = before.clone();
    row.set_state(&transition.ticket);
    let changed = diesel::update(
        tickets::table
            .filter(tickets::id.eq(before.id))
            .filter(tickets::version.eq(before.version)),
    )
    .set(&row)
    .execute(conn)?;
    if changed == 0 {
        return Err(AppError::conflict(
            "conflict",
            "工单已被他人处理，请刷新后重试",
        ));
    }
    record(conn, Some(before), &row, &transition.events, by, sla, now)?;
    Ok(row)
}

/// Moves only the sweeper's next look (nothing happened to the ticket, so its version stays).
pub fn reschedule(
    conn: &mut DbConn,
    t: &Ticket,
    next_check_at: Option<NaiveDateTime>,
) -> AppResult<()> {
    diesel::update(
        tickets::table
            .filter(tickets::id.eq(t.id))
            .filter(tickets::version.eq(t.version)),
    )
    .set(tickets::next_check_at.eq(next_check_at))
    .execute(conn)?;
    Ok(())
}

/// The timeline events of a stored change, their outbox rows, the ticket's facts, its ledger
/// entries and, when it has just closed, its callback.
fn record(
    conn: &mut DbConn,
    before: Option<&TicketRow>,
    t: &TicketRow,
    events: &[Event],
    by: Author,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<()> {
    for e in events {
        let event_id: i64 = diesel::insert_into(ticket_events::table)
            .values(NewTicketEvent {
                ticket_id: t.id,
                actor_id: by.id,
                actor_role: by.role,
                action: e.kind,
                level: e.level,
                status_before: e.status_before,
                status_after: t.status,
                level_after: t.level,
                reason: e.reason.clone(),
                note: e.note.clone(),
                internal: e.internal,
                created_at: now.naive_utc(),
            })
            .returning(ticket_events::id)
            .get_result(conn)?;
        crate::notify::enqueue_for_event(
            conn,
            &crate::notify::EventCtx {
                ticket: t,
                event_id,
                kind: e.kind,
                actor_id: by.id,
                actor_role: by.role,
                level_before: e.level,
                reason: e.reason.as_deref(),
                internal: e.internal,
                now,
            },
        )?;
    }
    crate::service::stats::facts::refresh(conn, t)?;
    crate::service::callbacks::on_change(conn, before, t, events, sla, now)?;
    // Live updates: announced with this transaction, delivered only if it commits.
    crate::live::ticket_changed(t);
    Ok(())
}
