//! Prometheus metrics (`/metrics`, issue #15): per-process counters recorded where things
//! happen, pool gauges read at scrape time, and gauges derived from the database refreshed at
//! scrape time at most every `metrics.refresh_secs`.
//!
//! Each application owns its registry (no process-wide recorder): several apps in one process
//! (the tests) never mix their numbers. No label carries client input: routes are the matched
//! templates (`/api/v1/tickets/{id}/{action}`), an unmatched path is `unmatched`, and a method
//! outside the standard set is `other`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest, HttpResponse};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use secrecy::ExposeSecret;
use std::sync::atomic::AtomicU64;

use crate::db::notify_schema::notifications;
use crate::db::schema::tickets;
use crate::db::DbConn;
use crate::error::{AppResult, ErrorBody};
use crate::sms::{SmsError, SmsMessage, SmsSender};
use crate::state::AppState;

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelOutcome {
    pub channel: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SmsLabels {
    pub purpose: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelStatus {
    pub level: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabel {
    pub level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelStatus {
    pub channel: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// Every metric of one application, and its registry.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    notifications: Family<ChannelOutcome, Counter>,
    sms: Family<SmsLabels, Counter>,
    sweeper_runs: Family<OutcomeLabel, Counter>,
    sweeper_actions: Family<ActionLabel, Counter>,
    sweeper_last_success: FloatGauge,
    pool_connections: Family<StateLabel, Gauge>,
    pool_max: Gauge,
    pool_waiting: Gauge,
    writer_queue: Gauge,
    live_clients: Gauge,
    tickets: Family<LevelStatus, Gauge>,
    tickets_overdue: Family<LevelLabel, Gauge>,
    outbox_rows: Family<ChannelStatus, Gauge>,
    outbox_oldest_pending: Family<ChannelLabel, FloatGauge>,
    outbox_due_lag: FloatGauge,
    sweeper_lag: FloatGauge,
    db_refresh_errors: Counter,
    db_refreshed_at: FloatGauge,
    /// When the database gauges were last refreshed; also serialises scrapes so that one
    /// never reads a family half cleared by another.
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("huying");
        let m = Metrics {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            notifications: Family::default(),
            sms: Family::default(),
            sweeper_runs: Family::default(),
            sweeper_actions: Family::default(),
            sweeper_last_success: FloatGauge::default(),
            pool_connections: Family::default(),
            pool_max: Gauge::default(),
            pool_waiting: Gauge::default(),
            writer_queue: Gauge::default(),
            live_clients: Gauge::default(),
            tickets: Family::default(),
            tickets_overdue: Family::default(),
            outbox_rows: Family::default(),
            outbox_oldest_pending: Family::default(),
            outbox_due_lag: FloatGauge::default(),
            sweeper_lag: FloatGauge::default(),
            db_refresh_errors: Counter::default(),
            db_refreshed_at: FloatGauge::default(),
            refresh: tokio::sync::Mutex::new(None),
        };
        let build: Family<VersionLabel, Gauge> = Family::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register(
            "build_info",
            "Build of this process (the value is 1)",
            build,
        );
        r.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status",
            m.http_duration.clone(),
        );
        r.register(
            "notifications",
            "Outbox rows this process tried to deliver, by channel and outcome (sent, retry, dead, deferred)",
            m.notifications.clone(),
        );
        r.register(
            "sms",
            "SMS this process sent or failed to send, by purpose (login_code, account_locked, notification) and outcome",
            m.sms.clone(),
        );
        r.register(
            "sweeper_runs",
            "SLA sweeper runs of this process, by outcome (ok, error)",
            m.sweeper_runs.clone(),
        );
        r.register(
            "sweeper_actions",
            "What this process's SLA sweeper did, by action",
            m.sweeper_actions.clone(),
        );
        r.register(
            "sweeper_last_success_timestamp_seconds",
            "Unix time of this process's last successful SLA sweep (0 = none yet)",
            m.sweeper_last_success.clone(),
        );
        r.register(
            "db_pool_connections",
            "Pooled database connections of this process, by state (in_use, idle)",
            m.pool_connections.clone(),
        );
        r.register(
            "db_pool_max_connections",
            "Most connections this process's pool opens (database.pool_size)",
            m.pool_max.clone(),
        );
        r.register(
            "db_pool_waiting",
            "Callers of this process waiting for a pooled connection",
            m.pool_waiting.clone(),
        );
        r.register(
            "db_writer_queue",
            "SQLite: write transactions of this process queued for the writer thread",
            m.writer_queue.clone(),
        );
        r.register(
            "live_stream_clients",
            "Live-update streams (GET /api/v1/stream) open on this process",
            m.live_clients.clone(),
        );
        r.register(
            "tickets",
            "Tickets by level and status (database-wide, same on every instance)",
            m.tickets.clone(),
        );
        r.register(
            "tickets_overdue",
            "Open or acknowledged tickets past their running deadline or marked overdue, by level (database-wide)",
            m.tickets_overdue.clone(),
        );
        r.register(
            "outbox_rows",
            "Outbox rows not yet sent (pending, sending, dead) by channel and status (database-wide)",
            m.outbox_rows.clone(),
        );
        r.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending or sending outbox row, by channel (database-wide; quiet hours hold SMS back)",
            m.outbox_oldest_pending.clone(),
        );
        r.register(
            "outbox_due_lag_seconds",
            "How long the oldest due pending outbox row has been due (0 = none; database-wide)",
            m.outbox_due_lag.clone(),
        );
        r.register(
            "sweeper_lag_seconds",
            "How long the oldest ticket with next_check_at in the past has waited for a sweep (0 = none; database-wide)",
            m.sweeper_lag.clone(),
        );
        r.register(
            "metrics_db_refresh_errors",
            "Scrapes whose database gauges could not be refreshed (the previous values were served)",
            m.db_refresh_errors.clone(),
        );
        r.register(
            "metrics_db_refreshed_timestamp_seconds",
            "Unix time the database gauges were computed",
            m.db_refreshed_at.clone(),
        );
        Metrics { registry: r, ..m }
    }

    pub fn observe_http(&self, method: &'static str, route: String, status: u16, secs: f64) {
        let labels = HttpLabels {
            method,
            route,
            status,
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration.get_or_create(&labels).observe(secs);
    }

    /// One outbox row's delivery outcome (`sent`, `retry`, `dead`, `deferred`).
    pub fn notification(&self, channel: &str, outcome: &'static str) {
        self.notifications
            .get_or_create(&ChannelOutcome {
                channel: channel.to_string(),
                outcome,
            })
            .inc();
    }

    /// One finished sweep; `actions` are the counts of what it did.
    pub fn sweep(&self, ok: bool, actions: &[(&'static str, usize)], at: DateTime<Utc>) {
        let outcome = if ok { "ok" } else { "error" };
        self.sweeper_runs
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
        for &(action, n) in actions {
            if n > 0 {
                self.sweeper_actions
                    .get_or_create(&ActionLabel { action })
                    .inc_by(n as u64);
            }
        }
        if ok {
            self.sweeper_last_success.set(unix_secs(at));
        }
    }

    /// The text exposition, after refreshing what is read at scrape time.
    pub async fn render(&self, state: &AppState) -> String {
        let mut last = self.refresh.lock().await;
        let pool = state.db.pool_stats();
        self.pool_max.set(pool.max.into());
        self.pool_waiting.set(to_i64(pool.waiting));
        self.writer_queue.set(to_i64(pool.writer_queue));
        self.live_clients.set(to_i64(state.live.clients()));
        self.pool_connections
            .get_or_create(&StateLabel { state: "in_use" })
            .set(pool.connections.saturating_sub(pool.idle).into());
        self.pool_connections
            .get_or_create(&StateLabel { state: "idle" })
            .set(pool.idle.into());

        let every = Duration::from_secs(state.settings.metrics.refresh_secs);
        if last.is_none_or(|at| at.elapsed() >= every) {
            let now = state.clock.now();
            let db = state.db.clone();
            // A scrape must not hang on a starved pool: give up and serve the last values. The
            // gauges are aggregates that rely on partial indexes proven from the bound statuses,
            // so they read on the dashboard's readers (see `Db::run_ranged`).
            let read = tokio::time::timeout(
                Duration::from_secs(5),
                db.run_ranged(move |c| read_db(c, now)),
            )
            .await;
            match read {
                Ok(Ok(snapshot)) => {
                    self.apply(&snapshot, now);
                    *last = Some(Instant::now());
                }
                Ok(Err(e)) => {
                    self.db_refresh_errors.inc();
                    tracing::warn!(error = %e, "metrics: reading the database gauges failed");
                }
                Err(_) => {
                    self.db_refresh_errors.inc();
                    tracing::warn!("metrics: reading the database gauges timed out");
                }
            }
        }
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            // Writing into a String cannot fail; should it ever, the scrape shows an empty page.
            tracing::error!(error = %e, "metrics: encoding failed");
        }
        out
    }

    fn apply(&self, s: &DbSnapshot, now: DateTime<Utc>) {
        // Cleared first: a combination that no longer has rows disappears instead of
        // keeping its last count.
        self.tickets.clear();
        for (level, status, n) in &s.tickets {
            self.tickets
                .get_or_create(&LevelStatus {
                    level: level.clone(),
                    status: status.clone(),
                })
                .set(*n);
        }
        self.tickets_overdue.clear();
        for level in ["compound", "community", "street"] {
            let n = s
                .overdue
                .iter()
                .find(|(l, _)| l == level)
                .map_or(0, |(_, n)| *n);
            self.tickets_overdue
                .get_or_create(&LevelLabel {
                    level: level.to_string(),
                })
                .set(n);
        }
        self.outbox_rows.clear();
        for (channel, status, n) in &s.outbox {
            self.outbox_rows
                .get_or_create(&ChannelStatus {
                    channel: channel.clone(),
                    status: status.clone(),
                })
                .set(*n);
        }
        self.outbox_oldest_pending.clear();
        for (channel, oldest) in &s.oldest_pending {
            if let Some(oldest) = oldest {
                self.outbox_oldest_pending
                    .get_or_create(&ChannelLabel {
                        channel: channel.clone(),
                    })
                    .set(age(now, *oldest));
            }
        }
        self.outbox_due_lag
            .set(s.oldest_due.map_or(0.0, |t| age(now, t)));
        self.sweeper_lag
            .set(s.oldest_unswept.map_or(0.0, |t| age(now, t)));
        self.db_refreshed_at.set(unix_secs(now));
    }
}

fn unix_secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn age(now: DateTime<Utc>, then: NaiveDateTime) -> f64 {
    let ms = (now.naive_utc() - then).num_milliseconds().max(0);
    ms as f64 / 1000.0
}

/// What the database-derived gauges show, read in one go.
#[derive(Debug, Default)]
pub struct DbSnapshot {
    pub tickets: Vec<(String, String, i64)>,
    pub overdue: Vec<(String, i64)>,
    pub outbox: Vec<(String, String, i64)>,
    pub oldest_pending: Vec<(String, Option<NaiveDateTime>)>,
    pub oldest_due: Option<NaiveDateTime>,
    pub oldest_unswept: Option<NaiveDateTime>,
}

/// The database gauges. Costs: the ticket GROUP BY reads every ticket (an index-only scan at
/// best), hence the refresh interval; the rest read only what the partial and status indexes
/// hold (active tickets, unsent outbox rows, tickets due for a sweep). Sent outbox rows are not
/// counted here (they only grow); `huying_notifications_total` counts deliveries.
pub fn read_db(c: &mut DbConn, now: DateTime<Utc>) -> AppResult<DbSnapshot> {
    let now_ts = now.naive_utc();
    let tickets = tickets::table
        .group_by((tickets::level, tickets::status))
        .select((tickets::level, tickets::status, count_star()))
        .load::<(String, String, i64)>(c)?;
    let overdue = tickets::table
        .filter(tickets::status.eq_any(["open", "acknowledged"]))
        .filter(tickets::overdue.eq(true).or(tickets::due_at.lt(now_ts)))
        .group_by(tickets::level)
        .select((tickets::level, count_star()))
        .load::<(String, i64)>(c)?;
    let outbox = notifications::table
        .filter(notifications::status.eq_any(["pending", "sending", "dead"]))
        .group_by((notifications::channel, notifications::status))
        .select((notifications::channel, notifications::status, count_star()))
        .load::<(String, String, i64)>(c)?;
    let oldest_pending = notifications::table
        .filter(notifications::status.eq_any(["pending", "sending"]))
        .group_by(notifications::channel)
        .select((notifications::channel, min(notifications::created_at)))
        .load::<(String, Option<NaiveDateTime>)>(c)?;
    let oldest_due = notifications::table
        .filter(notifications::status.eq("pending"))
        .filter(notifications::next_attempt_at.le(now_ts))
        .select(min(notifications::next_attempt_at))
        .first::<Option<NaiveDateTime>>(c)?;
    let oldest_unswept = tickets::table
        .filter(tickets::next_check_at.le(now_ts))
        .select(min(tickets::next_check_at))
        .first::<Option<NaiveDateTime>>(c)?;
    Ok(DbSnapshot {
        tickets,
        overdue,
        outbox,
        oldest_pending,
        oldest_due,
        oldest_unswept,
    })
}

/// Counts requests per route template and status. Outermost but for the request id, so it
/// sees the status the client gets (JSON error bodies and all).
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(req.method());
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let res = next.call(req).await;
    if let Some(m) = metrics {
        let status = match &res {
            Ok(r) => r.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        m.observe_http(
            method,
            route,
            status.as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    res
}

/// A client may send any method name; only the standard ones become labels.
fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`: the exposition, behind `metrics.token` when one is set. Not in the OpenAPI
/// document on purpose: it is for the scraper, may live on another listener (`metrics.bind`),
/// and is text, not JSON.
pub async fn scrape(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let token = state.settings.metrics.token.expose_secret();
    if !token.is_empty() {
        let sent = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), token.as_bytes()) {
            return HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .json(ErrorBody {
                    code: "unauthorized".into(),
                    message: "缺少或错误的指标访问令牌".into(),
                    details: None,
                });
        }
    }
    let body = state.metrics.render(&state).await;
    HttpResponse::Ok()
        .content_type(prometheus_client::encoding::prometheus_text::CONTENT_TYPE)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// Compares without stopping at the first difference, so the token cannot be guessed byte by
/// byte from response times.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    // Hashing first makes the comparison independent of the lengths too.
    let (x, y) = (Sha256::digest(a), Sha256::digest(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// The small server for `metrics.bind`: `/metrics` and a JSON 404 for anything else.
pub fn server(
    listener: std::net::TcpListener,
    state: AppState,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    Ok(actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .route("/metrics", web::get().to(scrape))
            .default_service(web::to(crate::api::not_found))
    })
    .workers(1)
    .listen(listener)?
    .run())
}

/// Counts every SMS by purpose and outcome, whoever sends it (sign-in codes, lockout notices,
/// the dispatcher).
pub struct CountedSms {
    pub inner: Arc<dyn SmsSender>,
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl SmsSender for CountedSms {
    async fn send(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        let r = self.inner.send(msg).await;
        // Templates are the service's own names; anything but the two fixed ones is a
        // notification (`notify_<kind>`).
        let purpose = match msg.template.as_str() {
            "login_code" => "login_code",
            "account_locked" => "account_locked",
            _ => "notification",
        };
        let outcome = match &r {
            Ok(()) => "sent",
            Err(SmsError::Temporary(_)) => "failed_temporary",
            Err(SmsError::Permanent(_)) => "failed_permanent",
        };
        self.metrics
            .sms
            .get_or_create(&SmsLabels { purpose, outcome })
            .inc();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn unknown_methods_are_one_label() {
        let m = actix_web::http::Method::from_bytes(b"BREW").expect("method");
        assert_eq!(method_label(&m), "other");
        assert_eq!(method_label(&actix_web::http::Method::GET), "GET");
    }
}
