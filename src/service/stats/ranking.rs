//! `GET /stats/ranking`: the communities or compounds in scope with their rates, overdue
//! tickets and medians, in the requested order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::{Range, ScopeFilter, StatsScope};
use super::sql::{self, GroupBy};
use crate::db::schema::org_units;
use crate::db::DbConn;
use crate::domain::metrics::{RateCounts, Tally};
use crate::error::AppResult;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankUnit {
    #[default]
    Community,
    Compound,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankSort {
    ResponseRate,
    #[default]
    ResolutionRate,
    SatisfactionRate,
    SettledInCompoundRate,
    /// Most overdue first.
    Overdue,
    Tickets,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RankRow {
    /// 1-based position in this ordering.
    pub rank: i64,
    pub unit_id: i64,
    pub name: String,
    /// Tickets created in the range (a compound keeps its tickets after they go up).
    pub tickets: i64,
    pub response_rate: Option<f64>,
    pub resolution_rate: Option<f64>,
    pub satisfaction_rate: Option<f64>,
    pub settled_in_compound_rate: Option<f64>,
    pub rate_counts: RateCounts,
    /// Open or acknowledged tickets past their running deadline now.
    pub overdue: i64,
    /// Per ticket, from creation to the first answer at any level.
    pub median_first_answer_seconds: Option<i64>,
    /// Per closed ticket, from creation to its resolution.
    pub median_settle_seconds: Option<i64>,
    /// Urges (催办) the unit received in the range while its level was accountable.
    pub urges: i64,
}

/// The units of `kind` in scope, with names.
pub(crate) fn units_in_scope(
    conn: &mut DbConn,
    scope: &StatsScope,
    unit: RankUnit,
) -> AppResult<Vec<(i64, String)>> {
    let communities: Vec<(i64, String)> = match scope.filter() {
        ScopeFilter::Community(c) => org_units::table
            .filter(org_units::id.eq(c))
            .select((org_units::id, org_units::name))
            .load(conn)?,
        ScopeFilter::Street(s) => org_units::table
            .filter(org_units::parent_id.eq(s))
            .filter(org_units::kind.eq("community"))
            .filter(org_units::archived_at.is_null())
            .order(org_units::id.asc())
            .select((org_units::id, org_units::name))
            .load(conn)?,
        ScopeFilter::All => org_units::table
            .filter(org_units::kind.eq("community"))
            .filter(org_units::archived_at.is_null())
            .order(org_units::id.asc())
            .select((org_units::id, org_units::name))
            .load(conn)?,
    };
    match unit {
        RankUnit::Community => Ok(communities),
        RankUnit::Compound => {
            let ids: Vec<i64> = communities.iter().map(|c| c.0).collect();
            Ok(org_units::table
                .filter(org_units::parent_id.eq_any(ids))
                .filter(org_units::kind.eq("compound"))
                .filter(org_units::archived_at.is_null())
                .order(org_units::id.asc())
                .select((org_units::id, org_units::name))
                .load(conn)?)
        }
    }
}

/// Orders rows: rates highest first (units without a rate last), overdue and tickets most
/// first; ties by unit id. Then numbers them.
pub fn order_ranking(rows: &mut [RankRow], sort: RankSort) {
    fn key(r: &RankRow, sort: RankSort) -> f64 {
        let v = match sort {
            RankSort::ResponseRate => r.response_rate,
            RankSort::ResolutionRate => r.resolution_rate,
            RankSort::SatisfactionRate => r.satisfaction_rate,
            RankSort::SettledInCompoundRate => r.settled_in_compound_rate,
            RankSort::Overdue => Some(r.overdue as f64),
            RankSort::Tickets => Some(r.tickets as f64),
        };
        v.unwrap_or(f64::NEG_INFINITY)
    }
    rows.sort_by(|a, b| {
        key(b, sort)
            .total_cmp(&key(a, sort))
            .then(a.unit_id.cmp(&b.unit_id))
    });
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i as i64 + 1;
    }
}

/// `GET /stats/ranking`: aggregates of the stored facts per unit; the same numbers as replaying
/// every cohort ticket's history, which the integration tests check.
pub fn ranking(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    unit: RankUnit,
    sort: RankSort,
    now: DateTime<Utc>,
) -> AppResult<Vec<RankRow>> {
    let now_ts = now.naive_utc();
    let group = match unit {
        RankUnit::Community => GroupBy::Community,
        RankUnit::Compound => GroupBy::Compound,
    };
    let mut tallies: HashMap<i64, Tally> = HashMap::new();
    for g in sql::cohort_groups(conn, scope, range, group, now_ts)? {
        let t = tallies.entry(g.unit).or_default();
        t.tickets += g.tickets;
        g.add_to(&mut t.counts);
    }
    for (u, a, s) in sql::ticket_durations(conn, scope, range, group)? {
        tallies.entry(u).or_default().add_durations(a, s);
    }
    let mut overdue: HashMap<i64, i64> = HashMap::new();
    for a in sql::active_groups(conn, scope, group, now_ts)? {
        if a.overdue > 0 {
            *overdue.entry(a.unit).or_default() += a.overdue;
        }
    }
    let mut rows = rank_units(conn, scope, unit, sort, tallies, overdue)?;
    let urges: HashMap<i64, i64> = sql::urge_groups(conn, scope, range, group)?
        .into_iter()
        .map(|g| (g.unit, g.n))
        .collect();
    for r in &mut rows {
        r.urges = urges.get(&r.unit_id).copied().unwrap_or(0);
    }
    Ok(rows)
}

/// Names the units in scope (plus archived ones that have tickets or overdue ones), fills in
/// their measures (`tallies` and `overdue` by unit id) and orders them.
pub fn rank_units(
    conn: &mut DbConn,
    scope: &StatsScope,
    unit: RankUnit,
    sort: RankSort,
    mut tallies: HashMap<i64, Tally>,
    overdue: HashMap<i64, i64>,
) -> AppResult<Vec<RankRow>> {
    let mut units = units_in_scope(conn, scope, unit)?;
    // Units archived since, but with tickets in the range, still appear.
    let missing: Vec<i64> = tallies
        .keys()
        .chain(overdue.keys())
        .filter(|id| !units.iter().any(|u| u.0 == **id))
        .copied()
        .collect();
    if !missing.is_empty() {
        let extra: Vec<(i64, String)> = org_units::table
            .filter(org_units::id.eq_any(&missing))
            .select((org_units::id, org_units::name))
            .load(conn)?;
        units.extend(extra);
    }
    let mut rows: Vec<RankRow> = units
        .into_iter()
        .map(|(id, name)| {
            let mut t = tallies.remove(&id).unwrap_or_default();
            let c = t.counts;
            RankRow {
                rank: 0,
                unit_id: id,
                name,
                tickets: t.tickets,
                response_rate: c.response.rate(),
                resolution_rate: c.resolution.rate(),
                satisfaction_rate: c.satisfaction.rate(),
                settled_in_compound_rate: c.settled_in_compound.rate(),
                rate_counts: c,
                overdue: overdue.get(&id).copied().unwrap_or(0),
                median_first_answer_seconds: t.median_first_answer().all,
                median_settle_seconds: t.median_settle().all,
                urges: 0,
            }
        })
        .collect();
    order_ranking(&mut rows, sort);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_puts_units_without_a_rate_last() {
        let row = |id: i64, r: Option<f64>, overdue: i64| RankRow {
            rank: 0,
            unit_id: id,
            name: String::new(),
            tickets: 0,
            response_rate: r,
            resolution_rate: r,
            satisfaction_rate: r,
            settled_in_compound_rate: r,
            rate_counts: RateCounts::default(),
            overdue,
            median_first_answer_seconds: None,
            median_settle_seconds: None,
            urges: 0,
        };
        let mut rows = vec![row(1, None, 0), row(2, Some(0.5), 3), row(3, Some(0.9), 1)];
        order_ranking(&mut rows, RankSort::ResponseRate);
        assert_eq!(
            rows.iter().map(|r| r.unit_id).collect::<Vec<_>>(),
            [3, 2, 1]
        );
        assert_eq!(rows[0].rank, 1);
        order_ranking(&mut rows, RankSort::Overdue);
        assert_eq!(
            rows.iter().map(|r| r.unit_id).collect::<Vec<_>>(),
            [2, 3, 1]
        );
    }
}
