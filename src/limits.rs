//! Per-address abuse limits, kept in this instance's memory (governor, GCRA), and the client's
//! address they are keyed by. The limits that must hold across instances (per phone, per
//! account, per resident, per ticket, the SMS budget) are counted in the database instead:
//! `service::limits`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::HttpRequest;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{LimitsSettings, ServerSettings};
use crate::error::{AppError, AppResult};

/// The client's address: the socket peer, unless the peer is a trusted proxy; then the
/// rightmost address in `client_ip_header` that is not itself a trusted proxy (entries to its
/// left were written by the client and prove nothing).
pub fn client_ip(req: &HttpRequest, server: &ServerSettings) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    if !server.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all(server.client_ip_header.as_str())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for entry in forwarded.iter().rev() {
        match parse_entry(entry) {
            Some(ip) if server.trusted_proxies.contains(&ip) => continue,
            Some(ip) => return Some(ip),
            // Garbage where an address should be: stop believing the header.
            None => break,
        }
    }
    Some(peer)
}

/// `1.2.3.4`, `1.2.3.4:567`, `2001:db8::1` or `[2001:db8::1]:567`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

/// "`count` per `window`": a burst of `count`, one more every `window / count`.
fn quota(count: u32, window_secs: u64) -> Quota {
    let count = NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs(window_secs.max(1)) / count.get();
    Quota::with_period(period.max(Duration::from_millis(1)))
        .unwrap_or_else(|| Quota::per_second(count))
        .allow_burst(count)
}

pub struct AddressLimits {
    otp_hour: DefaultKeyedRateLimiter<IpAddr>,
    otp_day: DefaultKeyedRateLimiter<IpAddr>,
    login_hour: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl AddressLimits {
    pub fn new(cfg: &LimitsSettings) -> AddressLimits {
        AddressLimits {
            otp_hour: RateLimiter::keyed(quota(
                cfg.otp_per_address_per_hour,
                cfg.address_hour_secs,
            )),
            otp_day: RateLimiter::keyed(quota(cfg.otp_per_address_per_day, cfg.address_day_secs)),
            login_hour: RateLimiter::keyed(quota(
                cfg.login_per_address_per_hour,
                cfg.address_hour_secs,
            )),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// A request for a sign-in code from `ip`.
    pub fn otp(&self, ip: Option<IpAddr>) -> AppResult<()> {
        let Some(ip) = ip else { return Ok(()) };
        self.forget_idle();
        self.check(&self.otp_hour, ip)
            .and_then(|()| self.check(&self.otp_day, ip))
            .map_err(|secs| AppError::TooManyRequests {
                code: "otp_address_limited",
                message: format!("该网络请求验证码过于频繁，请 {} 后再试", wait_zh(secs)),
                retry_after: Some(secs),
            })
    }

    /// A password sign-in attempt from `ip`.
    pub fn login(&self, ip: Option<IpAddr>) -> AppResult<()> {
        let Some(ip) = ip else { return Ok(()) };
        self.forget_idle();
        self.check(&self.login_hour, ip)
            .map_err(|secs| AppError::TooManyRequests {
                code: "login_address_limited",
                message: format!("该网络登录尝试过于频繁，请 {} 后再试", wait_zh(secs)),
                retry_after: Some(secs),
            })
    }

    /// `Err(seconds to wait)` when `ip` is over the limit.
    fn check(&self, limiter: &DefaultKeyedRateLimiter<IpAddr>, ip: IpAddr) -> Result<(), i64> {
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            i64::try_from(wait.as_secs())
                .unwrap_or(i64::MAX)
                .saturating_add(1)
        })
    }

    /// Drops addresses whose state is back to fresh, now and then, so memory follows the
    /// addresses seen recently, not every address ever seen.
    fn forget_idle(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            for l in [&self.otp_hour, &self.otp_day, &self.login_hour] {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }
}

/// Per-key limits of partner systems (Open311), each at the rate its key was issued with.
/// Kept in this instance's memory like the per-address limits: with several instances a
/// partner gets the rate once per instance it reaches.
#[derive(Default)]
pub struct PartnerLimits {
    /// Key id → (requests per minute it was built for, its limiter).
    keys:
        std::sync::Mutex<std::collections::HashMap<i64, (u32, governor::DefaultDirectRateLimiter)>>,
    clock: DefaultClock,
}

impl PartnerLimits {
    /// One request of key `key_id`, allowed `per_minute` a minute; `Err(seconds to wait)` when
    /// it is over.
    pub fn check(&self, key_id: i64, per_minute: u32) -> Result<(), i64> {
        // A poisoned lock only means another request panicked mid-check; the map is still whole.
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = keys
            .entry(key_id)
            .or_insert_with(|| (per_minute, RateLimiter::direct(quota(per_minute, 60))));
        if entry.0 != per_minute {
            *entry = (per_minute, RateLimiter::direct(quota(per_minute, 60)));
        }
        entry.1.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            i64::try_from(wait.as_secs())
                .unwrap_or(i64::MAX)
                .saturating_add(1)
        })
    }

    /// Forgets a revoked key's limiter.
    pub fn forget(&self, key_id: i64) {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key_id);
    }
}

/// "30 秒", "5 分钟", "2 小时": how long to wait, for a person.
pub fn wait_zh(secs: i64) -> String {
    if secs < 120 {
        format!("{} 秒", secs.max(1))
    } else if secs < 7200 {
        format!("{} 分钟", (secs + 59) / 60)
    } else {
        format!("{} 小时", (secs + 3599) / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn server(trusted: &[&str]) -> ServerSettings {
        let mut s = crate::config::Settings::load_with_env(None, &[])
            .expect("defaults")
            .server;
        s.trusted_proxies = trusted.iter().map(|t| t.parse().expect("ip")).collect();
        s
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let req = TestRequest::default()
            .peer_addr("203.0.113.9:4000".parse().expect("addr"))
            .insert_header(("X-Forwarded-For", "198.51.100.7"))
            .to_http_request();
        assert_eq!(client_ip(&req, &server(&[])), ip("203.0.113.9"));
        assert_eq!(
            client_ip(&req, &server(&["203.0.113.9"])),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.2:4000".parse().expect("addr"))
            .insert_header(("X-Forwarded-For", "1.1.1.1, 198.51.100.7, 10.0.0.3"))
            .to_http_request();
        // 1.1.1.1 was written by the client itself: not believed.
        assert_eq!(
            client_ip(&req, &server(&["10.0.0.2", "10.0.0.3"])),
            ip("198.51.100.7")
        );
        let junk = TestRequest::default()
            .peer_addr("10.0.0.2:4000".parse().expect("addr"))
            .insert_header(("X-Forwarded-For", "nonsense"))
            .to_http_request();
        assert_eq!(client_ip(&junk, &server(&["10.0.0.2"])), ip("10.0.0.2"));
    }

    #[test]
    fn an_address_over_its_limit_waits() {
        let mut cfg = crate::config::Settings::load_with_env(None, &[])
            .expect("defaults")
            .limits;
        cfg.login_per_address_per_hour = 2;
        let limits = AddressLimits::new(&cfg);
        let a = ip("198.51.100.7");
        assert!(limits.login(a).is_ok());
        assert!(limits.login(a).is_ok());
        let err = limits.login(a).expect_err("third");
        assert_eq!(err.code(), "login_address_limited");
        // Another address is not affected.
        assert!(limits.login(ip("198.51.100.8")).is_ok());
    }

    #[test]
    fn each_partner_key_has_its_own_rate() {
        let limits = PartnerLimits::default();
        assert!(limits.check(1, 2).is_ok());
        assert!(limits.check(1, 2).is_ok());
        let wait = limits.check(1, 2).expect_err("third in a minute");
        assert!((1..=31).contains(&wait), "{wait}");
        // Another key, and the same key at a new rate, start afresh.
        assert!(limits.check(2, 2).is_ok());
        assert!(limits.check(1, 3).is_ok());
    }

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait_zh(30), "30 秒");
        assert_eq!(wait_zh(900), "15 分钟");
        assert_eq!(wait_zh(86400), "24 小时");
    }
}
