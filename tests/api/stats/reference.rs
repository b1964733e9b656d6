//! The summary and the ranking computed the original way: every cohort ticket and its whole
//! history loaded and judged in Rust (`domain::metrics::judge`). Too slow for the dashboard at
//! scale, so not in the service; kept as the reference the stored facts are checked against,
//! here and by `benches/stats_load.rs` (which includes this file).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use huying::db::schema::{ticket_events, tickets};
use huying::db::{DbConn, MultiBackend};
use huying::domain::metrics::{
    judge, pair_events, LevelCounts, StatEvent, StatTicket, StatusCounts, Tally, HISTORY_ACTIONS,
};
use huying::error::AppResult;
use huying::service::stats::ranking::rank_units;
use huying::service::stats::{Range, RankRow, RankSort, RankUnit, StatsScope, Summary};
use huying::service::tickets::no_deadline;

type Boxed<'a> = tickets::BoxedQuery<'a, MultiBackend>;

fn scoped<'a>(scope: &StatsScope) -> Boxed<'a> {
    scope.filter().apply(
        tickets::table.into_boxed::<MultiBackend>(),
        tickets::street_id,
        tickets::community_id,
    )
}

/// The tickets created in the range plus their history events, paired by ticket.
fn load_cohort(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<(StatTicket, Vec<StatEvent>)>> {
    let rows: Vec<StatTicket> = scoped(scope)
        .filter(tickets::created_at.ge(range.from.naive_utc()))
        .filter(tickets::created_at.lt(range.to.naive_utc()))
        .order(tickets::id.asc())
        .select(StatTicket::as_select())
        .load(conn)?;
    let events = ticket_events::table
        .inner_join(tickets::table)
        .into_boxed::<MultiBackend>()
        .filter(tickets::created_at.ge(range.from.naive_utc()))
        .filter(tickets::created_at.lt(range.to.naive_utc()))
        .filter(ticket_events::action.eq_any(HISTORY_ACTIONS));
    let events: Vec<StatEvent> = scope
        .filter()
        .apply(events, tickets::street_id, tickets::community_id)
        .order((ticket_events::ticket_id.asc(), ticket_events::id.asc()))
        .select(StatEvent::as_select())
        .load(conn)?;
    Ok(pair_events(rows, events))
}

/// An active (open or acknowledged) ticket in scope now, whatever the range.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tickets)]
struct ActiveTicket {
    level: huying::domain::ticket::Level,
    community_id: i64,
    compound_id: i64,
    overdue: bool,
    due_at: NaiveDateTime,
}

impl ActiveTicket {
    /// The queue's rule (`GET /tickets?overdue=true`), for active tickets: past the running
    /// deadline, or marked overdue at the street.
    fn is_overdue(&self, now: NaiveDateTime) -> bool {
        self.overdue || (self.due_at != no_deadline() && self.due_at < now)
    }
}

fn load_active(conn: &mut DbConn, scope: &StatsScope) -> AppResult<Vec<ActiveTicket>> {
    Ok(scoped(scope)
        .filter(tickets::status.eq_any(["open", "acknowledged"]))
        .select(ActiveTicket::as_select())
        .load(conn)?)
}

/// `service::stats::summary`, replaying histories.
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
        by_status.add(t.status, 1);
        by_level.add(t.level, 1);
        tally.add(&judge(&t, &events, now_ts));
    }
    let mut open_now_by_level = LevelCounts::default();
    let mut overdue = 0;
    for a in load_active(conn, scope)? {
        open_now_by_level.add(a.level, 1);
        overdue += i64::from(a.is_overdue(now_ts));
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
    // Callbacks are rows of their own, not replayed history: read as the service reads them.
    s.callbacks = huying::service::stats::callback_summary(conn, scope, range)?;
    s.callback_satisfaction_rate = s.callbacks.satisfaction_rate();
    Ok(s)
}

/// `service::stats::ranking`, replaying histories.
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
    rank_units(conn, scope, unit, sort, tallies, overdue)
}
