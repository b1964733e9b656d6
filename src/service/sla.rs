//! The SLA engine the ticket flows use: the working calendar and the policies in force.

use std::sync::RwLock;

use chrono::{DateTime, Duration, Utc};

use crate::domain::calendar::{WorkCalendar, WorkingHours, YearCalendar};
use crate::domain::sla::{self, ClockKind, SlaPolicy};
use crate::domain::ticket::{Level, Urgency};

/// The 2026 calendar ships with the binary.
const CALENDAR_2026: &str = include_str!("../../config/calendars/2026.toml");

/// How long a resolved ticket waits for the resident before it closes by itself.
pub const AUTO_CLOSE_AFTER_DAYS: i64 = 7;

/// Deadlines for one ticket at one level, computed when it arrives there.
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    pub ack_due: DateTime<Utc>,
    pub ack_warn: DateTime<Utc>,
    pub resolve_due: DateTime<Utc>,
    pub resolve_warn: DateTime<Utc>,
}

pub struct SlaEngine {
    calendar: RwLock<WorkCalendar>,
    policies: RwLock<Vec<SlaPolicy>>,
}

impl SlaEngine {
    /// The shipped calendar and the default policies.
    pub fn with_defaults() -> anyhow::Result<SlaEngine> {
        let year = YearCalendar::from_toml_str(CALENDAR_2026)
            .map_err(|e| anyhow::anyhow!("shipped 2026 calendar: {e}"))?;
        Ok(SlaEngine {
            calendar: RwLock::new(WorkCalendar::new(WorkingHours::default(), [year])),
            policies: RwLock::new(sla::default_policies()),
        })
    }

    pub fn clocks(
        &self,
        level: Level,
        category_id: i64,
        urgency: Urgency,
        start: DateTime<Utc>,
    ) -> Clocks {
        let cal = self.calendar.read().unwrap_or_else(|p| p.into_inner());
        let policies = self.policies.read().unwrap_or_else(|p| p.into_inner());
        let defaults;
        let policy = match sla::select_policy(&policies, level, category_id, urgency) {
            Some(p) => p,
            None => {
                defaults = sla::default_policies();
                match sla::select_policy(&defaults, level, category_id, urgency) {
                    Some(p) => p,
                    // The defaults cover every level; this only guards a broken build.
                    None => {
                        let end = start + Duration::days(3);
                        return Clocks {
                            ack_due: end,
                            ack_warn: end,
                            resolve_due: end,
                            resolve_warn: end,
                        };
                    }
                }
            }
        };
        let ack_due = sla::due_at(&cal, start, policy.acknowledge_minutes, policy.clock);
        let resolve_due = sla::due_at(&cal, start, policy.resolve_minutes, policy.clock);
        // A warning that falls on the edge of a break (12:00, 17:30) waits for people to be back.
        let in_hours = |warn: DateTime<Utc>, due: DateTime<Utc>| match policy.clock {
            ClockKind::Working => cal.next_working_instant(warn).min(due),
            ClockKind::Calendar => warn,
        };
        let ack_warn = sla::warn_at(
            &cal,
            start,
            ack_due,
            policy.acknowledge_minutes,
            policy.clock,
        );
        let resolve_warn = sla::warn_at(
            &cal,
            start,
            resolve_due,
            policy.resolve_minutes,
            policy.clock,
        );
        Clocks {
            ack_due,
            ack_warn: in_hours(ack_warn, ack_due),
            resolve_due,
            resolve_warn: in_hours(resolve_warn, resolve_due),
        }
    }
}
