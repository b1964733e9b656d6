//! Statistics for the street committee's dashboard: the four rates, counts, medians, the daily
//! trend, categories, rankings of communities and compounds, flows between levels, the overdue
//! list and the CSV exports. Definitions are in `docs/metrics.md`; this file implements exactly
//! those. Queries load a bounded, index-friendly set of columns (the tickets created in the range
//! within the caller's scope, and their timeline events); the aggregation is pure Rust below,
//! with unit tests, so both backends compute the same numbers.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::db::schema::{categories, org_units, ticket_events, tickets};
use crate::db::{DbConn, MultiBackend};
use crate::domain::role::Role;
use crate::domain::ticket::{Level, Status};
use crate::error::{AppError, AppResult};
use crate::service::tickets::no_deadline;
use crate::service::tickets::query::{Sort, TicketFilter};

pub mod facts;
mod sql;
pub mod xlsx;

use sql::GroupBy;

/// Most rows `GET /stats/tickets.csv` writes.
pub const MAX_EXPORT_ROWS: usize = 50_000;
/// Longest range a statistics request may cover.
pub const MAX_RANGE_DAYS: i64 = 366;
/// Most tickets the overdue list returns (`total` still counts all).
pub const OVERDUE_LIST_LIMIT: i64 = 500;
/// Default range: the last 30 days.
pub const DEFAULT_RANGE_DAYS: i64 = 30;

// ---------------------------------------------------------------------------------------------
// Range and scope
// ---------------------------------------------------------------------------------------------

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

type Boxed<'a> = tickets::BoxedQuery<'a, MultiBackend>;

fn scoped<'a>(scope: &StatsScope) -> Boxed<'a> {
    let q = tickets::table.into_boxed::<MultiBackend>();
    match (scope.community_id, scope.street_id) {
        (Some(c), _) => q.filter(tickets::community_id.eq(c)),
        (None, Some(s)) => q.filter(tickets::street_id.eq(s)),
        (None, None) => q,
    }
}

fn cohort<'a>(scope: &StatsScope, range: &Range) -> Boxed<'a> {
    scoped(scope)
        .filter(tickets::created_at.ge(range.from.naive_utc()))
        .filter(tickets::created_at.lt(range.to.naive_utc()))
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// The columns of a ticket the statistics need.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tickets)]
pub struct StatTicket {
    pub id: i64,
    pub status: String,
    pub level: String,
    pub street_id: i64,
    pub community_id: i64,
    pub compound_id: i64,
    pub category_id: i64,
    pub escalation_count: i32,
    pub rating: Option<i32>,
    pub level_entered_at: NaiveDateTime,
    pub ack_due_at: Option<NaiveDateTime>,
    pub resolve_due_at: Option<NaiveDateTime>,
    pub paused_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
}

/// The columns of a timeline event the statistics need.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ticket_events)]
pub struct StatEvent {
    pub ticket_id: i64,
    pub action: String,
    pub level: String,
    pub level_after: String,
    pub status_before: Option<String>,
    pub reason: Option<String>,
    pub actor_role: String,
    pub created_at: NaiveDateTime,
}

/// The actions that shape the per-level history; comments, assignments, warnings and the like
/// are not loaded.
const HISTORY_ACTIONS: [&str; 7] = [
    "create",
    "escalate",
    "return",
    "dispute",
    "acknowledge",
    "resolve",
    "overdue",
];

const BREACH_ACK: &str = "sla_breach_acknowledge";
const BREACH_RESOLVE: &str = "sla_breach_resolve";

/// The tickets created in the range plus their history events, paired by ticket.
fn load_cohort(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<(StatTicket, Vec<StatEvent>)>> {
    let rows: Vec<StatTicket> = cohort(scope, range)
        .order(tickets::id.asc())
        .select(StatTicket::as_select())
        .load(conn)?;
    let mut events = ticket_events::table
        .inner_join(tickets::table)
        .into_boxed::<MultiBackend>()
        .filter(tickets::created_at.ge(range.from.naive_utc()))
        .filter(tickets::created_at.lt(range.to.naive_utc()))
        .filter(ticket_events::action.eq_any(HISTORY_ACTIONS));
    events = match (scope.community_id, scope.street_id) {
        (Some(c), _) => events.filter(tickets::community_id.eq(c)),
        (None, Some(s)) => events.filter(tickets::street_id.eq(s)),
        (None, None) => events,
    };
    let events: Vec<StatEvent> = events
        .order((ticket_events::ticket_id.asc(), ticket_events::id.asc()))
        .select(StatEvent::as_select())
        .load(conn)?;
    Ok(pair_events(rows, events))
}

/// Pairs tickets (ascending id) with their events (ascending ticket id, then event id).
pub fn pair_events(
    rows: Vec<StatTicket>,
    events: Vec<StatEvent>,
) -> Vec<(StatTicket, Vec<StatEvent>)> {
    let mut out = Vec::with_capacity(rows.len());
    let mut it = events.into_iter().peekable();
    for t in rows {
        while it.peek().is_some_and(|e| e.ticket_id < t.id) {
            it.next();
        }
        let mut mine = Vec::new();
        while let Some(e) = it.next_if(|e| e.ticket_id == t.id) {
            mine.push(e);
        }
        out.push((t, mine));
    }
    out
}

/// The active (open or acknowledged) tickets in scope now, whatever the range.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tickets)]
pub struct ActiveTicket {
    pub level: String,
    pub community_id: i64,
    pub compound_id: i64,
    pub overdue: bool,
    pub due_at: NaiveDateTime,
}

impl ActiveTicket {
    /// The queue's rule (`GET /tickets?overdue=true`), for active tickets: past the running
    /// deadline, or marked overdue at the street.
    pub fn is_overdue(&self, now: NaiveDateTime) -> bool {
        self.overdue || (self.due_at != no_deadline() && self.due_at < now)
    }
}

const ACTIVE: [&str; 2] = ["open", "acknowledged"];

fn load_active(conn: &mut DbConn, scope: &StatsScope) -> AppResult<Vec<ActiveTicket>> {
    Ok(scoped(scope)
        .filter(tickets::status.eq_any(ACTIVE))
        .select(ActiveTicket::as_select())
        .load(conn)?)
}

// ---------------------------------------------------------------------------------------------
// Pure analysis
// ---------------------------------------------------------------------------------------------

/// One stay of a ticket at a level: from an arrival event (create, escalate, return, dispute
/// that moved it) to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub level: Level,
    pub arrived: NaiveDateTime,
    /// First acknowledge or resolve at this level during the stay.
    pub answered: Option<NaiveDateTime>,
    /// First resolve at this level during the stay.
    pub resolved: Option<NaiveDateTime>,
    /// The answer clock ran out before any answer (the sweeper called it up or marked it overdue).
    pub missed_answer: bool,
}

/// The stays of a ticket, from its events in order.
pub fn visits(events: &[StatEvent]) -> Vec<Visit> {
    let mut out: Vec<Visit> = Vec::new();
    for e in events {
        let level = Level::parse(&e.level);
        let after = Level::parse(&e.level_after);
        let moved = level.is_some() && after.is_some() && level != after;
        let arrival = match e.action.as_str() {
            "create" => true,
            "escalate" | "return" | "dispute" => moved,
            _ => false,
        };
        if matches!(e.action.as_str(), "escalate" | "overdue")
            && e.reason.as_deref() == Some(BREACH_ACK)
        {
            if let Some(v) = out.last_mut() {
                if v.answered.is_none() {
                    v.missed_answer = true;
                }
            }
        }
        if arrival {
            if let Some(l) = after {
                out.push(Visit {
                    level: l,
                    arrived: e.created_at,
                    answered: None,
                    resolved: None,
                    missed_answer: false,
                });
            }
            continue;
        }
        if let Some(v) = out.last_mut() {
            if level == Some(v.level) {
                match e.action.as_str() {
                    "acknowledge" => {
                        v.answered.get_or_insert(e.created_at);
                    }
                    "resolve" => {
                        v.answered.get_or_insert(e.created_at);
                        v.resolved.get_or_insert(e.created_at);
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// What one ticket contributes to each measure; `None` = not counted in that measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub response: Option<bool>,
    pub resolution: Option<bool>,
    pub satisfied: Option<bool>,
    pub settled_in_compound: Option<bool>,
    /// created → first answer at any level.
    pub first_answer_secs: Option<i64>,
    /// created → the resolution of a closed ticket.
    pub settle_secs: Option<i64>,
    pub visits: Vec<Visit>,
}

fn secs(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    (b - a).num_seconds()
}

/// What a ticket's history and state say about it, apart from the clock: the verdicts that can
/// still flip when a running deadline passes are stored with that deadline. This is what
/// [`facts`] stores per ticket whenever the ticket changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// 响应率 verdict of the stays whose clock has finished.
    pub response: Option<bool>,
    /// The answer deadline of the current, unanswered stay of an open ticket: once it has
    /// passed, the response verdict is "late" whatever `response` says.
    pub response_due: Option<NaiveDateTime>,
    /// 解决率 verdict without the running settle clock.
    pub resolution: Option<bool>,
    /// The running (not paused) settle deadline of an active ticket not yet failed: once it has
    /// passed, the resolution verdict is "not met".
    pub resolution_due: Option<NaiveDateTime>,
    /// created → first answer at any level.
    pub first_answer_secs: Option<i64>,
    /// created → the resolution of a closed ticket.
    pub settle_secs: Option<i64>,
    pub visits: Vec<Visit>,
}

impl Outcome {
    /// The response verdict at `now`.
    pub fn response_at(&self, now: NaiveDateTime) -> Option<bool> {
        if self.response_due.is_some_and(|d| now > d) {
            Some(false)
        } else {
            self.response
        }
    }

    /// The resolution verdict at `now`.
    pub fn resolution_at(&self, now: NaiveDateTime) -> Option<bool> {
        if self.resolution_due.is_some_and(|d| now > d) {
            Some(false)
        } else {
            self.resolution
        }
    }
}

/// Applies the definitions of docs/metrics.md to one ticket, leaving out only the clock.
pub fn outcome(t: &StatTicket, events: &[StatEvent]) -> Outcome {
    let vs = visits(events);
    let status = Status::parse(&t.status);
    let level = Level::parse(&t.level);

    // 响应率: every stay whose answer clock has finished was answered in time.
    let mut judged = 0;
    let mut all_met = true;
    let mut response_due = None;
    let last = vs.len().saturating_sub(1);
    for (i, v) in vs.iter().enumerate() {
        // The stored deadline belongs to the last stay, unless a reopen restarted the clock.
        let current = i == last && Some(v.level) == level && t.level_entered_at == v.arrived;
        let verdict = if v.missed_answer {
            Some(false)
        } else if let Some(a) = v.answered {
            Some(!(current && t.ack_due_at.is_some_and(|d| a > d)))
        } else {
            if i == last && Some(v.level) == level && status == Some(Status::Open) {
                // Late once this passes, even before the sweeper notices.
                response_due = t.ack_due_at;
            }
            None
        };
        if let Some(ok) = verdict {
            judged += 1;
            all_met &= ok;
        }
    }
    let response = (judged > 0).then_some(all_met);

    // 解决率: resolved and closed without a reopen or a missed settle deadline.
    let reopened = events
        .iter()
        .any(|e| e.action == "dispute" && e.status_before.as_deref() == Some("resolved"));
    let breached = events
        .iter()
        .any(|e| e.reason.as_deref() == Some(BREACH_RESOLVE));
    let late_resolution = match (t.resolved_at, t.resolve_due_at) {
        (Some(r), Some(d)) => r > d,
        _ => false,
    };
    let failed = reopened || breached || late_resolution;
    let (resolution, resolution_due) = match status {
        Some(Status::Closed) => (Some(!failed && t.resolved_at.is_some()), None),
        Some(Status::Resolved) => (failed.then_some(false), None),
        Some(Status::Open) | Some(Status::Acknowledged) => (
            failed.then_some(false),
            if failed || t.paused_at.is_some() {
                None
            } else {
                t.resolve_due_at
            },
        ),
        _ => (None, None),
    };

    let closed = status == Some(Status::Closed);
    Outcome {
        response,
        response_due,
        resolution,
        resolution_due,
        first_answer_secs: t.acknowledged_at.map(|a| secs(t.created_at, a)),
        settle_secs: if closed {
            t.resolved_at.map(|r| secs(t.created_at, r))
        } else {
            None
        },
        visits: vs,
    }
}

/// Applies the definitions of docs/metrics.md to one ticket at `now`.
pub fn judge(t: &StatTicket, events: &[StatEvent], now: NaiveDateTime) -> Judged {
    let o = outcome(t, events);
    let closed = Status::parse(&t.status) == Some(Status::Closed);
    Judged {
        response: o.response_at(now),
        resolution: o.resolution_at(now),
        satisfied: t.rating.map(|r| r >= 4),
        settled_in_compound: closed
            .then_some(Level::parse(&t.level) == Some(Level::Compound) && t.escalation_count == 0),
        first_answer_secs: o.first_answer_secs,
        settle_secs: o.settle_secs,
        visits: o.visits,
    }
}

/// The median of whole seconds; the mean of the two middle values (rounded down) when even.
pub fn median(values: &mut [i64]) -> Option<i64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    // Selection, not a full sort: the street's month is hundreds of thousands of values.
    let (lower, mid, _) = values.select_nth_unstable(n / 2);
    let upper = *mid;
    Some(if n % 2 == 1 {
        upper
    } else {
        let below = lower.iter().copied().max().unwrap_or(upper);
        (below + upper).div_euclid(2)
    })
}

/// A rate as a fraction, rounded to 4 decimals; `None` when nothing is counted.
pub fn rate(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator > 0).then(|| (numerator as f64 / denominator as f64 * 10_000.0).round() / 10_000.0)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Fraction {
    /// Tickets that met the measure.
    pub numerator: i64,
    /// Tickets the measure counts.
    pub denominator: i64,
}

impl Fraction {
    fn add(&mut self, v: Option<bool>) {
        if let Some(ok) = v {
            self.denominator += 1;
            self.numerator += i64::from(ok);
        }
    }

    pub fn rate(&self) -> Option<f64> {
        rate(self.numerator, self.denominator)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RateCounts {
    pub response: Fraction,
    pub resolution: Fraction,
    pub satisfaction: Fraction,
    pub settled_in_compound: Fraction,
}

impl RateCounts {
    /// Adds one (status, level) group of the cohort as summed in SQL.
    fn add_group(&mut self, g: &sql::CohortGroup) {
        self.response.numerator += g.response_num;
        self.response.denominator += g.response_den;
        self.resolution.numerator += g.resolution_num;
        self.resolution.denominator += g.resolution_den;
        self.satisfaction.numerator += g.satisfied;
        self.satisfaction.denominator += g.rated;
        if Status::parse(&g.status) == Some(Status::Closed) {
            self.settled_in_compound.denominator += g.tickets;
            if Level::parse(&g.level) == Some(Level::Compound) {
                self.settled_in_compound.numerator += g.never_up;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct LevelMedians {
    /// Per ticket: from creation (see docs/metrics.md).
    pub all: Option<i64>,
    /// Per stay at the level: from arrival at the level.
    pub compound: Option<i64>,
    pub community: Option<i64>,
    pub street: Option<i64>,
}

/// Sums over a group of judged tickets.
#[derive(Debug, Default)]
pub struct Tally {
    pub tickets: i64,
    pub counts: RateCounts,
    first_answer: Vec<i64>,
    settle: Vec<i64>,
    answer_by_level: [Vec<i64>; 3],
    settle_by_level: [Vec<i64>; 3],
}

fn level_index(l: Level) -> usize {
    match l {
        Level::Compound => 0,
        Level::Community => 1,
        Level::Street => 2,
    }
}

impl Tally {
    pub fn add(&mut self, j: &Judged) {
        self.tickets += 1;
        self.counts.response.add(j.response);
        self.counts.resolution.add(j.resolution);
        self.counts.satisfaction.add(j.satisfied);
        self.counts.settled_in_compound.add(j.settled_in_compound);
        self.first_answer.extend(j.first_answer_secs);
        self.settle.extend(j.settle_secs);
        for v in &j.visits {
            let i = level_index(v.level);
            if let Some(a) = v.answered {
                self.answer_by_level[i].push(secs(v.arrived, a));
            }
            if let Some(r) = v.resolved {
                self.settle_by_level[i].push(secs(v.arrived, r));
            }
        }
    }

    pub fn median_first_answer(&mut self) -> LevelMedians {
        let [c, m, s] = &mut self.answer_by_level;
        LevelMedians {
            all: median(&mut self.first_answer),
            compound: median(c),
            community: median(m),
            street: median(s),
        }
    }

    pub fn median_settle(&mut self) -> LevelMedians {
        let [c, m, s] = &mut self.settle_by_level;
        LevelMedians {
            all: median(&mut self.settle),
            compound: median(c),
            community: median(m),
            street: median(s),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusCounts {
    pub open: i64,
    pub acknowledged: i64,
    pub resolved: i64,
    pub closed: i64,
    pub declined: i64,
    pub withdrawn: i64,
}

impl StatusCounts {
    fn add(&mut self, s: &str) {
        self.add_n(s, 1);
    }

    fn add_n(&mut self, s: &str, n: i64) {
        match Status::parse(s) {
            Some(Status::Open) => self.open += n,
            Some(Status::Acknowledged) => self.acknowledged += n,
            Some(Status::Resolved) => self.resolved += n,
            Some(Status::Closed) => self.closed += n,
            Some(Status::Declined) => self.declined += n,
            Some(Status::Withdrawn) => self.withdrawn += n,
            None => {}
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct LevelCounts {
    pub compound: i64,
    pub community: i64,
    pub street: i64,
}

impl LevelCounts {
    fn add(&mut self, l: &str) {
        self.add_n(l, 1);
    }

    fn add_n(&mut self, l: &str, n: i64) {
        match Level::parse(l) {
            Some(Level::Compound) => self.compound += n,
            Some(Level::Community) => self.community += n,
            Some(Level::Street) => self.street += n,
            None => {}
        }
    }
}

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
    /// 小事不出小区率.
    pub settled_in_compound_rate: Option<f64>,
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

/// `GET /stats/summary`: aggregates of the stored facts (see [`facts`]); the same numbers as
/// [`summary_from_history`], which replays every ticket's events.
pub fn summary(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    now: DateTime<Utc>,
) -> AppResult<Summary> {
    let now_ts = now.naive_utc();
    let mut tickets = 0;
    let mut counts = RateCounts::default();
    let mut by_status = StatusCounts::default();
    let mut by_level = LevelCounts::default();
    for g in sql::cohort_groups(conn, scope, range, GroupBy::Nothing, now_ts)? {
        tickets += g.tickets;
        by_status.add_n(&g.status, g.tickets);
        by_level.add_n(&g.level, g.tickets);
        counts.add_group(&g);
    }
    let mut open_now_by_level = LevelCounts::default();
    let mut overdue = 0;
    for a in sql::active_groups(conn, scope, GroupBy::Nothing, now_ts)? {
        open_now_by_level.add_n(&a.level, a.active);
        overdue += a.overdue;
    }
    let mut first_answer = Vec::new();
    let mut settle = Vec::new();
    for (_, a, s) in sql::ticket_durations(conn, scope, range, GroupBy::Nothing)? {
        first_answer.extend(a);
        settle.extend(s);
    }
    let mut answer_medians = LevelMedians {
        all: median(&mut first_answer),
        ..LevelMedians::default()
    };
    let mut settle_medians = LevelMedians {
        all: median(&mut settle),
        ..LevelMedians::default()
    };
    for level in [Level::Compound, Level::Community, Level::Street] {
        let stays = sql::stay_durations(conn, scope, range, level.as_str())?;
        let mut answers: Vec<i64> = stays.iter().map(|s| s.0).collect();
        let mut settles: Vec<i64> = stays.iter().filter_map(|s| s.1).collect();
        let (a, s) = match level {
            Level::Compound => (&mut answer_medians.compound, &mut settle_medians.compound),
            Level::Community => (&mut answer_medians.community, &mut settle_medians.community),
            Level::Street => (&mut answer_medians.street, &mut settle_medians.street),
        };
        *a = median(&mut answers);
        *s = median(&mut settles);
    }
    Ok(Summary {
        from: range.from,
        to: range.to,
        scope: *scope,
        tickets,
        response_rate: counts.response.rate(),
        resolution_rate: counts.resolution.rate(),
        satisfaction_rate: counts.satisfaction.rate(),
        settled_in_compound_rate: counts.settled_in_compound.rate(),
        rate_counts: counts,
        by_status,
        by_level,
        open_now_by_level,
        overdue,
        median_first_answer_seconds: answer_medians,
        median_settle_seconds: settle_medians,
    })
}

/// The summary computed the original way: every cohort ticket and its whole history loaded and
/// judged in Rust. Kept as the reference the stored facts are checked against (tests, the
/// benchmark); too slow for the dashboard at scale.
pub fn summary_from_history(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    now: DateTime<Utc>,
) -> AppResult<Summary> {
    let now_ts = now.naive_utc();
    let mut tally = Tally::default();
    let mut by_status = StatusCounts::default();
    let mut by_level = LevelCounts::default();
    for (t, events) in load_cohort(conn, scope, range)? {
        by_status.add(&t.status);
        by_level.add(&t.level);
        tally.add(&judge(&t, &events, now_ts));
    }
    let mut open_now_by_level = LevelCounts::default();
    let mut overdue = 0;
    for a in load_active(conn, scope)? {
        open_now_by_level.add(&a.level);
        overdue += i64::from(a.is_overdue(now_ts));
    }
    let c = tally.counts;
    Ok(Summary {
        from: range.from,
        to: range.to,
        scope: *scope,
        tickets: tally.tickets,
        response_rate: c.response.rate(),
        resolution_rate: c.resolution.rate(),
        satisfaction_rate: c.satisfaction.rate(),
        settled_in_compound_rate: c.settled_in_compound.rate(),
        rate_counts: c,
        by_status,
        by_level,
        open_now_by_level,
        overdue,
        median_first_answer_seconds: tally.median_first_answer(),
        median_settle_seconds: tally.median_settle(),
    })
}

// ---------------------------------------------------------------------------------------------
// Trend, categories, flows
// ---------------------------------------------------------------------------------------------

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CategoryCount {
    pub category_id: i64,
    pub code: String,
    pub name: String,
    /// Tickets created in the range.
    pub tickets: i64,
    /// Of those, closed now.
    pub closed: i64,
}

/// Categories with at least one ticket, most tickets first.
pub fn by_category(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<CategoryCount>> {
    let counts: HashMap<i64, (i64, i64)> = sql::category_groups(conn, scope, range)?
        .into_iter()
        .map(|g| (g.category_id, (g.tickets, g.closed)))
        .collect();
    let ids: Vec<i64> = counts.keys().copied().collect();
    let names: HashMap<i64, (String, String)> = categories::table
        .filter(categories::id.eq_any(&ids))
        .select((categories::id, categories::code, categories::name))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, c, n)| (id, (c, n)))
        .collect();
    let mut out: Vec<CategoryCount> = counts
        .into_iter()
        .map(|(id, (tickets, closed))| {
            let (code, name) = names.get(&id).cloned().unwrap_or_default();
            CategoryCount {
                category_id: id,
                code,
                name,
                tickets,
                closed,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.tickets
            .cmp(&a.tickets)
            .then(a.category_id.cmp(&b.category_id))
    });
    Ok(out)
}

/// Calls up and returns between levels that happened in the range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Flows {
    /// 小区 → 社区: escalations (by staff or the SLA sweeper) and disputes that called it up.
    pub up_compound_to_community: i64,
    /// 社区 → 街道.
    pub up_community_to_street: i64,
    /// 街道 → 社区: returns.
    pub down_street_to_community: i64,
    /// 社区 → 小区: returns.
    pub down_community_to_compound: i64,
    /// Of the calls up, those made by the SLA sweeper (a clock ran out).
    pub up_automatic: i64,
    /// Of the calls up, those caused by a resident's dispute.
    pub up_by_dispute: i64,
}

impl Flows {
    pub fn add(&mut self, action: &str, level: &str, level_after: &str, actor_role: &str) {
        let (Some(from), Some(to)) = (Level::parse(level), Level::parse(level_after)) else {
            return;
        };
        match (action, from, to) {
            ("escalate" | "dispute", Level::Compound, Level::Community) => {
                self.up_compound_to_community += 1
            }
            ("escalate" | "dispute", Level::Community, Level::Street) => {
                self.up_community_to_street += 1
            }
            ("return", Level::Street, Level::Community) => self.down_street_to_community += 1,
            ("return", Level::Community, Level::Compound) => self.down_community_to_compound += 1,
            _ => return,
        }
        if to > from {
            if action == "dispute" {
                self.up_by_dispute += 1;
            } else if actor_role == "system" {
                self.up_automatic += 1;
            }
        }
    }
}

pub fn flows(conn: &mut DbConn, scope: &StatsScope, range: &Range) -> AppResult<Flows> {
    let mut f = Flows::default();
    for g in sql::move_groups(conn, scope, range)? {
        for _ in 0..g.n {
            f.add(&g.action, &g.level, &g.level_after, &g.actor_role);
        }
    }
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// Ranking
// ---------------------------------------------------------------------------------------------

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
}

/// The units of `kind` in scope, with names.
fn units_in_scope(
    conn: &mut DbConn,
    scope: &StatsScope,
    unit: RankUnit,
) -> AppResult<Vec<(i64, String)>> {
    let communities: Vec<(i64, String)> = match (scope.community_id, scope.street_id) {
        (Some(c), _) => org_units::table
            .filter(org_units::id.eq(c))
            .select((org_units::id, org_units::name))
            .load(conn)?,
        (None, Some(s)) => org_units::table
            .filter(org_units::parent_id.eq(s))
            .filter(org_units::kind.eq("community"))
            .filter(org_units::archived_at.is_null())
            .order(org_units::id.asc())
            .select((org_units::id, org_units::name))
            .load(conn)?,
        (None, None) => org_units::table
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

/// One unit's cohort measures before it is named and placed.
#[derive(Debug, Default)]
struct UnitTally {
    tickets: i64,
    counts: RateCounts,
    first_answer: Vec<i64>,
    settle: Vec<i64>,
}

/// `GET /stats/ranking`: aggregates of the stored facts per unit; the same numbers as
/// [`ranking_from_history`].
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
    let mut tallies: HashMap<i64, UnitTally> = HashMap::new();
    for g in sql::cohort_groups(conn, scope, range, group, now_ts)? {
        let t = tallies.entry(g.unit).or_default();
        t.tickets += g.tickets;
        t.counts.add_group(&g);
    }
    for (u, a, s) in sql::ticket_durations(conn, scope, range, group)? {
        let t = tallies.entry(u).or_default();
        t.first_answer.extend(a);
        t.settle.extend(s);
    }
    let mut overdue: HashMap<i64, i64> = HashMap::new();
    for a in sql::active_groups(conn, scope, group, now_ts)? {
        if a.overdue > 0 {
            *overdue.entry(a.unit).or_default() += a.overdue;
        }
    }
    rank_units(conn, scope, unit, sort, tallies, overdue)
}

/// Names the units in scope (plus archived ones that have tickets or overdue ones), fills in
/// their measures and orders them.
fn rank_units(
    conn: &mut DbConn,
    scope: &StatsScope,
    unit: RankUnit,
    sort: RankSort,
    mut tallies: HashMap<i64, UnitTally>,
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
                median_first_answer_seconds: median(&mut t.first_answer),
                median_settle_seconds: median(&mut t.settle),
            }
        })
        .collect();
    order_ranking(&mut rows, sort);
    Ok(rows)
}

/// The ranking computed the original way (every history replayed in Rust); the reference for
/// tests and the benchmark.
pub fn ranking_from_history(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    unit: RankUnit,
    sort: RankSort,
    now: DateTime<Utc>,
) -> AppResult<Vec<RankRow>> {
    let now_ts = now.naive_utc();
    let unit_of = |community: i64, compound: i64| match unit {
        RankUnit::Community => community,
        RankUnit::Compound => compound,
    };
    let mut tallies: HashMap<i64, Tally> = HashMap::new();
    for (t, events) in load_cohort(conn, scope, range)? {
        tallies
            .entry(unit_of(t.community_id, t.compound_id))
            .or_default()
            .add(&judge(&t, &events, now_ts));
    }
    let mut overdue: HashMap<i64, i64> = HashMap::new();
    for a in load_active(conn, scope)? {
        if a.is_overdue(now_ts) {
            *overdue
                .entry(unit_of(a.community_id, a.compound_id))
                .or_default() += 1;
        }
    }
    let tallies = tallies
        .into_iter()
        .map(|(id, t)| {
            (
                id,
                UnitTally {
                    tickets: t.tickets,
                    counts: t.counts,
                    first_answer: t.first_answer,
                    settle: t.settle,
                },
            )
        })
        .collect();
    rank_units(conn, scope, unit, sort, tallies, overdue)
}

// ---------------------------------------------------------------------------------------------
// Overdue list
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnitRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverdueItem {
    pub id: i64,
    pub reference: String,
    pub title: String,
    pub status: Status,
    pub level: Level,
    pub community: UnitRef,
    pub compound: UnitRef,
    /// The running deadline that passed (answer or settle clock of the current level).
    pub due_at: Option<DateTime<Utc>>,
    /// Seconds past `due_at` now.
    pub overdue_seconds: Option<i64>,
    pub escalation_count: i32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverdueList {
    /// Most overdue first, at most 500.
    pub items: Vec<OverdueItem>,
    /// All overdue tickets in scope.
    pub total: i64,
}

fn unit_names(conn: &mut DbConn, mut ids: Vec<i64>) -> AppResult<HashMap<i64, String>> {
    ids.sort_unstable();
    ids.dedup();
    Ok(org_units::table
        .filter(org_units::id.eq_any(&ids))
        .select((org_units::id, org_units::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

pub fn overdue_list(
    conn: &mut DbConn,
    scope: &StatsScope,
    now: DateTime<Utc>,
) -> AppResult<OverdueList> {
    let now_ts = now.naive_utc();
    let q = || {
        scoped(scope)
            // Literal, not bound: SQLite uses a partial index (`tickets_active_*`, WHERE status
            // IN ('open', 'acknowledged')) only when it can see the query implies its WHERE.
            .filter(sql::<Bool>("tickets.status IN ('open', 'acknowledged')"))
            .filter(tickets::overdue.eq(true).or(tickets::due_at.lt(now_ts)))
    };
    // The overdue set is small next to the scope: read it from the partial index, sort it here
    // and fetch the rows of the first page. Asking SQLite for `ORDER BY due_at LIMIT n` makes it
    // walk the whole scope in due order (closed tickets included) instead.
    let mut hits: Vec<(i64, NaiveDateTime)> =
        q().select((tickets::id, tickets::due_at)).load(conn)?;
    let total = i64::try_from(hits.len()).unwrap_or(i64::MAX);
    hits.sort_unstable_by_key(|&(id, due)| (due, id));
    hits.truncate(usize::try_from(OVERDUE_LIST_LIMIT).unwrap_or(usize::MAX));
    let page: Vec<i64> = hits.iter().map(|&(id, _)| id).collect();
    type Row = (
        i64,
        String,
        String,
        String,
        String,
        i64,
        i64,
        NaiveDateTime,
        i32,
    );
    let rows: Vec<Row> = tickets::table
        .filter(tickets::id.eq_any(&page))
        .order((tickets::due_at.asc(), tickets::id.asc()))
        .select((
            tickets::id,
            tickets::reference,
            tickets::title,
            tickets::status,
            tickets::level,
            tickets::community_id,
            tickets::compound_id,
            tickets::due_at,
            tickets::escalation_count,
        ))
        .load(conn)?;
    let names = unit_names(conn, rows.iter().flat_map(|r| [r.5, r.6]).collect())?;
    let named = |id: i64| UnitRef {
        id,
        name: names.get(&id).cloned().unwrap_or_default(),
    };
    let items = rows
        .into_iter()
        .map(
            |(id, reference, title, status, level, community, compound, due, esc)| {
                let due = (due != no_deadline()).then(|| due.and_utc());
                OverdueItem {
                    id,
                    reference,
                    title,
                    status: Status::parse(&status).unwrap_or(Status::Open),
                    level: Level::parse(&level).unwrap_or(Level::Street),
                    community: named(community),
                    compound: named(compound),
                    due_at: due,
                    overdue_seconds: due.map(|d| (now - d).num_seconds()),
                    escalation_count: esc,
                }
            },
        )
        .collect();
    Ok(OverdueList { items, total })
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// UTF-8 byte order mark: Excel then reads the file as UTF-8, Chinese included.
pub const BOM: &str = "\u{FEFF}";

/// One CSV field (RFC 4180 quoting). Text starting like a formula gets a leading `'` so a
/// spreadsheet shows it instead of evaluating it.
pub fn csv_field(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

pub fn csv_line(out: &mut String, fields: &[String]) {
    let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

fn opt_rate(r: Option<f64>) -> String {
    r.map(|v| format!("{v:.4}")).unwrap_or_default()
}

fn opt_minutes(s: Option<i64>) -> String {
    s.map(|v| format!("{:.1}", v as f64 / 60.0))
        .unwrap_or_default()
}

/// The ranking export's column titles (CSV and XLSX).
pub fn ranking_headers(unit: RankUnit) -> [&'static str; 11] {
    [
        "名次",
        "单位ID",
        match unit {
            RankUnit::Community => "社区",
            RankUnit::Compound => "小区",
        },
        "工单数",
        "响应率",
        "解决率",
        "满意率",
        "小事不出小区率",
        "当前超时",
        "首次响应中位时长(分钟)",
        "办结中位时长(分钟)",
    ]
}

pub fn ranking_csv(rows: &[RankRow], unit: RankUnit) -> String {
    let mut out = String::from(BOM);
    let header: Vec<String> = ranking_headers(unit)
        .iter()
        .map(|s| s.to_string())
        .collect();
    csv_line(&mut out, &header);
    for r in rows {
        csv_line(
            &mut out,
            &[
                r.rank.to_string(),
                r.unit_id.to_string(),
                r.name.clone(),
                r.tickets.to_string(),
                opt_rate(r.response_rate),
                opt_rate(r.resolution_rate),
                opt_rate(r.satisfaction_rate),
                opt_rate(r.settled_in_compound_rate),
                r.overdue.to_string(),
                opt_minutes(r.median_first_answer_seconds),
                opt_minutes(r.median_settle_seconds),
            ],
        );
    }
    out
}

/// The columns of a ticket the export writes.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tickets)]
pub struct ExportTicket {
    pub id: i64,
    pub reference: String,
    pub status: String,
    pub level: String,
    pub community_id: i64,
    pub compound_id: i64,
    pub category_id: i64,
    pub urgency: String,
    pub title: String,
    pub escalation_count: i32,
    pub rating: Option<i32>,
    pub closed_by: Option<String>,
    pub overdue: bool,
    pub due_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
}

fn status_zh(s: &str) -> &'static str {
    match Status::parse(s) {
        Some(Status::Open) => "待受理",
        Some(Status::Acknowledged) => "处理中",
        Some(Status::Resolved) => "已办结待确认",
        Some(Status::Closed) => "已完成",
        Some(Status::Declined) => "不予受理",
        Some(Status::Withdrawn) => "已撤回",
        None => "",
    }
}

/// The same scope and filters as `GET /tickets`, in the export's order; paging fields are ignored.
fn export_query<'a>(user: &AuthUser, f: &TicketFilter, now: DateTime<Utc>) -> AppResult<Boxed<'a>> {
    let q = crate::service::tickets::query::filtered(user, f, now)?;
    Ok(match f.sort.unwrap_or(Sort::Created) {
        Sort::Due => q.order((tickets::due_at.asc(), tickets::id.asc())),
        Sort::Created => q.order((tickets::created_at.desc(), tickets::id.desc())),
        Sort::Updated => q.order((tickets::updated_at.desc(), tickets::id.desc())),
    })
}

/// The export's column titles (CSV and XLSX).
pub const TICKET_EXPORT_HEADERS: [&str; 16] = [
    "编号",
    "标题",
    "状态",
    "当前层级",
    "社区",
    "小区",
    "类别",
    "紧急程度",
    "创建时间",
    "首次响应时间",
    "办结时间",
    "关闭时间",
    "关闭方式",
    "评分",
    "上报次数",
    "超时",
];

/// One exported ticket, as the spreadsheet shows it: labels in Chinese, times in Asia/Shanghai.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub reference: String,
    pub title: String,
    pub status: &'static str,
    pub level: &'static str,
    pub community: String,
    pub compound: String,
    pub category: String,
    pub urgency: &'static str,
    /// Local (Asia/Shanghai) wall-clock times.
    pub created_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub closed_by: &'static str,
    pub rating: Option<i32>,
    pub escalation_count: i32,
    pub overdue: bool,
}

fn to_local(t: NaiveDateTime) -> NaiveDateTime {
    t.and_utc().with_timezone(&Shanghai).naive_local()
}

/// The caller's tickets with the filters of `GET /tickets`, at most [`MAX_EXPORT_ROWS`], and
/// whether the list was cut there.
pub fn export_tickets(
    conn: &mut DbConn,
    user: &AuthUser,
    f: &TicketFilter,
    now: DateTime<Utc>,
) -> AppResult<(Vec<ExportRow>, bool)> {
    require_stats_role(user)?;
    let mut rows: Vec<ExportTicket> = export_query(user, f, now)?
        .limit(MAX_EXPORT_ROWS as i64 + 1)
        .select(ExportTicket::as_select())
        .load(conn)?;
    let truncated = rows.len() > MAX_EXPORT_ROWS;
    rows.truncate(MAX_EXPORT_ROWS);
    let names = unit_names(
        conn,
        rows.iter()
            .flat_map(|r| [r.community_id, r.compound_id])
            .collect(),
    )?;
    let cats: HashMap<i64, String> = categories::table
        .select((categories::id, categories::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let now_ts = now.naive_utc();
    let out = rows
        .into_iter()
        .map(|r| {
            let active = Status::parse(&r.status).is_some_and(Status::is_active);
            let overdue = active && (r.overdue || (r.due_at != no_deadline() && r.due_at < now_ts));
            ExportRow {
                status: status_zh(&r.status),
                level: Level::parse(&r.level)
                    .map(|l| l.label_zh())
                    .unwrap_or_default(),
                community: names.get(&r.community_id).cloned().unwrap_or_default(),
                compound: names.get(&r.compound_id).cloned().unwrap_or_default(),
                category: cats.get(&r.category_id).cloned().unwrap_or_default(),
                urgency: if r.urgency == "urgent" {
                    "紧急"
                } else {
                    "一般"
                },
                created_at: to_local(r.created_at),
                acknowledged_at: r.acknowledged_at.map(to_local),
                resolved_at: r.resolved_at.map(to_local),
                closed_at: r.closed_at.map(to_local),
                closed_by: match r.closed_by.as_deref() {
                    Some("resident") => "居民确认",
                    Some("system") => "自动关闭",
                    _ => "",
                },
                rating: r.rating,
                escalation_count: r.escalation_count,
                overdue,
                reference: r.reference,
                title: r.title,
            }
        })
        .collect();
    Ok((out, truncated))
}

fn csv_time(t: Option<NaiveDateTime>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The export: the CSV text and whether it was cut at [`MAX_EXPORT_ROWS`].
pub fn tickets_csv(
    conn: &mut DbConn,
    user: &AuthUser,
    f: &TicketFilter,
    now: DateTime<Utc>,
) -> AppResult<(String, bool)> {
    let (rows, truncated) = export_tickets(conn, user, f, now)?;
    let mut out = String::from(BOM);
    let header: Vec<String> = TICKET_EXPORT_HEADERS
        .iter()
        .map(|s| s.to_string())
        .collect();
    csv_line(&mut out, &header);
    for r in &rows {
        csv_line(
            &mut out,
            &[
                r.reference.clone(),
                r.title.clone(),
                r.status.to_string(),
                r.level.to_string(),
                r.community.clone(),
                r.compound.clone(),
                r.category.clone(),
                r.urgency.to_string(),
                csv_time(Some(r.created_at)),
                csv_time(r.acknowledged_at),
                csv_time(r.resolved_at),
                csv_time(r.closed_at),
                r.closed_by.to_string(),
                r.rating.map(|v| v.to_string()).unwrap_or_default(),
                r.escalation_count.to_string(),
                if r.overdue { "是" } else { "否" }.to_string(),
            ],
        );
    }
    Ok((out, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(h, m, 0))
            .expect("time")
    }

    fn ev(
        action: &str,
        level: &str,
        after: &str,
        reason: Option<&str>,
        t: NaiveDateTime,
    ) -> StatEvent {
        StatEvent {
            ticket_id: 1,
            action: action.into(),
            level: level.into(),
            level_after: after.into(),
            status_before: None,
            reason: reason.map(str::to_string),
            actor_role: if reason.is_some() {
                "system"
            } else {
                "compound_staff"
            }
            .into(),
            created_at: t,
        }
    }

    fn ticket(status: &str, level: &str) -> StatTicket {
        StatTicket {
            id: 1,
            status: status.into(),
            level: level.into(),
            street_id: 1,
            community_id: 2,
            compound_id: 3,
            category_id: 1,
            escalation_count: 0,
            rating: None,
            level_entered_at: at(1, 0),
            ack_due_at: Some(at(5, 0)),
            resolve_due_at: Some(at(20, 0)),
            paused_at: None,
            created_at: at(1, 0),
            acknowledged_at: None,
            resolved_at: None,
            closed_at: None,
        }
    }

    #[test]
    fn medians_take_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [7]), Some(7));
        assert_eq!(median(&mut [9, 1, 5]), Some(5));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
        assert_eq!(median(&mut [60, 120]), Some(90));
    }

    #[test]
    fn rates_round_to_four_places_and_are_absent_without_a_denominator() {
        assert_eq!(rate(2, 3), Some(0.6667));
        assert_eq!(rate(3, 4), Some(0.75));
        assert_eq!(rate(0, 0), None);
    }

    #[test]
    fn ranges_take_dates_inclusively_and_instants_exclusively() {
        let now = Utc::now();
        let r = parse_range(Some("2026-11-01"), Some("2026-11-30"), now).expect("range");
        assert_eq!(r.from.to_rfc3339(), "2026-10-31T16:00:00+00:00");
        assert_eq!(r.to.to_rfc3339(), "2026-11-30T16:00:00+00:00");
        assert_eq!(days_of(&r).len(), 30);
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
    fn stays_follow_arrivals_and_answers_belong_to_their_level() {
        let events = vec![
            ev("create", "compound", "compound", None, at(1, 0)),
            ev("acknowledge", "compound", "compound", None, at(1, 10)),
            ev("escalate", "compound", "community", None, at(1, 20)),
            ev("return", "community", "compound", None, at(2, 0)),
            ev("resolve", "compound", "compound", None, at(2, 30)),
        ];
        let v = visits(&events);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].answered, Some(at(1, 10)));
        assert_eq!(v[1].level, Level::Community);
        assert_eq!(v[1].answered, None);
        assert_eq!(v[2].answered, Some(at(2, 30)));
        assert_eq!(v[2].resolved, Some(at(2, 30)));
    }

    #[test]
    fn a_breached_answer_clock_fails_the_response_and_a_running_one_is_not_counted() {
        let events = vec![
            ev("create", "compound", "compound", None, at(1, 0)),
            ev(
                "escalate",
                "compound",
                "community",
                Some(BREACH_ACK),
                at(5, 1),
            ),
        ];
        let mut t = ticket("open", "community");
        t.level_entered_at = at(5, 1);
        t.ack_due_at = Some(at(9, 0));
        let j = judge(&t, &events, at(6, 0));
        assert_eq!(j.response, Some(false));
        assert_eq!(j.resolution, None, "still in time to settle");

        let fresh = [ev("create", "compound", "compound", None, at(1, 0))];
        let t = ticket("open", "compound");
        assert_eq!(judge(&t, &fresh, at(4, 0)).response, None);
        assert_eq!(
            judge(&t, &fresh, at(5, 1)).response,
            Some(false),
            "expired before the sweeper ran"
        );
    }

    #[test]
    fn a_late_answer_on_the_current_clock_fails() {
        let events = [
            ev("create", "compound", "compound", None, at(1, 0)),
            ev("acknowledge", "compound", "compound", None, at(5, 30)),
        ];
        let t = ticket("acknowledged", "compound");
        assert_eq!(judge(&t, &events, at(6, 0)).response, Some(false));
    }

    #[test]
    fn closed_tickets_judge_resolution_settlement_and_satisfaction() {
        let events = [
            ev("create", "compound", "compound", None, at(1, 0)),
            ev("resolve", "compound", "compound", None, at(2, 0)),
        ];
        let mut t = ticket("closed", "compound");
        t.acknowledged_at = Some(at(2, 0));
        t.resolved_at = Some(at(2, 0));
        t.rating = Some(4);
        let j = judge(&t, &events, at(23, 0));
        assert_eq!(j.response, Some(true));
        assert_eq!(j.resolution, Some(true));
        assert_eq!(j.satisfied, Some(true));
        assert_eq!(j.settled_in_compound, Some(true));
        assert_eq!(j.settle_secs, Some(3600));

        let mut reopened = events.to_vec();
        let mut d = ev("dispute", "compound", "compound", None, at(2, 10));
        d.status_before = Some("resolved".into());
        reopened.push(d);
        t.escalation_count = 1;
        let j = judge(&t, &reopened, at(23, 0));
        assert_eq!(j.resolution, Some(false));
        assert_eq!(j.settled_in_compound, Some(false));
    }

    #[test]
    fn flows_count_calls_up_and_returns_by_direction() {
        let mut f = Flows::default();
        f.add("escalate", "compound", "community", "system");
        f.add("escalate", "community", "street", "community_staff");
        f.add("dispute", "compound", "community", "resident");
        f.add("dispute", "compound", "compound", "resident");
        f.add("return", "street", "community", "street_staff");
        f.add("return", "community", "compound", "community_staff");
        assert_eq!(f.up_compound_to_community, 2);
        assert_eq!(f.up_community_to_street, 1);
        assert_eq!(f.down_street_to_community, 1);
        assert_eq!(f.down_community_to_compound, 1);
        assert_eq!(f.up_automatic, 1);
        assert_eq!(f.up_by_dispute, 1);
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("楼道灯"), "楼道灯");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        let mut s = String::new();
        csv_line(&mut s, &["x".into(), "y\nz".into()]);
        assert_eq!(s, "x,\"y\nz\"\r\n");
    }

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
