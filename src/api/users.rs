use actix_web::{get, patch, post, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::{AdminOnly, JsonBody};
use crate::auth::AuthUser;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::service::users::{self, CreateUser, ListUsers, UpdateUser, UserView};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// Create an account (admin).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, body = UserView),
        AdminOnly,
        JsonBody,
        (status = 409, description = "Username or resident phone already used", body = ErrorBody),
        (status = 503, description = "No database connection, or `busy`: every password-hashing thread and queue slot is taken (`Retry-After`)", body = ErrorBody),
    )
)]
#[post("/users")]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateUser>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let now = crate::db::round_ts(state.clock.now());
    let hash = match body.role {
        crate::domain::role::Role::Resident => None,
        _ => users::hash_new_password(&state.hasher, body.password.as_deref()).await?,
    };
    let view = state
        .db
        .write(move |c| {
            let row = users::create_hashed(c, &body, hash.as_deref(), now)?;
            users::view(c, &row, true)
        })
        .await?;
    tracing::info!(admin = user.id, created = view.id, role = ?view.role, "user created");
    Ok(HttpResponse::Created().json(view))
}

/// List accounts (admin).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(ListUsers),
    responses((status = 200, body = UserPage), AdminOnly)
)]
#[get("/users")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<ListUsers>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let filter = q.into_inner();
    let page = state
        .db
        .run(move |c| {
            let (rows, next) = users::list(c, &filter)?;
            let items = rows
                .iter()
                .map(|r| users::view(c, r, true))
                .collect::<AppResult<Vec<_>>>()?;
            Ok(UserPage {
                items,
                next_cursor: next,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One account (admin).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = UserView), AdminOnly)
)]
#[get("/users/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let id = id.into_inner();
    let view = state
        .db
        .run(move |c| {
            let row = users::find(c, id)?.ok_or(AppError::NotFound)?;
            users::view(c, &row, true)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Change an account; `disabled: true` stops its tokens at once (admin).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = UpdateUser,
    responses(
        (status = 200, body = UserView),
        AdminOnly,
        JsonBody,
        (status = 409, description = "Resident phone already used", body = ErrorBody),
        (status = 503, description = "No database connection, or `busy`: every password-hashing thread and queue slot is taken (`Retry-After`)", body = ErrorBody),
    )
)]
#[patch("/users/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<UpdateUser>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let id = id.into_inner();
    if id == user.id && body.disabled == Some(true) {
        return Err(AppError::validation(
            "cannot_disable_self",
            "不能停用自己的账号",
        ));
    }
    let now = crate::db::round_ts(state.clock.now());
    let hash = users::hash_new_password(&state.hasher, body.password.as_deref()).await?;
    let view = state
        .db
        .write(move |c| {
            let row = users::update_hashed(c, id, &body, hash.as_deref(), now)?;
            users::view(c, &row, true)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Lift a lockout caused by wrong passwords, and forget the earlier lockouts (admin).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = UserView), AdminOnly)
)]
#[post("/users/{id}/unlock")]
pub async fn unlock(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let id = id.into_inner();
    let view = state
        .db
        .write(move |c| {
            users::find(c, id)?.ok_or(AppError::NotFound)?;
            crate::service::auth::clear_lockout(c, id)?;
            let row = users::find(c, id)?.ok_or(AppError::NotFound)?;
            users::view(c, &row, true)
        })
        .await?;
    tracing::info!(admin = user.id, unlocked = id, "account unlocked");
    Ok(HttpResponse::Ok().json(view))
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(get_one)
        .service(update)
        .service(unlock);
}
