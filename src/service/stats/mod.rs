//! Statistics for the street committee's dashboard: the four rates, counts, medians, the daily
//! trend, categories, rankings of communities and compounds, flows between levels, the overdue
//! list and the exports. Definitions are in `docs/metrics.md`; the rules that decide them are
//! pure (`domain::metrics`). Each ticket's verdicts are stored whenever it changes ([`facts`]),
//! and the requests aggregate those facts in SQL ([`sql`]), so both backends give the same
//! numbers.
//!
//! - [`scope`]: the range and the scope a request covers, and who may ask.
//! - [`summary`], [`ranking`], [`trend`], [`breakdown`] (categories, flows), [`overdue`]: one
//!   request each.
//! - [`export`]: CSV and the rows and titles of the exports; [`xlsx`]: the same as workbooks.

pub mod breakdown;
pub mod export;
pub mod facts;
pub mod ledger;
pub mod overdue;
pub mod ranking;
pub mod report;
mod rows;
pub mod scope;
mod sql;
pub mod summary;
pub mod trend;
pub mod xlsx;

pub use breakdown::{by_category, by_source, flows, CategoryCount, SourceCount};
pub use export::{export_tickets, ranking_csv, tickets_csv, ExportRow, MAX_EXPORT_ROWS};
pub use ledger::{
    callback_summary, ledger, ledger_tickets, CallbackSummary, Ledger, LedgerTickets,
};
pub use overdue::{overdue_list, OverdueList};
pub use ranking::{ranking, RankRow, RankSort, RankUnit};
pub use scope::{parse_range, require_stats_role, resolve_scope, Range, StatsScope};
pub use summary::{summary, Summary};
pub use trend::{trend, TrendDay};
