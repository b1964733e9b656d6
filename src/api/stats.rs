//! The street committee's dashboard: rates, counts, trend, categories, rankings, flows, the
//! overdue list and CSV exports. Definitions: docs/metrics.md. Street staff see their street,
//! community staff their community, admins everything; compound staff and residents get 403.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, IntoResponses};
use utoipa_actix_web::service_config::ServiceConfig;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::auth::AuthUser;
use crate::db::DbConn;
use crate::domain::ledger::LedgerKind;
use crate::domain::metrics::Flows;
use crate::domain::privacy::AuditAction;
use crate::error::{AppResult, ErrorBody};
use crate::service::privacy::{self, Actor};
use crate::service::stats::{
    self, xlsx, CategoryCount, Ledger, LedgerTickets, OverdueList, Range, RankRow, RankSort,
    RankUnit, SourceCount, StatsScope, Summary, TrendDay,
};
use crate::service::tickets::query::TicketFilter;
use crate::state::AppState;

/// The errors of every range-and-scope route, in the order `in_window` checks them.
#[derive(IntoResponses)]
pub enum WindowErrors {
    #[response(status = 403, description = "Compound staff and residents")]
    Role(ErrorBody),
    #[response(
        status = 404,
        description = "community_id / street_id outside the caller's scope"
    )]
    Scope(ErrorBody),
    #[response(status = 422, description = "Bad from / to, or an unknown parameter")]
    Range(ErrorBody),
}

/// `403` of `stats::require_stats_role`.
#[derive(IntoResponses)]
#[response(status = 403, description = "Compound staff and residents")]
pub struct StatsRole(pub ErrorBody);

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

/// The range and scope parameters every statistics request shares.
struct Window {
    from: Option<String>,
    to: Option<String>,
    street_id: Option<i64>,
    community_id: Option<i64>,
}

impl StatsParams {
    fn window(self) -> Window {
        Window {
            from: self.from,
            to: self.to,
            street_id: self.street_id,
            community_id: self.community_id,
        }
    }
}

impl RankingParams {
    /// The window, and the unit and order (defaults applied).
    fn split(self) -> (Window, RankUnit, RankSort) {
        (
            Window {
                from: self.from,
                to: self.to,
                street_id: self.street_id,
                community_id: self.community_id,
            },
            self.unit.unwrap_or_default(),
            self.sort.unwrap_or_default(),
        )
    }
}

/// What every range-and-scope handler does: the role check first (403), then the range (422),
/// then the scope (404), then `f` on the same pooled connection.
async fn in_window<T, F>(
    state: &web::Data<AppState>,
    user: &AuthUser,
    w: Window,
    f: F,
) -> AppResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, &StatsScope, &Range) -> AppResult<T> + Send + 'static,
{
    stats::require_stats_role(user)?;
    let range = stats::parse_range(w.from.as_deref(), w.to.as_deref(), state.clock.now())?;
    let u = user.clone();
    state
        .db
        .run_ranged(move |c| {
            let scope = stats::resolve_scope(c, &u, w.street_id, w.community_id)?;
            f(c, &scope, &range)
        })
        .await
}

/// `attachment` with an ASCII `filename` for old clients and the real (Chinese) name as
/// `filename*` (RFC 6266 / RFC 5987).
fn attachment(ascii: &str, utf8: &str) -> String {
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(utf8, NON_ALPHANUMERIC)
    )
}

pub(crate) fn xlsx_response(body: Vec<u8>, ascii: &str, utf8: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(xlsx::CONTENT_TYPE)
        .insert_header(("Content-Disposition", attachment(ascii, utf8)))
        .body(body)
}

fn mark_truncated(resp: &mut HttpResponse, truncated: bool) {
    if truncated {
        resp.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-export-truncated"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
}

/// Records an export in the audit log before it leaves: no audit row, no export.
pub(crate) async fn audited(
    state: &web::Data<AppState>,
    user: &AuthUser,
    detail: String,
) -> AppResult<()> {
    let by = Actor::from(user);
    let now = crate::db::round_ts(state.clock.now());
    state
        .db
        .write(move |c| {
            privacy::audit(
                c,
                by,
                AuditAction::StatsExport,
                None,
                None,
                Some(&detail),
                now,
            )
        })
        .await
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

/// KPI tiles: the four rates, counts by status and level, open and overdue now, median times.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(StatsParams),
    responses((status = 200, body = Summary), WindowErrors)
)]
#[get("/stats/summary")]
pub async fn summary(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<StatsParams>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let s = in_window(
        &state,
        &user,
        q.into_inner().window(),
        move |c, scope, range| stats::summary(c, scope, range, now),
    )
    .await?;
    Ok(HttpResponse::Ok().json(s))
}

/// Tickets created and closed per local day (Asia/Shanghai), every day of the range.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(StatsParams),
    responses((status = 200, body = Vec<TrendDay>), WindowErrors)
)]
#[get("/stats/trend")]
pub async fn trend(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<StatsParams>,
) -> AppResult<HttpResponse> {
    let v = in_window(&state, &user, q.into_inner().window(), |c, scope, range| {
        stats::trend(c, scope, range)
    })
    .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Tickets created in the range by category, most first.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(StatsParams),
    responses((status = 200, body = Vec<CategoryCount>), WindowErrors)
)]
#[get("/stats/categories")]
pub async fn categories(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<StatsParams>,
) -> AppResult<HttpResponse> {
    let v = in_window(&state, &user, q.into_inner().window(), |c, scope, range| {
        stats::by_category(c, scope, range)
    })
    .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Tickets created in the range by how they came in: the resident's app, entered on a
/// resident's behalf (phone, desk, visit, hotline), or an own finding. Every source is listed.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(StatsParams),
    responses((status = 200, body = Vec<SourceCount>), WindowErrors)
)]
#[get("/stats/sources")]
pub async fn sources(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<StatsParams>,
) -> AppResult<HttpResponse> {
    let v = in_window(&state, &user, q.into_inner().window(), |c, scope, range| {
        stats::by_source(c, scope, range)
    })
    .await?;
    Ok(HttpResponse::Ok().json(v))
}

async fn ranked(
    state: &web::Data<AppState>,
    user: &AuthUser,
    w: Window,
    unit: RankUnit,
    sort: RankSort,
) -> AppResult<Vec<RankRow>> {
    let now = state.clock.now();
    in_window(state, user, w, move |c, scope, range| {
        stats::ranking(c, scope, range, unit, sort, now)
    })
    .await
}

/// Communities or compounds in scope ranked by a rate, by overdue count or by tickets.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(RankingParams),
    responses((status = 200, body = Vec<RankRow>), WindowErrors)
)]
#[get("/stats/ranking")]
pub async fn ranking(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<RankingParams>,
) -> AppResult<HttpResponse> {
    let (w, unit, sort) = q.into_inner().split();
    let v = ranked(&state, &user, w, unit, sort).await?;
    Ok(HttpResponse::Ok().json(v))
}

/// The ranking as CSV (UTF-8 with BOM, for Excel).
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(RankingParams),
    responses((status = 200, content_type = "text/csv", body = String), WindowErrors)
)]
#[get("/stats/ranking.csv")]
pub async fn ranking_csv(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<RankingParams>,
) -> AppResult<HttpResponse> {
    let (w, unit, sort) = q.into_inner().split();
    let rows = ranked(&state, &user, w, unit, sort).await?;
    let name = match unit {
        RankUnit::Community => "ranking-communities.csv",
        RankUnit::Compound => "ranking-compounds.csv",
    };
    audited(&state, &user, format!("{name}: {} rows", rows.len())).await?;
    Ok(csv_response(stats::ranking_csv(&rows, unit), name))
}

/// Calls up (小区→社区, 社区→街道) and returns (街道→社区, 社区→小区) that happened in the range.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(StatsParams),
    responses((status = 200, body = Flows), WindowErrors)
)]
#[get("/stats/flows")]
pub async fn flows(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<StatsParams>,
) -> AppResult<HttpResponse> {
    let v = in_window(&state, &user, q.into_inner().window(), |c, scope, range| {
        stats::flows(c, scope, range)
    })
    .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Open or acknowledged tickets in scope past their running deadline now, most overdue first.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(ScopeParams),
    responses((status = 200, body = OverdueList), StatsRole, (status = 404, description = "community_id / street_id outside the caller's scope", body = ErrorBody))
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
        .run_ranged(move |c| {
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
    responses((status = 200, content_type = "text/csv", body = String), StatsRole)
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
    let u = user.clone();
    let (body, truncated) = state
        .db
        .run_ranged(move |c| stats::tickets_csv(c, &u, &filter, now))
        .await?;
    audited(&state, &user, "tickets.csv".into()).await?;
    let mut resp = csv_response(body, "tickets.csv");
    mark_truncated(&mut resp, truncated);
    Ok(resp)
}

/// The ranking as an Excel workbook: the rows and columns of `ranking.csv`; rates as numbers
/// shown as percentages, medians in minutes.
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(RankingParams),
    responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = Vec<u8>), WindowErrors)
)]
#[get("/stats/ranking.xlsx")]
pub async fn ranking_xlsx(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<RankingParams>,
) -> AppResult<HttpResponse> {
    let (w, unit, sort) = q.into_inner().split();
    let rows = ranked(&state, &user, w, unit, sort).await?;
    audited(&state, &user, format!("ranking.xlsx: {} rows", rows.len())).await?;
    // Building the workbook is CPU work: off the async workers.
    let body = web::block(move || xlsx::ranking_xlsx(&rows, unit)).await??;
    let (ascii, utf8) = match unit {
        RankUnit::Community => ("ranking-communities.xlsx", "社区排名.xlsx"),
        RankUnit::Compound => ("ranking-compounds.xlsx", "小区排名.xlsx"),
    };
    Ok(xlsx_response(body, ascii, utf8))
}

/// The caller's ticket list as an Excel workbook: the rows, filters and limit of `tickets.csv`;
/// times as Excel date-times (Asia/Shanghai).
#[utoipa::path(
    tag = "stats",
    security(("bearer" = [])),
    params(TicketFilter),
    responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = Vec<u8>), StatsRole)
)]
#[get("/stats/tickets.xlsx")]
pub async fn tickets_xlsx(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<TicketFilter>,
) -> AppResult<HttpResponse> {
    let filter = q.into_inner();
    stats::require_stats_role(&user)?;
    let now = state.clock.now();
    let u = user.clone();
    let (rows, truncated) = state
        .db
        .run_ranged(move |c| stats::export_tickets(c, &u, &filter, now))
        .await?;
    audited(&state, &user, format!("tickets.xlsx: {} rows", rows.len())).await?;
    let body = web::block(move || xlsx::tickets_xlsx(&rows)).await??;
    let mut resp = xlsx_response(body, "tickets.xlsx", "工单导出.xlsx");
    mark_truncated(&mut resp, truncated);
    Ok(resp)
}

/// Range, scope and unit kind of the ledger.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LedgerParams {
    /// As for `/stats/summary`: the entries whose time falls in the range count.
    pub from: Option<String>,
    /// As for `/stats/summary`.
    pub to: Option<String>,
    pub community_id: Option<i64>,
    pub street_id: Option<i64>,
    /// `compound` (default) or `community`.
    pub unit: Option<RankUnit>,
}

impl LedgerParams {
    fn split(self) -> (Window, RankUnit) {
        (
            Window {
                from: self.from,
                to: self.to,
                street_id: self.street_id,
                community_id: self.community_id,
            },
            self.unit.unwrap_or(RankUnit::Compound),
        )
    }
}

async fn ledger_of(
    state: &web::Data<AppState>,
    user: &AuthUser,
    q: LedgerParams,
) -> AppResult<Ledger> {
    let (w, unit) = q.split();
    in_window(state, user, w, move |c, scope, range| {
        stats::ledger(c, scope, range, unit)
    })
    .await
}

/// The accountability ledger (责任账本): per compound or community, what reached it while it
/// was accountable and how it answered (docs/metrics.md).
#[utoipa::path(tag = "stats", security(("bearer" = [])), params(LedgerParams),
    responses((status = 200, body = Ledger), WindowErrors))]
#[get("/stats/ledger")]
pub async fn ledger(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<LedgerParams>,
) -> AppResult<HttpResponse> {
    let l = ledger_of(&state, &user, q.into_inner()).await?;
    Ok(HttpResponse::Ok().json(l))
}

/// The ledger as CSV (UTF-8 with BOM, for Excel).
#[utoipa::path(tag = "stats", security(("bearer" = [])), params(LedgerParams),
    responses((status = 200, content_type = "text/csv", body = String), WindowErrors))]
#[get("/stats/ledger.csv")]
pub async fn ledger_csv(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<LedgerParams>,
) -> AppResult<HttpResponse> {
    let l = ledger_of(&state, &user, q.into_inner()).await?;
    let name = match l.unit {
        RankUnit::Community => "ledger-communities.csv",
        RankUnit::Compound => "ledger-compounds.csv",
    };
    audited(&state, &user, format!("{name}: {} rows", l.rows.len())).await?;
    Ok(csv_response(stats::export::ledger_csv(&l), name))
}

/// The ledger as an Excel workbook: the columns of `ledger.csv`, rates as percentages.
#[utoipa::path(tag = "stats", security(("bearer" = [])), params(LedgerParams),
    responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = Vec<u8>), WindowErrors))]
#[get("/stats/ledger.xlsx")]
pub async fn ledger_xlsx(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<LedgerParams>,
) -> AppResult<HttpResponse> {
    let l = ledger_of(&state, &user, q.into_inner()).await?;
    audited(&state, &user, format!("ledger.xlsx: {} rows", l.rows.len())).await?;
    let (ascii, utf8) = match l.unit {
        RankUnit::Community => ("ledger-communities.xlsx", "社区责任账本.xlsx"),
        RankUnit::Compound => ("ledger-compounds.xlsx", "小区责任账本.xlsx"),
    };
    let body = web::block(move || xlsx::ledger_xlsx(&l)).await??;
    Ok(xlsx_response(body, ascii, utf8))
}

/// The tickets behind one number of the ledger.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LedgerTicketsParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub community_id: Option<i64>,
    pub street_id: Option<i64>,
    /// The compound or community of the row.
    pub unit_id: i64,
    /// The column (`received`, `called_up_by_sweeper`, `reopenings`, …).
    #[param(value_type = String)]
    pub column: LedgerKind,
}

/// The tickets behind one count of the ledger (newest first, at most 500).
#[utoipa::path(tag = "stats", security(("bearer" = [])), params(LedgerTicketsParams),
    responses((status = 200, body = LedgerTickets), WindowErrors))]
#[get("/stats/ledger/tickets")]
pub async fn ledger_tickets(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<LedgerTicketsParams>,
) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let (unit_id, column) = (q.unit_id, q.column);
    let w = Window {
        from: q.from,
        to: q.to,
        street_id: q.street_id,
        community_id: q.community_id,
    };
    let v = in_window(&state, &user, w, move |c, scope, range| {
        stats::ledger_tickets(c, scope, range, unit_id, column)
    })
    .await?;
    Ok(HttpResponse::Ok().json(v))
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(ledger)
        .service(ledger_csv)
        .service(ledger_xlsx)
        .service(ledger_tickets)
        .service(summary)
        .service(trend)
        .service(categories)
        .service(ranking)
        .service(ranking_csv)
        .service(flows)
        .service(sources)
        .service(overdue)
        .service(tickets_csv)
        .service(ranking_xlsx)
        .service(tickets_xlsx);
}
