use actix_web::http::header::{self, HeaderValue};
use actix_web::{post, web, HttpRequest, HttpResponse, HttpResponseBuilder};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::{DbBusy, JsonBody};
use crate::auth::tokens::random_token;
use crate::config::Settings;
use crate::db::models::UserRow;
use crate::domain::validate::{self, Lines, Phone};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::service::auth::{self as svc, OtpCheck, PasswordOutcome, RefreshOutcome};
use crate::service::limits;
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
        (status = 429, description = "Asked again within the resend interval, or over a limit: codes per phone (hour, day), per client address (hour, day), or the hourly SMS budget. `Retry-After` says when to try again", body = ErrorBody),
        (status = 502, description = "SMS gateway failed", body = ErrorBody),
    )
)]
#[post("/otp")]
pub async fn request_otp(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<OtpRequest>,
) -> AppResult<HttpResponse> {
    let phone = Phone::parse(&body.phone)?;
    state
        .address_limits
        .otp(crate::limits::client_ip(&req, &state.settings.server))?;
    let key = state.jwt.derive("otp");
    let phone_hash = hex::encode(state.jwt.derive(&format!("otp-sends:{}", phone.as_str())));
    let cfg = state.settings.auth.clone();
    let limits_cfg = state.settings.limits.clone();
    let now = crate::db::round_ts(state.clock.now());
    let p = phone.clone();
    let h = phone_hash.clone();
    let code = state
        .db
        .write(move |c| {
            let code = svc::start_otp(c, &p, &key, &cfg, now)?;
            limits::record_otp_send(c, &h, &limits_cfg, now)?;
            Ok(code)
        })
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
        state
            .db
            .write(move |c| {
                svc::cancel_otp(c, &p)?;
                limits::forget_otp_send(c, &phone_hash)
            })
            .await?;
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
    /// Absent when the client asked for the refresh token as a cookie (`X-Auth-Cookie`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
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
    let access = state.jwt.issue_generation(
        user.id,
        role,
        user.token_generation,
        state.clock.now(),
        cfg.access_ttl_secs,
    )?;
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
        refresh_token: Some(refresh_token),
        expires_in: state.settings.auth.access_ttl_secs,
        token_type: "Bearer",
        user: view,
    })
}

/// Sign in. With `X-Auth-Cookie: <page>` the refresh token comes as an `HttpOnly` cookie
/// instead of in the body (what the web pages do).
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    params(AuthCookieHeader),
    responses(
        (status = 200, body = TokenResponse),
        JsonBody,
        (status = 401, description = "Wrong credentials (no hint which part)", body = ErrorBody),
        (status = 429, description = "Too many wrong codes (ask for a new one), too many wrong passwords (the account is locked for a while; an admin may unlock it), or too many password attempts from this address. `Retry-After` says when to try again", body = ErrorBody),
        (status = 503, description = "No database connection within `database.pool_timeout_secs`, or `busy`: every password-hashing thread and queue slot is taken (`Retry-After`)", body = ErrorBody),
    )
)]
#[post("/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> AppResult<HttpResponse> {
    let transport = Transport::of(&req)?;
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
            let ip = crate::limits::client_ip(&req, &state.settings.server);
            password_sign_in(&state, ip, username, password, now).await?
        }
        _ => {
            return Err(AppError::validation(
                "invalid_login_request",
                "请提供 手机号+验证码（居民）或 用户名+密码（工作人员）",
            ))
        }
    };
    tracing::info!(user_id = user.id, role = %user.role, "signed in");
    let tokens = issue(&state, user, None, None).await?;
    Ok(transport.respond(HttpResponse::Ok(), tokens, &state.settings))
}

/// The slow part (argon2) runs on the bounded pool with no database connection held; the
/// lockout is read before it and written after it.
async fn password_sign_in(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    username: String,
    password: String,
    now: NaiveDateTime,
) -> AppResult<UserRow> {
    state.address_limits.login(ip)?;
    let place = state.hasher.admit()?;
    let user = state
        .db
        .run(move |c| svc::find_by_username(c, &username))
        .await?;
    if let Some(secs) = user.as_ref().and_then(|u| svc::locked_for(u, now)) {
        return Err(svc::account_locked(secs));
    }
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let correct = place.verify(password, stored).await?;
    let Some(user) = user else {
        return Err(AppError::InvalidCredentials);
    };
    let cfg = state.settings.limits.clone();
    let id = user.id;
    let outcome = state
        .db
        .write(move |c| svc::record_password_check(c, id, correct, &cfg, now))
        .await?;
    match outcome {
        PasswordOutcome::SignedIn(u) => Ok(*u),
        PasswordOutcome::Wrong => Err(AppError::InvalidCredentials),
        PasswordOutcome::Locked { user, until } => {
            tracing::warn!(user_id = user.id, %until, "account locked after wrong passwords");
            tell_locked(state, &user, until).await;
            Err(svc::account_locked((until - now).num_seconds().max(1)))
        }
    }
}

/// Tells the account's holder by SMS that wrong passwords locked it (someone may be guessing).
async fn tell_locked(state: &AppState, user: &UserRow, until: NaiveDateTime) {
    let Some(phone) = user.phone.clone() else {
        return;
    };
    let at = until
        .and_utc()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%m月%d日 %H:%M")
        .to_string();
    let name = user.username.clone().unwrap_or_default();
    let msg = SmsMessage {
        phone,
        text: format!(
            "【呼应】您的账号 {name} 因连续多次输入错误密码已被锁定，{at} 后可再次登录。如非本人操作，请联系管理员。"
        ),
        template: "account_locked".into(),
        params: [
            ("username".to_string(), name.clone()),
            ("until".to_string(), at),
        ]
        .into_iter()
        .collect(),
    };
    if let Err(e) = state.sms.send(&msg).await {
        tracing::warn!(error = %e, user_id = user.id, "telling the user of the lockout failed");
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token; omit it (send `{}`) to use the cookie named by `X-Auth-Cookie`.
    pub refresh_token: Option<String>,
}

/// `X-Auth-Cookie: <page>` (`[a-z]{1,20}`, e.g. `resident`): keep the refresh token in the
/// `HttpOnly; Secure; SameSite=Strict` cookie `huying_refresh_<page>` (path `/api/v1/auth/`)
/// instead of the body. One cookie per page, so one browser may be signed in to two pages as two
/// people.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct AuthCookieHeader {
    /// The page whose cookie carries the refresh token, e.g. `resident`; absent = JSON body.
    #[param(rename = "X-Auth-Cookie")]
    pub x_auth_cookie: Option<String>,
}

const COOKIE_HEADER: &str = "X-Auth-Cookie";
const COOKIE_PATH: &str = "/api/v1/auth/";

/// How the refresh token travels: in the JSON body (API clients), or in a cookie (the pages).
/// A token that came in a cookie goes back in the cookie and never in the body, so a script
/// on the page cannot read it.
enum Transport {
    Body,
    Cookie(String),
}

impl Transport {
    fn of(req: &HttpRequest) -> AppResult<Transport> {
        let Some(v) = req.headers().get(COOKIE_HEADER) else {
            return Ok(Transport::Body);
        };
        match v.to_str() {
            Ok(page)
                if !page.is_empty()
                    && page.len() <= 20
                    && page.bytes().all(|b| b.is_ascii_lowercase()) =>
            {
                Ok(Transport::Cookie(format!("huying_refresh_{page}")))
            }
            _ => Err(AppError::validation(
                "invalid_header",
                "X-Auth-Cookie 须为 1–20 个小写英文字母",
            )),
        }
    }

    /// The token this request carries in the cookie, if in cookie mode.
    fn cookie_token(&self, req: &HttpRequest) -> Option<String> {
        let Transport::Cookie(name) = self else {
            return None;
        };
        req.headers()
            .get_all(header::COOKIE)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty())
    }

    fn set_cookie(
        name: &str,
        value: &str,
        max_age: i64,
        settings: &Settings,
    ) -> Option<HeaderValue> {
        let secure = if settings.insecure_cookies_allowed() {
            ""
        } else {
            "; Secure"
        };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        ))
        .ok()
    }

    fn respond(
        &self,
        mut builder: HttpResponseBuilder,
        mut tokens: TokenResponse,
        settings: &Settings,
    ) -> HttpResponse {
        if let Transport::Cookie(name) = self {
            if let Some(c) = tokens
                .refresh_token
                .take()
                .and_then(|t| Self::set_cookie(name, &t, settings.auth.refresh_ttl_secs, settings))
            {
                builder.append_header((header::SET_COOKIE, c));
            }
        }
        builder.json(tokens)
    }

    fn clear(&self, builder: &mut HttpResponseBuilder, settings: &Settings) {
        if let Transport::Cookie(name) = self {
            if let Some(c) = Self::set_cookie(name, "", 0, settings) {
                builder.append_header((header::SET_COOKIE, c));
            }
        }
    }
}

/// The token from the body, else from the cookie; and how to answer.
fn refresh_token_of(
    req: &HttpRequest,
    body: RefreshRequest,
) -> AppResult<(Option<String>, Transport)> {
    match body.refresh_token {
        Some(t) => Ok((Some(t), Transport::Body)),
        None => {
            let transport = Transport::of(req)?;
            Ok((transport.cookie_token(req), transport))
        }
    }
}

/// Trade a refresh token for a new access token and a new refresh token (rotation). Reusing an
/// old refresh token revokes its whole family. The token comes in the body, or (body `{}`) in
/// the cookie named by `X-Auth-Cookie`; the new one goes back the same way.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    params(AuthCookieHeader),
    responses(
        (status = 200, body = TokenResponse),
        JsonBody,
        DbBusy,
        (status = 401, description = "Unknown, expired, revoked or reused token", body = ErrorBody),
    )
)]
#[post("/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let (token, transport) = refresh_token_of(&req, body.into_inner())?;
    let token = token.ok_or(AppError::Unauthorized("invalid_refresh_token"))?;
    let cfg = state.settings.auth.clone();
    let now = crate::db::round_ts(state.clock.now());
    let outcome = state
        .db
        .write(move |c| svc::rotate_refresh(c, &token, &cfg, now))
        .await?;
    match outcome {
        RefreshOutcome::Rotated { user, token } => {
            let tokens = issue(&state, *user, None, Some(token)).await?;
            Ok(transport.respond(HttpResponse::Ok(), tokens, &state.settings))
        }
        RefreshOutcome::Reused => {
            tracing::warn!("refresh token reused: family revoked");
            Err(AppError::Unauthorized("refresh_token_reused"))
        }
        RefreshOutcome::Invalid => Err(AppError::Unauthorized("invalid_refresh_token")),
    }
}

/// Sign out: revokes the refresh token's family and stops the user's access tokens at once.
/// The token comes in the body, or (body `{}`) in the cookie named by `X-Auth-Cookie`, which
/// is then cleared.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    params(AuthCookieHeader),
    responses((status = 204, description = "Signed out"), JsonBody, DbBusy)
)]
#[post("/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let (token, transport) = refresh_token_of(&req, body.into_inner())?;
    if let Some(token) = token {
        let now = crate::db::round_ts(state.clock.now());
        state.db.write(move |c| svc::logout(c, &token, now)).await?;
    }
    let mut builder = HttpResponse::NoContent();
    transport.clear(&mut builder, &state.settings);
    Ok(builder.finish())
}

/// Every answer under `/auth/` (tokens, codes, and errors too) is `Cache-Control: no-store`:
/// no browser or proxy may keep a copy.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        utoipa_actix_web::scope("/auth")
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((header::CACHE_CONTROL, "no-store"))
                    .add((header::PRAGMA, "no-cache")),
            )
            .service(request_otp)
            .service(login)
            .service(refresh)
            .service(logout),
    );
}
