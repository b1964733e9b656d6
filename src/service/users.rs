//! Accounts: residents (by phone) and staff/admins (by username and password).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::password;
use crate::db::models::{NewUser, UserRow};
use crate::db::schema::{refresh_tokens, users};
use crate::db::DbConn;
use crate::domain::role::Role;
use crate::domain::validate::{self, Phone};
use crate::error::{AppError, AppResult};
use crate::service::org::{self, OrgUnit};

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub role: Role,
    pub username: Option<String>,
    pub display_name: String,
    /// Full for the user themself and admins; masked (`138****5678`) for everyone else.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub org_unit: Option<OrgUnit>,
    pub disabled: bool,
    /// Set while wrong passwords keep the account locked (an admin may unlock it).
    pub locked_until: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub fn view(conn: &mut DbConn, row: &UserRow, full_phone: bool) -> AppResult<UserView> {
    let org_unit = match row.org_unit_id {
        Some(id) => org::find(conn, id)?.as_ref().map(OrgUnit::from),
        None => None,
    };
    Ok(UserView {
        id: row.id,
        role: row.role,
        username: row.username.clone(),
        display_name: row.display_name.clone(),
        phone: row.phone.as_ref().map(|p| {
            if full_phone {
                p.clone()
            } else {
                validate::mask_phone(p)
            }
        }),
        email: row.email.clone(),
        org_unit,
        disabled: row.disabled_at.is_some(),
        locked_until: row.locked_until.map(|t| t.and_utc()),
        created_at: row.created_at.and_utc(),
    })
}

pub fn find(conn: &mut DbConn, id: i64) -> AppResult<Option<UserRow>> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// What an admin (or `huying user add`) asks for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub role: Role,
    /// Required for staff and admins.
    pub username: Option<String>,
    /// Required for staff and admins (8–128 characters).
    pub password: Option<String>,
    pub display_name: String,
    /// Required for residents; used for SMS to staff.
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The unit a staff account answers for; its kind must match the role.
    pub org_unit_id: Option<i64>,
}

pub fn create(conn: &mut DbConn, input: &CreateUser, now: NaiveDateTime) -> AppResult<UserRow> {
    create_hashed(conn, input, None, now)
}

/// Checks a new password and hashes it on the bounded pool, before any transaction starts.
pub async fn hash_new_password(
    hasher: &std::sync::Arc<crate::auth::password::HashPool>,
    password: Option<&str>,
) -> AppResult<Option<String>> {
    match password {
        Some(p) => {
            validate::password(p)?;
            Ok(Some(hasher.hash(p.to_string()).await?))
        }
        None => Ok(None),
    }
}

/// [`create`] with the password already checked and hashed (see [`hash_new_password`]).
pub fn create_hashed(
    conn: &mut DbConn,
    input: &CreateUser,
    password_hash: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<UserRow> {
    let display_name = validate::text("display_name", &input.display_name, 40)?;
    let phone = input.phone.as_deref().map(Phone::parse).transpose()?;
    let email = input
        .email
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .map(validate::email)
        .transpose()?;
    let (username, hash) = if input.role == Role::Resident {
        if phone.is_none() {
            return Err(AppError::validation("missing_field", "居民账号须有手机号"));
        }
        (None, None)
    } else {
        let u = validate::username(input.username.as_deref().unwrap_or(""))?;
        let h = match (password_hash, input.password.as_deref()) {
            (Some(h), Some(_)) => h.to_string(),
            (_, p) => {
                let p = p.unwrap_or("");
                validate::password(p)?;
                password::hash(p)?
            }
        };
        (Some(u), Some(h))
    };
    let org_unit_id = check_unit(conn, input.role, input.org_unit_id)?;
    if let Some(u) = &username {
        let taken: i64 = users::table
            .filter(users::username.eq(u))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(AppError::conflict("duplicate_username", "该用户名已被使用"));
        }
    }
    if input.role == Role::Resident {
        if let Some(p) = &phone {
            let taken: i64 = users::table
                .filter(crate::db::sqlite_plans::resident_role())
                .filter(users::phone.eq(p.as_str()))
                .count()
                .get_result(conn)?;
            if taken > 0 {
                return Err(AppError::conflict("duplicate_phone", "该手机号已注册"));
            }
        }
    }
    let id: i64 = diesel::insert_into(users::table)
        .values(NewUser {
            role: input.role,
            username: username.as_deref(),
            phone: phone.as_ref().map(|p| p.as_str()),
            display_name: &display_name,
            email: email.as_deref(),
            org_unit_id,
            password_hash: hash.as_deref(),
            created_at: now,
            updated_at: now,
        })
        .returning(users::id)
        .get_result(conn)?;
    find(conn, id)?.ok_or(AppError::NotFound)
}

fn check_unit(conn: &mut DbConn, role: Role, org_unit_id: Option<i64>) -> AppResult<Option<i64>> {
    match (role.unit_kind(), org_unit_id) {
        (Some(kind), Some(id)) => {
            let unit = org::require_kind(conn, id, kind, "org_unit_id")?;
            if unit.archived_at.is_some() {
                return Err(AppError::validation("archived_unit", "该单位已归档"));
            }
            Ok(Some(id))
        }
        (Some(kind), None) => Err(AppError::validation(
            "missing_field",
            format!("该角色须绑定一个{}（org_unit_id）", kind.label_zh()),
        )),
        (None, Some(_)) if role == Role::Resident => {
            Err(AppError::validation("invalid_field", "居民账号不绑定单位"))
        }
        (None, other) => {
            if let Some(id) = other {
                if org::find(conn, id)?.is_none() {
                    return Err(AppError::validation("unknown_org_unit", "单位不存在"));
                }
            }
            Ok(other)
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub display_name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub org_unit_id: Option<i64>,
    /// A new password (staff and admins).
    pub password: Option<String>,
    /// `true` disables the account at once: its tokens stop working.
    pub disabled: Option<bool>,
}

pub fn update(
    conn: &mut DbConn,
    id: i64,
    input: &UpdateUser,
    now: NaiveDateTime,
) -> AppResult<UserRow> {
    update_hashed(conn, id, input, None, now)
}

/// [`update`] with the new password already checked and hashed (`password_hash`), so that the
/// write transaction does not wait on argon2: what the HTTP handler does.
pub fn update_hashed(
    conn: &mut DbConn,
    id: i64,
    input: &UpdateUser,
    password_hash: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<UserRow> {
    let row = find(conn, id)?.ok_or(AppError::NotFound)?;
    let role = row.role;
    if let Some(n) = &input.display_name {
        let n = validate::text("display_name", n, 40)?;
        diesel::update(users::table.find(id))
            .set(users::display_name.eq(n))
            .execute(conn)?;
    }
    if let Some(p) = &input.phone {
        let p = Phone::parse(p)?;
        diesel::update(users::table.find(id))
            .set(users::phone.eq(p.as_str()))
            .execute(conn)?;
    }
    if let Some(e) = &input.email {
        let e = if e.trim().is_empty() {
            None
        } else {
            Some(validate::email(e)?)
        };
        diesel::update(users::table.find(id))
            .set(users::email.eq(e))
            .execute(conn)?;
    }
    if input.org_unit_id.is_some() {
        let unit = check_unit(conn, role, input.org_unit_id)?;
        diesel::update(users::table.find(id))
            .set(users::org_unit_id.eq(unit))
            .execute(conn)?;
    }
    if let Some(p) = &input.password {
        if role == Role::Resident {
            return Err(AppError::validation(
                "invalid_field",
                "居民账号使用短信验证码登录，无密码",
            ));
        }
        let h = match password_hash {
            Some(h) => h.to_string(),
            None => {
                validate::password(p)?;
                password::hash(p)?
            }
        };
        diesel::update(users::table.find(id))
            .set(users::password_hash.eq(h))
            .execute(conn)?;
        revoke_all_refresh_tokens(conn, id, now)?;
        crate::service::auth::bump_token_generation(conn, id)?;
    }
    if let Some(d) = input.disabled {
        let value = if d {
            Some(row.disabled_at.unwrap_or(now))
        } else {
            None
        };
        diesel::update(users::table.find(id))
            .set(users::disabled_at.eq(value))
            .execute(conn)?;
        if d {
            revoke_all_refresh_tokens(conn, id, now)?;
            // Re-enabling later does not bring these tokens back.
            crate::service::auth::bump_token_generation(conn, id)?;
        }
    }
    diesel::update(users::table.find(id))
        .set(users::updated_at.eq(now))
        .execute(conn)?;
    // Name, unit or access changed: every instance forgets what it kept of the account.
    crate::live::account_changed(id);
    find(conn, id)?.ok_or(AppError::NotFound)
}

pub fn revoke_all_refresh_tokens(
    conn: &mut DbConn,
    user_id: i64,
    now: NaiveDateTime,
) -> AppResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListUsers {
    pub role: Option<Role>,
    pub org_unit_id: Option<i64>,
    /// Text in username, display name or phone.
    pub q: Option<String>,
    /// Page size, 1–100 (default 50).
    pub limit: Option<i64>,
    /// Return users with an id greater than this (from `next_cursor`).
    pub cursor: Option<i64>,
}

pub fn list(conn: &mut DbConn, f: &ListUsers) -> AppResult<(Vec<UserRow>, Option<i64>)> {
    let limit = f.limit.unwrap_or(50).clamp(1, 100);
    let mut q = users::table.select(UserRow::as_select()).into_boxed();
    if let Some(r) = f.role {
        q = q.filter(users::role.eq(r.as_str()));
    }
    if let Some(u) = f.org_unit_id {
        q = q.filter(users::org_unit_id.eq(u));
    }
    if let Some(text) = validate::search(f.q.as_deref())? {
        let pattern = format!("%{}%", text.replace(['%', '_'], ""));
        q = q.filter(
            users::username
                .like(pattern.clone())
                .or(users::display_name.like(pattern.clone()))
                .or(users::phone.like(pattern)),
        );
    }
    if let Some(c) = f.cursor {
        q = q.filter(users::id.gt(c));
    }
    let mut rows: Vec<UserRow> = q.order(users::id.asc()).limit(limit + 1).load(conn)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok((rows, next))
}

/// A colleague as another staff member of the same unit sees them: for the assign dialog.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Colleague {
    pub id: i64,
    pub display_name: String,
}

/// The active (not disabled) staff accounts of one unit, by name.
pub fn unit_staff(conn: &mut DbConn, unit_id: i64) -> AppResult<Vec<Colleague>> {
    let staff_roles: Vec<&str> = [Role::CompoundStaff, Role::CommunityStaff, Role::StreetStaff]
        .iter()
        .map(|r| r.as_str())
        .collect();
    let rows: Vec<(i64, String)> = users::table
        .filter(users::org_unit_id.eq(unit_id))
        .filter(users::disabled_at.is_null())
        .filter(users::role.eq_any(staff_roles))
        .order((users::display_name.asc(), users::id.asc()))
        .select((users::id, users::display_name))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, display_name)| Colleague { id, display_name })
        .collect())
}
