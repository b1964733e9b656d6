//! The street committee's dashboard: rates, counts, trend, categories, rankings, flows, the
//! overdue list and CSV exports. Definitions: docs/metrics.md. Street staff see their street,
//! community staff their community, admins everything; compound staff and residents get 403.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::AuthUser;
use crate::error::{AppResult, ErrorBody};
use crate::service::stats::{
    self, CategoryCount, Flows, OverdueList, RankRow, RankSort, RankUnit, Summary, TrendDay,
};
use crate::service::tickets::query::TicketFilter;
use crate::state::AppState;

/// Range and scope of a statistics request.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// Start (inclusive): RFC 3339 instant, or local date `YYYY-MM-DD` (Asia/Shanghai, from
    /// 00:00). Default: `to` − 30 days.
    pub from: Option<String>,
    /// End: RFC 3339 instant (exclusive), or local date `YYYY-MM-DD` (inclusive: the whole day).
    /// Default: now. At most 366 days after `from`.
    pub to: Option<String>,
    /// Narrow to one community (must be inside the caller's scope, else 404).
    pub community_id: Option<i64>,
    /// Admin only: narrow to one street.
    pub street_id: Option<i64>,
}

/// Range, scope and ordering of a ranking.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RankingParams {
    /// As for `/stats/summary`.
    pub from: Option<String>,
    /// As for `/stats/summary`.
    pub to: Option<String>,
    pub community_id: Option<i64>,
    pub street_id: Option<i64>,
    /// `community` (default) or `compound`.
    pub unit: Option<RankUnit>,
    /// `resolution_rate` (default), `response_rate`, `satisfaction_rate`,
    /// `settled_in_compound_rate` (highest first), `overdue`, `tickets` (most first).
    pub sort: Option<RankSort>,
}

/// Scope of the overdue list (a list of *now*: `from` / `to` are accepted and ignored, so a
/// dashboard can send one query string everywhere).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ScopeParams {
    /// Ignored.
    pub from: Option<String>,
    /// Ignored.
    pub to: Option<String>,
    pub community_id: Option<i64>,
    pub street_id: Option<i64>,
}

fn csv_response(body: String, filename: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body)
}

/// Resolves range and scope: role check first (403), then the parameters (422, 404).
async fn prepare(
    state: &web::Data<AppState>,
    user: &AuthUser,
    from: Option<String>,
    to: Option<String>,
    street_id: Option<i64>,
    community_id: Option<i64>,
) -> AppResult<(stats::StatsScope, stats::Range)> {
    stats::require_stats_role(user)?;
    let range = stats::parse_range(from.as_deref(), to.as_deref(), state.clock.now())?;
    let u = user.clone();
    let scope = state
        .db
        .run(move |c| stats::resolve_scope(c, &u, street_id, community_id))
        .await?;
    Ok((scope, range))
}

/// KPI tiles: the four rates, counts by status and level, open and overdue now, median times.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(StatsParams),
    responses(
        (status = 200, body = Summary),
        (status = 403, description = "Compound staff and residents", body = ErrorBody),
        (status = 404, description = "community_id / street_id outside the caller's scope", body = ErrorBody),
        (status = 422, description = "Bad from / to", body = ErrorBody),
    )
)]
#[get("/stats/summary")]
pub async fn summary(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<StatsParams>,
) -> AppResult<HttpResponse> {
    let p = q.into_inner();
    let (scope, range) = prepare(&state, &user, p.from, p.to, p.street_id, p.community_id).await?;
    let now = state.clock.now();
    let s = state
        .db
        .run(move |c| stats::summary(c, &scope, &range, now))
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

/// Tickets created and closed per local day (Asia/Shanghai), every day of the range.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(StatsParams),
    responses((status = 200, body = Vec<TrendDay>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/stats/trend")]
pub async fn trend(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<StatsParams>,
) -> AppResult<HttpResponse> {
    let p = q.into_inner();
    let (scope, range) = prepare(&state, &user, p.from, p.to, p.street_id, p.community_id).await?;
    let v = state
        .db
        .run(move |c| stats::trend(c, &scope, &range))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Tickets created in the range by category, most first.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(StatsParams),
    responses((status = 200, body = Vec<CategoryCount>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/stats/categories")]
pub async fn categories(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<StatsParams>,
) -> AppResult<HttpResponse> {
    let p = q.into_inner();
    let (scope, range) = prepare(&state, &user, p.from, p.to, p.street_id, p.community_id).await?;
    let v = state
        .db
        .run(move |c| stats::by_category(c, &scope, &range))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Communities or compounds in scope ranked by a rate, by overdue count or by tickets.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(RankingParams),
    responses((status = 200, body = Vec<RankRow>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/stats/ranking")]
pub async fn ranking(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<RankingParams>,
) -> AppResult<HttpResponse> {
    let p = q.into_inner();
    let (scope, range) = prepare(&state, &user, p.from, p.to, p.street_id, p.community_id).await?;
    let (unit, sort, now) = (
        p.unit.unwrap_or_default(),
        p.sort.unwrap_or_default(),
        state.clock.now(),
    );
    let v = state
        .db
        .run(move |c| stats::ranking(c, &scope, &range, unit, sort, now))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// The ranking as CSV (UTF-8 with BOM, for Excel).
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(RankingParams),
    responses((status = 200, content_type = "text/csv", body = String), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/stats/ranking.csv")]
pub async fn ranking_csv(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<RankingParams>,
) -> AppResult<HttpResponse> {
    let p = q.into_inner();
    let (scope, range) = prepare(&state, &user, p.from, p.to, p.street_id, p.community_id).await?;
    let (unit, sort, now) = (
        p.unit.unwrap_or_default(),
        p.sort.unwrap_or_default(),
        state.clock.now(),
    );
    let rows = state
        .db
        .run(move |c| stats::ranking(c, &scope, &range, unit, sort, now))
        .await?;
    let name = match unit {
        RankUnit::Community => "ranking-communities.csv",
        RankUnit::Compound => "ranking-compounds.csv",
    };
    Ok(csv_response(stats::ranking_csv(&rows, unit), name))
}

/// Calls up (小区→社区, 社区→街道) and returns (街道→社区, 社区→小区) that happened in the range.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(StatsParams),
    responses((status = 200, body = Flows), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/stats/flows")]
pub async fn flows(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<StatsParams>,
) -> AppResult<HttpResponse> {
    let p = q.into_inner();
    let (scope, range) = prepare(&state, &user, p.from, p.to, p.street_id, p.community_id).await?;
    let v = state
        .db
        .run(move |c| stats::flows(c, &scope, &range))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Open or acknowledged tickets in scope past their running deadline now, most overdue first.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(ScopeParams),
    responses((status = 200, body = OverdueList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/stats/overdue")]
pub async fn overdue(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<ScopeParams>,
) -> AppResult<HttpResponse> {
    let p = q.into_inner();
    stats::require_stats_role(&user)?;
    let now = state.clock.now();
    let v = state
        .db
        .run(move |c| {
            let scope = stats::resolve_scope(c, &user, p.street_id, p.community_id)?;
            stats::overdue_list(c, &scope, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// The caller's ticket list as CSV (UTF-8 with BOM): the filters of `GET /tickets`, no paging
/// (`limit` and `cursor` are ignored), newest first unless `sort` says otherwise, at most 50,000
/// rows (`X-Export-Truncated: true` when cut).
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(TicketFilter),
    responses((status = 200, content_type = "text/csv", body = String), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/stats/tickets.csv")]
pub async fn tickets_csv(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<TicketFilter>,
) -> AppResult<HttpResponse> {
    let filter = q.into_inner();
    stats::require_stats_role(&user)?;
    let now = state.clock.now();
    let (body, truncated) = state
        .db
        .run(move |c| stats::tickets_csv(c, &user, &filter, now))
        .await?;
    let mut resp = csv_response(body, "tickets.csv");
    if truncated {
        resp.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-export-truncated"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}
