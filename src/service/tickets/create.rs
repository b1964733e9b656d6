//! The call: a resident's new ticket, with its reference number and idempotency key.

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::prelude::*;

use super::commit::{self, Author};
use super::input::{check_call, request_hash, CreateTicket};
use crate::auth::AuthUser;
use crate::db::models::{OrgUnitRow, TicketContent, TicketRow};
use crate::db::schema::{categories, idempotency_keys, org_units, ticket_sequences, tickets};
use crate::db::{round_ts, DbConn};
use crate::domain::ids::{UnitId, UserId};
use crate::domain::org::OrgKind;
use crate::domain::role::Role;
use crate::domain::ticket::{self, Level, NewCall, Source};
use crate::domain::validate::Phone;
use crate::error::{AppError, AppResult};
use crate::service::org;
use crate::service::sla::SlaEngine;

pub enum Created {
    New(TicketRow),
    /// The same Idempotency-Key was seen before: the ticket it created.
    Replayed(TicketRow),
}

fn next_reference(
    conn: &mut DbConn,
    street_id: i64,
    street_code: &str,
    now: DateTime<Utc>,
) -> AppResult<String> {
    let day = now.with_timezone(&Shanghai).format("%Y%m%d").to_string();
    let bumped = crate::db::dialect::bump_ticket_sequence(conn, street_id, &day)?;
    let seq = match bumped {
        Some(v) => v,
        None => {
            diesel::insert_into(ticket_sequences::table)
                .values((
                    ticket_sequences::street_id.eq(street_id),
                    ticket_sequences::day.eq(&day),
                    ticket_sequences::last_value.eq(1),
                ))
                .execute(conn)?;
            1
        }
    };
    Ok(format!("{street_code}-{day}-{seq:04}"))
}

/// A reference number taken for a resident's call before the call's own transaction (see
/// [`reserve`]).
pub struct Reserved {
    /// Where the call is, as the reservation found it (checked then; not looked up again).
    place: Place,
    reference: String,
}

/// Takes the reference number of a resident's new call, after the checks that can refuse it:
/// the resident's daily limit (`per_day`), the place and the category (a replayed
/// Idempotency-Key takes none and is not counted against the limit). Run by `Db::write_after`
/// before [`create`]: on PostgreSQL in a short transaction of its own, so that the street's
/// counter row is locked for that transaction only and creates do not queue behind each other's
/// commits. A call refused after this (its unit archived in between) leaves a gap in the day's
/// numbers. Staff calls take their number inside their own transaction (they are few and are
/// checked later).
pub fn reserve(
    conn: &mut DbConn,
    user: &AuthUser,
    input: &CreateTicket,
    idempotency_key: Option<&str>,
    per_day: u32,
    now: DateTime<Utc>,
) -> AppResult<Option<Reserved>> {
    if user.role != Role::Resident {
        return Ok(None);
    }
    if let Some(key) = idempotency_key {
        let seen: i64 = idempotency_keys::table
            .filter(idempotency_keys::user_id.eq(user.id))
            .filter(idempotency_keys::idem_key.eq(key))
            .count()
            .get_result(conn)?;
        if seen > 0 {
            return Ok(None);
        }
    }
    crate::service::limits::check_new_ticket(conn, user.id, None, per_day, round_ts(now))?;
    check_call(input)?;
    let place = place_of(conn, input)?;
    check_category(conn, input.category_id)?;
    let street = &place.street;
    let reference = next_reference(conn, street.id, street.code.as_deref().unwrap_or("HY"), now)?;
    Ok(Some(Reserved { place, reference }))
}

fn check_category(conn: &mut DbConn, category_id: i64) -> AppResult<()> {
    let category_ok: i64 = categories::table
        .filter(categories::id.eq(category_id))
        .filter(categories::archived_at.is_null())
        .count()
        .get_result(conn)?;
    if category_ok == 0 {
        return Err(AppError::validation("unknown_category", "问题类别不存在"));
    }
    Ok(())
}

pub fn create(
    conn: &mut DbConn,
    user: &AuthUser,
    input: &CreateTicket,
    idempotency_key: Option<&str>,
    reserved: Option<Reserved>,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<Created> {
    if user.role == Role::Admin {
        return Err(AppError::Forbidden);
    }
    let texts = check_call(input)?;
    let hash = request_hash(input)?;
    if let Some(key) = idempotency_key {
        let seen: Option<(i64, String)> = idempotency_keys::table
            .filter(idempotency_keys::user_id.eq(user.id))
            .filter(idempotency_keys::idem_key.eq(key))
            .select((idempotency_keys::ticket_id, idempotency_keys::request_hash))
            .first(conn)
            .optional()?;
        if let Some((ticket_id, seen_hash)) = seen {
            if seen_hash != hash {
                return Err(AppError::conflict(
                    "idempotency_key_reused",
                    "该 Idempotency-Key 已用于另一内容不同的请求",
                ));
            }
            let t = tickets::table
                .find(ticket_id)
                .select(TicketRow::as_select())
                .first(conn)?;
            return Ok(Created::Replayed(t));
        }
    }
    let reserved = reserved.filter(|r| r.place.compound.id == input.compound_id);
    let (place, reference) = match reserved {
        Some(r) => (r.place, Some(r.reference)),
        None => (place_of(conn, input)?, None),
    };
    let caller = caller_of(
        conn,
        user,
        input,
        &place.compound,
        place.community_id,
        place.street.id,
        now,
    )?;
    let entered_by = caller.source.entered_by_staff().then_some(user.id);
    let row = insert_call(
        conn,
        input,
        texts,
        &place,
        caller,
        entered_by,
        Author::from(user),
        reference,
        sla,
        now,
    )?;
    if let Some(key) = idempotency_key {
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::user_id.eq(user.id),
                idempotency_keys::idem_key.eq(key),
                idempotency_keys::ticket_id.eq(row.id),
                idempotency_keys::request_hash.eq(&hash),
                idempotency_keys::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
    }
    tracing::info!(ticket_id = row.id, reference = %row.reference, "ticket created");
    Ok(Created::New(row))
}

/// Where a call is: the compound (live), its community and street, and the building if any.
struct Place {
    compound: OrgUnitRow,
    community_id: i64,
    street: OrgUnitRow,
}

fn place_of(conn: &mut DbConn, input: &CreateTicket) -> AppResult<Place> {
    match place_in_one_read(conn, input)? {
        Some(place) => Ok(place),
        None => place_step_by_step(conn, input),
    }
}

/// The call's place as one statement (compound, its community and street, the building) when
/// all is well: a call's first reads, on PostgreSQL each a round trip, on SQLite work of the one
/// writer. `None` when anything is wrong; [`place_step_by_step`] then says what.
fn place_in_one_read(conn: &mut DbConn, input: &CreateTicket) -> AppResult<Option<Place>> {
    let (community, street, building) = diesel::alias!(
        org_units as community,
        org_units as street,
        org_units as building
    );
    let found: Option<(OrgUnitRow, i64, OrgUnitRow, Option<i64>)> = org_units::table
        .inner_join(
            community.on(org_units::parent_id
                .eq(community.field(org_units::id).nullable())
                .and(community.field(org_units::kind).eq(OrgKind::Community))),
        )
        .inner_join(
            street.on(community
                .field(org_units::parent_id)
                .eq(street.field(org_units::id).nullable())
                .and(street.field(org_units::kind).eq(OrgKind::Street))),
        )
        .left_join(
            building.on(building
                .field(org_units::id)
                .nullable()
                .eq(input.building_id)
                .and(building.field(org_units::kind).eq(OrgKind::Building))
                .and(
                    building
                        .field(org_units::parent_id)
                        .eq(org_units::id.nullable()),
                )),
        )
        .filter(org_units::id.eq(input.compound_id))
        .filter(org_units::kind.eq(OrgKind::Compound))
        .filter(org_units::archived_at.is_null())
        .select((
            OrgUnitRow::as_select(),
            community.field(org_units::id),
            street.fields(org_units::all_columns),
            building.field(org_units::id).nullable(),
        ))
        .first(conn)
        .optional()?;
    Ok(match found {
        Some((compound, community_id, street, b)) if b == input.building_id => Some(Place {
            compound,
            community_id,
            street,
        }),
        _ => None,
    })
}

/// The call's place read unit by unit, with the error that says which one is wrong.
fn place_step_by_step(conn: &mut DbConn, input: &CreateTicket) -> AppResult<Place> {
    let compound = org::require_kind(conn, input.compound_id, OrgKind::Compound, "compound_id")?;
    if compound.archived_at.is_some() {
        return Err(AppError::validation("unknown_org_unit", "该小区已停用"));
    }
    let community_id = compound
        .parent_id
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("compound without community")))?;
    let community = org::require_kind(conn, community_id, OrgKind::Community, "compound_id")?;
    let street_id = community
        .parent_id
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("community without street")))?;
    let street = org::require_kind(conn, street_id, OrgKind::Street, "compound_id")?;
    if let Some(b) = input.building_id {
        let building = org::require_kind(conn, b, OrgKind::Building, "building_id")?;
        if building.parent_id != Some(compound.id) {
            return Err(AppError::validation(
                "unknown_org_unit",
                "该楼栋不属于所选小区",
            ));
        }
    }
    Ok(Place {
        compound,
        community_id: community.id,
        street,
    })
}

/// Stores a checked call from `caller` at `place`: its reference number, the row and its
/// timeline.
#[allow(clippy::too_many_arguments)]
fn insert_call(
    conn: &mut DbConn,
    input: &CreateTicket,
    texts: super::input::CheckedCall,
    place: &Place,
    caller: Caller,
    entered_by: Option<i64>,
    author: Author,
    reference: Option<String>,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<TicketRow> {
    let street = &place.street;
    // A reserved number was taken after the category was checked.
    let reference = match reference {
        Some(r) => r,
        None => {
            check_category(conn, input.category_id)?;
            next_reference(conn, street.id, street.code.as_deref().unwrap_or("HY"), now)?
        }
    };
    let call = ticket::call(
        NewCall {
            street_id: UnitId(street.id),
            community_id: UnitId(place.community_id),
            compound_id: UnitId(place.compound.id),
            resident_id: caller.resident_id,
            category_id: input.category_id,
            urgency: input.urgency,
            source: caller.source,
            level: caller.level,
            identity_hidden: input.hide_identity.unwrap_or(false),
        },
        sla,
        now,
    );
    let content = TicketContent {
        reference,
        title: texts.title,
        description: texts.description,
        building_id: input.building_id,
        location_text: texts.location_text,
        latitude: input.location.as_ref().and_then(|l| l.latitude),
        longitude: input.location.as_ref().and_then(|l| l.longitude),
        location_accuracy_m: input.location.as_ref().and_then(|l| l.accuracy_m),
        entered_by,
        external_ref: caller.external_ref,
    };
    let known = crate::notify::Lookups::knowing_units([
        (place.compound.id, place.compound.name.as_str()),
        (street.id, street.name.as_str()),
    ]);
    commit::insert_new(conn, content, &call, author, known, sla, now)
}

/// A call a partner system passed on through Open311 (docs/open311.md) for the resident of
/// `phone`: it starts at the compound like every call, with the partner's `source`. No person
/// of ours entered it, so the timeline names the system; the resident, not being its author,
/// gets the "entered on your behalf" SMS of a hotline call with the link to follow it.
#[allow(clippy::too_many_arguments)]
pub fn create_for_partner(
    conn: &mut DbConn,
    input: &CreateTicket,
    source: Source,
    phone: &Phone,
    name: Option<&str>,
    external_ref: Option<String>,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<TicketRow> {
    let texts = check_call(input)?;
    let place = place_of(conn, input)?;
    let resident = crate::service::auth::resident_for_phone(conn, phone, name, now.naive_utc())?;
    if resident.disabled_at.is_some() {
        return Err(AppError::validation(
            "resident_disabled",
            "该居民账号已停用，请联系管理员",
        ));
    }
    let caller = Caller {
        resident_id: UserId(resident.id),
        source,
        level: Level::Compound,
        external_ref,
    };
    let row = insert_call(
        conn,
        input,
        texts,
        &place,
        caller,
        None,
        Author::SYSTEM,
        None,
        sla,
        now,
    )?;
    tracing::info!(ticket_id = row.id, reference = %row.reference, "ticket created by a partner");
    Ok(row)
}

/// Who stands behind a call, where it starts, and how it came in.
struct Caller {
    /// The resident; for an own finding, the staff member who raised it (there is no resident).
    resident_id: UserId,
    source: Source,
    level: Level,
    external_ref: Option<String>,
}

fn line(field: &'static str, v: &Option<String>, max: usize) -> AppResult<Option<String>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Ok(Some(crate::domain::validate::text(field, s, max)?)),
        None => Ok(None),
    }
}

/// A resident calls for themself; staff call on a resident's behalf (the resident's account is
/// found or created from the phone) or raise their own finding, for a compound in their scope.
fn caller_of(
    conn: &mut DbConn,
    user: &AuthUser,
    input: &CreateTicket,
    compound: &crate::db::models::OrgUnitRow,
    community_id: i64,
    street_id: i64,
    now: DateTime<Utc>,
) -> AppResult<Caller> {
    let Some(level) = Level::of_role(user.role) else {
        // A resident's own call: nothing staff-only may be sent.
        if input.source.is_some_and(|s| s != Source::App)
            || input.resident_phone.is_some()
            || input.resident_name.is_some()
            || input.external_ref.is_some()
        {
            return Err(AppError::validation(
                "invalid_source",
                "居民自行提交诉求时不能填写来源、代录电话、姓名或外部编号",
            ));
        }
        return Ok(Caller {
            resident_id: UserId(user.id),
            source: Source::App,
            level: Level::Compound,
            external_ref: None,
        });
    };
    let unit = user.org_unit_id.unwrap_or(-1);
    let in_scope = match level {
        Level::Compound => compound.id == unit,
        Level::Community => community_id == unit,
        Level::Street => street_id == unit,
    };
    if !in_scope {
        return Err(AppError::validation(
            "compound_out_of_scope",
            "所选小区不在您的辖区内",
        ));
    }
    let source = match input.source {
        Some(s) if s != Source::App => s,
        _ => {
            return Err(AppError::validation(
                "invalid_source",
                "工作人员登记诉求须注明来源 source：phone、desk、visit、hotline 或 own_finding",
            ))
        }
    };
    let external_ref = line("external_ref（外部编号）", &input.external_ref, 64)?;
    if source == Source::Hotline && external_ref.is_none() {
        return Err(AppError::validation(
            "missing_field",
            "热线转办须填写外部编号 external_ref（如 12345 工单号）",
        ));
    }
    if source == Source::OwnFinding {
        if input.resident_phone.is_some() || input.resident_name.is_some() {
            return Err(AppError::validation(
                "invalid_source",
                "自查发现的问题没有居民，不能填写居民电话或姓名",
            ));
        }
        // The raising level answers it first and confirms its closure.
        return Ok(Caller {
            resident_id: UserId(user.id),
            source,
            level,
            external_ref,
        });
    }
    let phone = Phone::parse(input.resident_phone.as_deref().unwrap_or("")).map_err(|e| {
        AppError::validation(e.code, format!("居民电话 resident_phone：{}", e.message))
    })?;
    let name = line("resident_name（居民姓名）", &input.resident_name, 40)?;
    let resident =
        crate::service::auth::resident_for_phone(conn, &phone, name.as_deref(), now.naive_utc())?;
    if resident.disabled_at.is_some() {
        return Err(AppError::validation(
            "resident_disabled",
            "该居民账号已停用，请联系管理员",
        ));
    }
    // A call entered on a resident's behalf starts where every call starts: the compound.
    Ok(Caller {
        resident_id: UserId(resident.id),
        source,
        level: Level::Compound,
        external_ref,
    })
}
