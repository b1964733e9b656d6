//! The statistics' aggregate queries over the stored facts (`ticket_stats`, `ticket_stays`) and
//! the active tickets. Written as SQL text because they need `CASE` inside `SUM` and `GROUP BY`
//! over both backends; what differs between the backends (placeholders, the hour bucket of the
//! trend, planner hints) is asked of `db::dialect`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::scope::{Range, ScopeFilter, StatsScope};
use crate::db::dialect::{count_per_utc_hour, HourCount, Sql};
use crate::db::schema::{ticket_stats, ticket_stays};
use crate::db::{DbConn, MultiBackend};
use crate::domain::metrics::RateCounts;
use crate::domain::role::ActorRole;
use crate::domain::ticket::{EventKind, Level, Source, Status};
use crate::error::AppResult;

/// The clauses every statistics query narrows with.
trait Narrow {
    /// ` AND <prefix>street_id = ?` / ` AND <prefix>community_id = ?` (nothing for all).
    fn scope(&mut self, scope: &StatsScope, prefix: &str) -> &mut Self;
    /// ` AND created_at >= ? AND created_at < ?`.
    fn created_in(&mut self, range: &Range) -> &mut Self;
}

impl Narrow for Sql {
    fn scope(&mut self, scope: &StatsScope, prefix: &str) -> &mut Self {
        if let Some((column, id)) = scope.filter().column() {
            self.push(" AND ")
                .push(prefix)
                .push(column)
                .push(" = ")
                .id(id);
        }
        self
    }

    fn created_in(&mut self, range: &Range) -> &mut Self {
        self.push(" AND created_at >= ")
            .ts(range.from.naive_utc())
            .push(" AND created_at < ")
            .ts(range.to.naive_utc())
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

    /// `SELECT <unit> AS unit, <columns>`.
    fn select(self, q: &mut Sql, columns: &str) {
        q.push("SELECT ")
            .push(self.column())
            .push(" AS unit, ")
            .push(columns);
    }

    /// ` GROUP BY <unit>, <columns>` (the unit only when grouping by one).
    fn group_by(self, q: &mut Sql, columns: &str) {
        q.push(" GROUP BY ");
        if self != GroupBy::Nothing {
            q.push(self.column()).push(", ");
        }
        q.push(columns);
    }
}

/// Cohort tickets of one (unit, status, level), with the sums of the rates.
#[derive(Debug, QueryableByName)]
pub struct CohortGroup {
    #[diesel(sql_type = BigInt)]
    pub unit: i64,
    #[diesel(sql_type = Text)]
    pub status: Status,
    #[diesel(sql_type = Text)]
    pub level: Level,
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
    /// Closed automatically: resolved, but unconfirmed.
    #[diesel(sql_type = BigInt)]
    pub unconfirmed: i64,
}

impl CohortGroup {
    /// Adds this group's sums to the rates' fractions.
    pub fn add_to(&self, c: &mut RateCounts) {
        c.response.numerator += self.response_num;
        c.response.denominator += self.response_den;
        c.resolution.numerator += self.resolution_num;
        c.resolution.denominator += self.resolution_den;
        c.satisfaction.numerator += self.satisfied;
        c.satisfaction.denominator += self.rated;
        if self.status == Status::Closed {
            c.settled_in_compound.denominator += self.tickets - self.unconfirmed;
            if self.level == Level::Compound {
                c.settled_in_compound.numerator += self.never_up;
            }
            c.confirmed.denominator += self.tickets;
            c.confirmed.numerator += self.tickets - self.unconfirmed;
        }
    }
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
    let mut q = Sql::new(conn);
    group.select(&mut q, "status, level, COUNT(*) AS tickets");
    q.push(", SUM(CASE WHEN response_due < ")
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
        .push(", SUM(CASE WHEN went_up OR closed_by = 'auto' THEN 0 ELSE 1 END) AS never_up")
        .push(", SUM(CASE WHEN closed_by = 'auto' THEN 1 ELSE 0 END) AS unconfirmed")
        .push(" FROM ticket_stats WHERE 1 = 1")
        .scope(scope, "")
        .created_in(range);
    group.group_by(&mut q, "status, level");
    q.load(conn)
}

/// Active tickets in scope now, per (unit, level), and how many of them are overdue: the
/// queue's rule (`GET /tickets?overdue=true`): past the running deadline, or marked overdue.
#[derive(Debug, QueryableByName)]
pub struct ActiveGroup {
    #[diesel(sql_type = BigInt)]
    pub unit: i64,
    #[diesel(sql_type = Text)]
    pub level: Level,
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
    let mut q = Sql::new(conn);
    group.select(&mut q, "level, COUNT(*) AS active");
    q.push(", SUM(CASE WHEN overdue OR (due_at <> ")
        .ts(crate::service::tickets::no_deadline())
        .push(" AND due_at < ")
        .ts(now)
        .push(") THEN 1 ELSE 0 END) AS overdue")
        .push(" FROM tickets");
    // SQLite's planner, asked to group by compound, may pick any index on street_id and read
    // every ticket of the street; the partial covering index reads only the active ones.
    match scope.filter() {
        ScopeFilter::Community(_) => q.index_hint("tickets_active_community"),
        ScopeFilter::Street(_) => q.index_hint("tickets_active_street"),
        ScopeFilter::All => &mut q,
    };
    // Literal, not bound: the partial indexes tickets_active_* have this very condition.
    q.push(" WHERE status IN ('open', 'acknowledged')")
        .scope(scope, "");
    group.group_by(&mut q, "level");
    q.load(conn)
}

/// Cohort tickets per UTC hour of creation. Asia/Shanghai is a whole number of hours from UTC,
/// so an hour falls on exactly one local day.
pub fn created_per_hour(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<HourCount>> {
    count_per_utc_hour(conn, "created_at", |q| {
        q.push(" FROM ticket_stats WHERE 1 = 1")
            .scope(scope, "")
            .created_in(range);
    })
}

/// Tickets in scope closed (and still closed) in the range, per UTC hour of closing.
pub fn closed_per_hour(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<HourCount>> {
    count_per_utc_hour(conn, "closed_at", |q| {
        q.push(" FROM tickets WHERE closed_at >= ")
            .ts(range.from.naive_utc())
            .push(" AND closed_at < ")
            .ts(range.to.naive_utc())
            .push(" AND status = 'closed'")
            .scope(scope, "");
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
    let mut q = Sql::new(conn);
    q.push("SELECT category_id, COUNT(*) AS tickets")
        .push(", SUM(CASE WHEN status = 'closed' THEN 1 ELSE 0 END) AS closed")
        .push(" FROM ticket_stats WHERE 1 = 1")
        .scope(scope, "")
        .created_in(range)
        .push(" GROUP BY category_id");
    q.load(conn)
}

#[derive(Debug, QueryableByName)]
pub struct SourceGroup {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub source: Source,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub tickets: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub closed: i64,
}

/// Tickets created in the range by how they came in (the tickets table: the facts do not keep
/// the source).
pub fn source_groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<SourceGroup>> {
    let mut q = Sql::new(conn);
    q.push("SELECT source, COUNT(*) AS tickets")
        .push(", SUM(CASE WHEN status = 'closed' THEN 1 ELSE 0 END) AS closed")
        .push(" FROM tickets WHERE 1 = 1")
        .scope(scope, "")
        .created_in(range)
        .push(" GROUP BY source");
    q.load(conn)
}

type StatsBoxed<'a> = ticket_stats::BoxedQuery<'a, MultiBackend>;

fn stats_cohort<'a>(scope: &StatsScope, range: &Range) -> StatsBoxed<'a> {
    scope
        .filter()
        .apply(
            ticket_stats::table.into_boxed::<MultiBackend>(),
            ticket_stats::street_id,
            ticket_stats::community_id,
        )
        .filter(ticket_stats::created_at.ge(range.from.naive_utc()))
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
    let q = scope.filter().apply(
        ticket_stays::table.into_boxed::<MultiBackend>(),
        ticket_stays::street_id,
        ticket_stays::community_id,
    );
    Ok(q.filter(ticket_stays::level.eq(level.to_string()))
        .filter(ticket_stays::created_at.ge(range.from.naive_utc()))
        .filter(ticket_stays::created_at.lt(range.to.naive_utc()))
        .select((ticket_stays::answer_secs, ticket_stays::settle_secs))
        .load(conn)?)
}

#[derive(Debug, QueryableByName)]
pub struct UrgeGroup {
    #[diesel(sql_type = BigInt)]
    pub unit: i64,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// Urges (催办) made in the range on tickets in scope while the unit's own level was
/// accountable, per compound or community the ticket belongs to.
pub fn urge_groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    group: GroupBy,
) -> AppResult<Vec<UrgeGroup>> {
    let level = match group {
        GroupBy::Compound => "compound",
        GroupBy::Community => "community",
        GroupBy::Nothing => return Ok(Vec::new()),
    };
    let mut q = Sql::new(conn);
    q.push("SELECT t.")
        .push(group.column())
        .push(" AS unit, COUNT(*) AS n FROM ticket_events e")
        // Only the urges (partial index, migration 000013); literal 'urge' below matches it.
        .index_hint("ticket_events_urges")
        .join_in_order()
        .push("tickets t ON t.id = e.ticket_id")
        .push(" WHERE e.action = 'urge' AND e.level = '")
        .push(level)
        .push("' AND e.created_at >= ")
        .ts(range.from.naive_utc())
        .push(" AND e.created_at < ")
        .ts(range.to.naive_utc())
        .scope(scope, "t.")
        .push(" GROUP BY t.")
        .push(group.column());
    q.load(conn)
}

/// Moves between levels that happened in the range, per kind.
#[derive(Debug, QueryableByName)]
pub struct MoveGroup {
    #[diesel(sql_type = Text)]
    pub action: EventKind,
    #[diesel(sql_type = Text)]
    pub level: Level,
    #[diesel(sql_type = Text)]
    pub level_after: Level,
    #[diesel(sql_type = Text)]
    pub actor_role: ActorRole,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

pub fn move_groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<MoveGroup>> {
    let mut q = Sql::new(conn);
    q.push("SELECT e.action AS action, e.level AS level, e.level_after AS level_after")
        .push(", e.actor_role AS actor_role, COUNT(*) AS n")
        // Events in the range first, then their tickets: SQLite left to itself may walk every
        // ticket of the street instead.
        .push(" FROM ticket_events e")
        .join_in_order()
        .push("tickets t ON t.id = e.ticket_id")
        // Literal, not bound: the partial index ticket_events_moves has this very condition.
        .push(" WHERE e.action IN ('escalate', 'dispute', 'return')")
        .push(" AND e.created_at >= ")
        .ts(range.from.naive_utc())
        .push(" AND e.created_at < ")
        .ts(range.to.naive_utc())
        .scope(scope, "t.")
        .push(" GROUP BY e.action, e.level, e.level_after, e.actor_role");
    q.load(conn)
}

/// Ledger entries in the range and scope of one unit kind, per (unit, column, reason).
#[derive(Debug, QueryableByName)]
pub struct LedgerGroup {
    #[diesel(sql_type = BigInt)]
    pub unit: i64,
    #[diesel(sql_type = Text)]
    pub kind: crate::domain::ledger::LedgerKind,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub reason: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// The ledger's counts: entries whose time falls in the range, kept by units at `level`.
pub fn ledger_groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    level: Level,
) -> AppResult<Vec<LedgerGroup>> {
    let mut q = Sql::new(conn);
    q.push("SELECT unit_id AS unit, kind, reason, COUNT(*) AS n FROM ledger_entries")
        .push(" WHERE at >= ")
        .ts(range.from.naive_utc())
        .push(" AND at < ")
        .ts(range.to.naive_utc())
        .scope(scope, "")
        .push(" AND level = '")
        // A closed set's literal: the covering indexes ledger_street / ledger_community carry it.
        .push(level.as_str())
        .push("' GROUP BY unit_id, kind, reason");
    q.load(conn)
}

/// Tickets in scope closed in the range, per `closed_by` (declines and withdrawals included).
#[derive(Debug, QueryableByName)]
pub struct ClosedByGroup {
    #[diesel(sql_type = Text)]
    pub closed_by: crate::domain::ticket::ClosedBy,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

pub fn closed_by_groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<ClosedByGroup>> {
    let mut q = Sql::new(conn);
    q.push("SELECT closed_by, COUNT(*) AS n FROM tickets WHERE closed_at >= ")
        .ts(range.from.naive_utc())
        .push(" AND closed_at < ")
        .ts(range.to.naive_utc())
        .push(" AND closed_by IS NOT NULL")
        .scope(scope, "")
        .push(" GROUP BY closed_by");
    q.load(conn)
}

/// The ledger's counts from the daily roll-up for the whole local days `[from_day, to_day)`
/// (both local midnights), as [`ledger_groups`] counts them from the entries.
pub fn ledger_daily_groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    from_day: NaiveDateTime,
    to_day: NaiveDateTime,
    level: Level,
) -> AppResult<Vec<LedgerGroup>> {
    let mut q = Sql::new(conn);
    q.push("SELECT unit_id AS unit, kind, NULLIF(reason, '') AS reason")
        .push(", CAST(SUM(n) AS BIGINT) AS n FROM ledger_daily WHERE day >= ")
        .ts(from_day)
        .push(" AND day < ")
        .ts(to_day)
        .scope(scope, "")
        .push(" AND level = '")
        .push(level.as_str())
        .push("' GROUP BY unit_id, kind, reason");
    q.load(conn)
}
