//! Abuse limits (issue #13): each answers 429 `{code, message}` with `Retry-After` and lets the
//! client in again once its window has passed. Limits counted in the database follow the test
//! clock; per-address limits (in memory, real time) get windows of a few seconds here.

use std::time::Duration as StdDuration;

use chrono::Duration;
use huying::config::Settings;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends_with;
use crate::helpers::{error_code, TestApp, DEMO_PASSWORD};
use crate::tickets::{create, world};

/// The `Retry-After` of a response, asserting it is there and positive.
fn retry_after(r: &reqwest::Response) -> u64 {
    let secs: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(secs >= 1);
    secs
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = app.client.post(format!("{}{path}", app.base)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request")
}

/// Asserts a 429 with `code` and returns its `Retry-After`.
async fn assert_limited(r: reqwest::Response, code: &str) -> u64 {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let secs = retry_after(&r);
    let v: Value = r.json().await.expect("json");
    assert_eq!(error_code(&v), code, "{v}");
    secs
}

async fn otp(app: &TestApp, phone: &str) -> reqwest::Response {
    post_raw(app, "/api/v1/auth/otp", None, json!({"phone": phone})).await
}

async fn wrong_password(app: &TestApp, username: &str) -> reqwest::Response {
    post_raw(
        app,
        "/api/v1/auth/login",
        None,
        json!({"username": username, "password": "not-the-password"}),
    )
    .await
}

// ---- Password hashing: a fixed pool with a bounded queue.

fn tiny_hash_pool(s: &mut Settings) {
    s.limits.password_hash_workers = 1;
    s.limits.password_hash_queue = 1;
}

both_backends_with!(tiny_hash_pool; parallel_wrong_passwords_beyond_the_queue_get_busy);

async fn parallel_wrong_passwords_beyond_the_queue_get_busy(app: TestApp) {
    app.seed();
    // Unknown names: each costs a full hash and locks no account.
    let attempts = (0..48).map(|i| {
        let app = &app;
        async move { wrong_password(app, &format!("nobody-{i}")).await }
    });
    let answers = futures::future::join_all(attempts).await;
    let mut busy = 0;
    for r in answers {
        match r.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                retry_after(&r);
                let v: Value = r.json().await.expect("json");
                assert_eq!(error_code(&v), "busy");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        busy > 0,
        "48 parallel checks on 1 thread + 1 queue slot: some must be busy"
    );
    // Once the flood is over, sign-in works.
    app.login_staff("yc-admin").await;
}

// ---- Sign-in codes: per phone and the SMS budget (database), per address (memory).

fn small_otp_limits(s: &mut Settings) {
    s.limits.otp_per_phone_per_hour = 2;
    s.limits.otp_per_phone_per_day = 3;
    s.limits.sms_per_hour = 4;
}

both_backends_with!(small_otp_limits; codes_per_phone_and_the_sms_budget_are_limited_and_reset);

async fn codes_per_phone_and_the_sms_budget_are_limited_and_reset(app: TestApp) {
    let phone = "13700000001";
    let next = || app.advance(Duration::seconds(61));
    assert_eq!(otp(&app, phone).await.status(), StatusCode::OK);
    next();
    assert_eq!(otp(&app, phone).await.status(), StatusCode::OK);
    next();
    let wait = assert_limited(otp(&app, phone).await, "otp_phone_limited").await;
    assert!(wait > 3400 && wait <= 3600, "{wait}");
    // Refused codes are neither sent nor counted.
    assert_eq!(app.sms.messages().len(), 2);
    app.advance(Duration::seconds(wait as i64));
    assert_eq!(otp(&app, phone).await.status(), StatusCode::OK);
    next();
    // Three today: the day's limit, though the hour has room.
    assert_limited(otp(&app, phone).await, "otp_phone_limited").await;
    app.advance(Duration::days(1));
    assert_eq!(otp(&app, phone).await.status(), StatusCode::OK);

    // The budget of all phones: 4 an hour.
    app.advance(Duration::hours(1));
    for p in ["13700000002", "13700000003", "13700000004", "13700000005"] {
        assert_eq!(otp(&app, p).await.status(), StatusCode::OK, "{p}");
    }
    let wait = assert_limited(otp(&app, "13700000006").await, "sms_budget_exhausted").await;
    app.advance(Duration::seconds(wait as i64));
    assert_eq!(otp(&app, "13700000006").await.status(), StatusCode::OK);
}

fn small_address_limits(s: &mut Settings) {
    s.limits.address_hour_secs = 2;
    s.limits.otp_per_address_per_hour = 2;
    s.limits.login_per_address_per_hour = 2;
}

both_backends_with!(small_address_limits; codes_and_password_attempts_per_address_are_limited_and_reset);

async fn codes_and_password_attempts_per_address_are_limited_and_reset(app: TestApp) {
    app.seed();
    assert_eq!(otp(&app, "13700000011").await.status(), StatusCode::OK);
    assert_eq!(otp(&app, "13700000012").await.status(), StatusCode::OK);
    let wait = assert_limited(otp(&app, "13700000013").await, "otp_address_limited").await;
    assert!(wait <= 2, "{wait}");
    assert_eq!(app.sms.messages().len(), 2);

    assert_eq!(
        wrong_password(&app, "nobody").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        wrong_password(&app, "nobody").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let wait = assert_limited(
        wrong_password(&app, "nobody").await,
        "login_address_limited",
    )
    .await;

    // These windows are real time.
    actix_web::rt::time::sleep(StdDuration::from_secs(wait.max(1))).await;
    assert_eq!(otp(&app, "13700000013").await.status(), StatusCode::OK);
    assert_eq!(
        wrong_password(&app, "nobody").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

fn behind_a_proxy(s: &mut Settings) {
    s.limits.login_per_address_per_hour = 1;
    s.server.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
}

both_backends_with!(behind_a_proxy; behind_a_trusted_proxy_each_client_address_has_its_own_limit);

async fn behind_a_trusted_proxy_each_client_address_has_its_own_limit(app: TestApp) {
    let from = |client: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(format!("{}/api/v1/auth/login", app.base))
                // The client wrote the first entry itself; the proxy appended the real one.
                .header("X-Forwarded-For", format!("203.0.113.66, {client}"))
                .json(&json!({"username": "nobody", "password": "not-the-password"}))
                .send()
                .await
                .expect("login")
        }
    };
    assert_eq!(
        from("198.51.100.1").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_limited(from("198.51.100.1").await, "login_address_limited").await;
    assert_eq!(
        from("198.51.100.2").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

// ---- Wrong passwords lock the account, longer each time; an admin unlocks.

fn small_lockout(s: &mut Settings) {
    s.limits.password_max_failures = 3;
    s.limits.lockout_base_secs = 60;
    s.limits.lockout_max_secs = 100;
}

both_backends_with!(small_lockout; wrong_passwords_lock_the_account_longer_each_time_and_an_admin_unlocks);

async fn wrong_passwords_lock_the_account_longer_each_time_and_an_admin_unlocks(app: TestApp) {
    let seed = app.seed();
    let user = "yc-c1-p1";
    let account = seed["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["username"] == user))
        .expect("account")
        .clone();
    let phone = account["phone"].as_str().expect("phone");
    let right = || {
        post_raw(
            &app,
            "/api/v1/auth/login",
            None,
            json!({"username": user, "password": DEMO_PASSWORD}),
        )
    };

    for _ in 0..2 {
        assert_eq!(
            wrong_password(&app, user).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        assert_limited(wrong_password(&app, user).await, "account_locked").await,
        60
    );
    // The holder is told by SMS.
    let texts: Vec<Value> = app
        .sms
        .messages()
        .into_iter()
        .filter(|m| m.body["phone"] == phone)
        .map(|m| m.body)
        .collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0]["template"], "account_locked");
    assert!(texts[0]["text"]
        .as_str()
        .is_some_and(|t| t.contains("锁定")));
    // Locked: even the right password waits.
    assert_limited(right().await, "account_locked").await;

    // The second lockout is twice as long, within the maximum (100 s).
    app.advance(Duration::seconds(61));
    for _ in 0..2 {
        assert_eq!(
            wrong_password(&app, user).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        assert_limited(wrong_password(&app, user).await, "account_locked").await,
        100
    );

    // The admin sees the lock and lifts it.
    let admin = app.login_staff("yc-admin").await;
    let id = account["id"].as_i64().expect("id");
    let (s, v) = app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["locked_until"].is_string(), "{v}");
    let (s, v) = app
        .post(
            &format!("/api/v1/users/{id}/unlock"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["locked_until"].is_null(), "{v}");
    assert_eq!(right().await.status(), StatusCode::OK);
    // Only admins unlock.
    let staff = app.login_staff("yc-c1").await;
    let (s, _) = app
        .post(
            &format!("/api/v1/users/{id}/unlock"),
            Some(&staff),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // After the unlock (and a sign-in) the next lockout is the first, short one again.
    for _ in 0..2 {
        assert_eq!(
            wrong_password(&app, user).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        assert_limited(wrong_password(&app, user).await, "account_locked").await,
        60
    );
    app.advance(Duration::seconds(61));
    assert_eq!(right().await.status(), StatusCode::OK);
}

// ---- Tickets per resident per day, uploads per ticket per hour (database).

fn small_ticket_limits(s: &mut Settings) {
    s.limits.tickets_per_resident_per_day = 2;
    s.limits.uploads_per_ticket_per_hour = 2;
}

both_backends_with!(small_ticket_limits; tickets_per_resident_and_uploads_per_ticket_are_limited_and_reset);

async fn tickets_per_resident_and_uploads_per_ticket_are_limited_and_reset(app: TestApp) {
    let w = world(&app).await;
    let body = json!({"compound_id": w.compound, "category_id": w.category, "title": "楼道灯坏了", "description": "楼道灯坏了一周，晚上很黑"});
    let with_key = || {
        app.client
            .post(format!("{}/api/v1/tickets", app.base))
            .bearer_auth(&w.resident)
            .header("Idempotency-Key", "first-call")
            .json(&body)
            .send()
    };
    assert_eq!(
        with_key().await.expect("create").status(),
        StatusCode::CREATED
    );
    let id = create(&app, &w, "第二条").await["id"].as_i64().expect("id");
    let wait = assert_limited(
        post_raw(&app, "/api/v1/tickets", Some(&w.resident), body.clone()).await,
        "ticket_rate_limited",
    )
    .await;
    assert!(wait > 86000 && wait <= 86400, "{wait}");
    // A retried request (same Idempotency-Key) is not a new ticket: it still gets its answer.
    let replay = with_key().await.expect("replay");
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(
        replay
            .headers()
            .get("Idempotent-Replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );

    // Uploads: every attempt counts, refused ones too, before the body is read.
    let upload = |token: String| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"GIF89a not an allowed image".to_vec())
                .file_name("x.gif"),
        );
        app.client
            .post(format!("{}/api/v1/tickets/{id}/attachments", app.base))
            .bearer_auth(token)
            .multipart(form)
            .send()
    };
    for _ in 0..2 {
        let r = upload(w.resident.clone()).await.expect("upload");
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = upload(w.resident.clone()).await.expect("upload");
    let wait = assert_limited(r, "upload_rate_limited").await;
    assert!(wait > 3500 && wait <= 3600, "{wait}");
    app.advance(Duration::hours(1));
    // The access token of an hour ago has expired.
    let resident = app.login_resident("13800000001").await;
    let r = upload(resident.clone()).await.expect("upload");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    app.advance(Duration::days(1));
    let w = crate::tickets::World {
        resident: app.login_resident("13800000001").await,
        ..w
    };
    create(&app, &w, "第二天").await;
}
