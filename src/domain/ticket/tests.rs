//! Property tests of the transition function: random sequences of commands by every kind of
//! actor, with time moving, against the invariants the chain must keep.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::domain::ids::{UnitId, UserId};
use crate::domain::role::Role;
use crate::domain::sla::ClockKind;

/// Fixed-length clocks on a wall clock: enough to exercise every rule without a calendar.
pub(crate) struct FixedClocks;

impl Deadlines for FixedClocks {
    fn clocks(&self, _: Level, _: i64, _: Urgency, start: DateTime<Utc>) -> Clocks {
        Clocks {
            ack_due: start + Duration::hours(4),
            ack_warn: start + Duration::hours(3),
            resolve_due: start + Duration::days(3),
            resolve_warn: start + Duration::days(2),
            decide_due: start + Duration::days(1),
            clock: ClockKind::Calendar,
        }
    }
    fn latest_extension(&self, _: ClockKind, due: DateTime<Utc>) -> DateTime<Utc> {
        due + Duration::days(10)
    }
    fn pause_extension(
        &self,
        _: ClockKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        already: Duration,
    ) -> (Duration, Duration) {
        let left = (Duration::days(3) - already).max(Duration::zero());
        let ext = (to - from).min(left).max(Duration::zero());
        (ext, already + ext)
    }
    fn extend(&self, _: ClockKind, due: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
        due + by
    }
    fn pause_ends(&self, _: ClockKind, from: DateTime<Utc>, already: Duration) -> DateTime<Utc> {
        from + (Duration::days(3) - already).max(Duration::zero())
    }
    fn auto_close_after(&self) -> Duration {
        Duration::days(7)
    }
}

const STREET: UnitId = UnitId(1);
const COMMUNITY: UnitId = UnitId(2);
const COMPOUND: UnitId = UnitId(3);
const OTHER_COMPOUND: UnitId = UnitId(4);
const RESIDENT: UserId = UserId(10);

pub(crate) fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .expect("valid time")
}

pub(crate) fn new_ticket() -> Ticket {
    call(
        NewCall {
            street_id: STREET,
            community_id: COMMUNITY,
            compound_id: COMPOUND,
            resident_id: RESIDENT,
            category_id: 1,
            urgency: Urgency::Normal,
            source: Source::App,
            level: Level::Compound,
            identity_hidden: false,
        },
        &FixedClocks,
        start(),
    )
    .ticket
}

/// Who tries a command: the resident, staff of each level, or the sweeper.
#[derive(Debug, Clone, Copy)]
enum Who {
    Resident,
    Staff(Level),
    Sweeper,
}

fn actor(t: &Ticket, who: Who) -> Actor {
    match who {
        Who::Resident => Actor::Person(relation(Role::Resident, RESIDENT, None, &t.units())),
        Who::Staff(level) => Actor::Person(relation(
            level.staff_role(),
            UserId(100),
            Some(t.unit_at(level)),
            &t.units(),
        )),
        Who::Sweeper => Actor::System,
    }
}

fn command_for(i: u8, t: &Ticket, sla: &FixedClocks, now: DateTime<Utc>) -> Command {
    let note = || format!("说明{i}");
    match i % 21 {
        0 => Command::Acknowledge { note: None },
        1 => Command::Comment {
            note: note(),
            internal: i.is_multiple_of(2),
        },
        2 => Command::Assign {
            assignee: None,
            handler: Some("物业".into()),
        },
        3 => Command::Resolve { note: note() },
        4 => Command::Escalate {
            reason: EscalationReason::NeedsResources,
            note: note(),
        },
        5 => Command::Decline { reason: note() },
        6 => Command::Return { note: note() },
        7 => Command::Confirm {
            rating: Some(i32::from(i % 5) + 1),
            comment: None,
        },
        8 => Command::Dispute { note: None },
        9 => Command::Withdraw { note: None },
        10 => Command::RevealPhone,
        11 => Command::WaitOnResident { note: note() },
        12 => Command::Transfer {
            compound_id: if t.compound_id == COMPOUND {
                OTHER_COMPOUND
            } else {
                COMPOUND
            },
            note: note(),
        },
        13 => Command::Urge { note: note() },
        14 => Command::TakeOver { note: note() },
        15 => Command::RequestExtension {
            note: note(),
            due_at: t
                .resolve_due_at
                .map_or(now, |d| d.and_utc() + Duration::days(i64::from(i % 12))),
        },
        16 => Command::ApproveExtension { note: None },
        17 => Command::RejectExtension { note: note() },
        18 => Command::UpholdDecline { note: None },
        19 => Command::OverturnDecline { note: None },
        // The sweeper's effect that is due now, else a warning that is not.
        _ => due_effect(t, sla, now).unwrap_or(Command::Warn(ClockName::Resolve)),
    }
}

fn who_of(j: u8) -> Who {
    match j % 5 {
        0 => Who::Resident,
        1 => Who::Staff(Level::Compound),
        2 => Who::Staff(Level::Community),
        3 => Who::Staff(Level::Street),
        _ => Who::Sweeper,
    }
}

/// How many staff units stand accountable for the ticket now.
fn accountable_units(t: &Ticket) -> usize {
    [Level::Compound, Level::Community, Level::Street]
        .into_iter()
        .filter(|l| actor(t, Who::Staff(*l)) == Actor::Person(Relation::Accountable))
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_chain_keeps_its_invariants(steps in prop::collection::vec((any::<u8>(), any::<u8>(), 0u32..600), 1..60)) {
        let sla = FixedClocks;
        let mut t = new_ticket();
        let mut now = start();
        let mut returns_from = std::collections::HashMap::<Level, u32>::new();
        prop_assert_eq!(accountable_units(&t), 1);
        for (cmd_i, who_j, minutes) in steps {
            now += Duration::minutes(i64::from(minutes) * 20);
            let who = who_of(who_j);
            let cmd = command_for(cmd_i, &t, &sla, now);
            let finished = t.status.is_final();
            if let Ok(tr) = apply(&t, actor(&t, who), cmd.clone(), &sla, now) {
                    // A closed or withdrawn ticket accepts nothing but reads.
                    prop_assert!(!finished || cmd == Command::RevealPhone, "{:?} changed a finished ticket", cmd);
                    prop_assert_eq!(tr.ticket.version, t.version + 1);
                    prop_assert_eq!(tr.events.len(), 1);
                    let e = &tr.events[0];
                    // An unanswered extension request is recorded against the approver above.
                    if e.kind == EventKind::ExtensionUnanswered {
                        prop_assert_eq!(Some(e.level), t.level.up());
                    } else {
                        prop_assert_eq!(e.level, t.level);
                    }
                    prop_assert_eq!(e.status_before, Some(t.status));
                    if e.kind == EventKind::Return {
                        *returns_from.entry(t.level).or_default() += 1;
                    }
                    if finished {
                        prop_assert_eq!(tr.ticket.status, t.status);
                    }
                    t = tr.ticket;
            }
            // Exactly one accountable level at any time.
            prop_assert_eq!(accountable_units(&t), 1);
            // A return at most once per level.
            prop_assert!(returns_from.values().all(|n| *n <= 1), "{:?}", returns_from);
            // The queue's key follows the running clock.
            if t.awaits_level() && t.paused_at.is_none() {
                prop_assert!(t.next_check_at.is_some() || t.overdue);
            }
            // At most two transfers, two granted extensions per level, one pending request.
            prop_assert!(t.transfer_count <= rules::MAX_TRANSFERS);
            prop_assert!(t.extensions_granted <= rules::MAX_EXTENSIONS_PER_LEVEL);
            // A decline under review sits above the compound with a decision clock.
            if t.status == Status::DeclineReview {
                prop_assert!(t.level != Level::Compound && t.decide_due_at.is_some());
            }
        }
    }
}

#[test]
fn a_person_cannot_give_the_sweepers_commands_nor_the_sweeper_a_persons() {
    let t = new_ticket();
    let sla = FixedClocks;
    let staff = actor(&t, Who::Staff(Level::Compound));
    assert_eq!(
        apply(&t, staff, Command::AutoClose, &sla, start()),
        Err(Refusal::Forbidden)
    );
    assert_eq!(
        apply(
            &t,
            Actor::System,
            Command::Acknowledge { note: None },
            &sla,
            start()
        ),
        Err(Refusal::Forbidden)
    );
}

#[test]
fn a_refusal_names_what_is_allowed_instead() {
    let t = new_ticket();
    let staff = actor(&t, Who::Staff(Level::Compound));
    let r = apply(
        &t,
        staff,
        Command::Confirm {
            rating: Some(5),
            comment: None,
        },
        &FixedClocks,
        start(),
    );
    // Staff confirm only their own findings, never a resident's call.
    assert_eq!(r, Err(Refusal::Forbidden));
    let resident = actor(&t, Who::Resident);
    match apply(
        &t,
        resident,
        Command::Confirm {
            rating: Some(5),
            comment: None,
        },
        &FixedClocks,
        start(),
    ) {
        Err(Refusal::NotAllowed { allowed, .. }) => {
            assert_eq!(allowed, vec![Action::Comment, Action::Withdraw])
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_sweeper_warns_then_calls_up_then_marks_overdue_at_the_top() {
    let sla = FixedClocks;
    let mut t = new_ticket();
    let mut now = start() + Duration::hours(3);
    let mut seen = Vec::new();
    for _ in 0..12 {
        if let Some(effect) = due_effect(&t, &sla, now) {
            let tr = apply(&t, Actor::System, effect, &sla, now).expect("due effect applies");
            seen.push(tr.events[0].kind);
            t = tr.ticket;
        }
        now += Duration::hours(1);
    }
    assert_eq!(
        seen,
        vec![
            EventKind::SlaWarning,
            EventKind::Escalate,
            EventKind::SlaWarning,
            EventKind::Escalate,
            EventKind::SlaWarning,
            EventKind::Overdue,
        ]
    );
    assert_eq!(t.level, Level::Street);
    assert!(t.overdue);
    assert_eq!(t.next_check_at, None);
    // Not due any more: the sweeper may not apply it again.
    assert_eq!(
        apply(
            &t,
            Actor::System,
            Command::Breach(ClockName::Acknowledge),
            &sla,
            now
        ),
        Err(Refusal::NotDue)
    );
}

fn staff_apply(t: &Ticket, level: Level, cmd: Command, now: DateTime<Utc>) -> Ticket {
    apply(t, actor(t, Who::Staff(level)), cmd, &FixedClocks, now)
        .unwrap_or_else(|r| panic!("{level:?}: {r:?}"))
        .ticket
}

#[test]
fn a_decline_is_reviewed_above_and_an_unreviewed_one_goes_up_by_itself() {
    let sla = FixedClocks;
    let now = start();
    let t = new_ticket();
    let t = staff_apply(
        &t,
        Level::Compound,
        Command::Decline {
            reason: "非本级职责".into(),
        },
        now,
    );
    assert_eq!(
        (t.status, t.level),
        (Status::DeclineReview, Level::Community)
    );
    assert_eq!(t.decide_due_at, Some((now + Duration::days(1)).naive_utc()));
    assert_eq!(t.next_check_at, t.decide_due_at);
    // The reviewing level's clock runs out: the review goes up, then is overdue at the top.
    let late = now + Duration::days(1) + Duration::minutes(1);
    assert_eq!(
        due_effect(&t, &sla, late),
        Some(Command::Breach(ClockName::Review))
    );
    let tr = apply(
        &t,
        Actor::System,
        Command::Breach(ClockName::Review),
        &sla,
        late,
    )
    .expect("breach");
    assert_eq!(tr.events[0].kind, EventKind::Escalate);
    assert_eq!(
        tr.events[0].reason.as_deref(),
        Some(SystemReason::SlaBreachReview.as_str())
    );
    let t = tr.ticket;
    assert_eq!((t.status, t.level), (Status::DeclineReview, Level::Street));
    assert_eq!(t.escalation_count, 0, "a review moving up is not a call-up");
    let upheld = staff_apply(
        &t,
        Level::Street,
        Command::UpholdDecline { note: None },
        late,
    );
    assert_eq!(upheld.status, Status::Declined);
    assert_eq!(upheld.decline_reason.as_deref(), Some("非本级职责"));
    // Overturned instead: the street takes it with fresh clocks.
    let taken = staff_apply(
        &t,
        Level::Street,
        Command::OverturnDecline { note: None },
        late,
    );
    assert_eq!((taken.status, taken.level), (Status::Open, Level::Street));
    assert_eq!(taken.decline_reason, None);
}

#[test]
fn urging_waits_an_hour_per_level_and_a_take_over_is_not_a_call_up() {
    let now = start();
    let t = new_ticket();
    let urge = || Command::Urge {
        note: "请尽快".into(),
    };
    let t = staff_apply(&t, Level::Community, urge(), now);
    assert_eq!(t.urge_count, 1);
    let again = apply(
        &t,
        actor(&t, Who::Staff(Level::Community)),
        urge(),
        &FixedClocks,
        now + Duration::minutes(30),
    );
    assert_eq!(
        again,
        Err(Refusal::TooSoon {
            action: Action::Urge,
            until: now + Duration::hours(1)
        })
    );
    let t = staff_apply(&t, Level::Street, urge(), now + Duration::minutes(30));
    let t = staff_apply(&t, Level::Community, urge(), now + Duration::minutes(61));
    assert_eq!(t.urge_count, 3);
    let taken = staff_apply(
        &t,
        Level::Street,
        Command::TakeOver {
            note: "街道领办".into(),
        },
        now + Duration::hours(2),
    );
    assert_eq!((taken.status, taken.level), (Status::Open, Level::Street));
    assert_eq!(taken.escalation_count, 0);
}

#[test]
fn an_extension_moves_the_deadline_only_when_granted_and_twice_at_most() {
    let sla = FixedClocks;
    let now = start();
    let t = staff_apply(
        &new_ticket(),
        Level::Compound,
        Command::Acknowledge { note: None },
        now,
    );
    let due = t.resolve_due_at.expect("due").and_utc();
    let ask = |t: &Ticket, by: i64| {
        apply(
            t,
            actor(t, Who::Staff(Level::Compound)),
            Command::RequestExtension {
                note: "等配件".into(),
                due_at: t.resolve_due_at.expect("due").and_utc() + Duration::days(by),
            },
            &sla,
            now,
        )
    };
    assert!(
        matches!(ask(&t, 11), Err(Refusal::Invalid { .. })),
        "beyond 10 days"
    );
    assert!(
        matches!(ask(&t, 0), Err(Refusal::Invalid { .. })),
        "not later"
    );
    let pending = ask(&t, 2).expect("asked").ticket;
    assert_eq!(pending.resolve_due_at.map(|d| d.and_utc()), Some(due));
    assert!(
        matches!(ask(&pending, 3), Err(Refusal::NotAllowed { .. })),
        "one pending"
    );
    // Unanswered by the decision deadline: recorded once, against the community.
    let late = now + Duration::days(1) + Duration::minutes(1);
    assert_eq!(
        due_effect(&pending, &sla, late),
        Some(Command::ExtensionUnanswered)
    );
    let tr = apply(
        &pending,
        Actor::System,
        Command::ExtensionUnanswered,
        &sla,
        late,
    )
    .expect("lapse");
    assert_eq!(tr.events[0].level, Level::Community);
    assert_eq!(due_effect(&tr.ticket, &sla, late), None);
    let granted = staff_apply(
        &tr.ticket,
        Level::Community,
        Command::ApproveExtension { note: None },
        late,
    );
    assert_eq!(
        granted.resolve_due_at.map(|d| d.and_utc()),
        Some(due + Duration::days(2))
    );
    let again = staff_apply(
        &ask(&granted, 1).expect("asked").ticket,
        Level::Community,
        Command::ApproveExtension { note: None },
        late,
    );
    assert_eq!(again.extensions_granted, 2);
    assert!(
        matches!(ask(&again, 1), Err(Refusal::NotAllowed { .. })),
        "two granted"
    );
}
