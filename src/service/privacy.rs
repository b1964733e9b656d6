//! Personal data (个人信息保护法): a resident's own export, erasure at their request or when the
//! retention period ends, and the audit log of who saw or took personal data.
//!
//! Erasure replaces identities, never facts: the tickets, their timelines and every statistic
//! stay as they were; the resident's name, phone and email are replaced by a pseudonym in the
//! account and in every text stored about their tickets.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::db::models::{TicketRow, UserRow};
use crate::db::notify_schema::{notification_settings, notifications};
use crate::db::schema::{
    audit_log, otp_codes, refresh_tokens, ticket_attachments, ticket_events, tickets, users,
};
use crate::db::DbConn;
use crate::domain::privacy::{self, AuditAction};
use crate::domain::role::{ActorRole, Role};
use crate::domain::ticket::Status;
use crate::domain::validate::mask_phone;
use crate::error::{AppError, AppResult};
use crate::notify::inbox::{self, NotificationSettings};
use crate::notify::NotificationRow;
use crate::service::tickets::view::{self, EventView, TicketView};
use crate::service::users::{self as user_svc, UserView};

diesel::define_sql_function! {
    /// SQL `replace(s, from, to)`, the same on SQLite and PostgreSQL.
    fn replace(s: diesel::sql_types::Text, from: diesel::sql_types::Text, to: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

diesel::define_sql_function! {
    #[sql_name = "replace"]
    fn replace_opt(
        s: diesel::sql_types::Nullable<diesel::sql_types::Text>,
        from: diesel::sql_types::Text,
        to: diesel::sql_types::Text
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Who did something the audit log records; `None` is the system.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub id: Option<i64>,
    pub role: ActorRole,
}

impl Actor {
    pub const SYSTEM: Actor = Actor {
        id: None,
        role: ActorRole::System,
    };
}

impl From<&AuthUser> for Actor {
    fn from(u: &AuthUser) -> Actor {
        Actor {
            id: Some(u.id),
            role: ActorRole::from(u.role),
        }
    }
}

/// Adds one row to the audit log, in the caller's transaction.
pub fn audit(
    conn: &mut DbConn,
    by: Actor,
    action: AuditAction,
    subject_user_id: Option<i64>,
    ticket_id: Option<i64>,
    detail: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::created_at.eq(now),
            audit_log::actor_id.eq(by.id),
            audit_log::actor_role.eq(by.role),
            audit_log::action.eq(action),
            audit_log::subject_user_id.eq(subject_user_id),
            audit_log::ticket_id.eq(ticket_id),
            audit_log::detail.eq(detail),
        ))
        .execute(conn)?;
    Ok(())
}

/// One audit log row as admins read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    /// `null` for the system (retention).
    pub actor_id: Option<i64>,
    pub actor_role: ActorRole,
    /// The actor's name now (a pseudonym if the actor was erased since).
    pub actor_name: Option<String>,
    pub action: AuditAction,
    pub action_label: String,
    pub subject_user_id: Option<i64>,
    pub ticket_id: Option<i64>,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next_before: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Rows with an id below this one (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Rows per page, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only rows about this resident.
    pub subject_user_id: Option<i64>,
}

pub fn audit_page(conn: &mut DbConn, q: &AuditQuery) -> AppResult<AuditPage> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::validation(
            "invalid_limit",
            "limit 须在 1 到 200 之间",
        ));
    }
    let mut query = audit_log::table
        .left_join(users::table.on(users::id.nullable().eq(audit_log::actor_id)))
        .into_boxed();
    if let Some(b) = q.before {
        query = query.filter(audit_log::id.lt(b));
    }
    if let Some(a) = q.action {
        query = query.filter(audit_log::action.eq(a));
    }
    if let Some(s) = q.subject_user_id {
        query = query.filter(audit_log::subject_user_id.eq(s));
    }
    type Row = (
        i64,
        NaiveDateTime,
        Option<i64>,
        ActorRole,
        Option<String>,
        AuditAction,
        Option<i64>,
        Option<i64>,
        Option<String>,
    );
    let rows: Vec<Row> = query
        .order(audit_log::id.desc())
        .limit(limit + 1)
        .select((
            audit_log::id,
            audit_log::created_at,
            audit_log::actor_id,
            audit_log::actor_role,
            users::display_name.nullable(),
            audit_log::action,
            audit_log::subject_user_id,
            audit_log::ticket_id,
            audit_log::detail,
        ))
        .load(conn)?;
    let more = rows.len() as i64 > limit;
    let items: Vec<AuditEntry> = rows
        .into_iter()
        .take(limit as usize)
        .map(
            |(id, at, actor_id, actor_role, actor_name, action, subject, ticket_id, detail)| {
                AuditEntry {
                    id,
                    created_at: at.and_utc(),
                    actor_id,
                    actor_role,
                    actor_name,
                    action,
                    action_label: action.label_zh().to_string(),
                    subject_user_id: subject,
                    ticket_id,
                    detail,
                }
            },
        )
        .collect();
    let next_before = if more {
        items.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage { items, next_before })
}

/// A photo's record in the export (the files themselves are served by the ticket routes).
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentRecord {
    pub id: i64,
    pub ticket_id: i64,
    pub content_type: String,
    pub size_bytes: i64,
    pub original_name: Option<String>,
    pub url: String,
    pub created_at: DateTime<Utc>,
}

/// Everything the service keeps about a person, as they may download it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonalData {
    pub exported_at: DateTime<Utc>,
    /// The account, with the full phone number.
    pub account: UserView,
    pub notification_settings: NotificationSettings,
    /// The tickets they called in.
    pub tickets: Vec<TicketView>,
    /// The timelines of those tickets, as they see them (without staff-internal notes).
    pub events: Vec<EventView>,
    pub attachments: Vec<AttachmentRecord>,
    /// Every notification addressed to them, on every channel.
    #[schema(value_type = Vec<Object>)]
    pub notifications: Vec<NotificationRow>,
}

/// The export of `user`'s own data; recorded in the audit log.
pub fn export(
    conn: &mut DbConn,
    user: &AuthUser,
    now: DateTime<Utc>,
    auto_close_after: chrono::Duration,
) -> AppResult<PersonalData> {
    let row = user_svc::find(conn, user.id)?.ok_or(AppError::NotFound)?;
    let rows: Vec<TicketRow> = tickets::table
        .filter(tickets::resident_id.eq(user.id))
        .order(tickets::id.asc())
        .select(TicketRow::as_select())
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
    let event_rows = ticket_events::table
        .filter(ticket_events::ticket_id.eq_any(&ids))
        .order((ticket_events::ticket_id.asc(), ticket_events::id.asc()))
        .select(crate::db::models::TicketEventRow::as_select())
        .load(conn)?;
    let attachments = ticket_attachments::table
        .filter(ticket_attachments::ticket_id.eq_any(&ids))
        .order(ticket_attachments::id.asc())
        .select(crate::db::models::AttachmentRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|a| AttachmentRecord {
            url: format!("/api/v1/tickets/{}/attachments/{}", a.ticket_id, a.id),
            id: a.id,
            ticket_id: a.ticket_id,
            content_type: a.content_type,
            size_bytes: a.size_bytes,
            original_name: a.original_name,
            created_at: a.created_at.and_utc(),
        })
        .collect();
    let notifications = notifications::table
        .filter(notifications::recipient_id.eq(user.id))
        .order(notifications::id.asc())
        .select(NotificationRow::as_select())
        .load(conn)?;
    let data = PersonalData {
        exported_at: now,
        account: user_svc::view(conn, &row, true)?,
        notification_settings: inbox::get_settings(conn, user.id)?,
        tickets: view::tickets(conn, user, &rows, now, auto_close_after)?,
        events: view::events(conn, user, None, event_rows)?,
        attachments,
        notifications,
    };
    audit(
        conn,
        Actor::from(user),
        AuditAction::PersonalDataExport,
        Some(user.id),
        None,
        None,
        crate::db::round_ts(now),
    )?;
    Ok(data)
}

/// Replaces each of `identifiers` by `pseudonym` in every text column of `ticket_ids`' rows
/// (the ticket, its timeline, photo names, notifications about it).
fn scrub_tickets(
    conn: &mut DbConn,
    ticket_ids: &[i64],
    identifiers: &[String],
    pseudonym: &str,
) -> AppResult<()> {
    for chunk in ticket_ids.chunks(500) {
        for id in identifiers {
            let id = id.as_str();
            diesel::update(tickets::table.filter(tickets::id.eq_any(chunk)))
                .set((
                    tickets::title.eq(replace(tickets::title, id, pseudonym)),
                    tickets::description.eq(replace(tickets::description, id, pseudonym)),
                    tickets::location_text.eq(replace_opt(tickets::location_text, id, pseudonym)),
                    tickets::assigned_handler.eq(replace_opt(
                        tickets::assigned_handler,
                        id,
                        pseudonym,
                    )),
                    tickets::resolution_note.eq(replace_opt(
                        tickets::resolution_note,
                        id,
                        pseudonym,
                    )),
                    tickets::decline_reason.eq(replace_opt(tickets::decline_reason, id, pseudonym)),
                    tickets::rating_comment.eq(replace_opt(tickets::rating_comment, id, pseudonym)),
                ))
                .execute(conn)?;
            diesel::update(ticket_events::table.filter(ticket_events::ticket_id.eq_any(chunk)))
                .set((
                    ticket_events::note.eq(replace_opt(ticket_events::note, id, pseudonym)),
                    ticket_events::reason.eq(replace_opt(ticket_events::reason, id, pseudonym)),
                ))
                .execute(conn)?;
            diesel::update(
                crate::db::schema::callbacks::table
                    .filter(crate::db::schema::callbacks::ticket_id.eq_any(chunk)),
            )
            .set(crate::db::schema::callbacks::note.eq(replace_opt(
                crate::db::schema::callbacks::note,
                id,
                pseudonym,
            )))
            .execute(conn)?;
            diesel::update(
                ticket_attachments::table.filter(ticket_attachments::ticket_id.eq_any(chunk)),
            )
            .set(ticket_attachments::original_name.eq(replace_opt(
                ticket_attachments::original_name,
                id,
                pseudonym,
            )))
            .execute(conn)?;
            diesel::update(notifications::table.filter(notifications::ticket_id.eq_any(chunk)))
                .set((
                    notifications::subject.eq(replace(notifications::subject, id, pseudonym)),
                    notifications::body.eq(replace(notifications::body, id, pseudonym)),
                    notifications::address.eq(replace(notifications::address, id, pseudonym)),
                    notifications::last_error.eq(replace_opt(
                        notifications::last_error,
                        id,
                        pseudonym,
                    )),
                ))
                .execute(conn)?;
        }
        // A transition read before the erasure must not write the old texts back.
        diesel::update(tickets::table.filter(tickets::id.eq_any(chunk)))
            .set(tickets::version.eq(tickets::version + 1))
            .execute(conn)?;
        // Their texts changed: open views reload them and kept queue pages are read again.
        let scopes: Vec<(i64, i64, i64, i64, i64)> = tickets::table
            .filter(tickets::id.eq_any(chunk))
            .select((
                tickets::id,
                tickets::street_id,
                tickets::community_id,
                tickets::compound_id,
                tickets::resident_id,
            ))
            .load(conn)?;
        for (id, street_id, community_id, compound_id, resident_id) in scopes {
            crate::live::scope_changed(crate::live::TicketScope {
                id,
                street_id,
                community_id,
                compound_id,
                resident_id,
            });
        }
    }
    Ok(())
}

/// What an erasure did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    pub user_id: i64,
    /// The name the account and its tickets now show.
    pub pseudonym: String,
    /// Tickets kept, with the identity replaced.
    pub tickets: usize,
}

/// Erases a resident's identity in the caller's write transaction: the account gets the
/// pseudonym, loses phone and email, is disabled (its tokens stop working at once) and its
/// sessions and pending codes go; every text stored about its tickets has the name, phone and
/// email replaced; its notifications lose their address, and those not yet sent are dropped.
/// Tickets, timelines and statistics stay. Recorded in the audit log.
pub fn erase(
    conn: &mut DbConn,
    user_id: i64,
    by: Actor,
    action: AuditAction,
    now: NaiveDateTime,
) -> AppResult<Erased> {
    let row: UserRow = user_svc::find(conn, user_id)?.ok_or(AppError::NotFound)?;
    if row.role != Role::Resident {
        return Err(AppError::Forbidden);
    }
    let pseudonym = privacy::pseudonym(row.id);
    let settings_email: Option<String> = notification_settings::table
        .find(user_id)
        .select(notification_settings::email_address)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten();
    let mut identifiers = privacy::identifiers(
        row.phone.as_deref(),
        row.phone.as_deref().map(mask_phone),
        &row.display_name,
        row.email.as_deref(),
    );
    identifiers.extend(settings_email.filter(|e| !e.is_empty()));
    identifiers.retain(|i| i != &pseudonym);
    let ticket_ids: Vec<i64> = tickets::table
        .filter(tickets::resident_id.eq(user_id))
        .select(tickets::id)
        .load(conn)?;
    scrub_tickets(conn, &ticket_ids, &identifiers, &pseudonym)?;
    // Their own notifications: no address left, and nothing more is sent.
    diesel::update(
        notifications::table
            .filter(notifications::recipient_id.eq(user_id))
            .filter(notifications::status.eq("pending")),
    )
    .set((
        notifications::status.eq("dead"),
        notifications::last_error.eq("recipient erased"),
        notifications::updated_at.eq(now),
    ))
    .execute(conn)?;
    diesel::update(notifications::table.filter(notifications::recipient_id.eq(user_id)))
        .set(notifications::address.eq(""))
        .execute(conn)?;
    diesel::update(notification_settings::table.find(user_id))
        .set(notification_settings::email_address.eq(None::<String>))
        .execute(conn)?;
    if let Some(phone) = &row.phone {
        diesel::delete(otp_codes::table.filter(otp_codes::phone.eq(phone))).execute(conn)?;
    }
    diesel::delete(refresh_tokens::table.filter(refresh_tokens::user_id.eq(user_id)))
        .execute(conn)?;
    diesel::update(users::table.find(user_id))
        .set((
            users::display_name.eq(&pseudonym),
            users::phone.eq(None::<String>),
            users::email.eq(None::<String>),
            users::disabled_at.eq(row.disabled_at.unwrap_or(now)),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    crate::live::account_changed(user_id);
    audit(conn, by, action, Some(user_id), None, None, now)?;
    tracing::info!(user_id, tickets = ticket_ids.len(), action = %action, "personal data erased");
    Ok(Erased {
        user_id,
        pseudonym,
        tickets: ticket_ids.len(),
    })
}

/// Residents not yet erased whose tickets are all finished (closed, withdrawn or declined)
/// and untouched since before the retention cutoff.
pub fn due_for_retention(conn: &mut DbConn, now: DateTime<Utc>, years: u32) -> AppResult<Vec<i64>> {
    let Some(cutoff) = privacy::retention_cutoff(now, years) else {
        return Ok(Vec::new());
    };
    let cutoff = cutoff.naive_utc();
    let unfinished = [Status::Open, Status::Acknowledged, Status::Resolved];
    let busy: std::collections::HashSet<i64> = tickets::table
        .filter(
            tickets::status
                .eq_any(unfinished)
                .or(tickets::updated_at.ge(cutoff)),
        )
        .select(tickets::resident_id)
        .distinct()
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let mut ids: Vec<i64> = tickets::table
        .inner_join(users::table.on(users::id.eq(tickets::resident_id)))
        .filter(users::phone.is_not_null())
        .select(tickets::resident_id)
        .distinct()
        .load::<i64>(conn)?
        .into_iter()
        .filter(|id| !busy.contains(id))
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Erases every resident whose retention period has ended, one transaction each; returns how
/// many. Called daily by `serve`, and by tests with their own clock.
pub fn erase_expired(db: &crate::db::Db, now: DateTime<Utc>, years: u32) -> AppResult<usize> {
    let due = {
        let mut conn = db.get()?;
        due_for_retention(&mut conn, now, years)?
    };
    let at = crate::db::round_ts(now);
    let mut conn = db.get()?;
    for id in &due {
        crate::db::write_tx(&mut conn, |c| {
            erase(c, *id, Actor::SYSTEM, AuditAction::RetentionErasure, at)
        })?;
    }
    Ok(due.len())
}
