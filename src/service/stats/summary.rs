//! `GET /stats/summary`: the four rates, counts by status and level, the active and overdue
//! tickets now, and the medians.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::scope::{Range, StatsScope};
use super::sql::{self, GroupBy};
use crate::db::DbConn;
use crate::domain::metrics::{LevelCounts, LevelMedians, RateCounts, StatusCounts, Tally};
use crate::domain::ticket::Level;
use crate::error::AppResult;

/// `GET /stats/summary`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Summary {
    /// The range actually used (inclusive), as instants.
    pub from: DateTime<Utc>,
    /// The end of the range (exclusive).
    pub to: DateTime<Utc>,
    pub scope: StatsScope,
    /// Tickets created in the range.
    pub tickets: i64,
    /// 响应率 (docs/metrics.md); null when no ticket counts.
    pub response_rate: Option<f64>,
    /// 解决率.
    pub resolution_rate: Option<f64>,
    /// 满意率.
    pub satisfaction_rate: Option<f64>,
    /// 小事不出小区率 (closed tickets confirmed by someone; auto-closed ones are not counted).
    pub settled_in_compound_rate: Option<f64>,
    /// 确认办结率: closed tickets confirmed by the resident, a callback or the raising level
    /// rather than closed automatically.
    pub confirmed_rate: Option<f64>,
    /// Auto-closed tickets of the cohort: resolved, but nobody confirmed.
    pub resolved_unconfirmed: i64,
    /// 回访满意率: callbacks of closures in the range that reached the resident, share
    /// satisfied or basically satisfied.
    pub callback_satisfaction_rate: Option<f64>,
    /// The callbacks of closures in the range.
    pub callbacks: super::ledger::CallbackSummary,
    /// Numerator and denominator of each rate.
    pub rate_counts: RateCounts,
    /// Tickets created in the range, by their status now.
    pub by_status: StatusCounts,
    /// Tickets created in the range, by their level now.
    pub by_level: LevelCounts,
    /// Open or acknowledged tickets in scope now (any creation date), by level.
    pub open_now_by_level: LevelCounts,
    /// Open or acknowledged tickets in scope past their running deadline now (any creation date).
    pub overdue: i64,
    /// Median seconds to the first answer: `all` per ticket from creation, per level per stay.
    pub median_first_answer_seconds: LevelMedians,
    /// Median seconds to settlement: `all` per closed ticket from creation to its resolution,
    /// per level per stay from arrival to a resolve there.
    pub median_settle_seconds: LevelMedians,
}

impl Summary {
    /// The summary of the cohort `tally` (tickets created in `range`, by status and level now)
    /// and of the active tickets now.
    pub fn new(
        range: &Range,
        scope: &StatsScope,
        mut tally: Tally,
        by_status: StatusCounts,
        by_level: LevelCounts,
        open_now_by_level: LevelCounts,
        overdue: i64,
    ) -> Summary {
        let c = tally.counts;
        Summary {
            from: range.from,
            to: range.to,
            scope: *scope,
            tickets: tally.tickets,
            response_rate: c.response.rate(),
            resolution_rate: c.resolution.rate(),
            satisfaction_rate: c.satisfaction.rate(),
            settled_in_compound_rate: c.settled_in_compound.rate(),
            confirmed_rate: c.confirmed.rate(),
            resolved_unconfirmed: c.confirmed.denominator - c.confirmed.numerator,
            callback_satisfaction_rate: None,
            callbacks: Default::default(),
            rate_counts: c,
            by_status,
            by_level,
            open_now_by_level,
            overdue,
            median_first_answer_seconds: tally.median_first_answer(),
            median_settle_seconds: tally.median_settle(),
        }
    }
}

/// `GET /stats/summary`: aggregates of the stored facts (see [`super::facts`]); the same
/// numbers as replaying every cohort ticket's history and judging it
/// (`domain::metrics::judge`), which the integration tests check.
pub fn summary(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    now: DateTime<Utc>,
) -> AppResult<Summary> {
    let now_ts = now.naive_utc();
    let mut tally = Tally::default();
    let mut by_status = StatusCounts::default();
    let mut by_level = LevelCounts::default();
    for g in sql::cohort_groups(conn, scope, range, GroupBy::Nothing, now_ts)? {
        tally.tickets += g.tickets;
        by_status.add(g.status, g.tickets);
        by_level.add(g.level, g.tickets);
        g.add_to(&mut tally.counts);
    }
    let mut open_now_by_level = LevelCounts::default();
    let mut overdue = 0;
    for a in sql::active_groups(conn, scope, GroupBy::Nothing, now_ts)? {
        open_now_by_level.add(a.level, a.active);
        overdue += a.overdue;
    }
    for (_, a, s) in sql::ticket_durations(conn, scope, range, GroupBy::Nothing)? {
        tally.add_durations(a, s);
    }
    for level in Level::ALL {
        for (a, s) in sql::stay_durations(conn, scope, range, level.as_str())? {
            tally.add_stay(level, a, s);
        }
    }
    let mut s = Summary::new(
        range,
        scope,
        tally,
        by_status,
        by_level,
        open_now_by_level,
        overdue,
    );
    s.callbacks = super::ledger::callback_summary(conn, scope, range)?;
    s.callback_satisfaction_rate = s.callbacks.satisfaction_rate();
    Ok(s)
}
