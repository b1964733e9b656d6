use base64::Engine;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{error_code, TestApp, JWT_SECRET};

both_backends!(
    health_and_readiness_answer,
    staff_sign_in_with_password_and_wrong_password_gives_no_hint,
    resident_signs_in_with_sms_code_and_first_login_creates_account,
    sixth_wrong_code_locks_the_code,
    expired_code_is_refused,
    codes_are_not_resent_within_a_minute,
    failed_gateway_answers_502_and_allows_immediate_retry,
    expired_tampered_and_alg_none_tokens_are_refused,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    logout_revokes_refresh_token,
    disabling_a_user_stops_its_tokens_at_once,
    me_shows_role_and_org_unit,
);

async fn health_and_readiness_answer(app: TestApp) {
    let (s, v) = app.get("/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    let (s, v) = app.get("/readyz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ready");
}

async fn staff_sign_in_with_password_and_wrong_password_gives_no_hint(app: TestApp) {
    app.seed();
    let v = app.login_staff_full("yc-c1-p1").await;
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 900);
    assert_eq!(v["user"]["role"], "compound_staff");
    assert!(v["refresh_token"].as_str().is_some_and(|t| t.len() >= 40));

    let (s1, wrong_pw) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "yc-c1-p1", "password": "not-the-password"}),
        )
        .await;
    let (s2, no_user) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "nobody-here", "password": "not-the-password"}),
        )
        .await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!(s2, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&wrong_pw), "invalid_credentials");
    // Same body whichever part was wrong.
    assert_eq!(wrong_pw, no_user);

    let (s, v) = app
        .post("/api/v1/auth/login", None, json!({"username": "yc-c1-p1"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "invalid_login_request");
}

async fn resident_signs_in_with_sms_code_and_first_login_creates_account(app: TestApp) {
    let phone = "13712345678";
    let (s, v) = app
        .post("/api/v1/auth/otp", None, json!({"phone": phone}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["expires_in"], 300);
    let msgs = app.sms.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0].authorization.as_deref(),
        Some("Bearer gateway-token")
    );
    assert_eq!(msgs[0].body["template"], "login_code");
    let code = app.sms.last_code(phone).expect("code");
    assert_eq!(code.len(), 6);
    assert!(msgs[0].body["text"].as_str().expect("text").contains(&code));

    let (s, v) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"phone": phone, "code": code}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["role"], "resident");
    assert_eq!(v["user"]["phone"], phone);
    let first_id = v["user"]["id"].clone();

    // A code works once.
    let (s, _) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"phone": phone, "code": code}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The second sign-in finds the same account.
    app.advance(Duration::seconds(61));
    let again = app.login_resident_full(phone).await;
    assert_eq!(again["user"]["id"], first_id);

    let (s, v) = app
        .post("/api/v1/auth/otp", None, json!({"phone": "12345"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "invalid_phone");
}

async fn sixth_wrong_code_locks_the_code(app: TestApp) {
    let phone = "13700000006";
    app.post("/api/v1/auth/otp", None, json!({"phone": phone}))
        .await;
    let code = app.sms.last_code(phone).expect("code");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for attempt in 1..=5 {
        let (s, v) = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"phone": phone, "code": wrong}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert_eq!(error_code(&v), "invalid_credentials");
    }
    let (s, v) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"phone": phone, "code": wrong}),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&v), "otp_locked");
    // Locked means locked: even the right code no longer works.
    let (s, v) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"phone": phone, "code": code}),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&v), "otp_locked");
    // A fresh code after the resend interval works.
    app.advance(Duration::seconds(61));
    app.login_resident(phone).await;
}

async fn expired_code_is_refused(app: TestApp) {
    let phone = "13700000007";
    app.post("/api/v1/auth/otp", None, json!({"phone": phone}))
        .await;
    let code = app.sms.last_code(phone).expect("code");
    app.advance(Duration::minutes(5) + Duration::seconds(1));
    let (s, v) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"phone": phone, "code": code}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "invalid_credentials");
}

async fn codes_are_not_resent_within_a_minute(app: TestApp) {
    let phone = "13700000008";
    let (s, _) = app
        .post("/api/v1/auth/otp", None, json!({"phone": phone}))
        .await;
    assert_eq!(s, StatusCode::OK);
    app.advance(Duration::seconds(30));
    let resp = app
        .client
        .post(format!("{}/api/v1/auth/otp", app.base))
        .json(&json!({"phone": phone}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "30");
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(error_code(&v), "otp_rate_limited");
    assert_eq!(app.sms.messages().len(), 1);
    app.advance(Duration::seconds(31));
    let (s, _) = app
        .post("/api/v1/auth/otp", None, json!({"phone": phone}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.sms.messages().len(), 2);
}

async fn failed_gateway_answers_502_and_allows_immediate_retry(app: TestApp) {
    let phone = "13700000009";
    app.sms
        .fail_with
        .store(500, std::sync::atomic::Ordering::SeqCst);
    let (s, v) = app
        .post("/api/v1/auth/otp", None, json!({"phone": phone}))
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert_eq!(error_code(&v), "upstream_unavailable");
    app.sms
        .fail_with
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let (s, _) = app
        .post("/api/v1/auth/otp", None, json!({"phone": phone}))
        .await;
    assert_eq!(s, StatusCode::OK, "no resend wait after a failed send");
}

fn forge(header: &str, claims: &serde_json::Value, key: Option<&[u8]>) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let head = b64(header.as_bytes());
    let body = b64(claims.to_string().as_bytes());
    let sig = match key {
        Some(k) => {
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(k).expect("key");
            mac.update(format!("{head}.{body}").as_bytes());
            b64(&mac.finalize().into_bytes())
        }
        None => String::new(),
    };
    format!("{head}.{body}.{sig}")
}

async fn expired_tampered_and_alg_none_tokens_are_refused(app: TestApp) {
    app.seed();
    let token = app.login_staff("yc-admin").await;
    let (s, _) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(s, StatusCode::OK);

    let (s, v) = app.get("/api/v1/me", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "unauthorized");

    // Tampered: change one character of the signature.
    let mut tampered = token.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (s, v) = app.get("/api/v1/me", Some(&tampered)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "invalid_token");

    let now = app.now().timestamp();
    let claims =
        json!({"sub": "1", "role": "admin", "iat": now, "exp": now + 600, "iss": "huying"});
    let none = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims, None);
    let (s, _) = app.get("/api/v1/me", Some(&none)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Properly signed with the right key works, which shows the forging helper is right.
    let good = forge(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims,
        Some(JWT_SECRET.as_bytes()),
    );
    let (s, _) = app.get("/api/v1/me", Some(&good)).await;
    assert_eq!(s, StatusCode::OK);
    let wrong_key = forge(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims,
        Some(b"some other secret of enough length!!"),
    );
    let (s, _) = app.get("/api/v1/me", Some(&wrong_key)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Expired after 15 minutes.
    app.advance(Duration::minutes(15) + Duration::seconds(1));
    let (s, v) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "invalid_token");
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(app: TestApp) {
    app.seed();
    let first = app.login_staff_full("yc-street").await;
    let r1 = first["refresh_token"].as_str().expect("r1").to_string();
    let (s, second) = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r1}))
        .await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let r2 = second["refresh_token"].as_str().expect("r2").to_string();
    assert_ne!(r1, r2);
    let (s, _) = app.get("/api/v1/me", second["access_token"].as_str()).await;
    assert_eq!(s, StatusCode::OK);

    // r1 comes back (stolen and replayed): refused, and the whole family dies, r2 included.
    let (s, v) = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r1}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "refresh_token_reused");
    let (s, _) = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r2}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Another sign-in is its own family and unaffected.
    let other = app.login_staff_full("yc-street").await;
    let (s, _) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": other["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, v) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": "garbage"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "invalid_refresh_token");
}

async fn logout_revokes_refresh_token(app: TestApp) {
    let v = app.login_resident_full("13700000010").await;
    let r = v["refresh_token"].clone();
    let (s, _) = app
        .post("/api/v1/auth/logout", None, json!({"refresh_token": r}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn disabling_a_user_stops_its_tokens_at_once(app: TestApp) {
    let seed = app.seed();
    let admin = app.login_staff("yc-admin").await;
    let staff = app.login_staff_full("yc-c2-p1").await;
    let token = staff["access_token"].as_str().expect("token");
    let id = staff["user"]["id"].as_i64().expect("id");
    let (s, _) = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(s, StatusCode::OK);

    let (s, v) = app
        .patch(
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["disabled"], true);

    let (s, v) = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "account_disabled");
    let (s, _) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": staff["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "yc-c2-p1", "password": crate::helpers::DEMO_PASSWORD}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, _) = app
        .patch(
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            json!({"disabled": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.login_staff("yc-c2-p1").await;
    assert!(seed["accounts"].as_array().is_some_and(|a| a.len() == 11));
}

async fn me_shows_role_and_org_unit(app: TestApp) {
    let seed = app.seed();
    let token = app.login_staff("yc-c1").await;
    let (s, v) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["role"], "community_staff");
    assert_eq!(v["org_unit"]["kind"], "community");
    assert_eq!(v["org_unit"]["id"], seed["communities"][0]["id"]);
    assert_eq!(v["org_unit"]["name"], "方园社区");
}
