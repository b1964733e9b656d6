//! The one API error type: a stable `code`, a zh-CN `message`, an HTTP status.
//! Causes are logged, never returned.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::validate::ValidationError;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code in snake_case, e.g. `invalid_credentials`.
    pub code: String,
    /// Human-readable message (zh-CN).
    pub message: String,
    /// Optional structured details, e.g. the actions allowed now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("validation: {message}")]
    Validation { code: &'static str, message: String },
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("conflict: {message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error("too many requests: {message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        retry_after: Option<i64>,
    },
    #[error("payload too large")]
    PayloadTooLarge(String),
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    /// The path exists, with other methods: the value of `Allow`.
    #[error("method not allowed")]
    MethodNotAllowed(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bounded queue (password hashing) is full: try again in `retry_after` seconds.
    #[error("busy: {what}")]
    Busy {
        what: &'static str,
        retry_after: i64,
    },
    #[error("upstream failure: {0}")]
    Upstream(String),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn validation(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            AppError::Validation { code, .. } => code,
            AppError::Unauthorized(code) => code,
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::Forbidden => "forbidden",
            AppError::NotFound => "not_found",
            AppError::Conflict { code, .. } => code,
            AppError::TooManyRequests { code, .. } => code,
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::MethodNotAllowed(_) => "method_not_allowed",
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Busy { .. } => "busy",
            AppError::Upstream(_) => "upstream_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            AppError::Validation { message, .. } => message.clone(),
            AppError::Unauthorized(_) => "未登录或登录已过期，请重新登录".into(),
            AppError::InvalidCredentials => "账号或验证码/密码不正确".into(),
            AppError::Forbidden => "无权进行此操作".into(),
            AppError::NotFound => "未找到该资源".into(),
            AppError::Conflict { message, .. } => message.clone(),
            AppError::TooManyRequests { message, .. } => message.clone(),
            AppError::PayloadTooLarge(m) => m.clone(),
            AppError::UnsupportedMediaType(m) => m.clone(),
            AppError::MethodNotAllowed(_) => "不支持该请求方法".into(),
            AppError::Unavailable(_) => "服务暂时不可用，请稍后再试".into(),
            AppError::Busy { .. } => "服务繁忙，请稍后再试".into(),
            AppError::Upstream(_) => "短信服务暂时不可用，请稍后再试".into(),
            AppError::Internal(_) => "服务器内部错误，请稍后再试".into(),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized(_) | AppError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Unavailable(_) | AppError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Logged once per request by `http::RequestSpan`, not here.
    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let details = match self {
            AppError::Conflict { details, .. } => details.clone(),
            _ => None,
        };
        let mut builder = HttpResponse::build(status);
        if let AppError::TooManyRequests {
            retry_after: Some(secs),
            ..
        }
        | AppError::Busy {
            retry_after: secs, ..
        } = self
        {
            builder.insert_header(("Retry-After", secs.to_string()));
        }
        if let AppError::MethodNotAllowed(allow) = self {
            builder.insert_header(("Allow", allow.as_str()));
        }
        if matches!(
            self,
            AppError::Unauthorized(_) | AppError::InvalidCredentials
        ) {
            builder.insert_header(("WWW-Authenticate", "Bearer"));
        }
        builder.json(ErrorBody {
            code: self.code().to_string(),
            message: self.message(),
            details,
        })
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        AppError::Validation {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => AppError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::conflict("conflict", "数据已存在或已被他人修改，请刷新后重试")
            }
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                AppError::conflict("conflict", "数据已被他人修改，请刷新后重试")
            }
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                AppError::validation("invalid_reference", "引用的数据不存在")
            }
            // The last line of defence behind `validate::clean`: PostgreSQL refuses NUL in
            // text, and a client's bytes are never a 500.
            Error::DatabaseError(_, ref info)
                if info
                    .message()
                    .contains("invalid byte sequence for encoding") =>
            {
                AppError::validation("invalid_text", "内容含有不允许的字符")
            }
            // The server dropped the connection (restart, `pg_terminate_backend`): the pool
            // checks and replaces it before its next use, so a retry succeeds.
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                AppError::Unavailable("database connection lost".into())
            }
            Error::DatabaseError(_, ref info) if info.message().contains("database is locked") => {
                AppError::Unavailable(info.message().to_string())
            }
            other => AppError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> Self {
        AppError::Unavailable(format!("database pool: {e}"))
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking task failed: {e}"))
    }
}

pub type AppResult<T> = Result<T, AppError>;

const JSON_ONLY: &str = "请求须为 JSON（Content-Type: application/json）";

/// A raw body a route parses itself: empty, or JSON. A missing `Content-Type` is taken as JSON
/// (as these routes always did); any other type is 415.
pub fn check_json_content_type(req: &actix_web::HttpRequest, body: &[u8]) -> AppResult<()> {
    use actix_web::HttpMessage;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match req.mime_type() {
        Ok(None) => Ok(()),
        Ok(Some(m)) if m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json") => Ok(()),
        _ => Err(AppError::UnsupportedMediaType(JSON_ONLY.into())),
    }
}

/// Turns actix's own extractor failures (bad JSON, bad query) into our JSON errors, so a
/// client's mistake is never a bare text/plain 400.
pub fn json_error_handler(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let app = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => {
            AppError::PayloadTooLarge("请求内容过大".into())
        }
        J::ContentType => AppError::UnsupportedMediaType(JSON_ONLY.into()),
        J::Deserialize(e) => {
            AppError::validation("invalid_json", format!("请求数据格式不正确：{e}"))
        }
        other => AppError::validation("invalid_json", format!("请求数据格式不正确：{other}")),
    };
    app.into()
}

pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    AppError::validation("invalid_query", format!("查询参数不正确：{err}")).into()
}

pub fn path_error_handler(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    let _ = err;
    AppError::NotFound.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_input_answers_422_with_its_own_code_and_message() {
        let e: AppError = crate::domain::validate::Phone::parse("12345")
            .expect_err("not a phone")
            .into();
        assert_eq!(e.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.code(), "invalid_phone");
        assert_eq!(e.message(), "手机号格式不正确，应为 11 位中国大陆手机号");
    }
}
