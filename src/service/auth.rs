//! Sign-in flows. Each function runs inside the caller's write transaction.

use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use rand::RngCore;

use crate::auth::otp;
use crate::auth::tokens::{random_token, sha256_hex};
use crate::config::{AuthSettings, LimitsSettings};
use crate::db::models::{NewRefreshToken, NewUser, OtpRow, RefreshTokenRow, UserRow};
use crate::db::schema::{app_secrets, otp_codes, refresh_tokens, users};
use crate::db::DbConn;
use crate::domain::role::Role;
use crate::domain::validate::Phone;
use crate::error::{AppError, AppResult};
use crate::service::users as user_svc;

/// The signing secret: from config if set, else generated once and shared through the
/// database, so several instances agree without configuration.
pub fn signing_secret(conn: &mut DbConn, now: NaiveDateTime) -> AppResult<Vec<u8>> {
    shared_secret(conn, "jwt", now)
}

/// A random secret named `name`, generated once and shared through the database, so several
/// instances (and the command line) agree without configuration.
pub fn shared_secret(conn: &mut DbConn, name: &str, now: NaiveDateTime) -> AppResult<Vec<u8>> {
    let existing: Option<String> = app_secrets::table
        .find(name)
        .select(app_secrets::value)
        .first(conn)
        .optional()?;
    if let Some(v) = existing {
        return Ok(v.into_bytes());
    }
    let mut bytes = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut bytes);
    let value = base64::engine::general_purpose::STANDARD.encode(bytes);
    // In a savepoint: on PostgreSQL a failed insert would otherwise abort the whole transaction.
    let inserted = conn.transaction(|c| {
        diesel::insert_into(app_secrets::table)
            .values((
                app_secrets::name.eq(name),
                app_secrets::value.eq(&value),
                app_secrets::created_at.eq(now),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(value.into_bytes()),
        // Another instance won the race: use its secret.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(app_secrets::table
            .find(name)
            .select(app_secrets::value)
            .first::<String>(conn)?
            .into_bytes()),
        Err(e) => Err(e.into()),
    }
}

/// Stores a new code for `phone` and returns it for sending. Refuses within the resend
/// interval.
pub fn start_otp(
    conn: &mut DbConn,
    phone: &Phone,
    key: &[u8],
    cfg: &AuthSettings,
    now: NaiveDateTime,
) -> AppResult<String> {
    let existing: Option<OtpRow> = otp_codes::table
        .find(phone.as_str())
        .select(OtpRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(row) = &existing {
        let wait = cfg.otp_resend_secs - (now - row.sent_at).num_seconds();
        if wait > 0 {
            return Err(AppError::TooManyRequests {
                code: "otp_rate_limited",
                message: format!("验证码发送过于频繁，请 {wait} 秒后再试"),
                retry_after: Some(wait),
            });
        }
    }
    let code = otp::generate();
    let row = OtpRow {
        phone: phone.as_str().to_string(),
        code_hash: otp::hash(key, phone.as_str(), &code),
        attempts: 0,
        expires_at: now + Duration::seconds(cfg.otp_ttl_secs),
        sent_at: now,
    };
    if existing.is_some() {
        diesel::update(otp_codes::table.find(phone.as_str()))
            .set((
                otp_codes::code_hash.eq(&row.code_hash),
                otp_codes::attempts.eq(0),
                otp_codes::expires_at.eq(row.expires_at),
                otp_codes::sent_at.eq(row.sent_at),
            ))
            .execute(conn)?;
    } else {
        diesel::insert_into(otp_codes::table)
            .values(&row)
            .execute(conn)?;
    }
    Ok(code)
}

/// Forgets a code whose SMS could not be sent, so the resident may ask again at once.
pub fn cancel_otp(conn: &mut DbConn, phone: &Phone) -> AppResult<()> {
    diesel::delete(otp_codes::table.find(phone.as_str())).execute(conn)?;
    Ok(())
}

/// The outcome of checking a code: committed either way, so wrong tries are counted.
pub enum OtpCheck {
    Ok(Box<UserRow>),
    Wrong,
    Locked,
}

pub fn verify_otp(
    conn: &mut DbConn,
    phone: &Phone,
    code: &str,
    key: &[u8],
    cfg: &AuthSettings,
    now: NaiveDateTime,
) -> AppResult<OtpCheck> {
    let row: Option<OtpRow> = otp_codes::table
        .find(phone.as_str())
        .select(OtpRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else {
        return Ok(OtpCheck::Wrong);
    };
    if row.attempts >= cfg.otp_max_attempts {
        return Ok(OtpCheck::Locked);
    }
    if row.expires_at <= now || !otp::verify(key, phone.as_str(), code.trim(), &row.code_hash) {
        diesel::update(otp_codes::table.find(phone.as_str()))
            .set(otp_codes::attempts.eq(otp_codes::attempts + 1))
            .execute(conn)?;
        return Ok(OtpCheck::Wrong);
    }
    // A code works once.
    diesel::delete(otp_codes::table.find(phone.as_str())).execute(conn)?;
    let user = resident_for_phone(conn, phone, None, now)?;
    if user.disabled_at.is_some() {
        return Err(AppError::Unauthorized("account_disabled"));
    }
    Ok(OtpCheck::Ok(Box::new(user)))
}

/// The resident account of `phone`, created if the number is new (SMS sign-in, and staff
/// entering a call on a resident's behalf). `name` names a new account only.
pub fn resident_for_phone(
    conn: &mut DbConn,
    phone: &Phone,
    name: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<UserRow> {
    let user: Option<UserRow> = users::table
        .filter(crate::db::sqlite_plans::resident_role())
        .filter(users::phone.eq(phone.as_str()))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(u) = user {
        return Ok(u);
    }
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| format!("居民{}", &phone.as_str()[7..]));
    let id: i64 = diesel::insert_into(users::table)
        .values(NewUser {
            role: Role::Resident,
            username: None,
            phone: Some(phone.as_str()),
            display_name: &name,
            email: None,
            org_unit_id: None,
            password_hash: None,
            created_at: now,
            updated_at: now,
        })
        .returning(users::id)
        .get_result(conn)?;
    user_svc::find(conn, id)?.ok_or(AppError::NotFound)
}

/// The account a password sign-in names (usernames are stored lower-case), if any.
pub fn find_by_username(conn: &mut DbConn, username: &str) -> AppResult<Option<UserRow>> {
    let name = username.trim().to_lowercase();
    Ok(users::table
        .filter(users::username.eq(&name))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// 429 `account_locked`: wrong passwords locked the account for `secs` more seconds.
pub fn account_locked(secs: i64) -> AppError {
    AppError::TooManyRequests {
        code: "account_locked",
        message: format!(
            "密码错误次数过多，账号已锁定，请 {} 后再试，或联系管理员解锁",
            crate::limits::wait_zh(secs)
        ),
        retry_after: Some(secs),
    }
}

/// Seconds the account stays locked, if it is.
pub fn locked_for(user: &UserRow, now: NaiveDateTime) -> Option<i64> {
    user.locked_until
        .filter(|t| *t > now)
        .map(|t| (t - now).num_seconds().max(1))
}

pub enum PasswordOutcome {
    SignedIn(Box<UserRow>),
    Wrong,
    /// This wrong password locked the account (its holder is told by SMS).
    Locked {
        user: Box<UserRow>,
        until: NaiveDateTime,
    },
}

/// Records the result of a password check on `user_id` (checked outside any transaction; the
/// hash is slow). Wrong passwords are counted with an atomic increment, so concurrent attempts
/// on several instances are all counted; at `password_max_failures` the account locks for
/// `lockout_base_secs × 2^(earlier lockouts)`, at most `lockout_max_secs`.
pub fn record_password_check(
    conn: &mut DbConn,
    user_id: i64,
    correct: bool,
    cfg: &LimitsSettings,
    now: NaiveDateTime,
) -> AppResult<PasswordOutcome> {
    let user = user_svc::find(conn, user_id)?.ok_or(AppError::InvalidCredentials)?;
    // Locked by a concurrent attempt while this password was being checked.
    if let Some(secs) = locked_for(&user, now) {
        return Err(account_locked(secs));
    }
    if correct {
        if user.disabled_at.is_some() {
            return Err(AppError::InvalidCredentials);
        }
        if user.failed_logins != 0 || user.lockouts != 0 || user.locked_until.is_some() {
            clear_lockout(conn, user_id)?;
        }
        return Ok(PasswordOutcome::SignedIn(Box::new(user)));
    }
    let failures: i32 = diesel::update(users::table.find(user_id))
        .set(users::failed_logins.eq(users::failed_logins + 1))
        .returning(users::failed_logins)
        .get_result(conn)?;
    if i64::from(failures) < i64::from(cfg.password_max_failures) {
        return Ok(PasswordOutcome::Wrong);
    }
    let lockouts = user.lockouts.max(0);
    let secs = cfg
        .lockout_base_secs
        .saturating_mul(1u64 << lockouts.min(20))
        .min(cfg.lockout_max_secs);
    let until = now + Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2));
    // Only the attempt that reaches the limit locks (and texts the holder).
    let locked = diesel::update(
        users::table
            .find(user_id)
            .filter(users::failed_logins.ge(failures)),
    )
    .set((
        users::failed_logins.eq(0),
        users::lockouts.eq(users::lockouts + 1),
        users::locked_until.eq(until),
    ))
    .execute(conn)?;
    if locked == 0 {
        return Ok(PasswordOutcome::Wrong);
    }
    Ok(PasswordOutcome::Locked {
        user: Box::new(user),
        until,
    })
}

/// A successful sign-in or an admin's unlock: the next lockout is the short one again.
pub fn clear_lockout(conn: &mut DbConn, user_id: i64) -> AppResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::failed_logins.eq(0),
            users::lockouts.eq(0),
            users::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Stops every access token the user holds (they carry the old generation).
pub fn bump_token_generation(conn: &mut DbConn, user_id: i64) -> AppResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::token_generation.eq(users::token_generation + 1))
        .execute(conn)?;
    // Every instance forgets what it kept of the account (`auth::Accounts`).
    crate::live::account_changed(user_id);
    Ok(())
}

/// Issues a refresh token in `family` (a new family at sign-in).
pub fn new_refresh_token(
    conn: &mut DbConn,
    user_id: i64,
    family: &str,
    cfg: &AuthSettings,
    now: NaiveDateTime,
) -> AppResult<String> {
    let token = random_token();
    diesel::insert_into(refresh_tokens::table)
        .values(NewRefreshToken {
            user_id,
            family,
            token_hash: &sha256_hex(&token),
            expires_at: now + Duration::seconds(cfg.refresh_ttl_secs),
            created_at: now,
        })
        .execute(conn)?;
    Ok(token)
}

pub enum RefreshOutcome {
    Rotated {
        user: Box<UserRow>,
        token: String,
    },
    /// A used or revoked token came back: its whole family is now revoked.
    Reused,
    Invalid,
}

pub fn rotate_refresh(
    conn: &mut DbConn,
    token: &str,
    cfg: &AuthSettings,
    now: NaiveDateTime,
) -> AppResult<RefreshOutcome> {
    let hash = sha256_hex(token);
    let row: Option<RefreshTokenRow> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(&hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else {
        return Ok(RefreshOutcome::Invalid);
    };
    if row.used_at.is_some() || row.revoked_at.is_some() {
        revoke_family(conn, &row.family, now)?;
        return Ok(RefreshOutcome::Reused);
    }
    if row.expires_at <= now {
        return Ok(RefreshOutcome::Invalid);
    }
    // Conditional on still being unused, so two concurrent refreshes cannot both rotate.
    let claimed = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::id.eq(row.id))
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)?;
    if claimed == 0 {
        revoke_family(conn, &row.family, now)?;
        return Ok(RefreshOutcome::Reused);
    }
    let user = user_svc::find(conn, row.user_id)?.ok_or(AppError::NotFound)?;
    if user.disabled_at.is_some() {
        return Ok(RefreshOutcome::Invalid);
    }
    let token = new_refresh_token(conn, user.id, &row.family, cfg, now)?;
    Ok(RefreshOutcome::Rotated {
        user: Box::new(user),
        token,
    })
}

pub fn revoke_family(conn: &mut DbConn, family: &str, now: NaiveDateTime) -> AppResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// Logout: revokes the family of the given refresh token and stops the user's access tokens
/// (on every device: the others get new ones with their own refresh tokens). Unknown tokens are
/// ignored so that logout always succeeds.
pub fn logout(conn: &mut DbConn, token: &str, now: NaiveDateTime) -> AppResult<()> {
    let found: Option<(String, i64)> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(sha256_hex(token)))
        .select((refresh_tokens::family, refresh_tokens::user_id))
        .first(conn)
        .optional()?;
    if let Some((family, user_id)) = found {
        revoke_family(conn, &family, now)?;
        bump_token_generation(conn, user_id)?;
    }
    Ok(())
}
