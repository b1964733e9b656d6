//! Open311 GeoReport v2 (docs/open311.md): our categories as services, a partner's request as a
//! ticket, and the tickets a partner posted as service requests. Field names are the
//! specification's; texts are zh-CN. Nothing here names a resident: GET answers carry no phone,
//! no name and no internal note.

use std::collections::HashMap;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::models::{CategoryRow, OrgUnitRow, TicketEventRow, TicketRow};
use crate::db::open311_schema::{api_keys, open311_requests};
use crate::db::schema::{categories, org_units, ticket_events, tickets};
use crate::db::DbConn;
use crate::domain::org::OrgKind;
use crate::domain::role::ActorRole;
use crate::domain::ticket::{no_deadline, EventKind, Level, Status, Urgency};
use crate::domain::validate::{self, Phone};
use crate::error::AppError;
use crate::service::api_keys::ApiKeyRow;
use crate::service::sla::SlaEngine;
use crate::service::tickets::view::status_text;
use crate::service::tickets::{CreateTicket, Location};

/// The most requests one `GET requests` answers, and the longest span it searches (the
/// specification's defaults).
pub const MAX_REQUESTS: i64 = 1000;
pub const MAX_SPAN_DAYS: i64 = 90;

/// A refusal in the specification's terms: an HTTP status and one description per problem.
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub errors: Vec<String>,
    pub retry_after: Option<i64>,
    /// What went wrong inside, for the log only (a 5xx).
    pub cause: Option<Box<AppError>>,
}

impl Failure {
    pub fn bad_request(errors: Vec<String>) -> Failure {
        Failure {
            status: 400,
            errors,
            retry_after: None,
            cause: None,
        }
    }

    pub fn one(status: u16, description: impl Into<String>) -> Failure {
        Failure {
            status,
            errors: vec![description.into()],
            retry_after: None,
            cause: None,
        }
    }

    pub fn not_found() -> Failure {
        Failure::one(404, "未找到该服务或诉求")
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Failure {
        let (status, description) = match &e {
            // A client's mistake is a 400 here, as the specification has it.
            AppError::Validation { .. } => (400, e.message()),
            AppError::Forbidden | AppError::Unauthorized(_) | AppError::InvalidCredentials => {
                (403, "api_key 无效或已被吊销".to_string())
            }
            AppError::NotFound => (404, "未找到该服务或诉求".to_string()),
            AppError::TooManyRequests { .. } => (429, e.message()),
            AppError::Conflict { .. } => (409, e.message()),
            other => {
                let status = actix_web::ResponseError::status_code(other).as_u16();
                (status, other.message())
            }
        };
        let retry_after = match &e {
            AppError::TooManyRequests { retry_after, .. } => *retry_after,
            AppError::Busy { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        Failure {
            status,
            errors: vec![description],
            retry_after,
            cause: (status >= 500).then(|| Box::new(e)),
        }
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Failure {
        AppError::from(e).into()
    }
}

pub type Outcome<T> = Result<T, Failure>;

/// The parameters of a request, from a query string or a form body, in order.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The first non-blank value of `name`, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// Every value of a list parameter, which the specification lets a client declare several
    /// times, comma-delimited: `status=open,closed` or `status=open&status=closed`. `None`
    /// when it is not given at all.
    pub fn list(&self, name: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

// ---- services ----

#[derive(Debug, Serialize)]
pub struct ServiceView {
    pub service_code: String,
    pub service_name: String,
    pub description: String,
    /// Always true: every service has a definition (at least the compound).
    pub metadata: bool,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub keywords: String,
    pub group: String,
}

/// The group every category is listed under: we have one list of categories.
const GROUP: &str = "民生诉求";

fn live_categories(conn: &mut DbConn) -> Result<Vec<CategoryRow>, AppError> {
    Ok(categories::table
        .filter(categories::archived_at.is_null())
        .order((categories::sort_order.asc(), categories::id.asc()))
        .select(CategoryRow::as_select())
        .load(conn)?)
}

/// Our categories as services.
pub fn services(conn: &mut DbConn) -> Outcome<Vec<ServiceView>> {
    Ok(live_categories(conn)?
        .into_iter()
        .map(|c| ServiceView {
            description: format!("{}类问题，由所在小区党支部先行受理", c.name),
            keywords: c.name.clone(),
            service_name: c.name,
            service_code: c.code,
            metadata: true,
            kind: "realtime",
            group: GROUP.into(),
        })
        .collect())
}

#[derive(Debug, Serialize)]
pub struct ValueView {
    pub key: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct AttributeView {
    pub variable: bool,
    pub code: &'static str,
    pub datatype: &'static str,
    pub required: bool,
    pub datatype_description: String,
    pub order: u32,
    pub description: String,
    pub values: Vec<ValueView>,
}

#[derive(Debug, Serialize)]
pub struct ServiceDefinition {
    pub service_code: String,
    pub attributes: Vec<AttributeView>,
}

/// The attributes `POST requests` reads besides the specification's own fields.
pub mod attr {
    pub const COMPOUND: &str = "compound_id";
    pub const BUILDING: &str = "building_id";
    pub const URGENCY: &str = "urgency";
    pub const TITLE: &str = "title";
    pub const EXTERNAL_REF: &str = "external_ref";
    pub const HIDE_IDENTITY: &str = "hide_identity";
}

fn attribute_param(code: &str) -> String {
    format!("attribute[{code}]")
}

/// The definition of service `code`: which compound (required), building, urgency, title and
/// the partner's own reference.
pub fn definition(conn: &mut DbConn, code: &str) -> Outcome<ServiceDefinition> {
    let category = live_categories(conn)?
        .into_iter()
        .find(|c| c.code == code)
        .ok_or_else(Failure::not_found)?;
    let units: Vec<OrgUnitRow> = org_units::table
        .filter(org_units::archived_at.is_null())
        .order(org_units::id.asc())
        .select(OrgUnitRow::as_select())
        .load(conn)?;
    let names: HashMap<i64, &str> = units.iter().map(|u| (u.id, u.name.as_str())).collect();
    let parent_name = |u: &OrgUnitRow| {
        u.parent_id
            .and_then(|p| names.get(&p).copied())
            .unwrap_or_default()
    };
    let compounds: Vec<ValueView> = units
        .iter()
        .filter(|u| u.kind == OrgKind::Compound)
        .map(|u| ValueView {
            key: u.id.to_string(),
            name: format!("{}·{}", parent_name(u), u.name),
        })
        .collect();
    let buildings: Vec<ValueView> = units
        .iter()
        .filter(|u| u.kind == OrgKind::Building)
        .map(|u| ValueView {
            key: u.id.to_string(),
            name: format!("{}·{}", parent_name(u), u.name),
        })
        .collect();
    let list = |code, required, order, description: &str, values| AttributeView {
        variable: true,
        code,
        datatype: "singlevaluelist",
        required,
        datatype_description: "从列表中选择一项，填写其 key".into(),
        order,
        description: description.into(),
        values,
    };
    let string = |code, order, description: &str, limit: usize| AttributeView {
        variable: true,
        code,
        datatype: "string",
        required: false,
        datatype_description: format!("不超过 {limit} 个字"),
        order,
        description: description.into(),
        values: Vec::new(),
    };
    Ok(ServiceDefinition {
        service_code: category.code,
        attributes: vec![
            list(
                attr::COMPOUND,
                true,
                1,
                "所在小区（诉求先由该小区党支部受理）",
                compounds,
            ),
            list(
                attr::BUILDING,
                false,
                2,
                "所在楼栋（须属于所选小区）",
                buildings,
            ),
            list(
                attr::URGENCY,
                false,
                3,
                "紧急程度，默认一般",
                Urgency::ALL
                    .iter()
                    .map(|u| ValueView {
                        key: u.as_str().into(),
                        name: u.label_zh().into(),
                    })
                    .collect(),
            ),
            string(attr::TITLE, 4, "标题；不填时取描述的开头", TITLE_CHARS),
            string(
                attr::EXTERNAL_REF,
                5,
                "来源平台自己的工单号（如 12345 工单号）",
                64,
            ),
            list(
                attr::HIDE_IDENTITY,
                false,
                6,
                "对小区党支部隐藏居民身份（如投诉邻居）；社区、街道仍可见打码的电话",
                vec![
                    ValueView {
                        key: "false".into(),
                        name: "不隐藏".into(),
                    },
                    ValueView {
                        key: "true".into(),
                        name: "隐藏".into(),
                    },
                ],
            ),
        ],
    })
}

const TITLE_CHARS: usize = 80;
/// A title made from the description: its first line, this many characters at most.
const DERIVED_TITLE_CHARS: usize = 30;

// ---- posting a request ----

#[derive(Debug, Serialize)]
pub struct PostedView {
    pub service_request_id: String,
    pub service_notice: String,
    /// We give out no account ids.
    pub account_id: Option<String>,
}

fn parse_id(params: &Params, code: &str, errors: &mut Vec<String>) -> Option<i64> {
    let raw = params.get(&attribute_param(code))?;
    match raw.parse::<i64>() {
        Ok(v) if v > 0 => Some(v),
        _ => {
            errors.push(format!("attribute[{code}] 须为服务定义中列出的 key"));
            None
        }
    }
}

fn parse_coordinate(params: &Params, name: &str, errors: &mut Vec<String>) -> Option<f64> {
    let raw = params.get(name)?;
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        _ => {
            errors.push(format!("{name} 须为十进制度数（WGS 84）"));
            None
        }
    }
}

/// What a checked `POST requests` asks for.
pub struct Posted {
    pub input: CreateTicket,
    pub phone: Phone,
    pub name: Option<String>,
    pub external_ref: Option<String>,
    pub media_url: Option<String>,
    pub address_id: Option<String>,
}

/// Checks a `POST requests` body before the transaction: every missing or malformed field is
/// named, one error each, as the specification's error list has it.
pub fn check_post(
    params: &Params,
    category_id_of: impl Fn(&str) -> Option<i64>,
) -> Outcome<Posted> {
    let mut errors = Vec::new();
    let category_id = match params.get("service_code") {
        None => {
            errors.push("缺少 service_code".to_string());
            None
        }
        // The specification answers a service code it does not know with 404 alone.
        Some(code) => Some(
            category_id_of(code)
                .ok_or_else(|| Failure::one(404, "service_code 不存在，请先查询 services"))?,
        ),
    };
    let lat = parse_coordinate(params, "lat", &mut errors);
    let long = parse_coordinate(params, "long", &mut errors);
    let address_string = params.get("address_string");
    let address_id = params.get("address_id");
    if lat.is_none() && long.is_none() && address_string.is_none() && address_id.is_none() {
        errors.push("须提供位置：lat 和 long，或 address_string，或 address_id".to_string());
    }
    let compound_id = parse_id(params, attr::COMPOUND, &mut errors);
    if compound_id.is_none() && params.get(&attribute_param(attr::COMPOUND)).is_none() {
        errors.push("缺少 attribute[compound_id]（所在小区）".to_string());
    }
    let building_id = parse_id(params, attr::BUILDING, &mut errors);
    let urgency = match params.get(&attribute_param(attr::URGENCY)) {
        None => Urgency::Normal,
        Some(u) => Urgency::parse(u).unwrap_or_else(|| {
            errors.push("attribute[urgency] 须为 normal 或 urgent".to_string());
            Urgency::Normal
        }),
    };
    let hide_identity = match params.get(&attribute_param(attr::HIDE_IDENTITY)) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push("attribute[hide_identity] 须为 true 或 false".to_string());
            false
        }
    };
    let description = params.get("description");
    if description.is_none() {
        errors.push("缺少 description（诉求描述）".to_string());
    }
    let phone = match params.get("phone") {
        None => {
            errors.push("缺少 phone（居民手机号）".to_string());
            None
        }
        Some(p) => match Phone::parse(p) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(format!("phone：{}", e.message));
                None
            }
        },
    };
    let mut line = |field: &'static str, value: Option<&str>, max: usize| match value {
        None => None,
        Some(v) => match validate::text(field, v, max) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e.message);
                None
            }
        },
    };
    let name = {
        // Chinese names are family name first.
        let joined = format!(
            "{}{}",
            params.get("last_name").unwrap_or_default(),
            params.get("first_name").unwrap_or_default()
        );
        line(
            "first_name/last_name（姓名）",
            Some(joined.as_str()).filter(|s| !s.is_empty()),
            40,
        )
    };
    let external_ref = line(
        "attribute[external_ref]",
        params.get(&attribute_param(attr::EXTERNAL_REF)),
        64,
    );
    let address_id = line("address_id", address_id, 100);
    let title = line(
        "attribute[title]",
        params.get(&attribute_param(attr::TITLE)),
        TITLE_CHARS,
    );
    let media_url = match params.get("media_url") {
        None => None,
        Some(u) => match url::Url::parse(u) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && u.len() <= 500 => {
                Some(parsed.to_string())
            }
            _ => {
                errors.push("media_url 须为 http 或 https 地址（不超过 500 个字符）".to_string());
                None
            }
        },
    };
    // `email`, `device_id`, `account_id` and `jurisdiction_id` are accepted and not kept.
    let (Some(category_id), Some(compound_id), Some(description), Some(phone), true) = (
        category_id,
        compound_id,
        description,
        phone,
        errors.is_empty(),
    ) else {
        return Err(Failure::bad_request(errors));
    };
    let title = title.unwrap_or_else(|| derived_title(description));
    Ok(Posted {
        input: CreateTicket {
            compound_id,
            building_id,
            category_id,
            urgency,
            title,
            description: description.to_string(),
            location: Some(Location {
                text: address_string.map(str::to_string),
                latitude: lat,
                longitude: long,
                accuracy_m: None,
            }),
            source: None,
            resident_phone: None,
            resident_name: None,
            external_ref: None,
            hide_identity: Some(hide_identity),
        },
        phone,
        name,
        external_ref,
        media_url,
        address_id,
    })
}

/// The first line of a description, cut short: the title a call without one gets.
fn derived_title(description: &str) -> String {
    let first = description.lines().map(str::trim).find(|l| !l.is_empty());
    let first = first.unwrap_or(description);
    let mut title: String = first.chars().take(DERIVED_TITLE_CHARS).collect();
    if first.chars().count() > DERIVED_TITLE_CHARS {
        title.push('…');
    }
    title
}

/// The category id of each live service code.
pub fn service_codes(conn: &mut DbConn) -> Result<HashMap<String, i64>, AppError> {
    Ok(live_categories(conn)?
        .into_iter()
        .map(|c| (c.code, c.id))
        .collect())
}

/// Stores a checked request from `key` as a ticket, in the caller's write transaction (an
/// error rolls it back, the resident's new account included).
pub fn create(
    conn: &mut DbConn,
    key: &ApiKeyRow,
    posted: &Posted,
    sla: &SlaEngine,
    per_day: u32,
    now: DateTime<Utc>,
) -> Result<PostedView, AppError> {
    let source = key.source.ticket_source();
    if key.source == crate::domain::partner::PartnerSource::App {
        // A resident's own app: the same daily limit as our own page.
        if let Some(resident) = resident_of(conn, &posted.phone)? {
            crate::service::limits::check_new_ticket(
                conn,
                resident,
                None,
                per_day,
                crate::db::round_ts(now),
            )?;
        }
    }
    let row = crate::service::tickets::create::create_for_partner(
        conn,
        &posted.input,
        source,
        &posted.phone,
        posted.name.as_deref(),
        posted.external_ref.clone(),
        sla,
        now,
    )?;
    diesel::insert_into(open311_requests::table)
        .values((
            open311_requests::ticket_id.eq(row.id),
            open311_requests::api_key_id.eq(key.id),
            open311_requests::media_url.eq(&posted.media_url),
            open311_requests::address_id.eq(&posted.address_id),
            open311_requests::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    let compound: String = org_units::table
        .find(row.compound_id)
        .select(org_units::name)
        .first(conn)?;
    let notice = match row.ack_due_at.filter(|d| *d != no_deadline()) {
        Some(due) => format!(
            "诉求已登记（编号 {}），由{}党支部受理，受理时限 {}",
            row.reference,
            compound,
            beijing(due).format("%Y-%m-%d %H:%M")
        ),
        None => format!(
            "诉求已登记（编号 {}），由{}党支部受理",
            row.reference, compound
        ),
    };
    Ok(PostedView {
        service_request_id: row.reference,
        service_notice: notice,
        account_id: None,
    })
}

fn resident_of(conn: &mut DbConn, phone: &Phone) -> Result<Option<i64>, AppError> {
    use crate::db::schema::users;
    Ok(users::table
        .filter(crate::db::sqlite_plans::resident_role())
        .filter(users::phone.eq(phone.as_str()))
        .select(users::id)
        .first(conn)
        .optional()?)
}

// ---- reading requests back ----

#[derive(Debug, Serialize)]
pub struct RequestView {
    pub service_request_id: String,
    pub status: &'static str,
    pub status_notes: String,
    pub service_name: String,
    pub service_code: String,
    pub description: String,
    pub agency_responsible: String,
    pub service_notice: Option<String>,
    pub requested_datetime: String,
    pub updated_datetime: String,
    pub expected_datetime: Option<String>,
    pub address: Option<String>,
    pub address_id: Option<String>,
    pub zipcode: Option<String>,
    pub lat: Option<f64>,
    pub long: Option<f64>,
    pub media_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TokenView {
    pub service_request_id: String,
    pub token: String,
}

/// `open` or `closed`, as the specification has it: closed once nothing more will happen
/// (completed or withdrawn).
pub fn open_or_closed(status: Status) -> &'static str {
    if status.is_final() {
        "closed"
    } else {
        "open"
    }
}

/// A time as the specification writes it (W3C), in Beijing time.
pub fn w3c(t: NaiveDateTime) -> String {
    beijing(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn beijing(t: NaiveDateTime) -> DateTime<FixedOffset> {
    t.and_utc().with_timezone(&Shanghai).fixed_offset()
}

/// `2026-11-30T08:00:00+08:00`, `…Z`, or a date (Beijing midnight). A `+` that arrived
/// unescaped in a query string reads as a space: it is taken back. Years outside 1970–9999
/// are refused: no ticket is that old or that far ahead, and PostgreSQL refuses what lies
/// beyond its own range.
pub fn parse_w3c(raw: &str) -> Option<NaiveDateTime> {
    use chrono::Datelike;
    let fixed = raw.trim().replace(' ', "+");
    let t = match DateTime::parse_from_rfc3339(&fixed) {
        Ok(t) => t.naive_utc(),
        Err(_) => {
            let day = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok()?;
            let midnight = day.and_hms_opt(0, 0, 0)?;
            Shanghai
                .from_local_datetime(&midnight)
                .single()?
                .naive_utc()
        }
    };
    (1970..=9999).contains(&t.year()).then_some(t)
}

/// What `GET requests` filters by.
pub struct RequestFilter {
    /// References (comma list); when given, every other filter is ignored.
    pub ids: Option<Vec<String>>,
    /// Categories (the service codes asked for); `None`: all.
    pub category_ids: Option<Vec<i64>>,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    /// `None`: both.
    pub closed: Option<bool>,
}

/// Checks the query of `GET requests`: the specification's filters and defaults (the last 90
/// days, at most 90 days at once).
pub fn check_filter(
    params: &Params,
    category_id_of: impl Fn(&str) -> Option<i64>,
    now: NaiveDateTime,
) -> Outcome<RequestFilter> {
    let mut errors = Vec::new();
    let ids = params.list("service_request_id").map(|ids| {
        ids.into_iter()
            .take(MAX_REQUESTS as usize)
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    // An unknown code matches nothing rather than refusing the query.
    // Deduplicated, so however long the list, the query names each category once.
    let category_ids = params.list("service_code").map(|codes| {
        let mut ids: Vec<i64> = codes
            .into_iter()
            .map(|c| category_id_of(c).unwrap_or(-1))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    });
    let mut date = |name: &str| {
        params.get(name).and_then(|raw| {
            let parsed = parse_w3c(raw);
            if parsed.is_none() {
                errors.push(format!(
                    "{name} 须为 W3C 日期时间，如 2026-11-30T08:00:00+08:00"
                ));
            }
            parsed
        })
    };
    let start = date("start_date");
    let end = date("end_date");
    let span = Duration::days(MAX_SPAN_DAYS);
    // The years are bounded (`parse_w3c`), so these stay well inside chrono's range.
    let end = end.unwrap_or_else(|| match start {
        Some(s) => s.checked_add_signed(span).unwrap_or(s).min(now),
        None => now,
    });
    let start = start.unwrap_or_else(|| end.checked_sub_signed(span).unwrap_or(end));
    if end - start > span {
        errors.push(format!(
            "start_date 与 end_date 之间不能超过 {MAX_SPAN_DAYS} 天"
        ));
    }
    let mut closed = None;
    if let Some(statuses) = params.list("status") {
        let mut open = false;
        let mut shut = false;
        for s in statuses {
            match s {
                "open" => open = true,
                "closed" => shut = true,
                _ => errors.push("status 须为 open 或 closed".to_string()),
            }
        }
        closed = match (open, shut) {
            (true, false) => Some(false),
            (false, true) => Some(true),
            _ => None,
        };
    }
    if !errors.is_empty() {
        return Err(Failure::bad_request(errors));
    }
    Ok(RequestFilter {
        ids,
        category_ids,
        start,
        end,
        closed,
    })
}

/// The requests posted by any key of `key`'s partner that match `f`, newest first.
pub fn requests(
    conn: &mut DbConn,
    key: &ApiKeyRow,
    f: &RequestFilter,
) -> Outcome<Vec<RequestView>> {
    let mine = open311_requests::table
        .inner_join(api_keys::table)
        .filter(api_keys::partner.eq(key.partner.clone()))
        .select(open311_requests::ticket_id);
    let mut q = tickets::table
        .filter(tickets::id.eq_any(mine))
        .select(TicketRow::as_select())
        .into_boxed();
    if let Some(ids) = &f.ids {
        q = q.filter(tickets::reference.eq_any(ids.clone()));
    } else {
        q = q
            .filter(tickets::created_at.ge(f.start))
            .filter(tickets::created_at.le(f.end));
        if let Some(c) = &f.category_ids {
            q = q.filter(tickets::category_id.eq_any(c.clone()));
        }
        let final_states = [Status::Closed, Status::Withdrawn];
        match f.closed {
            Some(true) => q = q.filter(tickets::status.eq_any(final_states)),
            Some(false) => q = q.filter(tickets::status.ne_all(final_states)),
            None => {}
        }
    }
    let rows: Vec<TicketRow> = q.order(tickets::id.desc()).limit(MAX_REQUESTS).load(conn)?;
    views(conn, rows)
}

/// One request of `key`'s partner, by its reference.
pub fn request(conn: &mut DbConn, key: &ApiKeyRow, reference: &str) -> Outcome<RequestView> {
    let filter = RequestFilter {
        ids: Some(vec![reference.to_string()]),
        category_ids: None,
        start: NaiveDateTime::MIN,
        end: NaiveDateTime::MAX,
        closed: None,
    };
    requests(conn, key, &filter)?
        .into_iter()
        .next()
        .ok_or_else(Failure::not_found)
}

/// The request a token stands for. Requests are created at once, so a token is the request's
/// own id.
pub fn token(conn: &mut DbConn, key: &ApiKeyRow, token: &str) -> Outcome<TokenView> {
    let r = request(conn, key, token)?;
    Ok(TokenView {
        token: r.service_request_id.clone(),
        service_request_id: r.service_request_id,
    })
}

/// The newest note the resident could read in the timeline, written by staff (or the system),
/// per ticket.
fn public_notes(conn: &mut DbConn, ids: &[i64]) -> Result<HashMap<i64, String>, AppError> {
    let rows: Vec<TicketEventRow> = ticket_events::table
        .filter(ticket_events::ticket_id.eq_any(ids))
        .filter(ticket_events::internal.eq(false))
        .filter(ticket_events::actor_role.ne(ActorRole::Resident))
        .order(ticket_events::id.desc())
        .select(TicketEventRow::as_select())
        .load(conn)?;
    let mut out = HashMap::new();
    for e in rows {
        if out.contains_key(&e.ticket_id) {
            continue;
        }
        // A decline's reason is text for the resident; other reasons are codes.
        let text = match e.action {
            EventKind::Decline => e.note.or(e.reason),
            // Who handles it inside a unit is not the partner's business.
            EventKind::Assign => None,
            _ => e.note,
        };
        if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
            out.insert(e.ticket_id, t);
        }
    }
    Ok(out)
}

fn views(conn: &mut DbConn, rows: Vec<TicketRow>) -> Outcome<Vec<RequestView>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
    let cats: HashMap<i64, (String, String)> = categories::table
        .select((categories::id, categories::code, categories::name))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, code, name)| (id, (code, name)))
        .collect();
    let mut unit_ids: Vec<i64> = rows
        .iter()
        .flat_map(|t| [t.compound_id, t.community_id, t.street_id])
        .collect();
    unit_ids.sort_unstable();
    unit_ids.dedup();
    let units: HashMap<i64, String> = org_units::table
        .filter(org_units::id.eq_any(&unit_ids))
        .select((org_units::id, org_units::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let extra: HashMap<i64, (Option<String>, Option<String>)> = open311_requests::table
        .filter(open311_requests::ticket_id.eq_any(&ids))
        .select((
            open311_requests::ticket_id,
            open311_requests::media_url,
            open311_requests::address_id,
        ))
        .load::<(i64, Option<String>, Option<String>)>(conn)?
        .into_iter()
        .map(|(id, m, a)| (id, (m, a)))
        .collect();
    let notes = public_notes(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|t| {
            let f = t.to_domain().facts();
            let accountable = match f.level {
                Level::Compound => t.compound_id,
                Level::Community => t.community_id,
                Level::Street => t.street_id,
            };
            let running = match f.status {
                Status::Open => t.ack_due_at,
                Status::Acknowledged => t.resolve_due_at,
                Status::DeclineReview => t.decide_due_at,
                _ => None,
            }
            .filter(|d| *d != no_deadline() && t.paused_at.is_none());
            let state = status_text(f.status, f.level, t.escalation_count);
            let status_notes = match notes.get(&t.id) {
                Some(n) => format!("{state}：{n}"),
                None => state,
            };
            let (code, name) = cats.get(&t.category_id).cloned().unwrap_or_default();
            let (media_url, address_id) = extra.get(&t.id).cloned().unwrap_or_default();
            RequestView {
                service_request_id: t.reference,
                status: open_or_closed(f.status),
                status_notes,
                service_name: name,
                service_code: code,
                description: t.description,
                agency_responsible: units.get(&accountable).cloned().unwrap_or_default(),
                service_notice: None,
                requested_datetime: w3c(t.created_at),
                // For a closed request the specification wants the time it was closed.
                updated_datetime: w3c(t
                    .closed_at
                    .filter(|_| f.status.is_final())
                    .unwrap_or(t.updated_at)),
                expected_datetime: running.map(w3c),
                address: t.location_text,
                address_id,
                zipcode: None,
                lat: t.latitude,
                long: t.longitude,
                media_url,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w3c_times_read_and_write_in_beijing_time() {
        let t = parse_w3c("2026-11-30T08:00:00+08:00").expect("offset");
        assert_eq!(t.to_string(), "2026-11-30 00:00:00");
        assert_eq!(w3c(t), "2026-11-30T08:00:00+08:00");
        assert_eq!(parse_w3c("2026-11-30T00:00:00Z"), Some(t));
        // A `+` sent unescaped in a query string arrives as a space.
        assert_eq!(parse_w3c("2026-11-30T08:00:00 08:00"), Some(t));
        assert_eq!(parse_w3c("2026-11-30T08:00:00"), None);
        assert_eq!(
            parse_w3c("2026-11-30").map(|d| d.to_string()),
            Some("2026-11-29 16:00:00".to_string())
        );
        assert_eq!(parse_w3c("yesterday"), None);
        assert_eq!(parse_w3c("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_w3c("+262142-12-31"), None);
        assert!(parse_w3c("9999-12-31T23:59:59Z").is_some());
    }

    #[test]
    fn a_missing_title_is_the_start_of_the_description() {
        assert_eq!(derived_title("\n路灯不亮\n已经一周"), "路灯不亮");
        let long = "很".repeat(40);
        assert_eq!(derived_title(&long), format!("{}…", "很".repeat(30)));
    }

    #[test]
    fn list_parameters_may_repeat_and_be_comma_delimited() {
        let p = Params::parse(b"status=open,%20closed&status=&status=open&x=1");
        assert_eq!(p.list("status"), Some(vec!["open", "closed", "open"]));
        assert_eq!(p.list("service_code"), None);
        assert_eq!(Params::parse(b"status=,").list("status"), None);
    }

    #[test]
    fn an_unknown_service_code_is_404_alone() {
        let p = Params::parse(b"service_code=nope&lat=abc");
        let e = check_post(&p, |_| None).err().expect("refused");
        assert_eq!(e.status, 404);
        assert_eq!(e.errors.len(), 1);
    }

    #[test]
    fn every_missing_field_is_named() {
        let p = Params::parse(b"api_key=x&lat=abc");
        let e = check_post(&p, |_| Some(1)).err().expect("refused");
        assert_eq!(e.status, 400);
        assert!(e.errors.iter().any(|d| d.contains("service_code")), "{e:?}");
        assert!(e.errors.iter().any(|d| d.contains("lat ")), "{e:?}");
        assert!(e.errors.iter().any(|d| d.contains("compound_id")), "{e:?}");
        assert!(e.errors.iter().any(|d| d.contains("description")), "{e:?}");
        assert!(e.errors.iter().any(|d| d.contains("phone")), "{e:?}");
    }
}
