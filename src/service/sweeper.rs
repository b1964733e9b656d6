//! The SLA sweeper: warns once per clock, calls up a ticket whose clock ran out (at the street,
//! marks it overdue once), and closes resolved tickets nobody confirmed. What is due and what it
//! does are the domain's rules (`ticket::due_effect`, `ticket::apply`); each change is stored by
//! the commit path. Safe with several instances: each ticket is claimed (`load_skip_locked!`)
//! and every change is conditional on the version it read, so nothing happens twice.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::models::TicketRow;
use crate::db::schema::tickets;
use crate::db::{write_tx, Db, DbConn};
use crate::domain::ticket::{self, Actor, Command, EventKind};
use crate::error::AppResult;
use crate::load_skip_locked;
use crate::service::sla::SlaEngine;
use crate::service::stats::facts;
use crate::service::tickets::commit::{self, Author};

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub examined: usize,
    pub warned: usize,
    pub escalated: usize,
    pub marked_overdue: usize,
    pub auto_closed: usize,
    pub resumed: usize,
}

impl SweepReport {
    fn add(&mut self, o: &SweepReport) {
        self.examined += o.examined;
        self.warned += o.warned;
        self.escalated += o.escalated;
        self.marked_overdue += o.marked_overdue;
        self.auto_closed += o.auto_closed;
        self.resumed += o.resumed;
    }

    fn count(&mut self, kind: EventKind) {
        match kind {
            EventKind::SlaWarning => self.warned += 1,
            EventKind::Escalate => self.escalated += 1,
            EventKind::Overdue => self.marked_overdue += 1,
            EventKind::AutoClose => self.auto_closed += 1,
            EventKind::ClockResumed => self.resumed += 1,
            _ => {}
        }
    }
}

/// Candidates: tickets whose next look is due, oldest first; the index on `next_check_at` makes
/// this cost what is due, not what is open.
fn candidates(conn: &mut DbConn, now: DateTime<Utc>, limit: i64) -> AppResult<Vec<i64>> {
    Ok(tickets::table
        .filter(tickets::next_check_at.le(now.naive_utc()))
        .order(tickets::next_check_at.asc())
        .select(tickets::id)
        .limit(limit)
        .load(conn)?)
}

/// Reads the tickets `ids` for update, in the order given, leaving out those another sweeper
/// holds and those no longer due: one statement for a chunk.
fn claim(conn: &mut DbConn, ids: &[i64], now: DateTime<Utc>) -> AppResult<Vec<TicketRow>> {
    let due = tickets::id
        .eq_any(ids)
        .and(tickets::next_check_at.le(now.naive_utc()));
    let rows: Vec<TicketRow> = load_skip_locked!(
        conn,
        tickets::table.filter(due).select(TicketRow::as_select()),
        load
    )?;
    let mut by_id: HashMap<i64, TicketRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// What a sweep does with one claimed ticket: the domain's rule applied in memory, shared by the
/// chunk and by the ticket-by-ticket fallback so both decide alike.
enum Decision {
    /// Nothing is due: look again then (the ticket's id and the version read).
    Later(i64, i32, Option<NaiveDateTime>),
    /// This change is due (boxed: a transition holds the whole ticket).
    Change(Box<ticket::Transition>),
    /// The rule named an effect and then refused it: a bug in the rules, logged; the sweep goes
    /// on with the other tickets.
    Refused,
}

fn decide(row: &TicketRow, sla: &SlaEngine, now: DateTime<Utc>) -> Decision {
    let t = row.to_domain();
    let Some(effect) = ticket::due_effect(&t, sla, now) else {
        return Decision::Later(row.id, row.version, ticket::next_look(&t, sla, now));
    };
    let effect_name = effect_name(&effect);
    match ticket::apply(&t, Actor::System, effect, sla, now) {
        Ok(transition) => Decision::Change(Box::new(transition)),
        Err(refusal) => {
            tracing::error!(
                ticket_id = row.id,
                effect = effect_name,
                ?refusal,
                "sweeper effect refused"
            );
            Decision::Refused
        }
    }
}

/// Counts and logs the events a stored change made.
fn report_change(report: &mut SweepReport, row: &TicketRow, transition: &ticket::Transition) {
    for e in &transition.events {
        report.count(e.kind);
        tracing::info!(ticket_id = row.id, action = e.kind.as_str(), reason = ?e.reason, "SLA sweeper");
    }
}

/// Stores what [`decide`] said for one claimed ticket on its own (the fallback of a failed chunk).
fn sweep_ticket(
    conn: &mut DbConn,
    row: &TicketRow,
    sla: &SlaEngine,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> AppResult<()> {
    match decide(row, sla, now) {
        Decision::Later(id, version, next) => commit::reschedule(conn, id, version, next),
        Decision::Change(transition) => {
            commit::commit(conn, row, &transition, Author::SYSTEM, sla, now)?;
            report_change(report, row, &transition);
            Ok(())
        }
        Decision::Refused => Ok(()),
    }
}

fn effect_name(c: &Command) -> &'static str {
    match c {
        Command::Warn(_) => "warn",
        Command::Breach(_) => "breach",
        Command::AutoClose => "auto_close",
        Command::ResumeAfterPauseCap => "resume",
        Command::ExtensionUnanswered => "extension_unanswered",
        _ => "action",
    }
}

/// One sweep as of `now`, at most `batch` tickets, [`crate::db::Engine::sweep_chunk`] tickets
/// per write transaction (see [`sweep_ids`]).
pub fn sweep_once(
    conn: &mut DbConn,
    sla: &SlaEngine,
    now: DateTime<Utc>,
    batch: i64,
) -> AppResult<SweepReport> {
    let ids = candidates(conn, now, batch)?;
    let mut report = SweepReport::default();
    for chunk in ids.chunks(conn.engine().sweep_chunk()) {
        report.add(&write_tx(conn, |c| sweep_ids(c, chunk, sla, now))?);
    }
    Ok(report)
}

/// The same through `db`: each chunk is one `Db::write` (on SQLite a job of the writer thread,
/// so the sweep queues with the requests instead of fighting them for the lock).
pub async fn sweep(
    db: &Db,
    sla: &Arc<SlaEngine>,
    now: DateTime<Utc>,
    batch: i64,
) -> AppResult<SweepReport> {
    let reload = sla.clone();
    let ids = db
        .run(move |c| {
            // Policies and calendars an admin changed on another instance arrive here.
            reload.reload(c)?;
            candidates(c, now, batch)
        })
        .await?;
    let mut report = SweepReport::default();
    for chunk in ids.chunks(db.engine().sweep_chunk()) {
        let (chunk, sla) = (chunk.to_vec(), sla.clone());
        report.add(&db.write(move |c| sweep_ids(c, &chunk, &sla, now)).await?);
    }
    Ok(report)
}

/// Sweeps `ids` inside the caller's write transaction: claims them with one statement, applies
/// the domain's rule to each in memory, then stores the chunk's changes together
/// ([`commit::commit_many`]: a few multi-row statements) in one savepoint. Should that fail, the
/// savepoint is undone and the chunk is swept again ticket by ticket, each in its own savepoint,
/// so that one ticket whose change fails is rolled back alone, logged, and left for the next
/// sweep. The changed tickets' facts are rewritten together at the end.
pub fn sweep_ids(
    conn: &mut DbConn,
    ids: &[i64],
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<SweepReport> {
    let rows = claim(conn, ids, now)?;
    let mut moved = Vec::new();
    let mut changes = Vec::new();
    for row in &rows {
        match decide(row, sla, now) {
            Decision::Later(id, version, next) => moved.push((id, version, next)),
            Decision::Change(transition) => changes.push((row, *transition)),
            Decision::Refused => {}
        }
    }
    facts::deferred(conn, |conn| {
        let together = conn.transaction(|c| {
            for &(id, version, next) in &moved {
                commit::reschedule(c, id, version, next)?;
            }
            let pairs: Vec<(&TicketRow, &ticket::Transition)> =
                changes.iter().map(|(r, t)| (*r, t)).collect();
            commit::commit_many(c, &pairs, Author::SYSTEM, sla, now)
        });
        let mut report = SweepReport {
            examined: ids.len(),
            ..SweepReport::default()
        };
        match together {
            Ok(_) => {
                for (row, transition) in &changes {
                    report_change(&mut report, row, transition);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, tickets = rows.len(), "SLA sweeper: chunk failed, sweeping its tickets one by one");
                for row in &rows {
                    let mut one = SweepReport::default();
                    match conn.transaction(|c| sweep_ticket(c, row, sla, now, &mut one)) {
                        Ok(()) => report.add(&one),
                        Err(e) => {
                            tracing::error!(ticket_id = row.id, error = %e, "SLA sweeper: ticket skipped")
                        }
                    }
                }
            }
        }
        Ok(report)
    })
}
