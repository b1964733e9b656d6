//! The in-app inbox, per-user settings, the admin view of the outbox, and unit robots.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules::Channel;
use super::{NotificationRow, DEFAULT_PREFS};
use crate::db::notify_schema::{notification_settings, notifications, unit_webhooks};
use crate::db::schema::users;
use crate::db::DbConn;
use crate::domain::role::Role;
use crate::domain::validate::{self, mask_phone, Lines};
use crate::error::{AppError, AppResult};

/// One entry of the inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxItem {
    pub id: i64,
    pub ticket_id: i64,
    /// Template kind, e.g. `created`, `called_up`, `resolved`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Relative link to the ticket page.
    pub link: String,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    pub unread: i64,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn item(r: NotificationRow) -> InboxItem {
    InboxItem {
        id: r.id,
        ticket_id: r.ticket_id,
        kind: r.kind,
        title: r.subject,
        body: r.body,
        link: r.link_path,
        read: r.read_at.is_some(),
        created_at: r.created_at.and_utc(),
    }
}

pub fn unread_count(conn: &mut DbConn, user_id: i64) -> AppResult<i64> {
    Ok(notifications::table
        .filter(notifications::recipient_id.eq(user_id))
        .filter(notifications::channel.eq("inapp"))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(conn)?)
}

/// Unread first, newest first within each part. The cursor is `u<id>` or `r<id>`: the last item
/// shown and whether it was unread.
pub fn list(
    conn: &mut DbConn,
    user_id: i64,
    cursor: Option<&str>,
    limit: i64,
) -> AppResult<InboxPage> {
    let limit = limit.clamp(1, 100);
    let bad = || AppError::validation("invalid_cursor", "cursor 无效");
    let (in_unread, after): (bool, Option<i64>) = match cursor {
        None | Some("") => (true, None),
        Some(c) => {
            let id = c.get(1..).and_then(|n| n.parse().ok()).ok_or_else(bad)?;
            match c.as_bytes().first() {
                Some(b'u') => (true, Some(id)),
                Some(b'r') => (false, Some(id)),
                _ => return Err(bad()),
            }
        }
    };
    let base = || {
        notifications::table
            .filter(notifications::recipient_id.eq(user_id))
            .filter(notifications::channel.eq("inapp"))
            .select(NotificationRow::as_select())
            .order(notifications::id.desc())
            .limit(limit + 1)
            .into_boxed()
    };
    let mut rows: Vec<(bool, NotificationRow)> = Vec::new();
    if in_unread {
        let mut q = base().filter(notifications::read_at.is_null());
        if let Some(a) = after {
            q = q.filter(notifications::id.lt(a));
        }
        rows.extend(q.load(conn)?.into_iter().map(|r| (true, r)));
    }
    if (rows.len() as i64) <= limit {
        let mut q = base().filter(notifications::read_at.is_not_null());
        if let (false, Some(a)) = (in_unread, after) {
            q = q.filter(notifications::id.lt(a));
        }
        let want = limit + 1 - rows.len() as i64;
        rows.extend(
            q.load(conn)?
                .into_iter()
                .take(want as usize)
                .map(|r| (false, r)),
        );
    }
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last()
            .map(|(u, r)| format!("{}{}", if *u { 'u' } else { 'r' }, r.id))
    } else {
        None
    };
    Ok(InboxPage {
        unread: unread_count(conn, user_id)?,
        items: rows.into_iter().map(|(_, r)| item(r)).collect(),
        next_cursor,
    })
}

pub fn mark_read(conn: &mut DbConn, user_id: i64, id: i64, now: NaiveDateTime) -> AppResult<()> {
    let mine = notifications::table
        .filter(notifications::id.eq(id))
        .filter(notifications::recipient_id.eq(user_id))
        .filter(notifications::channel.eq("inapp"));
    let exists: i64 = mine.count().get_result(conn)?;
    if exists == 0 {
        return Err(AppError::NotFound);
    }
    diesel::update(mine.filter(notifications::read_at.is_null()))
        .set(notifications::read_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

pub fn mark_all_read(conn: &mut DbConn, user_id: i64, now: NaiveDateTime) -> AppResult<usize> {
    Ok(diesel::update(
        notifications::table
            .filter(notifications::recipient_id.eq(user_id))
            .filter(notifications::channel.eq("inapp"))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(Some(now)))
    .execute(conn)?)
}

/// A user's notification settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Text messages to the account's phone.
    pub sms: bool,
    /// The in-app inbox.
    pub inapp: bool,
    /// Email (staff only; residents are told by SMS or in-app only).
    pub email: bool,
    /// Address for notification email; empty = the account's email.
    pub email_address: Option<String>,
}

pub fn get_settings(conn: &mut DbConn, user_id: i64) -> AppResult<NotificationSettings> {
    let role: Role = users::table.find(user_id).select(users::role).first(conn)?;
    let resident = role == Role::Resident;
    let row: Option<(bool, bool, bool, Option<String>)> = notification_settings::table
        .find(user_id)
        .select((
            notification_settings::sms,
            notification_settings::inapp,
            notification_settings::email,
            notification_settings::email_address,
        ))
        .first(conn)
        .optional()?;
    let (sms, inapp, email, email_address) = row.unwrap_or((
        DEFAULT_PREFS.sms,
        DEFAULT_PREFS.inapp,
        DEFAULT_PREFS.email,
        None,
    ));
    Ok(NotificationSettings {
        sms,
        inapp,
        email: email && !resident,
        email_address,
    })
}

pub fn put_settings(
    conn: &mut DbConn,
    user_id: i64,
    s: &NotificationSettings,
    now: NaiveDateTime,
) -> AppResult<NotificationSettings> {
    let role: Role = users::table.find(user_id).select(users::role).first(conn)?;
    let address = s
        .email_address
        .as_deref()
        .map(|a| validate::clean("email_address", a, Lines::One))
        .transpose()?
        .filter(|a| !a.is_empty());
    if role == Role::Resident && (s.email || address.is_some()) {
        return Err(AppError::validation(
            "email_not_available",
            "居民只能选择短信或站内消息",
        ));
    }
    if let Some(a) = &address {
        if a.len() > 254 || a.parse::<lettre::Address>().is_err() {
            return Err(AppError::validation("invalid_email", "邮箱地址格式不正确"));
        }
    }
    let values = || {
        (
            notification_settings::sms.eq(s.sms),
            notification_settings::inapp.eq(s.inapp),
            notification_settings::email.eq(s.email),
            notification_settings::email_address.eq(address.clone()),
            notification_settings::updated_at.eq(now),
        )
    };
    let updated = diesel::update(notification_settings::table.find(user_id))
        .set(values())
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(notification_settings::table)
            .values((notification_settings::user_id.eq(user_id), values()))
            .execute(conn)?;
    }
    get_settings(conn, user_id)
}

/// An outbox row as admins see it (phones masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxView {
    pub id: i64,
    pub event_id: i64,
    pub ticket_id: i64,
    pub recipient_id: Option<i64>,
    pub channel: Channel,
    pub address: String,
    pub kind: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

fn outbox_view(r: NotificationRow) -> OutboxView {
    OutboxView {
        id: r.id,
        event_id: r.event_id,
        ticket_id: r.ticket_id,
        recipient_id: r.recipient_id,
        address: match r.channel {
            Channel::Sms => mask_phone(&r.address),
            // A webhook URL carries its key.
            Channel::Wecom => r.address.split('?').next().unwrap_or("").to_string() + "?key=****",
            Channel::Email | Channel::InApp => r.address.clone(),
        },
        channel: r.channel,
        kind: r.kind,
        subject: r.subject,
        status: r.status,
        attempts: r.attempts,
        next_attempt_at: r.next_attempt_at.and_utc(),
        last_error: r.last_error,
        created_at: r.created_at.and_utc(),
        sent_at: r.sent_at.map(|d| d.and_utc()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxPage {
    pub items: Vec<OutboxView>,
    pub next_cursor: Option<i64>,
}

pub fn admin_list(
    conn: &mut DbConn,
    status: Option<&str>,
    cursor: Option<i64>,
    limit: i64,
) -> AppResult<OutboxPage> {
    let limit = limit.clamp(1, 200);
    let mut q = notifications::table
        .filter(notifications::channel.ne("inapp"))
        .select(NotificationRow::as_select())
        .order(notifications::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(s) = status {
        if !["pending", "sending", "sent", "dead"].contains(&s) {
            return Err(AppError::validation(
                "invalid_status",
                "status 须为 pending、sending、sent 或 dead",
            ));
        }
        q = q.filter(notifications::status.eq(s.to_string()));
    }
    if let Some(c) = cursor {
        q = q.filter(notifications::id.lt(c));
    }
    let mut rows: Vec<NotificationRow> = q.load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok(OutboxPage {
        next_cursor: if more {
            rows.last().map(|r| r.id)
        } else {
            None
        },
        items: rows.into_iter().map(outbox_view).collect(),
    })
}

/// Puts a dead row back in the queue, due now, with a fresh set of attempts.
pub fn retry(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> AppResult<OutboxView> {
    let row: NotificationRow = notifications::table
        .find(id)
        .select(NotificationRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    if row.status != "dead" {
        return Err(AppError::conflict(
            "not_dead",
            "只有投递失败（dead）的通知可以重试",
        ));
    }
    diesel::update(
        notifications::table
            .filter(notifications::id.eq(id))
            .filter(notifications::status.eq("dead")),
    )
    .set((
        notifications::status.eq("pending"),
        notifications::attempts.eq(0),
        notifications::next_attempt_at.eq(now),
        notifications::updated_at.eq(now),
    ))
    .execute(conn)?;
    let row: NotificationRow = notifications::table
        .find(id)
        .select(NotificationRow::as_select())
        .first(conn)?;
    Ok(outbox_view(row))
}

pub fn set_webhook(
    conn: &mut DbConn,
    unit_id: i64,
    url: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<()> {
    crate::service::org::find(conn, unit_id)?.ok_or(AppError::NotFound)?;
    match url {
        None => {
            diesel::delete(unit_webhooks::table.find(unit_id)).execute(conn)?;
        }
        Some(u) => {
            let parsed = url::Url::parse(u)
                .map_err(|_| AppError::validation("invalid_url", "webhook 须为 http(s) 地址"))?;
            if !matches!(parsed.scheme(), "http" | "https") || u.len() > 500 {
                return Err(AppError::validation(
                    "invalid_url",
                    "webhook 须为 http(s) 地址",
                ));
            }
            let n = diesel::update(unit_webhooks::table.find(unit_id))
                .set((unit_webhooks::url.eq(u), unit_webhooks::updated_at.eq(now)))
                .execute(conn)?;
            if n == 0 {
                diesel::insert_into(unit_webhooks::table)
                    .values((
                        unit_webhooks::org_unit_id.eq(unit_id),
                        unit_webhooks::url.eq(u),
                        unit_webhooks::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
        }
    }
    Ok(())
}
