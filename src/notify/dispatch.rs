//! The dispatcher: claims due outbox rows, delivers them, and records the outcome.
//!
//! A claim marks rows `sending` with a lease (`locked_until`) in a short transaction; on
//! PostgreSQL the claim reads with `FOR UPDATE SKIP LOCKED`, so several dispatchers take disjoint
//! rows. A dispatcher that dies mid-way lets its rows go when the lease ends. Delivery is
//! at-least-once only in that one case (sent, then killed before recording it); everywhere else
//! each row is sent once. Failures are retried with exponential backoff and jitter; after
//! `notify.max_attempts` a row is `dead` with its last error until an admin retries it.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::prelude::*;
use futures_util::StreamExt;
use rand::Rng;
use serde::Serialize;

use super::email::{Mailer, SendError};
use super::rules::Channel;
use super::{templates, wecom, NotificationRow};
use crate::config::{NotifySettings, Settings};
use crate::db::notify_schema::notifications;
use crate::db::{round_ts, Db, DbConn};
use crate::domain::clock::Clock;
use crate::error::AppResult;
use crate::load_skip_locked;
use crate::sms::{SmsError, SmsMessage, SmsSender};

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
    /// SMS held back by quiet hours.
    pub deferred: usize,
}

enum Outcome {
    Sent,
    Retry(String),
    Dead(String),
    Defer(DateTime<Utc>),
}

pub struct Dispatcher {
    db: Db,
    sms: Arc<dyn SmsSender>,
    mailer: Option<Mailer>,
    http: reqwest::Client,
    cfg: NotifySettings,
    public_url: String,
    quiet: (NaiveTime, NaiveTime),
    /// Rows delivered at the same time.
    concurrency: usize,
    /// Where `serve` counts deliveries; `dispatch --once` has none.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Dispatcher {
    pub fn new(settings: &Settings, db: Db, sms: Arc<dyn SmsSender>) -> anyhow::Result<Self> {
        let mailer = if settings.email.enabled {
            Some(Mailer::new(&settings.email)?)
        } else {
            None
        };
        let parse = |s: &str| {
            NaiveTime::parse_from_str(s, "%H:%M")
                .map_err(|e| anyhow::anyhow!("quiet hours `{s}`: {e}"))
        };
        Ok(Dispatcher {
            db,
            sms,
            mailer,
            http: reqwest::Client::builder()
                .timeout(StdDuration::from_secs(10))
                .build()?,
            cfg: settings.notify.clone(),
            public_url: settings.server.public_url.trim_end_matches('/').to_string(),
            quiet: (
                parse(&settings.notify.quiet_hours_start)?,
                parse(&settings.notify.quiet_hours_end)?,
            ),
            concurrency: (settings.email.smtp.pool_size as usize).max(8),
            metrics: None,
        })
    }

    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Rows delivered at the same time (at least 1); `new` derives it from the SMTP pool size.
    pub fn with_in_flight(mut self, in_flight: usize) -> Self {
        self.concurrency = in_flight.max(1);
        self
    }

    pub fn in_flight(&self) -> usize {
        self.concurrency
    }

    fn count(&self, row: &NotificationRow, outcome: &'static str) {
        if let Some(m) = &self.metrics {
            m.notification(row.channel.as_str(), outcome);
        }
    }

    /// Claims and delivers one batch as of `now`.
    pub async fn dispatch_once(&self, now: DateTime<Utc>) -> AppResult<DispatchReport> {
        let batch = self.cfg.batch;
        let lease = Duration::seconds(self.cfg.claim_lease_secs);
        let claimed = self.db.write(move |c| claim(c, now, batch, lease)).await?;
        let mut report = DispatchReport {
            claimed: claimed.len(),
            ..Default::default()
        };
        let outcomes: Vec<(NotificationRow, Outcome)> = futures_util::stream::iter(claimed)
            .map(|row| async move {
                let outcome = self.deliver(&row, now).await;
                (row, outcome)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let max_attempts = self.cfg.max_attempts;
        let (base, max) = (self.cfg.backoff_base_secs, self.cfg.backoff_max_secs);
        let mut updates = Vec::with_capacity(outcomes.len());
        for (row, outcome) in outcomes {
            let u = match outcome {
                Outcome::Sent => {
                    self.count(&row, "sent");
                    report.sent += 1;
                    Update::sent(row.id, row.attempts + 1)
                }
                Outcome::Defer(at) => {
                    self.count(&row, "deferred");
                    report.deferred += 1;
                    Update::pending(row.id, row.attempts, at, None)
                }
                Outcome::Dead(err) => {
                    self.count(&row, "dead");
                    report.dead += 1;
                    tracing::warn!(notification_id = row.id, channel = %row.channel, error = %err, "notification dead");
                    Update::dead(row.id, row.attempts + 1, err)
                }
                Outcome::Retry(err) => {
                    let attempts = row.attempts + 1;
                    if attempts >= max_attempts {
                        self.count(&row, "dead");
                        report.dead += 1;
                        tracing::warn!(notification_id = row.id, channel = %row.channel, attempts, error = %err, "notification dead after retries");
                        Update::dead(row.id, attempts, err)
                    } else {
                        self.count(&row, "retry");
                        report.retried += 1;
                        let at = now + backoff(attempts, base, max);
                        tracing::info!(notification_id = row.id, channel = %row.channel, attempts, error = %err, "notification will be retried");
                        Update::pending(row.id, attempts, at, Some(err))
                    }
                }
            };
            updates.push(u);
        }
        if !updates.is_empty() {
            self.db
                .write(move |c| {
                    for u in &updates {
                        u.apply(c, now)?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(report)
    }

    /// Runs until the process ends: a batch, and a pause only when there was nothing to do.
    pub async fn run(self, clock: Arc<dyn Clock>) {
        let idle = StdDuration::from_secs(self.cfg.dispatch_interval_secs);
        loop {
            match self.dispatch_once(clock.now()).await {
                Ok(r) if r.claimed > 0 => {
                    tracing::debug!(report = ?r, "notifications dispatched");
                    if r.claimed < self.cfg.batch as usize {
                        tokio::time::sleep(idle).await;
                    }
                }
                Ok(_) => tokio::time::sleep(idle).await,
                Err(e) => {
                    tracing::warn!(error = %e, "notification dispatch failed; retrying later");
                    tokio::time::sleep(idle).await;
                }
            }
        }
    }

    fn link(&self, row: &NotificationRow) -> String {
        format!("{}{}", self.public_url, row.link_path)
    }

    /// When a non-urgent SMS may go out, if not now.
    fn quiet_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        quiet_until(self.quiet.0, self.quiet.1, now)
    }

    async fn deliver(&self, row: &NotificationRow, now: DateTime<Utc>) -> Outcome {
        let link = self.link(row);
        match row.channel {
            Channel::Sms => {
                if !row.urgent {
                    if let Some(at) = self.quiet_until(now) {
                        return Outcome::Defer(at);
                    }
                }
                let msg = SmsMessage {
                    phone: row.address.clone(),
                    text: templates::finish_sms(&row.body, &link),
                    template: format!("notify_{}", row.kind),
                    params: [("link".to_string(), link.clone())].into_iter().collect(),
                };
                match self.sms.send(&msg).await {
                    Ok(()) => Outcome::Sent,
                    Err(SmsError::Temporary(e)) => Outcome::Retry(e),
                    Err(SmsError::Permanent(e)) => Outcome::Dead(e),
                }
            }
            Channel::Email => {
                let Some(mailer) = &self.mailer else {
                    return Outcome::Dead("email disabled (email.enabled = false)".into());
                };
                let msg = match mailer.message(
                    row.id,
                    &row.address,
                    &row.subject,
                    templates::email_text(&row.body, &link),
                    templates::email_html(&row.subject, &row.body, &link),
                ) {
                    Ok(m) => m,
                    Err(e) => return Outcome::Dead(e.to_string()),
                };
                match mailer.send(msg).await {
                    Ok(()) => Outcome::Sent,
                    Err(SendError::Temporary(e)) => Outcome::Retry(e),
                    Err(SendError::Permanent(e)) => Outcome::Dead(e),
                }
            }
            Channel::Wecom => {
                let md = templates::wecom_markdown(&row.subject, &row.body, &link);
                match wecom::send(&self.http, &row.address, &md).await {
                    Ok(()) => Outcome::Sent,
                    Err(SendError::Temporary(e)) => Outcome::Retry(e),
                    Err(SendError::Permanent(e)) => Outcome::Dead(e),
                }
            }
            // In-app rows are written as sent; nothing to deliver.
            Channel::InApp => Outcome::Sent,
        }
    }
}

/// `base × 2^(attempt−1)` capped at `max`, then a random 50–100 % of it (jitter), at least 1 s.
pub fn backoff(attempt: i32, base: i64, max: i64) -> Duration {
    let exp = base
        .saturating_mul(1i64 << (attempt - 1).clamp(0, 30))
        .min(max);
    let jittered = rand::thread_rng().gen_range(exp / 2..=exp.max(1));
    Duration::seconds(jittered.max(1))
}

/// If `now` (UTC) falls in the quiet hours `start`–`end` (local, may wrap midnight), the instant
/// they end.
pub fn quiet_until(start: NaiveTime, end: NaiveTime, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if start == end {
        return None;
    }
    let local = now.with_timezone(&Shanghai);
    let t = local.time();
    let inside = if start < end {
        t >= start && t < end
    } else {
        t >= start || t < end
    };
    if !inside {
        return None;
    }
    let mut day = local.date_naive();
    if t >= end {
        day = day.succ_opt()?;
    }
    Shanghai
        .from_local_datetime(&day.and_time(end))
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

/// Due rows: pending and due, or claimed by a dispatcher whose lease ran out; marked `sending`
/// under a lease. (Public for the delivery benchmark's floor, which runs it without delivering.)
pub fn claim(
    conn: &mut DbConn,
    now: DateTime<Utc>,
    batch: i64,
    lease: Duration,
) -> AppResult<Vec<NotificationRow>> {
    let ts = round_ts(now);
    let due = notifications::status
        .eq("pending")
        .and(notifications::next_attempt_at.le(ts))
        .or(notifications::status
            .eq("sending")
            .and(notifications::locked_until.le(ts)));
    let rows: Vec<NotificationRow> = load_skip_locked!(
        conn,
        notifications::table
            .filter(due)
            .order((
                notifications::next_attempt_at.asc(),
                notifications::id.asc(),
            ))
            .limit(batch)
            .select(NotificationRow::as_select()),
        load
    )?;
    if rows.is_empty() {
        return Ok(rows);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    diesel::update(notifications::table.filter(notifications::id.eq_any(&ids)))
        .set((
            notifications::status.eq("sending"),
            notifications::locked_until.eq(Some(round_ts(now + lease))),
            notifications::updated_at.eq(ts),
        ))
        .execute(conn)?;
    Ok(rows)
}

struct Update {
    id: i64,
    status: &'static str,
    attempts: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    error: Option<String>,
}

impl Update {
    fn sent(id: i64, attempts: i32) -> Update {
        Update {
            id,
            status: "sent",
            attempts,
            next_attempt_at: None,
            error: None,
        }
    }

    fn pending(id: i64, attempts: i32, at: DateTime<Utc>, error: Option<String>) -> Update {
        Update {
            id,
            status: "pending",
            attempts,
            next_attempt_at: Some(at),
            error,
        }
    }

    fn dead(id: i64, attempts: i32, error: String) -> Update {
        Update {
            id,
            status: "dead",
            attempts,
            next_attempt_at: None,
            error: Some(error.chars().take(1000).collect()),
        }
    }

    /// Only a row still claimed is changed (an admin may have touched it meanwhile).
    fn apply(&self, c: &mut DbConn, now: DateTime<Utc>) -> AppResult<()> {
        let ts = round_ts(now);
        let target = notifications::table
            .filter(notifications::id.eq(self.id))
            .filter(notifications::status.eq("sending"));
        match self.status {
            "sent" => diesel::update(target)
                .set((
                    notifications::status.eq("sent"),
                    notifications::attempts.eq(self.attempts),
                    notifications::locked_until.eq(None::<chrono::NaiveDateTime>),
                    notifications::sent_at.eq(Some(ts)),
                    notifications::last_error.eq(None::<String>),
                    notifications::updated_at.eq(ts),
                ))
                .execute(c)?,
            _ => diesel::update(target)
                .set((
                    notifications::status.eq(self.status),
                    notifications::attempts.eq(self.attempts),
                    notifications::locked_until.eq(None::<chrono::NaiveDateTime>),
                    notifications::next_attempt_at
                        .eq(round_ts(self.next_attempt_at.unwrap_or(now))),
                    notifications::last_error.eq(self.error.clone()),
                    notifications::updated_at.eq(ts),
                ))
                .execute(c)?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("time")
    }

    fn local(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Shanghai
            .with_ymd_and_hms(2026, 11, d, h, m, 0)
            .single()
            .expect("local")
            .with_timezone(&Utc)
    }

    #[test]
    fn quiet_hours_wrap_midnight_and_end_in_the_morning() {
        let (s, e) = (t(22, 0), t(7, 30));
        assert_eq!(quiet_until(s, e, local(27, 21, 59)), None);
        assert_eq!(quiet_until(s, e, local(27, 22, 0)), Some(local(28, 7, 30)));
        assert_eq!(quiet_until(s, e, local(28, 3, 0)), Some(local(28, 7, 30)));
        assert_eq!(quiet_until(s, e, local(28, 7, 30)), None);
        assert_eq!(quiet_until(t(1, 0), t(1, 0), local(28, 1, 0)), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for _ in 0..50 {
            let d1 = backoff(1, 30, 3600).num_seconds();
            assert!((15..=30).contains(&d1), "{d1}");
            let d4 = backoff(4, 30, 3600).num_seconds();
            assert!((120..=240).contains(&d4), "{d4}");
            let d20 = backoff(20, 30, 3600).num_seconds();
            assert!((1800..=3600).contains(&d20), "{d20}");
        }
    }
}
