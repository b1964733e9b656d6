use actix_web::{get, web, HttpResponse};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::models::CategoryRow;
use crate::db::schema::categories;
use crate::error::AppResult;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Category {
    pub id: i64,
    pub code: String,
    pub name: String,
}

/// Ticket categories (public).
#[utoipa::path(tag = "categories", responses((status = 200, body = Vec<Category>)))]
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
