//! The SLA sweeper: warns once per clock, calls up a ticket whose clock ran out (at the street,
//! marks it overdue once), and closes resolved tickets nobody confirmed. Safe with several
//! instances: each ticket is claimed with a row lock (`FOR UPDATE SKIP LOCKED`) on PostgreSQL,
//! and every change is conditional on the version it read, so nothing happens twice.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::models::TicketRow;
use crate::db::schema::tickets;
use crate::db::{write_tx, DbConn};
use crate::domain::ticket::{Level, Status};
use crate::error::AppResult;
use crate::service::sla::SlaEngine;
use crate::service::tickets::{arrive_at_level, record, resume, set_schedule};

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

/// The effect due on one ticket at `now`, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Warn {
        clock: &'static str,
    },
    Breach {
        reason: &'static str,
    },
    AutoClose,
    /// The pause cap ran out: the settle clock runs again.
    Resume,
}

fn due_effect(t: &TicketRow, sla: &SlaEngine, now: DateTime<Utc>) -> Option<Effect> {
    let now = now.naive_utc();
    let status = Status::parse(&t.status)?;
    if status == Status::Acknowledged && t.paused_at.is_some() {
        return t
            .next_check_at
            .is_some_and(|c| now >= c)
            .then_some(Effect::Resume);
    }
    let (due, warned, clock, reason) = match status {
        Status::Open => (
            t.ack_due_at?,
            t.ack_warned,
            "acknowledge",
            "sla_breach_acknowledge",
        ),
        Status::Acknowledged => (
            t.resolve_due_at?,
            t.resolve_warned,
            "resolve",
            "sla_breach_resolve",
        ),
        Status::Resolved => {
            let resolved = t.resolved_at?;
            return (now >= resolved + sla.auto_close_after).then_some(Effect::AutoClose);
        }
        _ => return None,
    };
    if now >= due {
        if t.overdue {
            return None;
        }
        Some(Effect::Breach { reason })
    } else if !warned && t.next_check_at.is_some_and(|c| now >= c) {
        Some(Effect::Warn { clock })
    } else {
        None
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

/// Reads the ticket for update; `None` when another sweeper holds it or it is no longer due.
fn claim(conn: &mut DbConn, id: i64, now: DateTime<Utc>) -> AppResult<Option<TicketRow>> {
    let due = now.naive_utc();
    let due_now = tickets::id.eq(id).and(tickets::next_check_at.le(due));
    Ok(match conn {
        DbConn::Pg(c) => tickets::table
            .filter(due_now)
            .select(TicketRow::as_select())
            .for_update()
            .skip_locked()
            .first(c)
            .optional()?,
        // SQLite: the write transaction (BEGIN IMMEDIATE) already excludes other writers.
        DbConn::Sqlite(c) => tickets::table
            .filter(due_now)
            .select(TicketRow::as_select())
            .first(c)
            .optional()?,
    })
}

fn apply(
    conn: &mut DbConn,
    old: TicketRow,
    effect: Effect,
    sla: &SlaEngine,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> AppResult<()> {
    let mut t = old.clone();
    let status = Status::parse(&old.status).unwrap_or(Status::Closed);
    let level = Level::parse(&old.level).unwrap_or(Level::Street);
    let (action, reason, internal): (&str, Option<&str>, bool) = match effect {
        Effect::Warn { clock } => {
            if clock == "acknowledge" {
                t.ack_warned = true;
            } else {
                t.resolve_warned = true;
            }
            report.warned += 1;
            ("sla_warning", Some(clock), true)
        }
        Effect::Breach { reason } => match level.up() {
            Some(up) => {
                t.escalation_count += 1;
                arrive_at_level(&mut t, up, sla, now);
                report.escalated += 1;
                ("escalate", Some(reason), false)
            }
            None => {
                t.overdue = true;
                report.marked_overdue += 1;
                ("overdue", Some(reason), false)
            }
        },
        Effect::Resume => {
            resume(&mut t, sla, now);
            report.resumed += 1;
            ("clock_resumed", Some("pause_cap_reached"), true)
        }
        Effect::AutoClose => {
            t.status = Status::Closed.as_str().into();
            t.closed_at = Some(now.naive_utc());
            t.closed_by = Some("system".into());
            report.auto_closed += 1;
            ("auto_close", None, false)
        }
    };
    set_schedule(&mut t, sla);
    t.updated_at = now.naive_utc();
    t.version = old.version + 1;
    let changed = diesel::update(
        tickets::table
            .filter(tickets::id.eq(old.id))
            .filter(tickets::version.eq(old.version)),
    )
    .set(&t)
    .execute(conn)?;
    if changed == 1 {
        record(
            conn,
            &t,
            None,
            action,
            Some(status),
            level,
            reason,
            None,
            internal,
            now,
        )?;
        tracing::info!(ticket_id = t.id, action, reason = ?reason, "SLA sweeper");
    }
    Ok(())
}

/// One sweep as of `now`, at most `batch` tickets.
pub fn sweep_once(
    conn: &mut DbConn,
    sla: &SlaEngine,
    now: DateTime<Utc>,
    batch: i64,
) -> AppResult<SweepReport> {
    let mut report = SweepReport::default();
    for id in candidates(conn, now, batch)? {
        report.examined += 1;
        write_tx(conn, |c| {
            let Some(t) = claim(c, id, now)? else {
                return Ok(());
            };
            match due_effect(&t, sla, now) {
                Some(effect) => apply(c, t, effect, sla, now, &mut report),
                None => {
                    // Nothing due (e.g. warned already, clock moved): look again when it is.
                    let mut fixed = t.clone();
                    set_schedule(&mut fixed, sla);
                    if fixed.next_check_at == t.next_check_at {
                        fixed.next_check_at = fixed
                            .next_check_at
                            .map(|n| n.max(now.naive_utc() + Duration::seconds(1)));
                    }
                    diesel::update(
                        tickets::table
                            .filter(tickets::id.eq(t.id))
                            .filter(tickets::version.eq(t.version)),
                    )
                    .set(tickets::next_check_at.eq(fixed.next_check_at))
                    .execute(c)?;
                    Ok(())
                }
            }
        })?;
    }
    Ok(report)
}
