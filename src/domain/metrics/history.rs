//! What one ticket's history says about it: its stays at each level, and the verdicts of
//! docs/metrics.md that its state and its events decide.

use chrono::NaiveDateTime;

use super::secs;
use crate::domain::role::ActorRole;
use crate::domain::ticket::{ClosedBy, EventKind, Level, Status, SystemReason};

/// The columns of a ticket the statistics need.
#[derive(Debug, Clone)]
pub struct StatTicket {
    pub id: i64,
    pub status: Status,
    pub level: Level,
    pub street_id: i64,
    pub community_id: i64,
    pub compound_id: i64,
    pub category_id: i64,
    pub escalation_count: i32,
    pub rating: Option<i32>,
    pub level_entered_at: NaiveDateTime,
    pub ack_due_at: Option<NaiveDateTime>,
    pub resolve_due_at: Option<NaiveDateTime>,
    pub paused_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub closed_by: Option<ClosedBy>,
}

/// The columns of a timeline event the statistics need.
#[derive(Debug, Clone)]
pub struct StatEvent {
    pub ticket_id: i64,
    pub action: EventKind,
    pub level: Level,
    pub level_after: Level,
    pub status_before: Option<Status>,
    pub reason: Option<String>,
    pub actor_role: ActorRole,
    pub created_at: NaiveDateTime,
}

/// The actions that shape the per-level history; comments, assignments, warnings and the like
/// need not be loaded.
pub const HISTORY_ACTIONS: [EventKind; 11] = [
    EventKind::Create,
    EventKind::TakeOver,
    EventKind::Transfer,
    EventKind::OverturnDecline,
    EventKind::Escalate,
    EventKind::Return,
    EventKind::Dispute,
    EventKind::Acknowledge,
    EventKind::Resolve,
    EventKind::Overdue,
    EventKind::CallbackReopen,
];

const BREACH_ACK: SystemReason = SystemReason::SlaBreachAcknowledge;
const BREACH_RESOLVE: SystemReason = SystemReason::SlaBreachResolve;

/// Pairs tickets (ascending id) with their events (ascending ticket id, then event id).
pub fn pair_events(
    rows: Vec<StatTicket>,
    events: Vec<StatEvent>,
) -> Vec<(StatTicket, Vec<StatEvent>)> {
    let mut out = Vec::with_capacity(rows.len());
    let mut it = events.into_iter().peekable();
    for t in rows {
        while it.peek().is_some_and(|e| e.ticket_id < t.id) {
            it.next();
        }
        let mut mine = Vec::new();
        while let Some(e) = it.next_if(|e| e.ticket_id == t.id) {
            mine.push(e);
        }
        out.push((t, mine));
    }
    out
}

/// One stay of a ticket at a level: from an arrival event (create, escalate, return, dispute
/// that moved it) to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub level: Level,
    pub arrived: NaiveDateTime,
    /// First acknowledge or resolve at this level during the stay.
    pub answered: Option<NaiveDateTime>,
    /// First resolve at this level during the stay.
    pub resolved: Option<NaiveDateTime>,
    /// The answer clock ran out before any answer (the sweeper called it up or marked it overdue).
    pub missed_answer: bool,
}

/// The stays of a ticket, from its events in order.
pub fn visits(events: &[StatEvent]) -> Vec<Visit> {
    let mut out: Vec<Visit> = Vec::new();
    for e in events {
        let level = Some(e.level);
        let after = Some(e.level_after);
        let moved = level != after;
        let arrival = match e.action {
            // A take-over, a transfer and an overturned decline start a level's clocks afresh.
            EventKind::Create
            | EventKind::TakeOver
            | EventKind::Transfer
            | EventKind::OverturnDecline => true,
            EventKind::Escalate
            | EventKind::Return
            | EventKind::Dispute
            | EventKind::CallbackReopen => moved,
            _ => false,
        };
        if matches!(e.action, EventKind::Escalate | EventKind::Overdue)
            && e.reason.as_deref() == Some(BREACH_ACK.as_str())
        {
            if let Some(v) = out.last_mut() {
                if v.answered.is_none() {
                    v.missed_answer = true;
                }
            }
        }
        if arrival {
            if let Some(l) = after {
                out.push(Visit {
                    level: l,
                    arrived: e.created_at,
                    answered: None,
                    resolved: None,
                    missed_answer: false,
                });
            }
            continue;
        }
        if let Some(v) = out.last_mut() {
            if level == Some(v.level) {
                match e.action {
                    EventKind::Acknowledge => {
                        v.answered.get_or_insert(e.created_at);
                    }
                    EventKind::Resolve => {
                        v.answered.get_or_insert(e.created_at);
                        v.resolved.get_or_insert(e.created_at);
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// What a ticket's history and state say about it, apart from the clock: the verdicts that can
/// still flip when a running deadline passes are stored with that deadline. This is what the
/// statistics facts store per ticket whenever the ticket changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// 响应率 verdict of the stays whose clock has finished.
    pub response: Option<bool>,
    /// The answer deadline of the current, unanswered stay of an open ticket: once it has
    /// passed, the response verdict is "late" whatever `response` says.
    pub response_due: Option<NaiveDateTime>,
    /// 解决率 verdict without the running settle clock.
    pub resolution: Option<bool>,
    /// The running (not paused) settle deadline of an active ticket not yet failed: once it has
    /// passed, the resolution verdict is "not met".
    pub resolution_due: Option<NaiveDateTime>,
    /// created → first answer at any level.
    pub first_answer_secs: Option<i64>,
    /// created → the resolution of a closed ticket.
    pub settle_secs: Option<i64>,
    pub visits: Vec<Visit>,
}

impl Outcome {
    /// The response verdict at `now`.
    pub fn response_at(&self, now: NaiveDateTime) -> Option<bool> {
        if self.response_due.is_some_and(|d| now > d) {
            Some(false)
        } else {
            self.response
        }
    }

    /// The resolution verdict at `now`.
    pub fn resolution_at(&self, now: NaiveDateTime) -> Option<bool> {
        if self.resolution_due.is_some_and(|d| now > d) {
            Some(false)
        } else {
            self.resolution
        }
    }
}

/// Applies the definitions of docs/metrics.md to one ticket, leaving out only the clock.
pub fn outcome(t: &StatTicket, events: &[StatEvent]) -> Outcome {
    let vs = visits(events);
    let status = Some(t.status);
    let level = Some(t.level);

    // 响应率: every stay whose answer clock has finished was answered in time.
    let mut judged = 0;
    let mut all_met = true;
    let mut response_due = None;
    let last = vs.len().saturating_sub(1);
    for (i, v) in vs.iter().enumerate() {
        // The stored deadline belongs to the last stay, unless a reopen restarted the clock.
        let current = i == last && Some(v.level) == level && t.level_entered_at == v.arrived;
        let verdict = if v.missed_answer {
            Some(false)
        } else if let Some(a) = v.answered {
            Some(!(current && t.ack_due_at.is_some_and(|d| a > d)))
        } else {
            if i == last && Some(v.level) == level && status == Some(Status::Open) {
                // Late once this passes, even before the sweeper notices.
                response_due = t.ack_due_at;
            }
            None
        };
        if let Some(ok) = verdict {
            judged += 1;
            all_met &= ok;
        }
    }
    let response = (judged > 0).then_some(all_met);

    // 解决率: resolved and closed without a reopen or a missed settle deadline.
    let reopened = events.iter().any(|e| {
        (e.action == EventKind::Dispute && e.status_before == Some(Status::Resolved))
            || e.action == EventKind::CallbackReopen
    });
    let breached = events
        .iter()
        .any(|e| e.reason.as_deref() == Some(BREACH_RESOLVE.as_str()));
    let late_resolution = match (t.resolved_at, t.resolve_due_at) {
        (Some(r), Some(d)) => r > d,
        _ => false,
    };
    let failed = reopened || breached || late_resolution;
    let (resolution, resolution_due) = match status {
        // Closed by nobody's word: resolved, but unconfirmed — not counted either way.
        Some(Status::Closed) if t.closed_by == Some(ClosedBy::Auto) => (None, None),
        Some(Status::Closed) => (Some(!failed && t.resolved_at.is_some()), None),
        Some(Status::Resolved) => (failed.then_some(false), None),
        Some(Status::Open) | Some(Status::Acknowledged) => (
            failed.then_some(false),
            if failed || t.paused_at.is_some() {
                None
            } else {
                t.resolve_due_at
            },
        ),
        _ => (None, None),
    };

    let closed = status == Some(Status::Closed);
    Outcome {
        response,
        response_due,
        resolution,
        resolution_due,
        first_answer_secs: t.acknowledged_at.map(|a| secs(t.created_at, a)),
        settle_secs: if closed {
            t.resolved_at.map(|r| secs(t.created_at, r))
        } else {
            None
        },
        visits: vs,
    }
}

/// What one ticket contributes to each measure; `None` = not counted in that measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub response: Option<bool>,
    pub resolution: Option<bool>,
    pub satisfied: Option<bool>,
    pub settled_in_compound: Option<bool>,
    /// For closed tickets: confirmed by the resident, a callback or the raising level (not
    /// closed automatically).
    pub confirmed: Option<bool>,
    /// created → first answer at any level.
    pub first_answer_secs: Option<i64>,
    /// created → the resolution of a closed ticket.
    pub settle_secs: Option<i64>,
    pub visits: Vec<Visit>,
}

/// Applies the definitions of docs/metrics.md to one ticket at `now`.
pub fn judge(t: &StatTicket, events: &[StatEvent], now: NaiveDateTime) -> Judged {
    let o = outcome(t, events);
    let closed = t.status == Status::Closed;
    let unconfirmed = closed && t.closed_by == Some(ClosedBy::Auto);
    Judged {
        response: o.response_at(now),
        resolution: o.resolution_at(now),
        satisfied: t.rating.map(|r| r >= 4),
        settled_in_compound: (closed && !unconfirmed)
            .then_some(t.level == Level::Compound && t.escalation_count == 0),
        confirmed: closed.then_some(!unconfirmed),
        first_answer_secs: o.first_answer_secs,
        settle_secs: o.settle_secs,
        visits: o.visits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(h, m, 0))
            .expect("time")
    }

    fn ev(
        action: &str,
        level: &str,
        after: &str,
        reason: Option<&str>,
        t: NaiveDateTime,
    ) -> StatEvent {
        StatEvent {
            ticket_id: 1,
            action: EventKind::parse(action).expect("event kind"),
            level: Level::parse(level).expect("level"),
            level_after: Level::parse(after).expect("level"),
            status_before: None,
            reason: reason.map(str::to_string),
            actor_role: if reason.is_some() {
                ActorRole::System
            } else {
                ActorRole::CompoundStaff
            },
            created_at: t,
        }
    }

    fn ticket(status: &str, level: &str) -> StatTicket {
        StatTicket {
            id: 1,
            status: Status::parse(status).expect("status"),
            level: Level::parse(level).expect("level"),
            street_id: 1,
            community_id: 2,
            compound_id: 3,
            category_id: 1,
            escalation_count: 0,
            rating: None,
            level_entered_at: at(1, 0),
            ack_due_at: Some(at(5, 0)),
            resolve_due_at: Some(at(20, 0)),
            paused_at: None,
            created_at: at(1, 0),
            acknowledged_at: None,
            resolved_at: None,
            closed_at: None,
            closed_by: None,
        }
    }

    #[test]
    fn stays_follow_arrivals_and_answers_belong_to_their_level() {
        let events = vec![
            ev("create", "compound", "compound", None, at(1, 0)),
            ev("acknowledge", "compound", "compound", None, at(1, 10)),
            ev("escalate", "compound", "community", None, at(1, 20)),
            ev("return", "community", "compound", None, at(2, 0)),
            ev("resolve", "compound", "compound", None, at(2, 30)),
        ];
        let v = visits(&events);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].answered, Some(at(1, 10)));
        assert_eq!(v[1].level, Level::Community);
        assert_eq!(v[1].answered, None);
        assert_eq!(v[2].answered, Some(at(2, 30)));
        assert_eq!(v[2].resolved, Some(at(2, 30)));
    }

    #[test]
    fn a_breached_answer_clock_fails_the_response_and_a_running_one_is_not_counted() {
        let events = vec![
            ev("create", "compound", "compound", None, at(1, 0)),
            ev(
                "escalate",
                "compound",
                "community",
                Some(BREACH_ACK.as_str()),
                at(5, 1),
            ),
        ];
        let mut t = ticket("open", "community");
        t.level_entered_at = at(5, 1);
        t.ack_due_at = Some(at(9, 0));
        let j = judge(&t, &events, at(6, 0));
        assert_eq!(j.response, Some(false));
        assert_eq!(j.resolution, None, "still in time to settle");

        let fresh = [ev("create", "compound", "compound", None, at(1, 0))];
        let t = ticket("open", "compound");
        assert_eq!(judge(&t, &fresh, at(4, 0)).response, None);
        assert_eq!(
            judge(&t, &fresh, at(5, 1)).response,
            Some(false),
            "expired before the sweeper ran"
        );
    }

    #[test]
    fn a_late_answer_on_the_current_clock_fails() {
        let events = [
            ev("create", "compound", "compound", None, at(1, 0)),
            ev("acknowledge", "compound", "compound", None, at(5, 30)),
        ];
        let t = ticket("acknowledged", "compound");
        assert_eq!(judge(&t, &events, at(6, 0)).response, Some(false));
    }

    #[test]
    fn closed_tickets_judge_resolution_settlement_and_satisfaction() {
        let events = [
            ev("create", "compound", "compound", None, at(1, 0)),
            ev("resolve", "compound", "compound", None, at(2, 0)),
        ];
        let mut t = ticket("closed", "compound");
        t.acknowledged_at = Some(at(2, 0));
        t.resolved_at = Some(at(2, 0));
        t.rating = Some(4);
        let j = judge(&t, &events, at(23, 0));
        assert_eq!(j.response, Some(true));
        assert_eq!(j.resolution, Some(true));
        assert_eq!(j.satisfied, Some(true));
        assert_eq!(j.settled_in_compound, Some(true));
        assert_eq!(j.settle_secs, Some(3600));

        let mut reopened = events.to_vec();
        let mut d = ev("dispute", "compound", "compound", None, at(2, 10));
        d.status_before = Some(Status::Resolved);
        reopened.push(d);
        t.escalation_count = 1;
        let j = judge(&t, &reopened, at(23, 0));
        assert_eq!(j.resolution, Some(false));
        assert_eq!(j.settled_in_compound, Some(false));
    }
}
