//! The stored statistics facts of each ticket (`ticket_stats`, `ticket_stays`; migration
//! 000006). [`refresh`] rewrites a ticket's facts in the same transaction as each of its timeline
//! events, so the dashboard aggregates them in SQL instead of replaying every ticket's history;
//! [`backfill`] computes them for tickets written before the migration (or with an older
//! [`FACTS_VERSION`]).

use std::cell::RefCell;
use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::dialect::insert_all;
use crate::db::models::{NewTicketEvent, TicketRow};
use crate::db::schema::{ticket_events, ticket_stats, ticket_stays, tickets};
use crate::db::{write_tx, DbConn};
use crate::domain::metrics::{
    outcome, pair_events, secs, Outcome, StatEvent, StatTicket, HISTORY_ACTIONS,
};
use crate::domain::ticket::{ClosedBy, Level, Status};
use crate::error::AppResult;

/// Bump when the rules in `outcome` change: [`backfill`] then recomputes every row.
pub const FACTS_VERSION: i32 = 2;
/// Tickets per back-fill transaction.
const BACKFILL_BATCH: i64 = 1_000;

#[derive(Debug, Clone, PartialEq, Insertable, Queryable, Selectable)]
#[diesel(table_name = ticket_stats)]
// A None is NULL (no column here has another default): multi-row INSERTs on SQLite too.
#[diesel(treat_none_as_default_value = false)]
pub struct StatsRow {
    pub ticket_id: i64,
    pub version: i32,
    pub street_id: i64,
    pub community_id: i64,
    pub compound_id: i64,
    pub category_id: i64,
    pub created_at: NaiveDateTime,
    pub status: Status,
    pub level: Level,
    pub went_up: bool,
    pub rating: Option<i32>,
    pub response: Option<bool>,
    pub response_due: Option<NaiveDateTime>,
    pub resolution: Option<bool>,
    pub resolution_due: Option<NaiveDateTime>,
    pub first_answer_secs: Option<i64>,
    pub settle_secs: Option<i64>,
    pub closed_by: Option<ClosedBy>,
}

#[derive(Debug, Clone, PartialEq, Insertable, Queryable, Selectable)]
#[diesel(table_name = ticket_stays)]
// A None is NULL (no column here has another default): multi-row INSERTs on SQLite too.
#[diesel(treat_none_as_default_value = false)]
pub struct StayRow {
    pub ticket_id: i64,
    pub seq: i32,
    pub street_id: i64,
    pub community_id: i64,
    pub created_at: NaiveDateTime,
    pub level: Level,
    pub answer_secs: i64,
    pub settle_secs: Option<i64>,
}

impl From<&TicketRow> for StatTicket {
    fn from(t: &TicketRow) -> Self {
        StatTicket {
            id: t.id,
            status: t.status,
            level: t.level,
            street_id: t.street_id,
            community_id: t.community_id,
            compound_id: t.compound_id,
            category_id: t.category_id,
            escalation_count: t.escalation_count,
            rating: t.rating,
            level_entered_at: t.level_entered_at,
            ack_due_at: t.ack_due_at,
            resolve_due_at: t.resolve_due_at,
            paused_at: t.paused_at,
            created_at: t.created_at,
            acknowledged_at: t.acknowledged_at,
            resolved_at: t.resolved_at,
            closed_at: t.closed_at,
            closed_by: t.closed_by,
        }
    }
}

/// The rows stored for one ticket: its facts and its answered stays.
pub fn rows_for(t: &StatTicket, o: &Outcome) -> (StatsRow, Vec<StayRow>) {
    let row = StatsRow {
        ticket_id: t.id,
        version: FACTS_VERSION,
        street_id: t.street_id,
        community_id: t.community_id,
        compound_id: t.compound_id,
        category_id: t.category_id,
        created_at: t.created_at,
        status: t.status,
        level: t.level,
        went_up: t.escalation_count > 0,
        rating: t.rating,
        response: o.response,
        response_due: o.response_due,
        resolution: o.resolution,
        resolution_due: o.resolution_due,
        first_answer_secs: o.first_answer_secs,
        settle_secs: o.settle_secs,
        closed_by: t.closed_by,
    };
    let stays = o
        .visits
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            Some(StayRow {
                ticket_id: t.id,
                seq: i32::try_from(i).ok()?,
                street_id: t.street_id,
                community_id: t.community_id,
                created_at: t.created_at,
                level: v.level,
                answer_secs: secs(v.arrived, v.answered?),
                settle_secs: v.resolved.map(|r| secs(v.arrived, r)),
            })
        })
        .collect();
    (row, stays)
}

/// One ticket's events that count for its facts. The actions are picked here rather than with
/// `IN (…)`: SQLite compiles a statement with a list again on every run, and a ticket has few
/// other events (this runs on every change).
fn history(conn: &mut DbConn, ticket_id: i64) -> AppResult<Vec<StatEvent>> {
    let mut events: Vec<StatEvent> = ticket_events::table
        .filter(ticket_events::ticket_id.eq(ticket_id))
        .order(ticket_events::id.asc())
        .select(StatEvent::as_select())
        .load(conn)?;
    events.retain(|e| HISTORY_ACTIONS.contains(&e.action));
    Ok(events)
}

fn replace(conn: &mut DbConn, ids: &[i64], rows: &[StatsRow], stays: &[StayRow]) -> AppResult<()> {
    // Both fact tables' rows of the tickets whose `ticket_id` meets `$cond($arg)`.
    macro_rules! delete_facts {
        ($cond:ident($arg:expr)) => {
            diesel::delete(ticket_stays::table.filter(ticket_stays::ticket_id.$cond($arg)))
                .execute(conn)?;
            diesel::delete(ticket_stats::table.filter(ticket_stats::ticket_id.$cond($arg)))
                .execute(conn)?;
        };
    }
    if let [id] = ids {
        // One ticket (every single change): statements the connection keeps prepared (an
        // `IN (…)` is compiled again on every run on SQLite).
        delete_facts!(eq(*id));
    } else {
        delete_facts!(eq_any(ids));
    }
    insert(conn, rows, stays)
}

fn insert(conn: &mut DbConn, rows: &[StatsRow], stays: &[StayRow]) -> AppResult<()> {
    insert_all::<_, StatsRow>(conn, ticket_stats::table, rows)?;
    insert_all::<_, StayRow>(conn, ticket_stays::table, stays)
}

/// Inside [`deferred`], notes `id` for the rewrite at its end and says so.
fn noted_for_later(id: i64) -> bool {
    DEFERRED.with(|d| d.borrow_mut().as_mut().map(|ids| ids.insert(id)).is_some())
}

/// The facts row and stays of `t` with its history `events`.
fn facts_of(t: &TicketRow, events: &[StatEvent]) -> (StatsRow, Vec<StayRow>) {
    let st = StatTicket::from(t);
    rows_for(&st, &outcome(&st, events))
}

/// Rewrites the facts of `t` (as just written) from its state and its whole history. Called by
/// `tickets::record` after every event, inside the transaction that wrote the ticket and the
/// event, so the facts can never disagree with what they describe.
pub fn refresh(conn: &mut DbConn, t: &TicketRow) -> AppResult<()> {
    if noted_for_later(t.id) {
        return Ok(());
    }
    let (row, stays) = facts_of(t, &history(conn, t.id)?);
    replace(conn, &[t.id], &[row], &stays)
}

/// The facts of a ticket created in this transaction, whose whole history is `events` (as
/// stored with it): nothing to read and, since a ticket id is never reused and the fact tables
/// reference `tickets`, nothing to delete. Three statements fewer than [`refresh`] on every
/// create.
pub fn insert_new(conn: &mut DbConn, t: &TicketRow, events: &[NewTicketEvent]) -> AppResult<()> {
    if noted_for_later(t.id) {
        return Ok(());
    }
    let history: Vec<StatEvent> = events
        .iter()
        .filter(|e| e.ticket_id == t.id && HISTORY_ACTIONS.contains(&e.action))
        .map(|e| StatEvent {
            ticket_id: e.ticket_id,
            action: e.action,
            level: e.level,
            level_after: e.level_after,
            status_before: e.status_before,
            reason: e.reason.clone(),
            actor_role: e.actor_role,
            created_at: e.created_at,
        })
        .collect();
    let (row, stays) = facts_of(t, &history);
    insert(conn, &[row], &stays)
}

thread_local! {
    /// Set while [`deferred`] runs on this thread: the tickets whose facts are due.
    static DEFERRED: RefCell<Option<BTreeSet<i64>>> = const { RefCell::new(None) };
}

/// Runs `f`, in which every [`refresh`] only notes its ticket, then rewrites the noted tickets'
/// facts at once from what is stored: a few statements for a whole batch instead of a history
/// read and four writes per ticket (the SLA sweeper's chunks). Rewriting facts from the stored
/// state is right for any ticket, so a ticket whose own savepoint `f` rolled back is rewritten
/// to what it was. Inside another `deferred`, the outer one rewrites.
pub fn deferred<T>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> AppResult<T>) -> AppResult<T> {
    if DEFERRED.with(|d| d.borrow().is_some()) {
        return f(conn);
    }
    /// Ends the deferral however `f` ends (an error or a panic included).
    struct End;
    impl Drop for End {
        fn drop(&mut self) {
            DEFERRED.with(|d| d.borrow_mut().take());
        }
    }
    DEFERRED.with(|d| *d.borrow_mut() = Some(BTreeSet::new()));
    let _end = End;
    let out = f(conn)?;
    let noted = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
    refresh_many(conn, &noted.into_iter().collect::<Vec<_>>())?;
    Ok(out)
}

/// Rewrites the facts of the tickets `ids` from their stored rows and histories.
fn refresh_many(conn: &mut DbConn, ids: &[i64]) -> AppResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let rows: Vec<StatTicket> = tickets::table
        .filter(tickets::id.eq_any(ids))
        .order(tickets::id.asc())
        .select(StatTicket::as_select())
        .load(conn)?;
    let events: Vec<StatEvent> = ticket_events::table
        .filter(ticket_events::ticket_id.eq_any(ids))
        .filter(ticket_events::action.eq_any(HISTORY_ACTIONS))
        .order((ticket_events::ticket_id.asc(), ticket_events::id.asc()))
        .select(StatEvent::as_select())
        .load(conn)?;
    let mut stats = Vec::with_capacity(rows.len());
    let mut stays = Vec::new();
    for (t, ev) in pair_events(rows, events) {
        let (row, s) = rows_for(&t, &outcome(&t, &ev));
        stats.push(row);
        stays.extend(s);
    }
    replace(conn, ids, &stats, &stays)?;
    Ok(stats.len())
}

/// Computes the facts of every ticket that has none (or older ones), in batches of 1,000 tickets
/// per transaction. Cheap when there is nothing to do (two counts). Returns how many tickets it
/// computed.
pub fn backfill(conn: &mut DbConn) -> AppResult<usize> {
    let all: i64 = tickets::table.count().get_result(conn)?;
    let current: i64 = ticket_stats::table
        .filter(ticket_stats::version.eq(FACTS_VERSION))
        .count()
        .get_result(conn)?;
    if all == current {
        return Ok(0);
    }
    let mut after = 0i64;
    let mut done = 0usize;
    loop {
        let batch = write_tx(conn, |c| -> AppResult<Option<(i64, usize)>> {
            let ids: Vec<i64> = tickets::table
                .filter(tickets::id.gt(after))
                .order(tickets::id.asc())
                .limit(BACKFILL_BATCH)
                .select(tickets::id)
                .load(c)?;
            let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
                return Ok(None);
            };
            let fresh: Vec<i64> = ticket_stats::table
                .filter(ticket_stats::ticket_id.between(first, last))
                .filter(ticket_stats::version.eq(FACTS_VERSION))
                .select(ticket_stats::ticket_id)
                .load(c)?;
            let fresh: std::collections::HashSet<i64> = fresh.into_iter().collect();
            let todo: Vec<i64> = ids.into_iter().filter(|i| !fresh.contains(i)).collect();
            if todo.is_empty() {
                return Ok(Some((last, 0)));
            }
            Ok(Some((last, refresh_many(c, &todo)?)))
        })?;
        match batch {
            Some((last, n)) => {
                after = last;
                done += n;
            }
            None => break,
        }
    }
    if done > 0 {
        tracing::info!(tickets = done, "statistics facts back-filled");
    }
    Ok(done)
}
