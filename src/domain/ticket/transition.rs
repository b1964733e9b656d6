//! Every change to a ticket, in one function: a person's action or an effect of the SLA
//! sweeper goes in, the new state and its timeline event come out, or a refusal that says what
//! is allowed instead. Pure: storing the result is the commit path's job.

use chrono::{DateTime, Duration, Utc};

use super::deadlines::Deadlines;
use super::kinds::{Action, ClosedBy, EscalationReason, EventKind, Level, Status, SystemReason};
use super::rules::{self, DisputeOutcome, Relation};
use super::state::{NewCall, Ticket};
use crate::domain::ids::UserId;

/// Which of a level's two clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockName {
    Acknowledge,
    Resolve,
}

/// A change asked of a ticket: by a person (the first twelve) or by the SLA sweeper.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Acknowledge {
        note: Option<String>,
    },
    Comment {
        note: String,
        internal: bool,
    },
    /// The assignee has been checked to be active staff of the accountable unit.
    Assign {
        assignee: Option<UserId>,
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
    /// Recorded on the timeline; the phone itself is read by the caller.
    RevealPhone,
    WaitOnResident {
        note: String,
    },
    /// A clock is about to run out: tell the accountable level once.
    Warn(ClockName),
    /// A clock ran out: call the ticket up, or at the street mark it overdue.
    Breach(ClockName),
    /// Nobody confirmed a resolution in time.
    AutoClose,
    /// The pause cap ran out: the settle clock runs again.
    ResumeAfterPauseCap,
}

impl Command {
    /// The person's action this command is, `None` for the sweeper's effects.
    pub fn action(&self) -> Option<Action> {
        Some(match self {
            Command::Acknowledge { .. } => Action::Acknowledge,
            Command::Comment { .. } => Action::Comment,
            Command::Assign { .. } => Action::Assign,
            Command::Resolve { .. } => Action::Resolve,
            Command::Escalate { .. } => Action::Escalate,
            Command::Decline { .. } => Action::Decline,
            Command::Return { .. } => Action::Return,
            Command::Confirm { .. } => Action::Confirm,
            Command::Dispute { .. } => Action::Dispute,
            Command::Withdraw { .. } => Action::Withdraw,
            Command::RevealPhone => Action::RevealPhone,
            Command::WaitOnResident { .. } => Action::WaitOnResident,
            Command::Warn(_)
            | Command::Breach(_)
            | Command::AutoClose
            | Command::ResumeAfterPauseCap => return None,
        })
    }
}

/// Who gives a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A person, standing towards the ticket as [`rules::relation`] says.
    Person(Relation),
    /// The SLA sweeper.
    System,
}

/// A timeline entry: what happened, at which level, from which status.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    /// The level the event happened at (before any move).
    pub level: Level,
    /// `None` for the call itself.
    pub status_before: Option<Status>,
    /// A coded reason (escalation, system reason), a decline's reason, `user:ID` (assign) or
    /// `rating:N` (confirm).
    pub reason: Option<String>,
    pub note: Option<String>,
    /// Staff only: residents never see it.
    pub internal: bool,
}

/// The ticket after a command, and what the timeline records of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub ticket: Ticket,
    pub events: Vec<Event>,
}

/// Why a command was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This actor may never give this command.
    Forbidden,
    /// Not in the ticket's present state; `allowed` is what the actor may do now.
    NotAllowed {
        status: Status,
        level: Level,
        action: Action,
        allowed: Vec<Action>,
    },
    /// A sweeper effect that is not (or no longer) due.
    NotDue,
}

/// The sweeper's effect due on a ticket at `now`, if any.
pub fn due_effect(t: &Ticket, sla: &dyn Deadlines, now: DateTime<Utc>) -> Option<Command> {
    let now = now.naive_utc();
    if t.status == Status::Acknowledged && t.paused_at.is_some() {
        return t
            .next_check_at
            .is_some_and(|c| now >= c)
            .then_some(Command::ResumeAfterPauseCap);
    }
    let (due, warned, clock) = match t.status {
        Status::Open => (t.ack_due_at?, t.ack_warned, ClockName::Acknowledge),
        Status::Acknowledged => (t.resolve_due_at?, t.resolve_warned, ClockName::Resolve),
        Status::Resolved => {
            let resolved = t.resolved_at?;
            return (now >= resolved + sla.auto_close_after()).then_some(Command::AutoClose);
        }
        Status::Closed | Status::Declined | Status::Withdrawn => return None,
    };
    if now >= due {
        (!t.overdue).then_some(Command::Breach(clock))
    } else if !warned && t.next_check_at.is_some_and(|c| now >= c) {
        Some(Command::Warn(clock))
    } else {
        None
    }
}

/// When the sweeper should look again at a ticket that had nothing due although it was
/// scheduled (warned already, clock moved): never sooner than a second from now, so a stale
/// schedule cannot make it spin.
pub fn next_look(
    t: &Ticket,
    sla: &dyn Deadlines,
    now: DateTime<Utc>,
) -> Option<chrono::NaiveDateTime> {
    let mut fixed = t.clone();
    fixed.schedule(sla);
    if fixed.next_check_at == t.next_check_at {
        fixed
            .next_check_at
            .map(|n| n.max(now.naive_utc() + Duration::seconds(1)))
    } else {
        fixed.next_check_at
    }
}

/// A new call, open at the compound with its clocks running from `now`, and its `create` entry.
pub fn call(c: NewCall, sla: &dyn Deadlines, now: DateTime<Utc>) -> Transition {
    let ticket = Ticket::call(c, sla, now);
    Transition {
        events: vec![Event {
            kind: EventKind::Create,
            level: ticket.level,
            status_before: None,
            reason: None,
            note: None,
            internal: false,
        }],
        ticket,
    }
}

/// Applies `cmd` by `actor` to `t` as of `now`.
pub fn apply(
    t: &Ticket,
    actor: Actor,
    cmd: Command,
    sla: &dyn Deadlines,
    now: DateTime<Utc>,
) -> Result<Transition, Refusal> {
    match (actor, cmd.action()) {
        (Actor::Person(relation), Some(action)) => {
            let f = t.facts();
            if !rules::relation_may(relation, action) {
                return Err(Refusal::Forbidden);
            }
            if !rules::state_allows(&f, relation, action, now) {
                return Err(Refusal::NotAllowed {
                    status: t.status,
                    level: t.level,
                    action,
                    allowed: rules::allowed_actions(&f, relation, now),
                });
            }
            Ok(finish(
                t,
                person(t, relation, action, cmd, sla, now),
                sla,
                now,
            ))
        }
        (Actor::System, None) => {
            if due_effect(t, sla, now).as_ref() != Some(&cmd) {
                return Err(Refusal::NotDue);
            }
            Ok(finish(t, system(t, cmd, sla, now), sla, now))
        }
        _ => Err(Refusal::Forbidden),
    }
}

/// The changed ticket and the event, before the bookkeeping every change shares.
struct Change {
    ticket: Ticket,
    kind: EventKind,
    reason: Option<String>,
    note: Option<String>,
    internal: bool,
}

fn finish(before: &Ticket, c: Change, sla: &dyn Deadlines, now: DateTime<Utc>) -> Transition {
    let mut ticket = c.ticket;
    ticket.schedule(sla);
    ticket.updated_at = now.naive_utc();
    ticket.version = before.version + 1;
    Transition {
        ticket,
        events: vec![Event {
            kind: c.kind,
            level: before.level,
            status_before: Some(before.status),
            reason: c.reason,
            note: c.note,
            internal: c.internal,
        }],
    }
}

fn person(
    old: &Ticket,
    relation: Relation,
    action: Action,
    cmd: Command,
    sla: &dyn Deadlines,
    now: DateTime<Utc>,
) -> Change {
    let mut t = old.clone();
    let ts = now.naive_utc();
    let mut reason: Option<String> = None;
    let mut internal = false;
    let note = match cmd {
        Command::Acknowledge { note } => {
            t.status = Status::Acknowledged;
            t.level_acknowledged_at = Some(ts);
            t.acknowledged_at.get_or_insert(ts);
            note
        }
        Command::Comment { note, internal: i } => {
            internal = i && relation == Relation::Accountable;
            if relation == Relation::Owner && t.paused_at.is_some() {
                // The resident answered: the settle clock runs again.
                t.resume(sla, now);
                reason = Some(SystemReason::ClockResumed.as_str().into());
            }
            Some(note)
        }
        Command::WaitOnResident { note } => {
            t.paused_at = Some(ts);
            Some(note)
        }
        Command::Assign { assignee, handler } => {
            t.assignee_id = assignee;
            t.assigned_handler = handler.clone();
            reason = assignee.map(|a| format!("user:{a}"));
            handler
        }
        Command::Resolve { note } => {
            t.paused_at = None;
            t.status = Status::Resolved;
            t.resolved_at = Some(ts);
            t.resolution_note = Some(note.clone());
            t.acknowledged_at.get_or_insert(ts);
            t.level_acknowledged_at.get_or_insert(ts);
            Some(note)
        }
        Command::Escalate { reason: r, note } => {
            // state_allows checked that a level above exists.
            if let Some(up) = t.level.up() {
                t.escalation_count += 1;
                t.arrive_at(up, sla, now);
            }
            reason = Some(r.as_str().into());
            Some(note)
        }
        Command::Decline { reason: r } => {
            t.paused_at = None;
            t.status = Status::Declined;
            t.declined_at = Some(ts);
            t.decline_reason = Some(r.clone());
            reason = Some(r);
            None
        }
        Command::Return { note } => {
            // state_allows checked that a level below exists and this level has not returned.
            match t.level {
                Level::Community => t.returned_by_community = true,
                Level::Street => t.returned_by_street = true,
                Level::Compound => {}
            }
            if let Some(down) = t.level.down() {
                t.arrive_at(down, sla, now);
            }
            Some(note)
        }
        Command::Confirm { rating, comment } => {
            t.status = Status::Closed;
            t.closed_at = Some(ts);
            t.closed_by = Some(ClosedBy::Resident);
            t.rating = Some(rating);
            t.rating_comment = comment.clone();
            reason = Some(format!("rating:{rating}"));
            comment
        }
        Command::Dispute { note } => {
            match rules::dispute_outcome(&old.facts(), old.disputes_at_level) {
                DisputeOutcome::ReopenSameLevel => {
                    t.status = Status::Open;
                    t.disputes_at_level += 1;
                    t.resolved_at = None;
                    t.level_acknowledged_at = None;
                    t.paused_at = None;
                    t.restart_clocks(sla, now);
                }
                DisputeOutcome::CallUp(up) => {
                    t.escalation_count += 1;
                    t.arrive_at(up, sla, now);
                    reason = Some(SystemReason::ResidentDispute.as_str().into());
                }
            }
            note
        }
        Command::Withdraw { note } => {
            t.status = Status::Withdrawn;
            t.closed_at = Some(ts);
            t.closed_by = Some(ClosedBy::Resident);
            note
        }
        Command::RevealPhone => {
            internal = true;
            None
        }
        Command::Warn(_)
        | Command::Breach(_)
        | Command::AutoClose
        | Command::ResumeAfterPauseCap => None,
    };
    Change {
        ticket: t,
        kind: EventKind::from(action),
        reason,
        note,
        internal,
    }
}

fn system(old: &Ticket, cmd: Command, sla: &dyn Deadlines, now: DateTime<Utc>) -> Change {
    let mut t = old.clone();
    let (kind, reason, internal) = match cmd {
        Command::Warn(clock) => {
            let reason = match clock {
                ClockName::Acknowledge => {
                    t.ack_warned = true;
                    SystemReason::AcknowledgeClock
                }
                ClockName::Resolve => {
                    t.resolve_warned = true;
                    SystemReason::ResolveClock
                }
            };
            (EventKind::SlaWarning, Some(reason), true)
        }
        Command::Breach(clock) => {
            let reason = match clock {
                ClockName::Acknowledge => SystemReason::SlaBreachAcknowledge,
                ClockName::Resolve => SystemReason::SlaBreachResolve,
            };
            match t.level.up() {
                Some(up) => {
                    t.escalation_count += 1;
                    t.arrive_at(up, sla, now);
                    (EventKind::Escalate, Some(reason), false)
                }
                None => {
                    t.overdue = true;
                    (EventKind::Overdue, Some(reason), false)
                }
            }
        }
        Command::ResumeAfterPauseCap => {
            t.resume(sla, now);
            (
                EventKind::ClockResumed,
                Some(SystemReason::PauseCapReached),
                true,
            )
        }
        Command::AutoClose => {
            t.status = Status::Closed;
            t.closed_at = Some(now.naive_utc());
            t.closed_by = Some(ClosedBy::System);
            (EventKind::AutoClose, None, false)
        }
        // apply() sends only the sweeper's effects here.
        _ => (EventKind::Comment, None, true),
    };
    Change {
        ticket: t,
        kind,
        reason: reason.map(|r| r.as_str().to_string()),
        note: None,
        internal,
    }
}
