//! Clean text at the boundary: NUL, control characters and bidi controls in any text a client
//! sends answer 422 `invalid_text` (never a 500, which PostgreSQL gave for NUL) and store
//! nothing; texts are NFC and a title must show something.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, TestApp};
use crate::tickets::{create, world};

both_backends!(
    control_bytes_in_every_text_field_are_refused_and_nothing_is_stored,
    control_bytes_in_queries_paths_and_sign_in_are_never_a_500,
    titles_must_show_something_and_texts_are_nfc,
);

/// What a hostile client puts in a text: NUL, an escape sequence, a bidi override, a bidi isolate.
const BAD: [&str; 4] = [
    "漏\u{0}水",
    "漏\u{1b}[2J水",
    "\u{202E}水漏",
    "漏\u{2067}水\u{2069}",
];

fn refused(what: &str, s: StatusCode, v: &Value) {
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {v}");
    assert_eq!(error_code(v), "invalid_text", "{what}: {v}");
}

async fn control_bytes_in_every_text_field_are_refused_and_nothing_is_stored(app: TestApp) {
    let w = world(&app).await;
    let good = json!({"compound_id": w.compound, "category_id": w.category, "title": "标题",
        "description": "描述", "location": {"text": "3 号楼"}});
    for bad in BAD {
        for (field, body) in [
            ("title", json!({"title": bad})),
            ("description", json!({"description": bad})),
            ("location.text", json!({"location": {"text": bad}})),
        ] {
            let mut b = good.clone();
            b.as_object_mut()
                .expect("object")
                .extend(body.as_object().expect("object").clone());
            let (s, v) = app.post("/api/v1/tickets", Some(&w.resident), b).await;
            refused(&format!("{field} = {bad:?}"), s, &v);
        }
    }
    // A newline is fine in a description but not in a title.
    let mut b = good.clone();
    b["title"] = json!("两行\n标题");
    let (s, v) = app.post("/api/v1/tickets", Some(&w.resident), b).await;
    refused("title with a newline", s, &v);
    let (_, list) = app.get("/api/v1/tickets", Some(&w.resident)).await;
    assert_eq!(list["total"], 0, "nothing stored: {list}");

    let id = create(&app, &w, "楼道灯不亮").await["id"]
        .as_i64()
        .expect("id");
    let staff = app.login_staff("yc-c1-p1").await;
    let (_, before) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&staff))
        .await;
    for bad in BAD {
        for (token, action, body) in [
            (&staff, "comment", json!({"note": bad})),
            (&staff, "comment", json!({"note": bad, "internal": true})),
            (&staff, "assign", json!({"handler": bad})),
            (&staff, "decline", json!({"reason": bad})),
            (&staff, "resolve", json!({"note": bad})),
            (&staff, "escalate", json!({"reason": "other", "note": bad})),
            (&w.resident, "comment", json!({"comment": bad})),
            (&w.resident, "withdraw", json!({"note": bad})),
        ] {
            let (s, v) = app
                .post(&format!("/api/v1/tickets/{id}/{action}"), Some(token), body)
                .await;
            refused(&format!("{action} {bad:?}"), s, &v);
        }
    }
    let (_, after) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&staff))
        .await;
    assert_eq!(before, after, "no event stored");

    let admin = app.login_staff("yc-admin").await;
    let street = w.seed["street"]["id"].as_i64().expect("street");
    for bad in BAD {
        let cases: Vec<(Method, String, Value)> = vec![
            (
                Method::POST,
                "/api/v1/users".into(),
                json!({"role": "admin", "username": "new-admin", "password": "a-long-password", "display_name": bad}),
            ),
            (
                Method::POST,
                "/api/v1/users".into(),
                json!({"role": "admin", "username": format!("new{bad}"), "password": "a-long-password", "display_name": "新管理员"}),
            ),
            (
                Method::POST,
                "/api/v1/users".into(),
                json!({"role": "admin", "username": "new-admin", "password": "a-long-password", "display_name": "新管理员", "email": format!("a{bad}@b.cn")}),
            ),
            (
                Method::POST,
                "/api/v1/org/communities".into(),
                json!({"name": bad, "parent_id": street}),
            ),
            (
                Method::POST,
                "/api/v1/categories".into(),
                json!({"code": "new_cat", "name": bad}),
            ),
            (
                Method::PUT,
                format!("/api/v1/org/units/{street}/webhook"),
                json!({"url": format!("https://robot.example.cn/send?key=a{bad}")}),
            ),
            (
                Method::PUT,
                "/api/v1/me/notification-settings".into(),
                json!({"sms": true, "inapp": true, "email": true, "email_address": format!("a{bad}@b.cn")}),
            ),
        ];
        for (method, path, body) in cases {
            let (s, v) = app
                .request(method.clone(), &path, Some(&admin), Some(&body))
                .await;
            refused(&format!("{method} {path} {body}"), s, &v);
        }
    }
    let (_, users) = app.get("/api/v1/users?q=new", Some(&admin)).await;
    assert_eq!(users["items"].as_array().map(Vec::len), Some(0), "{users}");
    let (_, tree) = app.get("/api/v1/org/tree", None).await;
    assert_eq!(
        tree[0]["children"].as_array().map(Vec::len),
        Some(3),
        "no community added: {tree}"
    );
}

async fn control_bytes_in_queries_paths_and_sign_in_are_never_a_500(app: TestApp) {
    let w = world(&app).await;
    let admin = app.login_staff("yc-admin").await;
    for path in [
        "/api/v1/tickets?q=%00",
        "/api/v1/tickets?q=a%1Bb",
        "/api/v1/tickets?q=%E2%80%AE",
        "/api/v1/users?q=%00",
    ] {
        let (s, v) = app.get(path, Some(&admin)).await;
        refused(path, s, &v);
    }
    let (s, v) = app.get("/api/v1/tickets?q=%00", Some(&w.resident)).await;
    refused("resident ?q=%00", s, &v);
    for path in [
        "/api/v1/tickets/%00",
        "/api/v1/tickets/1/%00",
        "/api/v1/org/%00",
        "/api/v1/calendars/%00",
        "/static/%00",
        "/api/v1/%00",
    ] {
        let (s, v) = app.get(path, Some(&admin)).await;
        assert!(s.is_client_error(), "{path}: {s} {v}");
        assert!(v["code"].is_string(), "{path}: {v}");
    }
    let (s, v) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "yc\u{0}admin", "password": "demo-pass-123"}),
        )
        .await;
    refused("NUL in a username at sign-in", s, &v);
    let (s, v) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "yc-admin\u{0}", "password": "wrong\u{0}"}),
        )
        .await;
    refused("NUL in both", s, &v);
    for body in [
        json!({"phone": "1380000\u{0}0001"}),
        json!({"phone": "13800000001", "code": "12\u{0}456"}),
        json!({"refresh_token": "a\u{0}b"}),
    ] {
        let path = if body.get("refresh_token").is_some() {
            "/api/v1/auth/refresh"
        } else if body.get("code").is_some() {
            "/api/v1/auth/login"
        } else {
            "/api/v1/auth/otp"
        };
        let (s, v) = app.post(path, None, body.clone()).await;
        assert!(s.is_client_error(), "{path} {body}: {s} {v}");
        assert!(v["code"].is_string(), "{v}");
    }
    // A NUL in a field name is an unknown field, not a crash.
    let (s, v) = app
        .post("/api/v1/auth/login", None, json!({"user\u{0}name": "x"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

async fn titles_must_show_something_and_texts_are_nfc(app: TestApp) {
    let w = world(&app).await;
    for title in [
        "\u{200B}\u{200B}\u{200B}",
        "\u{200D}\u{FEFF}\u{2060}",
        "\u{3000}\u{200B}",
        "\u{180E}\u{FE0F}",
    ] {
        let (s, v) = app
            .post(
                "/api/v1/tickets",
                Some(&w.resident),
                json!({"compound_id": w.compound, "category_id": w.category, "title": title, "description": "描述"}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{title:?}: {v}");
        assert!(
            matches!(error_code(&v), "invalid_text" | "missing_field"),
            "{title:?}: {v}"
        );
    }
    // "Café" typed with a combining accent is stored precomposed, and trimmed.
    let t = create(&app, &w, "  Cafe\u{301} 门口漏水 ").await;
    assert_eq!(t["title"], "Caf\u{e9} 门口漏水");
    let (_, found) = app
        .get("/api/v1/tickets?q=Caf%C3%A9", Some(&w.resident))
        .await;
    assert_eq!(found["total"], 1, "{found}");
}
