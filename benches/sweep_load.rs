//! SLA sweeper benchmark (not a test): for each size, fills a fresh database with N tickets,
//! makes `--due-percent` of them due (an answer clock that ran out a minute ago) and the rest due
//! in 30 days, then times one sweep (which calls every due ticket up a level) and one sweep with
//! nothing due. The second must not grow with N: the sweeper reads only `next_check_at <= now`
//! through its partial index.
//!
//! ```text
//! cargo bench --bench sweep_load -- --backend sqlite --sizes 10000,100000,1000000
//! cargo bench --bench sweep_load -- --backend postgres   # HUYING_BENCH_POSTGRES_URL
//! ```
//!
//! A module of its entry `benches/bin/sweep_load.rs` and of `benches/all.rs`, which calls [`run`]
//! and takes the [`ResultRow`]s it returns.

use std::process::ExitCode;
use std::time::Instant;

use chrono::{Duration, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use huying::db::schema::tickets;
use huying::db::{round_ts, Db, DbConn};
use huying::service::sla::SlaEngine;
use huying::service::sweeper::{sweep, SweepReport};

use crate::common::*;

struct Args {
    backend: Backend,
    sizes: Vec<usize>,
    due_percent: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        backend: Backend::Sqlite,
        sizes: vec![10_000, 100_000, 1_000_000],
        due_percent: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--backend" => args.backend = backend_arg(it.next())?,
            "--sizes" => args.sizes = numbers("--sizes", it.next())?,
            "--due-percent" => {
                args.due_percent = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|p| (1..=100).contains(p))
                    .ok_or("--due-percent 1–100")?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if args.sizes.iter().any(|&n| n == 0 || n > 5_000_000) {
        return Err("sizes must be 1–5000000".into());
    }
    Ok(args)
}

pub fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    report!(
        "| backend | open tickets | due | sweep (due) ms | called up | sweep (nothing due) ms | floor ms (ratio) |"
    );
    report!("|---|---|---|---|---|---|---|");
    for &n in &args.sizes {
        if let Err(e) = run(args.backend, n, args.due_percent) {
            eprintln!("benchmark failed at {n}: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// One size: fill, make `due_percent` due, sweep; the rows are the due sweep and the idle one.
pub fn run(backend: Backend, n: usize, due_percent: usize) -> anyhow::Result<Vec<ResultRow>> {
    let bench = BenchDb::create(backend)?;
    let settings = bench_settings(&bench)?;
    let db = Db::connect(&settings)?;
    huying::startup::migrate(&db)?;
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = Utc::now();
    let street = seed(&mut conn, round_ts(now), 0)?;
    let started = Instant::now();
    fill(&mut conn, &street, n, round_ts(now))?;
    eprintln!(
        "{}: filled {n} tickets in {:.1} s",
        backend.name(),
        started.elapsed().as_secs_f64()
    );

    // Every ticket open at compound level with clocks far away, then every k-th one overdue.
    let later = round_ts(now + Duration::days(30));
    let past = round_ts(now - Duration::minutes(1));
    diesel::update(tickets::table)
        .set((
            tickets::status.eq("open"),
            tickets::level.eq("compound"),
            tickets::overdue.eq(false),
            tickets::ack_warned.eq(true),
            tickets::ack_due_at.eq(later),
            tickets::next_check_at.eq(later),
            tickets::due_at.eq(later),
        ))
        .execute(&mut *conn)?;
    let step = (100 / due_percent) as i64;
    let ids: Vec<i64> = tickets::table
        .select(tickets::id)
        .order(tickets::id)
        .load(&mut *conn)?;
    let due_ids: Vec<i64> = ids.into_iter().filter(|id| id % step == 0).collect();
    for chunk in due_ids.chunks(500) {
        diesel::update(tickets::table.filter(tickets::id.eq_any(chunk)))
            .set((
                tickets::ack_due_at.eq(past),
                tickets::next_check_at.eq(past),
                tickets::due_at.eq(past),
            ))
            .execute(&mut *conn)?;
    }
    analyze(&mut conn)?;

    let floor_ms = sweep_floor(&mut conn, backend, due_ids.len())?;
    drop(conn);
    let sla = std::sync::Arc::new(SlaEngine::from_settings(&settings.sla)?);
    // The sweep as `serve` runs it: through `Db` (on SQLite each chunk is a job of the writer).
    let sweep_as_serve = |batch: i64| -> anyhow::Result<(SweepReport, f64)> {
        let (db, sla) = (db.clone(), sla.clone());
        std::thread::scope(|s| {
            s.spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let t = Instant::now();
                    let r = sweep(&db, &sla, now, batch).await?;
                    Ok((r, t.elapsed().as_secs_f64() * 1000.0))
                })
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the sweep's thread panicked"))?
        })
    };
    eprintln!("{}: sweeping {} due", backend.name(), due_ids.len());
    let (report, due_ms) = sweep_as_serve((due_ids.len() + 10) as i64)?;
    // Nothing is due now: take the best of five, as this is the sweep every 30 s.
    let mut idle_ms = f64::MAX;
    for _ in 0..5 {
        let (r, ms) = sweep_as_serve(500)?;
        idle_ms = idle_ms.min(ms);
        if r.examined != 0 {
            anyhow::bail!("an idle sweep examined {} tickets", r.examined);
        }
    }
    report!(
        "| {} | {n} | {} | {due_ms:.0} | {} | {idle_ms:.2} | {floor_ms:.0} ({:.1}×) |",
        backend.name(),
        due_ids.len(),
        report.escalated,
        due_ms / floor_ms.max(0.001)
    );
    Ok(vec![
        ResultRow::new(
            backend,
            format!(
                "SLA sweep, {} due of {n} ({} called up), one sweep",
                due_ids.len(),
                report.escalated
            ),
            Measure::Millis(due_ms),
        )
        .floor(Some(floor_ms)),
        ResultRow::new(
            backend,
            format!("SLA sweep, nothing due of {n}, best of 5"),
            Measure::Millis(idle_ms),
        ),
    ])
}

diesel::table! {
    bench_sweep_tickets (id) {
        id -> BigInt,
        level -> Text,
        version -> Integer,
        next_check_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    bench_sweep_events (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        action -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    bench_sweep_outbox (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        event_id -> BigInt,
        channel -> Text,
        body -> Text,
        created_at -> Timestamp,
    }
}

/// The sweep's floor: what a call-up must at least write, through the same driver on one
/// connection, in transactions of [`huying::db::Engine::sweep_chunk`] tickets like the sweep:
/// per ticket the row's conditional UPDATE (level, version, next look), its timeline event
/// (id returned) and two outbox rows, into tables of their own holding `due` tickets. No reads:
/// the sweep also claims each ticket, finds its recipients, rewrites its facts and its ledger,
/// and keeps a savepoint per chunk. Milliseconds for all `due`.
fn sweep_floor(conn: &mut DbConn, backend: Backend, due: usize) -> anyhow::Result<f64> {
    let id = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    conn.batch_execute(&format!(
        "CREATE TABLE bench_sweep_tickets (id {id}, level TEXT NOT NULL, version INTEGER NOT NULL, \
           next_check_at TIMESTAMP); \
         CREATE TABLE bench_sweep_events (id {id}, ticket_id BIGINT NOT NULL, action TEXT NOT NULL, \
           created_at TIMESTAMP NOT NULL); \
         CREATE TABLE bench_sweep_outbox (id {id}, ticket_id BIGINT NOT NULL, event_id BIGINT NOT NULL, \
           channel TEXT NOT NULL, body TEXT NOT NULL, created_at TIMESTAMP NOT NULL);"
    ))?;
    let now = round_ts(Utc::now());
    let ids: Vec<i64> = (1..=due as i64).collect();
    for chunk in ids.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|&i| {
                (
                    bench_sweep_tickets::id.eq(i),
                    bench_sweep_tickets::level.eq("compound"),
                    bench_sweep_tickets::version.eq(1),
                    bench_sweep_tickets::next_check_at.eq(Some(now)),
                )
            })
            .collect();
        match &mut *conn {
            DbConn::Sqlite(c) => diesel::insert_into(bench_sweep_tickets::table)
                .values(&rows)
                .execute(c)?,
            DbConn::Pg(c) => diesel::insert_into(bench_sweep_tickets::table)
                .values(&rows)
                .execute(c)?,
        };
    }
    let t = Instant::now();
    for chunk in ids.chunks(conn.engine().sweep_chunk()) {
        huying::db::write_tx(conn, |c| -> QueryResult<()> {
            for &ticket in chunk {
                let changed = diesel::update(
                    bench_sweep_tickets::table
                        .filter(bench_sweep_tickets::id.eq(ticket))
                        .filter(bench_sweep_tickets::version.eq(1)),
                )
                .set((
                    bench_sweep_tickets::level.eq("community"),
                    bench_sweep_tickets::version.eq(2),
                    bench_sweep_tickets::next_check_at.eq(Some(now)),
                ))
                .execute(c)?;
                if changed != 1 {
                    return Err(diesel::result::Error::NotFound);
                }
                let event: i64 = diesel::insert_into(bench_sweep_events::table)
                    .values((
                        bench_sweep_events::ticket_id.eq(ticket),
                        bench_sweep_events::action.eq("escalate"),
                        bench_sweep_events::created_at.eq(now),
                    ))
                    .returning(bench_sweep_events::id)
                    .get_result(c)?;
                for channel in ["sms", "inapp"] {
                    diesel::insert_into(bench_sweep_outbox::table)
                        .values((
                            bench_sweep_outbox::ticket_id.eq(ticket),
                            bench_sweep_outbox::event_id.eq(event),
                            bench_sweep_outbox::channel.eq(channel),
                            bench_sweep_outbox::body
                                .eq("【呼应】工单已上呼至社区党支部，请在时限内处理。"),
                            bench_sweep_outbox::created_at.eq(now),
                        ))
                        .execute(c)?;
                }
            }
            Ok(())
        })?;
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    conn.batch_execute(
        "DROP TABLE bench_sweep_tickets; DROP TABLE bench_sweep_events; DROP TABLE bench_sweep_outbox;",
    )?;
    Ok(ms)
}

fn analyze(conn: &mut DbConn) -> anyhow::Result<()> {
    Ok(huying::db::dialect::analyze_tickets(conn)?)
}
