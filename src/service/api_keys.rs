//! Keys of partner systems (Open311, docs/open311.md): issued and revoked by an admin, shown in
//! full once, stored only as a SHA-256 with a short visible prefix.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::tokens::{random_token, sha256_hex};
use crate::db::open311_schema::api_keys;
use crate::db::DbConn;
use crate::domain::partner::{
    PartnerSource, DEFAULT_RATE_PER_MINUTE, KEY_PREFIX, MAX_RATE_PER_MINUTE, VISIBLE_CHARS,
};
use crate::domain::privacy::AuditAction;
use crate::domain::validate;
use crate::error::{AppError, AppResult};
use crate::service::privacy::{audit, Actor};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: i64,
    pub partner: String,
    pub source: PartnerSource,
    pub key_prefix: String,
    pub rate_limit_per_minute: i32,
    pub created_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

/// What an admin asks for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueApiKey {
    /// The partner system, e.g. 「12345 市民服务热线」 (1–60 characters).
    pub partner: String,
    /// The source its tickets get: `hotline` or `app`.
    pub source: PartnerSource,
    /// Requests a minute this key may make (1–10,000; default 60).
    pub rate_limit_per_minute: Option<i32>,
}

/// A key as the list shows it: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: i64,
    pub partner: String,
    pub source: PartnerSource,
    /// The key's first characters, to tell keys apart (`hy311_AbC123…`).
    pub key_prefix: String,
    pub rate_limit_per_minute: i32,
    pub created_at: DateTime<Utc>,
    /// Set once revoked; a revoked key answers 403.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A newly issued key: the only time `api_key` is ever shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The key to give the partner (`api_key` of Open311 requests). Shown once; only its hash
    /// is kept.
    pub api_key: String,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(r: ApiKeyRow) -> ApiKeyView {
        ApiKeyView {
            id: r.id,
            partner: r.partner,
            source: r.source,
            key_prefix: r.key_prefix,
            rate_limit_per_minute: r.rate_limit_per_minute,
            created_at: r.created_at.and_utc(),
            revoked_at: r.revoked_at.map(|t| t.and_utc()),
        }
    }
}

/// The checked request: (partner, rate), before the transaction starts.
pub fn check_issue(input: &IssueApiKey) -> AppResult<(String, i32)> {
    let partner = validate::text("partner（对接系统名称）", &input.partner, 60)?;
    let rate = input
        .rate_limit_per_minute
        .unwrap_or(DEFAULT_RATE_PER_MINUTE);
    if !(1..=MAX_RATE_PER_MINUTE).contains(&rate) {
        return Err(AppError::validation(
            "invalid_rate_limit",
            format!("rate_limit_per_minute 须为 1–{MAX_RATE_PER_MINUTE}"),
        ));
    }
    Ok((partner, rate))
}

/// Issues a key (audited); returns it in full, once.
pub fn issue(
    conn: &mut DbConn,
    by: Actor,
    input: &IssueApiKey,
    now: NaiveDateTime,
) -> AppResult<IssuedApiKey> {
    let (partner, rate) = check_issue(input)?;
    // 32 random bytes, URL-safe base64: nothing to escape in a form body or a query string.
    let key = format!("{KEY_PREFIX}{}", random_token());
    let prefix: String = key.chars().take(VISIBLE_CHARS).collect();
    let id: i64 = diesel::insert_into(api_keys::table)
        .values((
            api_keys::partner.eq(&partner),
            api_keys::source.eq(input.source),
            api_keys::key_prefix.eq(&prefix),
            api_keys::key_hash.eq(sha256_hex(&key)),
            api_keys::rate_limit_per_minute.eq(rate),
            api_keys::created_by.eq(by.id),
            api_keys::created_at.eq(now),
        ))
        .returning(api_keys::id)
        .get_result(conn)?;
    let detail = format!("{partner}（{prefix}…）");
    audit(
        conn,
        by,
        AuditAction::ApiKeyIssue,
        None,
        None,
        Some(&detail),
        now,
    )?;
    tracing::info!(api_key_id = id, key_prefix = %prefix, "api key issued");
    let row = find(conn, id)?.ok_or(AppError::NotFound)?;
    Ok(IssuedApiKey {
        key: row.into(),
        api_key: key,
    })
}

pub fn find(conn: &mut DbConn, id: i64) -> AppResult<Option<ApiKeyRow>> {
    Ok(api_keys::table
        .find(id)
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every key, newest first.
pub fn list(conn: &mut DbConn) -> AppResult<Vec<ApiKeyView>> {
    let rows: Vec<ApiKeyRow> = api_keys::table
        .order(api_keys::id.desc())
        .select(ApiKeyRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(ApiKeyView::from).collect())
}

/// Revokes a key (audited). Revoking a revoked key changes nothing and answers the same.
pub fn revoke(conn: &mut DbConn, by: Actor, id: i64, now: NaiveDateTime) -> AppResult<ApiKeyView> {
    let row = find(conn, id)?.ok_or(AppError::NotFound)?;
    if row.revoked_at.is_some() {
        return Ok(row.into());
    }
    diesel::update(api_keys::table.find(id))
        .set(api_keys::revoked_at.eq(now))
        .execute(conn)?;
    let detail = format!("{}（{}…）", row.partner, row.key_prefix);
    audit(
        conn,
        by,
        AuditAction::ApiKeyRevoke,
        None,
        None,
        Some(&detail),
        now,
    )?;
    tracing::info!(api_key_id = id, key_prefix = %row.key_prefix, "api key revoked");
    let row = find(conn, id)?.ok_or(AppError::NotFound)?;
    Ok(row.into())
}

/// The live key a partner sent, or 403: missing, unknown and revoked keys all look the same.
pub fn authenticate(conn: &mut DbConn, key: Option<&str>) -> AppResult<ApiKeyRow> {
    let key = key.map(str::trim).filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(AppError::Forbidden);
    };
    // Only well-formed keys reach the database; anything else cannot match a hash we issued.
    if key.len() > 100 || !key.starts_with(KEY_PREFIX) {
        return Err(AppError::Forbidden);
    }
    let row: Option<ApiKeyRow> = api_keys::table
        .filter(api_keys::key_hash.eq(sha256_hex(key)))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?;
    match row {
        Some(r) if r.revoked_at.is_none() => Ok(r),
        _ => Err(AppError::Forbidden),
    }
}
