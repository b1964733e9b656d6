use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::{DbBusy, JsonBody};
use crate::auth::tokens::random_token;
use crate::db::models::UserRow;
use crate::domain::validate::{self, Lines, Phone};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::service::auth::{self as svc, OtpCheck, RefreshOutcome};
use crate::service::users::{self, UserView};
use crate::sms::{SmsError, SmsMessage};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpRequest {
    /// 11-digit mainland mobile number.
    pub phone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtpSent {
    /// Seconds the code stays valid.
    pub expires_in: i64,
    /// Seconds before another code may be requested.
    pub resend_after: i64,
}

/// Send a 6-digit sign-in code to a resident's phone.
#[utoipa::path(
    tag = "auth",
    request_body = OtpRequest,
    responses(
        (status = 200, body = OtpSent),
        JsonBody,
        DbBusy,
        (status = 422, description = "Bad phone number, or a malformed body", body = ErrorBody),
        (status = 429, description = "Asked again within the resend interval", body = ErrorBody),
        (status = 502, description = "SMS gateway failed", body = ErrorBody),
    )
)]
#[post("/auth/otp")]
pub async fn request_otp(
    state: web::Data<AppState>,
    body: web::Json<OtpRequest>,
) -> AppResult<HttpResponse> {
    let phone = Phone::parse(&body.phone)?;
    let key = state.jwt.derive("otp");
    let cfg = state.settings.auth.clone();
    let now = crate::db::round_ts(state.clock.now());
    let p = phone.clone();
    let code = state
        .db
        .write(move |c| svc::start_otp(c, &p, &key, &cfg, now))
        .await?;
    let minutes = (state.settings.auth.otp_ttl_secs / 60).max(1);
    let msg = SmsMessage {
        phone: phone.as_str().to_string(),
        text: format!("【呼应】您的登录验证码为 {code}，{minutes} 分钟内有效。请勿告诉他人。"),
        template: "login_code".into(),
        params: [
            ("code".to_string(), code.clone()),
            ("minutes".to_string(), minutes.to_string()),
        ]
        .into_iter()
        .collect(),
    };
    if let Err(e) = state.sms.send(&msg).await {
        // A gateway may echo the message back in its error: the code never reaches the log.
        let reason = match e {
            SmsError::Temporary(m) | SmsError::Permanent(m) => m.replace(&code, "******"),
        };
        tracing::warn!(error = %reason, "sending sign-in code failed");
        let p = phone.clone();
        state.db.write(move |c| svc::cancel_otp(c, &p)).await?;
        return Err(AppError::Upstream(reason));
    }
    Ok(HttpResponse::Ok().json(OtpSent {
        expires_in: state.settings.auth.otp_ttl_secs,
        resend_after: state.settings.auth.otp_resend_secs,
    }))
}

/// Either `{phone, code}` (residents) or `{username, password}` (staff and admins).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub phone: Option<String>,
    pub code: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub token_type: &'static str,
    pub user: UserView,
}

async fn issue(
    state: &AppState,
    user: UserRow,
    family: Option<String>,
    rotated: Option<String>,
) -> AppResult<TokenResponse> {
    let cfg = state.settings.auth.clone();
    let now = crate::db::round_ts(state.clock.now());
    let role = user.role;
    let access = state
        .jwt
        .issue(user.id, role, state.clock.now(), cfg.access_ttl_secs)?;
    let (refresh_token, view) = state
        .db
        .write(move |c| {
            let refresh_token = match rotated {
                Some(t) => t,
                None => {
                    let fam = family.unwrap_or_else(random_token);
                    svc::new_refresh_token(c, user.id, &fam, &cfg, now)?
                }
            };
            Ok((refresh_token, users::view(c, &user, true)?))
        })
        .await?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token,
        expires_in: state.settings.auth.access_ttl_secs,
        token_type: "Bearer",
        user: view,
    })
}

/// Sign in.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        JsonBody,
        DbBusy,
        (status = 401, description = "Wrong credentials (no hint which part)", body = ErrorBody),
        (status = 429, description = "Too many wrong codes: ask for a new one", body = ErrorBody),
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let now = crate::db::round_ts(state.clock.now());
    let user = match (body.phone, body.code, body.username, body.password) {
        (Some(phone), Some(code), None, None) => {
            let phone = Phone::parse(&phone).map_err(|_| AppError::InvalidCredentials)?;
            let key = state.jwt.derive("otp");
            let cfg = state.settings.auth.clone();
            let checked = state
                .db
                .write(move |c| svc::verify_otp(c, &phone, &code, &key, &cfg, now))
                .await?;
            match checked {
                OtpCheck::Ok(u) => *u,
                OtpCheck::Wrong => return Err(AppError::InvalidCredentials),
                OtpCheck::Locked => {
                    return Err(AppError::TooManyRequests {
                        code: "otp_locked",
                        message: "验证码错误次数过多，请重新获取验证码".into(),
                        retry_after: None,
                    })
                }
            }
        }
        (None, None, Some(username), Some(password)) => {
            let username = validate::clean("username", &username, Lines::One)?;
            state
                .db
                .run(move |c| svc::verify_password(c, &username, &password))
                .await?
        }
        _ => {
            return Err(AppError::validation(
                "invalid_login_request",
                "请提供 手机号+验证码（居民）或 用户名+密码（工作人员）",
            ))
        }
    };
    tracing::info!(user_id = user.id, role = %user.role, "signed in");
    Ok(HttpResponse::Ok().json(issue(&state, user, None, None).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Trade a refresh token for a new access token and a new refresh token (rotation). Reusing an
/// old refresh token revokes its whole family.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        JsonBody,
        DbBusy,
        (status = 401, description = "Unknown, expired, revoked or reused token", body = ErrorBody),
    )
)]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let token = body.into_inner().refresh_token;
    let cfg = state.settings.auth.clone();
    let now = crate::db::round_ts(state.clock.now());
    let outcome = state
        .db
        .write(move |c| svc::rotate_refresh(c, &token, &cfg, now))
        .await?;
    match outcome {
        RefreshOutcome::Rotated { user, token } => {
            Ok(HttpResponse::Ok().json(issue(&state, *user, None, Some(token)).await?))
        }
        RefreshOutcome::Reused => {
            tracing::warn!("refresh token reused: family revoked");
            Err(AppError::Unauthorized("refresh_token_reused"))
        }
        RefreshOutcome::Invalid => Err(AppError::Unauthorized("invalid_refresh_token")),
    }
}

/// Sign out: revokes the refresh token's family.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "Signed out"), JsonBody, DbBusy)
)]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let token = body.into_inner().refresh_token;
    let now = crate::db::round_ts(state.clock.now());
    state.db.write(move |c| svc::logout(c, &token, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(request_otp)
        .service(login)
        .service(refresh)
        .service(logout);
}
