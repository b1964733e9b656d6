//! SLA policies and the deadlines they produce: which policy governs a ticket, when it must be
//! acknowledged and resolved, when to warn that time is running out, and how pauses push a
//! deadline back.

use std::cmp::Reverse;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::calendar::WorkCalendar;
use super::ticket::{Level, Urgency};

/// Minutes in one working day of the default calendar (08:30–12:00 and 14:00–17:30).
pub const WORKING_DAY_MINUTES: i64 = 7 * 60;

/// The most minutes a policy may give, in either clock. Kept to a year so a mistyped policy
/// cannot make a deadline computation walk the calendar for centuries.
pub const MAX_POLICY_MINUTES: i64 = 366 * 24 * 60;

/// The default ceiling on the total pause per ticket and level: three working days.
pub const DEFAULT_PAUSE_CAP: Duration = Duration::minutes(3 * WORKING_DAY_MINUTES);

/// The warning never comes earlier than this before the deadline, however long the clock.
const WARN_LEAD_CAP: Duration = Duration::hours(1);

crate::text_enum! {
    /// Which clock a policy's minutes run on.
    pub enum ClockKind {
        /// Only working time counts (normal tickets).
        Working = ("working", "工作时间"),
        /// Every minute counts, day and night (urgent tickets).
        Calendar = ("calendar", "自然时间"),
    }
}

/// How long a ticket of some level (and optionally category and urgency) may wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct SlaPolicy {
    /// Database id; `None` for built-in defaults.
    pub id: Option<i64>,
    /// The level whose tickets this governs.
    pub level: Level,
    /// Restricts the policy to one category; `None` matches every category.
    pub category_id: Option<i64>,
    /// Restricts the policy to one urgency; `None` matches every urgency.
    pub urgency: Option<Urgency>,
    /// Time allowed until the ticket is acknowledged.
    pub acknowledge_minutes: i64,
    /// Time allowed until the ticket is resolved.
    pub resolve_minutes: i64,
    /// Time this level has to decide what it owes the level below: a decline review or an
    /// extension request. Default one working day.
    #[serde(default = "default_decide_minutes")]
    pub decide_minutes: i64,
    /// The clock all allowances run on.
    pub clock: ClockKind,
}

fn default_decide_minutes() -> i64 {
    WORKING_DAY_MINUTES
}

/// Why a policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlaError {
    /// The decision allowance is not positive or is too long.
    #[error("decide_minutes must be between 1 and {MAX_POLICY_MINUTES}, got {0}")]
    DecideOutOfRange(i64),
    /// The acknowledgement allowance is not positive or is too long.
    #[error("acknowledge_minutes must be between 1 and {MAX_POLICY_MINUTES}, got {0}")]
    AcknowledgeOutOfRange(i64),
    /// The resolution allowance is not positive or is too long.
    #[error("resolve_minutes must be between 1 and {MAX_POLICY_MINUTES}, got {0}")]
    ResolveOutOfRange(i64),
    /// A ticket would have to be resolved before it had to be acknowledged.
    #[error("acknowledge_minutes ({acknowledge}) exceeds resolve_minutes ({resolve})")]
    AcknowledgeAfterResolve {
        /// The acknowledgement allowance.
        acknowledge: i64,
        /// The resolution allowance.
        resolve: i64,
    },
}

impl SlaPolicy {
    /// Checks the allowances are positive, bounded, and acknowledge before resolve.
    pub fn validate(&self) -> Result<(), SlaError> {
        let in_range = |m: i64| (1..=MAX_POLICY_MINUTES).contains(&m);
        if !in_range(self.acknowledge_minutes) {
            return Err(SlaError::AcknowledgeOutOfRange(self.acknowledge_minutes));
        }
        if !in_range(self.resolve_minutes) {
            return Err(SlaError::ResolveOutOfRange(self.resolve_minutes));
        }
        if !in_range(self.decide_minutes) {
            return Err(SlaError::DecideOutOfRange(self.decide_minutes));
        }
        if self.acknowledge_minutes > self.resolve_minutes {
            return Err(SlaError::AcknowledgeAfterResolve {
                acknowledge: self.acknowledge_minutes,
                resolve: self.resolve_minutes,
            });
        }
        Ok(())
    }

    /// Whether the policy applies to a ticket of this level, category and urgency.
    pub fn matches(&self, level: Level, category_id: i64, urgency: Urgency) -> bool {
        self.level == level
            && self.category_id.is_none_or(|c| c == category_id)
            && self.urgency.is_none_or(|u| u == urgency)
    }

    /// Rank among matching policies: category and urgency (3) > category only (2) > urgency
    /// only (1) > neither (0).
    pub fn specificity(&self) -> u8 {
        match (self.category_id.is_some(), self.urgency.is_some()) {
            (true, true) => 3,
            (true, false) => 2,
            (false, true) => 1,
            (false, false) => 0,
        }
    }

    /// When a ticket opened at `start` must be acknowledged.
    pub fn acknowledge_due(&self, cal: &WorkCalendar, start: DateTime<Utc>) -> DateTime<Utc> {
        due_at(cal, start, self.acknowledge_minutes, self.clock)
    }

    /// When a ticket opened at `start` must be resolved.
    pub fn resolve_due(&self, cal: &WorkCalendar, start: DateTime<Utc>) -> DateTime<Utc> {
        due_at(cal, start, self.resolve_minutes, self.clock)
    }
}

/// The policy governing a ticket: the most specific of those matching its level, category and
/// urgency. Ties go to the lowest id, then to policies with an id over built-in ones, then to
/// the earliest in `policies`.
pub fn select_policy(
    policies: &[SlaPolicy],
    level: Level,
    category_id: i64,
    urgency: Urgency,
) -> Option<&SlaPolicy> {
    policies
        .iter()
        .enumerate()
        .filter(|(_, p)| p.matches(level, category_id, urgency))
        .min_by_key(|(index, p)| (Reverse(p.specificity()), p.id.is_none(), p.id, *index))
        .map(|(_, p)| p)
}

/// The built-in policies, used when the database holds none for a level.
///
/// Normal tickets (urgency left open, so they also catch any urgency without its own policy) run
/// on working time: compound and community 4 working hours to acknowledge and 3 working days to
/// resolve, street 2 working hours and 5 working days. Urgent tickets at every level run on the
/// calendar clock: 30 minutes to acknowledge, 24 hours to resolve.
pub fn default_policies() -> Vec<SlaPolicy> {
    let normal = |level, acknowledge_minutes, resolve_minutes| SlaPolicy {
        id: None,
        level,
        category_id: None,
        urgency: None,
        acknowledge_minutes,
        resolve_minutes,
        decide_minutes: WORKING_DAY_MINUTES,
        clock: ClockKind::Working,
    };
    let urgent = |level| SlaPolicy {
        id: None,
        level,
        category_id: None,
        urgency: Some(Urgency::Urgent),
        acknowledge_minutes: 30,
        resolve_minutes: 24 * 60,
        decide_minutes: 4 * 60,
        clock: ClockKind::Calendar,
    };
    vec![
        normal(Level::Compound, 4 * 60, 3 * WORKING_DAY_MINUTES),
        normal(Level::Community, 4 * 60, 3 * WORKING_DAY_MINUTES),
        normal(Level::Street, 2 * 60, 5 * WORKING_DAY_MINUTES),
        urgent(Level::Compound),
        urgent(Level::Community),
        urgent(Level::Street),
    ]
}

/// The deadline `minutes` after `start` on the given clock.
///
/// `minutes` is clamped to `0..=MAX_POLICY_MINUTES` (what [`SlaPolicy::validate`] accepts), so
/// a corrupt row can neither move a deadline backwards nor stall the request computing it.
pub fn due_at(
    cal: &WorkCalendar,
    start: DateTime<Utc>,
    minutes: i64,
    clock: ClockKind,
) -> DateTime<Utc> {
    let span = policy_span(minutes);
    match clock {
        ClockKind::Working => cal.add_working(start, span),
        ClockKind::Calendar => add_wall(start, span),
    }
}

/// When to warn that a deadline is near: once a quarter of the allowance is left, but never more
/// than one hour (of working time, on a working clock) before `due`.
///
/// The lead is measured back from `due` itself, so a deadline already pushed back by a pause
/// still gets its warning at the right distance.
pub fn warn_at(
    cal: &WorkCalendar,
    start: DateTime<Utc>,
    due: DateTime<Utc>,
    minutes: i64,
    clock: ClockKind,
) -> DateTime<Utc> {
    let lead = (policy_span(minutes) / 4).min(WARN_LEAD_CAP);
    match clock {
        // Working time has no backward walk; going forward from `start` by all but the lead
        // lands where exactly `lead` of working time remains before `due`.
        ClockKind::Working => {
            let span = cal.working_between(start, due);
            cal.add_working(start, span - lead)
        }
        ClockKind::Calendar => due.checked_sub_signed(lead).unwrap_or(due).max(start),
    }
}

/// How far a pause from `paused_from` to `resumed_at` pushes a deadline back, and the ticket's
/// new total of pause at this level: `(extension, new_total)`.
///
/// The pause is measured on the policy's clock (working time for working clocks, so a pause over
/// a weekend costs nothing extra) and the extension is cut so the total never exceeds `cap`
/// ([`DEFAULT_PAUSE_CAP`] unless configured otherwise).
pub fn paused_extension(
    cal: &WorkCalendar,
    paused_from: DateTime<Utc>,
    resumed_at: DateTime<Utc>,
    already_paused: Duration,
    cap: Duration,
    clock: ClockKind,
) -> (Duration, Duration) {
    let zero = Duration::zero();
    let paused = match clock {
        ClockKind::Working => cal.working_between(paused_from, resumed_at),
        ClockKind::Calendar => (resumed_at - paused_from).max(zero),
    };
    let already_paused = already_paused.max(zero);
    let allowance = cap.checked_sub(&already_paused).unwrap_or(zero).max(zero);
    let extension = paused.min(allowance);
    let new_total = already_paused
        .checked_add(&extension)
        .unwrap_or(Duration::MAX);
    (extension, new_total)
}

/// `due` pushed back by `extension` on the given clock.
pub fn extend_due(
    cal: &WorkCalendar,
    due: DateTime<Utc>,
    extension: Duration,
    clock: ClockKind,
) -> DateTime<Utc> {
    match clock {
        ClockKind::Working => cal.add_working(due, extension),
        ClockKind::Calendar => add_wall(due, extension.max(Duration::zero())),
    }
}

fn policy_span(minutes: i64) -> Duration {
    Duration::minutes(minutes.clamp(0, MAX_POLICY_MINUTES))
}

fn add_wall(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::{WorkingHours, YearCalendar};
    use chrono::TimeZone;
    use chrono_tz::Asia::Shanghai;

    const FILE_2026: &str = include_str!("../../config/calendars/2026.toml");

    fn cal() -> WorkCalendar {
        WorkCalendar::new(
            WorkingHours::default(),
            [YearCalendar::from_toml_str(FILE_2026).unwrap()],
        )
    }

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Shanghai
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn policy(
        id: Option<i64>,
        level: Level,
        category_id: Option<i64>,
        urgency: Option<Urgency>,
    ) -> SlaPolicy {
        SlaPolicy {
            id,
            level,
            category_id,
            urgency,
            acknowledge_minutes: 60,
            resolve_minutes: 600,
            decide_minutes: WORKING_DAY_MINUTES,
            clock: ClockKind::Working,
        }
    }

    fn selected_id(
        policies: &[SlaPolicy],
        level: Level,
        category_id: i64,
        urgency: Urgency,
    ) -> Option<i64> {
        select_policy(policies, level, category_id, urgency).and_then(|p| p.id)
    }

    // --- selection ---

    #[test]
    fn most_specific_policy_wins() {
        let ps = [
            policy(Some(1), Level::Community, None, None),
            policy(Some(2), Level::Community, None, Some(Urgency::Urgent)),
            policy(Some(3), Level::Community, Some(7), None),
            policy(Some(4), Level::Community, Some(7), Some(Urgency::Urgent)),
        ];
        let c = Level::Community;
        assert_eq!(selected_id(&ps, c, 7, Urgency::Urgent), Some(4));
        assert_eq!(selected_id(&ps, c, 7, Urgency::Normal), Some(3));
        assert_eq!(selected_id(&ps, c, 8, Urgency::Urgent), Some(2));
        assert_eq!(selected_id(&ps, c, 8, Urgency::Normal), Some(1));
    }

    #[test]
    fn category_only_beats_urgency_only() {
        let ps = [
            policy(Some(1), Level::Street, None, Some(Urgency::Urgent)),
            policy(Some(2), Level::Street, Some(5), None),
        ];
        assert_eq!(selected_id(&ps, Level::Street, 5, Urgency::Urgent), Some(2));
    }

    #[test]
    fn policies_of_other_levels_are_ignored() {
        let ps = [policy(Some(1), Level::Street, None, None)];
        assert!(select_policy(&ps, Level::Compound, 1, Urgency::Normal).is_none());
    }

    #[test]
    fn policy_for_another_category_or_urgency_does_not_match() {
        let ps = [
            policy(Some(1), Level::Compound, Some(9), None),
            policy(Some(2), Level::Compound, None, Some(Urgency::Urgent)),
        ];
        assert!(select_policy(&ps, Level::Compound, 8, Urgency::Normal).is_none());
    }

    #[test]
    fn ties_go_to_the_lowest_id() {
        let ps = [
            policy(Some(9), Level::Compound, Some(1), None),
            policy(Some(3), Level::Compound, Some(1), None),
        ];
        assert_eq!(
            selected_id(&ps, Level::Compound, 1, Urgency::Normal),
            Some(3)
        );
    }

    #[test]
    fn ties_prefer_stored_policies_then_the_first_listed() {
        let mut first = policy(None, Level::Compound, None, None);
        first.acknowledge_minutes = 1;
        let mut second = policy(None, Level::Compound, None, None);
        second.acknowledge_minutes = 2;
        let ps = [first.clone(), second.clone()];
        assert_eq!(
            select_policy(&ps, Level::Compound, 1, Urgency::Normal),
            Some(&first)
        );
        let stored = policy(Some(40), Level::Compound, None, None);
        let ps = [first, second, stored];
        assert_eq!(
            selected_id(&ps, Level::Compound, 1, Urgency::Normal),
            Some(40)
        );
    }

    // --- defaults ---

    #[test]
    fn defaults_cover_every_level_and_urgency() {
        let ps = default_policies();
        for level in [Level::Compound, Level::Community, Level::Street] {
            for urgency in [Urgency::Normal, Urgency::Urgent] {
                assert!(
                    select_policy(&ps, level, 42, urgency).is_some(),
                    "{level:?} {urgency:?}"
                );
            }
        }
    }

    #[test]
    fn defaults_are_valid() {
        for p in default_policies() {
            assert_eq!(p.validate(), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn default_normal_allowances_are_in_working_time() {
        let ps = default_policies();
        let expect = [
            (Level::Compound, 240, 1260),
            (Level::Community, 240, 1260),
            (Level::Street, 120, 2100),
        ];
        for (level, ack, resolve) in expect {
            let p = select_policy(&ps, level, 1, Urgency::Normal).unwrap();
            assert_eq!(
                (p.acknowledge_minutes, p.resolve_minutes, p.clock),
                (ack, resolve, ClockKind::Working),
                "{level:?}"
            );
        }
    }

    #[test]
    fn default_urgent_allowances_run_on_the_calendar_clock() {
        let ps = default_policies();
        for level in [Level::Compound, Level::Community, Level::Street] {
            let p = select_policy(&ps, level, 1, Urgency::Urgent).unwrap();
            assert_eq!(
                (p.acknowledge_minutes, p.resolve_minutes, p.clock),
                (30, 1440, ClockKind::Calendar),
                "{level:?}"
            );
        }
    }

    // --- due times ---

    #[test]
    fn urgent_ticket_on_saturday_night_is_due_thirty_minutes_later() {
        let ps = default_policies();
        let p = select_policy(&ps, Level::Community, 1, Urgency::Urgent).unwrap();
        let start = local(2026, 11, 28, 23, 0);
        assert_eq!(
            p.acknowledge_due(&cal(), start),
            local(2026, 11, 28, 23, 30)
        );
        assert_eq!(p.resolve_due(&cal(), start), local(2026, 11, 29, 23, 0));
    }

    #[test]
    fn urgent_ticket_runs_through_a_public_holiday() {
        let start = local(2026, 10, 1, 10, 0);
        assert_eq!(
            due_at(&cal(), start, 24 * 60, ClockKind::Calendar),
            local(2026, 10, 2, 10, 0)
        );
    }

    #[test]
    fn normal_ticket_due_time_counts_only_working_time() {
        let ps = default_policies();
        let p = select_policy(&ps, Level::Compound, 1, Urgency::Normal).unwrap();
        let start = local(2026, 11, 27, 17, 0);
        assert_eq!(p.acknowledge_due(&cal(), start), local(2026, 11, 30, 12, 0));
        // 0.5 h Friday + 7 h Mon + 7 h Tue + 6.5 h Wed.
        assert_eq!(p.resolve_due(&cal(), start), local(2026, 12, 2, 17, 0));
    }

    #[test]
    fn negative_minutes_do_not_move_the_deadline_backwards() {
        let start = local(2026, 11, 25, 10, 0);
        assert_eq!(due_at(&cal(), start, -30, ClockKind::Calendar), start);
        assert_eq!(due_at(&cal(), start, -30, ClockKind::Working), start);
    }

    // --- warnings ---

    #[test]
    fn warning_comes_when_a_quarter_is_left_on_a_short_clock() {
        let c = cal();
        let start = local(2026, 11, 25, 9, 0);
        let due = due_at(&c, start, 120, ClockKind::Working);
        assert_eq!(due, local(2026, 11, 25, 11, 0));
        assert_eq!(
            warn_at(&c, start, due, 120, ClockKind::Working),
            local(2026, 11, 25, 10, 30)
        );
    }

    #[test]
    fn warning_is_at_most_one_working_hour_before_due() {
        let c = cal();
        let start = local(2026, 11, 25, 8, 30);
        let due = due_at(&c, start, 240, ClockKind::Working);
        assert_eq!(due, local(2026, 11, 25, 14, 30));
        // One working hour before 14:30 skips lunch back to 11:30.
        assert_eq!(
            warn_at(&c, start, due, 240, ClockKind::Working),
            local(2026, 11, 25, 11, 30)
        );
    }

    #[test]
    fn warning_for_a_morning_deadline_can_fall_the_evening_before() {
        let c = cal();
        let start = local(2026, 11, 26, 9, 0);
        let due = due_at(&c, start, 3 * WORKING_DAY_MINUTES, ClockKind::Working);
        assert_eq!(due, local(2026, 12, 1, 9, 0));
        assert_eq!(
            warn_at(&c, start, due, 3 * WORKING_DAY_MINUTES, ClockKind::Working),
            local(2026, 11, 30, 17, 0)
        );
    }

    #[test]
    fn calendar_clock_warning_at_a_quarter_left() {
        let c = cal();
        let start = local(2026, 11, 28, 23, 0);
        let due = due_at(&c, start, 30, ClockKind::Calendar);
        assert_eq!(
            warn_at(&c, start, due, 30, ClockKind::Calendar),
            local(2026, 11, 28, 23, 22) + Duration::seconds(30)
        );
    }

    #[test]
    fn calendar_clock_warning_capped_at_one_hour() {
        let c = cal();
        let start = local(2026, 11, 28, 23, 0);
        let due = due_at(&c, start, 1440, ClockKind::Calendar);
        assert_eq!(
            warn_at(&c, start, due, 1440, ClockKind::Calendar),
            local(2026, 11, 29, 22, 0)
        );
    }

    #[test]
    fn warning_follows_a_deadline_extended_by_a_pause() {
        let c = cal();
        let start = local(2026, 11, 25, 9, 0);
        let due = due_at(&c, start, 240, ClockKind::Working);
        assert_eq!(due, local(2026, 11, 25, 15, 0));
        let extended = extend_due(&c, due, Duration::hours(1), ClockKind::Working);
        assert_eq!(extended, local(2026, 11, 25, 16, 0));
        assert_eq!(
            warn_at(&c, start, extended, 240, ClockKind::Working),
            local(2026, 11, 25, 15, 0)
        );
    }

    // --- pauses ---

    #[test]
    fn pause_over_a_weekend_extends_by_working_time_only() {
        let (extension, total) = paused_extension(
            &cal(),
            local(2026, 11, 27, 16, 0),
            local(2026, 11, 30, 10, 0),
            Duration::zero(),
            DEFAULT_PAUSE_CAP,
            ClockKind::Working,
        );
        assert_eq!(extension, Duration::hours(3));
        assert_eq!(total, Duration::hours(3));
    }

    #[test]
    fn pause_extension_is_capped_at_the_level_total() {
        let (extension, total) = paused_extension(
            &cal(),
            local(2026, 11, 25, 9, 0),
            local(2026, 11, 25, 12, 0),
            Duration::hours(20),
            DEFAULT_PAUSE_CAP,
            ClockKind::Working,
        );
        assert_eq!(extension, Duration::hours(1));
        assert_eq!(total, Duration::hours(21));
    }

    #[test]
    fn pause_after_the_cap_is_spent_adds_nothing() {
        let (extension, total) = paused_extension(
            &cal(),
            local(2026, 11, 25, 9, 0),
            local(2026, 11, 26, 9, 0),
            Duration::hours(21),
            DEFAULT_PAUSE_CAP,
            ClockKind::Working,
        );
        assert_eq!(extension, Duration::zero());
        assert_eq!(total, Duration::hours(21));
    }

    #[test]
    fn default_pause_cap_is_three_working_days() {
        assert_eq!(DEFAULT_PAUSE_CAP, Duration::hours(21));
    }

    #[test]
    fn reversed_pause_adds_nothing() {
        let (extension, total) = paused_extension(
            &cal(),
            local(2026, 11, 25, 12, 0),
            local(2026, 11, 25, 9, 0),
            Duration::hours(2),
            DEFAULT_PAUSE_CAP,
            ClockKind::Calendar,
        );
        assert_eq!(extension, Duration::zero());
        assert_eq!(total, Duration::hours(2));
    }

    #[test]
    fn calendar_clock_pause_counts_wall_time() {
        let (extension, _) = paused_extension(
            &cal(),
            local(2026, 11, 28, 23, 0),
            local(2026, 11, 29, 1, 0),
            Duration::zero(),
            DEFAULT_PAUSE_CAP,
            ClockKind::Calendar,
        );
        assert_eq!(extension, Duration::hours(2));
    }

    #[test]
    fn working_extension_rolls_over_the_night() {
        assert_eq!(
            extend_due(
                &cal(),
                local(2026, 11, 25, 17, 0),
                Duration::hours(1),
                ClockKind::Working
            ),
            local(2026, 11, 26, 9, 0)
        );
    }

    #[test]
    fn calendar_extension_uses_wall_time() {
        assert_eq!(
            extend_due(
                &cal(),
                local(2026, 11, 25, 17, 0),
                Duration::hours(1),
                ClockKind::Calendar
            ),
            local(2026, 11, 25, 18, 0)
        );
    }

    // --- policies as data ---

    #[test]
    fn policy_json_uses_snake_case() {
        let ps = default_policies();
        let p = select_policy(&ps, Level::Street, 1, Urgency::Urgent).unwrap();
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(json["level"], "street");
        assert_eq!(json["urgency"], "urgent");
        assert_eq!(json["clock"], "calendar");
        assert_eq!(json["acknowledge_minutes"], 30);
        let back: SlaPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(&back, p);
    }

    #[test]
    fn validation_rejects_empty_huge_or_inverted_allowances() {
        let mut p = policy(None, Level::Street, None, None);
        p.acknowledge_minutes = 0;
        assert_eq!(p.validate(), Err(SlaError::AcknowledgeOutOfRange(0)));
        p.acknowledge_minutes = 10;
        p.resolve_minutes = MAX_POLICY_MINUTES + 1;
        assert_eq!(
            p.validate(),
            Err(SlaError::ResolveOutOfRange(MAX_POLICY_MINUTES + 1))
        );
        p.acknowledge_minutes = 700;
        p.resolve_minutes = 600;
        assert!(matches!(
            p.validate(),
            Err(SlaError::AcknowledgeAfterResolve { .. })
        ));
    }
}
