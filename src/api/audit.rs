//! The audit log of personal data: who revealed a phone, exported statistics or tickets, or
//! exported or erased a resident's data. Admins only.

use actix_web::{get, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::AdminOnly;
use crate::auth::AuthUser;
use crate::error::AppResult;
use crate::service::privacy::{self, AuditPage, AuditQuery};
use crate::state::AppState;

/// The audit log, newest first, a page at a time (admin).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditPage), AdminOnly)
)]
#[get("/admin/audit-log")]
pub async fn audit_log(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<AuditQuery>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let q = q.into_inner();
    let page = state.db.run(move |c| privacy::audit_page(c, &q)).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(audit_log);
}
