//! `GET /stats/trend`: tickets created and closed per local day (Asia/Shanghai) of the range.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use chrono_tz::Asia::Shanghai;
use serde::Serialize;
use utoipa::ToSchema;

use super::scope::{Range, StatsScope};
use super::sql;
use crate::db::DbConn;
use crate::error::AppResult;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TrendDay {
    /// Local date (Asia/Shanghai), `YYYY-MM-DD`.
    pub date: String,
    /// Tickets created that day.
    pub created: i64,
    /// Tickets closed that day (status closed now: confirmed or closed automatically).
    pub closed: i64,
}

pub fn local_date(t: NaiveDateTime) -> NaiveDate {
    t.and_utc().with_timezone(&Shanghai).date_naive()
}

/// One row per local day touched by the range, zeros included.
pub fn days_of(range: &Range) -> Vec<NaiveDate> {
    let first = local_date(range.from.naive_utc());
    let last = local_date((range.to - Duration::microseconds(1)).naive_utc());
    first.iter_days().take_while(|d| *d <= last).collect()
}

pub fn trend(conn: &mut DbConn, scope: &StatsScope, range: &Range) -> AppResult<Vec<TrendDay>> {
    let created = sql::created_per_hour(conn, scope, range)?;
    let closed = sql::closed_per_hour(conn, scope, range)?;
    Ok(trend_days(
        range,
        created
            .iter()
            .filter_map(|h| Some((utc_hour(&h.hour)?, h.n))),
        closed
            .iter()
            .filter_map(|h| Some((utc_hour(&h.hour)?, h.n))),
    ))
}

/// `YYYY-MM-DD HH` (UTC) as the start of that hour.
fn utc_hour(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(&format!("{s}:00:00"), "%Y-%m-%d %H:%M:%S").ok()
}

/// Counts per instant (here: per UTC hour) summed per local day of the range, zeros included.
pub fn trend_days(
    range: &Range,
    created: impl Iterator<Item = (NaiveDateTime, i64)>,
    closed: impl Iterator<Item = (NaiveDateTime, i64)>,
) -> Vec<TrendDay> {
    let mut by_day: BTreeMap<NaiveDate, (i64, i64)> =
        days_of(range).into_iter().map(|d| (d, (0, 0))).collect();
    for (c, n) in created {
        if let Some(e) = by_day.get_mut(&local_date(c)) {
            e.0 += n;
        }
    }
    for (c, n) in closed {
        if let Some(e) = by_day.get_mut(&local_date(c)) {
            e.1 += n;
        }
    }
    by_day
        .into_iter()
        .map(|(d, (created, closed))| TrendDay {
            date: d.format("%Y-%m-%d").to_string(),
            created,
            closed,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::stats::scope::parse_range;

    #[test]
    fn a_range_of_dates_has_a_row_for_each_local_day() {
        let now = chrono::Utc::now();
        let r = parse_range(Some("2026-11-01"), Some("2026-11-30"), now).expect("range");
        assert_eq!(days_of(&r).len(), 30);
    }
}
