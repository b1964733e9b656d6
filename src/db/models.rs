//! Rows as stored. Conversion into API shapes lives in `api`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;
use crate::domain::ids::{TicketId, UnitId, UserId};
use crate::domain::org::OrgKind;
use crate::domain::role::{ActorRole, Role};
use crate::domain::ticket::{ClosedBy, EventKind, Level, Source, Status, Ticket, Urgency};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = org_units)]
pub struct OrgUnitRow {
    pub id: i64,
    pub kind: OrgKind,
    pub parent_id: Option<i64>,
    pub code: Option<String>,
    pub name: String,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Streets: which level makes the callbacks (`None`: the configured default).
    pub callback_level: Option<crate::domain::callback::CallbackLevel>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = org_units)]
pub struct NewOrgUnit<'a> {
    pub kind: OrgKind,
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
    pub role: Role,
    pub username: Option<String>,
    pub phone: Option<String>,
    pub display_name: String,
    pub email: Option<String>,
    pub org_unit_id: Option<i64>,
    pub password_hash: Option<String>,
    pub disabled_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Copied into every access token; a token of an older generation is refused.
    pub token_generation: i64,
    /// Wrong passwords since the last sign-in or lockout.
    pub failed_logins: i32,
    /// Lockouts since the last successful sign-in: each one lasts twice as long as the one before.
    pub lockouts: i32,
    pub locked_until: Option<NaiveDateTime>,
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
    pub role: Role,
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
// No nullable column of `tickets` has a default, so NULL is what DEFAULT would give; with
// DEFAULT, diesel inserts a slice of rows on SQLite one statement per row (the benchmarks'
// fills) and writes a create's INSERT with a column list that depends on the row.
#[diesel(treat_none_as_default_value = false)]
pub struct TicketRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub reference: String,
    pub status: Status,
    pub level: Level,
    pub street_id: i64,
    pub community_id: i64,
    pub compound_id: i64,
    pub building_id: Option<i64>,
    pub category_id: i64,
    pub urgency: Urgency,
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
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub declined_at: Option<NaiveDateTime>,
    pub rating: Option<i32>,
    pub rating_comment: Option<String>,
    pub closed_by: Option<ClosedBy>,
    pub escalation_count: i32,
    pub disputes_at_level: i32,
    pub returned_by_community: bool,
    pub returned_by_street: bool,
    #[diesel(deserialize_as = crate::db::timestamps::Ts)]
    pub level_entered_at: NaiveDateTime,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub level_acknowledged_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub ack_due_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub resolve_due_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = crate::db::timestamps::Ts)]
    pub due_at: NaiveDateTime,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub next_check_at: Option<NaiveDateTime>,
    pub ack_warned: bool,
    pub resolve_warned: bool,
    pub overdue: bool,
    pub version: i32,
    #[diesel(deserialize_as = crate::db::timestamps::Ts)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = crate::db::timestamps::Ts)]
    pub updated_at: NaiveDateTime,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub acknowledged_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub resolved_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub closed_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub paused_at: Option<NaiveDateTime>,
    pub paused_minutes: i64,
    pub source: Source,
    /// The staff member who entered the call (on a resident's behalf, or an own finding).
    pub entered_by: Option<i64>,
    /// The reference of the platform a hotline call came from (12345 …).
    pub external_ref: Option<String>,
    pub raised_level: Option<Level>,
    pub identity_hidden: bool,
    pub transfer_count: i32,
    pub urge_count: i32,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub urged_by_community_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub urged_by_street_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub decide_due_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub extension_due_at: Option<NaiveDateTime>,
    pub extension_reason: Option<String>,
    #[diesel(deserialize_as = crate::db::timestamps::OptTs)]
    pub extension_requested_at: Option<NaiveDateTime>,
    pub extension_lapsed: bool,
    pub extensions_granted: i32,
    /// Metres, as the resident's browser reported it with the coordinates.
    pub location_accuracy_m: Option<f64>,
}

/// The columns the domain's rules change (those [`TicketRow::set_state`] takes over): a change
/// writes only these, so SQLite leaves alone the indexes, checks and foreign keys of the columns
/// only people write (it maintains every index that names a column of the SET list, changed or
/// not; all columns cost a call-up twice the index work).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = tickets)]
#[diesel(treat_none_as_null = true)]
pub struct TicketState {
    status: Status,
    level: Level,
    assignee_id: Option<i64>,
    assigned_handler: Option<String>,
    resolution_note: Option<String>,
    decline_reason: Option<String>,
    declined_at: Option<NaiveDateTime>,
    rating: Option<i32>,
    rating_comment: Option<String>,
    closed_by: Option<ClosedBy>,
    escalation_count: i32,
    disputes_at_level: i32,
    returned_by_community: bool,
    returned_by_street: bool,
    level_entered_at: NaiveDateTime,
    level_acknowledged_at: Option<NaiveDateTime>,
    ack_due_at: Option<NaiveDateTime>,
    resolve_due_at: Option<NaiveDateTime>,
    due_at: NaiveDateTime,
    next_check_at: Option<NaiveDateTime>,
    ack_warned: bool,
    resolve_warned: bool,
    overdue: bool,
    version: i32,
    updated_at: NaiveDateTime,
    acknowledged_at: Option<NaiveDateTime>,
    resolved_at: Option<NaiveDateTime>,
    closed_at: Option<NaiveDateTime>,
    paused_at: Option<NaiveDateTime>,
    paused_minutes: i64,
    compound_id: i64,
    transfer_count: i32,
    urge_count: i32,
    urged_by_community_at: Option<NaiveDateTime>,
    urged_by_street_at: Option<NaiveDateTime>,
    decide_due_at: Option<NaiveDateTime>,
    extension_due_at: Option<NaiveDateTime>,
    extension_reason: Option<String>,
    extension_requested_at: Option<NaiveDateTime>,
    extension_lapsed: bool,
    extensions_granted: i32,
}

impl TicketState {
    /// What the rules decided for `t`, as columns.
    pub fn of(t: &Ticket) -> TicketState {
        TicketState {
            status: t.status,
            level: t.level,
            assignee_id: t.assignee_id.map(i64::from),
            assigned_handler: t.assigned_handler.clone(),
            resolution_note: t.resolution_note.clone(),
            decline_reason: t.decline_reason.clone(),
            declined_at: t.declined_at,
            rating: t.rating,
            rating_comment: t.rating_comment.clone(),
            closed_by: t.closed_by,
            escalation_count: t.escalation_count,
            disputes_at_level: t.disputes_at_level,
            returned_by_community: t.returned_by_community,
            returned_by_street: t.returned_by_street,
            level_entered_at: t.level_entered_at,
            level_acknowledged_at: t.level_acknowledged_at,
            ack_due_at: t.ack_due_at,
            resolve_due_at: t.resolve_due_at,
            due_at: t.due_at,
            next_check_at: t.next_check_at,
            ack_warned: t.ack_warned,
            resolve_warned: t.resolve_warned,
            overdue: t.overdue,
            version: t.version,
            updated_at: t.updated_at,
            acknowledged_at: t.acknowledged_at,
            resolved_at: t.resolved_at,
            closed_at: t.closed_at,
            paused_at: t.paused_at,
            paused_minutes: t.paused_minutes,
            // A transfer moves the ticket to another compound of the same community.
            compound_id: t.compound_id.0,
            transfer_count: t.transfer_count,
            urge_count: t.urge_count,
            urged_by_community_at: t.urged_by_community_at,
            urged_by_street_at: t.urged_by_street_at,
            decide_due_at: t.decide_due_at,
            extension_due_at: t.extension_due_at,
            extension_reason: t.extension_reason.clone(),
            extension_requested_at: t.extension_requested_at,
            extension_lapsed: t.extension_lapsed,
            extensions_granted: t.extensions_granted,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ticket_events)]
pub struct TicketEventRow {
    pub id: i64,
    pub ticket_id: i64,
    pub actor_id: Option<i64>,
    pub actor_role: ActorRole,
    pub action: EventKind,
    pub level: Level,
    pub status_before: Option<Status>,
    pub status_after: Status,
    pub level_after: Level,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub internal: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ticket_events)]
// A None is NULL, not DEFAULT: SQLite has no DEFAULT in VALUES, and diesel would insert a
// slice of rows that may hold one row by row instead of with one multi-row INSERT.
#[diesel(treat_none_as_default_value = false)]
pub struct NewTicketEvent {
    pub ticket_id: i64,
    pub actor_id: Option<i64>,
    pub actor_role: ActorRole,
    pub action: EventKind,
    pub level: Level,
    pub status_before: Option<Status>,
    pub status_after: Status,
    pub level_after: Level,
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

/// What people wrote into a ticket and the rules never change.
#[derive(Debug, Clone)]
pub struct TicketContent {
    pub reference: String,
    pub title: String,
    pub description: String,
    pub building_id: Option<i64>,
    pub location_text: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub location_accuracy_m: Option<f64>,
    pub entered_by: Option<i64>,
    pub external_ref: Option<String>,
}

impl TicketRow {
    /// A row for a new ticket (its id is given by the database).
    pub fn new(t: &Ticket, c: TicketContent, created_at: NaiveDateTime) -> TicketRow {
        let mut row = TicketRow {
            id: 0,
            reference: c.reference,
            status: t.status,
            level: t.level,
            street_id: t.street_id.0,
            community_id: t.community_id.0,
            compound_id: t.compound_id.0,
            building_id: c.building_id,
            category_id: t.category_id,
            urgency: t.urgency,
            title: c.title,
            description: c.description,
            location_text: c.location_text,
            latitude: c.latitude,
            longitude: c.longitude,
            resident_id: t.resident_id.0,
            assignee_id: None,
            assigned_handler: None,
            resolution_note: None,
            decline_reason: None,
            declined_at: None,
            rating: None,
            rating_comment: None,
            closed_by: None,
            escalation_count: 0,
            disputes_at_level: 0,
            returned_by_community: false,
            returned_by_street: false,
            level_entered_at: created_at,
            level_acknowledged_at: None,
            ack_due_at: None,
            resolve_due_at: None,
            due_at: created_at,
            next_check_at: None,
            ack_warned: false,
            resolve_warned: false,
            overdue: false,
            version: 0,
            created_at,
            updated_at: created_at,
            acknowledged_at: None,
            resolved_at: None,
            closed_at: None,
            paused_at: None,
            paused_minutes: 0,
            source: t.source,
            entered_by: c.entered_by,
            external_ref: c.external_ref,
            raised_level: t.raised_level,
            identity_hidden: t.identity_hidden,
            transfer_count: 0,
            urge_count: 0,
            urged_by_community_at: None,
            urged_by_street_at: None,
            decide_due_at: None,
            extension_due_at: None,
            extension_reason: None,
            extension_requested_at: None,
            extension_lapsed: false,
            extensions_granted: 0,
            location_accuracy_m: c.location_accuracy_m,
        };
        row.set_state(t);
        row
    }

    /// The ticket as the rules see it.
    pub fn to_domain(&self) -> Ticket {
        Ticket {
            id: TicketId(self.id),
            street_id: UnitId(self.street_id),
            community_id: UnitId(self.community_id),
            compound_id: UnitId(self.compound_id),
            resident_id: UserId(self.resident_id),
            category_id: self.category_id,
            urgency: self.urgency,
            status: self.status,
            level: self.level,
            assignee_id: self.assignee_id.map(UserId),
            assigned_handler: self.assigned_handler.clone(),
            resolution_note: self.resolution_note.clone(),
            decline_reason: self.decline_reason.clone(),
            declined_at: self.declined_at,
            rating: self.rating,
            rating_comment: self.rating_comment.clone(),
            closed_by: self.closed_by,
            escalation_count: self.escalation_count,
            disputes_at_level: self.disputes_at_level,
            returned_by_community: self.returned_by_community,
            returned_by_street: self.returned_by_street,
            level_entered_at: self.level_entered_at,
            level_acknowledged_at: self.level_acknowledged_at,
            ack_due_at: self.ack_due_at,
            resolve_due_at: self.resolve_due_at,
            due_at: self.due_at,
            next_check_at: self.next_check_at,
            ack_warned: self.ack_warned,
            resolve_warned: self.resolve_warned,
            overdue: self.overdue,
            version: self.version,
            updated_at: self.updated_at,
            acknowledged_at: self.acknowledged_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            paused_at: self.paused_at,
            paused_minutes: self.paused_minutes,
            source: self.source,
            raised_level: self.raised_level,
            identity_hidden: self.identity_hidden,
            transfer_count: self.transfer_count,
            urge_count: self.urge_count,
            urged_by_community_at: self.urged_by_community_at,
            urged_by_street_at: self.urged_by_street_at,
            decide_due_at: self.decide_due_at,
            extension_due_at: self.extension_due_at,
            extension_reason: self.extension_reason.clone(),
            extension_requested_at: self.extension_requested_at,
            extension_lapsed: self.extension_lapsed,
            extensions_granted: self.extensions_granted,
        }
    }

    /// Takes over what the rules changed (the columns of [`TicketState`], returned for the
    /// UPDATE); what only people write (title, description, place) stays as it is. Both the
    /// struct literal in [`TicketState::of`] and this destructuring name every field, so the
    /// compiler refuses a state column missing from either.
    pub fn set_state(&mut self, t: &Ticket) -> TicketState {
        let state = TicketState::of(t);
        TicketState {
            status: self.status,
            level: self.level,
            assignee_id: self.assignee_id,
            assigned_handler: self.assigned_handler,
            resolution_note: self.resolution_note,
            decline_reason: self.decline_reason,
            declined_at: self.declined_at,
            rating: self.rating,
            rating_comment: self.rating_comment,
            closed_by: self.closed_by,
            escalation_count: self.escalation_count,
            disputes_at_level: self.disputes_at_level,
            returned_by_community: self.returned_by_community,
            returned_by_street: self.returned_by_street,
            level_entered_at: self.level_entered_at,
            level_acknowledged_at: self.level_acknowledged_at,
            ack_due_at: self.ack_due_at,
            resolve_due_at: self.resolve_due_at,
            due_at: self.due_at,
            next_check_at: self.next_check_at,
            ack_warned: self.ack_warned,
            resolve_warned: self.resolve_warned,
            overdue: self.overdue,
            version: self.version,
            updated_at: self.updated_at,
            acknowledged_at: self.acknowledged_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            paused_at: self.paused_at,
            paused_minutes: self.paused_minutes,
            compound_id: self.compound_id,
            transfer_count: self.transfer_count,
            urge_count: self.urge_count,
            urged_by_community_at: self.urged_by_community_at,
            urged_by_street_at: self.urged_by_street_at,
            decide_due_at: self.decide_due_at,
            extension_due_at: self.extension_due_at,
            extension_reason: self.extension_reason,
            extension_requested_at: self.extension_requested_at,
            extension_lapsed: self.extension_lapsed,
            extensions_granted: self.extensions_granted,
        } = state.clone();
        state
    }
}
