use actix_web::{get, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::service::users::{self, UserView};
use crate::state::AppState;

/// `GET /me`: the user and the number of unread in-app notifications.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    pub unread_notifications: i64,
}

/// The signed-in user, with role and org unit, and the unread notification count.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = MeView))
)]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let view = state
        .db
        .run(move |c| {
            let row = users::find(c, user.id)?.ok_or(AppError::NotFound)?;
            Ok(MeView {
                user: users::view(c, &row, true)?,
                unread_notifications: crate::notify::inbox::unread_count(c, row.id)?,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(me);
}
