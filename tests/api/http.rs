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
