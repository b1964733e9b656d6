//! `GET /reports/monthly`: what a street office hands its committee meeting — the month's rates
//! with the month before beside them, the ledger's best and worst compounds, the top categories
//! and compounds, overdue and reopened tickets, callback results and how tickets were closed.
//! Every figure is one the statistics API gives for the same range (docs/metrics.md).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::ledger::{entries_per_ticket, ledger, CallbackSummary, LedgerRow};
use super::ranking::{ranking, RankSort, RankUnit};
use super::scope::{Range, StatsScope};
use super::{by_category, overdue_list, sql, summary, trend, CategoryCount, TrendDay};
use crate::db::schema::{org_units, tickets};
use crate::db::DbConn;
use crate::domain::calendar::local_day_start;
use crate::domain::ledger::LedgerKind;
use crate::domain::ticket::ClosedBy;
use crate::error::{AppError, AppResult};

/// How many units, categories and tickets each list of the report shows.
const TOP: usize = 5;
const LEDGER_ENDS: usize = 3;
const LISTED_TICKETS: usize = 20;

/// A month of the calendar in Beijing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// `YYYY-MM`; `None` = the month before `now`'s (the report a meeting usually wants).
    pub fn parse(raw: Option<&str>, now: DateTime<Utc>) -> AppResult<Month> {
        let bad = || {
            AppError::validation(
                "invalid_month",
                "month 须为 YYYY-MM 格式的月份，例如 2026-11",
            )
        };
        match raw.map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                let today = now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
                Ok(Month {
                    year: today.year(),
                    month: today.month(),
                }
                .previous())
            }
            Some(s) => {
                let (y, m) = s.split_once('-').ok_or_else(bad)?;
                let year: i32 = y.parse().map_err(|_| bad())?;
                let month: u32 = m.parse().map_err(|_| bad())?;
                if y.len() != 4 || m.len() != 2 || !(2000..=2100).contains(&year) {
                    return Err(bad());
                }
                NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?;
                Ok(Month { year, month })
            }
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// From the first local midnight of the month to the first of the next.
    pub fn range(self) -> Range {
        Range {
            from: local_day_start(self.first_day()),
            to: local_day_start(self.next().first_day()),
        }
    }

    pub fn label(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

/// The rates of one month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonthRates {
    /// Tickets created in the month.
    pub tickets: i64,
    pub response_rate: Option<f64>,
    pub resolution_rate: Option<f64>,
    pub satisfaction_rate: Option<f64>,
    pub settled_in_compound_rate: Option<f64>,
    pub confirmed_rate: Option<f64>,
    pub callback_satisfaction_rate: Option<f64>,
    /// Closed automatically: resolved, unconfirmed.
    pub resolved_unconfirmed: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportRates {
    pub this: MonthRates,
    pub previous: MonthRates,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CompoundCount {
    pub unit_id: i64,
    pub name: String,
    pub tickets: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportTicket {
    pub id: i64,
    pub reference: String,
    pub title: String,
    /// Overdue: the level accountable now; reopened: how many reopenings in the month.
    pub detail: String,
}

/// `GET /reports/monthly`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonthlyReport {
    pub month: String,
    pub previous_month: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub scope: StatsScope,
    /// The street (or community) the report covers.
    pub unit_name: String,
    pub rates: ReportRates,
    /// The compounds that acknowledged the most of what reached them on time.
    pub ledger_top: Vec<LedgerRow>,
    /// The compounds that did worst, worst first.
    pub ledger_bottom: Vec<LedgerRow>,
    pub top_categories: Vec<CategoryCount>,
    pub top_compounds: Vec<CompoundCount>,
    /// Tickets overdue now (most overdue first, at most 20) and how many in all.
    pub overdue: Vec<ReportTicket>,
    pub overdue_total: i64,
    /// Tickets reopened in the month (a disputed resolution or a callback), at most 20.
    pub reopened: Vec<ReportTicket>,
    pub reopened_total: i64,
    pub callbacks: CallbackSummary,
    /// Tickets closed in the month, by how (`closed_by`).
    pub closed_by: BTreeMap<String, i64>,
    pub trend: Vec<TrendDay>,
}

/// The month's rates, and its callback figures (the summary has them already).
fn rates(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
    now: DateTime<Utc>,
) -> AppResult<(MonthRates, CallbackSummary)> {
    let s = summary(conn, scope, range, now)?;
    let rates = MonthRates {
        tickets: s.tickets,
        response_rate: s.response_rate,
        resolution_rate: s.resolution_rate,
        satisfaction_rate: s.satisfaction_rate,
        settled_in_compound_rate: s.settled_in_compound_rate,
        confirmed_rate: s.confirmed_rate,
        callback_satisfaction_rate: s.callback_satisfaction_rate,
        resolved_unconfirmed: s.resolved_unconfirmed,
    };
    Ok((rates, s.callbacks))
}

/// The best and worst compounds of the ledger by the share acknowledged on time (units that
/// received nothing are left out); ties: fewer sweeper call-ups, then fewer reopenings.
pub fn ledger_ends(rows: Vec<LedgerRow>) -> (Vec<LedgerRow>, Vec<LedgerRow>) {
    let mut ranked: Vec<LedgerRow> = rows
        .into_iter()
        .filter(|r| r.on_time_rate().is_some())
        .collect();
    ranked.sort_by(|a, b| {
        let key = |r: &LedgerRow| {
            (
                -(r.on_time_rate().unwrap_or(0.0) * 10_000.0).round() as i64,
                r.count(LedgerKind::CalledUpBySweeper),
                r.count(LedgerKind::Reopenings),
                r.unit_id,
            )
        };
        key(a).cmp(&key(b))
    });
    let top: Vec<LedgerRow> = ranked.iter().take(LEDGER_ENDS).cloned().collect();
    let rest = ranked.len().saturating_sub(top.len()).min(LEDGER_ENDS);
    let bottom: Vec<LedgerRow> = ranked.iter().rev().take(rest).cloned().collect();
    (top, bottom)
}

pub fn monthly(
    conn: &mut DbConn,
    scope: &StatsScope,
    month: Month,
    now: DateTime<Utc>,
) -> AppResult<MonthlyReport> {
    let range = month.range();
    let prev = month.previous();
    let (this, callbacks) = rates(conn, scope, &range, now)?;
    let (previous, _) = rates(conn, scope, &prev.range(), now)?;
    let l = ledger(conn, scope, &range, RankUnit::Compound)?;
    let (ledger_top, ledger_bottom) = ledger_ends(l.rows);
    let mut top_categories = by_category(conn, scope, &range)?;
    top_categories.truncate(TOP);
    let top_compounds = ranking(
        conn,
        scope,
        &range,
        RankUnit::Compound,
        RankSort::Tickets,
        now,
    )?
    .into_iter()
    .filter(|r| r.tickets > 0)
    .take(TOP)
    .map(|r| CompoundCount {
        unit_id: r.unit_id,
        name: r.name,
        tickets: r.tickets,
    })
    .collect();
    let o = overdue_list(conn, scope, now)?;
    let overdue = o
        .items
        .into_iter()
        .take(LISTED_TICKETS)
        .map(|i| ReportTicket {
            id: i.id,
            reference: i.reference,
            title: i.title,
            detail: i.level.label_zh().to_string(),
        })
        .collect();
    let (reopened, reopened_total) = reopened(conn, scope, &range)?;
    let mut closed_by: BTreeMap<String, i64> = ClosedBy::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), 0))
        .collect();
    for g in sql::closed_by_groups(conn, scope, &range)? {
        closed_by.insert(g.closed_by.as_str().to_string(), g.n);
    }
    let unit_id = scope.community_id.or(scope.street_id);
    let unit_name = match unit_id {
        Some(id) => org_units::table
            .find(id)
            .select(org_units::name)
            .first::<String>(conn)
            .optional()?
            .unwrap_or_default(),
        None => "全部街道".to_string(),
    };
    Ok(MonthlyReport {
        month: month.label(),
        previous_month: prev.label(),
        from: range.from,
        to: range.to,
        scope: *scope,
        unit_name,
        rates: ReportRates { this, previous },
        ledger_top,
        ledger_bottom,
        top_categories,
        top_compounds,
        overdue,
        overdue_total: o.total,
        reopened,
        reopened_total,
        callbacks,
        closed_by,
        trend: trend(conn, scope, &range)?,
    })
}

/// Tickets with a reopening in the range, most reopened first.
fn reopened(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &Range,
) -> AppResult<(Vec<ReportTicket>, i64)> {
    let per = entries_per_ticket(conn, scope, range, None, LedgerKind::Reopenings)?;
    let total = per.len() as i64;
    let mut order: Vec<(i64, i64)> = per.into_iter().collect();
    order.sort_by_key(|(id, n)| (-n, -id));
    order.truncate(LISTED_TICKETS);
    let wanted: Vec<i64> = order.iter().map(|o| o.0).collect();
    let found: Vec<(i64, String, String)> = tickets::table
        .filter(tickets::id.eq_any(&wanted))
        .select((tickets::id, tickets::reference, tickets::title))
        .load(conn)?;
    let items = order
        .iter()
        .filter_map(|(id, n)| {
            let t = found.iter().find(|t| t.0 == *id)?;
            Some(ReportTicket {
                id: *id,
                reference: t.1.clone(),
                title: t.2.clone(),
                detail: format!("重新办理 {n} 次"),
            })
        })
        .collect();
    Ok((items, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn months_parse_and_default_to_the_one_before() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 17, 0, 0).unwrap();
        // 01:00 on 1 December in Beijing: the month before is November.
        assert_eq!(
            Month::parse(None, now).unwrap(),
            Month {
                year: 2026,
                month: 11
            }
        );
        let jan = Month::parse(Some("2026-01"), now).unwrap();
        assert_eq!(jan.previous().label(), "2025-12");
        let r = jan.range();
        assert_eq!(
            r.from,
            Utc.with_ymd_and_hms(2025, 12, 31, 16, 0, 0).unwrap()
        );
        assert_eq!(r.to, Utc.with_ymd_and_hms(2026, 1, 31, 16, 0, 0).unwrap());
        for bad in ["2026-13", "2026-1", "26-01", "2026/01", "x", "2026-00"] {
            assert!(Month::parse(Some(bad), now).is_err(), "{bad}");
        }
    }
}
