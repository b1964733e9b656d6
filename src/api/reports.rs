//! The street's monthly report (月报): JSON for the printable page, and the same as a workbook.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::stats::{audited, xlsx_response, WindowErrors};
use crate::auth::AuthUser;
use crate::error::AppResult;
use crate::service::stats::report::{self, Month, MonthlyReport};
use crate::service::stats::{self, xlsx};
use crate::state::AppState;

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// `YYYY-MM` (Beijing time); default: the month before this one.
    pub month: Option<String>,
    /// Narrow to one community of the caller's scope.
    pub community_id: Option<i64>,
    /// Admin only: the street.
    pub street_id: Option<i64>,
}

async fn build(
    state: &web::Data<AppState>,
    user: &AuthUser,
    q: ReportParams,
) -> AppResult<MonthlyReport> {
    stats::require_stats_role(user)?;
    let now = state.clock.now();
    let month = Month::parse(q.month.as_deref(), now)?;
    let u = user.clone();
    state
        .db
        .run_ranged(move |c| {
            let scope = stats::resolve_scope(c, &u, q.street_id, q.community_id)?;
            report::monthly(c, &scope, month, now)
        })
        .await
}

/// The month's report: rates with the month before, the ledger's best and worst compounds,
/// top categories and compounds, overdue and reopened tickets, callbacks, how tickets closed.
#[utoipa::path(tag = "stats", security(("bearer" = [])), params(ReportParams),
    responses((status = 200, body = MonthlyReport), WindowErrors))]
#[get("/reports/monthly")]
pub async fn monthly(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<ReportParams>,
) -> AppResult<HttpResponse> {
    let r = build(&state, &user, q.into_inner()).await?;
    Ok(HttpResponse::Ok().json(r))
}

/// The month's report as an Excel workbook.
#[utoipa::path(tag = "stats", security(("bearer" = [])), params(ReportParams),
    responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = Vec<u8>), WindowErrors))]
#[get("/reports/monthly.xlsx")]
pub async fn monthly_xlsx(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<ReportParams>,
) -> AppResult<HttpResponse> {
    let r = build(&state, &user, q.into_inner()).await?;
    audited(&state, &user, format!("monthly report {}", r.month)).await?;
    let ascii = format!("report-{}.xlsx", r.month);
    let utf8 = format!("{}月报.xlsx", r.month);
    let body = web::block(move || xlsx::report_xlsx(&r)).await??;
    Ok(xlsx_response(body, &ascii, &utf8))
}

pub fn configure(cfg: &mut ServiceConfig) {
    // The `.xlsx` route first: `/reports/monthly` would not match it anyway, but keep the
    // order the other exports use.
    cfg.service(monthly_xlsx).service(monthly);
}
