//! The one path by which a ticket changes in the database. A transition from the domain is
//! stored with everything that must change with it, in the caller's transaction: the row
//! (only if nobody changed it since it was read), the timeline event(s), the notification
//! outbox rows and the dashboard's per-ticket facts. Staff and resident actions, the call
//! itself and the SLA sweeper all come through here.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::auth::AuthUser;
use crate::db::models::{NewTicketEvent, TicketContent, TicketRow, TicketState};
use crate::db::schema::tickets;
use crate::db::{dialect, DbConn};
use crate::domain::role::ActorRole;
use crate::domain::ticket::{Event, Transition};
use crate::error::{AppError, AppResult};
use crate::notify;
use crate::service::callbacks;
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
/// its id. `lookups` may already know what the caller read (its units' names).
pub fn insert_new(
    conn: &mut DbConn,
    content: TicketContent,
    call: &Transition,
    by: Author,
    lookups: notify::Lookups,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<TicketRow> {
    let mut row = TicketRow::new(&call.ticket, content, now.naive_utc());
    row.id = diesel::insert_into(tickets::table)
        .values(&row)
        .returning(tickets::id)
        .get_result(conn)?;
    record(
        conn,
        &[Stored {
            before: None,
            row: &row,
            events: &call.events,
        }],
        by,
        lookups,
        sla,
        now,
    )?;
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
    let row = update_row(conn, before, transition)?;
    record(
        conn,
        &[Stored {
            before: Some(before),
            row: &row,
            events: &transition.events,
        }],
        by,
        notify::Lookups::default(),
        sla,
        now,
    )?;
    Ok(row)
}

/// [`commit`] for many tickets at once (the sweeper's chunk): the same rows, with the events,
/// outbox rows and ledger entries of all of them written by a few multi-row statements and
/// recipients looked up once. One conflict fails them all (the caller's savepoint undoes the
/// lot).
pub fn commit_many(
    conn: &mut DbConn,
    changes: &[(&TicketRow, &Transition)],
    by: Author,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<Vec<TicketRow>> {
    let mut rows = Vec::with_capacity(changes.len());
    let mut updates = Vec::with_capacity(changes.len());
    for (before, transition) in changes {
        let (row, state) = next_row(before, transition);
        updates.push((state, before.id, before.version));
        rows.push(row);
    }
    if dialect::update_tickets_if_version(conn, updates)? != changes.len() {
        return Err(conflict());
    }
    let stored: Vec<Stored<'_>> = changes
        .iter()
        .zip(&rows)
        .map(|((before, transition), row)| Stored {
            before: Some(before),
            row,
            events: &transition.events,
        })
        .collect();
    record(conn, &stored, by, notify::Lookups::default(), sla, now)?;
    Ok(rows)
}

/// The row's UPDATE, conditional on the version read.
fn update_row(
    conn: &mut DbConn,
    before: &TicketRow,
    transition: &Transition,
) -> AppResult<TicketRow> {
    let (row, state) = next_row(before, transition);
    let changed = dialect::update_ticket_if_version(conn, state, before.id, before.version)?;
    if changed == 0 {
        return Err(conflict());
    }
    Ok(row)
}

/// The row after `transition`, and the state columns its UPDATE writes.
fn next_row(before: &TicketRow, transition: &Transition) -> (TicketRow, TicketState) {
    let mut row = before.clone();
    let state = row.set_state(&transition.ticket);
    (row, state)
}

/// Someone changed the ticket since it was read.
fn conflict() -> AppError {
    AppError::conflict("conflict", "工单已被他人处理，请刷新后重试")
}

/// Moves only the sweeper's next look of the ticket `id` read at `version` (nothing happened
/// to the ticket, so its version stays).
pub fn reschedule(
    conn: &mut DbConn,
    id: i64,
    version: i32,
    next_check_at: Option<NaiveDateTime>,
) -> AppResult<()> {
    dialect::update_ticket_if_version(conn, tickets::next_check_at.eq(next_check_at), id, version)?;
    Ok(())
}

/// A stored row and the events that changed it.
struct Stored<'a> {
    before: Option<&'a TicketRow>,
    row: &'a TicketRow,
    events: &'a [Event],
}

/// The timeline events of stored changes, their outbox rows, the tickets' facts, their ledger
/// entries and, for those just closed, their callbacks.
fn record(
    conn: &mut DbConn,
    stored: &[Stored<'_>],
    by: Author,
    mut lookups: notify::Lookups,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let events: Vec<NewTicketEvent> = stored
        .iter()
        .flat_map(|s| {
            s.events.iter().map(move |e| NewTicketEvent {
                ticket_id: s.row.id,
                actor_id: by.id,
                actor_role: by.role,
                action: e.kind,
                level: e.level,
                status_before: e.status_before,
                status_after: s.row.status,
                level_after: s.row.level,
                reason: e.reason.clone(),
                note: e.note.clone(),
                internal: e.internal,
                created_at: now.naive_utc(),
            })
        })
        .collect();
    let mut event_ids = dialect::insert_events_returning_ids(conn, &events)?.into_iter();
    if stored.len() > 1 {
        let residents: Vec<i64> = stored.iter().map(|s| s.row.resident_id).collect();
        lookups.prefetch_users(conn, &residents)?;
    }
    let mut outbox = Vec::new();
    for s in stored {
        for e in s.events {
            let event_id = event_ids
                .next()
                .ok_or_else(|| anyhow::anyhow!("fewer event ids than events"))?;
            notify::plan_event(
                conn,
                &mut lookups,
                &notify::EventCtx {
                    ticket: s.row,
                    event_id,
                    kind: e.kind,
                    actor_id: by.id,
                    actor_role: by.role,
                    level_before: e.level,
                    reason: e.reason.as_deref(),
                    internal: e.internal,
                    now,
                },
                &mut outbox,
            )?;
        }
    }
    notify::write_outbox(conn, &outbox)?;
    for s in stored {
        match s.before {
            Some(_) => crate::service::stats::facts::refresh(conn, s.row)?,
            None => crate::service::stats::facts::insert_new(conn, s.row, &events)?,
        }
    }
    let changed: Vec<callbacks::Changed<'_>> = stored
        .iter()
        .map(|s| callbacks::Changed {
            before: s.before,
            after: s.row,
            events: s.events,
        })
        .collect();
    callbacks::on_changes(conn, &changed, sla, now)?;
    // Live updates: announced with this transaction, delivered only if it commits.
    for s in stored {
        crate::live::ticket_changed(s.row);
    }
    Ok(())
}
