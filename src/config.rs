//! Typed settings: the embedded `config/default.toml`, an optional file, then environment.

use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The documented defaults, compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub data: DataSettings,
    pub auth: AuthSettings,
    pub sms: SmsSettings,
    pub sla: SlaSettings,
    pub log: LogSettings,
    pub email: EmailSettings,
    pub notify: NotifySettings,
    pub privacy: PrivacySettings,
    pub limits: LimitsSettings,
    pub metrics: MetricsSettings,
    pub map: MapSettings,
    pub callbacks: CallbackSettings,
    pub stream: StreamSettings,
}

/// Callbacks (回访) after closures (issue #12, docs/metrics.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettings {
    /// Which level makes a street's callbacks unless the street sets its own.
    pub level: crate::domain::callback::CallbackLevel,
    /// Share of resident-confirmed closures drawn for a callback, in percent.
    pub sample_percent: u32,
    /// Working days after the closure by which the callback is due.
    pub due_working_days: i64,
}

/// Live updates, `GET /api/v1/stream` (Server-Sent Events).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// Seconds between heartbeat comments on an idle stream (at least 1).
    pub heartbeat_secs: u64,
    /// The `retry:` hint: milliseconds a client waits before reconnecting.
    pub retry_ms: u64,
    /// Events buffered per client before it lags and is told to resync (at least 1).
    pub buffer: usize,
}

/// The Prometheus endpoint (`/metrics`, docs/operations.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Off: `/metrics` is 404 like any unknown path.
    pub enabled: bool,
    /// `HOST:PORT` of a separate listener for `/metrics`; empty = on `server.bind`.
    pub bind: String,
    /// Bearer token the scraper must send; empty = none.
    pub token: SecretString,
    /// Seconds the database-derived gauges are reused before a scrape reads them again.
    pub refresh_secs: u64,
}

/// The small map on the staff ticket page (issue #15). Empty `tile_url` = no map and nothing
/// fetched from outside.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapSettings {
    /// An https URL template with `{z}`, `{x}` and `{y}` (Web Mercator tiles, e.g. 天地图 with its
    /// `tk` key); empty = none.
    pub tile_url: String,
    /// The tile provider's credit shown under the map (e.g. "© 天地图"); empty = none.
    pub attribution: String,
}

impl MapSettings {
    /// The origin (`https://host[:port]`) the pages may load tiles from, when a map is set.
    pub fn tile_origin(&self) -> Option<String> {
        if self.tile_url.is_empty() {
            return None;
        }
        tile_template(&self.tile_url)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.tile_url.is_empty() {
            return Ok(());
        }
        tile_template(&self.tile_url)
            .map(drop)
            .map_err(|why| ConfigError::Invalid(format!("map.tile_url: {why}")))
    }
}

/// A tile URL template checked: `{z}`, `{x}`, `{y}` each present, and with them filled in an
/// `https` URL with a host name and nothing a CSP source or an `<img src>` would misread.
fn tile_template(raw: &str) -> Result<url::Url, String> {
    for p in ["{z}", "{x}", "{y}"] {
        if !raw.contains(p) {
            return Err(format!(
                "must contain {p} (a template like https://host/{{z}}/{{x}}/{{y}}.png)"
            ));
        }
    }
    let filled = raw
        .replace("{z}", "1")
        .replace("{x}", "0")
        .replace("{y}", "0");
    if filled.contains(['{', '}', ' ', '\'', '"', ';', ',']) || filled.chars().any(char::is_control)
    {
        return Err(
            "has characters other than the {z}/{x}/{y} placeholders that a URL may not hold".into(),
        );
    }
    let u = url::Url::parse(&filled).map_err(|e| format!("not a URL ({e})"))?;
    if u.scheme() != "https" {
        return Err(format!(
            "must be an https:// URL, got scheme `{}`",
            u.scheme()
        ));
    }
    if !matches!(u.host(), Some(url::Host::Domain(_)))
        || !u.username().is_empty()
        || u.password().is_some()
    {
        return Err("must name a host (no address, no user info)".into());
    }
    if u.host_str().is_some_and(|h| h.contains('*')) {
        return Err("must not hold a wildcard".into());
    }
    Ok(u)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub public_url: String,
    pub workers: usize,
    /// Peers whose `X-Request-Id` (and client address headers) are believed; empty = none.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The header trusted proxies put the client address in (rightmost untrusted entry).
    pub client_ip_header: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry a password, hence secret.
    pub url: SecretString,
    pub pool_size: u32,
    pub pool_timeout_secs: u64,
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub jwt_secret: SecretString,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub otp_ttl_secs: i64,
    pub otp_max_attempts: i32,
    pub otp_resend_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsProviderKind {
    Log,
    Http,
    Aliyun,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub provider: SmsProviderKind,
    /// Lets the `log` provider (sign-in codes in the log) run with a non-loopback `public_url`.
    pub allow_log_provider_in_production: bool,
    pub http: SmsHttpSettings,
    pub aliyun: SmsAliyunSettings,
}

/// Alibaba Cloud SMS (`SendSms`, RPC signature V1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsAliyunSettings {
    pub access_key_id: String,
    pub access_key_secret: SecretString,
    pub sign_name: String,
    /// The approved template used for notifications; it receives the text as parameter `text`.
    pub template_code: String,
    /// The approved template used for sign-in codes (parameter `code`); empty = `template_code`.
    pub login_template_code: String,
    pub endpoint: String,
    pub region_id: String,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption (a local relay only).
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub enabled: bool,
    pub from: String,
    pub smtp: SmtpSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: SecretString,
    pub pool_size: u32,
    pub timeout_secs: u64,
    /// Tests only: accept a self-signed certificate.
    pub accept_invalid_certs: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    /// Years after a resident's last ticket is finished before their identity is erased;
    /// 0 = never.
    pub retention_years: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    pub dispatcher_enabled: bool,
    pub dispatch_interval_secs: u64,
    pub batch: i64,
    pub max_attempts: i32,
    pub backoff_base_secs: i64,
    pub backoff_max_secs: i64,
    /// Seconds a claimed row stays reserved for the dispatcher that claimed it.
    pub claim_lease_secs: i64,
    /// Local time (Asia/Shanghai) "HH:MM" when non-urgent SMS start waiting.
    pub quiet_hours_start: String,
    /// Local time "HH:MM" when waiting SMS go out.
    pub quiet_hours_end: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsHttpSettings {
    pub url: String,
    pub auth_header: SecretString,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    pub sweeper_enabled: bool,
    pub sweep_interval_secs: u64,
    pub sweep_batch: i64,
    pub pause_cap_minutes: i64,
    pub auto_close_days: i64,
    /// Defaults until an admin stores policies in the database.
    pub policies: Vec<crate::domain::sla::SlaPolicy>,
}

/// Abuse limits and the password-hashing pool (docs/operations.md says which hold across
/// instances).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSettings {
    /// Threads that hash passwords; 0 = one per CPU core.
    pub password_hash_workers: usize,
    /// Password checks that may wait for a thread; beyond that the answer is 503 `busy`.
    pub password_hash_queue: usize,
    /// Length of the "hour" and the "day" of the per-address limits, seconds.
    pub address_hour_secs: u64,
    pub address_day_secs: u64,
    pub otp_per_address_per_hour: u32,
    pub otp_per_address_per_day: u32,
    pub login_per_address_per_hour: u32,
    pub otp_per_phone_per_hour: u32,
    pub otp_per_phone_per_day: u32,
    /// Sign-in codes all instances together send per hour.
    pub sms_per_hour: u32,
    pub password_max_failures: u32,
    pub lockout_base_secs: u64,
    pub lockout_max_secs: u64,
    pub tickets_per_resident_per_day: u32,
    pub uploads_per_ticket_per_hour: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("配置错误 / configuration error: {0}")]
    Invalid(String),
}

impl Settings {
    /// Defaults, then `file` if given, then `HUYING__SECTION__KEY` variables, then `DATABASE_URL`.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(file, &env)
    }

    /// Like [`Settings::load`] with an explicit environment, so tests never depend on the
    /// process environment.
    pub fn load_with_env(
        file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "配置文件不存在 / config file not found: {}",
                    path.display()
                )));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        let huying_env: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("HUYING__"))
            .cloned()
            .collect();
        builder = builder.add_source(
            Environment::with_prefix("HUYING")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies")
                .source(Some(huying_env)),
        );
        if let Some((_, url)) = env.iter().find(|(k, _)| k == "DATABASE_URL") {
            if !url.is_empty() {
                builder = builder
                    .set_override("database.url", url.clone())
                    .map_err(|e| ConfigError::Invalid(e.to_string()))?;
            }
        }
        let settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        settings.validate()?;
        // RUST_LOG wins over log.level (telemetry::init), so it is held to the same rule.
        if let Some((_, filter)) = env.iter().find(|(k, _)| k == "RUST_LOG") {
            log_filter(filter).map_err(|why| ConfigError::Invalid(format!("RUST_LOG: {why}")))?;
        }
        Ok(settings)
    }

    /// Every value checked before anything is opened; each failure names its key.
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| Err(ConfigError::Invalid(format!("{key}: {why}")));
        let at_least = |key: &str, v: i64, min: i64| {
            if v < min {
                bad(key, format!("must be ≥ {min}, got {v}"))
            } else {
                Ok(())
            }
        };
        if self.server.bind.parse::<std::net::SocketAddr>().is_err()
            && !self.server.bind.contains(':')
        {
            return bad(
                "server.bind",
                format!("must be HOST:PORT, got `{}`", self.server.bind),
            );
        }
        let public_url = http_url("server.public_url", &self.server.public_url)?;
        database_url(self.database.url.expose_secret())?;
        at_least("database.pool_size", self.database.pool_size.into(), 1)?;
        at_least(
            "database.pool_timeout_secs",
            secs(self.database.pool_timeout_secs),
            1,
        )?;
        if self.data.dir.as_os_str().is_empty() {
            return bad("data.dir", "must not be empty".into());
        }

        let secret = self.auth.jwt_secret.expose_secret();
        if !secret.is_empty() && secret.len() < 32 {
            return bad(
                "auth.jwt_secret",
                format!("must be at least 32 bytes when set, got {}", secret.len()),
            );
        }
        at_least("auth.access_ttl_secs", self.auth.access_ttl_secs, 1)?;
        at_least("auth.refresh_ttl_secs", self.auth.refresh_ttl_secs, 1)?;
        at_least("auth.otp_ttl_secs", self.auth.otp_ttl_secs, 1)?;
        at_least(
            "auth.otp_max_attempts",
            self.auth.otp_max_attempts.into(),
            1,
        )?;
        at_least("auth.otp_resend_secs", self.auth.otp_resend_secs, 0)?;
        at_least("stream.heartbeat_secs", secs(self.stream.heartbeat_secs), 1)?;
        at_least(
            "stream.buffer",
            i64::try_from(self.stream.buffer).unwrap_or(i64::MAX),
            1,
        )?;

        match self.sms.provider {
            SmsProviderKind::Log => {
                if !is_loopback(&public_url) && !self.sms.allow_log_provider_in_production {
                    return bad(
                        "sms.provider",
                        format!(
                            "`log` writes sign-in codes to the log and is for development only; \
                             server.public_url `{}` is not a loopback address (choose `http` or \
                             `aliyun`, or set sms.allow_log_provider_in_production = true)",
                            self.server.public_url
                        ),
                    );
                }
            }
            SmsProviderKind::Http => {
                if self.sms.http.url.trim().is_empty() {
                    return bad("sms.http.url", "sms.provider = \"http\" needs it".into());
                }
                http_url("sms.http.url", &self.sms.http.url)?;
            }
            SmsProviderKind::Aliyun => {
                for (key, v) in [
                    ("sms.aliyun.access_key_id", &self.sms.aliyun.access_key_id),
                    ("sms.aliyun.sign_name", &self.sms.aliyun.sign_name),
                    ("sms.aliyun.template_code", &self.sms.aliyun.template_code),
                ] {
                    if v.is_empty() {
                        return bad(key, "sms.provider = \"aliyun\" needs it".into());
                    }
                }
                http_url("sms.aliyun.endpoint", &self.sms.aliyun.endpoint)?;
            }
        }
        at_least("sms.http.timeout_secs", secs(self.sms.http.timeout_secs), 1)?;
        at_least(
            "sms.aliyun.timeout_secs",
            secs(self.sms.aliyun.timeout_secs),
            1,
        )?;

        if self.email.enabled {
            if self.email.from.is_empty() {
                return bad("email.from", "email.enabled needs it".into());
            }
            if self.email.smtp.host.is_empty() {
                return bad("email.smtp.host", "email.enabled needs it".into());
            }
        }
        at_least("email.smtp.pool_size", self.email.smtp.pool_size.into(), 1)?;
        at_least(
            "email.smtp.timeout_secs",
            secs(self.email.smtp.timeout_secs),
            1,
        )?;

        let n = &self.notify;
        at_least(
            "notify.dispatch_interval_secs",
            secs(n.dispatch_interval_secs),
            1,
        )?;
        at_least("notify.batch", n.batch, 1)?;
        at_least("notify.max_attempts", n.max_attempts.into(), 1)?;
        at_least("notify.backoff_base_secs", n.backoff_base_secs, 1)?;
        at_least(
            "notify.backoff_max_secs",
            n.backoff_max_secs,
            n.backoff_base_secs,
        )?;
        at_least("notify.claim_lease_secs", n.claim_lease_secs, 1)?;
        for (key, v) in [
            ("notify.quiet_hours_start", &n.quiet_hours_start),
            ("notify.quiet_hours_end", &n.quiet_hours_end),
        ] {
            if chrono::NaiveTime::parse_from_str(v, "%H:%M").is_err() {
                return bad(key, format!("must be HH:MM, got `{v}`"));
            }
        }

        at_least(
            "sla.sweep_interval_secs",
            secs(self.sla.sweep_interval_secs),
            1,
        )?;
        at_least("sla.sweep_batch", self.sla.sweep_batch, 1)?;
        at_least("sla.pause_cap_minutes", self.sla.pause_cap_minutes, 0)?;
        at_least("sla.auto_close_days", self.sla.auto_close_days, 1)?;
        at_least(
            "callbacks.due_working_days",
            self.callbacks.due_working_days,
            1,
        )?;
        if self.callbacks.sample_percent > 100 {
            return bad(
                "callbacks.sample_percent",
                format!("must be 0–100, got {}", self.callbacks.sample_percent),
            );
        }
        for p in &self.sla.policies {
            p.validate()
                .map_err(|e| ConfigError::Invalid(format!("sla.policies: {e}")))?;
        }

        self.limits.validate()?;
        self.metrics.validate(&self.server.bind)?;
        self.map.validate()?;
        if self
            .server
            .client_ip_header
            .parse::<actix_web::http::header::HeaderName>()
            .is_err()
        {
            return Err(ConfigError::Invalid(format!(
                "server.client_ip_header must be a header name, got `{}`",
                self.server.client_ip_header
            )));
        }
        log_filter(&self.log.level).or_else(|why| bad("log.level", why))
    }

    /// Whether cookies may go without `Secure`: only for plain http on a loopback address
    /// (tests and local development).
    pub fn insecure_cookies_allowed(&self) -> bool {
        url::Url::parse(&self.server.public_url).is_ok_and(|u| {
            u.scheme() == "http"
                && match u.host() {
                    Some(url::Host::Domain(d)) => d == "localhost",
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                }
        })
    }

    /// The database URL with any password replaced, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url(self.database.url.expose_secret())
    }
}

/// A `u64` count of seconds as `i64` for the range checks (saturating: huge values pass).
fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An absolute `http` or `https` URL with a host.
fn http_url(key: &str, raw: &str) -> Result<url::Url, ConfigError> {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        Ok(u) => Err(ConfigError::Invalid(format!(
            "{key}: must be an http:// or https:// URL with a host, got scheme `{}`",
            u.scheme()
        ))),
        Err(e) => Err(ConfigError::Invalid(format!("{key}: not a URL ({e})"))),
    }
}

/// The schemes `db::Target::parse` takes: the backend is chosen by them, so anything else
/// (`mysql://…`) is refused here rather than when the pool opens.
fn database_url(raw: &str) -> Result<(), ConfigError> {
    let ok = !raw.trim().is_empty()
        && (["postgres://", "postgresql://", "sqlite:"]
            .iter()
            .any(|p| raw.starts_with(p))
            || !raw.contains("://"));
    if ok {
        Ok(())
    } else {
        let scheme = raw.split("://").next().unwrap_or_default();
        Err(ConfigError::Invalid(format!(
            "database.url: must be sqlite://PATH, a file path or postgres://…, got scheme `{scheme}`"
        )))
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A tracing filter that says what it means: `EnvFilter` takes a bare word as a target name,
/// so a misspelt level (`infoo`) would silently log nothing at all. Here a bare word must be a
/// level; a target is written `target=level`.
pub fn log_filter(raw: &str) -> Result<(), String> {
    use std::str::FromStr;
    use tracing_subscriber::filter::LevelFilter;
    let directives: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err("must not be empty (e.g. \"info\")".into());
    }
    for d in directives {
        let level = d.rsplit_once('=').map_or(d, |(_, level)| level);
        if LevelFilter::from_str(level).is_err() {
            return Err(format!(
                "`{d}`: `{level}` is not a level (off, error, warn, info, debug, trace); \
                 a target is written `target=level`"
            ));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(raw)
        .map(drop)
        .map_err(|e| format!("`{raw}`: {e}"))
}

impl MetricsSettings {
    fn validate(&self, server_bind: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| Err(ConfigError::Invalid(format!("{key}: {why}")));
        if self.refresh_secs < 1 {
            return bad("metrics.refresh_secs", "must be ≥ 1, got 0".into());
        }
        if !self.bind.is_empty() {
            if self.bind.parse::<std::net::SocketAddr>().is_err() && !self.bind.contains(':') {
                return bad(
                    "metrics.bind",
                    format!("must be HOST:PORT or empty, got `{}`", self.bind),
                );
            }
            if self.enabled && self.bind == server_bind && !self.bind.ends_with(":0") {
                return bad(
                    "metrics.bind",
                    "must differ from server.bind (leave it empty to serve /metrics there)".into(),
                );
            }
        }
        let token = self.token.expose_secret();
        // The token travels in a header: visible ASCII only, and long enough not to be guessed.
        if !token.is_empty() {
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return bad(
                    "metrics.token",
                    "must be printable ASCII without spaces".into(),
                );
            }
            if token.len() < 16 {
                return bad(
                    "metrics.token",
                    format!("must be at least 16 bytes when set, got {}", token.len()),
                );
            }
        }
        Ok(())
    }
}

impl LimitsSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            (
                "limits.password_hash_queue",
                self.password_hash_queue as u64,
            ),
            ("limits.address_hour_secs", self.address_hour_secs),
            ("limits.address_day_secs", self.address_day_secs),
            (
                "limits.otp_per_address_per_hour",
                self.otp_per_address_per_hour.into(),
            ),
            (
                "limits.otp_per_address_per_day",
                self.otp_per_address_per_day.into(),
            ),
            (
                "limits.login_per_address_per_hour",
                self.login_per_address_per_hour.into(),
            ),
            (
                "limits.otp_per_phone_per_hour",
                self.otp_per_phone_per_hour.into(),
            ),
            (
                "limits.otp_per_phone_per_day",
                self.otp_per_phone_per_day.into(),
            ),
            ("limits.sms_per_hour", self.sms_per_hour.into()),
            (
                "limits.password_max_failures",
                self.password_max_failures.into(),
            ),
            ("limits.lockout_base_secs", self.lockout_base_secs),
            (
                "limits.tickets_per_resident_per_day",
                self.tickets_per_resident_per_day.into(),
            ),
            (
                "limits.uploads_per_ticket_per_hour",
                self.uploads_per_ticket_per_hour.into(),
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid(format!("{key} must be ≥ 1")));
        }
        if self.lockout_max_secs < self.lockout_base_secs {
            return Err(ConfigError::Invalid(
                "limits.lockout_max_secs must be ≥ limits.lockout_base_secs".into(),
            ));
        }
        Ok(())
    }
}

fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let s = Settings::load_with_env(None, &[]).expect("defaults");
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        assert_eq!(s.sms.provider, SmsProviderKind::Log);
        assert_eq!(s.auth.access_ttl_secs, 900);
        // The documented defaults are exactly the built-in ones.
        assert_eq!(s.sla.policies, crate::domain::sla::default_policies());
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let s = Settings::load_with_env(
            None,
            &env(&[
                ("HUYING__SERVER__BIND", "127.0.0.1:9000"),
                ("HUYING__SMS__PROVIDER", "http"),
                ("HUYING__SMS__HTTP__URL", "http://127.0.0.1:1/send"),
                ("HUYING__SMS__HTTP__AUTH_HEADER", "Bearer abc"),
                ("DATABASE_URL", "postgres://u:pw@localhost/db"),
            ]),
        )
        .expect("load");
        assert_eq!(s.server.bind, "127.0.0.1:9000");
        assert_eq!(s.sms.provider, SmsProviderKind::Http);
        assert_eq!(s.sms.http.url, "http://127.0.0.1:1/send");
        assert_eq!(s.sms.http.auth_header.expose_secret(), "Bearer abc");
        assert_eq!(
            s.database.url.expose_secret(),
            "postgres://u:pw@localhost/db"
        );
    }

    #[test]
    fn unknown_environment_key_is_an_error() {
        let err = Settings::load_with_env(None, &env(&[("HUYING__SERVER__BINDD", "x")]))
            .expect_err("must fail");
        assert!(err.to_string().contains("bindd"), "{err}");
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let s = Settings::load_with_env(
            None,
            &env(&[
                (
                    "HUYING__AUTH__JWT_SECRET",
                    "topsecretvalue-topsecretvalue-topsecretvalue",
                ),
                ("HUYING__SMS__HTTP__AUTH_HEADER", "Bearer sekrit-token"),
                ("DATABASE_URL", "postgres://u:hunter2@localhost/db"),
            ]),
        )
        .expect("load");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("topsecretvalue"));
        assert!(!dbg.contains("sekrit-token"));
        assert!(!dbg.contains("hunter2"));
        assert!(!s.database_url_redacted().contains("hunter2"));
    }

    #[test]
    fn http_sms_without_url_is_rejected() {
        let err = Settings::load_with_env(None, &env(&[("HUYING__SMS__PROVIDER", "http")]))
            .expect_err("must fail");
        assert!(err.to_string().contains("sms.http.url"));
    }

    /// Each refused value names its key, and no value that would panic later gets through.
    #[test]
    fn every_bad_value_is_refused_naming_its_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "HUYING__DATABASE__POOL_TIMEOUT_SECS",
                "0",
                "database.pool_timeout_secs",
            ),
            ("HUYING__DATABASE__POOL_SIZE", "0", "database.pool_size"),
            ("DATABASE_URL", "mysql://u@h/db", "database.url"),
            ("HUYING__LOG__LEVEL", "infoo", "log.level"),
            ("HUYING__LOG__LEVEL", "huying=loud", "log.level"),
            ("HUYING__LOG__LEVEL", "", "log.level"),
            ("RUST_LOG", "debugg", "RUST_LOG"),
            ("HUYING__AUTH__JWT_SECRET", "too-short", "auth.jwt_secret"),
            ("HUYING__AUTH__OTP_TTL_SECS", "-5", "auth.otp_ttl_secs"),
            (
                "HUYING__AUTH__OTP_MAX_ATTEMPTS",
                "-1",
                "auth.otp_max_attempts",
            ),
            (
                "HUYING__AUTH__OTP_RESEND_SECS",
                "-60",
                "auth.otp_resend_secs",
            ),
            ("HUYING__AUTH__ACCESS_TTL_SECS", "0", "auth.access_ttl_secs"),
            (
                "HUYING__SMS__HTTP__TIMEOUT_SECS",
                "0",
                "sms.http.timeout_secs",
            ),
            (
                "HUYING__EMAIL__SMTP__POOL_SIZE",
                "0",
                "email.smtp.pool_size",
            ),
            ("HUYING__NOTIFY__BATCH", "0", "notify.batch"),
            ("HUYING__SLA__AUTO_CLOSE_DAYS", "0", "sla.auto_close_days"),
            ("HUYING__METRICS__REFRESH_SECS", "0", "metrics.refresh_secs"),
            ("HUYING__METRICS__BIND", "nowhere", "metrics.bind"),
            ("HUYING__METRICS__TOKEN", "short", "metrics.token"),
            (
                "HUYING__MAP__TILE_URL",
                "https://t.example.cn/tile",
                "map.tile_url",
            ),
            (
                "HUYING__MAP__TILE_URL",
                "http://t.example.cn/{z}/{x}/{y}.png",
                "map.tile_url",
            ),
            (
                "HUYING__MAP__TILE_URL",
                "https://1.2.3.4/{z}/{x}/{y}.png",
                "map.tile_url",
            ),
            (
                "HUYING__MAP__TILE_URL",
                "https://t.example.cn/{z}/{x}/{y}.png; script-src *",
                "map.tile_url",
            ),
            (
                "HUYING__SERVER__PUBLIC_URL",
                "ftp://x.cn",
                "server.public_url",
            ),
            (
                "HUYING__SERVER__PUBLIC_URL",
                "https://hy.example.cn",
                "sms.provider",
            ),
        ];
        for (key, value, named) in cases {
            let err = Settings::load_with_env(None, &env(&[(key, value)]))
                .expect_err(&format!("{key}={value} must be refused"));
            assert!(
                err.to_string().contains(named),
                "{key}={value}: `{err}` does not name {named}"
            );
        }
    }

    #[test]
    fn good_values_still_load() {
        let s = Settings::load_with_env(
            None,
            &env(&[
                ("HUYING__LOG__LEVEL", "huying=debug,actix_web=info,warn"),
                ("RUST_LOG", "info"),
                ("HUYING__AUTH__OTP_RESEND_SECS", "0"),
                ("HUYING__SERVER__PUBLIC_URL", "https://hy.example.cn"),
                ("HUYING__SMS__ALLOW_LOG_PROVIDER_IN_PRODUCTION", "true"),
                ("HUYING__SERVER__TRUSTED_PROXIES", "127.0.0.1,::1"),
                ("DATABASE_URL", "data/huying.db"),
            ]),
        )
        .expect("load");
        assert_eq!(s.server.trusted_proxies.len(), 2);
        assert_eq!(s.map.tile_origin(), None);
        let tdt =
            "https://t0.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0\
                   &LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}\
                   &TILECOL={x}&tk=0123456789abcdef";
        let s =
            Settings::load_with_env(None, &env(&[("HUYING__MAP__TILE_URL", tdt)])).expect("load");
        assert_eq!(
            s.map.tile_origin().as_deref(),
            Some("https://t0.tianditu.gov.cn")
        );
        assert!(Settings::load_with_env(None, &env(&[("DATABASE_URL", "sqlite:x.db")])).is_ok());
    }
}
