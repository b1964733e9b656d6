//! The in-app inbox, notification settings, the admin view of the outbox, unit robots.

use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::{AdminOnly, JsonBody};
use crate::auth::AuthUser;
use crate::db::round_ts;
use crate::domain::validate::{self, Lines};
use crate::error::{AppResult, ErrorBody};
use crate::notify::inbox::{self, InboxPage, NotificationSettings, OutboxPage, OutboxView};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InboxQuery {
    /// From `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<i64>,
}

/// My notifications: unread first, newest first.
#[utoipa::path(tag = "notifications", security(("bearer" = [])), params(InboxQuery),
    responses((status = 200, body = InboxPage)))]
#[get("/notifications")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<InboxQuery>,
) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let page = state
        .db
        .run(move |c| inbox::list(c, user.id, q.cursor.as_deref(), q.limit.unwrap_or(20)))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Mark one notification read.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 204), (status = 404, description = "Not one of my notifications", body = ErrorBody)))]
#[post("/notifications/{id}/read")]
pub async fn read_one(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = round_ts(state.clock.now());
    state
        .db
        .write(move |c| inbox::mark_read(c, user.id, id, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mark all my notifications read.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, description = "`{\"marked\": n}`")))]
#[post("/notifications/read-all")]
pub async fn read_all(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let now = round_ts(state.clock.now());
    let n = state
        .db
        .write(move |c| inbox::mark_all_read(c, user.id, now))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "marked": n })))
}

/// My notification channels.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = NotificationSettings)))]
#[get("/me/notification-settings")]
pub async fn get_settings(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let s = state
        .db
        .run(move |c| inbox::get_settings(c, user.id))
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

/// Choose my notification channels (residents: SMS and/or in-app only).
#[utoipa::path(tag = "notifications", security(("bearer" = [])), request_body = NotificationSettings,
    responses((status = 200, body = NotificationSettings), JsonBody))]
#[put("/me/notification-settings")]
pub async fn put_settings(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<NotificationSettings>,
) -> AppResult<HttpResponse> {
    let now = round_ts(state.clock.now());
    let body = body.into_inner();
    let s = state
        .db
        .write(move |c| inbox::put_settings(c, user.id, &body, now))
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OutboxQuery {
    /// pending | sending | sent | dead
    pub status: Option<String>,
    pub cursor: Option<i64>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

/// The outbox (SMS, email, robot deliveries), newest first (admin).
#[utoipa::path(tag = "notifications", security(("bearer" = [])), params(OutboxQuery),
    responses((status = 200, body = OutboxPage), AdminOnly))]
#[get("/admin/notifications")]
pub async fn admin_list(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<OutboxQuery>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let q = q.into_inner();
    let page = state
        .db
        .run(move |c| inbox::admin_list(c, q.status.as_deref(), q.cursor, q.limit.unwrap_or(50)))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Retry a dead notification now (admin).
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = OutboxView), AdminOnly,
        (status = 409, description = "Only a dead notification can be retried", body = ErrorBody)))]
#[post("/admin/notifications/{id}/retry")]
pub async fn admin_retry(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let id = path.into_inner();
    let now = round_ts(state.clock.now());
    let v = state.db.write(move |c| inbox::retry(c, id, now)).await?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// The WeCom group robot URL, `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`.
    pub url: String,
}

/// Set the WeCom group robot of a unit (admin).
#[utoipa::path(tag = "notifications", security(("bearer" = [])), request_body = WebhookBody,
    responses((status = 204), AdminOnly, JsonBody, (status = 404, description = "No such unit", body = ErrorBody)))]
#[put("/org/units/{id}/webhook")]
pub async fn put_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<WebhookBody>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let id = path.into_inner();
    let now = round_ts(state.clock.now());
    let url = validate::clean("url", &body.into_inner().url, Lines::One)?;
    state
        .db
        .write(move |c| inbox::set_webhook(c, id, Some(url.trim()), now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove the WeCom group robot of a unit (admin).
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 204), AdminOnly, (status = 404, description = "No such unit", body = ErrorBody)))]
#[delete("/org/units/{id}/webhook")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let id = path.into_inner();
    let now = round_ts(state.clock.now());
    state
        .db
        .write(move |c| inbox::set_webhook(c, id, None, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(read_all)
        .service(read_one)
        .service(get_settings)
        .service(put_settings)
        .service(admin_list)
        .service(admin_retry)
        .service(put_webhook)
        .service(delete_webhook);
}
