//! Callbacks (回访): the queue of closures to call back, and recording each call. Street staff
//! make a street's callbacks unless the street gave them to its communities
//! (`org_units.callback_level`); admins see all.

use actix_web::{get, post, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::JsonBody;
use crate::auth::AuthUser;
use crate::error::{AppResult, ErrorBody};
use crate::service::callbacks::{self, CallbackList, CallbackView, ListQuery, RecordCall};
use crate::state::AppState;

/// My callback queue with its counts: pending ones by due time (or done / unreachable ones,
/// newest first).
#[utoipa::path(tag = "callbacks", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = CallbackList),
        (status = 403, description = "Not staff who make callbacks", body = ErrorBody)))]
#[get("/callbacks")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let page = state
        .db
        .run(move |c| callbacks::list(c, &user, &q, now))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Record one call: not reached (the third makes it unreachable), or the resident's verdict.
/// `unsatisfied`, or `pressed: true`, reopens the ticket at the level that closed it (one up if
/// that level already had a dispute).
#[utoipa::path(tag = "callbacks", security(("bearer" = [])), request_body = RecordCall,
    responses((status = 200, body = CallbackView),
        (status = 403, description = "Not staff who make callbacks", body = ErrorBody),
        (status = 404, description = "No such callback in my queue", body = ErrorBody),
        (status = 409, description = "`callback_finished`: already done or unreachable", body = ErrorBody),
        (status = 422, description = "Missing verdict or pressed", body = ErrorBody),
        JsonBody))]
#[post("/callbacks/{id}")]
pub async fn record(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<RecordCall>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = state.clock.now();
    let sla = state.sla.clone();
    let v = state
        .db
        .write(move |c| callbacks::record(c, &user, id, &body, &sla, now))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list).service(record);
}
