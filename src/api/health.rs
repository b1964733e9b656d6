use actix_web::{get, web, HttpResponse};
use std::time::Duration;

use serde_json::json;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ErrorBody;
use crate::state::AppState;

/// The process is up.
#[utoipa::path(tag = "health", responses((status = 200, description = "Up")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready to serve: the database file is the one opened at start (SQLite), a pooled connection
/// is free, and a write transaction starts within a second.
#[utoipa::path(tag = "health", responses((status = 200, description = "Ready"), (status = 503, description = "Database gone, replaced, locked or out of connections (`details.reason`)", body = ErrorBody)))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let backend = state.db.engine();
    let db = state.db.clone();
    let probe = web::block(move || db.readiness(Duration::from_secs(1)));
    // The probe waits at most a second for the lock; this bounds a saturated blocking pool too.
    let reason = match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(Ok(()))) => {
            return HttpResponse::Ok().json(
                json!({"status": "ready", "database": format!("{backend:?}").to_lowercase()}),
            )
        }
        Ok(Ok(Err(not_ready))) => not_ready.as_str(),
        Ok(Err(_)) | Err(_) => "probe_timeout",
    };
    tracing::warn!(reason, "not ready");
    HttpResponse::ServiceUnavailable().json(ErrorBody {
        code: "database_unavailable".into(),
        message: "数据库不可用".into(),
        details: Some(json!({ "reason": reason })),
    })
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz);
}
