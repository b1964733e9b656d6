//! Sessions (issue #13): access tokens stop at once on logout, password change and disabling
//! (re-enabling does not bring them back); the pages' refresh token is an HttpOnly cookie;
//! no auth answer may be cached.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp, DEMO_PASSWORD};
use crate::{both_backends, both_backends_with};

both_backends!(
    logout_stops_the_access_token_at_once,
    a_password_change_stops_the_access_token_at_once,
    disabling_stops_the_access_token_and_enabling_does_not_revive_it,
    auth_answers_are_never_cached,
    pages_keep_the_refresh_token_in_an_http_only_cookie,
);

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/v1/me", Some(token)).await.0
}

/// Signs out the session of the sign-in answer `v` (its refresh token).
async fn logout(app: &TestApp, v: &Value) {
    let (s, _) = app
        .post(
            "/api/v1/auth/logout",
            None,
            json!({"refresh_token": v["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

fn access(v: &Value) -> String {
    v["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

async fn logout_stops_the_access_token_at_once(app: TestApp) {
    let v = app.login_resident_full("13700000020").await;
    let token = access(&v);
    assert_eq!(me_status(&app, &token).await, StatusCode::OK);
    logout(&app, &v).await;
    // Not 15 minutes later: now.
    let (s, body) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_token");
    // Signing in again gives a working token.
    let again = app.login_resident("13700000020").await;
    assert_eq!(me_status(&app, &again).await, StatusCode::OK);
}

async fn a_password_change_stops_the_access_token_at_once(app: TestApp) {
    app.seed();
    let admin = app.login_staff("yc-admin").await;
    let staff = app.login_staff_full("yc-c1-p2").await;
    let token = access(&staff);
    let id = staff["user"]["id"].as_i64().expect("id");
    assert_eq!(me_status(&app, &token).await, StatusCode::OK);
    let (s, v) = app
        .patch(
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            json!({"password": "a-brand-new-pass"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(me_status(&app, &token).await, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "yc-c1-p2", "password": DEMO_PASSWORD}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "yc-c1-p2", "password": "a-brand-new-pass"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(me_status(&app, &access(&v)).await, StatusCode::OK);
    // The admin's own token was not touched.
    assert_eq!(me_status(&app, &admin).await, StatusCode::OK);
}

async fn disabling_stops_the_access_token_and_enabling_does_not_revive_it(app: TestApp) {
    app.seed();
    let admin = app.login_staff("yc-admin").await;
    let staff = app.login_staff_full("yc-c2-p2").await;
    let token = access(&staff);
    let id = staff["user"]["id"].as_i64().expect("id");
    for disabled in [true, false] {
        let (s, v) = app
            .patch(
                &format!("/api/v1/users/{id}"),
                Some(&admin),
                json!({"disabled": disabled}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // Enabled again, but the token from before stays dead.
    let (s, v) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "invalid_token");
    let (s, _) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": staff["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let fresh = app.login_staff("yc-c2-p2").await;
    assert_eq!(me_status(&app, &fresh).await, StatusCode::OK);
}

fn cache_control(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn auth_answers_are_never_cached(app: TestApp) {
    app.seed();
    let post = |path: &'static str, body: Value| {
        let app = &app;
        async move {
            app.client
                .post(format!("{}{path}", app.base))
                .json(&body)
                .send()
                .await
                .expect("request")
        }
    };
    let ok = post(
        "/api/v1/auth/login",
        json!({"username": "yc-admin", "password": DEMO_PASSWORD}),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(cache_control(&ok).as_deref(), Some("no-store"));
    let tokens: Value = ok.json().await.expect("json");
    let answers = [
        post(
            "/api/v1/auth/login",
            json!({"username": "yc-admin", "password": "wrong-password"}),
        )
        .await,
        post("/api/v1/auth/login", json!({"username": 1})).await,
        post("/api/v1/auth/otp", json!({"phone": "13700000030"})).await,
        post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await,
        post("/api/v1/auth/refresh", json!({"refresh_token": "nonsense"})).await,
        post("/api/v1/auth/logout", json!({"refresh_token": "nonsense"})).await,
    ];
    for r in &answers {
        assert_eq!(
            cache_control(r).as_deref(),
            Some("no-store"),
            "{} {}",
            r.url(),
            r.status()
        );
    }
}

/// The `Set-Cookie` of a response, asserting there is exactly one.
fn set_cookie(r: &reqwest::Response) -> String {
    let all: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].to_string()
}

/// `name=value` of a `Set-Cookie`, and its attributes.
fn split_cookie(c: &str) -> (String, Vec<String>) {
    let mut parts = c.split(';').map(|p| p.trim().to_string());
    let pair = parts.next().expect("pair");
    (pair, parts.collect())
}

async fn cookie_call(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base))
        .header("X-Auth-Cookie", "resident")
        .json(&body);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    req.send().await.expect("request")
}

/// A resident's sign-in as the resident page does it.
async fn cookie_login(app: &TestApp, phone: &str) -> reqwest::Response {
    let (s, _) = app
        .post("/api/v1/auth/otp", None, json!({"phone": phone}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let code = app.sms.last_code(phone).expect("code");
    let login = cookie_call(
        app,
        "/api/v1/auth/login",
        None,
        json!({"phone": phone, "code": code}),
    )
    .await;
    assert_eq!(login.status(), StatusCode::OK);
    login
}

async fn pages_keep_the_refresh_token_in_an_http_only_cookie(app: TestApp) {
    let phone = "13700000040";
    let login = cookie_login(&app, phone).await;
    let (pair, attrs) = split_cookie(&set_cookie(&login));
    assert!(pair.starts_with("huying_refresh_resident="), "{pair}");
    for want in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/v1/auth/",
        "Max-Age=2592000",
    ] {
        assert!(attrs.iter().any(|a| a == want), "{want} missing: {attrs:?}");
    }
    // `Secure` is left out only because public_url is http on a loopback address.
    assert!(!attrs.iter().any(|a| a == "Secure"), "{attrs:?}");
    let body: Value = login.json().await.expect("json");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let token = access(&body);
    assert_eq!(me_status(&app, &token).await, StatusCode::OK);

    // Refresh with the cookie: a new cookie, still nothing in the body.
    let refreshed = cookie_call(&app, "/api/v1/auth/refresh", Some(&pair), json!({})).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let (pair2, _) = split_cookie(&set_cookie(&refreshed));
    assert_ne!(pair, pair2);
    let body: Value = refreshed.json().await.expect("json");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let token2 = access(&body);
    // Without the cookie there is nothing to refresh with.
    let none = cookie_call(&app, "/api/v1/auth/refresh", None, json!({})).await;
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    // The old cookie again: reuse, the family is revoked.
    let reused = cookie_call(&app, "/api/v1/auth/refresh", Some(&pair), json!({})).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    let v: Value = reused.json().await.expect("json");
    assert_eq!(error_code(&v), "refresh_token_reused");

    // A new session, then logout with the cookie: the cookie is cleared and the access token
    // stops at once.
    app.advance(chrono::Duration::seconds(61));
    let login = cookie_login(&app, phone).await;
    let (pair, _) = split_cookie(&set_cookie(&login));
    let token3 = access(&login.json().await.expect("json"));
    assert_eq!(me_status(&app, &token3).await, StatusCode::OK);
    let out = cookie_call(&app, "/api/v1/auth/logout", Some(&pair), json!({})).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let (cleared, attrs) = split_cookie(&set_cookie(&out));
    assert_eq!(cleared, "huying_refresh_resident=");
    assert!(attrs.iter().any(|a| a == "Max-Age=0"), "{attrs:?}");
    assert_eq!(me_status(&app, &token3).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &token2).await, StatusCode::UNAUTHORIZED);
    let after = cookie_call(&app, "/api/v1/auth/refresh", Some(&pair), json!({})).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    // A page name that is not a plain word is refused.
    let bad = app
        .client
        .post(format!("{}/api/v1/auth/refresh", app.base))
        .header("X-Auth-Cookie", "a=b; Domain=evil")
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

fn public_https(s: &mut huying::config::Settings) {
    s.server.public_url = "https://huying.example.cn".into();
}

both_backends_with!(public_https; the_refresh_cookie_is_secure_when_served_over_https);

async fn the_refresh_cookie_is_secure_when_served_over_https(app: TestApp) {
    app.seed();
    let r = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("X-Auth-Cookie", "staff")
        .json(&json!({"username": "yc-admin", "password": DEMO_PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK);
    let (pair, attrs) = split_cookie(&set_cookie(&r));
    assert!(pair.starts_with("huying_refresh_staff="), "{pair}");
    assert!(attrs.iter().any(|a| a == "Secure"), "{attrs:?}");
    assert!(attrs.iter().any(|a| a == "HttpOnly"), "{attrs:?}");
}

/// Each instance keeps a signed-in user's account for a moment (no database read per request);
/// a logout on one instance must end that on the others through the database's change
/// notifications, not by the account simply growing old (`KEEP_ACCOUNT`).
#[actix_web::test]
async fn a_logout_stops_the_access_token_on_another_instance() {
    let Some(app) = TestApp::spawn(crate::helpers::Backend::Postgres).await else {
        return;
    };
    let second = app.spawn_second().await;
    let v = app.login_resident_full("13700000023").await;
    let token = access(&v);
    let me_on_second = || {
        app.client
            .get(format!("{}/api/v1/me", second.base))
            .bearer_auth(&token)
            .send()
    };
    // The second instance now keeps the account.
    assert_eq!(me_on_second().await.expect("me").status(), StatusCode::OK);
    let kept_at = std::time::Instant::now();
    logout(&app, &v).await;
    // Well before the kept account would grow old (it was read before `kept_at`).
    let soon = huying::auth::extractor::KEEP_ACCOUNT / 2;
    loop {
        let s = me_on_second().await.expect("me").status();
        if s == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(s, StatusCode::OK);
        assert!(
            kept_at.elapsed() < soon,
            "the other instance kept using the account after the logout"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(kept_at.elapsed() < soon);
}
