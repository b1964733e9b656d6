//! The accountability ledger (责任账本): per compound and community, what reached it and how it
//! answered — so that calling up, declining or letting a clock run out is seen against the unit
//! that was accountable at the time, not the compound the ticket came from. Each stored change
//! of a ticket yields its ledger entries here; the commit path stores them in the same
//! transaction.

use chrono::{DateTime, Utc};

use crate::domain::callback::CallbackVerdict;
use crate::domain::ids::UnitId;
use crate::domain::ticket::{Event, EventKind, Level, Status, SystemReason, Ticket};
use crate::text_enum;

text_enum! {
    /// One column of the ledger. The order is the ledger's column order.
    pub enum LedgerKind {
        /// The ticket arrived for the unit to handle: the call, a call-up, a return, a transfer,
        /// a take-over, an overturned decline, a dispute that moved it, a callback reopening one
        /// level up.
        Received = ("received", "收到"),
        AcknowledgedOnTime = ("acknowledged_on_time", "按时受理"),
        AcknowledgedLate = ("acknowledged_late", "超时受理"),
        ResolvedOnTime = ("resolved_on_time", "按时办结"),
        ResolvedLate = ("resolved_late", "超时办结"),
        /// Called up by the unit (reason: the escalation reason) or by the sweeper.
        CalledUp = ("called_up", "上报"),
        /// Of those, called up by the sweeper because the unit did not answer in time.
        CalledUpBySweeper = ("called_up_by_sweeper", "超时被自动上报"),
        TakenOver = ("taken_over", "被提级领办"),
        ReturnsReceived = ("returns_received", "被退回"),
        TransfersOut = ("transfers_out", "转出"),
        TransfersIn = ("transfers_in", "转入"),
        Declines = ("declines", "不予受理"),
        DeclinesUpheld = ("declines_upheld", "不予受理被维持"),
        DeclinesOverturned = ("declines_overturned", "不予受理被撤销"),
        /// As reviewer: a decline review whose decision clock ran out.
        DeclineReviewsUnanswered = ("decline_reviews_unanswered", "复核超时未决定"),
        UrgesReceived = ("urges_received", "被催办"),
        ExtensionsRequested = ("extensions_requested", "申请延期"),
        ExtensionsGranted = ("extensions_granted", "获批延期"),
        /// As approver: an extension request left unanswered past its decision clock.
        ExtensionsUnanswered = ("extensions_unanswered", "延期申请未批复"),
        Disputes = ("disputes", "居民有异议"),
        /// The resident confirmed with a rating (the unit that resolved it).
        Rated = ("rated", "居民评价"),
        /// Of those, rated 4 or 5.
        RatedSatisfied = ("rated_satisfied", "居民满意"),
        CallbacksSatisfied = ("callbacks_satisfied", "回访满意"),
        CallbacksBasicallySatisfied = ("callbacks_basically_satisfied", "回访基本满意"),
        CallbacksUnsatisfied = ("callbacks_unsatisfied", "回访不满意"),
        CallbacksUnreachable = ("callbacks_unreachable", "回访无法联系"),
        /// A resolution disputed by the resident, or a closure reopened after a callback.
        Reopenings = ("reopenings", "重新办理"),
    }
}

impl LedgerKind {
    /// The ledger column of a callback's outcome (`None`: reached nobody = unreachable).
    pub fn of_callback(verdict: Option<CallbackVerdict>) -> LedgerKind {
        match verdict {
            Some(CallbackVerdict::Satisfied) => LedgerKind::CallbacksSatisfied,
            Some(CallbackVerdict::BasicallySatisfied) => LedgerKind::CallbacksBasicallySatisfied,
            Some(CallbackVerdict::Unsatisfied) => LedgerKind::CallbacksUnsatisfied,
            None => LedgerKind::CallbacksUnreachable,
        }
    }
}

/// One fact a unit answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub unit_id: UnitId,
    pub level: Level,
    pub kind: LedgerKind,
    /// For `called_up`: the escalation reason, or the sweeper's breach reason.
    pub reason: Option<String>,
}

fn entry(t: &Ticket, level: Level, kind: LedgerKind) -> Entry {
    Entry {
        unit_id: t.unit_at(level),
        level,
        kind,
        reason: None,
    }
}

/// What the ledger records of one stored change: `before` (none for the call), `after`, the
/// change's timeline events, and `decliner` — the level whose decline a review decided (read
/// from the timeline by the caller only for `uphold_decline`, `overturn_decline` and a `return`
/// from review). Only compound and community units keep a ledger; the street's own entries are
/// kept too, for the street's view of itself.
pub fn entries(
    before: Option<&Ticket>,
    after: &Ticket,
    events: &[Event],
    decliner: Option<Level>,
    now: DateTime<Utc>,
) -> Vec<Entry> {
    let mut out = Vec::new();
    let now = now.naive_utc();
    let Some(b) = before else {
        if events.iter().any(|e| e.kind == EventKind::Create) {
            out.push(entry(after, after.level, LedgerKind::Received));
        }
        return out;
    };
    let received = |out: &mut Vec<Entry>| out.push(entry(after, after.level, LedgerKind::Received));
    let decliner_level = decliner.or(b.level.down());
    for e in events {
        let here = e.level;
        match e.kind {
            EventKind::Acknowledge | EventKind::Resolve => {
                if b.level_acknowledged_at.is_none() {
                    let on_time = b.ack_due_at.is_none_or(|d| now <= d);
                    out.push(entry(
                        b,
                        here,
                        if on_time {
                            LedgerKind::AcknowledgedOnTime
                        } else {
                            LedgerKind::AcknowledgedLate
                        },
                    ));
                }
                if e.kind == EventKind::Resolve {
                    let on_time = b.resolve_due_at.is_none_or(|d| now <= d);
                    out.push(entry(
                        b,
                        here,
                        if on_time {
                            LedgerKind::ResolvedOnTime
                        } else {
                            LedgerKind::ResolvedLate
                        },
                    ));
                }
            }
            EventKind::Escalate => {
                let reason = e.reason.clone();
                if reason.as_deref() == Some(SystemReason::SlaBreachReview.as_str()) {
                    // A reviewing level that let its decision clock run out; the review goes up.
                    out.push(entry(b, here, LedgerKind::DeclineReviewsUnanswered));
                    continue;
                }
                let by_sweeper = [
                    SystemReason::SlaBreachAcknowledge.as_str(),
                    SystemReason::SlaBreachResolve.as_str(),
                ]
                .contains(&reason.as_deref().unwrap_or_default());
                out.push(Entry {
                    reason,
                    ..entry(b, here, LedgerKind::CalledUp)
                });
                if by_sweeper {
                    out.push(entry(b, here, LedgerKind::CalledUpBySweeper));
                }
                received(&mut out);
            }
            EventKind::Return => {
                if b.status == Status::DeclineReview {
                    if let Some(l) = decliner_level {
                        out.push(entry(b, l, LedgerKind::DeclinesOverturned));
                    }
                }
                out.push(entry(after, after.level, LedgerKind::ReturnsReceived));
                received(&mut out);
            }
            EventKind::Transfer => {
                out.push(entry(b, Level::Compound, LedgerKind::TransfersOut));
                out.push(entry(after, Level::Compound, LedgerKind::TransfersIn));
                received(&mut out);
            }
            EventKind::TakeOver => {
                out.push(entry(b, b.level, LedgerKind::TakenOver));
                received(&mut out);
            }
            EventKind::Decline => out.push(entry(b, here, LedgerKind::Declines)),
            EventKind::UpholdDecline => {
                if let Some(l) = decliner_level {
                    out.push(entry(b, l, LedgerKind::DeclinesUpheld));
                }
            }
            EventKind::OverturnDecline => {
                if let Some(l) = decliner_level {
                    out.push(entry(b, l, LedgerKind::DeclinesOverturned));
                }
                received(&mut out);
            }
            EventKind::Urge => out.push(entry(b, b.level, LedgerKind::UrgesReceived)),
            EventKind::RequestExtension => {
                out.push(entry(b, here, LedgerKind::ExtensionsRequested))
            }
            EventKind::ApproveExtension => {
                out.push(entry(b, b.level, LedgerKind::ExtensionsGranted))
            }
            EventKind::ExtensionUnanswered => {
                if let Some(up) = b.level.up() {
                    out.push(entry(b, up, LedgerKind::ExtensionsUnanswered));
                }
            }
            EventKind::Dispute => {
                out.push(entry(b, here, LedgerKind::Disputes));
                if b.status == Status::Resolved {
                    out.push(entry(b, here, LedgerKind::Reopenings));
                }
                if after.level != b.level {
                    received(&mut out);
                }
            }
            EventKind::Confirm => {
                if let Some(r) = after.rating {
                    out.push(entry(b, b.level, LedgerKind::Rated));
                    if r >= 4 {
                        out.push(entry(b, b.level, LedgerKind::RatedSatisfied));
                    }
                }
            }
            EventKind::CallbackReopen => {
                out.push(entry(b, b.level, LedgerKind::Reopenings));
                if after.level != b.level {
                    received(&mut out);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ticket::{self, Actor, ClosedBy, Command, EscalationReason, Relation};
    use chrono::Duration;

    // The property tests' clocks: four-hour answers, three-day settlements, one-day decisions.
    use crate::domain::ticket::tests::{new_ticket, start as t0, FixedClocks as Fixed};

    fn call() -> Ticket {
        new_ticket()
    }

    fn kinds(v: &[Entry]) -> Vec<(i64, LedgerKind)> {
        v.iter().map(|e| (e.unit_id.0, e.kind)).collect()
    }

    fn step(
        t: &Ticket,
        actor: Actor,
        cmd: Command,
        at: DateTime<Utc>,
    ) -> (Ticket, Vec<(i64, LedgerKind)>, Vec<Entry>) {
        let tr = ticket::apply(t, actor, cmd, &Fixed, at).unwrap();
        let e = entries(Some(t), &tr.ticket, &tr.events, None, at);
        (tr.ticket, kinds(&e), e)
    }

    #[test]
    fn the_call_is_received_by_its_compound() {
        let create = Event {
            kind: EventKind::Create,
            level: Level::Compound,
            status_before: None,
            reason: None,
            note: None,
            internal: false,
        };
        let e = entries(None, &call(), &[create], None, t0());
        assert_eq!(kinds(&e), vec![(3, LedgerKind::Received)]);
    }

    #[test]
    fn late_answers_sweeper_call_ups_and_staff_call_ups_land_on_the_accountable_unit() {
        let t = call();
        // The compound lets its four-hour clock run out: the sweeper calls it up.
        let (t, k, e) = step(
            &t,
            Actor::System,
            Command::Breach(ticket::ClockName::Acknowledge),
            t0() + Duration::hours(5),
        );
        assert_eq!(
            k,
            vec![
                (3, LedgerKind::CalledUp),
                (3, LedgerKind::CalledUpBySweeper),
                (2, LedgerKind::Received)
            ]
        );
        assert_eq!(e[0].reason.as_deref(), Some("sla_breach_acknowledge"));
        // The community answers in time, then calls up with a reason.
        let (t, k, _) = step(
            &t,
            Actor::Person(Relation::Accountable),
            Command::Acknowledge { note: None },
            t0() + Duration::hours(6),
        );
        assert_eq!(k, vec![(2, LedgerKind::AcknowledgedOnTime)]);
        let (t, k, e) = step(
            &t,
            Actor::Person(Relation::Accountable),
            Command::Escalate {
                reason: EscalationReason::NeedsEnforcement,
                note: "需要执法".into(),
            },
            t0() + Duration::hours(7),
        );
        assert_eq!(
            k,
            vec![(2, LedgerKind::CalledUp), (1, LedgerKind::Received)]
        );
        assert_eq!(e[0].reason.as_deref(), Some("needs_enforcement"));
        // The street resolves late without acknowledging first: both verdicts, both late.
        let (_, k, _) = step(
            &t,
            Actor::Person(Relation::Accountable),
            Command::Resolve {
                note: "已处理".into(),
            },
            t0() + Duration::days(4),
        );
        assert_eq!(
            k,
            vec![
                (1, LedgerKind::AcknowledgedLate),
                (1, LedgerKind::ResolvedLate)
            ]
        );
    }

    #[test]
    fn declines_are_charged_to_the_declining_unit_whatever_the_review_says() {
        let t = call();
        let (t, k, _) = step(
            &t,
            Actor::Person(Relation::Accountable),
            Command::Decline {
                reason: "不属于物业范围".into(),
            },
            t0() + Duration::hours(1),
        );
        assert_eq!(k, vec![(3, LedgerKind::Declines)]);
        assert_eq!(t.status, Status::DeclineReview);
        let (upheld, k, _) = step(
            &t,
            Actor::Person(Relation::Accountable),
            Command::UpholdDecline { note: None },
            t0() + Duration::hours(2),
        );
        assert_eq!(k, vec![(3, LedgerKind::DeclinesUpheld)]);
        assert_eq!(upheld.closed_by, Some(ClosedBy::Declined));
        let (_, k, _) = step(
            &t,
            Actor::Person(Relation::Accountable),
            Command::OverturnDecline { note: None },
            t0() + Duration::hours(2),
        );
        assert_eq!(
            k,
            vec![
                (3, LedgerKind::DeclinesOverturned),
                (2, LedgerKind::Received)
            ]
        );
    }

    /// A callback that found the resident unsatisfied.
    fn unsatisfied() -> Command {
        Command::CallbackReopen {
            outcome: "unsatisfied".into(),
            note: None,
        }
    }

    /// `t` resolved at `at` and, nobody confirming, closed by the sweeper eight days later.
    fn auto_closed(t: &Ticket, at: DateTime<Utc>) -> (Ticket, Ticket) {
        let (resolved, _, _) = step(
            t,
            Actor::Person(Relation::Accountable),
            Command::Resolve {
                note: "已修好".into(),
            },
            at,
        );
        let (closed, _, _) = step(
            &resolved,
            Actor::System,
            Command::AutoClose,
            at + Duration::days(8),
        );
        assert_eq!(closed.closed_by, Some(ClosedBy::Auto));
        (resolved, closed)
    }

    #[test]
    fn a_callback_reopening_counts_against_the_closing_unit() {
        let (_, t) = auto_closed(&call(), t0() + Duration::hours(1));
        let (t, k, _) = step(&t, Actor::Callback, unsatisfied(), t0() + Duration::days(9));
        assert_eq!(k, vec![(3, LedgerKind::Reopenings)]);
        assert_eq!((t.status, t.level), (Status::Open, Level::Compound));
        assert_eq!(t.closed_by, None);
        assert_eq!(t.disputes_at_level, 1);
        // Closed again at the compound, which now had a dispute: the next reopening goes up.
        let (_, t) = auto_closed(&t, t0() + Duration::days(9) + Duration::hours(1));
        let (t, k, _) = step(
            &t,
            Actor::Callback,
            unsatisfied(),
            t0() + Duration::days(18),
        );
        assert_eq!(
            k,
            vec![(3, LedgerKind::Reopenings), (2, LedgerKind::Received)]
        );
        assert_eq!((t.status, t.level), (Status::Open, Level::Community));
    }

    #[test]
    fn a_callback_confirms_an_auto_closure_and_cannot_act_on_a_reopened_ticket() {
        let (t, closed) = auto_closed(&call(), t0() + Duration::hours(1));
        let (confirmed, k, _) = step(
            &closed,
            Actor::Callback,
            Command::CallbackDone {
                outcome: "satisfied".into(),
                note: None,
                confirm: true,
            },
            t0() + Duration::days(9),
        );
        assert!(
            k.is_empty(),
            "the callback's verdict is recorded by the callback service"
        );
        assert_eq!(confirmed.closed_by, Some(ClosedBy::Callback));
        assert_eq!(confirmed.status, Status::Closed);
        assert_eq!(
            ticket::apply(
                &t,
                Actor::Callback,
                unsatisfied(),
                &Fixed,
                t0() + Duration::days(9)
            ),
            Err(ticket::Refusal::NotDue)
        );
    }
}
