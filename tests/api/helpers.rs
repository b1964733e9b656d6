//! The test app: the real service on port 0 with a fresh database (SQLite file or a new
//! PostgreSQL database), a real HTTP SMS gateway stand-in, and a clock the test moves.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{Duration, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use huying::config::{Settings, SmsProviderKind};
use huying::domain::clock::{Clock, ManualClock};
use huying::startup::Application;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const DEMO_PASSWORD: &str = "demo-pass-123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `mod NAME { sqlite(), postgres() }` running the async fn `NAME(app)` on both.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[actix_web::test]
                async fn sqlite() {
                    if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await {
                        super::$name(app).await;
                    }
                }
                #[actix_web::test]
                async fn postgres() {
                    if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            }
        )+
    };
}

/// Like `both_backends!`, with the settings changed by `$configure` (a `fn(&mut Settings)` in
/// the calling module)
/// before the app starts.
#[macro_export]
macro_rules! both_backends_with {
    ($configure:ident; $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[actix_web::test]
                async fn sqlite() {
                    if let Some(app) = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, super::$configure).await {
                        super::$name(app).await;
                    }
                }
                #[actix_web::test]
                async fn postgres() {
                    if let Some(app) = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, super::$configure).await {
                        super::$name(app).await;
                    }
                }
            }
        )+
    };
}

/// What the SMS gateway stand-in received.
#[derive(Debug, Clone)]
pub struct ReceivedSms {
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Clone, Default)]
pub struct SmsGateway {
    pub received: Arc<Mutex<Vec<ReceivedSms>>>,
    /// 0 = answer 200; otherwise answer with this status.
    pub fail_with: Arc<AtomicU16>,
}

impl SmsGateway {
    pub async fn start() -> (SmsGateway, String) {
        let gw = SmsGateway::default();
        let data = web::Data::new(gw.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind gateway");
        let port = listener.local_addr().expect("addr").port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/send", web::post().to(gateway_send))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        actix_web::rt::spawn(server);
        (gw, format!("http://127.0.0.1:{port}/send"))
    }

    pub fn messages(&self) -> Vec<ReceivedSms> {
        self.received.lock().expect("lock").clone()
    }

    /// The last sign-in code sent to `phone`.
    pub fn last_code(&self, phone: &str) -> Option<String> {
        self.messages()
            .iter()
            .rev()
            .find(|m| m.body["phone"] == phone)
            .and_then(|m| m.body["params"]["code"].as_str().map(str::to_string))
    }
}

async fn gateway_send(
    gw: web::Data<SmsGateway>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let status = gw.fail_with.load(Ordering::SeqCst);
    if status != 0 {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
            .body("gateway says no");
    }
    gw.received.lock().expect("lock").push(ReceivedSms {
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: body.into_inner(),
    });
    HttpResponse::Ok().json(json!({"ok": true}))
}

pub struct TestDb {
    #[allow(dead_code)]
    pub backend: Backend,
    pub url: String,
    drop_pg: Option<(String, String)>,
    dir: std::path::PathBuf,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.drop_pg.take() {
            if let Ok(mut c) = PgConnection::establish(&admin_url) {
                let _ =
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Postgres URL for tests, or `None` (loudly) when not configured. With
/// `HUYING_REQUIRE_POSTGRES=1` (CI) a missing URL fails the test instead.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("HUYING_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("HUYING_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("HUYING_REQUIRE_POSTGRES=1 but HUYING_TEST_POSTGRES_URL is not set");
            }
            // Written past the test harness's output capture so a plain `cargo test` shows it.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (postgres): HUYING_TEST_POSTGRES_URL is not set; this PostgreSQL test did not run"
            );
            None
        }
    }
}

impl TestDb {
    pub fn create(backend: Backend) -> Option<TestDb> {
        huying::db::init_openssl();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("huying-test-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        match backend {
            Backend::Sqlite => Some(TestDb {
                backend,
                url: format!("sqlite://{}", dir.join("huying.db").display()),
                drop_pg: None,
                dir,
            }),
            Backend::Postgres => {
                let admin = postgres_admin_url()?;
                let name = format!("huying_t_{id}");
                let mut c =
                    PgConnection::establish(&admin).expect("connect to HUYING_TEST_POSTGRES_URL");
                c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
                    .expect("create test database");
                let mut url = url::Url::parse(&admin).expect("postgres url");
                url.set_path(&name);
                Some(TestDb {
                    backend,
                    url: url.to_string(),
                    drop_pg: Some((admin, name)),
                    dir,
                })
            }
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub sms: SmsGateway,
    pub settings: Settings,
    /// Held so the database lives as long as the app.
    #[allow(dead_code)]
    pub db: TestDb,
}

pub fn test_settings(db: &TestDb, sms_url: &str) -> Settings {
    let mut s = Settings::load_with_env(None, &[]).expect("default settings");
    s.server.bind = "127.0.0.1:0".into();
    s.server.workers = 2;
    s.database.url = SecretString::from(db.url.clone());
    s.database.pool_size = 3;
    // Tests drive the sweeper themselves, at the instants they choose.
    s.sla.sweeper_enabled = false;
    // Tests drive the notification dispatcher themselves too.
    s.notify.dispatcher_enabled = false;
    s.data.dir = db.dir().join("data");
    s.auth.jwt_secret = SecretString::from(JWT_SECRET.to_string());
    s.sms.provider = SmsProviderKind::Http;
    s.sms.http.url = sms_url.to_string();
    s.sms.http.auth_header = SecretString::from("Bearer gateway-token".to_string());
    // Every test comes from 127.0.0.1 and many sign in again and again: the abuse limits are
    // out of reach unless a test (tests/api/limits.rs) sets them.
    s.limits.otp_per_address_per_hour = 100_000;
    s.limits.otp_per_address_per_day = 100_000;
    s.limits.login_per_address_per_hour = 100_000;
    s.limits.otp_per_phone_per_hour = 100_000;
    s.limits.otp_per_phone_per_day = 100_000;
    s.limits.sms_per_hour = 100_000;
    s.limits.tickets_per_resident_per_day = 100_000;
    s.limits.uploads_per_ticket_per_hour = 100_000;
    s.limits.password_hash_queue = 1_000;
    s
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut Settings),
    ) -> Option<TestApp> {
        let db = TestDb::create(backend)?;
        let (sms, sms_url) = SmsGateway::start().await;
        let mut settings = test_settings(&db, &sms_url);
        configure(&mut settings);
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let app =
            Application::build_with_clock(settings.clone(), clock.clone()).expect("build app");
        let base = format!("http://127.0.0.1:{}", app.port());
        actix_web::rt::spawn(app.run_until_stopped());
        Some(TestApp {
            base,
            client: reqwest::Client::new(),
            clock,
            sms,
            settings,
            db,
        })
    }

    /// A second instance of the service on this app's database (several instances on one
    /// PostgreSQL, as deployed behind nginx), with the same settings and clock. It shares the
    /// first one's database, SMS gateway and clock; the database lives as long as `self`.
    pub async fn spawn_second(&self) -> SecondApp {
        let mut settings = self.settings.clone();
        settings.server.bind = "127.0.0.1:0".into();
        let app =
            Application::build_with_clock(settings, self.clock.clone()).expect("build second app");
        let base = format!("http://127.0.0.1:{}", app.port());
        actix_web::rt::spawn(app.run_until_stopped());
        SecondApp { base }
    }

    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// The demo street, seeded straight into the database with the service's own code.
    pub fn seed(&self) -> Value {
        let db = huying::db::Db::connect(&self.settings).expect("db");
        let mut conn = db.get().expect("conn");
        let now = huying::db::round_ts(self.clock.now());
        let data = huying::cli::seed_demo(&mut conn, "YC", Some(DEMO_PASSWORD), now).expect("seed");
        serde_json::to_value(data).expect("json")
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, token, Some(&body))
            .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::PATCH, path, token, Some(&body))
            .await
    }

    /// Signs in a staff or admin account; returns the whole token response.
    pub async fn login_staff_full(&self, username: &str) -> Value {
        let (s, v) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": username, "password": DEMO_PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "login {username}: {v}");
        v
    }

    pub async fn login_staff(&self, username: &str) -> String {
        self.login_staff_full(username).await["access_token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// Signs in a resident through the real SMS flow; returns the whole token response.
    pub async fn login_resident_full(&self, phone: &str) -> Value {
        let (s, v) = self
            .post("/api/v1/auth/otp", None, json!({"phone": phone}))
            .await;
        assert_eq!(s, StatusCode::OK, "otp: {v}");
        let code = self.sms.last_code(phone).expect("code received by gateway");
        let (s, v) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"phone": phone, "code": code}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "resident login: {v}");
        // Let the next code for this phone go out without waiting for the resend interval.
        self.advance(Duration::seconds(61));
        v
    }

    pub async fn login_resident(&self, phone: &str) -> String {
        self.login_resident_full(phone).await["access_token"]
            .as_str()
            .expect("token")
            .to_string()
    }
}

/// Another instance on a `TestApp`'s database (`TestApp::spawn_second`).
pub struct SecondApp {
    pub base: String,
}

/// The `code` of a JSON error body, asserting the body has a message too.
pub fn error_code(v: &Value) -> &str {
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without message: {v}"
    );
    v["code"].as_str().expect("error code")
}

/// A Beijing wall-clock time as UTC.
pub fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> chrono::DateTime<Utc> {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("local time")
        .with_timezone(&Utc)
}

/// One SLA sweep as of `at`, with the app's policies and calendar, on a connection of its own.
pub fn sweep(app: &TestApp, at: chrono::DateTime<Utc>) -> huying::service::sweeper::SweepReport {
    let db = huying::db::Db::connect(&app.settings).expect("db");
    let mut conn = db.get().expect("conn");
    let sla = huying::service::sla::SlaEngine::from_settings(&app.settings.sla)
        .expect("sla")
        .with_callbacks(&app.settings.callbacks);
    sla.reload(&mut conn).expect("reload");
    huying::service::sweeper::sweep_once(&mut conn, &sla, at, 1000).expect("sweep")
}

/// Notification SMS (not sign-in codes) the gateway received for `phone`.
pub fn sms_to(app: &TestApp, phone: &str) -> Vec<String> {
    app.sms
        .messages()
        .iter()
        .filter(|m| m.body["phone"] == phone && m.body["template"] != "login_code")
        .map(|m| m.body["text"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The phone of a demo account.
pub fn phone_of(seed: &Value, username: &str) -> String {
    seed["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["username"] == username)
        .and_then(|a| a["phone"].as_str())
        .expect("phone")
        .to_string()
}
