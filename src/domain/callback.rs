//! Callbacks (回访): which closures are called back, what looks pressed, and what a recorded
//! call does. Self-reported closures can be gamed — a resident pressed to withdraw (诱导撤单) or to
//! give five stars (刷满意度), a ticket nobody confirms closing by itself — so the street checks
//! them by phone and trusts a rate only after that.

use chrono::{Duration, NaiveDateTime};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::ticket::{ClosedBy, Level, Source};
use crate::text_enum;

/// Unreached calls after which a callback is given up as unreachable.
pub const MAX_ATTEMPTS: i32 = 3;
/// A withdrawal this soon after a staff comment or call looks pressed.
pub const QUICK_WITHDRAWAL: Duration = Duration::hours(24);
/// Five stars this soon after the resolution look pressed.
pub const QUICK_FIVE_STAR: Duration = Duration::minutes(10);

text_enum! {
    /// Why a closure is called back.
    pub enum CallbackReason {
        AutoClosed = ("auto_closed", "超时自动关闭"),
        DeclineUpheld = ("decline_upheld", "不予受理"),
        WithdrawnAfterContact = ("withdrawn_after_contact", "工作人员联系后撤回"),
        /// Drawn at random among the closures the resident confirmed.
        Sample = ("sample", "随机抽样"),
        /// Confirmed by the resident in a way that looks pressed (see [`CallbackFlag`]).
        Flagged = ("flagged", "疑似诱导评价"),
    }
}

text_enum! {
    /// What looks pressed about a closure.
    pub enum CallbackFlag {
        /// Withdrawn within 24 h after a staff comment or call.
        QuickWithdrawal = ("quick_withdrawal", "联系后24小时内撤回"),
        /// Five stars within 10 minutes of the resolution.
        QuickFiveStar = ("quick_five_star", "办结后10分钟内五星好评"),
    }
}

text_enum! {
    pub enum CallbackState {
        Pending = ("pending", "待回访"),
        Done = ("done", "已回访"),
        /// Not reached in [`MAX_ATTEMPTS`] calls.
        Unreachable = ("unreachable", "无法联系"),
    }
}

text_enum! {
    /// What the resident says in a callback.
    pub enum CallbackVerdict {
        Satisfied = ("satisfied", "满意"),
        BasicallySatisfied = ("basically_satisfied", "基本满意"),
        Unsatisfied = ("unsatisfied", "不满意"),
    }
}

text_enum! {
    /// The levels that may make a street's callbacks.
    pub enum CallbackLevel {
        Community = ("community", "社区党支部"),
        Street = ("street", "街党工委"),
    }
}

impl CallbackLevel {
    pub fn level(self) -> Level {
        match self {
            CallbackLevel::Community => Level::Community,
            CallbackLevel::Street => Level::Street,
        }
    }

    pub fn of(level: Level) -> Option<CallbackLevel> {
        match level {
            Level::Community => Some(CallbackLevel::Community),
            Level::Street => Some(CallbackLevel::Street),
            Level::Compound => None,
        }
    }
}

/// A closure as the selection sees it.
#[derive(Debug, Clone)]
pub struct Closure {
    pub ticket_id: i64,
    pub closed_by: ClosedBy,
    pub closed_at: NaiveDateTime,
    pub source: Source,
    pub rating: Option<i32>,
    pub resolved_at: Option<NaiveDateTime>,
    /// The latest staff comment to the resident, phone lookup (a call) or request for
    /// information before the closure.
    pub last_staff_contact: Option<NaiveDateTime>,
}

/// A closure chosen for a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    pub reason: CallbackReason,
    pub flag: Option<CallbackFlag>,
    /// The call asks whether the resident was pressed (a withdrawal or a rating).
    pub asks_pressed: bool,
}

/// Whether `c` is called back, and why. `sample_permille` of the confirmed closures are drawn by
/// [`drawn`] under `key`.
pub fn select(c: &Closure, sample_permille: u32, key: &[u8]) -> Option<Selection> {
    // Own findings have no resident to call.
    if c.source == Source::OwnFinding {
        return None;
    }
    let asks_pressed = c.closed_by == ClosedBy::Withdrawn || c.rating.is_some();
    let pick = |reason, flag| {
        Some(Selection {
            reason,
            flag,
            asks_pressed,
        })
    };
    match c.closed_by {
        ClosedBy::Auto => pick(CallbackReason::AutoClosed, None),
        ClosedBy::Declined => pick(CallbackReason::DeclineUpheld, None),
        ClosedBy::Withdrawn => {
            let contact = c.last_staff_contact.filter(|t| *t <= c.closed_at)?;
            let flag = (c.closed_at - contact <= QUICK_WITHDRAWAL)
                .then_some(CallbackFlag::QuickWithdrawal);
            pick(CallbackReason::WithdrawnAfterContact, flag)
        }
        ClosedBy::Resident => {
            let quick = c.rating == Some(5)
                && c.resolved_at
                    .is_some_and(|r| c.closed_at - r <= QUICK_FIVE_STAR);
            if drawn(c.ticket_id, c.closed_at, sample_permille, key) {
                pick(
                    CallbackReason::Sample,
                    quick.then_some(CallbackFlag::QuickFiveStar),
                )
            } else if quick {
                pick(CallbackReason::Flagged, Some(CallbackFlag::QuickFiveStar))
            } else {
                None
            }
        }
        ClosedBy::Callback | ClosedBy::RaisingLevel => None,
    }
}

/// The sample draw: an HMAC of the ticket and the instant it closed under the service's key,
/// so the same closure is always drawn the same way, and staff cannot tell in advance which of
/// their closures will be checked.
pub fn drawn(ticket_id: i64, closed_at: NaiveDateTime, permille: u32, key: &[u8]) -> bool {
    if permille == 0 {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(format!("{ticket_id}:{}", closed_at.and_utc().timestamp()).as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut head = [0u8; 8];
    head.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(head) % 1000 < u64::from(permille)
}

/// One recorded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    NotReached,
    Reached {
        verdict: CallbackVerdict,
        pressed: Option<bool>,
    },
}

/// A callback as a call finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub state: CallbackState,
    pub attempts: i32,
    pub asks_pressed: bool,
}

/// What a call changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub state: CallbackState,
    pub attempts: i32,
    pub verdict: Option<CallbackVerdict>,
    pub pressed: Option<bool>,
    /// Unsatisfied, or pressed: the ticket is handled again.
    pub reopen: bool,
}

/// Why a call cannot be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackRefusal {
    /// Already done or given up.
    Finished,
    /// The resident was reached about a withdrawal or a rating: were they pressed?
    PressedRequired,
}

/// Applies one call to a pending callback.
pub fn record(p: Pending, a: Attempt) -> Result<Recorded, CallbackRefusal> {
    if p.state != CallbackState::Pending {
        return Err(CallbackRefusal::Finished);
    }
    let attempts = p.attempts + 1;
    match a {
        Attempt::NotReached => Ok(Recorded {
            state: if attempts >= MAX_ATTEMPTS {
                CallbackState::Unreachable
            } else {
                CallbackState::Pending
            },
            attempts,
            verdict: None,
            pressed: None,
            reopen: false,
        }),
        Attempt::Reached { verdict, pressed } => {
            if p.asks_pressed && pressed.is_none() {
                return Err(CallbackRefusal::PressedRequired);
            }
            let pressed = if p.asks_pressed { pressed } else { None };
            Ok(Recorded {
                state: CallbackState::Done,
                attempts,
                verdict: Some(verdict),
                pressed,
                reopen: verdict == CallbackVerdict::Unsatisfied || pressed == Some(true),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 3)
            .and_then(|d| d.and_hms_opt(h, m, 0))
            .unwrap()
    }

    fn closure(closed_by: ClosedBy) -> Closure {
        Closure {
            ticket_id: 7,
            closed_by,
            closed_at: at(10, 0),
            source: Source::App,
            rating: None,
            resolved_at: Some(at(9, 0)),
            last_staff_contact: None,
        }
    }

    const KEY: &[u8] = b"test key";

    #[test]
    fn every_auto_closure_and_final_decline_is_called_back() {
        let s = select(&closure(ClosedBy::Auto), 0, KEY).unwrap();
        assert_eq!(s.reason, CallbackReason::AutoClosed);
        assert!(!s.asks_pressed);
        let s = select(&closure(ClosedBy::Declined), 0, KEY).unwrap();
        assert_eq!(s.reason, CallbackReason::DeclineUpheld);
        assert_eq!(select(&closure(ClosedBy::RaisingLevel), 1000, KEY), None);
        let mut own = closure(ClosedBy::Auto);
        own.source = Source::OwnFinding;
        assert_eq!(select(&own, 1000, KEY), None);
    }

    #[test]
    fn a_withdrawal_is_called_back_only_after_a_staff_contact_and_flagged_within_a_day() {
        let mut w = closure(ClosedBy::Withdrawn);
        assert_eq!(select(&w, 1000, KEY), None);
        w.last_staff_contact = Some(at(10, 0) - Duration::hours(30));
        let s = select(&w, 0, KEY).unwrap();
        assert_eq!(s.reason, CallbackReason::WithdrawnAfterContact);
        assert_eq!(s.flag, None);
        assert!(s.asks_pressed);
        w.last_staff_contact = Some(at(10, 0) - Duration::hours(23));
        let s = select(&w, 0, KEY).unwrap();
        assert_eq!(s.flag, Some(CallbackFlag::QuickWithdrawal));
    }

    #[test]
    fn five_stars_within_ten_minutes_of_the_resolution_are_flagged() {
        let mut r = closure(ClosedBy::Resident);
        r.rating = Some(5);
        r.resolved_at = Some(at(9, 50));
        let s = select(&r, 0, KEY).unwrap();
        assert_eq!(s.reason, CallbackReason::Flagged);
        assert_eq!(s.flag, Some(CallbackFlag::QuickFiveStar));
        assert!(s.asks_pressed);
        r.resolved_at = Some(at(9, 49));
        assert_eq!(select(&r, 0, KEY), None);
        r.rating = Some(4);
        r.resolved_at = Some(at(9, 55));
        assert_eq!(select(&r, 0, KEY), None);
    }

    #[test]
    fn the_sample_is_reproducible_and_at_the_configured_share() {
        let closed = at(10, 0);
        for permille in [100u32, 250, 500] {
            let picked: Vec<i64> = (1..=1000)
                .filter(|id| drawn(*id, closed, permille, KEY))
                .collect();
            let again: Vec<i64> = (1..=1000)
                .filter(|id| drawn(*id, closed, permille, KEY))
                .collect();
            assert_eq!(picked, again, "the same closures are drawn again");
            let share = picked.len() as f64 / 1000.0;
            let want = f64::from(permille) / 1000.0;
            assert!(
                (share - want).abs() <= 0.02,
                "{permille}‰: drew {} of 1000",
                picked.len()
            );
        }
        // Another key draws other closures.
        let a: Vec<i64> = (1..=1000)
            .filter(|id| drawn(*id, closed, 100, KEY))
            .collect();
        let b: Vec<i64> = (1..=1000)
            .filter(|id| drawn(*id, closed, 100, b"other"))
            .collect();
        assert_ne!(a, b);
        assert!(!drawn(1, closed, 0, KEY));
        assert!(drawn(1, closed, 1000, KEY));
    }

    #[test]
    fn three_unreached_calls_make_a_callback_unreachable() {
        let mut p = Pending {
            state: CallbackState::Pending,
            attempts: 0,
            asks_pressed: false,
        };
        for n in 1..=3 {
            let r = record(p, Attempt::NotReached).unwrap();
            assert_eq!(r.attempts, n);
            assert!(!r.reopen);
            p.state = r.state;
            p.attempts = r.attempts;
        }
        assert_eq!(p.state, CallbackState::Unreachable);
        assert_eq!(
            record(p, Attempt::NotReached),
            Err(CallbackRefusal::Finished)
        );
    }

    #[test]
    fn unsatisfied_or_pressed_reopens_and_pressed_is_asked_when_it_matters() {
        let p = Pending {
            state: CallbackState::Pending,
            attempts: 1,
            asks_pressed: true,
        };
        let reached = |verdict, pressed| Attempt::Reached { verdict, pressed };
        assert_eq!(
            record(p, reached(CallbackVerdict::Satisfied, None)),
            Err(CallbackRefusal::PressedRequired)
        );
        let r = record(p, reached(CallbackVerdict::Satisfied, Some(true))).unwrap();
        assert!(r.reopen);
        assert_eq!(r.state, CallbackState::Done);
        assert_eq!(r.attempts, 2);
        let r = record(p, reached(CallbackVerdict::BasicallySatisfied, Some(false))).unwrap();
        assert!(!r.reopen);
        let plain = Pending {
            asks_pressed: false,
            ..p
        };
        let r = record(plain, reached(CallbackVerdict::Unsatisfied, Some(true))).unwrap();
        assert!(r.reopen);
        assert_eq!(r.pressed, None, "not asked, not recorded");
    }
}
