//! The write path under load: SQLite's group commit keeps each job's failure to itself, and a
//! process killed in the middle of a burst of calls has lost none it answered 201.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use huying::auth::tokens::JwtKeys;
use huying::db::schema::{app_secrets, categories, org_units, tickets, users};
use huying::db::{writer, Db, Target};
use huying::domain::role::Role;
use huying::error::AppError;

use crate::cli::{free_port, huying, until_ready};
use crate::helpers::{Backend, TestApp, TestDb, JWT_SECRET};

fn secret_row(name: &str) -> impl Fn(&mut huying::db::DbConn) -> Result<(), AppError> + '_ {
    move |c| {
        diesel::insert_into(app_secrets::table)
            .values((
                app_secrets::name.eq(name),
                app_secrets::value.eq("v"),
                app_secrets::created_at.eq(chrono::Utc::now().naive_utc()),
            ))
            .execute(c)?;
        Ok(())
    }
}

/// Jobs that queue up while the writer is busy are committed as one group; the one that breaks
/// a constraint in the database is rolled back alone (its earlier insert too) and gets its
/// error, the others are committed.
#[actix_web::test]
async fn one_failing_job_in_a_group_commit_rolls_back_alone() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let db = Db::connect(&app.settings).expect("db");
    const JOBS: usize = 8;

    // Holds the writer until the other jobs are queued behind it, so that they form one group.
    let running = Arc::new(AtomicBool::new(false));
    let gate = {
        let (db2, probe, running) = (db.clone(), db.clone(), running.clone());
        actix_web::rt::spawn(async move {
            db2.write(move |_| {
                running.store(true, Ordering::SeqCst);
                let until = Instant::now() + Duration::from_secs(10);
                while probe.pool_stats().writer_queue < JOBS && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(writer::current_group())
            })
            .await
        })
    };
    while !running.load(Ordering::SeqCst) {
        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
    }

    let mut jobs = Vec::new();
    for i in 0..JOBS {
        let db = db.clone();
        jobs.push(actix_web::rt::spawn(async move {
            db.write(move |c| {
                let group = writer::current_group();
                if i == 3 {
                    secret_row("gc-bad")(c)?;
                    // The same primary key again: the database refuses it.
                    secret_row("gc-bad")(c)?;
                } else {
                    secret_row(&format!("gc-{i}"))(c)?;
                }
                Ok(group)
            })
            .await
        }));
    }
    let gate_group = gate.await.expect("join").expect("gate job");
    let mut groups = Vec::new();
    for (i, j) in jobs.into_iter().enumerate() {
        let r = j.await.expect("join");
        if i == 3 {
            assert!(r.is_err(), "the job that broke the key must fail");
        } else {
            groups.push(r.expect("the other jobs commit"));
        }
    }
    assert!(groups.iter().all(|g| *g == groups[0]), "{groups:?}");
    assert_ne!(groups[0], gate_group, "the jobs queued behind the gate");

    let names: Vec<String> = db
        .run(|c| {
            Ok(app_secrets::table
                .filter(app_secrets::name.like("gc-%"))
                .select(app_secrets::name)
                .order(app_secrets::name)
                .load(c)?)
        })
        .await
        .expect("names");
    let want: Vec<String> = (0..JOBS)
        .filter(|i| *i != 3)
        .map(|i| format!("gc-{i}"))
        .collect();
    assert_eq!(names, want, "only the failing job's rows are missing");
}

/// The writer leaves checkpoints to its checkpointer thread: a small write, far below the
/// 1,000 WAL pages at which SQLite's own automatic checkpoint would have copied it, reaches the
/// database file itself (read from a copy of the file alone, without its WAL) within seconds.
#[actix_web::test]
async fn the_checkpointer_copies_commits_into_the_database_file() {
    use secrecy::ExposeSecret;
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let target = Target::parse(app.settings.database.url.expose_secret()).expect("target");
    let file = target.sqlite_file().expect("a database file");
    let db = Db::connect(&app.settings).expect("db");
    db.write(secret_row("checkpointed")).await.expect("write");

    let copies =
        std::env::temp_dir().join(format!("huying-ckpt-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&copies).expect("a directory for the copies");
    let until = Instant::now() + Duration::from_secs(10);
    let mut attempt = 0;
    let found = loop {
        attempt += 1;
        // A copy taken while a checkpoint writes may be torn: that attempt just finds nothing.
        let copy = copies.join(format!("copy-{attempt}.db"));
        std::fs::copy(&file, &copy).expect("copy the database file");
        let found = diesel::SqliteConnection::establish(copy.to_str().expect("utf-8 path"))
            .ok()
            .and_then(|mut c| {
                app_secrets::table
                    .filter(app_secrets::name.eq("checkpointed"))
                    .count()
                    .get_result::<i64>(&mut c)
                    .ok()
            })
            == Some(1);
        if found || Instant::now() > until {
            break found;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = std::fs::remove_dir_all(&copies);
    assert!(
        found,
        "the write never reached the database file without its WAL"
    );
}

/// `kill -9` in the middle of a burst of calls: every call answered 201 is in the database
/// afterwards, with the reference number it was answered with.
fn kill_during_create_burst(backend: Backend) {
    let Some(db) = TestDb::create(backend) else {
        return;
    };
    let seeded = huying()
        .env("DATABASE_URL", &db.url)
        .arg("seed-demo")
        .output()
        .expect("seed-demo");
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let mut conn = Target::parse(&db.url)
        .expect("url")
        .connect()
        .expect("connect");
    let residents: Vec<i64> = users::table
        .filter(users::role.eq("resident"))
        .select(users::id)
        .order(users::id)
        .load(&mut conn)
        .expect("residents");
    let compounds: Vec<i64> = org_units::table
        .filter(org_units::kind.eq("compound"))
        .select(org_units::id)
        .load(&mut conn)
        .expect("compounds");
    let category: i64 = categories::table
        .select(categories::id)
        .first(&mut conn)
        .expect("category");
    drop(conn);
    assert!(!residents.is_empty() && !compounds.is_empty());

    let port = free_port();
    let mut child = huying()
        .env("DATABASE_URL", &db.url)
        .env("HUYING__DATA__DIR", db.dir().join("data"))
        .env("HUYING__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HUYING__AUTH__JWT_SECRET", JWT_SECRET)
        .env("HUYING__LIMITS__TICKETS_PER_RESIDENT_PER_DAY", "1000000")
        .env("HUYING__LOG__LEVEL", "warn")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let keys = JwtKeys::new(JWT_SECRET.as_bytes());
    let answered: Arc<Mutex<BTreeMap<i64, String>>> = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let killed_after = rt.block_on(async {
        let base = format!("http://127.0.0.1:{port}");
        assert!(until_ready(&base).await, "service did not become ready");
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for c in 0..16usize {
            let token = keys
                .issue(
                    residents[c % residents.len()],
                    Role::Resident,
                    chrono::Utc::now(),
                    600,
                )
                .expect("token");
            let body = serde_json::json!({
                "compound_id": compounds[c % compounds.len()],
                "category_id": category,
                "title": "楼道灯不亮",
                "description": "压力测试：进程被杀时已答复的工单不得丢失",
            });
            let (client, url, answered) = (
                client.clone(),
                format!("{base}/api/v1/tickets"),
                answered.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for n in 0.. {
                    let r = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("Idempotency-Key", format!("kill-{c}-{n}"))
                        .json(&body)
                        .send()
                        .await;
                    let Ok(r) = r else { break };
                    if r.status() != reqwest::StatusCode::CREATED {
                        continue;
                    }
                    let Ok(v) = r.json::<serde_json::Value>().await else {
                        break;
                    };
                    let id = v["id"].as_i64().expect("id");
                    let reference = v["reference"].as_str().expect("reference").to_string();
                    answered.lock().expect("lock").insert(id, reference);
                }
            }));
        }
        // Kill while calls are in flight, once a good number have been answered.
        let start = Instant::now();
        while answered.lock().expect("lock").len() < 300
            && start.elapsed() < Duration::from_secs(20)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let n = answered.lock().expect("lock").len();
        child.kill().expect("kill -9");
        let _ = child.wait();
        for t in tasks {
            let _ = t.await;
        }
        n
    });
    let answered = answered.lock().expect("lock").clone();
    assert!(
        killed_after >= 300,
        "only {killed_after} calls were answered before the kill"
    );

    let mut conn = Target::parse(&db.url)
        .expect("url")
        .connect()
        .expect("reconnect");
    let stored: BTreeMap<i64, String> = tickets::table
        .select((tickets::id, tickets::reference))
        .load::<(i64, String)>(&mut conn)
        .expect("tickets")
        .into_iter()
        .collect();
    let lost: Vec<_> = answered
        .iter()
        .filter(|(id, reference)| stored.get(id) != Some(*reference))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} calls answered 201 are missing or changed: {:?}",
        lost.len(),
        answered.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn kill_9_during_a_create_burst_loses_no_201_on_sqlite() {
    kill_during_create_burst(Backend::Sqlite);
}

#[test]
fn kill_9_during_a_create_burst_loses_no_201_on_postgres() {
    kill_during_create_burst(Backend::Postgres);
}

#[derive(diesel::QueryableByName)]
struct PlanStep {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// SQLite's plan of a lookup that only a partial index serves when the planner sees the bound
/// value (`users_resident_phone … WHERE role = 'resident'`).
fn resident_by_phone_plan(c: &mut huying::db::DbConn) -> Result<String, AppError> {
    use diesel::sql_types::Text;
    let steps: Vec<PlanStep> =
        diesel::sql_query("EXPLAIN QUERY PLAN SELECT id FROM users WHERE role = ? AND phone = ?")
            .bind::<Text, _>("resident")
            .bind::<Text, _>("13800000000")
            .load(c)?;
    Ok(steps
        .into_iter()
        .map(|s| s.detail)
        .collect::<Vec<_>>()
        .join("; "))
}

/// Requests read on connections that plan a statement once, whatever values it is run with (a
/// cached statement is not parsed again on every run); the dashboard's reads (`run_ranged`) on
/// connections whose planner sees the values. The partial index shows which is which.
#[actix_web::test]
async fn request_readers_plan_once_and_dashboard_readers_see_the_values_on_sqlite() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let db = Db::connect(&app.settings).expect("db");
    let request = db.run(resident_by_phone_plan).await.expect("plan");
    let ranged = db.run_ranged(resident_by_phone_plan).await.expect("plan");
    assert!(
        !request.contains("users_resident_phone"),
        "a request reader's plan must not depend on the bound role: {request}"
    );
    assert!(
        ranged.contains("users_resident_phone"),
        "a dashboard reader sees the bound role and uses the partial index: {ranged}"
    );
}
