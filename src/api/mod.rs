//! HTTP API under `/api/v1`; one module per resource, handlers stay thin. Each module's
//! `configure` registers its handlers, and with them their OpenAPI operations.

pub mod api_keys;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod callbacks;
pub mod categories;
pub mod doc;
pub mod health;
pub mod me;
pub mod meta;
pub mod notifications;
pub mod open311;
pub mod org;
pub mod reports;
pub mod sla;
pub mod stats;
pub mod stream;
pub mod tickets;
pub mod users;

use actix_web::{web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{self, AppError};

/// Every API route, each registered once with its OpenAPI operation: `/healthz`, `/readyz` and
/// the `/api/v1` scope.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.configure(health::configure)
        .service(utoipa_actix_web::scope("/api/v1").configure(configure_v1));
}

/// Routes under `/api/v1`. Where two routes of one method could match the same URL, the one
/// registered first wins: `tickets::configure` orders its own.
fn configure_v1(cfg: &mut ServiceConfig) {
    // The ticket routes first: actix tries the routes in order, matching each pattern with
    // parameters by a regular expression, and the queue and the ticket pages are the most asked.
    cfg.configure(tickets::configure)
        .configure(notifications::configure)
        .configure(auth::configure)
        .configure(me::configure)
        .configure(meta::configure)
        .configure(org::configure)
        .configure(users::configure)
        .configure(audit::configure)
        .configure(api_keys::configure)
        .configure(categories::configure)
        .configure(sla::configure)
        .configure(stats::configure)
        .configure(reports::configure)
        .configure(callbacks::configure)
        .configure(stream::configure);
}

/// The extractor configs that turn actix's plain-text 400s into our JSON errors.
pub fn extractor_configs(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(error::json_error_handler),
    )
    // Routes that read a raw body (`POST /tickets/{id}/{action}`, `PUT /calendars/{year}`)
    // have the same limit as JSON bodies; over it, `http::json_errors` makes the 413 JSON.
    .app_data(web::PayloadConfig::new(64 * 1024))
    .app_data(web::QueryConfig::default().error_handler(error::query_error_handler))
    .app_data(web::PathConfig::default().error_handler(error::path_error_handler));
}

/// No route answered: 405 with `Allow` when the path exists with other methods, else 404.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, AppError> {
    let allowed = req
        .app_data::<web::Data<crate::http::AllowMap>>()
        .map(|m| m.allowed(req.path()))
        .unwrap_or_default();
    if allowed.is_empty() {
        return Err(AppError::NotFound);
    }
    let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
    Err(AppError::MethodNotAllowed(allow.join(", ")))
}
