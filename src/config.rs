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
    pub limits: LimitsSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub public_url: String,
    pub workers: usize,
    /// Peers whose `client_ip_header` is believed (reverse proxies); empty = the socket peer.
    pub trusted_proxies: Vec<std::net::IpAddr>,
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
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.bind.parse::<std::net::SocketAddr>().is_err()
            && !self.server.bind.contains(':')
        {
            return Err(ConfigError::Invalid(format!(
                "server.bind must be HOST:PORT, got `{}`",
                self.server.bind
            )));
        }
        if self.sms.provider == SmsProviderKind::Http && self.sms.http.url.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "sms.provider = \"http\" needs sms.http.url".into(),
            ));
        }
        if self.sla.sweep_interval_secs == 0 || self.sla.sweep_batch <= 0 {
            return Err(ConfigError::Invalid(
                "sla.sweep_interval_secs and sla.sweep_batch must be > 0".into(),
            ));
        }
        if self.sla.pause_cap_minutes < 0 || self.sla.auto_close_days <= 0 {
            return Err(ConfigError::Invalid(
                "sla.pause_cap_minutes must be ≥ 0 and sla.auto_close_days > 0".into(),
            ));
        }
        for p in &self.sla.policies {
            p.validate()
                .map_err(|e| ConfigError::Invalid(format!("sla.policies: {e}")))?;
        }
        if self.sms.provider == SmsProviderKind::Aliyun
            && (self.sms.aliyun.access_key_id.is_empty()
                || self.sms.aliyun.sign_name.is_empty()
                || self.sms.aliyun.template_code.is_empty())
        {
            return Err(ConfigError::Invalid(
                "sms.provider = \"aliyun\" needs sms.aliyun.access_key_id, sign_name and template_code"
                    .into(),
            ));
        }
        if self.email.enabled && (self.email.smtp.host.is_empty() || self.email.from.is_empty()) {
            return Err(ConfigError::Invalid(
                "email.enabled needs email.from and email.smtp.host".into(),
            ));
        }
        if self.notify.dispatch_interval_secs == 0
            || self.notify.batch <= 0
            || self.notify.max_attempts <= 0
            || self.notify.backoff_base_secs <= 0
            || self.notify.backoff_max_secs < self.notify.backoff_base_secs
            || self.notify.claim_lease_secs <= 0
        {
            return Err(ConfigError::Invalid(
                "notify: interval, batch, max_attempts, backoff and lease must be > 0 (max ≥ base)"
                    .into(),
            ));
        }
        for (key, v) in [
            ("notify.quiet_hours_start", &self.notify.quiet_hours_start),
            ("notify.quiet_hours_end", &self.notify.quiet_hours_end),
        ] {
            if chrono::NaiveTime::parse_from_str(v, "%H:%M").is_err() {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be HH:MM, got `{v}`"
                )));
            }
        }
        if self.database.pool_size == 0 {
            return Err(ConfigError::Invalid(
                "database.pool_size must be ≥ 1".into(),
            ));
        }
        if self.auth.access_ttl_secs <= 0 || self.auth.refresh_ttl_secs <= 0 {
            return Err(ConfigError::Invalid(
                "auth token lifetimes must be > 0".into(),
            ));
        }
        self.limits.validate()?;
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
        Ok(())
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
                ("HUYING__AUTH__JWT_SECRET", "topsecretvalue"),
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
}
