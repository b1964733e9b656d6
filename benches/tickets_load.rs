//! Load benchmark (not a test): fills a fresh database with N tickets spread over the demo
//! street, starts the real service in-process on 127.0.0.1, and measures with a concurrent HTTP
//! load generator:
//!
//! 1. create-ticket (`POST /api/v1/tickets`, one resident token per client),
//! 2. the staff queue (`GET /api/v1/tickets?limit=50`, default sort = due) for a compound, a
//!    community and the street account,
//!
//! then times the list query directly in the database and prints its query plan.
//!
//! ```text
//! cargo bench --bench tickets_load -- --backend sqlite
//! cargo bench --bench tickets_load -- --backend postgres   # HUYING_BENCH_POSTGRES_URL
//! ```
//!
//! Options: `--backend sqlite|postgres` (default sqlite), `--tickets N` (default 100000),
//! `--seconds S` per phase (default 10), `--concurrency C,C…` (default 16,64; each phase runs
//! once per count). Before the HTTP phases it measures the engine's own floor in the same
//! database (see [`engine_floor`]); the create rows give their ratio to it. Results are markdown
//! table rows on stdout; progress goes to stderr. See docs/benchmarks.md.
//!
//! A module of its entry `benches/bin/tickets_load.rs` and of `benches/all.rs`, which runs
//! [`run`] with its own [`Args`] and takes the [`ResultRow`]s it returns.

use crate::common::*;
use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use huying::auth::tokens::JwtKeys;
use huying::auth::AuthUser;
use huying::db::schema::tickets;
use huying::db::{dialect, round_ts, Db, DbConn};
use huying::domain::role::Role;
use huying::service::tickets::query::{self, TicketFilter};
use huying::startup::Application;
use serde_json::{json, Value};

/// Residents the create phase spreads its calls over (each request the next one's token), as
/// in a street: one resident sending thousands a second would measure the per-resident rate
/// limit's look at their day, not the call.
const RESIDENTS: usize = 2_000;

/// Hard cap per client and phase, besides the time limit.
const MAX_REQUESTS_PER_CLIENT: u64 = 1_000_000;

/// The staff queues measured: account, label.
pub const QUEUES: [(&str, &str); 3] = [
    ("yc-c1-p1", "staff queue, compound (yc-c1-p1)"),
    ("yc-c1", "staff queue, community (yc-c1)"),
    ("yc-street", "staff queue, street (yc-street)"),
];

#[derive(Debug, Clone)]
pub struct Args {
    pub backend: Backend,
    pub tickets: usize,
    pub seconds: u64,
    /// Client counts; each phase runs once per count.
    pub concurrency: Vec<usize>,
    /// The queues' accounts of [`QUEUES`] to measure (the command line measures all three).
    pub queues: Vec<&'static str>,
    /// Client counts of the queue phases; `None`: those of `concurrency`.
    pub queue_concurrency: Option<Vec<usize>>,
    /// Time the list query on a connection and print its plans after the HTTP phases.
    pub profile: bool,
}

const USAGE: &str = "usage: cargo bench --bench tickets_load -- [--backend sqlite|postgres] \
[--tickets N] [--seconds S] [--concurrency C[,C…]]";

fn parse_args(raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        backend: Backend::Sqlite,
        tickets: 100_000,
        seconds: 10,
        concurrency: vec![16, 64],
        queues: QUEUES.iter().map(|(account, _)| *account).collect(),
        queue_concurrency: None,
        profile: true,
    };
    let mut it = raw;
    while let Some(a) = it.next() {
        match a.as_str() {
            // `cargo bench` appends `--bench` for harness = false targets.
            "--bench" => {}
            "--backend" => args.backend = backend_arg(it.next())?,
            "--tickets" => args.tickets = number("--tickets", it.next())?,
            "--seconds" => args.seconds = number("--seconds", it.next())?,
            "--concurrency" => args.concurrency = numbers("--concurrency", it.next())?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if args.tickets > 5_000_000 {
        return Err("--tickets must be at most 5000000".into());
    }
    if !(1..=600).contains(&args.seconds) {
        return Err("--seconds must be 1–600".into());
    }
    if args.concurrency.is_empty() || args.concurrency.iter().any(|c| !(1..=512).contains(c)) {
        return Err("--concurrency must be a list of 1–512, e.g. 16,64".into());
    }
    Ok(args)
}

pub fn main() -> ExitCode {
    main_with(parse_args(std::env::args().skip(1)), run)
}

/// Latencies and failures of one measured phase.
struct PhaseResult {
    elapsed: StdDuration,
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl PhaseResult {
    fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.latencies_us.len() as f64).ceil() as usize).max(1) - 1;
        self.latencies_us[rank.min(self.latencies_us.len() - 1)] as f64 / 1000.0
    }
}

/// `concurrency` clients, each calling `request(client, n)` back to back until `seconds` pass.
async fn run_phase<F, Fut>(concurrency: usize, seconds: u64, request: F) -> PhaseResult
where
    F: Fn(usize, u64) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    let deadline = start + StdDuration::from_secs(seconds);
    let request = &request;
    let clients = (0..concurrency).map(|client| async move {
        let mut lat = Vec::new();
        let mut errors = 0u64;
        let mut first_error = None;
        for n in 0..MAX_REQUESTS_PER_CLIENT {
            if Instant::now() >= deadline {
                break;
            }
            let t0 = Instant::now();
            let r = request(client, n).await;
            lat.push(t0.elapsed().as_micros() as u64);
            if let Err(e) = r {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
        (lat, errors, first_error)
    });
    let results = futures::future::join_all(clients).await;
    let elapsed = start.elapsed();
    let mut out = PhaseResult {
        elapsed,
        latencies_us: Vec::new(),
        errors: 0,
        first_error: None,
    };
    for (lat, errors, first) in results {
        out.latencies_us.extend(lat);
        out.errors += errors;
        if out.first_error.is_none() {
            out.first_error = first;
        }
    }
    out.latencies_us.sort_unstable();
    out
}

/// One table row; `floor` (transactions per second) adds the ratio to the engine's floor.
/// Returns the row for the combined table, named `workload` there.
fn print_row(
    backend: Backend,
    (what, workload): (&str, &str),
    scope: &str,
    concurrency: usize,
    r: &PhaseResult,
    floor: Option<f64>,
) -> ResultRow {
    let n = r.latencies_us.len();
    let rps = n as f64 / r.elapsed.as_secs_f64();
    let max = r.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0;
    let ratio = floor.map_or_else(|| "—".to_string(), |f| format!("{:.0} %", 100.0 * rps / f));
    report!(
        "| {} | {what} | {scope} | {concurrency} | {n} | {rps:.0} | {:.1} | {:.1} | {max:.1} | {} | {ratio} |",
        backend.name(),
        r.percentile_ms(0.50),
        r.percentile_ms(0.99),
        r.errors,
    );
    if let Some(e) = &r.first_error {
        eprintln!("  first error in `{what}`: {e}");
    }
    let workload = match r.errors {
        0 => workload.to_string(),
        1 => format!("{workload} (1 error)"),
        e => format!("{workload} ({e} errors)"),
    };
    ResultRow::new(backend, workload, Measure::PerSecond(rps))
        .clients(concurrency)
        .latency(r.percentile_ms(0.50), r.percentile_ms(0.99))
        .floor(floor)
}

/// `/proc/loadavg` (1, 5, 15 minutes): shows whether something else shared the CPUs.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

async fn send(req: reqwest::RequestBuilder, expect: u16) -> Result<(), String> {
    let resp = req.send().await.map_err(|e| format!("transport: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("reading body: {e}"))?;
    if status == expect {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&body);
        Err(format!(
            "HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        ))
    }
}

async fn login(client: &reqwest::Client, base: &str, username: &str) -> anyhow::Result<String> {
    let v: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": STAFF_PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    v["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("login {username}: no access_token in {v}"))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The two statements `query::list` runs for a staff member with no filters (count, first page).
fn list_sql(column: &str, unit: i64) -> [String; 2] {
    [
        format!("SELECT COUNT(*) AS n FROM tickets WHERE tickets.{column} = {unit}"),
        format!(
            "SELECT * FROM tickets WHERE tickets.{column} = {unit} \
             ORDER BY tickets.due_at ASC, tickets.id ASC LIMIT 51"
        ),
    ]
}

fn explain(conn: &mut DbConn, sql: &str) -> anyhow::Result<Vec<String>> {
    Ok(dialect::explain(conn, sql)?)
}

fn median_ms(mut v: Vec<StdDuration>) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

/// Times `query::list` (the handler's query code) and its COUNT alone, straight on a connection,
/// and prints the plans: where a queue request's time goes.
fn database_profile(db: &Db, street: &Street, backend: Backend) -> anyhow::Result<()> {
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = Utc::now();
    report!();
    report!("Database-side timing of the staff queue (median of 20, no HTTP):");
    report!();
    report!("| backend | account | scope rows | `query::list` (count + page) ms | COUNT(*) alone ms | page alone ms |");
    report!("|---|---|---|---|---|---|");
    let mut plans = Vec::new();
    for (username, role, column) in [
        ("yc-c1-p1", Role::CompoundStaff, "compound_id"),
        ("yc-c1", Role::CommunityStaff, "community_id"),
        ("yc-street", Role::StreetStaff, "street_id"),
    ] {
        let unit = street
            .staff
            .iter()
            .find(|(u, _)| u == username)
            .map(|(_, id)| *id)
            .ok_or_else(|| anyhow::anyhow!("no demo account {username}"))?;
        let user = AuthUser {
            id: 0,
            role,
            org_unit_id: Some(unit),
            display_name: username.into(),
        };
        let filter = TicketFilter {
            limit: Some(50),
            ..TicketFilter::default()
        };
        let [count_sql, page_sql] = list_sql(column, unit);
        let mut t_list = Vec::new();
        let mut t_count = Vec::new();
        let mut t_page = Vec::new();
        let mut total = 0;
        for _ in 0..20 {
            let t0 = Instant::now();
            let page = query::list(&mut conn, &user, &filter, now, None)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            t_list.push(t0.elapsed());
            total = page.total;
            let t0 = Instant::now();
            let c: Count = diesel::sql_query(&count_sql).get_result(&mut *conn)?;
            t_count.push(t0.elapsed());
            total = total.max(c.n);
            let t0 = Instant::now();
            diesel::sql_query(&page_sql).execute(&mut *conn)?;
            t_page.push(t0.elapsed());
        }
        report!(
            "| {} | {username} | {total} | {:.2} | {:.2} | {:.2} |",
            backend.name(),
            median_ms(t_list),
            median_ms(t_count),
            median_ms(t_page)
        );
        for sql in [count_sql, page_sql] {
            let plan = explain(&mut conn, &sql)?;
            plans.push((sql, plan));
        }
    }
    report!();
    report!(
        "Query plans ({}):",
        match backend {
            Backend::Sqlite => "EXPLAIN QUERY PLAN",
            Backend::Postgres => "EXPLAIN (ANALYZE, BUFFERS)",
        }
    );
    report!();
    report!("```text");
    for (sql, plan) in plans {
        report!("{sql}");
        for line in plan {
            report!("    {line}");
        }
    }
    report!("```");
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<Vec<ResultRow>> {
    let bench_db = BenchDb::create(args.backend)?;
    let settings = bench_settings(&bench_db)?;
    huying::telemetry::init(&settings.log);
    let queue_concurrency = args
        .queue_concurrency
        .clone()
        .unwrap_or_else(|| args.concurrency.clone());
    let most = args
        .concurrency
        .iter()
        .chain(&queue_concurrency)
        .copied()
        .max()
        .unwrap_or(1);
    let mut rows = Vec::new();
    eprintln!(
        "backend {}, {} tickets, {:?} clients, {} s per phase",
        args.backend.name(),
        args.tickets,
        args.concurrency,
        args.seconds
    );

    // Seed and fill straight into the database, before the server starts.
    let db = Db::connect(&settings)?;
    huying::startup::migrate(&db)?;
    let street = {
        let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = round_ts(Utc::now());
        let street = seed(&mut conn, now, RESIDENTS.max(most))?;
        let t0 = Instant::now();
        fill(&mut conn, &street, args.tickets, now)?;
        let fill_secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "filled {} tickets (+ {} events) in {fill_secs:.1} s ({:.0} tickets/s)",
            args.tickets,
            args.tickets,
            args.tickets as f64 / fill_secs
        );
        if args.backend == Backend::Postgres {
            // What autovacuum does shortly after a bulk load: statistics and the visibility map.
            let t0 = Instant::now();
            // One statement per call: a multi-statement string is one implicit transaction.
            conn.batch_execute("VACUUM ANALYZE tickets")?;
            conn.batch_execute("VACUUM ANALYZE ticket_events")?;
            eprintln!("VACUUM ANALYZE in {:.1} s", t0.elapsed().as_secs_f64());
        }
        report!(
            "Fill: {} tickets + {} events in {fill_secs:.1} s ({:.0} tickets/s), batches of {BATCH} rows per transaction.",
            args.tickets,
            args.tickets,
            args.tickets as f64 / fill_secs
        );
        street
    };

    let app = Application::build(settings.clone())?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = app.into_server();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(most)
        // Below the server's keep-alive: a connection idle through a floor measurement between
        // two phases is closed by the server, and reusing it would count as the phase's error.
        .pool_idle_timeout(StdDuration::from_secs(2))
        .timeout(StdDuration::from_secs(60))
        .build()?;
    // Wait until the server answers.
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                ready = true;
                break;
            }
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(50)).await;
    }
    if !ready {
        anyhow::bail!("server at {base} did not become ready");
    }

    // The engine's floor, in the same database and the same run, while the server is idle.
    let floor = engine_floor(&settings, args.backend, most, args.seconds)?;
    report!();
    report!("Load average before the HTTP phases: {}", loadavg());
    report!();
    report!(
        "| backend | measurement | scope (tickets) | clients | requests | req/s | p50 ms | p99 ms | max ms | errors | of floor |"
    );
    report!("|---|---|---|---|---|---|---|---|---|---|---|");
    rows.push(print_row(
        args.backend,
        (
            &format!("engine floor: transactions of 3 INSERTs, {}", floor.how),
            &format!("engine floor: 3-INSERT transactions, {}", floor.how),
        ),
        "—",
        floor.threads,
        &floor.result,
        None,
    ));

    // Phase 1: residents create tickets. Tokens are minted with the service's key (the `log`
    // SMS provider does not expose sign-in codes); the residents are real accounts.
    let keys = JwtKeys::new(JWT_SECRET.as_bytes());
    let bench_residents = &street.residents[street.residents.len() - RESIDENTS.max(most)..];
    let tokens: Vec<String> = bench_residents
        .iter()
        .map(|id| keys.issue(*id, Role::Resident, Utc::now(), 3600))
        .collect::<anyhow::Result<_>>()?;
    let bodies: Vec<Value> = (0..most)
        .map(|c| {
            let (compound_id, _, buildings) = &street.compounds[c % street.compounds.len()];
            json!({
                "compound_id": compound_id,
                "building_id": buildings.first(),
                "category_id": street.categories[c % street.categories.len()],
                "title": TITLES[c % TITLES.len()],
                "description": "压测：楼道灯不亮已经三天了，晚上出入很不方便，请尽快维修。",
                "location": {"text": "2单元门口"},
            })
        })
        .collect();
    let url = format!("{base}/api/v1/tickets");
    for &clients in &args.concurrency {
        let before: i64 = {
            let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
            tickets::table.count().get_result(&mut *conn)?
        };
        let r = run_phase(clients, args.seconds, |c, n| {
            let req = client
                .post(&url)
                .bearer_auth(&tokens[(c + n as usize * clients) % tokens.len()])
                .header("Idempotency-Key", format!("bench-{clients}-{c}-{n}"))
                .json(&bodies[c]);
            send(req, 201)
        })
        .await;
        rows.push(print_row(
            args.backend,
            (
                "create ticket (POST /api/v1/tickets)",
                "create ticket, POST /api/v1/tickets",
            ),
            &format!("{before} before"),
            clients,
            &r,
            Some(floor.per_second()),
        ));
        let after: i64 = {
            let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
            tickets::table.count().get_result(&mut *conn)?
        };
        let ok = r.latencies_us.len() as u64 - r.errors;
        if after - before != ok as i64 {
            eprintln!(
                "WARNING: {ok} successful creates but the table grew by {}",
                after - before
            );
        }
    }

    // Phase 2: the staff queues, first page of 50 with the default sort (due).
    for (username, label) in QUEUES
        .into_iter()
        .filter(|(account, _)| args.queues.contains(account))
    {
        let token = login(&client, &base, username).await?;
        let url = format!("{base}/api/v1/tickets?limit=50");
        let first: Value = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let total = first["total"].as_i64().unwrap_or(-1);
        let items = first["items"].as_array().map(Vec::len).unwrap_or(0);
        if items != 50 {
            eprintln!("WARNING: {username}: first page has {items} items");
        }
        let unit = street
            .staff
            .iter()
            .find(|(name, _)| name == username)
            .map(|(_, unit)| *unit)
            .ok_or_else(|| anyhow::anyhow!("{username}: no unit in the seed"))?;
        for &clients in &queue_concurrency {
            let floor = queue_floor(&settings, username, unit, clients, args.seconds)?;
            print_row(
                args.backend,
                (
                    &format!("engine floor: {label}'s 51 rows, one indexed SELECT"),
                    "",
                ),
                &total.to_string(),
                clients,
                &floor,
                None,
            );
            let floor = floor.latencies_us.len() as f64 / floor.elapsed.as_secs_f64();
            let r = run_phase(clients, args.seconds, |_, _| {
                send(client.get(&url).bearer_auth(&token), 200)
            })
            .await;
            rows.push(print_row(
                args.backend,
                (
                    &format!("{label}, GET ?limit=50"),
                    &format!("{label}, first page of 50 of {total}"),
                ),
                &total.to_string(),
                clients,
                &r,
                Some(floor),
            ));
        }
    }

    report!();
    report!("Load average after the HTTP phases: {}", loadavg());
    handle.stop(true).await;
    if args.profile {
        database_profile(&db, &street, args.backend)?;
    }
    drop(db);
    drop(bench_db);
    Ok(rows)
}

diesel::table! {
    bench_floor_tickets (id) {
        id -> BigInt,
        street_id -> BigInt,
        title -> Text,
        description -> Text,
        status -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    bench_floor_events (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        action -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    bench_floor_outbox (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        channel -> Text,
        payload -> Text,
        created_at -> Timestamp,
    }
}

/// The engine's own rate for what a create must at least do.
struct Floor {
    how: String,
    threads: usize,
    result: PhaseResult,
}

impl Floor {
    fn per_second(&self) -> f64 {
        self.result.latencies_us.len() as f64 / self.result.elapsed.as_secs_f64()
    }
}

/// The floor: transactions of three INSERTs (a ticket-like row, an event, an outbox row) through
/// the same driver, prepared statements (diesel caches them), into tables of their own in the
/// bench database. SQLite: one connection (it has one writer anyway), `BEGIN IMMEDIATE`, the
/// service's pragmas. PostgreSQL: `threads` connections side by side, like pgbench's clients.
fn engine_floor(
    settings: &huying::config::Settings,
    backend: Backend,
    threads: usize,
    seconds: u64,
) -> anyhow::Result<Floor> {
    use secrecy::ExposeSecret;
    let target = huying::db::Target::parse(settings.database.url.expose_secret())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut conn = target.connect()?;
    let id = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    conn.batch_execute(&format!(
        "CREATE TABLE bench_floor_tickets (id {id}, street_id BIGINT NOT NULL, title TEXT NOT NULL, \
           description TEXT NOT NULL, status TEXT NOT NULL, created_at TIMESTAMP NOT NULL); \
         CREATE TABLE bench_floor_events (id {id}, ticket_id BIGINT NOT NULL, action TEXT NOT NULL, \
           created_at TIMESTAMP NOT NULL); \
         CREATE TABLE bench_floor_outbox (id {id}, ticket_id BIGINT NOT NULL, channel TEXT NOT NULL, \
           payload TEXT NOT NULL, created_at TIMESTAMP NOT NULL);"
    ))?;
    let threads = match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => threads,
    };
    let result = on_connections(&target, threads, seconds, |conn| {
        Ok(huying::db::write_tx(conn, floor_transaction)?)
    })?;
    conn.batch_execute(
        "DROP TABLE bench_floor_tickets; DROP TABLE bench_floor_events; DROP TABLE bench_floor_outbox;",
    )?;
    Ok(Floor {
        how: match backend {
            Backend::Sqlite => "one connection (raw SQLite)".into(),
            Backend::Postgres => format!("{threads} connections (raw PostgreSQL)"),
        },
        threads,
        result,
    })
}

/// The queue's floor: what the first page costs the engine alone. `clients` threads, each on its
/// own connection, read the page's 51 rows (every column of the ticket, the unit's index in the
/// default order `due_at, id`) with one prepared SELECT through the same driver, for `seconds`.
/// The service's request adds the permission checks, the view, the JSON and HTTP.
fn queue_floor(
    settings: &huying::config::Settings,
    username: &str,
    unit: i64,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<PhaseResult> {
    use huying::db::models::TicketRow;
    use secrecy::ExposeSecret;
    let target = huying::db::Target::parse(settings.database.url.expose_secret())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The accounts of QUEUES: a compound's staff, a community's, the street's.
    let level = match username.matches('-').count() {
        2 => 0,
        1 if username.ends_with("street") => 2,
        _ => 1,
    };
    on_connections(&target, clients, seconds, move |conn| {
        let q = tickets::table
            .order((tickets::due_at.asc(), tickets::id.asc()))
            .select(TicketRow::as_select())
            .limit(51);
        let page: Vec<TicketRow> = match level {
            0 => q.filter(tickets::compound_id.eq(unit)).load(conn)?,
            1 => q.filter(tickets::community_id.eq(unit)).load(conn)?,
            _ => q.filter(tickets::street_id.eq(unit)).load(conn)?,
        };
        if page.len() != 51 {
            anyhow::bail!("the floor's page has {} rows", page.len());
        }
        Ok(())
    })
}

/// Runs `op` in a loop for `seconds` on `threads` threads, each on its own connection; the
/// latency of every call.
fn on_connections(
    target: &huying::db::Target,
    threads: usize,
    seconds: u64,
    op: impl Fn(&mut DbConn) -> anyhow::Result<()> + Copy + Send + 'static,
) -> anyhow::Result<PhaseResult> {
    let deadline = Instant::now() + StdDuration::from_secs(seconds);
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let target = target.clone();
            std::thread::spawn(move || -> anyhow::Result<Vec<u64>> {
                // Planned once, as the service's request readers and writer are (SQLite would
                // otherwise compile the page's `LIMIT ?` again on every run).
                let mut conn =
                    huying::db::sqlite_plans::open_with_stable_plans(|| target.connect())?;
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    op(&mut conn)?;
                    lat.push(t0.elapsed().as_micros() as u64);
                }
                Ok(lat)
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    for w in workers {
        latencies_us.extend(
            w.join()
                .map_err(|_| anyhow::anyhow!("a floor thread panicked"))??,
        );
    }
    latencies_us.sort_unstable();
    Ok(PhaseResult {
        elapsed: start.elapsed(),
        latencies_us,
        errors: 0,
        first_error: None,
    })
}

fn floor_transaction(c: &mut DbConn) -> QueryResult<()> {
    let now = Utc::now().naive_utc();
    let ticket: i64 = diesel::insert_into(bench_floor_tickets::table)
        .values((
            bench_floor_tickets::street_id.eq(1),
            bench_floor_tickets::title.eq("楼道灯不亮"),
            bench_floor_tickets::description
                .eq("压测：楼道灯不亮已经三天了，晚上出入很不方便，请尽快维修。"),
            bench_floor_tickets::status.eq("open"),
            bench_floor_tickets::created_at.eq(now),
        ))
        .returning(bench_floor_tickets::id)
        .get_result(c)?;
    diesel::insert_into(bench_floor_events::table)
        .values((
            bench_floor_events::ticket_id.eq(ticket),
            bench_floor_events::action.eq("create"),
            bench_floor_events::created_at.eq(now),
        ))
        .execute(c)?;
    diesel::insert_into(bench_floor_outbox::table)
        .values((
            bench_floor_outbox::ticket_id.eq(ticket),
            bench_floor_outbox::channel.eq("in_app"),
            bench_floor_outbox::payload.eq("{\"kind\":\"create\"}"),
            bench_floor_outbox::created_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}
