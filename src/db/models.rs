//! Rows as stored. Conversion into API shapes lives in `api`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = org_units)]
pub struct OrgUnitRow {
    pub id: i64,
    pub kind: String,
    pub parent_id: Option<i64>,
    pub code: Option<String>,
    pub name: String,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = org_units)]
pub struct NewOrgUnit<'a> {
    pub kind: &'a str,
    pub parent_id: Option<i64>,
    pub code: Option<&'a str>,
    pub name: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub role: String,
    pub username: Option<String>,
    pub phone: Option<String>,
    pub display_name: String,
    pub email: Option<String>,
    pub org_unit_id: Option<i64>,
    pub password_hash: Option<String>,
    pub disabled_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl std::fmt::Debug for UserRow {
    // The password hash stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("username", &self.username)
            .field("org_unit_id", &self.org_unit_id)
            .field("disabled", &self.disabled_at.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub role: &'a str,
    pub username: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub org_unit_id: Option<i64>,
    pub password_hash: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = otp_codes)]
pub struct OtpRow {
    pub phone: String,
    pub code_hash: String,
    pub attempts: i32,
    pub expires_at: NaiveDateTime,
    pub sent_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: i64,
    pub user_id: i64,
    pub family: String,
    pub token_hash: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub user_id: i64,
    pub family: &'a str,
    pub token_hash: &'a str,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = categories)]
pub struct CategoryRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub sort_order: i32,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tickets)]
#[diesel(treat_none_as_null = true)]
pub struct TicketRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub reference: String,
    pub status: String,
    pub level: String,
    pub street_id: i64,
    pub community_id: i64,
    pub compound_id: i64,
    pub building_id: Option<i64>,
    pub category_id: i64,
    pub urgency: String,
    pub title: String,
    pub description: String,
    pub location_text: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub resident_id: i64,
    pub assignee_id: Option<i64>,
    pub assigned_handler: Option<String>,
    pub resolution_note: Option<String>,
    pub decline_reason: Option<String>,
    pub declined_at: Option<NaiveDateTime>,
    pub rating: Option<i32>,
    pub rating_comment: Option<String>,
    pub closed_by: Option<String>,
    pub escalation_count: i32,
    pub disputes_at_level: i32,
    pub returned_by_community: bool,
    pub returned_by_street: bool,
    pub level_entered_at: NaiveDateTime,
    pub level_acknowledged_at: Option<NaiveDateTime>,
    pub ack_due_at: Option<NaiveDateTime>,
    pub resolve_due_at: Option<NaiveDateTime>,
    pub due_at: NaiveDateTime,
    pub next_check_at: Option<NaiveDateTime>,
    pub ack_warned: bool,
    pub resolve_warned: bool,
    pub overdue: bool,
    pub version: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub paused_at: Option<NaiveDateTime>,
    pub paused_minutes: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ticket_events)]
pub struct TicketEventRow {
    pub id: i64,
    pub ticket_id: i64,
    pub actor_id: Option<i64>,
    pub actor_role: String,
    pub action: String,
    pub level: String,
    pub status_before: Option<String>,
    pub status_after: String,
    pub level_after: String,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub internal: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ticket_events)]
pub struct NewTicketEvent {
    pub ticket_id: i64,
    pub actor_id: Option<i64>,
    pub actor_role: String,
    pub action: String,
    pub level: String,
    pub status_before: Option<String>,
    pub status_after: String,
    pub level_after: String,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub internal: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ticket_attachments)]
pub struct AttachmentRow {
    pub id: i64,
    pub ticket_id: i64,
    pub uploader_id: i64,
    pub storage_name: String,
    pub original_name: Option<String>,
    pub content_type: String,
    pub size_bytes: i64,
    pub created_at: NaiveDateTime,
}
