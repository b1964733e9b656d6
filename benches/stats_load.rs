//! Statistics benchmark (not a test): fills a fresh database with N tickets spread over the last
//! 90 days of the demo street (with their create / acknowledge / resolve / confirm events), then
//! times the dashboard queries for the last 30 days, straight on a connection (what the handlers
//! run inside `Db::run`; JSON encoding of the small answers is not included).
//!
//! ```text
//! cargo bench --bench stats_load -- --backend sqlite --tickets 1000000
//! cargo bench --bench stats_load -- --backend postgres   # HUYING_BENCH_POSTGRES_URL
//! ```
//!
//! Results are markdown table rows on stdout; progress goes to stderr. See docs/benchmarks.md.

use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use huying::config::Settings;
use huying::db::models::{NewTicketEvent, TicketRow};
use huying::db::schema::{ticket_events, tickets};
use huying::db::{round_ts, write_tx, Db, DbConn};
use huying::service::stats::{self, RankSort, RankUnit, StatsScope};
use huying::service::tickets::no_deadline;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const BATCH: usize = 500;

fn main() -> ExitCode {
    let mut postgres = false;
    let mut n: usize = 200_000;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--backend" => postgres = it.next().as_deref() == Some("postgres"),
            "--tickets" => match it.next().and_then(|v| v.parse().ok()) {
                Some(v) => n = v,
                None => {
                    eprintln!("--tickets needs a number");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!(
                    "usage: stats_load [--backend sqlite|postgres] [--tickets N]; got {other}"
                );
                return ExitCode::from(2);
            }
        }
    }
    match run(postgres, n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Cleanup {
    dir: std::path::PathBuf,
    drop_pg: Option<(String, String)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.drop_pg.take() {
            if let Ok(mut c) = PgConnection::establish(&admin) {
                let _ =
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn between(rng: &mut StdRng, a: NaiveDateTime, b: NaiveDateTime) -> NaiveDateTime {
    let span = (b - a).num_seconds();
    if span <= 0 {
        a
    } else {
        a + Duration::seconds(rng.gen_range(0..=span))
    }
}

#[allow(clippy::too_many_arguments)]
fn ticket(
    i: usize,
    rng: &mut StdRng,
    street: i64,
    compounds: &[(i64, i64)],
    categories: &[i64],
    resident: i64,
    now: NaiveDateTime,
) -> (TicketRow, Vec<(&'static str, NaiveDateTime)>) {
    let created = now - Duration::seconds(rng.gen_range(60..90 * 86_400));
    let (compound_id, community_id) = compounds[rng.gen_range(0..compounds.len())];
    let ack_due = created + Duration::hours(4);
    let resolve_due = created + Duration::days(3);
    let mut events = vec![("create", created)];
    let mut t = TicketRow {
        id: 0,
        reference: format!("YC-S{i:08}"),
        status: "open".into(),
        level: "compound".into(),
        street_id: street,
        community_id,
        compound_id,
        building_id: None,
        category_id: categories[rng.gen_range(0..categories.len())],
        urgency: "normal".into(),
        title: "楼道灯不亮".into(),
        description: "统计压测数据".into(),
        location_text: None,
        latitude: None,
        longitude: None,
        resident_id: resident,
        assignee_id: None,
        assigned_handler: None,
        resolution_note: None,
        decline_reason: None,
        declined_at: None,
        rating: None,
        rating_comment: None,
        closed_by: None,
        escalation_count: 0,
        disputes_at_level: 0,
        returned_by_community: false,
        returned_by_street: false,
        level_entered_at: created,
        level_acknowledged_at: None,
        ack_due_at: Some(ack_due),
        resolve_due_at: Some(resolve_due),
        due_at: ack_due,
        next_check_at: None,
        ack_warned: false,
        resolve_warned: false,
        overdue: false,
        version: 0,
        created_at: created,
        updated_at: created,
        acknowledged_at: None,
        resolved_at: None,
        closed_at: None,
        paused_at: None,
        paused_minutes: 0,
    };
    let acked = created + Duration::minutes(rng.gen_range(5..300));
    if acked < now && rng.gen_bool(0.95) {
        t.status = "acknowledged".into();
        t.acknowledged_at = Some(acked);
        t.level_acknowledged_at = Some(acked);
        t.due_at = resolve_due;
        events.push(("acknowledge", acked));
        let resolved = acked + Duration::minutes(rng.gen_range(30..5_000));
        if resolved < now {
            t.status = "resolved".into();
            t.resolved_at = Some(resolved);
            t.due_at = no_deadline();
            events.push(("resolve", resolved));
            let closed = between(rng, resolved, resolved + Duration::days(7));
            if closed < now {
                t.status = "closed".into();
                t.closed_at = Some(closed);
                if rng.gen_bool(0.8) {
                    t.closed_by = Some("resident".into());
                    t.rating = Some(rng.gen_range(1..=5));
                    events.push(("confirm", closed));
                } else {
                    t.closed_by = Some("system".into());
                    events.push(("auto_close", closed));
                }
            }
        }
    }
    t.overdue = t.due_at != no_deadline() && t.due_at < now && rng.gen_bool(0.1);
    (t, events)
}

fn insert(
    conn: &mut DbConn,
    batch: &[(TicketRow, Vec<(&'static str, NaiveDateTime)>)],
) -> anyhow::Result<()> {
    write_tx(conn, |c| -> Result<(), diesel::result::Error> {
        let rows: Vec<TicketRow> = batch.iter().map(|b| b.0.clone()).collect();
        let ids: Vec<i64> = match c {
            DbConn::Sqlite(c) => diesel::insert_into(tickets::table)
                .values(&rows)
                .returning(tickets::id)
                .get_results(c)?,
            DbConn::Pg(c) => diesel::insert_into(tickets::table)
                .values(&rows)
                .returning(tickets::id)
                .get_results(c)?,
        };
        let mut events = Vec::new();
        for ((_, evs), id) in batch.iter().zip(ids) {
            for (action, at) in evs {
                let status_after = match *action {
                    "create" => "open",
                    "acknowledge" => "acknowledged",
                    "resolve" => "resolved",
                    _ => "closed",
                };
                events.push(NewTicketEvent {
                    ticket_id: id,
                    actor_id: None,
                    actor_role: "system".into(),
                    action: (*action).into(),
                    level: "compound".into(),
                    status_before: None,
                    status_after: status_after.into(),
                    level_after: "compound".into(),
                    reason: None,
                    note: None,
                    internal: false,
                    created_at: *at,
                });
            }
        }
        for chunk in events.chunks(BATCH) {
            match c {
                DbConn::Sqlite(c) => diesel::insert_into(ticket_events::table)
                    .values(chunk)
                    .execute(c)?,
                DbConn::Pg(c) => diesel::insert_into(ticket_events::table)
                    .values(chunk)
                    .execute(c)?,
            };
        }
        Ok(())
    })?;
    Ok(())
}

fn median_ms(mut v: Vec<StdDuration>) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

fn time<T>(mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let mut out = None;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        out = Some(f()?);
        times.push(t0.elapsed());
    }
    let out = out.ok_or_else(|| anyhow::anyhow!("no run"))?;
    Ok((median_ms(times), out))
}

fn run(postgres: bool, n: usize) -> anyhow::Result<()> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("huying-stats-bench-{id}"));
    std::fs::create_dir_all(&dir)?;
    let mut cleanup = Cleanup {
        dir: dir.clone(),
        drop_pg: None,
    };
    let url = if postgres {
        let admin = std::env::var("HUYING_BENCH_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_PG_URL.to_string());
        let name = format!("huying_sbench_{}", &id[..12]);
        let mut c = PgConnection::establish(&admin)?;
        c.batch_execute(&format!("CREATE DATABASE \"{name}\""))?;
        let mut u = url::Url::parse(&admin)?;
        u.set_path(&name);
        cleanup.drop_pg = Some((admin, name));
        u.to_string()
    } else {
        format!("sqlite://{}", dir.join("huying.db").display())
    };
    let mut settings = Settings::load_with_env(None, &[])?;
    settings.database.url = SecretString::from(url);
    let db = Db::connect(&settings)?;
    db.migrate()?;
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let now: DateTime<Utc> = round_ts(Utc::now()).and_utc();
    let demo = huying::cli::seed_demo(&mut conn, "YC", Some("bench-pass-123"), now.naive_utc())
        .map_err(|e| anyhow::anyhow!("seed: {e}"))?;
    let compounds: Vec<(i64, i64)> = demo
        .compounds
        .iter()
        .map(|c| (c.id, c.parent_id.unwrap_or(-1)))
        .collect();
    let categories: Vec<i64> = demo.categories.iter().map(|c| c.id).collect();
    let resident = demo.residents.first().map(|r| r.id).unwrap_or(1);
    let mut rng = StdRng::seed_from_u64(7);
    let t0 = Instant::now();
    let mut done = 0;
    let mut events = 0;
    while done < n {
        let end = (done + BATCH).min(n);
        let batch: Vec<_> = (done..end)
            .map(|i| {
                ticket(
                    i,
                    &mut rng,
                    demo.street.id,
                    &compounds,
                    &categories,
                    resident,
                    now.naive_utc(),
                )
            })
            .collect();
        events += batch.iter().map(|b| b.1.len()).sum::<usize>();
        insert(&mut conn, &batch)?;
        done = end;
        if done % 100_000 == 0 {
            eprintln!("  … {done} tickets");
        }
    }
    if postgres {
        conn.batch_execute("VACUUM ANALYZE tickets")?;
        conn.batch_execute("VACUUM ANALYZE ticket_events")?;
    } else {
        conn.batch_execute("ANALYZE")?;
    }
    let backend = if postgres { "PostgreSQL" } else { "SQLite" };
    println!(
        "Fill ({backend}): {n} tickets + {events} events in {:.1} s.",
        t0.elapsed().as_secs_f64()
    );
    let range = stats::parse_range(None, None, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    let community = compounds.first().map(|c| c.1);
    println!();
    println!("| backend | call (last 30 days) | scope | tickets in range | median of 5, ms |");
    println!("|---|---|---|---|---|");
    for (label, scope) in [
        (
            "street",
            StatsScope {
                street_id: Some(demo.street.id),
                community_id: None,
            },
        ),
        (
            "community",
            StatsScope {
                street_id: Some(demo.street.id),
                community_id: community,
            },
        ),
    ] {
        let err = |e: huying::error::AppError| anyhow::anyhow!("{e}");
        let (ms, s) = time(|| stats::summary(&mut conn, &scope, &range, now).map_err(err))?;
        println!(
            "| {backend} | summary | {label} | {} | {ms:.0} |",
            s.tickets
        );
        let (ms, _) = time(|| stats::trend(&mut conn, &scope, &range).map_err(err))?;
        println!("| {backend} | trend | {label} | {} | {ms:.0} |", s.tickets);
        let (ms, _) = time(|| stats::by_category(&mut conn, &scope, &range).map_err(err))?;
        println!(
            "| {backend} | categories | {label} | {} | {ms:.0} |",
            s.tickets
        );
        let (ms, _) = time(|| {
            stats::ranking(
                &mut conn,
                &scope,
                &range,
                RankUnit::Compound,
                RankSort::ResolutionRate,
                now,
            )
            .map_err(err)
        })?;
        println!(
            "| {backend} | ranking (compounds) | {label} | {} | {ms:.0} |",
            s.tickets
        );
        let (ms, _) = time(|| stats::flows(&mut conn, &scope, &range).map_err(err))?;
        println!("| {backend} | flows | {label} | {} | {ms:.0} |", s.tickets);
        let (ms, o) = time(|| stats::overdue_list(&mut conn, &scope, now).map_err(err))?;
        println!(
            "| {backend} | overdue list ({} overdue) | {label} | {} | {ms:.0} |",
            o.total, s.tickets
        );
    }
    drop(conn);
    drop(db);
    drop(cleanup);
    Ok(())
}
