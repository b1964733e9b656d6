//! Every change to a ticket, in one function: a person's action or an effect of the SLA
//! sweeper goes in, the new state and its timeline event come out, or a refusal that says what
//! is allowed instead. Pure: storing the result is the commit path's job.

use chrono::{DateTime, Duration, Utc};

use super::deadlines::Deadlines;
use super::kinds::{Action, ClosedBy, EscalationReason, EventKind, Level, Status, SystemReason};
use super::rules::{self, DisputeOutcome, Relation};
use super::state::{NewCall, Ticket};
use crate::domain::ids::{UnitId, UserId};

/// Which of a level's two clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockName {
    Acknowledge,
    Resolve,
    /// A decline review's decision clock.
    Review,
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
    /// A resident confirms with a rating; the raising level confirms its own finding without.
    Confirm {
        rating: Option<i32>,
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
    /// The target has been checked to be an active compound of the ticket's community.
    Transfer {
        compound_id: UnitId,
        note: String,
    },
    Urge {
        note: String,
    },
    TakeOver {
        note: String,
    },
    RequestExtension {
        note: String,
        due_at: DateTime<Utc>,
    },
    ApproveExtension {
        note: Option<String>,
    },
    RejectExtension {
        note: String,
    },
    UpholdDecline {
        note: Option<String>,
    },
    OverturnDecline {
        note: Option<String>,
    },
    /// A clock is about to run out: tell the accountable level once.
    Warn(ClockName),
    /// A clock ran out: call the ticket up, or at the street mark it overdue.
    Breach(ClockName),
    /// Nobody confirmed a resolution in time.
    AutoClose,
    /// The pause cap ran out: the settle clock runs again.
    ResumeAfterPauseCap,
    /// The level above let an extension request's decision clock run out.
    ExtensionUnanswered,
    /// A callback reached its end (`outcome`: the verdict, or `unreachable`). `confirm`: the
    /// resident said an auto-closed ticket was settled, which makes it closed by callback.
    CallbackDone {
        outcome: String,
        note: Option<String>,
        confirm: bool,
    },
    /// A callback found the resident unsatisfied or pressed: handled again at the level that
    /// closed it, or one up if that level already had a dispute.
    CallbackReopen {
        outcome: String,
        note: Option<String>,
    },
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
            Command::Transfer { .. } => Action::Transfer,
            Command::Urge { .. } => Action::Urge,
            Command::TakeOver { .. } => Action::TakeOver,
            Command::RequestExtension { .. } => Action::RequestExtension,
            Command::ApproveExtension { .. } => Action::ApproveExtension,
            Command::RejectExtension { .. } => Action::RejectExtension,
            Command::UpholdDecline { .. } => Action::UpholdDecline,
            Command::OverturnDecline { .. } => Action::OverturnDecline,
            Command::Warn(_)
            | Command::Breach(_)
            | Command::AutoClose
            | Command::ResumeAfterPauseCap
            | Command::ExtensionUnanswered
            | Command::CallbackDone { .. }
            | Command::CallbackReopen { .. } => return None,
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
    /// Staff recording a callback; the callback service has checked who they are.
    Callback,
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
    /// Allowed, but not again before `until` (urging is limited per level and hour).
    TooSoon {
        action: Action,
        until: DateTime<Utc>,
    },
    /// The command's values do not fit the ticket (e.g. an extension beyond the limit).
    Invalid { code: &'static str, message: String },
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
        Status::DeclineReview => {
            let due = t.decide_due_at?;
            return (now >= due && !t.overdue).then_some(Command::Breach(ClockName::Review));
        }
        Status::Acknowledged
            if t.resolve_due_at.is_some_and(|d| now < d)
                && t.extension_due_at.is_some()
                && !t.extension_lapsed
                && t.decide_due_at.is_some_and(|d| now >= d) =>
        {
            return Some(Command::ExtensionUnanswered);
        }
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
            if !rules::relation_may_on(&f, relation, action) {
                return Err(Refusal::Forbidden);
            }
            if let (Command::Urge { .. }, Some(by)) = (&cmd, relation.staff_level(t.level)) {
                if let Some(until) = rules::urge_wait(&f, by, now) {
                    return Err(Refusal::TooSoon { action, until });
                }
            }
            if !rules::state_allows(&f, relation, action, now) {
                return Err(Refusal::NotAllowed {
                    status: t.status,
                    level: t.level,
                    action,
                    allowed: rules::allowed_actions(&f, relation, now),
                });
            }
            check_values(t, relation, &cmd, sla)?;
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
        (Actor::Callback, None) => {
            let callback_cmd = matches!(
                cmd,
                Command::CallbackDone { .. } | Command::CallbackReopen { .. }
            );
            if !callback_cmd {
                return Err(Refusal::Forbidden);
            }
            // Reopened (by a dispute) since it closed: the callback has nothing left to act on.
            if t.closed_by.is_none() {
                return Err(Refusal::NotDue);
            }
            Ok(finish(t, callback(t, cmd, sla, now), sla, now))
        }
        _ => Err(Refusal::Forbidden),
    }
}

/// What the rules check about a command's values once it is allowed at all.
fn check_values(
    t: &Ticket,
    relation: Relation,
    cmd: &Command,
    sla: &dyn Deadlines,
) -> Result<(), Refusal> {
    match cmd {
        Command::Confirm { rating: None, .. } if relation == Relation::Owner => {
            Err(Refusal::Invalid {
                code: "missing_field",
                message: "请为办理结果评分 rating（1–5）".into(),
            })
        }
        Command::Transfer { compound_id, .. } if *compound_id == t.compound_id => {
            Err(Refusal::Invalid {
                code: "invalid_compound",
                message: "工单已在该小区，请选择另一个小区".into(),
            })
        }
        Command::RequestExtension { due_at, .. } => {
            let Some(due) = t.resolve_due_at.map(|d| d.and_utc()) else {
                return Err(Refusal::Invalid {
                    code: "invalid_due_at",
                    message: "工单没有办结时限，无需延期".into(),
                });
            };
            let clock = sla
                .clocks(
                    t.level,
                    t.category_id,
                    t.urgency,
                    t.level_entered_at.and_utc(),
                )
                .clock;
            let latest = sla.latest_extension(clock, due);
            if *due_at <= due {
                Err(Refusal::Invalid {
                    code: "invalid_due_at",
                    message: "申请的新期限须晚于当前办结期限".into(),
                })
            } else if *due_at > latest {
                Err(Refusal::Invalid {
                    code: "invalid_due_at",
                    message: format!(
                        "申请的新期限最多比当前期限晚 {} 个工作日",
                        rules::MAX_EXTENSION_WORKING_DAYS
                    ),
                })
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// The changed ticket and the event, before the bookkeeping every change shares.
struct Change {
    ticket: Ticket,
    kind: EventKind,
    reason: Option<String>,
    note: Option<String>,
    internal: bool,
    /// Where the event happened when that is not the ticket's level before the change.
    level: Option<Level>,
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
            level: c.level.unwrap_or(before.level),
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
            t.declined_at = Some(ts);
            t.decline_reason = Some(r.clone());
            match t.level.up() {
                // 不予受理复核: the level above checks a compound's or community's decline.
                Some(up) => t.arrive_for_review(up, sla, now),
                None => {
                    // The street's decline is final: nobody above reviews it.
                    t.status = Status::Declined;
                    t.closed_at = Some(ts);
                    t.closed_by = Some(ClosedBy::Declined);
                }
            }
            reason = Some(r);
            None
        }
        Command::Return { note } => {
            if old.status == Status::DeclineReview {
                reason = Some(SystemReason::DeclineOverturned.as_str().into());
            }
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
            if relation == Relation::Owner {
                t.closed_by = Some(ClosedBy::Resident);
                t.rating = rating;
                t.rating_comment = comment.clone();
                reason = rating.map(|r| format!("rating:{r}"));
            } else {
                // The raising level confirms its own finding: no satisfaction rating.
                t.closed_by = Some(ClosedBy::RaisingLevel);
            }
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
            t.closed_by = Some(ClosedBy::Withdrawn);
            note
        }
        Command::RevealPhone => {
            internal = true;
            None
        }
        Command::Transfer { compound_id, note } => {
            reason = Some(format!("unit:{}", t.compound_id));
            t.compound_id = compound_id;
            t.transfer_count += 1;
            t.arrive_at(Level::Compound, sla, now);
            Some(note)
        }
        Command::Urge { note } => {
            t.urge_count += 1;
            match relation.staff_level(old.level) {
                Some(Level::Community) => t.urged_by_community_at = Some(ts),
                Some(Level::Street) => t.urged_by_street_at = Some(ts),
                _ => {}
            }
            Some(note)
        }
        Command::TakeOver { note } => {
            if let Some(to) = relation.staff_level(old.level) {
                t.arrive_at(to, sla, now);
            }
            Some(note)
        }
        Command::RequestExtension { note, due_at } => {
            t.extension_due_at = Some(due_at.naive_utc());
            t.extension_reason = Some(note.clone());
            t.extension_requested_at = Some(ts);
            t.extension_lapsed = false;
            if let Some(up) = t.level.up() {
                t.decide_due_at = Some(
                    sla.clocks(up, t.category_id, t.urgency, now)
                        .decide_due
                        .naive_utc(),
                );
            }
            reason = Some(rfc3339(due_at));
            internal = true;
            Some(note)
        }
        Command::ApproveExtension { note } => {
            if let Some(due) = t.extension_due_at {
                t.resolve_due_at = Some(due);
                t.resolve_warned = false;
                t.extensions_granted += 1;
                reason = Some(rfc3339(due.and_utc()));
            }
            t.clear_extension();
            t.decide_due_at = None;
            note
        }
        Command::RejectExtension { note } => {
            t.clear_extension();
            t.decide_due_at = None;
            internal = true;
            Some(note)
        }
        Command::UpholdDecline { note } => {
            t.status = Status::Declined;
            t.decide_due_at = None;
            // The resident's dispute window runs from the reviewed decision.
            t.declined_at = Some(ts);
            t.closed_at = Some(ts);
            t.closed_by = Some(ClosedBy::Declined);
            reason = old.decline_reason.clone();
            note
        }
        Command::OverturnDecline { note } => {
            t.arrive_at(old.level, sla, now);
            note
        }
        Command::Warn(_)
        | Command::Breach(_)
        | Command::AutoClose
        | Command::ResumeAfterPauseCap
        | Command::ExtensionUnanswered
        | Command::CallbackDone { .. }
        | Command::CallbackReopen { .. } => None,
    };
    Change {
        ticket: t,
        kind: EventKind::from(action),
        reason,
        note,
        internal,
        level: None,
    }
}

fn system(old: &Ticket, cmd: Command, sla: &dyn Deadlines, now: DateTime<Utc>) -> Change {
    let mut t = old.clone();
    let mut level = None;
    let (kind, reason, internal) = match cmd {
        Command::Warn(clock) => {
            let reason = match clock {
                ClockName::Acknowledge => {
                    t.ack_warned = true;
                    SystemReason::AcknowledgeClock
                }
                ClockName::Resolve | ClockName::Review => {
                    t.resolve_warned = true;
                    SystemReason::ResolveClock
                }
            };
            (EventKind::SlaWarning, Some(reason), true)
        }
        Command::Breach(ClockName::Review) => match t.level.up() {
            // The reviewing level let its decision clock run out: the review goes up.
            Some(up) => {
                t.arrive_for_review(up, sla, now);
                (
                    EventKind::Escalate,
                    Some(SystemReason::SlaBreachReview),
                    false,
                )
            }
            None => {
                t.overdue = true;
                (
                    EventKind::Overdue,
                    Some(SystemReason::SlaBreachReview),
                    false,
                )
            }
        },
        Command::ExtensionUnanswered => {
            t.extension_lapsed = true;
            level = t.level.up();
            (EventKind::ExtensionUnanswered, None, true)
        }
        Command::Breach(clock) => {
            let reason = match clock {
                ClockName::Acknowledge => SystemReason::SlaBreachAcknowledge,
                ClockName::Resolve | ClockName::Review => SystemReason::SlaBreachResolve,
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
            t.closed_by = Some(ClosedBy::Auto);
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
        level,
    }
}

/// A callback's effect on the closed ticket.
fn callback(old: &Ticket, cmd: Command, sla: &dyn Deadlines, now: DateTime<Utc>) -> Change {
    let mut t = old.clone();
    match cmd {
        Command::CallbackDone {
            outcome,
            note,
            confirm,
        } => {
            if confirm && t.closed_by == Some(ClosedBy::Auto) {
                t.closed_by = Some(ClosedBy::Callback);
            }
            Change {
                ticket: t,
                kind: EventKind::Callback,
                reason: Some(outcome),
                note,
                internal: false,
                level: None,
            }
        }
        Command::CallbackReopen { outcome, note } => {
            // The level that closed it answers again, unless it already had a dispute there.
            let target = match (old.disputes_at_level > 0, old.level.up()) {
                (true, Some(up)) => up,
                _ => old.level,
            };
            t.closed_at = None;
            t.closed_by = None;
            t.rating = None;
            t.rating_comment = None;
            if target == old.level {
                t.status = Status::Open;
                t.disputes_at_level += 1;
                t.resolved_at = None;
                t.resolution_note = None;
                t.level_acknowledged_at = None;
                t.declined_at = None;
                t.decline_reason = None;
                t.paused_at = None;
                t.restart_clocks(sla, now);
            } else {
                t.escalation_count += 1;
                t.arrive_at(target, sla, now);
            }
            Change {
                ticket: t,
                kind: EventKind::CallbackReopen,
                reason: Some(outcome),
                note,
                internal: false,
                level: None,
            }
        }
        // apply() sends only the callback's effects here.
        _ => Change {
            ticket: t,
            kind: EventKind::Comment,
            reason: None,
            note: None,
            internal: true,
            level: None,
        },
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
