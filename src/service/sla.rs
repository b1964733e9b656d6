//! The SLA engine the ticket flows and the sweeper use: the working calendar and the policies in
//! force. Defaults come from config; admins' policies and calendars live in the database and are
//! reloaded by every instance at each sweep, so all instances agree within one sweep interval.

use std::sync::RwLock;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use crate::config::{CallbackSettings, SlaSettings};
use crate::db::schema::{sla_policies, work_calendars};
use crate::db::DbConn;
use crate::domain::calendar::{WorkCalendar, WorkingHours, YearCalendar, YearCalendarSpec};
use crate::domain::sla::{self, ClockKind, SlaPolicy};
use crate::domain::ticket::{Clocks, Deadlines, Level, Urgency};
use crate::error::{AppError, AppResult};

/// The 2026 calendar ships with the binary.
const CALENDAR_2026: &str = include_str!("../../config/calendars/2026.toml");

pub struct SlaEngine {
    calendar: RwLock<WorkCalendar>,
    policies: RwLock<Vec<SlaPolicy>>,
    config_policies: Vec<SlaPolicy>,
    shipped: Vec<YearCalendar>,
    pub pause_cap: Duration,
    pub auto_close_after: Duration,
    /// Which closures are called back, by whom and by when (the `[callbacks]` settings): the
    /// commit path chooses them as tickets close.
    pub callbacks: CallbackSettings,
}

impl SlaEngine {
    /// The shipped calendar and the built-in default policies.
    pub fn with_defaults() -> anyhow::Result<SlaEngine> {
        Self::build(
            sla::default_policies(),
            Duration::minutes(3 * sla::WORKING_DAY_MINUTES),
            Duration::days(7),
        )
    }

    pub fn from_settings(s: &SlaSettings) -> anyhow::Result<SlaEngine> {
        Self::build(
            s.policies.clone(),
            Duration::minutes(s.pause_cap_minutes),
            Duration::days(s.auto_close_days),
        )
    }

    fn build(
        policies: Vec<SlaPolicy>,
        pause_cap: Duration,
        auto_close_after: Duration,
    ) -> anyhow::Result<SlaEngine> {
        let year = YearCalendar::from_toml_str(CALENDAR_2026)
            .map_err(|e| anyhow::anyhow!("shipped 2026 calendar: {e}"))?;
        Ok(SlaEngine {
            calendar: RwLock::new(WorkCalendar::new(WorkingHours::default(), [year.clone()])),
            policies: RwLock::new(policies.clone()),
            config_policies: policies,
            shipped: vec![year],
            pause_cap,
            auto_close_after,
            callbacks: CallbackSettings {
                level: crate::domain::callback::CallbackLevel::Street,
                sample_percent: 10,
                due_working_days: 3,
            },
        })
    }

    /// The engine with the `[callbacks]` settings instead of the defaults.
    pub fn with_callbacks(mut self, c: &CallbackSettings) -> SlaEngine {
        self.callbacks = c.clone();
        self
    }

    /// When a callback of a closure at `closed` is due: the configured working days later.
    pub fn callback_due(&self, closed: DateTime<Utc>) -> DateTime<Utc> {
        self.extend(
            ClockKind::Working,
            closed,
            Duration::minutes(self.callbacks.due_working_days * sla::WORKING_DAY_MINUTES),
        )
    }

    /// Picks up the policies and calendars admins stored in the database.
    pub fn reload(&self, conn: &mut DbConn) -> AppResult<()> {
        let stored = load_policies(conn)?;
        let policies = if stored.is_empty() {
            self.config_policies.clone()
        } else {
            stored
        };
        let mut years = self.shipped.clone();
        for (year, spec) in work_calendars::table
            .select((work_calendars::year, work_calendars::spec))
            .load::<(i32, String)>(conn)?
        {
            match serde_json::from_str::<YearCalendarSpec>(&spec)
                .map_err(|e| e.to_string())
                .and_then(|s| YearCalendar::try_from(s).map_err(|e| e.to_string()))
            {
                Ok(y) => {
                    years.retain(|k| k.year() != y.year());
                    years.push(y);
                }
                Err(e) => tracing::error!(year, error = %e, "stored calendar is invalid; ignored"),
            }
        }
        let fresh = WorkCalendar::new(WorkingHours::default(), years);
        *self.calendar.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        *self.policies.write().unwrap_or_else(|p| p.into_inner()) = policies;
        Ok(())
    }

    pub fn policies(&self) -> Vec<SlaPolicy> {
        self.policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn calendar(&self) -> WorkCalendar {
        self.calendar
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn policy_for(&self, level: Level, category_id: i64, urgency: Urgency) -> SlaPolicy {
        let policies = self.policies.read().unwrap_or_else(|p| p.into_inner());
        sla::select_policy(&policies, level, category_id, urgency)
            .cloned()
            .or_else(|| {
                sla::select_policy(&sla::default_policies(), level, category_id, urgency).cloned()
            })
            .unwrap_or(SlaPolicy {
                id: None,
                level,
                category_id: None,
                urgency: None,
                acknowledge_minutes: 240,
                resolve_minutes: 3 * sla::WORKING_DAY_MINUTES,
                decide_minutes: sla::WORKING_DAY_MINUTES,
                clock: ClockKind::Working,
            })
    }
}

impl Deadlines for SlaEngine {
    fn auto_close_after(&self) -> Duration {
        self.auto_close_after
    }

    fn clocks(
        &self,
        level: Level,
        category_id: i64,
        urgency: Urgency,
        start: DateTime<Utc>,
    ) -> Clocks {
        let policy = self.policy_for(level, category_id, urgency);
        let cal = self.calendar.read().unwrap_or_else(|p| p.into_inner());
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
            decide_due: sla::due_at(&cal, start, policy.decide_minutes, policy.clock),
            clock: policy.clock,
        }
    }

    /// How far a pause from `from` to `to` pushes the settle deadline back, given what was already
    /// paused at this level (capped by `pause_cap`): (extension, new total).
    fn pause_extension(
        &self,
        clock: ClockKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        already: Duration,
    ) -> (Duration, Duration) {
        let cal = self.calendar.read().unwrap_or_else(|p| p.into_inner());
        sla::paused_extension(&cal, from, to, already, self.pause_cap, clock)
    }

    fn latest_extension(&self, clock: ClockKind, due: DateTime<Utc>) -> DateTime<Utc> {
        let days = crate::domain::ticket::MAX_EXTENSION_WORKING_DAYS;
        match clock {
            ClockKind::Working => self.extend(
                clock,
                due,
                Duration::minutes(days * sla::WORKING_DAY_MINUTES),
            ),
            ClockKind::Calendar => due + Duration::days(days),
        }
    }

    fn extend(&self, clock: ClockKind, due: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
        let cal = self.calendar.read().unwrap_or_else(|p| p.into_inner());
        sla::extend_due(&cal, due, by, clock)
    }

    /// When a pause that began at `from` uses up what is left of the cap.
    fn pause_ends(
        &self,
        clock: ClockKind,
        from: DateTime<Utc>,
        already: Duration,
    ) -> DateTime<Utc> {
        let left = (self.pause_cap - already).max(Duration::zero());
        self.extend(clock, from, left)
    }
}

fn load_policies(conn: &mut DbConn) -> AppResult<Vec<SlaPolicy>> {
    type Row = (
        i64,
        String,
        Option<i64>,
        Option<String>,
        i64,
        i64,
        i64,
        String,
    );
    let rows: Vec<Row> = sla_policies::table
        .order(sla_policies::id.asc())
        .select((
            sla_policies::id,
            sla_policies::level,
            sla_policies::category_id,
            sla_policies::urgency,
            sla_policies::acknowledge_minutes,
            sla_policies::resolve_minutes,
            sla_policies::decide_minutes,
            sla_policies::clock,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, level, category_id, urgency, ack, res, decide, clock)| {
                Some(SlaPolicy {
                    id: Some(id),
                    level: Level::parse(&level)?,
                    category_id,
                    urgency: urgency.as_deref().and_then(Urgency::parse),
                    acknowledge_minutes: ack,
                    resolve_minutes: res,
                    decide_minutes: decide,
                    clock: if clock == "calendar" {
                        ClockKind::Calendar
                    } else {
                        ClockKind::Working
                    },
                })
            },
        )
        .collect())
}

/// Replaces the stored policies (admin). Every level needs a policy without category and
/// urgency, so that no ticket is ever without a clock.
pub fn replace_policies(
    conn: &mut DbConn,
    policies: &[SlaPolicy],
    now: chrono::NaiveDateTime,
) -> AppResult<()> {
    for p in policies {
        p.validate()
            .map_err(|e| AppError::validation("invalid_policy", format!("时限策略无效：{e}")))?;
    }
    for level in [Level::Compound, Level::Community, Level::Street] {
        if !policies
            .iter()
            .any(|p| p.level == level && p.category_id.is_none() && p.urgency.is_none())
        {
            return Err(AppError::validation(
                "missing_default_policy",
                format!("{} 须有一条不限类别和紧急程度的基础策略", level.label_zh()),
            ));
        }
    }
    diesel::delete(sla_policies::table).execute(conn)?;
    for p in policies {
        diesel::insert_into(sla_policies::table)
            .values((
                sla_policies::level.eq(p.level.as_str()),
                sla_policies::category_id.eq(p.category_id),
                sla_policies::urgency.eq(p.urgency.map(|u| u.as_str())),
                sla_policies::acknowledge_minutes.eq(p.acknowledge_minutes),
                sla_policies::resolve_minutes.eq(p.resolve_minutes),
                sla_policies::decide_minutes.eq(p.decide_minutes),
                sla_policies::clock.eq(match p.clock {
                    ClockKind::Working => "working",
                    ClockKind::Calendar => "calendar",
                }),
                sla_policies::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Stores a year's calendar (admin); replaces that year if present.
pub fn store_calendar(
    conn: &mut DbConn,
    year: &YearCalendar,
    now: chrono::NaiveDateTime,
) -> AppResult<()> {
    let spec = serde_json::to_string(year.spec()).map_err(|e| AppError::Internal(e.into()))?;
    diesel::delete(work_calendars::table.filter(work_calendars::year.eq(year.year())))
        .execute(conn)?;
    diesel::insert_into(work_calendars::table)
        .values((
            work_calendars::year.eq(year.year()),
            work_calendars::spec.eq(spec),
            work_calendars::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}
