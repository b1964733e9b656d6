//! What every response gets, whichever route answered it: a request id, one log line per
//! failed request at the level its status deserves, `{code, message}` bodies for the errors
//! actix builds itself, 405 with `Allow`, and the security headers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpResponse, ResponseError};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use crate::error::{AppError, ErrorBody};
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of one request: the trusted proxy's `X-Request-Id`, or a new UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A proxy's id is kept only when it is short and plain, so it can go into logs and headers as is.
fn usable_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let plain = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    plain.then(|| s.to_string())
}

fn trusted_peer(req: &ServiceRequest) -> bool {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return false;
    };
    req.app_data::<web::Data<AppState>>().is_some_and(|s| {
        s.settings
            .server
            .trusted_proxies
            .iter()
            .any(|p: &IpAddr| *p == peer || p.to_canonical() == peer.to_canonical())
    })
}

/// Outermost: picks the request's id before the request span opens and returns it on the
/// response. A client's own `X-Request-Id` is believed only from `server.trusted_proxies`.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .filter(|_| trusted_peer(&req))
        .and_then(usable_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.call(req).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    Ok(res)
}

/// The request span (id, method, path without its query string, route, status) and one event
/// per failed request: 5xx at `error` with the cause, 4xx at `debug` with the code only, since
/// the rest of a client error is the client's own text.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(req: &ServiceRequest) -> Span {
        let id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let route = req.match_pattern().unwrap_or_else(|| "-".into());
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %req.method(),
            path = %req.path(),
            route = %route,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(res) => (res.status(), res.response().error()),
            Err(e) => (e.as_response_error().status_code(), Some(e)),
        };
        span.record("status", status.as_u16());
        let _entered = span.enter();
        let shed = error
            .and_then(|e| e.as_error::<crate::error::AppError>())
            .is_some_and(|e| matches!(e, crate::error::AppError::Busy { .. }));
        if shed {
            // A full password-hashing queue reports itself once a minute; a line per refused
            // sign-in would flood the log.
            tracing::debug!(status = status.as_u16(), "request shed");
        } else if status.is_server_error() {
            match error {
                Some(e) => tracing::error!(status = status.as_u16(), error = %e, "request failed"),
                None => tracing::error!(status = status.as_u16(), "request failed"),
            }
        } else if status.is_client_error() {
            let code = error
                .and_then(|e| e.as_error::<AppError>())
                .map_or_else(|| default_code(status), |e| e.code());
            tracing::debug!(status = status.as_u16(), code, "request rejected");
        }
    }
}

fn default_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::SERVICE_UNAVAILABLE => "service_unavailable",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    }
}

fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "未找到该资源",
        StatusCode::METHOD_NOT_ALLOWED => "不支持该请求方法",
        StatusCode::PAYLOAD_TOO_LARGE => "请求内容过大",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "不支持该请求内容类型（Content-Type）",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "请求头过大",
        StatusCode::TOO_MANY_REQUESTS => "请求过于频繁，请稍后再试",
        StatusCode::SERVICE_UNAVAILABLE => "服务暂时不可用，请稍后再试",
        s if s.is_server_error() => "服务器内部错误，请稍后再试",
        _ => "请求格式不正确",
    }
}

/// An error body already in a format the route chose: JSON, or the XML Open311 answers in.
fn is_json(res: &HttpResponse<impl MessageBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/xml"))
}

/// Inside the routes: an error response that actix built as text (a raw body over the
/// payload limit, a malformed multipart, …) gets the `{code, message}` body every other error
/// has. Headers such as `Allow` and `Retry-After` are kept.
pub async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let res = next.call(req).await?;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(res.response()) {
        return Ok(res.map_into_left_body());
    }
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status).json(ErrorBody {
        code: default_code(status).into(),
        message: default_message(status).into(),
        details: None,
    });
    for (name, value) in old.headers() {
        if !matches!(
            *name,
            header::CONTENT_TYPE | header::CONTENT_LENGTH | header::CONTENT_ENCODING
        ) {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(ServiceResponse::new(req, new).map_into_right_body())
}

/// The Swagger UI's own scripts and styles only; it draws with inline styles and data: images.
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'; form-action 'none'";

/// `Strict-Transport-Security` when the service is published over https (`server.public_url`),
/// and a CSP on the API documentation pages (the web pages set their own).
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let https = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.settings.server.public_url.starts_with("https://"));
    let docs = req.path().starts_with("/api/docs");
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if docs && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
    }
    Ok(res)
}

/// The methods each documented path takes, from the OpenAPI document that the routes register
/// themselves with, so that a known path asked with another method answers 405 with `Allow`
/// rather than 404.
#[derive(Debug, Default)]
pub struct AllowMap {
    /// Path templates split into segments (`{…}` matches any one segment) → methods.
    paths: Vec<(Vec<String>, Vec<Method>)>,
}

impl AllowMap {
    pub fn from_doc(doc: &utoipa::openapi::OpenApi) -> AllowMap {
        let mut paths = Vec::new();
        for (path, item) in &doc.paths.paths {
            let methods: Vec<Method> = [
                (item.get.is_some(), Method::GET),
                (item.put.is_some(), Method::PUT),
                (item.post.is_some(), Method::POST),
                (item.delete.is_some(), Method::DELETE),
                (item.patch.is_some(), Method::PATCH),
            ]
            .into_iter()
            .filter_map(|(has, m)| has.then_some(m))
            .collect();
            paths.push((split(path).map(str::to_string).collect(), methods));
        }
        AllowMap { paths }
    }

    /// The methods `path` takes, or none when no documented path matches it.
    pub fn allowed(&self, path: &str) -> Vec<Method> {
        let segs: Vec<&str> = split(path).collect();
        let mut found: BTreeMap<String, Method> = BTreeMap::new();
        for (template, methods) in &self.paths {
            let matches = template.len() == segs.len()
                && template
                    .iter()
                    .zip(&segs)
                    .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()));
            if matches {
                for m in methods {
                    found.insert(m.to_string(), m.clone());
                }
            }
        }
        found.into_values().collect()
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.trim_end_matches('/').split('/').skip(1)
}

/// Refuses a path or query string that decodes to control characters or bidi controls before
/// any route sees it (`validate::clean` checks the texts routes read; this covers the rest).
pub async fn clean_uri(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let bad = |raw: &str| {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .chars()
            .any(|c| {
                c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
            })
    };
    if bad(req.path()) || bad(req.query_string()) {
        let e = AppError::validation("invalid_text", "请求地址含有不允许的字符");
        let res = e.error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_map_matches_templates_segment_by_segment() {
        let mut doc = utoipa::openapi::OpenApi::default();
        for (path, method) in [
            ("/api/v1/tickets", utoipa::openapi::HttpMethod::Get),
            ("/api/v1/tickets", utoipa::openapi::HttpMethod::Post),
            ("/api/v1/tickets/{id}", utoipa::openapi::HttpMethod::Get),
            (
                "/api/v1/tickets/{id}/{action}",
                utoipa::openapi::HttpMethod::Post,
            ),
        ] {
            doc.paths.add_path_operation(
                path,
                vec![method],
                utoipa::openapi::path::Operation::new(),
            );
        }
        let map = AllowMap::from_doc(&doc);
        assert_eq!(
            map.allowed("/api/v1/tickets"),
            vec![Method::GET, Method::POST]
        );
        assert_eq!(
            map.allowed("/api/v1/tickets/"),
            vec![Method::GET, Method::POST]
        );
        assert_eq!(map.allowed("/api/v1/tickets/7"), vec![Method::GET]);
        assert_eq!(map.allowed("/api/v1/tickets/7/comment"), vec![Method::POST]);
        assert!(map.allowed("/api/v1/nothing").is_empty());
        assert!(map.allowed("/api/v1/tickets/7/comment/x").is_empty());
    }
}
