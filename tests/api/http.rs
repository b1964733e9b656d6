//! HTTP correctness: every error body is `{code, message}` (413 on raw-body routes too), 405
//! with `Allow`, 415 for a body that is not JSON, `X-Request-Id` on every response, HSTS when
//! published over https, a CSP on the API documentation.

use std::sync::Arc;

use chrono::Utc;
use huying::domain::clock::ManualClock;
use huying::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, test_settings, Backend, TestApp, TestDb};
use crate::tickets::{create, world};

both_backends!(
    bodies_over_the_limit_are_json_413_on_every_route,
    a_body_that_is_not_json_is_415,
);

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("send");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, v)
}

async fn bodies_over_the_limit_are_json_413_on_every_route(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "楼道灯不亮").await["id"]
        .as_i64()
        .expect("id");
    let admin = app.login_staff("yc-admin").await;
    let big = serde_json::to_vec(&json!({"note": "水".repeat(100_000)})).expect("json");
    for (method, path, token) in [
        (
            Method::POST,
            format!("/api/v1/tickets/{id}/comment"),
            &w.resident,
        ),
        (Method::PUT, "/api/v1/calendars/2026".to_string(), &admin),
        (Method::POST, "/api/v1/tickets".to_string(), &w.resident),
        (Method::POST, "/api/v1/auth/login".to_string(), &admin),
    ] {
        let (s, h, v) = send(
            &app,
            method.clone(),
            &path,
            Some(token),
            "application/json",
            big.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path}: {v}");
        assert_eq!(
            h.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {path}"
        );
        assert_eq!(error_code(&v), "payload_too_large", "{method} {path}");
    }
    let (_, events) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&w.resident))
        .await;
    assert_eq!(events.as_array().map(Vec::len), Some(1), "{events}");
}

async fn a_body_that_is_not_json_is_415(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "楼道灯不亮").await["id"]
        .as_i64()
        .expect("id");
    let admin = app.login_staff("yc-admin").await;
    let body = br#"{"note": "x"}"#.to_vec();
    for (method, path, token, ct) in [
        (
            Method::POST,
            "/api/v1/auth/login".to_string(),
            None,
            "text/plain",
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{id}/comment"),
            Some(&w.resident),
            "text/plain",
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{id}/comment"),
            Some(&w.resident),
            "application/x-www-form-urlencoded",
        ),
        (
            Method::PUT,
            "/api/v1/calendars/2026".to_string(),
            Some(&admin),
            "application/xml",
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{id}/attachments"),
            Some(&w.resident),
            "application/json",
        ),
    ] {
        let (s, _, v) = send(
            &app,
            method.clone(),
            &path,
            token.map(String::as_str),
            ct,
            body.clone(),
        )
        .await;
        assert_eq!(
            s,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path} {ct}: {v}"
        );
        assert_eq!(error_code(&v), "unsupported_media_type", "{path}");
    }
    // A missing type on a raw-body route is still taken as JSON, as it always was.
    let (s, _, v) = send(
        &app,
        Method::POST,
        &format!("/api/v1/tickets/{id}/comment"),
        Some(&w.resident),
        "application/json; charset=utf-8",
        body,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[actix_web::test]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    for (method, path, allow) in [
        (Method::DELETE, "/api/v1/tickets", "GET, POST"),
        (Method::POST, "/healthz", "GET"),
        (Method::PUT, "/api/v1/tickets/12", "GET"),
        (Method::GET, "/api/v1/auth/login", "POST"),
        (Method::PATCH, "/api/v1/calendars/2026", "GET, PUT"),
    ] {
        let res = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .send()
            .await
            .expect("send");
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(
            res.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let v: Value = res.json().await.expect("json");
        assert_eq!(error_code(&v), "method_not_allowed");
    }
    let (s, v) = app
        .request(Method::DELETE, "/api/v1/no/such/thing", None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&v), "not_found");
}

#[actix_web::test]
async fn every_response_has_a_request_id_that_a_client_cannot_choose() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut seen = Vec::new();
    for path in ["/healthz", "/api/v1/nope", "/api/v1/tickets", "/api/docs/"] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .header("X-Request-Id", "forged-id")
            .send()
            .await
            .expect("send");
        let id = res
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{path}: no X-Request-Id"));
        assert_ne!(id, "forged-id", "{path}: an untrusted peer chose the id");
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "ids are per request");
}

#[actix_web::test]
async fn https_deployments_get_hsts_and_the_api_docs_a_csp() {
    let db = TestDb::create(Backend::Sqlite).expect("sqlite");
    let mut settings = test_settings(&db, "http://127.0.0.1:9/send");
    settings.server.public_url = "https://hy.example.cn".into();
    let app = Application::build_with_clock(settings, Arc::new(ManualClock::new(Utc::now())))
        .expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    for path in ["/healthz", "/api/v1/nope", "/"] {
        let res = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("send");
        let hsts = res
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok());
        assert!(
            hsts.is_some_and(|v| v.starts_with("max-age=")),
            "{path}: {hsts:?}"
        );
    }
    let res = client
        .get(format!("{base}/api/docs/"))
        .send()
        .await
        .expect("docs");
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");

    // Over plain http, no HSTS (a browser would pin https for a host that does not have it).
    let Some(plain) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let res = plain
        .client
        .get(format!("{}/healthz", plain.base))
        .send()
        .await
        .expect("send");
    assert!(res.headers().get("strict-transport-security").is_none());
}

/// Sends raw bytes on a fresh connection and reads the whole answer (the server closes the
/// connection after a parser error).
async fn raw_exchange(app: &TestApp, request: Vec<u8>) -> (u16, String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // The server may answer and close before it read everything: a failed write is fine.
    let _ = s.write_all(&request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line in {text:?}"));
    let v = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, head.to_lowercase(), v)
}

/// The answers actix-http's parser gives by itself are JSON like every other error, with a
/// request id; the connection carries on being usable for well-formed requests afterwards.
#[actix_web::test]
async fn malformed_requests_and_oversized_heads_get_json_400_and_431() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (b"G\x00T / HTTP/1.1\r\n\r\n".to_vec(), 400, "bad_request"),
        (
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(200 * 1024)
            )
            .into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            {
                let mut r = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
                for i in 0..120 {
                    r.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
                }
                r.extend_from_slice(b"\r\n");
                r
            },
            431,
            "headers_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let (s, head, v) = raw_exchange(&app, request).await;
        assert_eq!(s, status, "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("x-request-id: "), "{head}");
        assert_eq!(v["code"], code, "{head} {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
    // Well-formed traffic is untouched, errors of the application included.
    let (s, head, v) = raw_exchange(
        &app,
        b"GET /no/such/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(s, 404, "{head}");
    assert_eq!(v["code"], "not_found");
    let (s, _) = app.get("/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
}
