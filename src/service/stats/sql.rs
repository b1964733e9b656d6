//! The statistics' aggregate queries over the stored facts (`ticket_stats`, `ticket_stays`) and
//! the active tickets. Written as SQL text because they need `CASE` inside `SUM` and `GROUP BY`
//! over both backends; the text is the same on both except the placeholders (`?` / `$n`) and
//! the hour bucket of the trend.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel::sqlite::Sqlite;

use super::{Range, StatsScope};
use crate::db::schema::{ticket_stats, ticket_stays};
use crate::db::{DbConn, MultiBackend};
use crate::error::AppResult;

enum Bind {
    Id(i64),
    Ts(NaiveDateTime),
}

/// SQL text with `?` placeholders and the values bound to them, in order.
#[derive(Default)]
pub struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    pub fn id(&mut self, v: i64) -> &mut Self {
        self.text.push('?');
        self.binds.push(Bind::Id(v));
        self
    }

    pub fn ts(&mut self, v: NaiveDateTime) -> &mut Self {
        self.text.push('?');
        self.binds.push(Bind::Ts(v));
        self
    }

    /// ` AND street_id = ?` / ` AND community_id = ?` for the scope (nothing for all).
    pub fn scope(&mut self, scope: &StatsScope) -> &mut Self {
        match (scope.community_id, scope.street_id) {
            (Some(c), _) => self.push(" AND community_id = ").id(c),
            (None, Some(s)) => self.push(" AND street_id = ").id(s),
            (None, None) => self,
        }
    }

    /// ` AND created_at >= ? AND created_at < ?`.
    pub fn created_in(&mut self, range: &Range) -> &mut Self {
        self.push(" AND created_at >= ")
            .ts(range.from.naive_utc())
            .push(" AND created_at < ")
            .ts(range.to.naive_utc())
    }

    /// PostgreSQL numbers its placeholders. The texts built here contain no other `?`.
    fn numbered(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        let mut n = 0;
        for ch in self.text.chars() {
            if ch == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(ch);
            }
        }
        out
    }

    pub fn load<R>(&self, conn: &mut DbConn) -> AppResult<Vec<R>>
    where
        R: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
    {
        Ok(match conn {
            DbConn::Sqlite(c) => {
                let mut q: BoxedSqlQuery<'_, Sqlite, _> =
                    diesel::sql_query(self.text.clone()).into_boxed();
                for b in &self.binds {
                    q = match b {
                        Bind::Id(v) => q.bind::<BigInt, _>(*v),
                        Bind::Ts(v) => q.bind::<Timestamp, _>(*v),
                    };
                }
                q.load(c)?
            }
            DbConn::Pg(c) => {
                let mut q: BoxedSqlQuery<'_, Pg, _> =
                    diesel::sql_query(self.numbered()).into_boxed();
                for b in &self.binds {
                    q = match b {
                        Bind::Id(v) => q.bind::<BigInt, _>(*v),
                        Bind::Ts(v) => q.bind::<Timestamp, _>(*v),
                    };
                }
                q.load(c)?
            }
        })
    }
}

/// How the cohort rows are grouped besides status and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Nothing,
    Community,
    Compound,
}

impl GroupBy {
    fn column(self) -> &'static str {
        match self {
            GroupBy::Nothing => "CAST(0 AS BIGINT)",
            GroupBy::Community => "community_id",
            GroupBy::Compound => "compound_id",
        }
    }
}

/// Cohort tickets of one (unit, status, level), with the sums of the rates.
#[derive(Debug, QueryableByName)]
pub struct CohortGroup {
    #[diesel(sql_type = BigInt)]
    pub unit: i64,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub level: String,
    #[diesel(sql_type = BigInt)]
    pub tickets: i64,
    #[diesel(sql_type = BigInt)]
    pub response_den: i64,
    #[diesel(sql_type = BigInt)]
    pub response_num: i64,
    #[diesel(sql_type = BigInt)]
    pub resolution_den: i64,
    #[diesel(sql_type = BigInt)]
    pub resolution_num: i64,
    #[diesel(sql_type = BigInt)]
    pub rated: i64,
    #[diesel(sql_type = BigInt)]
    pub satisfied: i64,
    #[diesel(sql_type = BigInt)]
    pub never_up: i64,
}

/// The cohort per (unit, status, level): counts and rate sums, the clock applied at `now` as
/// `Outcome::response_at` / `resolution_at` do (a deadline before `now` makes the verdict false).
pub fn cohort_groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    group: GroupBy,
    now: NaiveDateTime,
) -> AppResult<Vec<CohortGroup>> {
    let mut q = Sql::default();
    q.push("SELECT ")
        .push(group.column())
        .push(" AS unit, status, level, COUNT(*) AS tickets")
        .push(", SUM(CASE WHEN response_due < ")
        .ts(now)
        .push(" THEN 1 WHEN response IS NOT NULL THEN 1 ELSE 0 END) AS response_den")
        .push(", SUM(CASE WHEN response_due < ")
        .ts(now)
        .push(" THEN 0 WHEN response THEN 1 ELSE 0 END) AS response_num")
        .push(", SUM(CASE WHEN resolution_due < ")
        .ts(now)
        .push(" THEN 1 WHEN resolution IS NOT NULL THEN 1 ELSE 0 END) AS resolution_den")
        .push(", SUM(CASE WHEN resolution_due < ")
        .ts(now)
        .push(" THEN 0 WHEN resolution THEN 1 ELSE 0 END) AS resolution_num")
        .push(", SUM(CASE WHEN rating IS NOT NULL THEN 1 ELSE 0 END) AS rated")
        .push(", SUM(CASE WHEN rating >= 4 THEN 1 ELSE 0 END) AS satisfied")
        .push(", SUM(CASE WHEN went_up THEN 0 ELSE 1 END) AS never_up")
        .push(" FROM ticket_stats WHERE 1 = 1")
        .scope(scope)
        .created_in(range)
        .push(" GROUP BY ");
    if group != GroupBy::Nothing {
        q.push(group.column()).push(", ");
    }
    q.push("status, level");
    q.load(conn)
}

/// Active tickets in scope now, per (unit, level), and how many of them are overdue: the
/// queue's rule, as `ActiveTicket::is_overdue`.
#[derive(Debug, QueryableByName)]
pub struct ActiveGroup {
    #[diesel(sql_type = BigInt)]
    pub unit: i64,
    #[diesel(sql_type = Text)]
    pub level: String,
    #[diesel(sql_type = BigInt)]
    pub active: i64,
    #[diesel(sql_type = BigInt)]
    pub overdue: i64,
}

pub fn active_groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    group: GroupBy,
    now: NaiveDateTime,
) -> AppResult<Vec<ActiveGroup>> {
    let mut q = Sql::default();
    q.push("SELECT ")
        .push(group.column())
        .push(" AS unit, level, COUNT(*) AS active")
        .push(", SUM(CASE WHEN overdue OR (due_at <> ")
        .ts(crate::service::tickets::no_deadline())
        .push(" AND due_at < ")
        .ts(now)
        .push(") THEN 1 ELSE 0 END) AS overdue")
        .push(" FROM tickets");
    // SQLite's planner, asked to group by compound, may pick any index on street_id and read
    // every ticket of the street; the partial covering index reads only the active ones.
    if let DbConn::Sqlite(_) = conn {
        match (scope.community_id, scope.street_id) {
            (Some(_), _) => q.push(" INDEXED BY tickets_active_community"),
            (None, Some(_)) => q.push(" INDEXED BY tickets_active_street"),
            (None, None) => &mut q,
        };
    }
    // Literal, not bound: the partial indexes tickets_active_* have this very condition.
    q.push(" WHERE status IN ('open', 'acknowledged')")
        .scope(scope)
        .push(" GROUP BY ");
    if group != GroupBy::Nothing {
        q.push(group.column()).push(", ");
    }
    q.push("level");
    q.load(conn)
}

#[derive(Debug, QueryableByName)]
pub struct HourCount {
    /// `YYYY-MM-DD HH` in UTC.
    #[diesel(sql_type = Text)]
    pub hour: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// Wraps `SELECT <bucket> AS h, COUNT(*) AS n FROM … GROUP BY <bucket>` (built by `body` after
/// the bucket expression) so that it returns `hour` as `YYYY-MM-DD HH` text in UTC.
fn per_hour(
    conn: &mut DbConn,
    column: &str,
    body: impl FnOnce(&mut Sql),
) -> AppResult<Vec<HourCount>> {
    let mut q = Sql::default();
    let bucket = match conn {
        // Diesel stores SQLite timestamps as text `YYYY-MM-DD HH:MM:SS[.ffffff]`.
        DbConn::Sqlite(_) => {
            q.push("SELECT ");
            format!("substr({column}, 1, 13)")
        }
        // Truncate per row (cheap), format per hour only (to_char per row is not).
        DbConn::Pg(_) => {
            q.push("SELECT to_char(h, 'YYYY-MM-DD HH24') AS hour, n FROM (SELECT ");
            format!("date_trunc('hour', {column})")
        }
    };
    q.push(&bucket).push(if matches!(conn, DbConn::Pg(_)) {
        " AS h"
    } else {
        " AS hour"
    });
    q.push(", COUNT(*) AS n");
    body(&mut q);
    q.push(" GROUP BY ").push(&bucket);
    if let DbConn::Pg(_) = conn {
        q.push(") AS b");
    }
    q.load(conn)
}

/// Cohort tickets per UTC hour of creation. Asia/Shanghai is a whole number of hours from UTC,
/// so an hour falls on exactly one local day.
pub fn created_per_hour(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<HourCount>> {
    per_hour(conn, "created_at", |q| {
        q.push(" FROM ticket_stats WHERE 1 = 1")
            .scope(scope)
            .created_in(range);
    })
}

/// Tickets in scope closed (and still closed) in the range, per UTC hour of closing.
pub fn closed_per_hour(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<HourCount>> {
    per_hour(conn, "closed_at", |q| {
        q.push(" FROM tickets WHERE closed_at >= ")
            .ts(range.from.naive_utc())
            .push(" AND closed_at < ")
            .ts(range.to.naive_utc())
            .push(" AND status = 'closed'")
            .scope(scope);
    })
}

#[derive(Debug, QueryableByName)]
pub struct CategoryGroup {
    #[diesel(sql_type = BigInt)]
    pub category_id: i64,
    #[diesel(sql_type = BigInt)]
    pub tickets: i64,
    #[diesel(sql_type = BigInt)]
    pub closed: i64,
}

pub fn category_groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<CategoryGroup>> {
    let mut q = Sql::default();
    q.push("SELECT category_id, COUNT(*) AS tickets")
        .push(", SUM(CASE WHEN status = 'closed' THEN 1 ELSE 0 END) AS closed")
        .push(" FROM ticket_stats WHERE 1 = 1")
        .scope(scope)
        .created_in(range)
        .push(" GROUP BY category_id");
    q.load(conn)
}

type StatsBoxed<'a> = ticket_stats::BoxedQuery<'a, MultiBackend>;

fn stats_cohort<'a>(scope: &StatsScope, range: &Range) -> StatsBoxed<'a> {
    let q = ticket_stats::table.into_boxed::<MultiBackend>();
    let q = match (scope.community_id, scope.street_id) {
        (Some(c), _) => q.filter(ticket_stats::community_id.eq(c)),
        (None, Some(s)) => q.filter(ticket_stats::street_id.eq(s)),
        (None, None) => q,
    };
    q.filter(ticket_stats::created_at.ge(range.from.naive_utc()))
        .filter(ticket_stats::created_at.lt(range.to.naive_utc()))
}

/// (unit, first answer secs, settle secs) of one cohort ticket.
pub type Durations = (i64, Option<i64>, Option<i64>);

/// Per cohort ticket with either: (unit, first answer secs, settle secs). The medians need
/// every value; only these narrow columns travel, straight from the covering index.
pub fn ticket_durations(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    group: GroupBy,
) -> AppResult<Vec<Durations>> {
    let q = stats_cohort(scope, range).filter(
        ticket_stats::first_answer_secs
            .is_not_null()
            .or(ticket_stats::settle_secs.is_not_null()),
    );
    let durations = (ticket_stats::first_answer_secs, ticket_stats::settle_secs);
    Ok(match group {
        GroupBy::Nothing => q
            .select(durations)
            .load::<(Option<i64>, Option<i64>)>(conn)?
            .into_iter()
            .map(|(a, s)| (0, a, s))
            .collect(),
        GroupBy::Community => q
            .select((ticket_stats::community_id, durations.0, durations.1))
            .load(conn)?,
        GroupBy::Compound => q
            .select((ticket_stats::compound_id, durations.0, durations.1))
            .load(conn)?,
    })
}

/// The answered stays at `level` of the cohort: (answer secs, settle secs).
pub fn stay_durations(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    level: &str,
) -> AppResult<Vec<(i64, Option<i64>)>> {
    let q = ticket_stays::table.into_boxed::<MultiBackend>();
    let q = match (scope.community_id, scope.street_id) {
        (Some(c), _) => q.filter(ticket_stays::community_id.eq(c)),
        (None, Some(s)) => q.filter(ticket_stays::street_id.eq(s)),
        (None, None) => q,
    };
    Ok(q.filter(ticket_stays::level.eq(level.to_string()))
        .filter(ticket_stays::created_at.ge(range.from.naive_utc()))
        .filter(ticket_stays::created_at.lt(range.to.naive_utc()))
        .select((ticket_stays::answer_secs, ticket_stays::settle_secs))
        .load(conn)?)
}

/// Moves between levels that happened in the range, per kind.
#[derive(Debug, QueryableByName)]
pub struct MoveGroup {
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Text)]
    pub level: String,
    #[diesel(sql_type = Text)]
    pub level_after: String,
    #[diesel(sql_type = Text)]
    pub actor_role: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

pub fn move_groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<MoveGroup>> {
    let mut q = Sql::default();
    q.push("SELECT e.action AS action, e.level AS level, e.level_after AS level_after")
        .push(", e.actor_role AS actor_role, COUNT(*) AS n")
        // SQLite: CROSS JOIN fixes the order (events in the range first, then their tickets);
        // left to itself it may walk every ticket of the street instead.
        .push(match conn {
            DbConn::Sqlite(_) => " FROM ticket_events e CROSS JOIN tickets t ON t.id = e.ticket_id",
            DbConn::Pg(_) => " FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id",
        })
        // Literal, not bound: the partial index ticket_events_moves has this very condition.
        .push(" WHERE e.action IN ('escalate', 'dispute', 'return')")
        .push(" AND e.created_at >= ")
        .ts(range.from.naive_utc())
        .push(" AND e.created_at < ")
        .ts(range.to.naive_utc());
    match (scope.community_id, scope.street_id) {
        (Some(c), _) => q.push(" AND t.community_id = ").id(c),
        (None, Some(s)) => q.push(" AND t.street_id = ").id(s),
        (None, None) => &mut q,
    };
    q.push(" GROUP BY e.action, e.level, e.level_after, e.actor_role");
    q.load(conn)
}
