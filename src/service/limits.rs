//! Abuse limits counted in the database, so they hold across every instance sharing it and
//! follow the injected clock: sign-in codes per phone and in total, tickets per resident,
//! uploads per ticket. (Per-address limits live in memory: `crate::limits`.)

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::config::LimitsSettings;
use crate::db::schema::{idempotency_keys, otp_sends, tickets, upload_attempts};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::limits::wait_zh;

fn hour() -> Duration {
    Duration::hours(1)
}

fn day() -> Duration {
    Duration::days(1)
}

/// Seconds until the oldest event of a full window leaves it.
fn retry_after(oldest: Option<NaiveDateTime>, window: Duration, now: NaiveDateTime) -> i64 {
    oldest.map_or(1, |t| (t + window - now).num_seconds().max(1))
}

fn too_many(code: &'static str, what: &str, secs: i64) -> AppError {
    AppError::TooManyRequests {
        code,
        message: format!("{what}，请 {} 后再试", wait_zh(secs)),
        retry_after: Some(secs),
    }
}

/// Counts a sign-in code about to be sent to the phone whose keyed hash is `phone_hash`, or
/// refuses it: per phone per hour and per day, and the budget of all instances per hour.
pub fn record_otp_send(
    conn: &mut DbConn,
    phone_hash: &str,
    cfg: &LimitsSettings,
    now: NaiveDateTime,
) -> AppResult<()> {
    // Nothing older than a day is ever counted.
    diesel::delete(otp_sends::table.filter(otp_sends::sent_at.le(now - day()))).execute(conn)?;
    for (window, limit, what) in [
        (
            hour(),
            cfg.otp_per_phone_per_hour,
            "该手机号本小时获取验证码次数已达上限",
        ),
        (
            day(),
            cfg.otp_per_phone_per_day,
            "该手机号今日获取验证码次数已达上限",
        ),
    ] {
        let (count, oldest): (i64, Option<NaiveDateTime>) = otp_sends::table
            .filter(otp_sends::phone_hash.eq(phone_hash))
            .filter(otp_sends::sent_at.gt(now - window))
            .select((
                diesel::dsl::count_star(),
                diesel::dsl::min(otp_sends::sent_at),
            ))
            .first(conn)?;
        if count >= i64::from(limit) {
            return Err(too_many(
                "otp_phone_limited",
                what,
                retry_after(oldest, window, now),
            ));
        }
    }
    let (sent, oldest): (i64, Option<NaiveDateTime>) = otp_sends::table
        .filter(otp_sends::sent_at.gt(now - hour()))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(otp_sends::sent_at),
        ))
        .first(conn)?;
    let budget = i64::from(cfg.sms_per_hour);
    if sent >= budget {
        return Err(too_many(
            "sms_budget_exhausted",
            "短信发送量已达本小时上限",
            retry_after(oldest, hour(), now),
        ));
    }
    if sent + 1 == budget {
        tracing::error!(
            budget,
            "SMS budget reached: no more sign-in codes are sent this hour (limits.sms_per_hour)"
        );
    }
    diesel::insert_into(otp_sends::table)
        .values((
            otp_sends::phone_hash.eq(phone_hash),
            otp_sends::sent_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Un-counts the last code for this phone: the gateway did not send it.
pub fn forget_otp_send(conn: &mut DbConn, phone_hash: &str) -> AppResult<()> {
    let last: Option<i64> = otp_sends::table
        .filter(otp_sends::phone_hash.eq(phone_hash))
        .order(otp_sends::id.desc())
        .select(otp_sends::id)
        .first(conn)
        .optional()?;
    if let Some(id) = last {
        diesel::delete(otp_sends::table.find(id)).execute(conn)?;
    }
    Ok(())
}

/// Refuses a resident's new ticket beyond `limit` in 24 hours. A replay of an Idempotency-Key
/// already used is not a new ticket and passes.
pub fn check_new_ticket(
    conn: &mut DbConn,
    resident_id: i64,
    idempotency_key: Option<&str>,
    limit: u32,
    now: NaiveDateTime,
) -> AppResult<()> {
    if let Some(key) = idempotency_key {
        let seen: i64 = idempotency_keys::table
            .filter(idempotency_keys::user_id.eq(resident_id))
            .filter(idempotency_keys::idem_key.eq(key))
            .count()
            .get_result(conn)?;
        if seen > 0 {
            return Ok(());
        }
    }
    // The newest `limit` calls of the last day at most: the check costs the limit, not what a
    // resident (or a partner system calling for many) sent today. When they are all there, the
    // oldest of them is the one whose day ends first.
    let recent: Vec<NaiveDateTime> = tickets::table
        .filter(tickets::resident_id.eq(resident_id))
        .filter(tickets::created_at.gt(now - day()))
        .order(tickets::created_at.desc())
        .select(tickets::created_at)
        .limit(i64::from(limit))
        .load(conn)?;
    if recent.len() >= limit as usize {
        let oldest = recent.last().copied();
        return Err(too_many(
            "ticket_rate_limited",
            &format!("24 小时内最多提交 {limit} 条诉求"),
            retry_after(oldest, day(), now),
        ));
    }
    Ok(())
}

/// Counts an upload attempt on a ticket (before its body is read), or refuses it beyond
/// `limit` per hour.
pub fn record_upload(
    conn: &mut DbConn,
    ticket_id: i64,
    limit: u32,
    now: NaiveDateTime,
) -> AppResult<()> {
    diesel::delete(
        upload_attempts::table
            .filter(upload_attempts::ticket_id.eq(ticket_id))
            .filter(upload_attempts::attempted_at.le(now - hour())),
    )
    .execute(conn)?;
    let (count, oldest): (i64, Option<NaiveDateTime>) = upload_attempts::table
        .filter(upload_attempts::ticket_id.eq(ticket_id))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(upload_attempts::attempted_at),
        ))
        .first(conn)?;
    if count >= i64::from(limit) {
        return Err(too_many(
            "upload_rate_limited",
            "该诉求上传图片过于频繁",
            retry_after(oldest, hour(), now),
        ));
    }
    diesel::insert_into(upload_attempts::table)
        .values((
            upload_attempts::ticket_id.eq(ticket_id),
            upload_attempts::attempted_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}
