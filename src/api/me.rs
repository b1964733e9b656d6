use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::JsonBody;
use crate::auth::AuthUser;
use crate::domain::privacy::AuditAction;
use crate::domain::role::Role;
use crate::domain::validate::Phone;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::service::auth::{self as auth_svc, OtpCheck};
use crate::service::privacy::{self, Actor, Erased, PersonalData};
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

/// Download everything the service keeps about me (个人信息副本): the account, my tickets with
/// their timelines and photos, my notifications. Recorded in the audit log.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "A JSON file (`Content-Disposition: attachment`)", body = PersonalData))
)]
#[get("/me/export")]
pub async fn export(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let auto_close = state.sla.auto_close_after;
    let data = state
        .db
        .write(move |c| privacy::export(c, &user, now, auto_close))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"huying-my-data.json\"",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .json(data))
}

/// Confirms an erasure with a fresh sign-in code sent to the account's phone (`POST /auth/otp`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    pub code: String,
}

enum EraseOutcome {
    Done(Erased),
    WrongCode,
    Locked,
}

/// Erase my personal data (注销并删除个人信息), residents only. First ask for a code
/// (`POST /auth/otp` with my phone), then send it here. My name, phone and email are replaced
/// by a pseudonym on the account and in everything stored about my tickets; the account is
/// closed and signed out everywhere. The tickets themselves stay (without my identity), so the
/// street's statistics do not change. Cannot be undone.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    request_body = EraseRequest,
    responses(
        (status = 200, body = Erased),
        (status = 403, description = "Staff and admin accounts are not erased this way", body = ErrorBody),
        (status = 422, description = "`invalid_code`: wrong or expired code, or a body error", body = ErrorBody),
        (status = 429, description = "`otp_locked`: too many wrong codes; ask for a new one", body = ErrorBody),
        JsonBody,
    )
)]
#[post("/me/erase")]
pub async fn erase(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<EraseRequest>,
) -> AppResult<HttpResponse> {
    if user.role != Role::Resident {
        return Err(AppError::Forbidden);
    }
    let code = body.into_inner().code;
    let key = state.jwt.derive("otp");
    let cfg = state.settings.auth.clone();
    let now = crate::db::round_ts(state.clock.now());
    let outcome = state
        .db
        .write(move |c| {
            let phone = users::find(c, user.id)?
                .and_then(|r| r.phone)
                .ok_or(AppError::Forbidden)?;
            let phone = Phone::parse(&phone).map_err(|_| AppError::Forbidden)?;
            // A wrong code is committed (the attempt counts), so it is an outcome, not an error.
            Ok(
                match auth_svc::verify_otp(c, &phone, &code, &key, &cfg, now)? {
                    OtpCheck::Ok(u) if u.id == user.id => EraseOutcome::Done(privacy::erase(
                        c,
                        user.id,
                        Actor::from(&user),
                        AuditAction::Erasure,
                        now,
                    )?),
                    OtpCheck::Ok(_) | OtpCheck::Wrong => EraseOutcome::WrongCode,
                    OtpCheck::Locked => EraseOutcome::Locked,
                },
            )
        })
        .await?;
    match outcome {
        EraseOutcome::Done(e) => Ok(HttpResponse::Ok().json(e)),
        EraseOutcome::WrongCode => {
            Err(AppError::validation("invalid_code", "验证码不正确或已过期"))
        }
        EraseOutcome::Locked => Err(AppError::TooManyRequests {
            code: "otp_locked",
            message: "验证码错误次数过多，请重新获取验证码".into(),
            retry_after: None,
        }),
    }
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(me).service(export).service(erase);
}
