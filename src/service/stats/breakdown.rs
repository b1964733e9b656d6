//! `GET /stats/categories`, `GET /stats/sources` and `GET /stats/flows`: the cohort by category
//! and by source, and the calls up and returns between levels in the range.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::scope::{Range, StatsScope};
use super::sql;
use crate::db::schema::categories;
use crate::db::DbConn;
use crate::domain::metrics::Flows;
use crate::domain::ticket::Source;
use crate::error::AppResult;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SourceCount {
    pub source: Source,
    /// Tickets created in the range.
    pub tickets: i64,
    /// Of those, closed now.
    pub closed: i64,
}

/// Every source (zero counts included, in the declared order): how calls came in.
pub fn by_source(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<Vec<SourceCount>> {
    let counts: HashMap<Source, (i64, i64)> = sql::source_groups(conn, scope, range)?
        .into_iter()
        .map(|g| (g.source, (g.tickets, g.closed)))
        .collect();
    Ok(Source::ALL
        .into_iter()
        .map(|source| {
            let (tickets, closed) = counts.get(&source).copied().unwrap_or((0, 0));
            SourceCount {
                source,
                tickets,
                closed,
            }
        })
        .collect())
}

pub fn flows(conn: &mut DbConn, scope: &StatsScope, range: &Range) -> AppResult<Flows> {
    let mut f = Flows::default();
    for g in sql::move_groups(conn, scope, range)? {
        for _ in 0..g.n {
            f.add(g.action, g.level, g.level_after, g.actor_role);
        }
    }
    Ok(f)
}
