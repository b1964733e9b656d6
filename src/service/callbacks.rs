//! Callbacks (回访) and the accountability ledger's entries. The commit path calls [`on_change`]
//! in every ticket change's transaction: it stores the change's ledger entries and, when the
//! ticket has just closed, the callback that closure gets (if any). Staff who make a street's
//! callbacks list them ([`list`]) and record each call ([`record`]); a call's verdict changes the
//! ticket through the commit path like any other change.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::db::models::TicketRow;
use crate::db::schema::{
    callback_attempts, callbacks, categories, ledger_entries, org_units, ticket_events, tickets,
    users,
};
use crate::db::DbConn;
use crate::domain::callback::{
    self, Attempt, CallbackFlag, CallbackLevel, CallbackReason, CallbackRefusal, CallbackState,
    CallbackVerdict, Closure, Pending,
};
use crate::domain::ledger::{self, LedgerKind};
use crate::domain::role::{ActorRole, Role};
use crate::domain::ticket::{self, Actor, ClosedBy, Command, Event, EventKind, Level, Status};
use crate::domain::validate;
use crate::error::{AppError, AppResult};
use crate::service::sla::SlaEngine;
use crate::service::tickets::commit::{self, Author};

/// The stored callback.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = callbacks)]
pub struct CallbackRow {
    pub id: i64,
    pub ticket_id: i64,
    pub street_id: i64,
    pub community_id: i64,
    pub compound_id: i64,
    pub closed_by: ClosedBy,
    pub closed_at: NaiveDateTime,
    pub closed_level: Level,
    pub closed_unit_id: i64,
    pub reason: CallbackReason,
    pub flag: Option<CallbackFlag>,
    pub assigned_level: CallbackLevel,
    pub due_at: NaiveDateTime,
    pub state: CallbackState,
    pub attempts: i32,
    pub verdict: Option<CallbackVerdict>,
    pub pressed: Option<bool>,
    pub asks_pressed: bool,
    pub note: Option<String>,
    pub reopened: bool,
    pub completed_by: Option<i64>,
    pub completed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = ledger_entries)]
// A None is NULL, not DEFAULT: SQLite has no DEFAULT in VALUES, and diesel would insert a
// slice of rows that may hold one row by row instead of with one multi-row INSERT.
#[diesel(treat_none_as_default_value = false)]
struct NewLedgerEntry {
    street_id: i64,
    community_id: i64,
    unit_id: i64,
    level: Level,
    kind: LedgerKind,
    reason: Option<String>,
    ticket_id: i64,
    at: NaiveDateTime,
}

/// The staff actions that count as contacting the resident before a withdrawal: a reply the
/// resident reads, a phone lookup (a call) or a request for information.
const CONTACTS: [EventKind; 3] = [
    EventKind::Comment,
    EventKind::RevealPhone,
    EventKind::WaitOnResident,
];
const STAFF_ROLES: [ActorRole; 3] = [
    ActorRole::CompoundStaff,
    ActorRole::CommunityStaff,
    ActorRole::StreetStaff,
];

/// One stored change, as the ledger and the callbacks see it.
pub struct Changed<'a> {
    pub before: Option<&'a TicketRow>,
    pub after: &'a TicketRow,
    pub events: &'a [Event],
}

/// Part of the commit path: the ledger entries of a stored change and the callback of a closure.
pub fn on_change(
    conn: &mut DbConn,
    before: Option<&TicketRow>,
    after: &TicketRow,
    events: &[Event],
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<()> {
    on_changes(
        conn,
        &[Changed {
            before,
            after,
            events,
        }],
        sla,
        now,
    )
}

/// [`on_change`] for many changes stored together (a sweep's chunk): their ledger entries are
/// written with one INSERT and one roll-up statement per (unit, column, day).
pub fn on_changes(
    conn: &mut DbConn,
    changes: &[Changed<'_>],
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut rows: Vec<NewLedgerEntry> = Vec::new();
    for c in changes {
        ledger_rows(conn, c, now, &mut rows)?;
    }
    add_to_ledger(conn, &rows)?;
    for Changed { before, after, .. } in changes {
        let closed_now =
            after.closed_at.is_some() && before.and_then(|b| b.closed_at) != after.closed_at;
        if let (true, Some(closed_by), Some(closed_at)) =
            (closed_now, after.closed_by, after.closed_at)
        {
            choose(conn, after, closed_by, closed_at, sla, now)?;
        }
    }
    Ok(())
}

fn ledger_rows(
    conn: &mut DbConn,
    c: &Changed<'_>,
    now: DateTime<Utc>,
    rows: &mut Vec<NewLedgerEntry>,
) -> AppResult<()> {
    let Changed {
        before,
        after,
        events,
    } = *c;
    let b = before.map(TicketRow::to_domain);
    let a = after.to_domain();
    let reviews_a_decline = events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::UpholdDecline | EventKind::OverturnDecline
        ) || (e.kind == EventKind::Return
            && b.as_ref()
                .is_some_and(|b| b.status == Status::DeclineReview))
    });
    let decliner = if reviews_a_decline {
        last_decline_level(conn, after.id)?
    } else {
        None
    };
    let at = crate::db::round_ts(now);
    rows.extend(
        ledger::entries(b.as_ref(), &a, events, decliner, now)
            .into_iter()
            .map(|e| NewLedgerEntry {
                street_id: after.street_id,
                community_id: after.community_id,
                unit_id: e.unit_id.0,
                level: e.level,
                kind: e.kind,
                reason: e.reason,
                ticket_id: after.id,
                at,
            }),
    );
    Ok(())
}

/// A row of the daily roll-up: unit, level, column, reason ('' for none), local day.
type DayKey = (i64, Level, LedgerKind, String, NaiveDateTime);

/// Stores ledger entries and adds them to the daily roll-up (`ledger_daily`), in the caller's
/// transaction.
/// Days added to per statement: 8 parameters each, well under SQLite's 32,766.
const DAILY_CHUNK: usize = 500;

fn add_to_ledger(conn: &mut DbConn, rows: &[NewLedgerEntry]) -> AppResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    crate::db::dialect::insert_all::<_, NewLedgerEntry>(conn, ledger_entries::table, rows)?;
    let mut days: std::collections::BTreeMap<DayKey, (i64, i64, i64)> =
        std::collections::BTreeMap::new();
    for r in rows {
        let day = crate::db::round_ts(crate::domain::calendar::local_day_of(r.at.and_utc()));
        let key = (
            r.unit_id,
            r.level,
            r.kind,
            r.reason.clone().unwrap_or_default(),
            day,
        );
        days.entry(key)
            .or_insert((r.street_id, r.community_id, 0))
            .2 += 1;
    }
    // One statement per chunk of distinct days (a multi-row upsert may not touch a row twice,
    // and the map's keys are distinct): a sweep's chunk adds to a few dozen days at once.
    let days: Vec<_> = days.into_iter().collect();
    for chunk in days.chunks(DAILY_CHUNK) {
        let mut q = crate::db::dialect::Sql::new(conn);
        q.push("INSERT INTO ledger_daily (unit_id, level, kind, reason, day, street_id, ")
            .push("community_id, n) VALUES ");
        for (i, ((unit, level, kind, reason, day), (street, community, n))) in
            chunk.iter().enumerate()
        {
            q.push(if i == 0 { "(" } else { ", (" })
                .id(*unit)
                .push(", ")
                .text(level.as_str())
                .push(", ")
                .text(kind.as_str())
                .push(", ")
                .text(reason)
                .push(", ")
                .ts(*day)
                .push(", ")
                .id(*street)
                .push(", ")
                .id(*community)
                .push(", ")
                .id(*n)
                .push(")");
        }
        // The same statement on both engines (SQLite ≥ 3.24, PostgreSQL ≥ 9.5).
        q.push(" ON CONFLICT (unit_id, level, kind, reason, day) ")
            .push("DO UPDATE SET n = ledger_daily.n + excluded.n");
        q.execute(conn)?;
    }
    Ok(())
}

#[derive(Debug, Insertable)]
#[diesel(table_name = crate::db::schema::ledger_daily)]
struct DailyRow {
    unit_id: i64,
    level: Level,
    kind: LedgerKind,
    reason: String,
    day: NaiveDateTime,
    street_id: i64,
    community_id: i64,
    n: i64,
}

/// Recomputes the whole daily roll-up from the entries (after a bulk load of entries, or to
/// repair it); returns the rows written. In the caller's transaction.
pub fn rebuild_ledger_daily(conn: &mut DbConn) -> AppResult<usize> {
    use crate::db::schema::ledger_daily;
    type Entry = (
        i64,
        i64,
        i64,
        Level,
        LedgerKind,
        Option<String>,
        NaiveDateTime,
    );
    diesel::delete(ledger_daily::table).execute(conn)?;
    let mut days: std::collections::BTreeMap<DayKey, (i64, i64, i64)> =
        std::collections::BTreeMap::new();
    let mut after = 0i64;
    loop {
        let chunk: Vec<(i64, Entry)> = ledger_entries::table
            .filter(ledger_entries::id.gt(after))
            .order(ledger_entries::id.asc())
            .limit(100_000)
            .select((
                ledger_entries::id,
                (
                    ledger_entries::street_id,
                    ledger_entries::community_id,
                    ledger_entries::unit_id,
                    ledger_entries::level,
                    ledger_entries::kind,
                    ledger_entries::reason,
                    ledger_entries::at,
                ),
            ))
            .load(conn)?;
        let Some(last) = chunk.last() else { break };
        after = last.0;
        for (_, (street, community, unit, level, kind, reason, at)) in chunk {
            let day = crate::db::round_ts(crate::domain::calendar::local_day_of(at.and_utc()));
            days.entry((unit, level, kind, reason.unwrap_or_default(), day))
                .or_insert((street, community, 0))
                .2 += 1;
        }
    }
    let rows: Vec<DailyRow> = days
        .into_iter()
        .map(
            |((unit_id, level, kind, reason, day), (street_id, community_id, n))| DailyRow {
                unit_id,
                level,
                kind,
                reason,
                day,
                street_id,
                community_id,
                n,
            },
        )
        .collect();
    crate::db::dialect::insert_all::<_, DailyRow>(conn, ledger_daily::table, &rows)?;
    Ok(rows.len())
}

/// The level whose decline a review decides: the latest `decline` on the timeline.
fn last_decline_level(conn: &mut DbConn, ticket_id: i64) -> AppResult<Option<Level>> {
    Ok(ticket_events::table
        .filter(ticket_events::ticket_id.eq(ticket_id))
        .filter(ticket_events::action.eq(EventKind::Decline))
        .order(ticket_events::id.desc())
        .select(ticket_events::level)
        .first::<Level>(conn)
        .optional()?)
}

/// Stores the callback a closure gets, if the rules choose it.
fn choose(
    conn: &mut DbConn,
    t: &TicketRow,
    closed_by: ClosedBy,
    closed_at: NaiveDateTime,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let last_staff_contact = if closed_by == ClosedBy::Withdrawn {
        ticket_events::table
            .filter(ticket_events::ticket_id.eq(t.id))
            .filter(ticket_events::actor_role.eq_any(STAFF_ROLES))
            .filter(ticket_events::action.eq_any(CONTACTS))
            .filter(ticket_events::internal.eq(false))
            .select(diesel::dsl::max(ticket_events::created_at))
            .first::<Option<NaiveDateTime>>(conn)?
    } else {
        None
    };
    let share = sla.callbacks.sample_percent * 10;
    // The key is read only when a draw is needed.
    let key = if closed_by == ClosedBy::Resident && share > 0 {
        crate::service::auth::shared_secret(conn, "callback_sample", crate::db::round_ts(now))?
    } else {
        Vec::new()
    };
    let closure = Closure {
        ticket_id: t.id,
        closed_by,
        closed_at,
        source: t.source,
        rating: t.rating,
        resolved_at: t.resolved_at,
        last_staff_contact,
    };
    let Some(sel) = callback::select(&closure, share, &key) else {
        return Ok(());
    };
    let street_level: Option<Option<CallbackLevel>> = org_units::table
        .find(t.street_id)
        .select(org_units::callback_level)
        .first::<Option<String>>(conn)
        .optional()?
        .map(|v| v.as_deref().and_then(CallbackLevel::parse));
    let assigned = street_level.flatten().unwrap_or(sla.callbacks.level);
    let level = t.level;
    let ts = crate::db::round_ts(now);
    // In a savepoint: a second closure of the ticket within the same second (the unique key is
    // the closing instant) keeps the callback already queued, and PostgreSQL's transaction
    // stays usable.
    let inserted = conn.transaction(|c| {
        diesel::insert_into(callbacks::table)
            .values((
                callbacks::ticket_id.eq(t.id),
                callbacks::street_id.eq(t.street_id),
                callbacks::community_id.eq(t.community_id),
                callbacks::compound_id.eq(t.compound_id),
                callbacks::closed_by.eq(closed_by),
                callbacks::closed_at.eq(closed_at),
                callbacks::closed_level.eq(level),
                callbacks::closed_unit_id.eq(t.to_domain().unit_at(level).0),
                callbacks::reason.eq(sel.reason),
                callbacks::flag.eq(sel.flag),
                callbacks::assigned_level.eq(assigned),
                callbacks::due_at.eq(crate::db::round_ts(sla.callback_due(closed_at.and_utc()))),
                callbacks::state.eq(CallbackState::Pending),
                callbacks::attempts.eq(0),
                callbacks::asks_pressed.eq(sel.asks_pressed),
                callbacks::reopened.eq(false),
                callbacks::created_at.eq(ts),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) => {}
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(
        ticket_id = t.id,
        reason = sel.reason.as_str(),
        flagged = sel.flag.is_some(),
        "callback queued"
    );
    Ok(())
}

/// Where a caller may work callbacks: the callbacks assigned to their level in their unit.
enum Reach {
    All,
    Street(i64),
    Community(i64),
}

fn reach(user: &AuthUser) -> AppResult<Reach> {
    match (user.role, user.org_unit_id) {
        (Role::Admin, _) => Ok(Reach::All),
        (Role::StreetStaff, Some(u)) => Ok(Reach::Street(u)),
        (Role::CommunityStaff, Some(u)) => Ok(Reach::Community(u)),
        _ => Err(AppError::Forbidden),
    }
}

fn may_work(r: &Reach, c: &CallbackRow) -> bool {
    match r {
        Reach::All => true,
        Reach::Street(s) => c.street_id == *s && c.assigned_level == CallbackLevel::Street,
        Reach::Community(m) => c.community_id == *m && c.assigned_level == CallbackLevel::Community,
    }
}

/// Which callbacks to list.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    #[default]
    Pending,
    Done,
    Unreachable,
    All,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending` (default), `done`, `unreachable` or `all`.
    pub state: Option<StateFilter>,
    /// Only those flagged as looking pressed.
    pub flagged: Option<bool>,
    /// At most this many (default 50, at most 200).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub at: DateTime<Utc>,
    pub reached: bool,
    pub by_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackView {
    pub id: i64,
    pub ticket_id: i64,
    pub reference: String,
    pub title: String,
    pub category_id: i64,
    pub category_name: String,
    pub compound_id: i64,
    pub compound_name: String,
    pub community_name: String,
    pub reason: CallbackReason,
    /// Set when the closure looks pressed.
    pub flag: Option<CallbackFlag>,
    pub closed_by: ClosedBy,
    pub closed_at: DateTime<Utc>,
    /// The level that closed it (its unit answers for the verdict in the ledger).
    pub closed_level: Level,
    pub rating: Option<i32>,
    pub due_at: DateTime<Utc>,
    pub overdue: bool,
    pub state: CallbackState,
    pub attempts: Vec<AttemptView>,
    pub verdict: Option<CallbackVerdict>,
    pub pressed: Option<bool>,
    /// The call must ask whether the resident was pressed (a withdrawal or a rating).
    pub asks_pressed: bool,
    pub note: Option<String>,
    /// The resident's phone, for the call; only while the callback is pending.
    pub resident_phone: Option<String>,
    /// The verdict reopened the ticket.
    pub reopened: bool,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CallbackCounts {
    pub pending: i64,
    /// Pending and due before the end of today (Asia/Shanghai).
    pub due_today: i64,
    /// Pending and past due.
    pub overdue: i64,
    /// Pending and flagged as looking pressed.
    pub flagged: i64,
    pub done: i64,
    pub unreachable: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackList {
    pub items: Vec<CallbackView>,
    pub counts: CallbackCounts,
    pub next_cursor: Option<i64>,
}

/// The caller's callback queue: due first (pending), most recent first (otherwise).
pub fn list(
    conn: &mut DbConn,
    user: &AuthUser,
    q: &ListQuery,
    now: DateTime<Utc>,
) -> AppResult<CallbackList> {
    let r = reach(user)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let state = q.state.unwrap_or_default();
    let mut query = scoped(&r);
    query = match state {
        StateFilter::Pending => query.filter(callbacks::state.eq(CallbackState::Pending)),
        StateFilter::Done => query.filter(callbacks::state.eq(CallbackState::Done)),
        StateFilter::Unreachable => query.filter(callbacks::state.eq(CallbackState::Unreachable)),
        StateFilter::All => query,
    };
    if q.flagged == Some(true) {
        query = query.filter(callbacks::flag.is_not_null());
    }
    // Pending: by due time, then id (the cursor is an offset in that order, kept simple
    // because the queue is short); otherwise newest first by id.
    let offset = q.cursor.unwrap_or(0).max(0);
    let rows: Vec<CallbackRow> = match state {
        StateFilter::Pending => query
            .order((callbacks::due_at.asc(), callbacks::id.asc()))
            .offset(offset)
            .limit(limit + 1)
            .select(CallbackRow::as_select())
            .load(conn)?,
        _ => query
            .order(callbacks::id.desc())
            .offset(offset)
            .limit(limit + 1)
            .select(CallbackRow::as_select())
            .load(conn)?,
    };
    let more = rows.len() as i64 > limit;
    let rows: Vec<CallbackRow> = rows.into_iter().take(limit as usize).collect();
    let items = views(conn, rows, now)?;
    Ok(CallbackList {
        counts: counts(conn, &r, now)?,
        next_cursor: more.then_some(offset + limit),
        items,
    })
}

type Scoped<'a> = callbacks::BoxedQuery<'a, crate::db::MultiBackend>;

fn scoped<'a>(r: &Reach) -> Scoped<'a> {
    let q = callbacks::table.into_boxed();
    match r {
        Reach::All => q,
        Reach::Street(s) => q
            .filter(callbacks::street_id.eq(*s))
            .filter(callbacks::assigned_level.eq(CallbackLevel::Street)),
        Reach::Community(m) => q
            .filter(callbacks::community_id.eq(*m))
            .filter(callbacks::assigned_level.eq(CallbackLevel::Community)),
    }
}

fn counts(conn: &mut DbConn, r: &Reach, now: DateTime<Utc>) -> AppResult<CallbackCounts> {
    let end_of_day = crate::domain::calendar::end_of_local_day(now);
    let now = now.naive_utc();
    let rows: Vec<(NaiveDateTime, Option<CallbackFlag>)> = scoped(r)
        .filter(callbacks::state.eq(CallbackState::Pending))
        .select((callbacks::due_at, callbacks::flag))
        .load(conn)?;
    let mut c = CallbackCounts::default();
    for (due, flag) in &rows {
        c.pending += 1;
        if *due < now {
            c.overdue += 1;
        } else if *due < end_of_day.naive_utc() {
            c.due_today += 1;
        }
        if flag.is_some() {
            c.flagged += 1;
        }
    }
    c.done = scoped(r)
        .filter(callbacks::state.eq(CallbackState::Done))
        .count()
        .get_result(conn)?;
    c.unreachable = scoped(r)
        .filter(callbacks::state.eq(CallbackState::Unreachable))
        .count()
        .get_result(conn)?;
    Ok(c)
}

fn views(
    conn: &mut DbConn,
    rows: Vec<CallbackRow>,
    now: DateTime<Utc>,
) -> AppResult<Vec<CallbackView>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let ticket_ids: Vec<i64> = rows.iter().map(|r| r.ticket_id).collect();
    type TicketBits = (i64, String, String, i64, i64, i64, Option<i32>);
    let tickets: Vec<TicketBits> = tickets::table
        .filter(tickets::id.eq_any(&ticket_ids))
        .select((
            tickets::id,
            tickets::reference,
            tickets::title,
            tickets::category_id,
            tickets::resident_id,
            tickets::community_id,
            tickets::rating,
        ))
        .load(conn)?;
    let tickets: std::collections::HashMap<i64, TicketBits> =
        tickets.into_iter().map(|t| (t.0, t)).collect();
    let unit_ids: Vec<i64> = rows
        .iter()
        .flat_map(|r| [r.compound_id, r.community_id])
        .collect();
    let names: std::collections::HashMap<i64, String> = org_units::table
        .filter(org_units::id.eq_any(&unit_ids))
        .select((org_units::id, org_units::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let cat_ids: Vec<i64> = tickets.values().map(|t| t.3).collect();
    let cats: std::collections::HashMap<i64, String> = categories::table
        .filter(categories::id.eq_any(&cat_ids))
        .select((categories::id, categories::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let resident_ids: Vec<i64> = tickets.values().map(|t| t.4).collect();
    let phones: std::collections::HashMap<i64, Option<String>> = users::table
        .filter(users::id.eq_any(&resident_ids))
        .select((users::id, users::phone))
        .load::<(i64, Option<String>)>(conn)?
        .into_iter()
        .collect();
    let attempts: Vec<(i64, NaiveDateTime, bool, String)> = callback_attempts::table
        .inner_join(users::table.on(users::id.eq(callback_attempts::by_user)))
        .filter(callback_attempts::callback_id.eq_any(&ids))
        .order(callback_attempts::id.asc())
        .select((
            callback_attempts::callback_id,
            callback_attempts::at,
            callback_attempts::reached,
            users::display_name,
        ))
        .load(conn)?;
    let now = now.naive_utc();
    Ok(rows
        .into_iter()
        .map(|r| {
            let t = tickets.get(&r.ticket_id);
            let name = |id: i64| names.get(&id).cloned().unwrap_or_default();
            CallbackView {
                id: r.id,
                ticket_id: r.ticket_id,
                reference: t.map(|t| t.1.clone()).unwrap_or_default(),
                title: t.map(|t| t.2.clone()).unwrap_or_default(),
                category_id: t.map_or(0, |t| t.3),
                category_name: t.and_then(|t| cats.get(&t.3).cloned()).unwrap_or_default(),
                compound_id: r.compound_id,
                compound_name: name(r.compound_id),
                community_name: name(r.community_id),
                reason: r.reason,
                flag: r.flag,
                closed_by: r.closed_by,
                closed_at: r.closed_at.and_utc(),
                closed_level: r.closed_level,
                rating: t.and_then(|t| t.6),
                due_at: r.due_at.and_utc(),
                overdue: r.state == CallbackState::Pending && r.due_at < now,
                state: r.state,
                attempts: attempts
                    .iter()
                    .filter(|a| a.0 == r.id)
                    .map(|a| AttemptView {
                        at: a.1.and_utc(),
                        reached: a.2,
                        by_name: a.3.clone(),
                    })
                    .collect(),
                verdict: r.verdict,
                pressed: r.pressed,
                asks_pressed: r.asks_pressed,
                note: r.note.clone(),
                resident_phone: (r.state == CallbackState::Pending)
                    .then(|| t.and_then(|t| phones.get(&t.4).cloned().flatten()))
                    .flatten(),
                reopened: r.reopened,
            }
        })
        .collect())
}

/// One call.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCall {
    /// The resident answered.
    pub reached: bool,
    /// What the resident says; required when reached.
    pub verdict: Option<CallbackVerdict>,
    /// Whether the resident says they were pressed to withdraw or to rate; required when
    /// reached and the callback `asks_pressed`.
    pub pressed: Option<bool>,
    /// What was said (at most 500 characters).
    pub note: Option<String>,
}

/// Records one call on callback `id`: an unreached attempt (the third makes it unreachable), or
/// the resident's verdict. A verdict of `unsatisfied`, or being pressed, reopens the ticket
/// (`callback_reopen`); a satisfied verdict on an auto-closed ticket makes it closed by callback.
pub fn record(
    conn: &mut DbConn,
    user: &AuthUser,
    id: i64,
    call: &RecordCall,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<CallbackView> {
    let r = reach(user)?;
    let note = call
        .note
        .as_deref()
        .map(|n| validate::text("note", n, 500))
        .transpose()?;
    let attempt = match (call.reached, call.verdict) {
        (false, _) => Attempt::NotReached,
        (true, Some(verdict)) => Attempt::Reached {
            verdict,
            pressed: call.pressed,
        },
        (true, None) => {
            return Err(AppError::validation(
                "missing_field",
                "已接通时请填写回访结果 verdict",
            ))
        }
    };
    let row: CallbackRow = callbacks::table
        .find(id)
        .select(CallbackRow::as_select())
        .first(conn)
        .optional()?
        .filter(|c| may_work(&r, c))
        .ok_or(AppError::NotFound)?;
    let recorded = callback::record(
        Pending {
            state: row.state,
            attempts: row.attempts,
            asks_pressed: row.asks_pressed,
        },
        attempt,
    )
    .map_err(|e| match e {
        CallbackRefusal::Finished => {
            AppError::conflict("callback_finished", "该回访已完成，不能再次登记")
        }
        CallbackRefusal::PressedRequired => AppError::validation(
            "missing_field",
            "请询问居民是否被诱导撤单或评价，并填写 pressed",
        ),
    })?;
    let ts = crate::db::round_ts(now);
    diesel::insert_into(callback_attempts::table)
        .values((
            callback_attempts::callback_id.eq(row.id),
            callback_attempts::at.eq(ts),
            callback_attempts::reached.eq(call.reached),
            callback_attempts::by_user.eq(user.id),
        ))
        .execute(conn)?;
    let finished = recorded.state != CallbackState::Pending;
    // Only a closure that still stands can be confirmed or reopened.
    let mut reopened = false;
    if finished {
        let t: TicketRow = tickets::table
            .find(row.ticket_id)
            .select(TicketRow::as_select())
            .first(conn)?;
        if t.closed_at == Some(row.closed_at) {
            let outcome = match (recorded.verdict, recorded.pressed) {
                (_, Some(true)) => "pressed".to_string(),
                (Some(v), _) => v.as_str().to_string(),
                (None, _) => CallbackState::Unreachable.as_str().to_string(),
            };
            let cmd = if recorded.reopen {
                Command::CallbackReopen {
                    outcome,
                    note: note.clone(),
                }
            } else {
                Command::CallbackDone {
                    outcome,
                    note: note.clone(),
                    confirm: recorded.verdict.is_some(),
                }
            };
            let transition = ticket::apply(&t.to_domain(), Actor::Callback, cmd, sla, now)
                .map_err(|r| crate::service::tickets::act::refusal_error(r, now))?;
            commit::commit(conn, &t, &transition, Author::from(user), sla, now)?;
            reopened = recorded.reopen;
        }
        add_to_ledger(
            conn,
            &[NewLedgerEntry {
                street_id: row.street_id,
                community_id: row.community_id,
                unit_id: row.closed_unit_id,
                level: row.closed_level,
                kind: LedgerKind::of_callback(recorded.verdict),
                reason: recorded
                    .pressed
                    .filter(|p| *p)
                    .map(|_| "pressed".to_string()),
                ticket_id: row.ticket_id,
                at: ts,
            }],
        )?;
    }
    // Only if nobody recorded a call on it meanwhile (two callers at once): else nothing of this
    // call is kept (the transaction rolls back) and the caller reloads.
    let updated = diesel::update(
        callbacks::table
            .find(row.id)
            .filter(callbacks::attempts.eq(row.attempts))
            .filter(callbacks::state.eq(CallbackState::Pending)),
    )
    .set((
        callbacks::state.eq(recorded.state),
        callbacks::attempts.eq(recorded.attempts),
        callbacks::verdict.eq(recorded.verdict),
        callbacks::pressed.eq(recorded.pressed),
        callbacks::note.eq(note.as_deref().or(row.note.as_deref())),
        callbacks::reopened.eq(reopened),
        callbacks::completed_by.eq(finished.then_some(user.id)),
        callbacks::completed_at.eq(finished.then_some(ts)),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(AppError::conflict(
            "conflict",
            "该回访刚被他人登记，请刷新后重试",
        ));
    }
    tracing::info!(
        ticket_id = row.ticket_id,
        callback_id = row.id,
        state = recorded.state.as_str(),
        reopened,
        "callback recorded"
    );
    let fresh: CallbackRow = callbacks::table
        .find(row.id)
        .select(CallbackRow::as_select())
        .first(conn)?;
    let mut v = views(conn, vec![fresh], now)?;
    v.pop().ok_or(AppError::NotFound)
}
