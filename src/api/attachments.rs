//! Photos on a ticket: checked by content (JPEG/PNG/WebP), ≤ 5 MB each, ≤ 9 per ticket,
//! stored under the data directory with random names, served with the ticket's access rules.

use actix_multipart::Multipart;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use futures_util::TryStreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::AuthUser;
use crate::db::models::AttachmentRow;
use crate::db::schema::ticket_attachments;
use crate::domain::ticket::{Relation, Status};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::service::tickets as svc;
use crate::state::AppState;

pub const MAX_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_PER_TICKET: i64 = 9;

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: i64,
    pub content_type: String,
    pub size_bytes: i64,
    pub original_name: Option<String>,
    /// Where to GET the file (same access rules as the ticket).
    pub url: String,
    pub created_at: DateTime<Utc>,
}

fn to_view(a: &AttachmentRow) -> AttachmentView {
    AttachmentView {
        id: a.id,
        content_type: a.content_type.clone(),
        size_bytes: a.size_bytes,
        original_name: a.original_name.clone(),
        url: format!("/api/v1/tickets/{}/attachments/{}", a.ticket_id, a.id),
        created_at: a.created_at.and_utc(),
    }
}

/// The image type by its first bytes; names and declared types are not trusted.
pub fn sniff(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("image/jpeg", "jpg"))
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(("image/png", "png"))
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(("image/webp", "webp"))
    } else {
        None
    }
}

fn multipart_error(e: actix_multipart::MultipartError) -> AppError {
    AppError::validation("invalid_multipart", format!("上传数据格式不正确：{e}"))
}

/// Upload one photo (multipart/form-data, field `file`). The resident who called may add photos
/// until the ticket is finished; staff of the accountable level too.
#[utoipa::path(
    tag = "tickets",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body(content_type = "multipart/form-data", description = "Field `file`: a JPEG, PNG or WebP image ≤ 5 MB"),
    responses(
        (status = 201, body = AttachmentView),
        (status = 403, description = "The caller may only read this ticket", body = ErrorBody),
        (status = 404, description = "Missing or not visible to the caller", body = ErrorBody),
        (status = 409, description = "Already 9 photos, or the ticket is finished", body = ErrorBody),
        (status = 413, description = "Photo over 5 MB", body = ErrorBody),
        (status = 429, description = "Over `limits.uploads_per_ticket_per_hour` upload attempts on this ticket (`Retry-After`)", body = ErrorBody),
        (status = 422, description = "Not multipart, no `file` field, or not a JPEG, PNG or WebP image", body = ErrorBody),
    )
)]
#[post("/tickets/{id}/attachments")]
pub async fn upload(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    mut payload: Multipart,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let u = user.clone();
    let (ticket, relation) = state.db.run(move |c| svc::load_visible(c, &u, id)).await?;
    let status = ticket.status;
    let may = match relation {
        Relation::Owner => matches!(
            status,
            Status::Open | Status::Acknowledged | Status::Resolved
        ),
        Relation::Accountable => !matches!(status, Status::Closed | Status::Withdrawn),
        _ => false,
    };
    if !may {
        return Err(if relation == Relation::Reader {
            AppError::Forbidden
        } else {
            AppError::conflict("action_not_allowed", "工单当前状态不允许上传图片")
        });
    }
    // Counted before the body is read: refused uploads cost bandwidth and decoding too.
    let per_hour = state.settings.limits.uploads_per_ticket_per_hour;
    let at = crate::db::round_ts(state.clock.now());
    state
        .db
        .write(move |c| crate::service::limits::record_upload(c, id, per_hour, at))
        .await?;
    let mut data: Option<(Vec<u8>, Option<String>)> = None;
    while let Some(mut field) = payload.try_next().await.map_err(multipart_error)? {
        if field.name() != Some("file") || data.is_some() {
            // Drain fields we do not use.
            while field.try_next().await.map_err(multipart_error)?.is_some() {}
            continue;
        }
        let name = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(|n| n.chars().take(100).collect::<String>());
        let mut buf = Vec::new();
        while let Some(chunk) = field.try_next().await.map_err(multipart_error)? {
            if buf.len() + chunk.len() > MAX_BYTES {
                return Err(AppError::PayloadTooLarge("图片不能超过 5 MB".into()));
            }
            buf.extend_from_slice(&chunk);
        }
        data = Some((buf, name));
    }
    let (bytes, original_name) =
        data.ok_or_else(|| AppError::validation("missing_field", "请以 file 字段上传图片"))?;
    let (content_type, ext) = sniff(&bytes).ok_or_else(|| {
        AppError::validation("unsupported_file_type", "仅支持 JPEG、PNG、WebP 图片")
    })?;
    let dir = state.settings.data.dir.join("attachments");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    let storage_name = format!("{}.{ext}", uuid::Uuid::new_v4().simple());
    let path = dir.join(&storage_name);
    tokio::fs::write(&path, &bytes)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("writing attachment: {e}")))?;
    let now = state.clock.now().naive_utc();
    let size = bytes.len() as i64;
    let uploader = user.id;
    let stored = storage_name.clone();
    let result = state
        .db
        .write(move |c| {
            let count: i64 = ticket_attachments::table
                .filter(ticket_attachments::ticket_id.eq(id))
                .count()
                .get_result(c)?;
            if count >= MAX_PER_TICKET {
                return Err(AppError::conflict(
                    "too_many_attachments",
                    "每个工单最多 9 张图片",
                ));
            }
            let aid: i64 = diesel::insert_into(ticket_attachments::table)
                .values((
                    ticket_attachments::ticket_id.eq(id),
                    ticket_attachments::uploader_id.eq(uploader),
                    ticket_attachments::storage_name.eq(&stored),
                    ticket_attachments::original_name.eq(original_name),
                    ticket_attachments::content_type.eq(content_type),
                    ticket_attachments::size_bytes.eq(size),
                    ticket_attachments::created_at.eq(now),
                ))
                .returning(ticket_attachments::id)
                .get_result(c)?;
            Ok(ticket_attachments::table
                .find(aid)
                .select(AttachmentRow::as_select())
                .first(c)?)
        })
        .await;
    match result {
        Ok(row) => Ok(HttpResponse::Created().json(to_view(&row))),
        Err(e) => {
            // Nothing half-stored: the file goes if its row did not make it.
            let _ = tokio::fs::remove_file(&path).await;
            Err(e)
        }
    }
}

/// The photos of a ticket.
#[utoipa::path(
    tag = "tickets",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<AttachmentView>))
)]
#[get("/tickets/{id}/attachments")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let rows = state
        .db
        .run(move |c| {
            svc::load_visible(c, &user, id)?;
            Ok(ticket_attachments::table
                .filter(ticket_attachments::ticket_id.eq(id))
                .order(ticket_attachments::id.asc())
                .select(AttachmentRow::as_select())
                .load(c)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(to_view).collect::<Vec<_>>()))
}

/// One photo's bytes.
#[utoipa::path(
    tag = "tickets",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("attachment_id" = i64, Path)),
    responses((status = 200, description = "The image", content_type = "image/*"))
)]
#[get("/tickets/{id}/attachments/{attachment_id}")]
pub async fn download(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(i64, i64)>,
) -> AppResult<HttpResponse> {
    let (id, aid) = path.into_inner();
    let row = state
        .db
        .run(move |c| {
            svc::load_visible(c, &user, id)?;
            Ok(ticket_attachments::table
                .filter(ticket_attachments::id.eq(aid))
                .filter(ticket_attachments::ticket_id.eq(id))
                .select(AttachmentRow::as_select())
                .first(c)
                .optional()?)
        })
        .await?
        .ok_or(AppError::NotFound)?;
    let file = state
        .settings
        .data
        .dir
        .join("attachments")
        .join(&row.storage_name);
    let bytes = tokio::fs::read(&file).await.map_err(|e| {
        AppError::Internal(anyhow::anyhow!(
            "attachment {} missing on disk: {e}",
            row.id
        ))
    })?;
    Ok(HttpResponse::Ok()
        .content_type(row.content_type)
        .insert_header(("Cache-Control", "private, max-age=3600"))
        .insert_header(("Content-Disposition", "inline"))
        .body(bytes))
}

/// Mounted by `tickets::configure`, ahead of the ticket action route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(upload).service(list).service(download);
}
