//! Statistics benchmark (not a test): fills a fresh database with N tickets of the demo street
//! (the shared fill of `benches/common`: levels, urgency, SLA deadlines and statuses by age over
//! the last 90 days) plus the timeline each row implies (create, calls up, acknowledge, resolve,
//! confirm / auto-close), back-fills the statistics facts as `huying migrate` does after
//! migration 000006 (timed), then times the dashboard queries for the last 30 days straight on a
//! connection (what the handlers run inside `Db::run`; JSON encoding of the small answers is not
//! included). Summary and ranking are also timed the original way (`*_from_history` in
//! `tests/api/stats/reference.rs`: replay every history in Rust) and the answers compared.
//!
//! ```text
//! cargo bench --bench stats_load -- --backend sqlite --tickets 1000000
//! cargo bench --bench stats_load -- --backend postgres   # HUYING_BENCH_POSTGRES_URL
//! ```
//!
//! Results are markdown table rows on stdout; progress goes to stderr. See docs/benchmarks.md.
//!
//! A module of its entry `benches/bin/stats_load.rs` and of `benches/all.rs`, which calls [`run`]
//! for the street's summary and ledger only and takes the [`ResultRow`]s it returns.
// The original computation (every history replayed in Rust), shared with the equivalence test.
#[path = "../tests/api/stats/reference.rs"]
mod reference;

use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use huying::db::models::{NewTicketEvent, TicketRow};
use huying::db::schema::ticket_events;
use huying::db::{dialect, round_ts, write_tx, Db, DbConn};
use huying::domain::role::ActorRole;
use huying::domain::ticket::{ClosedBy, EventKind, Level, Status};
use huying::service::sla::SlaEngine;
use huying::service::stats::{self, RankSort, RankUnit, StatsScope};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::common::*;

pub fn main() -> ExitCode {
    let mut backend = Backend::Sqlite;
    let mut n: usize = 200_000;
    let mut history_runs: usize = 3;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--backend" => {
                backend = if it.next().as_deref() == Some("postgres") {
                    Backend::Postgres
                } else {
                    Backend::Sqlite
                }
            }
            "--tickets" => match it.next().and_then(|v| v.parse().ok()) {
                Some(v) => n = v,
                None => {
                    eprintln!("--tickets needs a number");
                    return ExitCode::from(2);
                }
            },
            // 0 skips the slow original path.
            "--history-runs" => match it.next().and_then(|v| v.parse().ok()) {
                Some(v) => history_runs = v,
                None => {
                    eprintln!("--history-runs needs a number");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!(
                    "usage: stats_load [--backend sqlite|postgres] [--tickets N] [--history-runs R]; got {other}"
                );
                return ExitCode::from(2);
            }
        }
    }
    match run(backend, n, history_runs, Calls::Every) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

type Event = (&'static str, &'static str, &'static str, NaiveDateTime);

/// The timeline the service would have written for a row of the shared fill: (action, level,
/// level after, time).
fn history_of(t: &TicketRow) -> Vec<Event> {
    let mut out: Vec<Event> = vec![("create", "compound", "compound", t.created_at)];
    let entered = t.level_entered_at;
    match t.escalation_count {
        0 => {}
        1 => out.push(("escalate", "compound", "community", entered)),
        _ => {
            let first = t.created_at + (entered - t.created_at) / 2;
            out.push(("escalate", "compound", "community", first));
            out.push(("escalate", "community", "street", entered));
        }
    }
    let level: &'static str = match t.level.as_str() {
        "street" => "street",
        "community" => "community",
        _ => "compound",
    };
    if let Some(a) = t.acknowledged_at {
        out.push(("acknowledge", level, level, a));
    }
    if let Some(r) = t.resolved_at {
        out.push(("resolve", level, level, r));
    }
    if let Some(c) = t.closed_at {
        let action = if t.closed_by == Some(ClosedBy::Resident) {
            "confirm"
        } else {
            "auto_close"
        };
        out.push((action, level, level, c));
    }
    out
}

fn insert(conn: &mut DbConn, rows: &[TicketRow]) -> anyhow::Result<usize> {
    write_tx(conn, |c| -> huying::error::AppResult<usize> {
        let ids = dialect::insert_tickets_returning_ids(c, rows)?;
        let mut events = Vec::new();
        for (t, id) in rows.iter().zip(ids) {
            let mut status = None;
            for (action, level, level_after, at) in history_of(t) {
                let status_after = match action {
                    "create" | "escalate" => "open",
                    "acknowledge" => "acknowledged",
                    "resolve" => "resolved",
                    _ => "closed",
                };
                events.push(NewTicketEvent {
                    ticket_id: id,
                    actor_id: None,
                    actor_role: ActorRole::System,
                    action: EventKind::parse(action).expect("event kind"),
                    level: Level::parse(level).expect("level"),
                    status_before: status.map(|s| Status::parse(s).expect("status")),
                    status_after: Status::parse(status_after).expect("status"),
                    level_after: Level::parse(level_after).expect("level"),
                    reason: None,
                    note: None,
                    internal: false,
                    created_at: at,
                });
                status = Some(status_after);
            }
        }
        dialect::insert_all::<_, NewTicketEvent>(c, ticket_events::table, &events)?;
        Ok(events.len())
    })
    .map_err(Into::into)
}

fn median_ms(mut v: Vec<StdDuration>) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

fn time<T>(runs: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let mut out = None;
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        out = Some(f()?);
        times.push(t0.elapsed());
    }
    let out = out.ok_or_else(|| anyhow::anyhow!("no run"))?;
    Ok((median_ms(times), out))
}

/// The two scopes timed: the demo street, and the community of its first compound.
fn scopes(street: &Street) -> [(&'static str, StatsScope); 2] {
    let street_id = Some(street.street_id);
    [
        (
            "street",
            StatsScope {
                street_id,
                community_id: None,
            },
        ),
        (
            "community",
            StatsScope {
                street_id,
                community_id: street.compounds.first().map(|c| c.1),
            },
        ),
    ]
}

/// The summary's floor: the range's facts rows (the columns the summary reads) fetched once
/// through the same driver with one plain SELECT, median of 5. The summary itself reads them,
/// and the stays, more than once and computes exact medians; the ratio says how far above a
/// single read it is.
fn summary_floor(
    conn: &mut DbConn,
    scope: &StatsScope,
    range: &stats::Range,
) -> anyhow::Result<(f64, usize)> {
    #[derive(diesel::QueryableByName)]
    #[allow(dead_code)] // read, not used: the floor is the fetch
    struct Fact {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        level: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        went_up: bool,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
        rating: Option<i32>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bool>)]
        response: Option<bool>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
        response_due: Option<chrono::NaiveDateTime>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bool>)]
        resolution: Option<bool>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
        resolution_due: Option<chrono::NaiveDateTime>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        first_answer_secs: Option<i64>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        settle_secs: Option<i64>,
    }
    let (column, id) = match (scope.community_id, scope.street_id) {
        (Some(c), _) => ("community_id", c),
        (None, Some(s)) => ("street_id", s),
        (None, None) => anyhow::bail!("a summary floor needs a street or a community"),
    };
    let sql = format!(
        "SELECT status, level, went_up, rating, response, response_due, resolution, \
         resolution_due, first_answer_secs, settle_secs FROM ticket_stats \
         WHERE {column} = {id} AND created_at >= '{}' AND created_at < '{}'",
        range.from.naive_utc(),
        range.to.naive_utc()
    );
    time(5, || {
        use diesel::RunQueryDsl;
        let facts: Vec<Fact> = diesel::sql_query(&sql).load(conn)?;
        Ok(facts.len())
    })
}

/// Which dashboard calls are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    /// Every call for the street and a community, the ledger per compound and per community.
    Every,
    /// The street's summary and its ledger per compound: the figures `benches/all.rs` shows.
    // Only `benches/all.rs` asks for these; the standalone program times every call.
    #[allow(dead_code)]
    StreetSummaryAndLedger,
}

pub fn run(
    backend: Backend,
    n: usize,
    history_runs: usize,
    calls: Calls,
) -> anyhow::Result<Vec<ResultRow>> {
    let bench_db = BenchDb::create(backend)?;
    let settings = bench_settings(&bench_db)?;
    let db = Db::connect(&settings)?;
    huying::startup::migrate(&db)?;
    // The dashboard's kind of connection (on SQLite it plans with the values, see `Db::run_ranged`).
    let mut conn = db.get_ranged().map_err(|e| anyhow::anyhow!("{e}"))?;
    let now: DateTime<Utc> = round_ts(Utc::now()).and_utc();
    let street = seed(&mut conn, now.naive_utc(), 0)?;
    let sla = SlaEngine::with_defaults()?;
    let mut rng = StdRng::seed_from_u64(0x48_75_79_69_6e_67);
    let t0 = Instant::now();
    let mut done = 0;
    let mut events = 0;
    while done < n {
        let end = (done + BATCH).min(n);
        let rows: Vec<TicketRow> = (done..end)
            .map(|i| make_ticket(i, &mut rng, &street, &sla, now.naive_utc()))
            .collect();
        events += insert(&mut conn, &rows)?;
        done = end;
        if done % 100_000 == 0 {
            eprintln!("  … {done} tickets");
        }
    }
    let name = backend.name();
    report!(
        "Fill ({name}): {n} tickets + {events} events in {:.1} s.",
        t0.elapsed().as_secs_f64()
    );
    let t0 = Instant::now();
    let filled = stats::facts::backfill(&mut conn).map_err(|e| anyhow::anyhow!("{e}"))?;
    report!(
        "Back-fill of the statistics facts (what `huying migrate` does once after migration \
         000006): {filled} tickets in {:.1} s.",
        t0.elapsed().as_secs_f64()
    );
    if backend == Backend::Postgres {
        conn.batch_execute("VACUUM ANALYZE")?;
    } else {
        conn.batch_execute("ANALYZE")?;
    }
    let range = stats::parse_range(None, None, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    report!();
    report!("| backend | call (last 30 days) | scope | tickets in range | median ms (runs) |");
    report!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (label, scope) in scopes(&street) {
        if calls == Calls::StreetSummaryAndLedger && label != "street" {
            continue;
        }
        let err = |e: huying::error::AppError| anyhow::anyhow!("{e}");
        let (ms, s) = time(5, || {
            stats::summary(&mut conn, &scope, &range, now).map_err(err)
        })?;
        let k = s.tickets;
        let (floor, read) = summary_floor(&mut conn, &scope, &range)?;
        report!(
            "| {name} | summary | {label} | {k} | **{ms:.1}** (5); floor {floor:.1} ms ({read} facts rows read once), {:.1}× |",
            ms / floor.max(0.001)
        );
        rows.push(
            ResultRow::new(
                backend,
                format!("stats summary, {label}, last 30 days ({k} tickets), median of 5"),
                Measure::Millis(ms),
            )
            .floor(Some(floor)),
        );
        if history_runs > 0 {
            let (ms, old) = time(history_runs, || {
                reference::summary_from_history(&mut conn, &scope, &range, now).map_err(err)
            })?;
            let same = serde_json::to_value(&old)? == serde_json::to_value(&s)?;
            report!(
                "| {name} | summary, replaying histories (before) | {label} | {k} | {ms:.0} ({history_runs}); same answer: {} |",
                if same { "yes" } else { "**NO**" }
            );
            if !same {
                eprintln!("facts:   {}", serde_json::to_string(&s)?);
                eprintln!("history: {}", serde_json::to_string(&old)?);
            }
        }
        if calls == Calls::StreetSummaryAndLedger {
            continue;
        }
        let rank = |conn: &mut DbConn| {
            stats::ranking(
                conn,
                &scope,
                &range,
                RankUnit::Compound,
                RankSort::ResolutionRate,
                now,
            )
            .map_err(err)
        };
        let (ms, r) = time(5, || rank(&mut conn))?;
        report!("| {name} | ranking (compounds) | {label} | {k} | **{ms:.1}** (5) |");
        if history_runs > 0 {
            let (ms, old) = time(history_runs, || {
                reference::ranking_from_history(
                    &mut conn,
                    &scope,
                    &range,
                    RankUnit::Compound,
                    RankSort::ResolutionRate,
                    now,
                )
                .map_err(err)
            })?;
            let same = serde_json::to_value(&old)? == serde_json::to_value(&r)?;
            report!(
                "| {name} | ranking, replaying histories (before) | {label} | {k} | {ms:.0} ({history_runs}); same answer: {} |",
                if same { "yes" } else { "**NO**" }
            );
        }
        let (ms, _) = time(5, || stats::trend(&mut conn, &scope, &range).map_err(err))?;
        report!("| {name} | trend | {label} | {k} | **{ms:.1}** (5) |");
        let (ms, _) = time(5, || {
            stats::by_category(&mut conn, &scope, &range).map_err(err)
        })?;
        report!("| {name} | categories | {label} | {k} | **{ms:.1}** (5) |");
        let (ms, _) = time(5, || stats::flows(&mut conn, &scope, &range).map_err(err))?;
        report!("| {name} | flows | {label} | {k} | {ms:.1} (5) |");
        let (ms, o) = time(5, || {
            stats::overdue_list(&mut conn, &scope, now).map_err(err)
        })?;
        report!(
            "| {name} | overdue list ({} overdue) | {label} | {k} | {ms:.1} (5) |",
            o.total
        );
    }
    rows.extend(ledger(&mut conn, backend, &street, now, calls)?);
    drop(conn);
    drop(db);
    drop(bench_db);
    Ok(rows)
}

/// The accountability ledger (issue #12): its entries derived from the filled timelines with
/// one `INSERT … SELECT` per column (what the commit path writes as tickets change: the call
/// and every call-up received, answers, resolutions, calls up, ratings), then `stats::ledger`
/// for the last 30 days per compound and per community, beside the engine's floor for the same
/// rows (a bare `COUNT(*)` of the range through the same index).
fn ledger(
    conn: &mut DbConn,
    backend: Backend,
    street: &Street,
    now: DateTime<Utc>,
    calls: Calls,
) -> anyhow::Result<Vec<ResultRow>> {
    let unit = "CASE e.{l} WHEN 'compound' THEN t.compound_id WHEN 'community' THEN t.community_id ELSE t.street_id END";
    let t0 = Instant::now();
    for (kind, level, actions, reason) in [
        ("received", "level_after", "'create', 'escalate'", "NULL"),
        ("acknowledged_on_time", "level", "'acknowledge'", "NULL"),
        ("resolved_on_time", "level", "'resolve'", "NULL"),
        (
            "called_up",
            "level",
            "'escalate'",
            "'sla_breach_acknowledge'",
        ),
        ("rated", "level", "'confirm'", "NULL"),
    ] {
        conn.batch_execute(&format!(
            "INSERT INTO ledger_entries (street_id, community_id, unit_id, level, kind, reason, \
             ticket_id, at) SELECT t.street_id, t.community_id, {}, e.{level}, '{kind}', {reason}, \
             e.ticket_id, e.created_at FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id \
             WHERE e.action IN ({actions})",
            unit.replace("{l}", level)
        ))?;
    }
    let t1 = Instant::now();
    let days = huying::service::callbacks::rebuild_ledger_daily(conn)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    report!(
        "Ledger daily roll-up rebuilt from the entries: {days} rows in {:.1} s.",
        t1.elapsed().as_secs_f64()
    );
    if backend == Backend::Postgres {
        // One statement at a time: VACUUM cannot run in the implicit transaction of a batch.
        conn.batch_execute("VACUUM ANALYZE ledger_entries")?;
        conn.batch_execute("VACUUM ANALYZE ledger_daily")?;
    } else {
        conn.batch_execute("ANALYZE")?;
    }
    let entries: i64 = {
        use diesel::prelude::*;
        huying::db::schema::ledger_entries::table
            .count()
            .get_result(conn)?
    };
    report!();
    report!(
        "Ledger entries ({}): {entries} derived from the timelines in {:.1} s.",
        backend.name(),
        t0.elapsed().as_secs_f64()
    );
    let range = stats::parse_range(None, None, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = backend.name();
    report!();
    report!("| backend | ledger (last 30 days) | scope | entries in range | floor: COUNT(*) ms | ledger median ms (5) | ratio |");
    report!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (label, scope) in scopes(street) {
        if calls == Calls::StreetSummaryAndLedger && label != "street" {
            continue;
        }
        let (column, id) = match scope.community_id {
            Some(c) => ("community_id", c),
            None => ("street_id", street.street_id),
        };
        let count_sql = format!(
            "SELECT COUNT(*) AS n FROM ledger_entries WHERE {column} = {id} AND at >= '{}' AND at < '{}'",
            range.from.naive_utc(),
            range.to.naive_utc()
        );
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let (floor, n) = time(5, || {
            use diesel::RunQueryDsl;
            let r: Vec<N> = diesel::sql_query(&count_sql).load(conn)?;
            Ok(r.first().map_or(0, |r| r.n))
        })?;
        for unit in [RankUnit::Compound, RankUnit::Community] {
            if calls == Calls::StreetSummaryAndLedger && unit != RankUnit::Compound {
                continue;
            }
            use stats::ledger::{ledger_from, LedgerSource};
            let (raw, l0) = time(5, || {
                ledger_from(conn, &scope, &range, unit, LedgerSource::Entries)
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            let (ms, l) = time(5, || {
                stats::ledger(conn, &scope, &range, unit).map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            let same = serde_json::to_value(&l0)? == serde_json::to_value(&l)?;
            report!(
                "| {name} | per {}, every entry counted (no roll-up) | {label} | {n} | {floor:.1} | {raw:.1} | {:.1}×; same answer: {} |",
                match unit {
                    RankUnit::Compound => "compound",
                    RankUnit::Community => "community",
                },
                raw / floor.max(0.001),
                if same { "yes" } else { "**NO**" }
            );
            let per = match unit {
                RankUnit::Compound => "compound",
                RankUnit::Community => "community",
            };
            report!(
                "| {name} | per {per} ({} rows) | {label} | {n} | {floor:.1} | **{ms:.1}** | {:.1}× |",
                l.rows.len(),
                ms / floor.max(0.001)
            );
            rows.push(
                ResultRow::new(
                    backend,
                    format!("ledger per {per}, {label}, last 30 days ({n} entries), median of 5"),
                    Measure::Millis(ms),
                )
                .floor(Some(floor)),
            );
        }
    }
    Ok(rows)
}
