//! Honest readiness and no silent fresh start: `/readyz` is 503 while the SQLite file is gone
//! or replaced and while writes cannot get the database; a restart with the file missing exits
//! 2 instead of beginning again with an empty database.

use std::process::Stdio;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::Value;

use crate::cli::{free_port, huying, until_ready};
use crate::helpers::{Backend, TestApp, TestDb};

fn sqlite_path(url: &str) -> std::path::PathBuf {
    url.strip_prefix("sqlite://").expect("sqlite url").into()
}

async fn readyz(app: &TestApp) -> (StatusCode, Value) {
    app.get("/readyz", None).await
}

#[actix_web::test]
async fn readyz_is_503_while_another_writer_holds_the_database() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    assert_eq!(readyz(&app).await.0, StatusCode::OK);
    let mut other =
        SqliteConnection::establish(&sqlite_path(&app.db.url).to_string_lossy()).expect("open");
    other.batch_execute("BEGIN IMMEDIATE").expect("lock");
    let started = std::time::Instant::now();
    let (s, v) = readyz(&app).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["details"]["reason"], "write_blocked", "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the probe waits briefly"
    );
    other.batch_execute("ROLLBACK").expect("unlock");
    assert_eq!(readyz(&app).await.0, StatusCode::OK);
}

/// Every pooled connection busy (PostgreSQL, pool of two: two calls wait on a lock another
/// session holds on the reference counters): `/readyz` says `pool_exhausted` at once instead of
/// queueing behind them; free again, 200.
#[actix_web::test]
async fn readyz_is_503_while_every_pooled_connection_is_in_use() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |s| s.database.pool_size = 2).await
    else {
        return;
    };
    let w = crate::tickets::world(&app).await;
    assert_eq!(readyz(&app).await.0, StatusCode::OK);
    let mut other = PgConnection::establish(&app.db.url).expect("open");
    other
        .batch_execute("BEGIN; LOCK TABLE ticket_sequences IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    // Two calls take both connections and wait for the lock.
    let calls = futures::future::join(
        crate::tickets::create(&app, &w, "连接池测试一"),
        crate::tickets::create(&app, &w, "连接池测试二"),
    );
    let probe = async {
        let mut seen = None;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let started = std::time::Instant::now();
            let (s, v) = readyz(&app).await;
            if s == StatusCode::SERVICE_UNAVAILABLE && v["details"]["reason"] == "pool_exhausted" {
                seen = Some(started.elapsed());
                break;
            }
        }
        other.batch_execute("ROLLBACK").expect("unlock");
        seen
    };
    let (_, seen) = futures::future::join(calls, probe).await;
    let took = seen.expect("readyz reported pool_exhausted while both connections waited");
    assert!(
        took < Duration::from_secs(2),
        "answered without queueing: {took:?}"
    );
    // The two calls went through once the lock was gone, and the pool is free again.
    let (_, list) = app.get("/api/v1/tickets", Some(&w.resident)).await;
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(readyz(&app).await.0, StatusCode::OK);
}

/// PostgreSQL drops every pooled connection (as on a server restart): a connection handed out
/// again without a check (returned moments ago) may fail one request with a 503, is checked
/// before its next use and replaced; within the pool's size the service answers again, and
/// then every request succeeds.
#[actix_web::test]
async fn connections_the_server_dropped_are_replaced() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |s| s.database.pool_size = 2).await
    else {
        return;
    };
    app.seed();
    let staff = app.login_staff("yc-c1-p1").await;
    for _ in 0..4 {
        let (s, v) = app.get("/api/v1/tickets", Some(&staff)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let mut admin = PgConnection::establish(&app.db.url).expect("open");
    let dropped: Vec<bool> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND backend_type = 'client backend'",
    )
    .load::<Dropped>(&mut admin)
    .expect("terminate")
    .into_iter()
    .map(|d| d.done)
    .collect();
    assert!(
        !dropped.is_empty(),
        "the service's connections were dropped"
    );
    let mut failed = 0;
    let mut answered = false;
    for _ in 0..=2 {
        let (s, v) = app.get("/api/v1/tickets", Some(&staff)).await;
        if s == StatusCode::OK {
            answered = true;
            break;
        }
        assert_eq!(
            s,
            StatusCode::SERVICE_UNAVAILABLE,
            "a lost connection is a 503: {v}"
        );
        failed += 1;
    }
    assert!(answered, "answered again after {failed} failed requests");
    assert!(failed <= 2, "at most one failure per pooled connection");
    for _ in 0..6 {
        let (s, v) = app.get("/api/v1/tickets", Some(&staff)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
}

#[derive(QueryableByName)]
struct Dropped {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    done: bool,
}

/// SQLite: calls waiting on another process's write lock wait in the writer's queue, not on
/// pooled connections: reads go on being answered, `/readyz` says `write_blocked`, and the
/// calls go through once the lock is gone.
#[actix_web::test]
async fn sqlite_writes_waiting_on_a_lock_leave_reads_answered() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |s| s.database.pool_size = 2).await else {
        return;
    };
    let w = crate::tickets::world(&app).await;
    let mut other =
        SqliteConnection::establish(&sqlite_path(&app.db.url).to_string_lossy()).expect("open");
    other.batch_execute("BEGIN IMMEDIATE").expect("lock");
    let calls = futures::future::join(
        crate::tickets::create(&app, &w, "写锁测试一"),
        crate::tickets::create(&app, &w, "写锁测试二"),
    );
    let probe = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut reads = 0;
        for _ in 0..5 {
            let (s, list) = app.get("/api/v1/tickets", Some(&w.resident)).await;
            assert_eq!(s, StatusCode::OK, "{list}");
            assert_eq!(list["total"], 0, "nothing committed yet: {list}");
            reads += 1;
        }
        let (s, v) = readyz(&app).await;
        other.batch_execute("ROLLBACK").expect("unlock");
        (reads, s, v)
    };
    let (_, (reads, s, v)) = futures::future::join(calls, probe).await;
    assert_eq!(reads, 5);
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["details"]["reason"], "write_blocked", "{v}");
    let (_, list) = app.get("/api/v1/tickets", Some(&w.resident)).await;
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(readyz(&app).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn readyz_is_503_when_the_database_file_is_deleted_or_replaced() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let path = sqlite_path(&app.db.url);
    let copy = path.with_extension("copy");
    std::fs::copy(&path, &copy).expect("copy");
    std::fs::remove_file(&path).expect("delete");
    let (s, v) = readyz(&app).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["details"]["reason"], "database_file_gone", "{v}");
    // Another file under the same name is not the database this process writes into.
    std::fs::rename(&copy, &path).expect("put back a copy");
    let (s, v) = readyz(&app).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["details"]["reason"], "database_file_replaced", "{v}");
}

#[actix_web::test]
async fn readyz_is_200_on_both_backends_when_all_is_well() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn(backend).await else {
            continue;
        };
        let (s, v) = readyz(&app).await;
        assert_eq!(s, StatusCode::OK, "{backend:?}: {v}");
        // The probe leaves no transaction open on the pooled connection it used.
        for _ in 0..5 {
            assert_eq!(readyz(&app).await.0, StatusCode::OK, "{backend:?}");
        }
        let (s, _) = app.get("/api/v1/org/tree", None).await;
        assert_eq!(s, StatusCode::OK);
    }
}

fn wait_ready(port: u16) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(until_ready(&format!("http://127.0.0.1:{port}")))
}

fn readyz_status(port: u16) -> Option<u16> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .ok()
            .map(|r| r.status().as_u16())
    })
}

#[test]
fn a_deleted_database_is_503_while_running_and_a_restart_exits_2() {
    let db = TestDb::create(Backend::Sqlite).expect("sqlite");
    let path = sqlite_path(&db.url);
    let serve = |port: u16| {
        huying()
            .env("DATABASE_URL", &db.url)
            .env("HUYING__DATA__DIR", db.dir().join("data"))
            .env("HUYING__SERVER__BIND", format!("127.0.0.1:{port}"))
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve")
    };
    // First use of an empty directory: the database is created.
    let port = free_port();
    let mut child = serve(port);
    let up = wait_ready(port);
    let status = if up {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        readyz_status(port)
    } else {
        None
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "service did not become ready");
    assert_eq!(status, Some(503), "readyz with the database file deleted");

    // A restart does not begin again with an empty database.
    let out = serve(free_port()).wait_with_output().expect("restart");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("huying migrate"), "{err}");
    assert!(!path.exists(), "no new database was created");

    // Other commands refuse too; `huying migrate` creates one on purpose.
    let out = huying()
        .env("DATABASE_URL", &db.url)
        .args(["sweep", "--once"])
        .output()
        .expect("sweep");
    assert_eq!(out.status.code(), Some(2));
    let out = huying()
        .env("DATABASE_URL", &db.url)
        .arg("migrate")
        .output()
        .expect("migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(path.exists());
}
