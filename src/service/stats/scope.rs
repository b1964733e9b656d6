//! Which tickets a statistics request covers: the time range, and the scope the caller may see
//! narrowed by the request's parameters.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::dsl;
use diesel::prelude::*;
use diesel::query_dsl::methods;
use diesel::sql_types::BigInt;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::db::schema::org_units;
use crate::db::DbConn;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};

/// Longest range a statistics request may cover.
pub const MAX_RANGE_DAYS: i64 = 366;
/// Default range: the last 30 days.
pub const DEFAULT_RANGE_DAYS: i64 = 30;

/// A half-open instant range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

fn local_midnight(d: NaiveDate) -> Option<DateTime<Utc>> {
    Shanghai
        .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// One bound: an RFC 3339 instant, or a local date `YYYY-MM-DD` (Asia/Shanghai). A date as
/// `to` is inclusive: it means the end of that local day.
fn parse_bound(field: &'static str, s: &str, is_to: bool) -> AppResult<DateTime<Utc>> {
    let s = s.trim();
    let bad = || {
        AppError::validation(
            "invalid_date",
            format!("{field} 须为 RFC 3339 时间（如 2026-11-01T00:00:00+08:00）或日期 YYYY-MM-DD"),
        )
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
    let d = if is_to {
        d.succ_opt().ok_or_else(bad)?
    } else {
        d
    };
    local_midnight(d).ok_or_else(bad)
}

/// `from`/`to` as given (either may be absent): default `to` = now, default `from` = `to` − 30
/// days; `from < to` and at most 366 days apart.
pub fn parse_range(from: Option<&str>, to: Option<&str>, now: DateTime<Utc>) -> AppResult<Range> {
    let from = from.filter(|s| !s.trim().is_empty());
    let to = to.filter(|s| !s.trim().is_empty());
    let to = match to {
        Some(s) => parse_bound("to", s, true)?,
        None => now,
    };
    let from = match from {
        Some(s) => parse_bound("from", s, false)?,
        None => to - Duration::days(DEFAULT_RANGE_DAYS),
    };
    if from >= to {
        return Err(AppError::validation("invalid_range", "from 须早于 to"));
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(AppError::validation(
            "invalid_range",
            format!("统计区间最长 {MAX_RANGE_DAYS} 天"),
        ));
    }
    Ok(Range {
        from: crate::db::round_ts(from).and_utc(),
        to: crate::db::round_ts(to).and_utc(),
    })
}

/// The tickets a statistics request covers: a street, a community, or (admin) everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatsScope {
    pub street_id: Option<i64>,
    pub community_id: Option<i64>,
}

/// The one unit column a scoped query filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeFilter {
    All,
    Street(i64),
    Community(i64),
}

impl StatsScope {
    /// The narrowest unit of the scope: the community when there is one (it lies in the
    /// street), else the street, else everything.
    pub fn filter(&self) -> ScopeFilter {
        match (self.community_id, self.street_id) {
            (Some(c), _) => ScopeFilter::Community(c),
            (None, Some(s)) => ScopeFilter::Street(s),
            (None, None) => ScopeFilter::All,
        }
    }
}

impl ScopeFilter {
    /// `q` narrowed to the scope, given the street and community columns of its table.
    pub fn apply<Q, S, C>(self, q: Q, street: S, community: C) -> Q
    where
        S: ExpressionMethods + Expression<SqlType = BigInt>,
        C: ExpressionMethods + Expression<SqlType = BigInt>,
        Q: methods::FilterDsl<dsl::Eq<S, i64>, Output = Q>
            + methods::FilterDsl<dsl::Eq<C, i64>, Output = Q>,
    {
        match self {
            ScopeFilter::All => q,
            ScopeFilter::Street(s) => methods::FilterDsl::filter(q, street.eq(s)),
            ScopeFilter::Community(c) => methods::FilterDsl::filter(q, community.eq(c)),
        }
    }

    /// The column name (`street_id` / `community_id`) and the id, for SQL text.
    pub fn column(self) -> Option<(&'static str, i64)> {
        match self {
            ScopeFilter::All => None,
            ScopeFilter::Street(s) => Some(("street_id", s)),
            ScopeFilter::Community(c) => Some(("community_id", c)),
        }
    }
}

/// Only street staff, community staff and admins see statistics.
pub fn require_stats_role(user: &AuthUser) -> AppResult<()> {
    match user.role {
        Role::StreetStaff | Role::CommunityStaff | Role::Admin => Ok(()),
        Role::CompoundStaff | Role::Resident => Err(AppError::Forbidden),
    }
}

fn parent_of(conn: &mut DbConn, id: i64, kind: &str) -> AppResult<Option<Option<i64>>> {
    Ok(org_units::table
        .filter(org_units::id.eq(id))
        .filter(org_units::kind.eq(kind))
        .select(org_units::parent_id)
        .first::<Option<i64>>(conn)
        .optional()?)
}

/// The caller's scope narrowed by the optional `street_id` / `community_id` parameters. A unit
/// outside the caller's scope (or not a unit of that kind) is 404, as for tickets.
pub fn resolve_scope(
    conn: &mut DbConn,
    user: &AuthUser,
    street_id: Option<i64>,
    community_id: Option<i64>,
) -> AppResult<StatsScope> {
    require_stats_role(user)?;
    let unit = user.org_unit_id.unwrap_or(-1);
    // The street the caller may see (None = all, admin).
    let own_street = match user.role {
        Role::StreetStaff => Some(unit),
        Role::CommunityStaff => parent_of(conn, unit, "community")?.flatten(),
        _ => None,
    };
    let street = match (own_street, street_id) {
        (Some(own), Some(asked)) if own != asked => return Err(AppError::NotFound),
        (Some(own), _) => Some(own),
        (None, Some(asked)) => {
            parent_of(conn, asked, "street")?.ok_or(AppError::NotFound)?;
            Some(asked)
        }
        (None, None) => None,
    };
    let community = match (user.role, community_id) {
        (Role::CommunityStaff, Some(c)) if c != unit => return Err(AppError::NotFound),
        (Role::CommunityStaff, _) => Some(unit),
        (_, Some(c)) => {
            let parent = parent_of(conn, c, "community")?.ok_or(AppError::NotFound)?;
            if street.is_some() && parent != street {
                return Err(AppError::NotFound);
            }
            Some(c)
        }
        (_, None) => None,
    };
    Ok(StatsScope {
        street_id: street,
        community_id: community,
    })
}

/// The names of the given units (archived ones included).
pub fn unit_names(conn: &mut DbConn, mut ids: Vec<i64>) -> AppResult<HashMap<i64, String>> {
    ids.sort_unstable();
    ids.dedup();
    Ok(org_units::table
        .filter(org_units::id.eq_any(&ids))
        .select((org_units::id, org_units::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_take_dates_inclusively_and_instants_exclusively() {
        let now = Utc::now();
        let r = parse_range(Some("2026-11-01"), Some("2026-11-30"), now).expect("range");
        assert_eq!(r.from.to_rfc3339(), "2026-10-31T16:00:00+00:00");
        assert_eq!(r.to.to_rfc3339(), "2026-11-30T16:00:00+00:00");
        let r = parse_range(
            Some("2026-11-01T00:00:00+08:00"),
            Some("2026-11-02T00:00:00Z"),
            now,
        )
        .expect("range");
        assert_eq!(r.to.to_rfc3339(), "2026-11-02T00:00:00+00:00");
        let r = parse_range(None, None, now).expect("default");
        assert_eq!(r.to - r.from, Duration::days(30));
        for (f, t) in [
            (Some("yesterday"), None),
            (Some("2026-13-01"), None),
            (Some("2026-11-05"), Some("2026-11-04")),
            (Some("2024-01-01"), Some("2026-01-01")),
        ] {
            assert!(
                matches!(parse_range(f, t, now), Err(AppError::Validation { .. })),
                "{f:?} {t:?}"
            );
        }
    }

    #[test]
    fn a_community_narrows_the_scope_before_its_street() {
        let s = |street_id, community_id| StatsScope {
            street_id,
            community_id,
        };
        assert_eq!(s(Some(1), Some(2)).filter(), ScopeFilter::Community(2));
        assert_eq!(s(None, Some(2)).filter(), ScopeFilter::Community(2));
        assert_eq!(s(Some(1), None).filter(), ScopeFilter::Street(1));
        assert_eq!(s(None, None).filter(), ScopeFilter::All);
    }
}
