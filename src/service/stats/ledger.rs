//! `GET /stats/ledger`: the accountability ledger (责任账本) per compound or community — what
//! reached each unit while it was accountable and how it answered (docs/metrics.md). The
//! entries are written by the commit path (`domain::ledger`); here they are counted per unit
//! for a range, and the tickets behind one count are listed.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::ranking::{units_in_scope, RankUnit};
use super::scope::{Range, StatsScope};
use super::sql;
use crate::db::schema::{callbacks, ledger_entries, org_units, tickets};
use crate::db::{DbConn, MultiBackend};
use crate::domain::calendar::{end_of_local_day, local_day_of};
use crate::domain::callback::{CallbackState, CallbackVerdict};
use crate::domain::ledger::LedgerKind;
use crate::domain::metrics::rate;
use crate::domain::text_enum::TextEnum;
use crate::domain::ticket::{Level, Status};
use crate::error::AppResult;

/// One unit's ledger.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerRow {
    pub unit_id: i64,
    pub unit_name: String,
    /// The community a compound belongs to (empty for communities).
    pub parent_name: String,
    /// One count per ledger column (`columns` of the answer), zeros included.
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, i64>)]
    pub counts: BTreeMap<&'static str, i64>,
    /// `called_up` by reason: the escalation reasons, and the sweeper's `sla_breach_*`.
    pub called_up_reasons: BTreeMap<String, i64>,
    /// Residents' own ratings of what the unit resolved: share rated 4–5.
    pub self_rated_satisfaction_rate: Option<f64>,
    /// Callback verdicts on the unit's closures: share satisfied or basically satisfied among
    /// the residents reached.
    pub callback_satisfaction_rate: Option<f64>,
    /// Share of its first answers given on time (`acknowledged_on_time` / both answer columns):
    /// how the monthly report ranks units by what reached them.
    pub on_time_answer_rate: Option<f64>,
}

impl LedgerRow {
    pub fn count(&self, k: LedgerKind) -> i64 {
        self.counts.get(k.as_str()).copied().unwrap_or(0)
    }

    /// The ledger's measure of how well a unit answered: the share of what it received that it
    /// acknowledged on time (`None` when it received nothing).
    pub fn on_time_rate(&self) -> Option<f64> {
        rate(
            self.count(LedgerKind::AcknowledgedOnTime),
            self.count(LedgerKind::AcknowledgedOnTime) + self.count(LedgerKind::AcknowledgedLate),
        )
    }
}

/// `GET /stats/ledger`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ledger {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub scope: StatsScope,
    pub unit: RankUnit,
    /// The count columns in display order.
    pub columns: Vec<&'static str>,
    pub rows: Vec<LedgerRow>,
}

fn level_of(unit: RankUnit) -> Level {
    match unit {
        RankUnit::Community => Level::Community,
        RankUnit::Compound => Level::Compound,
    }
}

/// Where the counts are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerSource {
    /// The daily roll-up for the whole local days of the range, the entries for the partial
    /// days at its ends (what the API does).
    DaysAndEntries,
    /// Only the entries (the reference the roll-up is checked against).
    Entries,
}

/// The groups of the range: whole local days from `ledger_daily`, the rest from the entries.
fn groups(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    level: Level,
    source: LedgerSource,
) -> AppResult<Vec<sql::LedgerGroup>> {
    let first_day = {
        let start = local_day_of(range.from);
        if start == range.from {
            start
        } else {
            end_of_local_day(range.from)
        }
    };
    let last_day = local_day_of(range.to);
    if source == LedgerSource::Entries || first_day >= last_day {
        return sql::ledger_groups(conn, scope, range, level);
    }
    let mut out = sql::ledger_daily_groups(
        conn,
        scope,
        first_day.naive_utc(),
        last_day.naive_utc(),
        level,
    )?;
    for part in [
        Range {
            from: range.from,
            to: first_day,
        },
        Range {
            from: last_day,
            to: range.to,
        },
    ] {
        if part.from < part.to {
            out.extend(sql::ledger_groups(conn, scope, &part, level)?);
        }
    }
    Ok(out)
}

/// The ledger of every unit of `unit` kind in scope for entries in `range`.
pub fn ledger(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    unit: RankUnit,
) -> AppResult<Ledger> {
    ledger_from(conn, scope, range, unit, LedgerSource::DaysAndEntries)
}

pub fn ledger_from(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    unit: RankUnit,
    source: LedgerSource,
) -> AppResult<Ledger> {
    let units = units_in_scope(conn, scope, unit)?;
    let parents: HashMap<i64, String> = if unit == RankUnit::Compound {
        let ids: Vec<i64> = units.iter().map(|u| u.0).collect();
        let links: Vec<(i64, Option<i64>)> = org_units::table
            .filter(org_units::id.eq_any(&ids))
            .select((org_units::id, org_units::parent_id))
            .load(conn)?;
        let parent_ids: Vec<i64> = links.iter().filter_map(|l| l.1).collect();
        let names: HashMap<i64, String> = org_units::table
            .filter(org_units::id.eq_any(parent_ids))
            .select((org_units::id, org_units::name))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect();
        links
            .into_iter()
            .filter_map(|(id, p)| Some((id, names.get(&p?)?.clone())))
            .collect()
    } else {
        HashMap::new()
    };
    let mut rows: Vec<LedgerRow> = units
        .into_iter()
        .map(|(id, name)| LedgerRow {
            unit_id: id,
            parent_name: parents.get(&id).cloned().unwrap_or_default(),
            unit_name: name,
            counts: LedgerKind::all().iter().map(|k| (k.as_str(), 0)).collect(),
            called_up_reasons: BTreeMap::new(),
            self_rated_satisfaction_rate: None,
            callback_satisfaction_rate: None,
            on_time_answer_rate: None,
        })
        .collect();
    let index: HashMap<i64, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.unit_id, i))
        .collect();
    for g in groups(conn, scope, range, level_of(unit), source)? {
        // Units archived since, or outside the listed ones: left out like the ranking does.
        let Some(&i) = index.get(&g.unit) else {
            continue;
        };
        let row = &mut rows[i];
        *row.counts.entry(g.kind.as_str()).or_insert(0) += g.n;
        if g.kind == LedgerKind::CalledUp {
            if let Some(r) = g.reason {
                *row.called_up_reasons.entry(r).or_insert(0) += g.n;
            }
        }
    }
    for r in &mut rows {
        r.self_rated_satisfaction_rate = rate(
            r.count(LedgerKind::RatedSatisfied),
            r.count(LedgerKind::Rated),
        );
        let good = r.count(LedgerKind::CallbacksSatisfied)
            + r.count(LedgerKind::CallbacksBasicallySatisfied);
        r.callback_satisfaction_rate = rate(good, good + r.count(LedgerKind::CallbacksUnsatisfied));
        r.on_time_answer_rate = r.on_time_rate();
    }
    Ok(Ledger {
        from: range.from,
        to: range.to,
        scope: *scope,
        unit,
        columns: LedgerKind::all().iter().map(|k| k.as_str()).collect(),
        rows,
    })
}

/// A ticket behind a ledger count.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerTicket {
    pub id: i64,
    pub reference: String,
    pub title: String,
    pub status: Status,
    pub level: Level,
    /// How many entries of the column this ticket has in the range (e.g. urged twice).
    pub entries: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerTickets {
    pub items: Vec<LedgerTicket>,
    /// Distinct tickets behind the count (items stop at 500).
    pub total: i64,
}

/// The tickets behind one count of the ledger: unit `unit_id`'s entries of `column` in range.
pub fn ledger_tickets(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    unit_id: i64,
    column: LedgerKind,
) -> AppResult<LedgerTickets> {
    let per = entries_per_ticket(conn, scope, range, Some(unit_id), column)?;
    let total = per.len() as i64;
    let wanted: Vec<i64> = per.keys().rev().take(500).copied().collect();
    let found: Vec<(i64, String, String, Status, Level)> = tickets::table
        .filter(tickets::id.eq_any(&wanted))
        .order(tickets::id.desc())
        .select((
            tickets::id,
            tickets::reference,
            tickets::title,
            tickets::status,
            tickets::level,
        ))
        .load(conn)?;
    Ok(LedgerTickets {
        items: found
            .into_iter()
            .map(|(id, reference, title, status, level)| LedgerTicket {
                entries: per.get(&id).copied().unwrap_or(0),
                id,
                reference,
                title,
                status,
                level,
            })
            .collect(),
        total,
    })
}

/// How many entries of `column` each ticket has in the range and scope (of one unit, or any).
pub fn entries_per_ticket(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    unit_id: Option<i64>,
    column: LedgerKind,
) -> AppResult<BTreeMap<i64, i64>> {
    let mut q = scope
        .filter()
        .apply(
            ledger_entries::table.into_boxed::<MultiBackend>(),
            ledger_entries::street_id,
            ledger_entries::community_id,
        )
        .filter(ledger_entries::kind.eq(column))
        .filter(ledger_entries::at.ge(range.from.naive_utc()))
        .filter(ledger_entries::at.lt(range.to.naive_utc()));
    if let Some(u) = unit_id {
        q = q.filter(ledger_entries::unit_id.eq(u));
    }
    let ids: Vec<i64> = q.select(ledger_entries::ticket_id).load(conn)?;
    let mut per: BTreeMap<i64, i64> = BTreeMap::new();
    for id in ids {
        *per.entry(id).or_insert(0) += 1;
    }
    Ok(per)
}

/// Callback results for closures in the range (`callbacks.closed_at`) and scope.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct CallbackSummary {
    /// Closures chosen for a callback.
    pub total: i64,
    pub pending: i64,
    /// Residents reached (a verdict recorded).
    pub reached: i64,
    pub satisfied: i64,
    pub basically_satisfied: i64,
    pub unsatisfied: i64,
    /// Not reached in three calls.
    pub unreachable: i64,
    /// Residents who said they were pressed to withdraw or to rate.
    pub pressed: i64,
    /// Verdicts that reopened the ticket.
    pub reopened: i64,
}

impl CallbackSummary {
    /// Satisfied or basically satisfied among the residents reached.
    pub fn satisfaction_rate(&self) -> Option<f64> {
        rate(self.satisfied + self.basically_satisfied, self.reached)
    }
}

pub fn callback_summary(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<CallbackSummary> {
    let rows: Vec<(CallbackState, Option<CallbackVerdict>, Option<bool>, bool)> = scope
        .filter()
        .apply(
            callbacks::table.into_boxed::<MultiBackend>(),
            callbacks::street_id,
            callbacks::community_id,
        )
        .filter(callbacks::closed_at.ge(range.from.naive_utc()))
        .filter(callbacks::closed_at.lt(range.to.naive_utc()))
        .select((
            callbacks::state,
            callbacks::verdict,
            callbacks::pressed,
            callbacks::reopened,
        ))
        .load(conn)?;
    let mut s = CallbackSummary::default();
    for (state, verdict, pressed, reopened) in rows {
        s.total += 1;
        match state {
            CallbackState::Pending => s.pending += 1,
            CallbackState::Unreachable => s.unreachable += 1,
            CallbackState::Done => s.reached += 1,
        }
        match verdict {
            Some(CallbackVerdict::Satisfied) => s.satisfied += 1,
            Some(CallbackVerdict::BasicallySatisfied) => s.basically_satisfied += 1,
            Some(CallbackVerdict::Unsatisfied) => s.unsatisfied += 1,
            None => {}
        }
        s.pressed += i64::from(pressed == Some(true));
        s.reopened += i64::from(reopened);
    }
    Ok(s)
}
