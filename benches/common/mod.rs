//! Shared by the benchmark programs: a throw-away database, the demo street, and a fast fill
//! of realistic tickets straight into the database.
#![allow(dead_code)]

use chrono::{Duration, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use huying::config::{Settings, SmsProviderKind};
use huying::db::models::{NewTicketEvent, TicketRow};
use huying::db::schema::ticket_events;
use huying::db::{dialect, write_tx, DbConn};
use huying::domain::role::{ActorRole, Role};
use huying::domain::ticket::{ClosedBy, Deadlines, EventKind, Level, Status, Urgency};
use huying::service::sla::SlaEngine;
use huying::service::users::{self, CreateUser};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;

pub const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-01";
pub const STAFF_PASSWORD: &str = "bench-pass-123";
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Rows per INSERT statement and per transaction during the fill.
pub const BATCH: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A number given after `flag`.
pub fn number<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    v.as_deref()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("{flag} needs a number"))
}

/// A comma-separated list of numbers given after `flag` (`16,64`).
pub fn numbers<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<Vec<T>, String> {
    v.unwrap_or_default()
        .split(',')
        .map(|n| number(flag, Some(n.to_string())))
        .collect()
}

/// The value of `--backend`.
pub fn backend_arg(v: Option<String>) -> Result<Backend, String> {
    match v.as_deref() {
        Some("sqlite") => Ok(Backend::Sqlite),
        Some("postgres") | Some("postgresql") | Some("pg") => Ok(Backend::Postgres),
        other => Err(format!("--backend sqlite|postgres, got {other:?}")),
    }
}

/// A benchmark program's `main`: exit code 2 for bad arguments; otherwise `run` on actix's
/// runtime, exit code 1 with the error when it fails (what it returns is for `benches/all.rs`).
pub fn main_with<A, T, F, Fut>(args: Result<A, String>, run: F) -> std::process::ExitCode
where
    F: FnOnce(A) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let args = match args {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    match actix_web::rt::System::new().block_on(run(args)) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The database the run uses; removed afterwards (also on panic).
pub struct BenchDb {
    pub url: String,
    pub dir: std::path::PathBuf,
    drop_pg: Option<(String, String)>,
}

impl BenchDb {
    pub fn create(backend: Backend) -> anyhow::Result<BenchDb> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("huying-bench-{id}"));
        std::fs::create_dir_all(&dir)?;
        match backend {
            Backend::Sqlite => Ok(BenchDb {
                url: format!("sqlite://{}", dir.join("huying.db").display()),
                dir,
                drop_pg: None,
            }),
            Backend::Postgres => {
                let admin = std::env::var("HUYING_BENCH_POSTGRES_URL")
                    .ok()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| DEFAULT_PG_URL.to_string());
                let name = format!("huying_bench_{}", &id[..12]);
                let mut c = PgConnection::establish(&admin)
                    .map_err(|e| anyhow::anyhow!("connect to {admin}: {e}"))?;
                c.batch_execute(&format!("CREATE DATABASE \"{name}\""))?;
                let mut url = url::Url::parse(&admin)?;
                url.set_path(&name);
                Ok(BenchDb {
                    url: url.to_string(),
                    dir,
                    drop_pg: Some((admin, name)),
                })
            }
        }
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.drop_pg.take() {
            match PgConnection::establish(&admin) {
                Ok(mut c) => {
                    if let Err(e) =
                        c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    {
                        eprintln!("could not drop database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("could not drop database {name}: {e}"),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn bench_settings(db: &BenchDb) -> anyhow::Result<Settings> {
    let mut s = Settings::load_with_env(None, &[])?;
    s.server.bind = "127.0.0.1:0".into();
    s.database.url = SecretString::from(db.url.clone());
    s.data.dir = db.dir.join("data");
    s.auth.jwt_secret = SecretString::from(JWT_SECRET.to_string());
    s.sms.provider = SmsProviderKind::Log;
    s.log.level = "warn".into();
    // The benchmarks' residents call far more than a resident would (the shipped 10 a day).
    s.limits.tickets_per_resident_per_day = 1_000;
    Ok(s)
}

/// The demo street as the fill needs it.
pub struct Street {
    pub street_id: i64,
    /// (compound id, community id, building ids)
    pub compounds: Vec<(i64, i64, Vec<i64>)>,
    pub categories: Vec<i64>,
    pub residents: Vec<i64>,
    /// Unit id per staff username.
    pub staff: Vec<(String, i64)>,
}

pub fn seed(
    conn: &mut DbConn,
    now: NaiveDateTime,
    bench_residents: usize,
) -> anyhow::Result<Street> {
    let demo = huying::cli::seed_demo(conn, "YC", Some(STAFF_PASSWORD), now)
        .map_err(|e| anyhow::anyhow!("seed-demo: {e}"))?;
    let compounds = demo
        .compounds
        .iter()
        .map(|c| {
            let buildings = demo
                .buildings
                .iter()
                .filter(|b| b.parent_id == Some(c.id))
                .map(|b| b.id)
                .collect();
            (c.id, c.parent_id.unwrap_or(-1), buildings)
        })
        .collect();
    let mut residents: Vec<i64> = demo.residents.iter().map(|r| r.id).collect();
    let created = write_tx(conn, |c| {
        (0..bench_residents)
            .map(|i| {
                users::create(
                    c,
                    &CreateUser {
                        role: Role::Resident,
                        username: None,
                        password: None,
                        display_name: format!("压测居民{i:03}"),
                        phone: Some(format!("137{i:08}")),
                        email: None,
                        org_unit_id: None,
                    },
                    now,
                )
                .map(|u| u.id)
            })
            .collect::<Result<Vec<i64>, _>>()
    })
    .map_err(|e| anyhow::anyhow!("creating bench residents: {e}"))?;
    residents.extend(created);
    Ok(Street {
        street_id: demo.street.id,
        compounds,
        categories: demo.categories.iter().map(|c| c.id).collect(),
        residents,
        staff: demo
            .accounts
            .iter()
            .filter_map(|a| Some((a.username.clone()?, a.org_unit_id?)))
            .collect(),
    })
}

pub const TITLES: [&str; 10] = [
    "楼道灯不亮",
    "垃圾未及时清运",
    "电梯经常停运",
    "雨后路面积水",
    "夜间施工噪音扰民",
    "下水道堵塞返味",
    "消防通道被占用",
    "绿化带树木倒伏",
    "单元门禁损坏",
    "楼上漏水",
];

pub fn between(rng: &mut StdRng, a: NaiveDateTime, b: NaiveDateTime) -> NaiveDateTime {
    let span = (b - a).num_seconds();
    if span <= 0 {
        a
    } else {
        a + Duration::seconds(rng.gen_range(0..=span))
    }
}

/// One ticket as the service would have left it after its life so far.
pub fn make_ticket(
    i: usize,
    rng: &mut StdRng,
    street: &Street,
    sla: &SlaEngine,
    now: NaiveDateTime,
) -> TicketRow {
    let age = Duration::seconds(rng.gen_range(60..90 * 86_400));
    let created = now - age;
    let (compound_id, community_id, buildings) =
        &street.compounds[rng.gen_range(0..street.compounds.len())];
    let building_id = if rng.gen_bool(0.7) && !buildings.is_empty() {
        Some(buildings[rng.gen_range(0..buildings.len())])
    } else {
        None
    };
    let roll = rng.gen_range(0..100);
    let (level, escalations) = if roll < 3 {
        (Level::Street, 2)
    } else if roll < 13 {
        (Level::Community, 1)
    } else {
        (Level::Compound, 0)
    };
    let entered = if escalations == 0 {
        created
    } else {
        (created + Duration::minutes(rng.gen_range(30..48 * 60))).min(now)
    };
    let urgency = if rng.gen_bool(0.1) {
        Urgency::Urgent
    } else {
        Urgency::Normal
    };
    let category_id = street.categories[rng.gen_range(0..street.categories.len())];
    let clocks = sla.clocks(level, category_id, urgency, entered.and_utc());
    let (ack_due, ack_warn) = (clocks.ack_due.naive_utc(), clocks.ack_warn.naive_utc());
    let (resolve_due, resolve_warn) = (
        clocks.resolve_due.naive_utc(),
        clocks.resolve_warn.naive_utc(),
    );
    // Older tickets are mostly settled; the last week is mostly in progress.
    let weights: [u32; 4] = match age.num_days() {
        0..=6 => [35, 35, 20, 10],
        7..=29 => [5, 15, 5, 75],
        _ => [1, 3, 0, 96],
    };
    let mut pick = rng.gen_range(0..weights.iter().sum::<u32>());
    let mut status = Status::Closed;
    for (s, w) in [
        Status::Open,
        Status::Acknowledged,
        Status::Resolved,
        Status::Closed,
    ]
    .into_iter()
    .zip(weights)
    {
        if pick < w {
            status = s;
            break;
        }
        pick -= w;
    }
    let title = TITLES[i % TITLES.len()];
    let resident_id = street.residents[rng.gen_range(0..street.residents.len())];
    let mut t = TicketRow {
        id: 0,
        reference: format!(
            "YC-{}-B{i:07}",
            (created + Duration::hours(8)).format("%Y%m%d")
        ),
        status,
        level,
        street_id: street.street_id,
        community_id: *community_id,
        compound_id: *compound_id,
        building_id,
        category_id,
        urgency,
        title: title.into(),
        description: format!(
            "{title}，已经持续好几天了，影响居民正常生活，请尽快安排人员处理。（压测数据 #{i}）"
        ),
        location_text: building_id.map(|_| "单元门口".to_string()),
        latitude: None,
        longitude: None,
        resident_id,
        assignee_id: None,
        assigned_handler: None,
        resolution_note: None,
        decline_reason: None,
        declined_at: None,
        rating: None,
        rating_comment: None,
        closed_by: None,
        escalation_count: escalations,
        disputes_at_level: 0,
        returned_by_community: false,
        returned_by_street: false,
        level_entered_at: entered,
        level_acknowledged_at: None,
        ack_due_at: Some(ack_due),
        resolve_due_at: Some(resolve_due),
        due_at: huying::service::tickets::no_deadline(),
        next_check_at: None,
        ack_warned: false,
        resolve_warned: false,
        overdue: false,
        version: escalations,
        created_at: created,
        updated_at: entered,
        acknowledged_at: None,
        resolved_at: None,
        closed_at: None,
        paused_at: None,
        paused_minutes: 0,
        source: huying::domain::ticket::Source::App,
        entered_by: None,
        external_ref: None,
        raised_level: None,
        identity_hidden: false,
        transfer_count: 0,
        urge_count: 0,
        urged_by_community_at: None,
        urged_by_street_at: None,
        decide_due_at: None,
        extension_due_at: None,
        extension_reason: None,
        extension_requested_at: None,
        extension_lapsed: false,
        extensions_granted: 0,
        location_accuracy_m: None,
    };
    match status {
        Status::Open => {
            t.ack_warned = ack_warn <= now;
            t.overdue = ack_due <= now;
        }
        _ => {
            let acked = between(rng, entered, ack_due.min(now));
            t.acknowledged_at = Some(acked);
            t.level_acknowledged_at = Some(acked);
            t.ack_warned = acked >= ack_warn;
            t.updated_at = acked;
            t.version += 1;
            if status == Status::Acknowledged {
                t.resolve_warned = resolve_warn <= now;
                t.overdue = resolve_due <= now;
            } else {
                let resolved = if status == Status::Resolved {
                    // Resolved tickets close by themselves after 7 days.
                    between(rng, acked.max(now - Duration::days(6)), now)
                } else {
                    between(rng, acked, resolve_due.min(now))
                };
                t.resolved_at = Some(resolved);
                t.resolution_note = Some("已安排物业维修，现已处理完毕。".into());
                t.updated_at = resolved;
                t.version += 1;
                if status == Status::Closed {
                    let closed = between(rng, resolved, (resolved + Duration::days(7)).min(now));
                    t.closed_at = Some(closed);
                    t.updated_at = closed;
                    t.version += 1;
                    if rng.gen_bool(0.8) {
                        t.closed_by = Some(ClosedBy::Resident);
                        t.rating = Some(rng.gen_range(3..=5));
                    } else {
                        t.closed_by = Some(ClosedBy::Auto);
                    }
                }
            }
        }
    }
    let mut domain = t.to_domain();
    domain.schedule(sla);
    t.set_state(&domain);
    t
}

/// Inserts `rows` (one statement) and one `create` event per ticket, in one transaction.
pub fn insert_batch(conn: &mut DbConn, rows: &[TicketRow]) -> anyhow::Result<()> {
    write_tx(conn, |c| -> huying::error::AppResult<()> {
        let ids = dialect::insert_tickets_returning_ids(c, rows)?;
        let events: Vec<NewTicketEvent> = rows
            .iter()
            .zip(ids)
            .map(|(t, id)| NewTicketEvent {
                ticket_id: id,
                actor_id: Some(t.resident_id),
                actor_role: ActorRole::Resident,
                action: EventKind::Create,
                level: Level::Compound,
                status_before: None,
                status_after: Status::Open,
                level_after: Level::Compound,
                reason: None,
                note: None,
                internal: false,
                created_at: t.created_at,
            })
            .collect();
        dialect::insert_all::<_, NewTicketEvent>(c, ticket_events::table, &events)?;
        Ok(())
    })?;
    Ok(())
}

pub fn fill(
    conn: &mut DbConn,
    street: &Street,
    n: usize,
    now: NaiveDateTime,
) -> anyhow::Result<()> {
    let sla = SlaEngine::with_defaults()?;
    let mut rng = StdRng::seed_from_u64(0x48_75_79_69_6e_67);
    let mut done = 0;
    while done < n {
        let end = (done + BATCH).min(n);
        let rows: Vec<TicketRow> = (done..end)
            .map(|i| make_ticket(i, &mut rng, street, &sla, now))
            .collect();
        insert_batch(conn, &rows)?;
        done = end;
        if done % 20_000 == 0 {
            eprintln!("  … {done} tickets");
        }
    }
    Ok(())
}

/// What a row of the combined table measured, in its unit; the floor is in the same unit.
#[derive(Debug, Clone, Copy)]
pub enum Measure {
    /// Operations (requests, transactions, rows) per second: more is better.
    PerSecond(f64),
    /// Duration of one call (a single shot, or the median of a few): less is better.
    Millis(f64),
    /// Memory in MiB.
    Mib(f64),
}

/// One row of the table `benches/all.rs` prints: each program's `run` returns these besides
/// printing its own report, so that one entry point can show every workload side by side.
#[derive(Debug, Clone)]
pub struct ResultRow {
    pub workload: String,
    pub backend: Backend,
    pub clients: Option<usize>,
    pub value: Measure,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The engine's floor for this workload, in the unit of `value`.
    pub floor: Option<f64>,
}

impl ResultRow {
    pub fn new(backend: Backend, workload: impl Into<String>, value: Measure) -> ResultRow {
        ResultRow {
            workload: workload.into(),
            backend,
            clients: None,
            value,
            p50_ms: None,
            p99_ms: None,
            floor: None,
        }
    }

    pub fn clients(mut self, clients: usize) -> ResultRow {
        self.clients = Some(clients);
        self
    }

    pub fn latency(mut self, p50_ms: f64, p99_ms: f64) -> ResultRow {
        self.p50_ms = Some(p50_ms);
        self.p99_ms = Some(p99_ms);
        self
    }

    pub fn floor(mut self, floor: Option<f64>) -> ResultRow {
        self.floor = floor;
        self
    }

    /// The table row: a rate's share of its floor in percent, a duration's multiple of its floor.
    pub fn markdown(&self) -> String {
        let opt = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.1}"));
        let (value, floor) = match self.value {
            Measure::PerSecond(v) => (
                format!("{v:.0} /s"),
                self.floor.map(|f| format!("{f:.0} /s")),
            ),
            Measure::Millis(v) => (
                format!("{v:.2} ms"),
                self.floor.map(|f| format!("{f:.2} ms")),
            ),
            Measure::Mib(v) => (format!("{v:.0} MiB"), None),
        };
        let ratio = match (self.value, self.floor) {
            (Measure::PerSecond(v), Some(f)) if f > 0.0 => format!("{:.0} %", 100.0 * v / f),
            (Measure::Millis(v), Some(f)) if f > 0.0 => format!("{:.1} ×", v / f),
            _ => "—".to_string(),
        };
        format!(
            "| {} | {} | {} | {value} | {} | {} | {} | {ratio} |",
            self.workload,
            self.backend.name(),
            self.clients
                .map_or_else(|| "—".to_string(), |c| c.to_string()),
            opt(self.p50_ms),
            opt(self.p99_ms),
            floor.unwrap_or_else(|| "—".to_string()),
        )
    }
}

/// Set by `benches/all.rs`: the programs' own reports go to stderr with the progress, so that
/// stdout holds only the combined table.
static REPORT_ON_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn report_on_stderr() {
    REPORT_ON_STDERR.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub fn report_is_on_stderr() -> bool {
    REPORT_ON_STDERR.load(std::sync::atomic::Ordering::Relaxed)
}

/// `println!` for a program's own report: stdout, or stderr when `benches/all.rs` runs it.
macro_rules! report {
    ($($arg:tt)*) => {
        if crate::common::report_is_on_stderr() {
            eprintln!($($arg)*)
        } else {
            println!($($arg)*)
        }
    };
}
pub(crate) use report;
