//! Notification delivery benchmark (not a test): fills the outbox of a fresh database through the
//! service's own create-ticket path, then measures the real dispatcher delivering N SMS to an HTTP
//! gateway stand-in and N emails to an SMTP sink, both started in-process on 127.0.0.1, against
//! the engine's floor (the dispatcher's claim and record statements with no delivery) and the
//! receivers' own rate (the same senders with no database).
//!
//! ```text
//! cargo bench --bench dispatch_load -- --backend sqlite
//! cargo bench --bench dispatch_load -- --backend postgres   # HUYING_BENCH_POSTGRES_URL
//! ```
//!
//! Options: `--backend sqlite|postgres` (default sqlite), `--notifications N` per channel (default
//! 5000), `--in-flight K` deliveries at once (default: what the service derives from its settings),
//! `--smtp-pool P` (default `email.smtp.pool_size`), `--smtp HOST:PORT` to send the email to that
//! server (plain SMTP, no TLS) instead of the built-in sink. Results are markdown table rows on
//! stdout; progress goes to stderr. See docs/benchmarks.md.
//!
//! A module of its entry `benches/bin/dispatch_load.rs` and of `benches/all.rs`, which runs
//! [`run`] with its own [`Args`] and takes the [`ResultRow`]s it returns.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::prelude::*;
use futures::StreamExt;
use huying::auth::AuthUser;
use huying::config::{Settings, SmsProviderKind, SmtpTls};
use huying::db::notify_schema::notifications;
use huying::db::schema::users;
use huying::db::{round_ts, write_tx, Db, DbConn};
use huying::domain::role::Role;
use huying::domain::ticket::Urgency;
use huying::notify::dispatch::Dispatcher;
use huying::notify::email::Mailer;
use huying::notify::inbox::{self, NotificationSettings};
use huying::notify::{templates, NotificationRow};
use huying::service::sla::SlaEngine;
use huying::service::tickets::{self, CreateTicket, Location};
use huying::sms::{SmsMessage, SmsSender};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::*;

const GATEWAY_AUTH: &str = "Bearer bench-gateway-token";
/// Staff member left on SMS (the default): the SMS rows and the floor's rows.
const SMS_STAFF: &str = "yc-c1-p1";
/// Staff member switched to email only.
const EMAIL_STAFF: &str = "yc-c2-p1";
const EMAIL_ADDRESS: &str = "secretary@compound.test";
/// Tickets created per write transaction during the fill.
const FILL_BATCH: usize = 100;

#[derive(Debug, Clone)]
pub struct Args {
    pub backend: Backend,
    pub notifications: usize,
    pub in_flight: Option<usize>,
    pub smtp_pool: Option<u32>,
    pub smtp: Option<String>,
}

const USAGE: &str = "usage: cargo bench --bench dispatch_load -- [--backend sqlite|postgres] \
[--notifications N] [--in-flight K] [--smtp-pool P] [--smtp HOST:PORT]";

fn parse_args(raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        backend: Backend::Sqlite,
        notifications: 5_000,
        in_flight: None,
        smtp_pool: None,
        smtp: None,
    };
    let mut it = raw;
    while let Some(a) = it.next() {
        match a.as_str() {
            // `cargo bench` appends `--bench` for harness = false targets.
            "--bench" => {}
            "--backend" => args.backend = backend_arg(it.next())?,
            "--notifications" => args.notifications = number("--notifications", it.next())?,
            "--in-flight" => args.in_flight = Some(number("--in-flight", it.next())?),
            "--smtp-pool" => args.smtp_pool = Some(number("--smtp-pool", it.next())?),
            "--smtp" => {
                let v = it.next().unwrap_or_default();
                let ok = v
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !ok {
                    return Err(format!("--smtp HOST:PORT, got {v:?}"));
                }
                args.smtp = Some(v);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if !(1..=1_000_000).contains(&args.notifications) {
        return Err("--notifications must be 1–1000000".into());
    }
    if args.in_flight.is_some_and(|k| !(1..=1024).contains(&k)) {
        return Err("--in-flight must be 1–1024".into());
    }
    if args.smtp_pool.is_some_and(|p| !(1..=256).contains(&p)) {
        return Err("--smtp-pool must be 1–256".into());
    }
    Ok(args)
}

pub fn main() -> ExitCode {
    main_with(parse_args(std::env::args().skip(1)), run)
}

// ------------------------------------------------------------------ SMS gateway stand-in

#[derive(Default)]
struct GatewayStats {
    received: AtomicUsize,
    /// Client connections seen: how many the provider's HTTP client keeps open.
    peers: Mutex<HashSet<SocketAddr>>,
}

/// Answers as the generic gateway the `http` provider talks to: `POST {phone, text, template,
/// params}` with the configured `Authorization`, 200 with a JSON receipt.
async fn gateway_send(
    stats: web::Data<GatewayStats>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if auth != Some(GATEWAY_AUTH) {
        return HttpResponse::Unauthorized().json(json!({"ok": false, "error": "bad token"}));
    }
    let complete = ["phone", "text", "template"]
        .iter()
        .all(|k| body[*k].as_str().is_some_and(|s| !s.is_empty()))
        && body["params"].is_object();
    if !complete {
        return HttpResponse::BadRequest().json(json!({"ok": false, "error": "bad message"}));
    }
    let n = stats.received.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(peer) = req.peer_addr() {
        if let Ok(mut p) = stats.peers.lock() {
            p.insert(peer);
        }
    }
    HttpResponse::Ok().json(json!({"ok": true, "message_id": format!("bench-{n}")}))
}

/// Two workers: one per core, so the stand-in is not what limits the dispatcher.
fn start_gateway(
    stats: Arc<GatewayStats>,
) -> anyhow::Result<(String, actix_web::dev::ServerHandle)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let data = web::Data::from(stats);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/send", web::post().to(gateway_send))
    })
    .workers(2)
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((format!("http://127.0.0.1:{port}/send"), handle))
}

// ------------------------------------------------------------------ SMTP sink

#[derive(Default)]
struct SinkStats {
    received: AtomicUsize,
    open: AtomicUsize,
    max_open: AtomicUsize,
    connections: AtomicUsize,
}

/// A minimal SMTP server that accepts every message and keeps none; on its own two-thread
/// runtime so that it does not compete with the dispatcher's thread.
fn start_smtp_sink(stats: Arc<SinkStats>) -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("smtp-sink".into())
        .spawn(move || {
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return eprintln!("smtp sink: {e}"),
                };
                loop {
                    match listener.accept().await {
                        Ok((sock, _)) => {
                            let stats = stats.clone();
                            tokio::spawn(async move {
                                stats.connections.fetch_add(1, Ordering::Relaxed);
                                let open = stats.open.fetch_add(1, Ordering::Relaxed) + 1;
                                stats.max_open.fetch_max(open, Ordering::Relaxed);
                                if let Err(e) = smtp_session(sock, &stats).await {
                                    eprintln!("smtp sink session: {e}");
                                }
                                stats.open.fetch_sub(1, Ordering::Relaxed);
                            });
                        }
                        Err(e) => eprintln!("smtp sink accept: {e}"),
                    }
                }
            })
        })?;
    Ok(port)
}

async fn smtp_session(sock: tokio::net::TcpStream, stats: &SinkStats) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 huying-bench ESMTP sink\r\n").await?;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .get(..4)
            .map(|v| v.to_ascii_uppercase())
            .unwrap_or_default();
        let reply: &[u8] = match verb.as_slice() {
            b"EHLO" => b"250-huying-bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 26214400\r\n",
            b"HELO" => b"250 huying-bench\r\n",
            b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => b"250 OK\r\n",
            b"DATA" => {
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                loop {
                    line.clear();
                    if r.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                }
                stats.received.fetch_add(1, Ordering::Relaxed);
                b"250 OK queued\r\n"
            }
            b"QUIT" => {
                w.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        w.write_all(reply).await?;
    }
}

// ------------------------------------------------------------------ the outbox

/// 09:00 on a working day in Asia/Shanghai plus `minute` minutes: outside quiet hours, so no SMS
/// is held back. Each phase has its own minute, so a claim as of that minute sees only its rows.
fn morning(minute: i64) -> anyhow::Result<DateTime<Utc>> {
    let t = Shanghai
        .with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("no such local time"))?;
    Ok(t.with_timezone(&Utc) + Duration::minutes(minute))
}

fn staff(conn: &mut DbConn, street: &Street, username: &str) -> anyhow::Result<(i64, i64)> {
    let unit = street
        .staff
        .iter()
        .find(|(u, _)| u == username)
        .map(|(_, id)| *id)
        .ok_or_else(|| anyhow::anyhow!("no demo account {username}"))?;
    let id: i64 = users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .first(conn)?;
    Ok((id, unit))
}

/// `n` residents' calls to `compound` through `tickets::create` (the handler's service call:
/// reference number, SLA clocks, timeline event, outbox rows), `FILL_BATCH` per transaction.
fn create_tickets(
    conn: &mut DbConn,
    street: &Street,
    sla: &SlaEngine,
    compound: i64,
    n: usize,
    label: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let buildings = street
        .compounds
        .iter()
        .find(|(c, _, _)| *c == compound)
        .map(|(_, _, b)| b.clone())
        .unwrap_or_default();
    let mut done = 0;
    while done < n {
        let end = (done + FILL_BATCH).min(n);
        write_tx(conn, |c| -> huying::error::AppResult<()> {
            for i in done..end {
                let resident_id = street.residents[i % street.residents.len()];
                let user = AuthUser {
                    id: resident_id,
                    role: Role::Resident,
                    org_unit_id: None,
                    display_name: "压测居民".into(),
                };
                let title = TITLES[i % TITLES.len()];
                let input = CreateTicket {
                    compound_id: compound,
                    building_id: buildings.get(i % buildings.len().max(1)).copied(),
                    category_id: street.categories[i % street.categories.len()],
                    urgency: Urgency::Normal,
                    title: title.into(),
                    description: format!(
                        "{title}，已经持续好几天了，请尽快安排人员处理。（压测{label} #{i}）"
                    ),
                    location: Some(Location {
                        text: Some("2单元门口".into()),
                        latitude: None,
                        longitude: None,
                        accuracy_m: None,
                    }),
                    source: None,
                    resident_phone: None,
                    resident_name: None,
                    external_ref: None,
                    hide_identity: None,
                };
                tickets::create(c, &user, &input, None, None, sla, now)?;
            }
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("creating tickets: {e}"))?;
        done = end;
    }
    Ok(())
}

/// Outbox rows of `channel` with `status` that fell due at `at`.
fn count_rows(
    conn: &mut DbConn,
    channel: &str,
    status: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let q = notifications::table
        .filter(notifications::channel.eq(channel))
        .filter(notifications::status.eq(status))
        .filter(notifications::next_attempt_at.eq(round_ts(at)))
        .count();
    Ok(q.get_result(conn)?)
}

fn pending_rows(
    conn: &mut DbConn,
    channel: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<NotificationRow>> {
    let q = notifications::table
        .filter(notifications::channel.eq(channel))
        .filter(notifications::status.eq("pending"))
        .filter(notifications::next_attempt_at.eq(round_ts(at)))
        .order(notifications::id.asc())
        .select(NotificationRow::as_select());
    Ok(q.load(conn)?)
}

// ------------------------------------------------------------------ measurements

/// One measured phase.
struct Phase {
    rows: usize,
    elapsed: StdDuration,
    /// Per batch: claim, record (the floor) or the whole `dispatch_once` (the dispatcher).
    batches: Vec<[StdDuration; 2]>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64()
    }
}

fn median_ms(mut v: Vec<StdDuration>) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

/// The dispatcher's database work with no delivery: per batch of `notify.batch`, the claim (the
/// due rows in its order, `FOR UPDATE SKIP LOCKED` on PostgreSQL, marked `sending` by one
/// UPDATE) and the record (one conditional UPDATE per row), each its own write transaction
/// through the same pool.
async fn floor(db: &Db, settings: &Settings, now: DateTime<Utc>) -> anyhow::Result<Phase> {
    let batch = settings.notify.batch;
    let lease = Duration::seconds(settings.notify.claim_lease_secs);
    let start = Instant::now();
    let mut rows = 0;
    let mut batches = Vec::new();
    loop {
        let t0 = Instant::now();
        let ids: Vec<i64> = db
            .write(move |c| {
                let claimed = huying::notify::dispatch::claim(c, now, batch, lease)?;
                Ok(claimed.into_iter().map(|r| r.id).collect())
            })
            .await?;
        let claim = t0.elapsed();
        if ids.is_empty() {
            break;
        }
        rows += ids.len();
        let t1 = Instant::now();
        db.write(move |c| {
            let ts = round_ts(now);
            for id in &ids {
                let q = diesel::update(
                    notifications::table
                        .filter(notifications::id.eq(*id))
                        .filter(notifications::status.eq("sending")),
                )
                .set((
                    notifications::status.eq("sent"),
                    notifications::attempts.eq(1),
                    notifications::locked_until.eq(None::<chrono::NaiveDateTime>),
                    notifications::sent_at.eq(Some(ts)),
                    notifications::last_error.eq(None::<String>),
                    notifications::updated_at.eq(ts),
                ));
                q.execute(c)?;
            }
            Ok(())
        })
        .await?;
        batches.push([claim, t1.elapsed()]);
    }
    Ok(Phase {
        rows,
        elapsed: start.elapsed(),
        batches,
    })
}

/// The same SMS sender the dispatcher holds, `in_flight` at a time, with no database.
async fn sms_only(
    sms: &dyn SmsSender,
    rows: &[NotificationRow],
    public_url: &str,
    in_flight: usize,
) -> anyhow::Result<Phase> {
    let msgs: Vec<SmsMessage> = rows
        .iter()
        .map(|r| {
            let link = format!("{public_url}{}", r.link_path);
            SmsMessage {
                phone: r.address.clone(),
                text: templates::finish_sms(&r.body, &link),
                template: format!("notify_{}", r.kind),
                params: [("link".to_string(), link)].into_iter().collect(),
            }
        })
        .collect();
    let start = Instant::now();
    let results: Vec<_> = futures::stream::iter(&msgs)
        .map(|m| sms.send(m))
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let elapsed = start.elapsed();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        anyhow::bail!("SMS without the database: {e}");
    }
    Ok(Phase {
        rows: results.len(),
        elapsed,
        batches: Vec::new(),
    })
}

/// A mailer like the dispatcher's (its own pool), `in_flight` at a time, with no database.
async fn email_only(
    settings: &Settings,
    rows: &[NotificationRow],
    in_flight: usize,
) -> anyhow::Result<Phase> {
    let mailer = Mailer::new(&settings.email)?;
    let public_url = settings.server.public_url.trim_end_matches('/');
    let start = Instant::now();
    let results: Vec<Result<(), String>> = futures::stream::iter(rows)
        .map(|r| {
            let mailer = &mailer;
            async move {
                let link = format!("{public_url}{}", r.link_path);
                let msg = mailer
                    .message(
                        r.id,
                        &r.address,
                        &r.subject,
                        templates::email_text(&r.body, &link),
                        templates::email_html(&r.subject, &r.body, &link),
                    )
                    .map_err(|e| e.to_string())?;
                mailer.send(msg).await.map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let elapsed = start.elapsed();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        anyhow::bail!("email without the database: {e}");
    }
    Ok(Phase {
        rows: results.len(),
        elapsed,
        batches: Vec::new(),
    })
}

/// The dispatcher's own loop as `serve` runs it under a backlog: batch after batch until a claim
/// comes back empty.
async fn dispatch_all(d: &Dispatcher, now: DateTime<Utc>) -> anyhow::Result<Phase> {
    let start = Instant::now();
    let mut rows = 0;
    let mut batches = Vec::new();
    loop {
        let t0 = Instant::now();
        let r = d
            .dispatch_once(now)
            .await
            .map_err(|e| anyhow::anyhow!("dispatch: {e}"))?;
        if r.retried + r.dead + r.deferred > 0 {
            anyhow::bail!("dispatcher did not send every row: {r:?}");
        }
        if r.claimed == 0 {
            break;
        }
        rows += r.sent;
        batches.push([t0.elapsed(), StdDuration::ZERO]);
    }
    Ok(Phase {
        rows,
        elapsed: start.elapsed(),
        batches,
    })
}

/// Prints the program's row and returns the combined table's.
fn print_row(backend: Backend, channel: &str, receiver: &str, p: &Phase, floor: f64) -> ResultRow {
    report!(
        "| {} | {channel} | {receiver} | {} | {:.2} | {:.0} | {:.2} |",
        backend.name(),
        p.rows,
        p.elapsed.as_secs_f64(),
        p.rate(),
        p.rate() / floor
    );
    // The receivers are named in docs/benchmarks.md; the senders alone are the receivers' rate,
    // so only the dispatcher's rows are set against the floor.
    ResultRow::new(
        backend,
        format!("notifications: {channel}, {} rows", p.rows),
        Measure::PerSecond(p.rate()),
    )
    .floor(channel.ends_with("dispatcher").then_some(floor))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

pub async fn run(args: Args) -> anyhow::Result<Vec<ResultRow>> {
    let n = args.notifications;
    let bench_db = BenchDb::create(args.backend)?;
    let mut settings = bench_settings(&bench_db)?;
    huying::telemetry::init(&settings.log);

    let gateway = Arc::new(GatewayStats::default());
    let (gateway_url, gateway_handle) = start_gateway(gateway.clone())?;
    let sink = Arc::new(SinkStats::default());
    let (smtp_host, smtp_port) = match &args.smtp {
        Some(hp) => {
            let (h, p) = hp
                .rsplit_once(':')
                .ok_or_else(|| anyhow::anyhow!("--smtp HOST:PORT"))?;
            (h.to_string(), p.parse::<u16>()?)
        }
        None => ("127.0.0.1".to_string(), start_smtp_sink(sink.clone())?),
    };
    settings.sms.provider = SmsProviderKind::Http;
    settings.sms.http.url = gateway_url;
    settings.sms.http.auth_header = SecretString::from(GATEWAY_AUTH.to_string());
    settings.email.enabled = true;
    settings.email.from = "呼应 <noreply@huying.test>".into();
    settings.email.smtp.host = smtp_host.clone();
    settings.email.smtp.port = smtp_port;
    settings.email.smtp.tls = SmtpTls::None;
    settings.email.smtp.timeout_secs = 5;
    if let Some(p) = args.smtp_pool {
        settings.email.smtp.pool_size = p;
    }

    let db = Db::connect(&settings)?;
    huying::startup::migrate(&db)?;
    let sms = huying::sms::from_settings(&settings.sms)?;
    let mut dispatcher = Dispatcher::new(&settings, db.clone(), sms.clone())?;
    if let Some(k) = args.in_flight {
        dispatcher = dispatcher.with_in_flight(k);
    }
    let in_flight = dispatcher.in_flight();
    let (t_floor, t_sms, t_email) = (morning(0)?, morning(1)?, morning(2)?);
    eprintln!(
        "backend {}, {n} notifications per channel, {in_flight} in flight, batches of {}, SMTP pool {}",
        args.backend.name(),
        settings.notify.batch,
        settings.email.smtp.pool_size
    );

    // The outbox, through the service: each ticket tells its compound's one staff member.
    let (sms_rows, email_rows) = {
        let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
        let street = seed(&mut conn, round_ts(t_floor), 0)?;
        let sla = SlaEngine::with_defaults()?;
        let (_, sms_compound) = staff(&mut conn, &street, SMS_STAFF)?;
        let (email_user, email_compound) = staff(&mut conn, &street, EMAIL_STAFF)?;
        // What `PUT /api/v1/me/notification-settings` stores for that member.
        write_tx(&mut conn, |c| {
            inbox::put_settings(
                c,
                email_user,
                &NotificationSettings {
                    sms: false,
                    inapp: true,
                    email: true,
                    email_address: Some(EMAIL_ADDRESS.into()),
                },
                round_ts(t_floor),
            )
        })
        .map_err(|e| anyhow::anyhow!("notification settings: {e}"))?;
        let t0 = Instant::now();
        for (compound, label, at) in [
            (sms_compound, "基线", t_floor),
            (sms_compound, "短信", t_sms),
            (email_compound, "邮件", t_email),
        ] {
            create_tickets(&mut conn, &street, &sla, compound, n, label, at)?;
        }
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "created {} tickets in {secs:.1} s ({:.0} tickets/s)",
            3 * n,
            (3 * n) as f64 / secs
        );
        for (channel, at) in [("sms", t_floor), ("sms", t_sms), ("email", t_email)] {
            let c = count_rows(&mut conn, channel, "pending", at)?;
            if c != n as i64 {
                anyhow::bail!("expected {n} pending {channel} rows at {at}, found {c}");
            }
        }
        if args.backend == Backend::Postgres {
            use diesel::connection::SimpleConnection;
            // What autovacuum does shortly after a bulk load.
            if let DbConn::Pg(c) = &mut *conn {
                c.batch_execute("VACUUM ANALYZE notifications")?;
            }
        }
        (
            pending_rows(&mut conn, "sms", t_sms)?,
            pending_rows(&mut conn, "email", t_email)?,
        )
    };
    report!(
        "Outbox: {n} tickets per phase through `tickets::create` (one compound staff member each: \
         {SMS_STAFF} on SMS, {EMAIL_STAFF} on email only), {in_flight} deliveries in flight, \
         batches of {}, SMTP pool {}. Load average before: {}.",
        settings.notify.batch,
        settings.email.smtp.pool_size,
        loadavg()
    );
    report!();
    report!("| backend | channel | receiver | rows | seconds | rows/s | of floor |");
    report!("|---|---|---|---|---|---|---|");

    let floor_phase = floor(&db, &settings, t_floor).await?;
    let floor_rate = floor_phase.rate();
    let mut rows = Vec::new();
    rows.push(print_row(
        args.backend,
        "floor: claim + record, no delivery",
        "— (the dispatcher's statements, diesel)",
        &floor_phase,
        floor_rate,
    ));

    let gateway_label = "HTTP gateway stand-in (actix, 2 workers)";
    let mut problems = Vec::new();
    let before = gateway.received.load(Ordering::Relaxed);
    let p = sms_only(
        sms.as_ref(),
        &sms_rows,
        settings.server.public_url.trim_end_matches('/'),
        in_flight,
    )
    .await?;
    rows.push(print_row(
        args.backend,
        "SMS, sender only (no database)",
        gateway_label,
        &p,
        floor_rate,
    ));
    let got = gateway.received.load(Ordering::Relaxed) - before;
    if got != n {
        problems.push(format!(
            "the gateway received {got} SMS from the sender alone, expected {n}"
        ));
    }
    let before = gateway.received.load(Ordering::Relaxed);
    if let Ok(mut peers) = gateway.peers.lock() {
        peers.clear();
    }
    let sms_phase = dispatch_all(&dispatcher, t_sms).await?;
    rows.push(print_row(
        args.backend,
        "SMS, dispatcher",
        gateway_label,
        &sms_phase,
        floor_rate,
    ));
    let sms_received = gateway.received.load(Ordering::Relaxed) - before;
    let sms_connections = gateway.peers.lock().map(|p| p.len()).unwrap_or(0);

    let sink_label = match &args.smtp {
        Some(hp) => format!(
            "SMTP server {hp}, lettre pool {}",
            settings.email.smtp.pool_size
        ),
        None => format!(
            "SMTP sink (tokio, 2 threads), lettre pool {}",
            settings.email.smtp.pool_size
        ),
    };
    let before = sink.received.load(Ordering::Relaxed);
    let p = email_only(&settings, &email_rows, in_flight).await?;
    rows.push(print_row(
        args.backend,
        "email, sender only (no database)",
        &sink_label,
        &p,
        floor_rate,
    ));
    let got = sink.received.load(Ordering::Relaxed) - before;
    if args.smtp.is_none() && got != n {
        problems.push(format!(
            "the SMTP sink received {got} emails from the mailer alone, expected {n}"
        ));
    }
    let before = sink.received.load(Ordering::Relaxed);
    let email_phase = dispatch_all(&dispatcher, t_email).await?;
    rows.push(print_row(
        args.backend,
        "email, dispatcher",
        &sink_label,
        &email_phase,
        floor_rate,
    ));
    let email_received = sink.received.load(Ordering::Relaxed) - before;

    report!();
    report!(
        "Per batch of {} (median ms): floor claim {:.2}, floor record {:.2}; dispatcher SMS {:.2}, \
         email {:.2}. Gateway connections during the SMS phase: {sms_connections}; SMTP \
         connections: {} opened, {} at once at most. Load average after: {}.",
        settings.notify.batch,
        median_ms(floor_phase.batches.iter().map(|b| b[0]).collect()),
        median_ms(floor_phase.batches.iter().map(|b| b[1]).collect()),
        median_ms(sms_phase.batches.iter().map(|b| b[0]).collect()),
        median_ms(email_phase.batches.iter().map(|b| b[0]).collect()),
        sink.connections.load(Ordering::Relaxed),
        sink.max_open.load(Ordering::Relaxed),
        loadavg()
    );

    // Every row delivered once and recorded as sent.
    {
        let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
        for (channel, at, phase) in [
            ("sms", t_floor, &floor_phase),
            ("sms", t_sms, &sms_phase),
            ("email", t_email, &email_phase),
        ] {
            let sent = count_rows(&mut conn, channel, "sent", at)?;
            if sent != n as i64 || phase.rows != n {
                problems.push(format!(
                    "{channel} at {at}: {} delivered, {sent} rows sent, expected {n}",
                    phase.rows
                ));
            }
        }
    }
    if sms_received != n {
        problems.push(format!(
            "the gateway received {sms_received} SMS, expected {n}"
        ));
    }
    if args.smtp.is_none() && email_received != n {
        problems.push(format!(
            "the SMTP sink received {email_received} emails, expected {n}"
        ));
    }
    gateway_handle.stop(true).await;
    drop(dispatcher);
    drop(db);
    drop(bench_db);
    if !problems.is_empty() {
        anyhow::bail!(
            "not every notification was delivered: {}",
            problems.join("; ")
        );
    }
    eprintln!("all {n} rows per channel delivered and recorded as sent");
    Ok(rows)
}
