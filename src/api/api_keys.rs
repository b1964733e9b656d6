//! Keys of partner systems that post through Open311 (docs/open311.md). Admins only.

use actix_web::{delete, get, post, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::{AdminOnly, JsonBody};
use crate::auth::AuthUser;
use crate::error::{AppResult, ErrorBody};
use crate::service::api_keys::{self as svc, ApiKeyView, IssueApiKey, IssuedApiKey};
use crate::service::privacy::Actor;
use crate::state::AppState;

/// Issue a key to a partner system (admin). The key is in this answer only; keep it.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = IssueApiKey,
    responses((status = 201, body = IssuedApiKey), AdminOnly, JsonBody)
)]
#[post("/admin/api-keys")]
pub async fn issue(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<IssueApiKey>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let input = body.into_inner();
    svc::check_issue(&input)?;
    let now = crate::db::round_ts(state.clock.now());
    let by = Actor::from(&user);
    let issued = state
        .db
        .write(move |c| svc::issue(c, by, &input, now))
        .await?;
    Ok(HttpResponse::Created().json(issued))
}

/// Every partner key, newest first, without the keys themselves (admin).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiKeyView>), AdminOnly)
)]
#[get("/admin/api-keys")]
pub async fn list(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let keys = state.db.run(svc::list).await?;
    Ok(HttpResponse::Ok().json(keys))
}

/// Revoke a key (admin): every request with it answers 403 from now on.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = ApiKeyView),
        AdminOnly,
        (status = 404, description = "No such key", body = ErrorBody),
    )
)]
#[delete("/admin/api-keys/{id}")]
pub async fn revoke(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let id = id.into_inner();
    let now = crate::db::round_ts(state.clock.now());
    let by = Actor::from(&user);
    let view = state.db.write(move |c| svc::revoke(c, by, id, now)).await?;
    state.partner_limits.forget(id);
    Ok(HttpResponse::Ok().json(view))
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(issue).service(list).service(revoke);
}
