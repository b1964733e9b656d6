//! `huying backup` / `restore` with the real binary: a backup taken while residents are
//! creating tickets and uploading photos holds every ticket (and photo) whose 201 arrived
//! before the backup started; restore refuses a data directory that is not empty; the command
//! says plainly it is not for PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cli::{free_port, huying};
use crate::helpers::{Backend, SmsGateway, TestDb};
use crate::uploads::{pixels, png};

/// The binary on one database and data directory.
fn on(db_url: &str, data: &Path) -> Command {
    let mut c = huying();
    c.env("DATABASE_URL", db_url).env("HUYING__DATA__DIR", data);
    c
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(db_url: &str, data: &Path, sms_url: &str) -> Server {
    let port = free_port();
    let child = on(db_url, data)
        .env("HUYING__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HUYING__SMS__PROVIDER", "http")
        .env("HUYING__SMS__HTTP__URL", sms_url)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await {
            if r.status().is_success() {
                return server;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("service did not become ready");
}

async fn sign_in(client: &reqwest::Client, base: &str, sms: &SmsGateway, phone: &str) -> String {
    let r = client
        .post(format!("{base}/api/v1/auth/otp"))
        .json(&json!({"phone": phone}))
        .send()
        .await
        .expect("otp");
    assert_eq!(r.status(), StatusCode::OK);
    let code = sms.last_code(phone).expect("code");
    let v: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"phone": phone, "code": code}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    v["access_token"].as_str().expect("token").to_string()
}

/// What a resident was told was stored, and when the 201 arrived.
#[derive(Debug, Clone)]
struct Acked {
    ticket: i64,
    reference: String,
    token: String,
    at: Instant,
    photo: Option<(String, i64, Instant)>,
}

#[allow(clippy::too_many_arguments)]
async fn write_load(
    client: reqwest::Client,
    base: String,
    token: String,
    compound: i64,
    category: i64,
    resident: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
    count: Arc<AtomicUsize>,
) {
    // At most 9: within the tickets-per-resident-per-day limit.
    for i in 0..9 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let r = client
            .post(format!("{base}/api/v1/tickets"))
            .bearer_auth(&token)
            .json(&json!({
                "compound_id": compound, "category_id": category,
                "title": format!("备份测试 {resident}-{i}"), "description": "写入压力下的备份"
            }))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), StatusCode::CREATED);
        let at = Instant::now();
        let t: Value = r.json().await.expect("json");
        let mut a = Acked {
            ticket: t["id"].as_i64().expect("id"),
            reference: t["reference"].as_str().expect("ref").to_string(),
            token: token.clone(),
            at,
            photo: None,
        };
        if i % 2 == 0 {
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(png()).file_name("p.png"),
            );
            let r = client
                .post(format!("{base}/api/v1/tickets/{}/attachments", a.ticket))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await
                .expect("upload");
            assert_eq!(r.status(), StatusCode::CREATED);
            let at = Instant::now();
            let p: Value = r.json().await.expect("json");
            a.photo = Some((
                p["url"].as_str().expect("url").to_string(),
                p["size_bytes"].as_i64().expect("size"),
                at,
            ));
        }
        acked.lock().expect("lock").push(a);
        count.fetch_add(1, Ordering::SeqCst);
    }
}

#[actix_web::test]
async fn a_backup_under_write_load_restores_every_acknowledged_ticket_and_photo() {
    let db = TestDb::create(Backend::Sqlite).expect("sqlite");
    let data = db.dir().join("data");
    let out = on(&db.url, &data)
        .args(["seed-demo", "--password", "demo-pass-123"])
        .output()
        .expect("seed");
    assert!(out.status.success());
    let seed: Value = serde_json::from_slice(&out.stdout).expect("json");
    let compound = seed["compounds"][0]["id"].as_i64().expect("compound");
    let category = seed["categories"][0]["id"].as_i64().expect("category");
    let (sms, sms_url) = SmsGateway::start().await;
    let server = serve(&db.url, &data, &sms_url).await;
    let client = reqwest::Client::new();
    let mut tokens = Vec::new();
    for r in 0..8 {
        tokens.push(sign_in(&client, &server.base, &sms, &format!("1370000000{r}")).await);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(r, token)| {
            actix_web::rt::spawn(write_load(
                client.clone(),
                server.base.clone(),
                token.clone(),
                compound,
                category,
                r,
                stop.clone(),
                acked.clone(),
                count.clone(),
            ))
        })
        .collect();
    while count.load(Ordering::SeqCst) < 12 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let archive = db.dir().join("backup.tar.gz");
    let started = Instant::now();
    let (url, dir, file) = (db.url.clone(), data.clone(), archive.clone());
    let out = tokio::task::spawn_blocking(move || {
        on(&url, &dir)
            .args(["backup", "--to"])
            .arg(&file)
            .output()
            .expect("backup")
    })
    .await
    .expect("backup thread");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["missing_attachments"], json!([]));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.expect("writer");
    }
    drop(server);
    let acked = acked.lock().expect("lock").clone();
    let before: Vec<&Acked> = acked.iter().filter(|a| a.at < started).collect();
    assert!(before.len() >= 12, "{}", before.len());
    let after = acked.len() - before.len();
    eprintln!(
        "{} tickets acknowledged before the backup began, {after} during or after it",
        before.len()
    );

    // Into a new, empty data directory.
    let fresh = TestDb::create(Backend::Sqlite).expect("sqlite");
    let fresh_data = fresh.dir().join("data");
    let out = on(&fresh.url, &fresh_data)
        .args(["restore", "--from"])
        .arg(&archive)
        .output()
        .expect("restore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second restore over it is refused, and changes nothing.
    let out = on(&fresh.url, &fresh_data)
        .args(["restore", "--from"])
        .arg(&archive)
        .output()
        .expect("restore again");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));

    let server = serve(&fresh.url, &fresh_data, &sms_url).await;
    for a in before {
        let r = client
            .get(format!("{}/api/v1/tickets/{}", server.base, a.ticket))
            .bearer_auth(&a.token)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::OK, "ticket {}", a.ticket);
        let t: Value = r.json().await.expect("json");
        assert_eq!(t["reference"], a.reference.as_str());
        if let Some((url, size, at)) = &a.photo {
            if *at >= started {
                continue;
            }
            let r = client
                .get(format!("{}{url}", server.base))
                .bearer_auth(&a.token)
                .send()
                .await
                .expect("photo");
            assert_eq!(r.status(), StatusCode::OK, "photo of ticket {}", a.ticket);
            let bytes = r.bytes().await.expect("bytes");
            assert_eq!(bytes.len() as i64, *size);
            assert_eq!(pixels(&bytes), pixels(&png()));
        }
    }
}

#[test]
fn backup_and_restore_refuse_postgres_and_say_what_to_use() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("huying-pgb-{}", uuid::Uuid::new_v4().simple()));
    for args in [["backup", "--to"], ["restore", "--from"]] {
        let out = on("postgres://nobody@127.0.0.1:1/none", &dir)
            .args(args)
            .arg(dir.join("x.tar.gz"))
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("pg_dump -Fc") && err.contains("pg_restore"),
            "{err}"
        );
    }
    assert!(!dir.exists());
}
