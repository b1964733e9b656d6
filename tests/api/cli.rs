//! The `huying` binary itself: configuration errors, `seed-demo`, `user add`, `serve`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use diesel::prelude::*;

use crate::helpers::{postgres_admin_url, Backend, TestDb};

pub fn huying() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_huying"));
    // Keep the developer's own environment out of the way.
    for (k, _) in std::env::vars() {
        if k.starts_with("HUYING__") || k == "DATABASE_URL" || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn config_with_an_unknown_key_fails_to_start_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("huying-cfg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[server]\nbind = \"127.0.0.1:0\"\nbnid = \"oops\"\n").expect("write");
    let out = huying()
        .arg("--config")
        .arg(&file)
        .arg("migrate")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bnid"), "stderr should name the key: {err}");
    assert!(err.contains("configuration error"), "{err}");

    let out = huying()
        .env("HUYING__SMS__PROVIDR", "log")
        .arg("migrate")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("providr"));
    let _ = std::fs::remove_dir_all(dir);
}

fn seed_and_add_user(db: &TestDb) {
    let out = huying()
        .env("DATABASE_URL", &db.url)
        .args(["seed-demo", "--password", "demo-pass-123"])
        .output()
        .expect("seed-demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["street"]["name"], "云城街道");
    assert_eq!(v["communities"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["compounds"].as_array().map(Vec::len), Some(6));
    assert_eq!(v["buildings"].as_array().map(Vec::len), Some(12));
    assert_eq!(v["residents"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["categories"].as_array().map(Vec::len), Some(8));
    // Admin + street + 3 communities + 6 compounds.
    assert_eq!(v["accounts"].as_array().map(Vec::len), Some(11));
    assert!(v["accounts"]
        .as_array()
        .expect("a")
        .iter()
        .all(|a| a["password"] == "demo-pass-123"));

    // Seeding twice is refused, not duplicated.
    let again = huying()
        .env("DATABASE_URL", &db.url)
        .arg("seed-demo")
        .output()
        .expect("seed again");
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(err.matches("错误 / error: ").count(), 1, "{err}");
    assert!(err.contains("(demo_exists)"), "{err}");
    assert!(!err.contains("request failed"), "{err}");

    let mut child = huying()
        .env("DATABASE_URL", &db.url)
        .args([
            "user",
            "add",
            "--username",
            "root-admin",
            "--password-stdin",
            "--role",
            "admin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a-long-password\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["username"], "root-admin");
    assert_eq!(v["role"], "admin");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn serve_and_sign_in(db: &TestDb) {
    let port = free_port();
    let mut child = huying()
        .env("DATABASE_URL", &db.url)
        .env("HUYING__DATA__DIR", db.dir().join("data"))
        .env("HUYING__SERVER__BIND", format!("127.0.0.1:{port}"))
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let result = rt.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let mut up = false;
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    up = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !up {
            return Err("service did not become ready".to_string());
        }
        let r = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "root-admin", "password": "a-long-password"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != reqwest::StatusCode::OK {
            return Err(format!("login answered {}", r.status()));
        }
        Ok(())
    });
    let _ = child.kill();
    let _ = child.wait();
    result.expect("serve works");
}

#[test]
fn binary_seeds_adds_an_admin_and_serves_on_sqlite() {
    let db = TestDb::create(Backend::Sqlite).expect("sqlite");
    seed_and_add_user(&db);
    serve_and_sign_in(&db);
}

#[test]
fn sweep_once_reports_what_it_did_as_json() {
    let db = TestDb::create(Backend::Sqlite).expect("sqlite");
    let out = huying()
        .env("DATABASE_URL", &db.url)
        .args(["sweep", "--once", "--at", "2026-10-08T12:00:00+08:00"])
        .output()
        .expect("sweep");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["examined"], 0);
    assert_eq!(v["escalated"], 0);
    let bad = huying()
        .env("DATABASE_URL", &db.url)
        .args(["sweep", "--once", "--at", "yesterday"])
        .output()
        .expect("sweep");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}

#[test]
fn binary_seeds_adds_an_admin_and_serves_on_postgres() {
    let Some(db) = TestDb::create(Backend::Postgres) else {
        return;
    };
    seed_and_add_user(&db);
    serve_and_sign_in(&db);
}

#[test]
fn postgres_connections_use_tls_when_sslmode_require() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    huying::db::init_openssl();
    let mut url = url::Url::parse(&admin).expect("url");
    url.query_pairs_mut().append_pair("sslmode", "require");
    let mut conn = PgConnection::establish(url.as_str()).expect("TLS connection (sslmode=require)");
    #[derive(QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .expect("query");
    assert!(row.ssl, "connection with sslmode=require is not encrypted");
    // And the binary itself migrates over TLS.
    let db = TestDb::create(Backend::Postgres).expect("pg");
    let mut u = url::Url::parse(&db.url).expect("url");
    u.query_pairs_mut().append_pair("sslmode", "require");
    let out = huying()
        .env("DATABASE_URL", u.as_str())
        .arg("migrate")
        .output()
        .expect("migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
