use actix_web::{get, patch, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::{AdminOnly, DbBusy, JsonBody};
use crate::auth::AuthUser;
use crate::domain::org::OrgKind;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::service::org::{self, OrgNode, OrgUnit};
use crate::service::users::{self, Colleague};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TreeQuery {
    /// Include archived units (admins).
    #[serde(default)]
    pub include_archived: bool,
}

/// The org tree: streets → communities → compounds → buildings. Public: the resident form needs it.
#[utoipa::path(tag = "org", params(TreeQuery), responses((status = 200, body = Vec<OrgNode>), DbBusy))]
#[get("/org/tree")]
pub async fn tree(state: web::Data<AppState>, q: web::Query<TreeQuery>) -> AppResult<HttpResponse> {
    let include = q.include_archived;
    let nodes = state.db.run(move |c| org::tree(c, include)).await?;
    Ok(HttpResponse::Ok().json(nodes))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUnit {
    pub name: String,
    /// The unit above (not for streets): street for a community, community for a compound,
    /// compound for a building.
    pub parent_id: Option<i64>,
    /// Streets only: 2–8 letters/digits, used in ticket references.
    pub code: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUnit {
    pub name: Option<String>,
    /// `true` archives the unit (it disappears from the public tree), `false` restores it.
    pub archived: Option<bool>,
    /// Streets only: `street` or `community` makes the street's callbacks (回访).
    pub callback_level: Option<crate::domain::callback::CallbackLevel>,
}

fn kind_from_path(plural: &str) -> AppResult<OrgKind> {
    match plural {
        "streets" => Ok(OrgKind::Street),
        "communities" => Ok(OrgKind::Community),
        "compounds" => Ok(OrgKind::Compound),
        "buildings" => Ok(OrgKind::Building),
        _ => Err(AppError::NotFound),
    }
}

/// Create a street, community, compound or building (admin).
#[utoipa::path(
    tag = "org",
    security(("bearer" = [])),
    params(("kind" = String, Path, description = "streets | communities | compounds | buildings")),
    request_body = CreateUnit,
    responses(
        (status = 201, body = OrgUnit),
        AdminOnly,
        JsonBody,
        (status = 404, description = "Unknown kind", body = ErrorBody),
        (status = 409, description = "Street code already used", body = ErrorBody),
    )
)]
#[post("/org/{kind}")]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    kind: web::Path<String>,
    body: web::Json<CreateUnit>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let kind = kind_from_path(&kind)?;
    let now = crate::db::round_ts(state.clock.now());
    let row = state
        .db
        .write(move |c| {
            org::create(
                c,
                kind,
                body.parent_id,
                &body.name,
                body.code.as_deref(),
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(OrgUnit::from(&row)))
}

/// Rename, archive or restore a unit (admin).
#[utoipa::path(
    tag = "org",
    security(("bearer" = [])),
    params(
        ("kind" = String, Path, description = "streets | communities | compounds | buildings"),
        ("id" = i64, Path),
    ),
    request_body = UpdateUnit,
    responses((status = 200, body = OrgUnit), AdminOnly, JsonBody)
)]
#[patch("/org/{kind}/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, i64)>,
    body: web::Json<UpdateUnit>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let (kind, id) = path.into_inner();
    let kind = kind_from_path(&kind)?;
    let now = crate::db::round_ts(state.clock.now());
    let row = state
        .db
        .write(move |c| {
            org::update(
                c,
                kind,
                id,
                body.name.as_deref(),
                body.archived,
                body.callback_level,
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(OrgUnit::from(&row)))
}

/// The active staff of a unit, for the assign dialog: only id and name, no phones. Staff may
/// list only their own unit; admins any unit.
#[utoipa::path(
    tag = "org",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The unit (the caller's own, for staff)")),
    responses(
        (status = 200, body = Vec<Colleague>),
        (status = 403, description = "Residents, and staff asking about another unit", body = ErrorBody),
        (status = 404, description = "No such unit (admins)", body = ErrorBody),
    )
)]
#[get("/org/units/{id}/staff")]
pub async fn unit_staff(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let allowed =
        user.role == Role::Admin || (user.role.is_staff() && user.org_unit_id == Some(id));
    if !allowed {
        return Err(AppError::Forbidden);
    }
    let staff = state
        .db
        .run(move |c| {
            org::find(c, id)?.ok_or(AppError::NotFound)?;
            users::unit_staff(c, id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(staff))
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(tree)
        .service(create)
        .service(update)
        .service(unit_staff);
}
