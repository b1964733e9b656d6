//! Photos on a ticket: decoded in full and re-encoded (JPEG/PNG/WebP in, JPEG or PNG out, EXIF
//! and GPS gone), ≤ 5 MB each, ≤ 9 per ticket, stored under the data directory with random names,
//! served with the ticket's access rules.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use actix_multipart::Multipart;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use futures_util::TryStreamExt;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::AuthUser;
use crate::db::models::AttachmentRow;
use crate::db::schema::ticket_attachments;
use crate::domain::ticket::{Relation, Status};
use crate::domain::validate::{self, Lines};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::service::tickets as svc;
use crate::state::AppState;

pub const MAX_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_PER_TICKET: i64 = 9;
/// Widest or tallest picture decoded: a 48-megapixel phone photo is 8000 × 6000.
pub const MAX_DIMENSION: u32 = 8192;
/// Most memory one decode may take. A small file can claim a huge picture (a decompression
/// bomb): the decoder refuses before allocating past this.
pub const MAX_DECODE_BYTES: u64 = 160 * 1024 * 1024;
/// Longest side kept: enough to read a meter or a crack, and the file stays small.
pub const MAX_STORED_SIDE: u32 = 2560;
const JPEG_QUALITY: u8 = 85;

/// Two decodes at a time (the machines have a few cores), so concurrent uploads cannot stack up
/// `MAX_DECODE_BYTES` each.
static DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

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

/// The image type by its first bytes; names and declared types are not trusted. Only a guess:
/// `reencode` decides.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(ImageFormat::Png)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

/// A photo as it is stored: re-encoded from its decoded pixels.
#[derive(Debug)]
pub struct Photo {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub ext: &'static str,
}

fn not_an_image() -> AppError {
    AppError::validation("unsupported_file_type", "仅支持 JPEG、PNG、WebP 图片")
}

/// Decodes the whole picture within bounded memory and encodes it afresh: PNG stays PNG
/// (screenshots, transparency), JPEG and WebP become JPEG. Only pixels survive, so metadata
/// (EXIF with its GPS position, comments, anything appended after the image) is gone, and a
/// file that is not entirely a valid picture is refused. The EXIF orientation is applied to the
/// pixels first, so a phone photo stays upright without its EXIF.
pub fn reencode(bytes: &[u8]) -> AppResult<Photo> {
    let format = sniff(bytes).ok_or_else(not_an_image)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits.clone());
    let refused = |e: image::ImageError| {
        tracing::debug!(error = %e, "upload refused: not a decodable image");
        not_an_image()
    };
    let mut decoder = reader.into_decoder().map_err(refused)?;
    limits.reserve(decoder.total_bytes()).map_err(refused)?;
    let orientation = decoder.orientation().map_err(refused)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(refused)?;
    img.apply_orientation(orientation);
    if img.width().max(img.height()) > MAX_STORED_SIDE {
        img = img.resize(
            MAX_STORED_SIDE,
            MAX_STORED_SIDE,
            image::imageops::FilterType::Triangle,
        );
    }
    let mut out = Vec::new();
    let encoded = if format == ImageFormat::Png {
        img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
            .map(|()| ("image/png", "png"))
    } else {
        // JPEG has no alpha channel; a transparent WebP goes onto black, as browsers show it.
        DynamicImage::ImageRgb8(img.to_rgb8())
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut out,
                JPEG_QUALITY,
            ))
            .map(|()| ("image/jpeg", "jpg"))
    };
    let (content_type, ext) =
        encoded.map_err(|e| AppError::Internal(anyhow::anyhow!("encoding a photo: {e}")))?;
    Ok(Photo {
        bytes: out,
        content_type,
        ext,
    })
}

/// A file under a temporary name, removed when dropped unless `persist` moved it into place:
/// an upload that fails, is refused or is cancelled halfway (the client went away) leaves
/// nothing behind.
struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    async fn write(dir: &Path, bytes: &[u8]) -> AppResult<TempFile> {
        let path = dir.join(format!(".upload-{}.tmp", uuid::Uuid::new_v4().simple()));
        let file = TempFile {
            path: Some(path.clone()),
        };
        let write = async {
            let mut f = tokio::fs::File::create(&path).await?;
            tokio::io::AsyncWriteExt::write_all(&mut f, bytes).await?;
            f.sync_all().await
        };
        write
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("writing attachment: {e}")))?;
        Ok(file)
    }

    async fn persist(mut self, to: &Path) -> std::io::Result<()> {
        if let Some(from) = self.path.take() {
            if let Err(e) = tokio::fs::rename(&from, to).await {
                let _ = std::fs::remove_file(&from);
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn multipart_error(e: actix_multipart::MultipartError) -> AppError {
    use actix_multipart::MultipartError as M;
    match e {
        M::ContentTypeMissing | M::ContentTypeParse | M::ContentTypeIncompatible => {
            AppError::UnsupportedMediaType("请以 multipart/form-data 上传图片".into())
        }
        e => AppError::validation("invalid_multipart", format!("上传数据格式不正确：{e}")),
    }
}

/// Upload one photo (multipart/form-data, field `file`). The resident who called may add photos
/// until the ticket is finished; staff of the accountable level too.
#[utoipa::path(
    tag = "tickets",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body(content_type = "multipart/form-data", description = "One field, `file`: a JPEG, PNG or WebP image ≤ 5 MB. It is decoded and stored re-encoded (JPEG, or PNG for a PNG), without its metadata."),
    responses(
        (status = 201, body = AttachmentView),
        (status = 403, description = "The caller may only read this ticket", body = ErrorBody),
        (status = 404, description = "Missing or not visible to the caller", body = ErrorBody),
        (status = 409, description = "Already 9 photos, or the ticket is finished", body = ErrorBody),
        (status = 413, description = "Photo over 5 MB", body = ErrorBody),
        (status = 429, description = "Over `limits.uploads_per_ticket_per_hour` upload attempts on this ticket (`Retry-After`)", body = ErrorBody),
        (status = 422, description = "Not multipart, a field other than one `file`, or not a decodable JPEG, PNG or WebP image within 8192 × 8192", body = ErrorBody),
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
    // A photo count is part of the ticket's views (kept queue pages, open screens).
    let scope = crate::live::TicketScope::of(&ticket);
    let status = ticket.status;
    let may = match relation {
        Relation::Owner => matches!(
            status,
            Status::Open | Status::Acknowledged | Status::Resolved | Status::DeclineReview
        ),
        Relation::Accountable => !matches!(status, Status::Closed | Status::Withdrawn),
        _ => false,
    };
    if !may {
        return Err(if relation.is_reader() {
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
        // Refused before its body is read: answering now leaves the rest of the request
        // unread, and the connection is closed rather than drained.
        if field.name() != Some("file") || data.is_some() {
            return Err(AppError::validation(
                "unexpected_field",
                "只接受一个 file 字段",
            ));
        }
        let name = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(|n| validate::clean("filename", n, Lines::One))
            .transpose()?
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
    let photo = {
        let _permit = DECODES
            .acquire()
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("decode permits: {e}")))?;
        web::block(move || reencode(&bytes))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("decoding a photo: {e}")))??
    };
    let dir = state.settings.data.dir.join("attachments");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    let temp = TempFile::write(&dir, &photo.bytes).await?;
    let storage_name = format!("{}.{}", uuid::Uuid::new_v4().simple(), photo.ext);
    let now = state.clock.now().naive_utc();
    let size = photo.bytes.len() as i64;
    let content_type = photo.content_type;
    let uploader = user.id;
    let stored = storage_name.clone();
    let row = state
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
            crate::live::scope_changed(scope);
            Ok(ticket_attachments::table
                .find(aid)
                .select(AttachmentRow::as_select())
                .first(c)?)
        })
        .await?;
    // Into place only once its row is committed; a row whose file could not follow goes too.
    if let Err(e) = temp.persist(&dir.join(&storage_name)).await {
        let aid = row.id;
        let _ = state
            .db
            .write(move |c| {
                diesel::delete(ticket_attachments::table.find(aid)).execute(c)?;
                crate::live::scope_changed(scope);
                Ok(())
            })
            .await;
        return Err(AppError::Internal(anyhow::anyhow!(
            "moving attachment into place: {e}"
        )));
    }
    Ok(HttpResponse::Created().json(to_view(&row)))
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
