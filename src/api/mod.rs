//! HTTP API under `/api/v1`; one module per resource, handlers stay thin.

pub mod attachments;
pub mod auth;
pub mod categories;
pub mod health;
pub mod me;
pub mod meta;
pub mod notifications;
pub mod org;
pub mod sla;
pub mod stats;
pub mod tickets;
pub mod users;

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{self, AppError};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Huying 呼应 API",
        description = "三级呼叫响应：群众呼、小区党支部应；小区党支部呼、社区党支部应；社区党支部呼、街党工委应。\n\nErrors are JSON `{code, message}` with a stable snake_case `code` and a zh-CN `message`."
    ),
    paths(
        health::healthz, health::readyz,
        auth::request_otp, auth::login, auth::refresh, auth::logout, me::me, meta::get_labels,
        org::tree, org::create, org::update,
        users::create, users::list, users::get_one, users::update,
        categories::list, categories::create, categories::update,
        tickets::create, tickets::list, tickets::get_one, tickets::events, tickets::act,
        attachments::upload, attachments::list, attachments::download,
        sla::get_policies, sla::put_policies, sla::list_calendars, sla::get_calendar, sla::put_calendar,
        stats::summary, stats::trend, stats::categories, stats::ranking, stats::ranking_csv,
        stats::flows, stats::overdue, stats::tickets_csv, stats::ranking_xlsx, stats::tickets_xlsx,
        notifications::list, notifications::read_one, notifications::read_all,
        notifications::get_settings, notifications::put_settings,
        notifications::admin_list, notifications::admin_retry,
        notifications::put_webhook, notifications::delete_webhook,
    ),
    modifiers(&BearerAuth, &V1Prefix),
    tags(
        (name = "auth", description = "Sign-in and tokens"),
        (name = "org", description = "Streets, communities, compounds, buildings"),
        (name = "users", description = "Accounts (admin)"),
        (name = "categories", description = "Ticket categories"),
        (name = "tickets", description = "The call and the answer: tickets up the 小区 → 社区 → 街道 chain"),
        (name = "sla", description = "SLA policies and the working calendar"),
        (name = "stats", description = "The street committee's dashboard: rates, trends, rankings, exports (docs/metrics.md)"),
        (name = "health", description = "Liveness and readiness"),
        (name = "meta", description = "The zh-CN labels of every closed set of values"),
        (name = "notifications", description = "In-app inbox, notification settings, the outbox (admin), unit robots"),
    )
)]
pub struct ApiDoc;

/// Handlers are mounted in the `/api/v1` scope, which the route macros cannot see.
struct V1Prefix;

impl Modify for V1Prefix {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = std::mem::take(&mut openapi.paths.paths);
        openapi.paths.paths = paths
            .into_iter()
            .map(|(path, item)| {
                if path == "/healthz" || path == "/readyz" {
                    (path, item)
                } else {
                    (format!("/api/v1{path}"), item)
                }
            })
            .collect();
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Routes under `/api/v1`.
pub fn configure_v1(cfg: &mut web::ServiceConfig) {
    cfg.configure(notifications::configure);
    cfg.service(auth::request_otp)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(me::me)
        .service(meta::get_labels)
        .service(org::tree)
        .service(org::create)
        .service(org::update)
        .service(users::create)
        .service(users::list)
        .service(users::get_one)
        .service(users::update)
        .service(categories::list)
        .service(categories::create)
        .service(categories::update)
        .service(tickets::create)
        .service(tickets::list)
        .service(tickets::events)
        .service(attachments::upload)
        .service(attachments::list)
        .service(attachments::download)
        .service(sla::get_policies)
        .service(sla::put_policies)
        .service(sla::list_calendars)
        .service(sla::get_calendar)
        .service(sla::put_calendar)
        .service(stats::summary)
        .service(stats::trend)
        .service(stats::categories)
        .service(stats::ranking)
        .service(stats::ranking_csv)
        .service(stats::flows)
        .service(stats::overdue)
        .service(stats::tickets_csv)
        .service(stats::ranking_xlsx)
        .service(stats::tickets_xlsx)
        .service(tickets::get_one)
        .service(tickets::act);
}

/// The extractor configs that turn actix's plain-text 400s into our JSON errors.
pub fn extractor_configs(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(error::json_error_handler),
    )
    .app_data(web::QueryConfig::default().error_handler(error::query_error_handler))
    .app_data(web::PathConfig::default().error_handler(error::path_error_handler));
}

pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}
