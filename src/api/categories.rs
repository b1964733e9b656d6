use actix_web::{get, patch, post, web, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::{AdminOnly, DbBusy, JsonBody};
use crate::auth::AuthUser;
use crate::db::models::CategoryRow;
use crate::db::schema::categories;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Category {
    pub id: i64,
    pub code: String,
    pub name: String,
}

/// Ticket categories (public).
#[utoipa::path(tag = "categories", responses((status = 200, body = Vec<Category>), DbBusy))]
#[get("/categories")]
pub async fn list(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let rows: Vec<CategoryRow> = state
        .db
        .run(|c| {
            Ok(categories::table
                .filter(categories::archived_at.is_null())
                .order((categories::sort_order.asc(), categories::id.asc()))
                .select(CategoryRow::as_select())
                .load(c)?)
        })
        .await?;
    let out: Vec<Category> = rows
        .into_iter()
        .map(|r| Category {
            id: r.id,
            code: r.code,
            name: r.name,
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    /// Stable machine code: 2–40 of a–z, 0–9, `_`.
    pub code: String,
    pub name: String,
    pub sort_order: Option<i32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCategory {
    pub name: Option<String>,
    pub sort_order: Option<i32>,
    /// `true` hides the category from new tickets; existing tickets keep it.
    pub archived: Option<bool>,
}

fn to_view(r: CategoryRow) -> Category {
    Category {
        id: r.id,
        code: r.code,
        name: r.name,
    }
}

/// Add a category (admin).
#[utoipa::path(
    tag = "categories",
    security(("bearer" = [])),
    request_body = CreateCategory,
    responses(
        (status = 201, body = Category),
        AdminOnly,
        JsonBody,
        (status = 409, description = "Code already used", body = ErrorBody),
    )
)]
#[post("/categories")]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateCategory>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let code = body.code.trim().to_lowercase();
    if !(2..=40).contains(&code.len())
        || !code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(AppError::validation(
            "invalid_code",
            "类别代码须为 2–40 位小写字母、数字或下划线",
        ));
    }
    let name = validate::text("name", &body.name, 20)?;
    let sort = body.sort_order.unwrap_or(50);
    let now = state.clock.now().naive_utc();
    let row = state
        .db
        .write(move |c| {
            let taken: i64 = categories::table
                .filter(categories::code.eq(&code))
                .count()
                .get_result(c)?;
            if taken > 0 {
                return Err(AppError::conflict("duplicate_code", "该类别代码已存在"));
            }
            let id: i64 = diesel::insert_into(categories::table)
                .values((
                    categories::code.eq(&code),
                    categories::name.eq(&name),
                    categories::sort_order.eq(sort),
                    categories::created_at.eq(now),
                ))
                .returning(categories::id)
                .get_result(c)?;
            Ok(categories::table
                .find(id)
                .select(CategoryRow::as_select())
                .first(c)?)
        })
        .await?;
    Ok(HttpResponse::Created().json(to_view(row)))
}

/// Rename, reorder or archive a category (admin).
#[utoipa::path(
    tag = "categories",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = UpdateCategory,
    responses((status = 200, body = Category), AdminOnly, JsonBody)
)]
#[patch("/categories/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<UpdateCategory>,
) -> AppResult<HttpResponse> {
    user.require_admin()?;
    let id = id.into_inner();
    let name = body
        .name
        .as_deref()
        .map(|n| validate::text("name", n, 20))
        .transpose()?;
    let (sort, archived) = (body.sort_order, body.archived);
    let now = state.clock.now().naive_utc();
    let row = state
        .db
        .write(move |c| {
            let row: CategoryRow = categories::table
                .find(id)
                .select(CategoryRow::as_select())
                .first(c)?;
            if let Some(n) = name {
                diesel::update(categories::table.find(id))
                    .set(categories::name.eq(n))
                    .execute(c)?;
            }
            if let Some(o) = sort {
                diesel::update(categories::table.find(id))
                    .set(categories::sort_order.eq(o))
                    .execute(c)?;
            }
            if let Some(a) = archived {
                let value = if a {
                    Some(row.archived_at.unwrap_or(now))
                } else {
                    None
                };
                diesel::update(categories::table.find(id))
                    .set(categories::archived_at.eq(value))
                    .execute(c)?;
            }
            Ok(categories::table
                .find(id)
                .select(CategoryRow::as_select())
                .first(c)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(to_view(row)))
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list).service(create).service(update);
}
