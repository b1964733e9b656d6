//! Every performance workload on SQLite and PostgreSQL, one table (a program, not a test). Per
//! backend it runs the programs' own code, each on its own fresh database filled by
//! `benches/common` as that program fills it:
//!
//! - `tickets_load`: the engine floor (3-INSERT transactions), create ticket with 16 and 64
//!   clients, the street account's staff queue (first page) with 16 clients;
//! - `stats_load`: the street's dashboard summary and its ledger per compound (with the ledger's
//!   floor, a bare `COUNT(*)` of the entries);
//! - `sweep_load`: one SLA sweep with 10 % of the tickets due, and one with nothing due;
//! - `dispatch_load`: the dispatcher's floor (its claim and record statements), SMS to the HTTP
//!   gateway stand-in and email to the SMTP sink, each also with the sender alone;
//!
//! then the process's resident memory. The programs' own reports go to stderr with the progress;
//! stdout gets one markdown table and the machine line.
//!
//! ```text
//! cargo bench --bench all                          # both backends, 100000 tickets, 10 s phases
//! cargo bench --bench all -- --backend sqlite --quick
//! ```
//!
//! Options: `--backend sqlite|postgres|both` (default both; PostgreSQL from
//! `HUYING_BENCH_POSTGRES_URL`), `--tickets N` (100000), `--seconds S` per timed phase (10),
//! `--notifications N` per channel (5000), `--quick` (5000 tickets, 2 s phases, 500
//! notifications: checks that everything runs; explicit options still win). See
//! docs/benchmarks.md.

mod common;
// Their `main`s (and argument parsing) are the standalone programs'; here only `run` is used.
#[allow(dead_code)]
mod dispatch_load;
#[allow(dead_code)]
mod stats_load;
#[allow(dead_code)]
mod sweep_load;
#[allow(dead_code)]
mod tickets_load;

use std::process::ExitCode;
use std::time::Instant;

use common::*;

/// The share of the tickets the sweep finds due.
const SWEEP_DUE_PERCENT: usize = 10;

#[derive(Debug, Clone)]
struct Args {
    backends: Vec<Backend>,
    tickets: usize,
    seconds: u64,
    notifications: usize,
}

const USAGE: &str = "usage: cargo bench --bench all -- [--backend sqlite|postgres|both] \
[--tickets N] [--seconds S] [--notifications N] [--quick]";

fn parse_args(raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut backends = vec![Backend::Sqlite, Backend::Postgres];
    let (mut tickets, mut seconds, mut notifications) = (None, None, None);
    let mut quick = false;
    let mut it = raw;
    while let Some(a) = it.next() {
        match a.as_str() {
            // `cargo bench` appends `--bench` for harness = false targets.
            "--bench" => {}
            "--backend" => {
                let v = it.next();
                backends = match v.as_deref() {
                    Some("both") => vec![Backend::Sqlite, Backend::Postgres],
                    _ => vec![backend_arg(v).map_err(|e| format!("{e} (or both)"))?],
                };
            }
            "--tickets" => tickets = Some(number("--tickets", it.next())?),
            "--seconds" => seconds = Some(number("--seconds", it.next())?),
            "--notifications" => notifications = Some(number("--notifications", it.next())?),
            "--quick" => quick = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let args = Args {
        backends,
        tickets: tickets.unwrap_or(if quick { 5_000 } else { 100_000 }),
        seconds: seconds.unwrap_or(if quick { 2 } else { 10 }),
        notifications: notifications.unwrap_or(if quick { 500 } else { 5_000 }),
    };
    // The sweep needs a due ticket; the programs check their own upper bounds.
    if args.tickets < 100 || args.tickets > 5_000_000 {
        return Err("--tickets must be 100–5000000".into());
    }
    if !(1..=600).contains(&args.seconds) {
        return Err("--seconds must be 1–600".into());
    }
    if !(1..=1_000_000).contains(&args.notifications) {
        return Err("--notifications must be 1–1000000".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    // The workloads block (or run their own systems on threads of their own); `main_with` gives
    // the same exit codes as the single programs.
    main_with(parse_args(std::env::args().skip(1)), |args| async move {
        run(args)
    })
}

/// Runs an async program on an actix system of its own, in a thread of its own. A program leaves
/// the service's background tasks running (live updates, the pool refilling its connections),
/// which is harmless when it exits next; here they would outlive its database and share the
/// cores with the next workload. Dropping the system ends them.
fn on_own_system<F, Fut>(program: F) -> anyhow::Result<Vec<ResultRow>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Vec<ResultRow>>>,
{
    std::thread::spawn(move || actix_web::rt::System::new().block_on(program()))
        .join()
        .map_err(|_| anyhow::anyhow!("the program's thread panicked"))?
}

fn run(args: Args) -> anyhow::Result<()> {
    report_on_stderr();
    let started = Instant::now();
    let mut rows = Vec::new();
    // A workload that fails does not hide the others' figures: it is named after the table.
    let mut failures = Vec::new();
    let mut record = |what: &str, backend: Backend, r: anyhow::Result<Vec<ResultRow>>| match r {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("{what} on {} failed: {e:#}", backend.name());
            failures.push(format!("{what} on {}: {e:#}", backend.name()));
        }
    };
    for &backend in &args.backends {
        let t0 = Instant::now();
        eprintln!("== {}: tickets_load", backend.name());
        let program = tickets_load::Args {
            backend,
            tickets: args.tickets,
            seconds: args.seconds,
            concurrency: vec![16, 64],
            queues: vec!["yc-street"],
            queue_concurrency: Some(vec![16]),
            profile: false,
        };
        let r = on_own_system(move || tickets_load::run(program));
        record("tickets_load", backend, r);

        eprintln!("== {}: stats_load", backend.name());
        let r = stats_load::run(
            backend,
            args.tickets,
            0,
            stats_load::Calls::StreetSummaryAndLedger,
        );
        record("stats_load", backend, r);

        eprintln!("== {}: sweep_load", backend.name());
        let r = sweep_load::run(backend, args.tickets, SWEEP_DUE_PERCENT);
        record("sweep_load", backend, r);

        eprintln!("== {}: dispatch_load", backend.name());
        let program = dispatch_load::Args {
            backend,
            notifications: args.notifications,
            in_flight: None,
            smtp_pool: None,
            smtp: None,
        };
        let r = on_own_system(move || dispatch_load::run(program));
        record("dispatch_load", backend, r);

        record("memory", backend, memory_rows(backend));
        eprintln!(
            "== {} done in {:.0} s",
            backend.name(),
            t0.elapsed().as_secs_f64()
        );
    }

    println!(
        "Machine: {}; {}; {} tickets, {} s per timed phase, {} notifications per channel; \
         whole run {:.0} s.",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        args.tickets,
        args.seconds,
        args.notifications,
        started.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "| workload | backend | clients | ops/s (or ms) | p50 ms | p99 ms | floor (same unit) | ratio to floor |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{}", r.markdown());
    }
    if !failures.is_empty() {
        println!();
        println!("Failed: {}", failures.join("; "));
        anyhow::bail!("{} workload(s) failed", failures.len());
    }
    Ok(())
}

/// The whole process (the services, the load generators and the stand-ins of every workload run
/// so far): resident now and at its peak.
fn memory_rows(backend: Backend) -> anyhow::Result<Vec<ResultRow>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = |key: &str| -> anyhow::Result<f64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| anyhow::anyhow!("no {key} in /proc/self/status"))
    };
    Ok(vec![
        ResultRow::new(
            backend,
            "process RSS after the workloads so far (VmRSS, whole bench process)",
            Measure::Mib(kib("VmRSS:")? / 1024.0),
        ),
        ResultRow::new(
            backend,
            "process peak RSS so far (VmHWM)",
            Measure::Mib(kib("VmHWM:")? / 1024.0),
        ),
    ])
}

/// CPUs, their model and the commit: what a reader needs to compare two tables.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown model".into());
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(c) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("commit {c} with uncommitted changes"),
            _ => format!("commit {c}"),
        },
        None => "commit unknown".into(),
    };
    format!("{cpus} CPUs ({model}); {commit}")
}
