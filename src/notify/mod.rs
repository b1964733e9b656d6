//! Notifications that are never lost: the outbox.
//!
//! [`enqueue_for_event`] runs inside the transaction that records a ticket event and writes one
//! `notifications` row per (event, recipient, channel); the in-app rows are the inbox and are
//! delivered by being written. The [`dispatch`] worker delivers the rest (SMS, email, WeCom
//! robot) with retries, backoff and quiet hours, claiming rows so that several instances never
//! send one row twice.

pub mod dispatch;
pub mod email;
pub mod inbox;
pub mod rules;
pub mod templates;
pub mod wecom;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::models::TicketRow;
use crate::db::notify_schema::{notification_settings, notifications, unit_webhooks};
use crate::db::schema::{org_units, users};
use crate::db::DbConn;
use crate::domain::role::{ActorRole, Role};
use crate::domain::ticket::{EscalationReason, EventKind, Level, Status, SystemReason, Urgency};
use crate::error::AppResult;
use rules::{Channel, Who};

/// One ticket event, as the notification rules see it.
pub struct EventCtx<'a> {
    /// The ticket's state after the event.
    pub ticket: &'a TicketRow,
    pub event_id: i64,
    pub kind: EventKind,
    pub actor_id: Option<i64>,
    pub actor_role: ActorRole,
    pub level_before: Level,
    pub reason: Option<&'a str>,
    pub internal: bool,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = notifications)]
pub struct NotificationRow {
    pub id: i64,
    pub event_id: i64,
    pub ticket_id: i64,
    pub recipient_id: Option<i64>,
    pub recipient_key: String,
    pub channel: Channel,
    pub address: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub link_path: String,
    pub urgent: bool,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub read_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

/// An outbox row about to be written.
#[derive(Debug, Insertable)]
#[diesel(table_name = notifications)]
// A None is NULL, not DEFAULT: SQLite has no DEFAULT in VALUES, and diesel would insert a
// slice of rows that may hold one row by row instead of with one multi-row INSERT.
#[diesel(treat_none_as_default_value = false)]
pub struct NewNotification {
    event_id: i64,
    ticket_id: i64,
    recipient_id: Option<i64>,
    recipient_key: String,
    channel: Channel,
    address: String,
    kind: String,
    subject: String,
    body: String,
    link_path: String,
    urgent: bool,
    status: String,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    read_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    sent_at: Option<NaiveDateTime>,
    updated_at: NaiveDateTime,
}

/// A user's channel choices (defaults when they never chose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefs {
    pub sms: bool,
    pub inapp: bool,
    pub email: bool,
}

pub const DEFAULT_PREFS: Prefs = Prefs {
    sms: true,
    inapp: true,
    email: true,
};

/// A person who may be told.
#[derive(Debug, Clone)]
struct Person {
    id: i64,
    phone: Option<String>,
    email: Option<String>,
    prefs: Prefs,
}

fn load_people(
    conn: &mut DbConn,
    ids: Option<&[i64]>,
    unit: Option<(Role, i64)>,
) -> AppResult<Vec<Person>> {
    let mut q = users::table
        .left_join(notification_settings::table.on(notification_settings::user_id.eq(users::id)))
        .filter(users::disabled_at.is_null())
        .select((
            users::id,
            users::role,
            users::phone,
            users::email,
            notification_settings::sms.nullable(),
            notification_settings::inapp.nullable(),
            notification_settings::email.nullable(),
            notification_settings::email_address.nullable(),
        ))
        .order(users::id.asc())
        .into_boxed();
    if let Some(ids) = ids {
        q = q.filter(users::id.eq_any(ids.to_vec()));
    }
    if let Some((role, unit_id)) = unit {
        q = q
            .filter(users::role.eq(role))
            .filter(users::org_unit_id.eq(unit_id));
    }
    type Raw = (
        i64,
        Role,
        Option<String>,
        Option<String>,
        Option<bool>,
        Option<bool>,
        Option<bool>,
        Option<String>,
    );
    let rows: Vec<Raw> = q.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, role, phone, email, sms, inapp, mail, addr)| {
            let addr = addr.filter(|a| !a.is_empty()).or(email);
            Person {
                id,
                phone: phone.filter(|p| !p.is_empty()),
                email: if role == Role::Resident { None } else { addr },
                prefs: Prefs {
                    sms: sms.unwrap_or(DEFAULT_PREFS.sms),
                    inapp: inapp.unwrap_or(DEFAULT_PREFS.inapp),
                    // Residents are told by SMS or in-app only.
                    email: role != Role::Resident && mail.unwrap_or(DEFAULT_PREFS.email),
                },
            }
        })
        .collect())
}

fn unit_at(t: &TicketRow, level: Level) -> i64 {
    match level {
        Level::Compound => t.compound_id,
        Level::Community => t.community_id,
        Level::Street => t.street_id,
    }
}

fn reason_zh(reason: Option<&str>) -> String {
    let Some(r) = reason.filter(|r| !r.is_empty()) else {
        return "未说明".into();
    };
    if let Some(e) = EscalationReason::parse(r) {
        return e.label_zh().into();
    }
    // An extension's deadline travels as RFC 3339.
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(r) {
        return deadline_zh(Some(t.naive_utc()));
    }
    // Messages name the clock more briefly than the timeline does.
    match SystemReason::parse(r) {
        Some(SystemReason::SlaBreachAcknowledge) => "超时未受理".into(),
        Some(SystemReason::SlaBreachResolve) => "超时未办结".into(),
        Some(SystemReason::AcknowledgeClock) => "受理".into(),
        Some(SystemReason::ResolveClock) => "办结".into(),
        Some(other) => other.label_zh().into(),
        // A decline reason is the staff member's own words.
        None => r.chars().take(100).collect(),
    }
}

/// `11月27日 15:00` in Beijing time, or `—` when no clock runs.
pub fn deadline_zh(due: Option<NaiveDateTime>) -> String {
    match due {
        Some(d) if d.and_utc().timestamp() < 253_000_000_000 => d
            .and_utc()
            .with_timezone(&Shanghai)
            .format("%m月%d日 %H:%M")
            .to_string(),
        _ => "—".into(),
    }
}

/// `30日15:00` in Beijing time (SMS), or `—`.
pub fn deadline_short(due: Option<NaiveDateTime>) -> String {
    match due {
        Some(d) if d.and_utc().timestamp() < 253_000_000_000 => d
            .and_utc()
            .with_timezone(&Shanghai)
            .format("%-d日%H:%M")
            .to_string(),
        _ => "—".into(),
    }
}

/// Recipients, unit names and unit robots looked up once for many events: a sweep's chunk
/// calls up dozens of tickets of the same few units, and asking the database again for each
/// was a fifth of the sweep's time.
#[derive(Default)]
pub struct Lookups {
    unit_names: HashMap<i64, String>,
    robots: HashMap<i64, Option<String>>,
    staff: HashMap<(Role, i64), Vec<Person>>,
    users: HashMap<i64, Option<Person>>,
}

impl Lookups {
    /// Lookups that already know these units' names (the caller just read them).
    pub fn knowing_units<'a>(names: impl IntoIterator<Item = (i64, &'a str)>) -> Lookups {
        let mut lookups = Lookups::default();
        for (id, name) in names {
            lookups.unit_names.insert(id, name.to_string());
        }
        lookups
    }

    /// Loads the people `ids` (e.g. the residents of a chunk's tickets) with one statement.
    pub fn prefetch_users(&mut self, conn: &mut DbConn, ids: &[i64]) -> AppResult<()> {
        let mut missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !self.users.contains_key(id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let people = load_people(conn, Some(&missing), None)?;
        for id in missing {
            self.users.insert(id, None);
        }
        for p in people {
            self.users.insert(p.id, Some(p));
        }
        Ok(())
    }

    fn unit_name(&mut self, conn: &mut DbConn, id: i64) -> AppResult<String> {
        if let Some(n) = self.unit_names.get(&id) {
            return Ok(n.clone());
        }
        let name = org_units::table
            .find(id)
            .select(org_units::name)
            .first::<String>(conn)
            .optional()?
            .unwrap_or_default();
        self.unit_names.insert(id, name.clone());
        Ok(name)
    }

    fn robot(&mut self, conn: &mut DbConn, unit: i64) -> AppResult<Option<String>> {
        if let Some(url) = self.robots.get(&unit) {
            return Ok(url.clone());
        }
        let url: Option<String> = unit_webhooks::table
            .find(unit)
            .select(unit_webhooks::url)
            .first(conn)
            .optional()?;
        self.robots.insert(unit, url.clone());
        Ok(url)
    }

    fn staff(&mut self, conn: &mut DbConn, role: Role, unit: i64) -> AppResult<Vec<Person>> {
        if let Some(p) = self.staff.get(&(role, unit)) {
            return Ok(p.clone());
        }
        let people = load_people(conn, None, Some((role, unit)))?;
        self.staff.insert((role, unit), people.clone());
        Ok(people)
    }

    fn user(&mut self, conn: &mut DbConn, id: i64) -> AppResult<Vec<Person>> {
        self.prefetch_users(conn, &[id])?;
        Ok(self.users.get(&id).cloned().flatten().into_iter().collect())
    }
}

/// Writes the outbox rows for one ticket event, in the caller's transaction. Needs no settings:
/// texts come from the compiled-in templates, recipients and preferences from the database.
pub fn enqueue_for_event(conn: &mut DbConn, ev: &EventCtx<'_>) -> AppResult<()> {
    let mut rows = Vec::new();
    plan_event(conn, &mut Lookups::default(), ev, &mut rows)?;
    write_outbox(conn, &rows)
}

/// Adds to `rows` the outbox rows of one ticket event (nothing is written yet).
pub fn plan_event(
    conn: &mut DbConn,
    lookups: &mut Lookups,
    ev: &EventCtx<'_>,
    rows: &mut Vec<NewNotification>,
) -> AppResult<()> {
    let t = ev.ticket;
    let level_after = t.level;
    let facts = rules::EventFacts {
        kind: ev.kind,
        actor_role: ev.actor_role,
        internal: ev.internal,
        level_before: ev.level_before,
        level_after,
        assignee_id: t.assignee_id,
        source: t.source,
    };
    let rules = rules::for_event(&facts);
    if rules.is_empty() {
        return Ok(());
    }
    let ts = crate::db::round_ts(ev.now);
    let deadline = match t.status {
        Status::Open => t.ack_due_at,
        Status::Acknowledged if ev.kind == EventKind::RequestExtension => t.decide_due_at,
        Status::Acknowledged => t.resolve_due_at,
        Status::DeclineReview => t.decide_due_at,
        _ => None,
    };
    let mut vars: BTreeMap<&str, String> = BTreeMap::new();
    vars.insert("reference", t.reference.clone());
    vars.insert("title", t.title.clone());
    vars.insert("level", level_after.label_zh().to_string());
    vars.insert("from_level", ev.level_before.label_zh().to_string());
    vars.insert("unit", lookups.unit_name(conn, unit_at(t, level_after))?);
    vars.insert("deadline", deadline_zh(deadline));
    vars.insert("deadline_short", deadline_short(deadline));
    vars.insert("reason", reason_zh(ev.reason));
    let urgent = t.urgency == Urgency::Urgent;
    let mut seen: BTreeSet<(String, Channel)> = BTreeSet::new();
    for rule in rules {
        let tpl = templates::get(rule.kind)?;
        let subject = templates::render(&tpl.title, &vars);
        let body = templates::render(&tpl.body, &vars);
        let sms = templates::render(&tpl.sms, &vars);
        let mut push =
            |recipient_id: Option<i64>, key: String, channel: Channel, address: String| {
                if !seen.insert((key.clone(), channel)) {
                    return;
                }
                // One short path for everybody (it counts against the SMS segment); the ticket page
                // shows the staff or the resident view to whoever signs in.
                let link_path = format!("/t/{}", t.id);
                let inapp = channel == Channel::InApp;
                rows.push(NewNotification {
                    event_id: ev.event_id,
                    ticket_id: t.id,
                    recipient_id,
                    recipient_key: key,
                    channel,
                    address,
                    kind: rule.kind.into(),
                    subject: subject.clone(),
                    body: match channel {
                        Channel::Sms => sms.clone(),
                        _ => body.clone(),
                    },
                    link_path,
                    urgent,
                    // In-app delivery is the row itself.
                    status: if inapp { "sent" } else { "pending" }.into(),
                    attempts: 0,
                    next_attempt_at: ts,
                    read_at: None,
                    created_at: ts,
                    sent_at: inapp.then_some(ts),
                    updated_at: ts,
                });
            };
        let people = match rule.who {
            Who::UnitRobot(level) => {
                let unit = unit_at(t, level);
                if let Some(url) = lookups.robot(conn, unit)? {
                    if rule.channels.contains(&Channel::Wecom) {
                        push(None, format!("unit:{unit}"), Channel::Wecom, url);
                    }
                }
                continue;
            }
            Who::UnitStaff(level) => lookups.staff(conn, level.staff_role(), unit_at(t, level))?,
            Who::Resident => lookups.user(conn, t.resident_id)?,
            Who::User(id) => lookups.user(conn, id)?,
        };
        for p in people {
            if Some(p.id) == ev.actor_id {
                continue;
            }
            let key = format!("user:{}", p.id);
            for &c in rule.channels {
                match c {
                    Channel::InApp if p.prefs.inapp => {
                        push(Some(p.id), key.clone(), c, String::new())
                    }
                    Channel::Sms if p.prefs.sms => {
                        if let Some(phone) = &p.phone {
                            push(Some(p.id), key.clone(), c, phone.clone())
                        }
                    }
                    // Staff who turned SMS off but keep email get the message by email.
                    Channel::Sms if p.prefs.email => {
                        if let Some(mail) = &p.email {
                            push(Some(p.id), key.clone(), Channel::Email, mail.clone())
                        }
                    }
                    Channel::Email if p.prefs.email => {
                        if let Some(mail) = &p.email {
                            push(Some(p.id), key.clone(), c, mail.clone())
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Writes outbox rows planned by [`plan_event`] (multi-row INSERTs), in the caller's
/// transaction.
pub fn write_outbox(conn: &mut DbConn, rows: &[NewNotification]) -> AppResult<()> {
    crate::db::dialect::insert_all::<_, NewNotification>(conn, notifications::table, rows)?;
    // Live updates: the in-app notices' recipients hear of them once this commits.
    crate::live::notices_for(
        rows.iter()
            .filter(|r| r.channel == Channel::InApp)
            .filter_map(|r| r.recipient_id)
            .collect(),
    );
    Ok(())
}
