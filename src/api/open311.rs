//! Open311 GeoReport v2 under `/open311/v2/` (docs/open311.md), for partner systems: the
//! 12345 platform, a mini program, any GeoReport client. Every answer comes as `.json` or
//! `.xml`, errors included (`[{code, description}]`, `<errors><error>…`), so these routes are
//! outside the OpenAPI document and its `{code, message}` errors.
//!
//! Services and their definitions are public, as in the specification. Posting and reading
//! requests need a partner's `api_key`, and a partner reads back only the requests its own keys
//! posted: a ticket is a resident's affair, not public record.

use std::fmt;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;

use crate::limits::wait_zh;
use crate::service::api_keys::{self as keys, ApiKeyRow};
use crate::service::open311::{self as svc, Failure, Params};
use crate::state::AppState;

/// What the path's extension asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

/// `requests.json` → (`requests`, JSON); an unknown extension is no route at all.
fn split_file(file: &str) -> Option<(&str, Format)> {
    let (name, ext) = file.rsplit_once('.')?;
    let format = match ext {
        "json" => Format::Json,
        "xml" => Format::Xml,
        _ => return None,
    };
    Some((name, format))
}

/// A refusal, answered in the format the client asked for.
#[derive(Debug)]
pub struct Open311Error {
    failure: Failure,
    format: Format,
}

impl Open311Error {
    fn new(failure: Failure, format: Format) -> Open311Error {
        Open311Error { failure, format }
    }
}

impl fmt::Display for Open311Error {
    /// What the request log shows: the inner cause of a 5xx, else only the status (the
    /// descriptions may quote what the client sent).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure.cause {
            Some(cause) => write!(f, "open311: {cause}"),
            None => write!(f, "open311 refusal {}", self.failure.status),
        }
    }
}

#[derive(Serialize)]
struct ErrorItem<'a> {
    code: u16,
    description: &'a str,
}

impl ResponseError for Open311Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let items: Vec<ErrorItem> = self
            .failure
            .errors
            .iter()
            .map(|d| ErrorItem {
                code: status.as_u16(),
                description: d,
            })
            .collect();
        let mut builder = HttpResponse::build(status);
        if let Some(secs) = self.failure.retry_after {
            builder.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        render(&mut builder, self.format, "errors", &items)
    }
}

type Answer = Result<HttpResponse, Open311Error>;

fn ok(format: Format, root: &str, body: &impl Serialize) -> Answer {
    Ok(render(&mut HttpResponse::Ok(), format, root, body))
}

fn render(
    builder: &mut actix_web::HttpResponseBuilder,
    format: Format,
    root: &str,
    body: &impl Serialize,
) -> HttpResponse {
    match format {
        Format::Json => builder.json(body),
        Format::Xml => {
            let value = serde_json::to_value(body).unwrap_or(Value::Null);
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
            element(&mut out, root, &value);
            builder
                .insert_header((header::CONTENT_TYPE, "text/xml; charset=utf-8"))
                .body(out)
        }
    }
}

/// The element name of each item of a list, as the specification names them.
fn item_name(list: &str) -> &'static str {
    match list {
        "services" => "service",
        "service_requests" => "request",
        "errors" => "error",
        "attributes" => "attribute",
        "values" => "value",
        "endpoints" => "endpoint",
        "formats" => "format",
        _ => "item",
    }
}

/// `<name>…</name>` for a JSON value: objects become child elements, lists repeat the item
/// element, null is an empty element.
fn element(out: &mut String, name: &str, v: &Value) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => escape(out, s),
        Value::Array(items) => {
            let item = item_name(name);
            for i in items {
                element(out, item, i);
            }
        }
        Value::Object(map) => {
            for (k, child) in map {
                element(out, k, child);
            }
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all; stored texts never hold them, this is a guard.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

/// The live key the request carries, within its rate.
async fn partner(state: &AppState, params: &Params) -> Result<ApiKeyRow, Failure> {
    let key = params.get("api_key").map(str::to_string);
    let row = state
        .db
        .run(move |c| keys::authenticate(c, key.as_deref()))
        .await?;
    let per_minute = u32::try_from(row.rate_limit_per_minute).unwrap_or(1).max(1);
    state
        .partner_limits
        .check(row.id, per_minute)
        .map_err(|secs| Failure {
            status: 429,
            errors: vec![format!(
                "该 api_key 请求过于频繁（每分钟 {per_minute} 次），请 {} 后再试",
                wait_zh(secs)
            )],
            retry_after: Some(secs),
            cause: None,
        })?;
    Ok(row)
}

/// `GET discovery`, `GET services`, `GET requests`.
async fn top_get(state: web::Data<AppState>, req: HttpRequest, file: web::Path<String>) -> Answer {
    let Some((name, format)) = split_file(&file) else {
        return Err(Open311Error::new(Failure::not_found(), Format::Json));
    };
    let fail = |f: Failure| Open311Error::new(f, format);
    match name {
        "discovery" => ok(format, "discovery", &discovery(&state, &req)),
        "services" => {
            let services = state
                .db
                .run(|c| Ok(svc::services(c)))
                .await
                .map_err(|e| fail(e.into()))?
                .map_err(fail)?;
            ok(format, "services", &services)
        }
        "requests" => {
            let params = Params::parse(req.query_string().as_bytes());
            let key = partner(&state, &params).await.map_err(fail)?;
            let now = crate::db::round_ts(state.clock.now());
            let found = state
                .db
                .run(move |c| {
                    let codes = svc::service_codes(c)?;
                    Ok(
                        svc::check_filter(&params, |code| codes.get(code).copied(), now)
                            .and_then(|f| svc::requests(c, &key, &f)),
                    )
                })
                .await
                .map_err(|e| fail(e.into()))?
                .map_err(fail)?;
            ok(format, "service_requests", &found)
        }
        _ => Err(fail(Failure::not_found())),
    }
}

/// `GET services/{service_code}`: the service definition.
async fn service_definition(state: web::Data<AppState>, file: web::Path<String>) -> Answer {
    let Some((code, format)) = split_file(&file) else {
        return Err(Open311Error::new(Failure::not_found(), Format::Json));
    };
    let fail = |f: Failure| Open311Error::new(f, format);
    let code = code.to_string();
    let def = state
        .db
        .run(move |c| Ok(svc::definition(c, &code)))
        .await
        .map_err(|e| fail(e.into()))?
        .map_err(fail)?;
    ok(format, "service_definition", &def)
}

/// `GET requests/{service_request_id}`: a list of one, as the specification has it.
async fn one_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    file: web::Path<String>,
) -> Answer {
    let Some((id, format)) = split_file(&file) else {
        return Err(Open311Error::new(Failure::not_found(), Format::Json));
    };
    let fail = |f: Failure| Open311Error::new(f, format);
    let params = Params::parse(req.query_string().as_bytes());
    let key = partner(&state, &params).await.map_err(fail)?;
    let id = id.to_string();
    let found = state
        .db
        .run(move |c| Ok(svc::request(c, &key, &id)))
        .await
        .map_err(|e| fail(e.into()))?
        .map_err(fail)?;
    ok(format, "service_requests", &[found])
}

/// `GET tokens/{token}`: requests are created at once, so a token is the request's id.
async fn token(state: web::Data<AppState>, req: HttpRequest, file: web::Path<String>) -> Answer {
    let Some((token, format)) = split_file(&file) else {
        return Err(Open311Error::new(Failure::not_found(), Format::Json));
    };
    let fail = |f: Failure| Open311Error::new(f, format);
    let params = Params::parse(req.query_string().as_bytes());
    let key = partner(&state, &params).await.map_err(fail)?;
    let token = token.to_string();
    let found = state
        .db
        .run(move |c| Ok(svc::token(c, &key, &token)))
        .await
        .map_err(|e| fail(e.into()))?
        .map_err(fail)?;
    ok(format, "service_requests", &[found])
}

/// `POST requests`: a form-encoded body, as the specification has it.
async fn post_requests(
    state: web::Data<AppState>,
    req: HttpRequest,
    file: web::Path<String>,
    body: web::Bytes,
) -> Answer {
    let format = match split_file(&file) {
        Some(("requests", format)) => format,
        Some((_, format)) => return Err(Open311Error::new(Failure::not_found(), format)),
        None => return Err(Open311Error::new(Failure::not_found(), Format::Json)),
    };
    let fail = |f: Failure| Open311Error::new(f, format);
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(fail(Failure::one(
            400,
            "请求须为表单编码（application/x-www-form-urlencoded）",
        )));
    }
    let params = Params::parse(&body);
    let key = partner(&state, &params).await.map_err(fail)?;
    let codes = state
        .db
        .run(svc::service_codes)
        .await
        .map_err(|e| fail(e.into()))?;
    let posted = svc::check_post(&params, |c| codes.get(c).copied()).map_err(fail)?;
    let per_day = state.settings.limits.tickets_per_resident_per_day;
    let posted = std::sync::Arc::new(posted);
    let mut attempt = 0;
    let created = loop {
        attempt += 1;
        let (key, posted, sla, now) = (
            key.clone(),
            posted.clone(),
            state.sla.clone(),
            state.clock.now(),
        );
        let result = state
            .db
            .write(move |c| svc::create(c, &key, &posted, &sla, per_day, now))
            .await;
        match result {
            Ok(v) => break v,
            // A concurrent call took the same reference number; the retry takes the next.
            Err(crate::error::AppError::Conflict {
                code: "conflict", ..
            }) if attempt < 3 => continue,
            Err(e) => return Err(fail(e.into())),
        }
    };
    ok(format, "service_requests", &[created])
}

#[derive(Serialize)]
struct Endpoint {
    specification: &'static str,
    url: String,
    changeset: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    formats: [&'static str; 2],
}

#[derive(Serialize)]
struct Discovery {
    changeset: &'static str,
    contact: &'static str,
    key_service: &'static str,
    endpoints: [Endpoint; 1],
}

/// When this interface last changed (the discovery document's `changeset`).
const CHANGESET: &str = "2026-11-30T00:00:00+08:00";

fn discovery(state: &AppState, req: &HttpRequest) -> Discovery {
    let base = match state.settings.server.public_url.trim_end_matches('/') {
        "" => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
        url => url.to_string(),
    };
    Discovery {
        changeset: CHANGESET,
        contact: "请联系街道系统管理员",
        key_service: "api_key 由街道系统管理员签发（POST /api/v1/admin/api-keys）",
        endpoints: [Endpoint {
            specification: "http://wiki.open311.org/GeoReport_v2",
            url: format!("{base}/open311/v2"),
            changeset: CHANGESET,
            kind: "production",
            formats: ["application/json", "text/xml"],
        }],
    }
}

/// Anything else under `/open311/v2/`: 404 in the specification's format.
async fn not_found(req: HttpRequest) -> HttpResponse {
    let format = if req.path().ends_with(".xml") {
        Format::Xml
    } else {
        Format::Json
    };
    Open311Error::new(Failure::not_found(), format).error_response()
}

/// The Open311 routes. `/{file}` comes last so the three folders match first.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/open311/v2")
            .route("/services/{file}", web::get().to(service_definition))
            .route("/requests/{file}", web::get().to(one_request))
            .route("/tokens/{file}", web::get().to(token))
            .route("/{file}", web::get().to(top_get))
            .route("/{file}", web::post().to(post_requests))
            .default_service(web::to(not_found)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_names_items_as_the_specification_does_and_escapes_text() {
        let v = serde_json::json!([{"code": 400, "description": "a < b & \"c\""}]);
        let mut out = String::new();
        element(&mut out, "errors", &v);
        assert_eq!(
            out,
            "<errors><error><code>400</code><description>a &lt; b &amp; &quot;c&quot;</description></error></errors>"
        );
    }

    #[test]
    fn only_json_and_xml_are_formats() {
        assert_eq!(
            split_file("requests.json"),
            Some(("requests", Format::Json))
        );
        assert_eq!(
            split_file("YC-20261130-0001.xml"),
            Some(("YC-20261130-0001", Format::Xml))
        );
        assert_eq!(split_file("requests.html"), None);
        assert_eq!(split_file("requests"), None);
    }
}
