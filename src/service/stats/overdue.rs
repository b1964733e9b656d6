//! `GET /stats/overdue`: the active tickets in scope past their running deadline now.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use serde::Serialize;
use utoipa::ToSchema;

use super::scope::{unit_names, StatsScope};
use crate::db::schema::tickets;
use crate::db::{DbConn, MultiBackend};
use crate::domain::ticket::{Level, Status};
use crate::error::AppResult;
use crate::service::tickets::no_deadline;

/// Most tickets the overdue list returns (`total` still counts all).
pub const OVERDUE_LIST_LIMIT: i64 = 500;

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

pub fn overdue_list(
    conn: &mut DbConn,
    scope: &StatsScope,
    now: DateTime<Utc>,
) -> AppResult<OverdueList> {
    let now_ts = now.naive_utc();
    let q = || {
        scope
            .filter()
            .apply(
                tickets::table.into_boxed::<MultiBackend>(),
                tickets::street_id,
                tickets::community_id,
            )
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
        Status,
        Level,
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
                    status,
                    level,
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
