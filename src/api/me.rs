use actix_web::{get, web, HttpResponse};

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::service::users::{self, UserView};
use crate::state::AppState;

/// The signed-in user, with role and org unit.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody))
)]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let view = state
        .db
        .run(move |c| {
            let row = users::find(c, user.id)?.ok_or(AppError::NotFound)?;
            users::view(c, &row, true)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
