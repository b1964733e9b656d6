//! SLA policies and working calendars (admins edit; staff read).

use actix_web::{get, put, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::{AdminOnly, JsonBody};
use crate::auth::AuthUser;
use crate::domain::calendar::{YearCalendar, YearCalendarSpec};
use crate::domain::role::Role;
use crate::domain::sla::SlaPolicy;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::service::sla as svc;
use crate::state::AppState;

/// `403` of the routes `require_staff` guards.
#[derive(utoipa::IntoResponses)]
#[response(status = 403, description = "Staff and admins only")]
pub struct StaffOnly(pub ErrorBody);

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicySet {
    /// The most specific matching policy wins: category + urgency > category > urgency > level.
    pub policies: Vec<SlaPolicy>,
}

fn require_staff(user: &AuthUser) -> AppResult<()> {
    if user.role == Role::Resident {
        Err(AppError::Forbidden)
    } else {
        Ok(())
    }
}

/// The SLA policies in force.
#[utoipa::path(tag = "sla", security(("bearer" = [])), responses((status = 200, body = PolicySet), StaffOnly))]
#[get("/sla-policies")]
pub async fn get_policies(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    require_staff(&user)?;
    Ok(HttpResponse::Ok().json(PolicySet {
        policies: state.sla.policies(),
    }))
}

/// Replace the SLA policies (admin). Applies to tickets that arrive at a level afterwards;
/// tickets already running keep their deadlines, so nothing escalates unexpectedly.
#[utoipa::path(
    tag = "sla",
    security(("bearer" = [])),
    request_body = PolicySet,
    responses(
        (status = 200, body = PolicySet),
        AdminOnly,
        JsonBody,
        (status = 422, description = "Malformed body, or a policy is invalid", body = ErrorBody),
    )
)]
#[put("/sla-policies")]
pub async fn put_policies(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<PolicySet>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let policies = body.into_inner().policies;
    let now = state.clock.now().naive_utc();
    let sla = state.sla.clone();
    state
        .db
        .write(move |c| {
            svc::replace_policies(c, &policies, now)?;
            sla.reload(c)
        })
        .await?;
    tracing::info!(admin = user.id, "SLA policies replaced");
    Ok(HttpResponse::Ok().json(PolicySet {
        policies: state.sla.policies(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarYear {
    pub year: i32,
    pub holidays: usize,
    pub make_up_days: usize,
}

/// The years that have a holiday calendar; other years fall back to Monday–Friday.
#[utoipa::path(tag = "sla", security(("bearer" = [])), responses((status = 200, body = Vec<CalendarYear>), StaffOnly))]
#[get("/calendars")]
pub async fn list_calendars(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    require_staff(&user)?;
    let cal = state.sla.calendar();
    let years: Vec<CalendarYear> = cal
        .years()
        .values()
        .map(|y| CalendarYear {
            year: y.year(),
            holidays: y.off().len(),
            make_up_days: y.work().len(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(years))
}

/// One year's public holidays and make-up working days.
#[utoipa::path(
    tag = "sla",
    security(("bearer" = [])),
    params(("year" = i32, Path)),
    responses((status = 200, body = YearCalendarSpec), StaffOnly, (status = 404, description = "No calendar for this year", body = ErrorBody))
)]
#[get("/calendars/{year}")]
pub async fn get_calendar(
    state: web::Data<AppState>,
    user: AuthUser,
    year: web::Path<i32>,
) -> AppResult<HttpResponse> {
    require_staff(&user)?;
    let cal = state.sla.calendar();
    let y = cal
        .years()
        .get(&year.into_inner())
        .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok().json(y.spec()))
}

/// Load a year's calendar (admin): JSON `{year, timezone, off: [{name, from, to}], work: [dates]}`,
/// or the same as TOML (`Content-Type: application/toml`), the format of the shipped 2026 file.
#[utoipa::path(
    tag = "sla",
    security(("bearer" = [])),
    params(("year" = i32, Path)),
    request_body = YearCalendarSpec,
    responses(
        (status = 200, body = YearCalendarSpec),
        AdminOnly,
        (status = 422, description = "Malformed, an invalid calendar, or another year than the path's", body = ErrorBody),
    )
)]
#[put("/calendars/{year}")]
pub async fn put_calendar(
    state: web::Data<AppState>,
    user: AuthUser,
    year: web::Path<i32>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let year = year.into_inner();
    let is_toml = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("toml"));
    let invalid =
        |e: String| AppError::validation("invalid_calendar", format!("日历数据无效：{e}"));
    if !is_toml {
        crate::error::check_json_content_type(&req, &body)?;
    }
    let parsed = if is_toml {
        let text = std::str::from_utf8(&body).map_err(|e| invalid(e.to_string()))?;
        YearCalendar::from_toml_str(text).map_err(|e| invalid(e.to_string()))?
    } else {
        let spec: YearCalendarSpec =
            serde_json::from_slice(&body).map_err(|e| invalid(e.to_string()))?;
        YearCalendar::try_from(spec).map_err(|e| invalid(e.to_string()))?
    };
    if parsed.year() != year {
        return Err(invalid(format!(
            "路径年份 {year} 与数据年份 {} 不一致",
            parsed.year()
        )));
    }
    let now = state.clock.now().naive_utc();
    let sla = state.sla.clone();
    let stored = parsed.clone();
    state
        .db
        .write(move |c| {
            svc::store_calendar(c, &stored, now)?;
            sla.reload(c)
        })
        .await?;
    tracing::info!(admin = user.id, year, "calendar loaded");
    Ok(HttpResponse::Ok().json(parsed.spec()))
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_policies)
        .service(put_policies)
        .service(list_calendars)
        .service(get_calendar)
        .service(put_calendar);
}
