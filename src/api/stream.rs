//! `GET /api/v1/stream`: live updates as Server-Sent Events (see `crate::live::stream`).

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractor::bearer_token;
use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::live::Scope;
use crate::state::AppState;

/// Live updates (Server-Sent Events, `text/event-stream`) of what the caller may see: `tickets`
/// `{"ids": [...]}` when tickets in the caller's scope (staff) or the caller's own tickets
/// (residents) change, `notice` when the caller has new in-app notices, `resync` when changes
/// may have been missed (reload), `expired` when the access token expires (the stream ends;
/// reconnect with a fresh token). Comment lines (`: ping`) are heartbeats. Send the token in
/// the `Authorization` header (read the stream with `fetch`, not `EventSource`), never in the
/// URL.
#[utoipa::path(tag = "stream", security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream",
        description = "An endless stream of events, as described above")))]
#[get("/stream")]
pub async fn stream(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    // The extractor checked the token; its expiry ends the stream.
    let exp = bearer_token(&req)
        .and_then(|t| state.jwt.verify(&t, now))
        .map(|c| c.exp)
        .ok_or(AppError::Unauthorized("invalid_token"))?;
    let ttl = std::time::Duration::from_secs(
        u64::try_from(exp.saturating_sub(now.timestamp())).unwrap_or(0),
    );
    let body = crate::live::stream::sse(&state.live, Scope::of(&user), &state.settings.stream, ttl);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache, no-store"))
        // Already encoded as far as the Compress middleware is concerned: gzip would hold the
        // small events back in its buffer.
        .insert_header((header::CONTENT_ENCODING, "identity"))
        // nginx: pass each event on at once (deploy/nginx turns buffering off here too).
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(stream);
}
