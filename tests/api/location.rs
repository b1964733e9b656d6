//! Issue #15 point 5: a resident's location with its accuracy, and the optional map tile server
//! (`[map]`) that the pages learn from `GET /meta/map` and the CSP allows only when configured.

use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{error_code, Backend, TestApp};
use crate::tickets::world;
use crate::{both_backends, both_backends_with};

both_backends!(
    accuracy_is_stored_and_returned,
    bad_coordinates_or_accuracy_are_refused_and_nothing_is_stored,
);

pub const TILE_URL: &str = "https://tiles.example.cn/vec/{z}/{x}/{y}.png?tk=0123456789abcdef";

pub fn with_map(s: &mut huying::config::Settings) {
    s.map.tile_url = TILE_URL.into();
    s.map.attribution = "© 示例地图".into();
}

both_backends_with!(with_map; the_csp_allows_the_tile_host_when_configured);

async fn accuracy_is_stored_and_returned(app: TestApp) {
    let w = world(&app).await;
    let (s, v) = app
        .post(
            "/api/v1/tickets",
            Some(&w.resident),
            json!({"compound_id": w.compound, "category_id": w.category, "title": "井盖缺失",
                   "description": "路口井盖不见了",
                   "location": {"latitude": 23.1291, "longitude": 113.2644, "accuracy_m": 18.5}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().expect("id");
    for token in [w.resident.clone(), app.login_staff("yc-c1-p1").await] {
        let (s, t) = app
            .get(&format!("/api/v1/tickets/{id}"), Some(&token))
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["location"]["latitude"], 23.1291, "{t}");
        assert_eq!(t["location"]["longitude"], 113.2644, "{t}");
        assert_eq!(t["location"]["accuracy_m"], 18.5, "{t}");
        assert_eq!(t["location"]["text"], Value::Null, "{t}");
    }
    // Coordinates without accuracy (as before) still work; accuracy is then null.
    let (s, v) = app
        .post(
            "/api/v1/tickets",
            Some(&w.resident),
            json!({"compound_id": w.compound, "category_id": w.category, "title": "路灯",
                   "description": "路灯不亮", "location": {"text": "东门", "latitude": 23.0, "longitude": 113.0}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["location"]["accuracy_m"], Value::Null, "{v}");
    assert_eq!(v["location"]["text"], "东门", "{v}");
}

async fn bad_coordinates_or_accuracy_are_refused_and_nothing_is_stored(app: TestApp) {
    let w = world(&app).await;
    let at = |loc: Value| {
        json!({"compound_id": w.compound, "category_id": w.category, "title": "标题",
               "description": "描述", "location": loc})
    };
    let cases = [
        (
            json!({"latitude": 91.0, "longitude": 113.0}),
            "invalid_location",
        ),
        (
            json!({"latitude": 23.0, "longitude": -180.5}),
            "invalid_location",
        ),
        (json!({"latitude": 23.0}), "invalid_location"),
        (
            json!({"latitude": 23.0, "longitude": 113.0, "accuracy_m": 0}),
            "invalid_location",
        ),
        (
            json!({"latitude": 23.0, "longitude": 113.0, "accuracy_m": -5}),
            "invalid_location",
        ),
        (
            json!({"latitude": 23.0, "longitude": 113.0, "accuracy_m": 100000.5}),
            "invalid_location",
        ),
        (json!({"accuracy_m": 10}), "invalid_location"),
        (
            json!({"latitude": 23.0, "longitude": 113.0, "accuracy_m": "10"}),
            "invalid_json",
        ),
        (
            json!({"latitude": 23.0, "longitude": 113.0, "altitude": 5}),
            "invalid_json",
        ),
    ];
    for (loc, code) in cases {
        let (s, v) = app
            .post("/api/v1/tickets", Some(&w.resident), at(loc.clone()))
            .await;
        assert!(s.is_client_error(), "{loc} → {s} {v}");
        if code == "invalid_location" {
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{loc} → {v}");
        }
        assert_eq!(error_code(&v), code, "{loc}");
    }
    // JSON has no NaN or infinity; a number too big for f64 is refused as JSON.
    let res = app
        .client
        .post(format!("{}/api/v1/tickets", app.base))
        .bearer_auth(&w.resident)
        .header(header::CONTENT_TYPE, "application/json")
        .body(format!(
            r#"{{"compound_id":{},"category_id":{},"title":"t","description":"d","location":{{"latitude":23,"longitude":113,"accuracy_m":1e999}}}}"#,
            w.compound, w.category
        ))
        .send()
        .await
        .expect("send");
    assert!(res.status().is_client_error(), "{}", res.status());
    // The boundary itself is accepted.
    let (s, v) = app
        .post(
            "/api/v1/tickets",
            Some(&w.resident),
            at(json!({"latitude": -90.0, "longitude": 180.0, "accuracy_m": 100000})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, list) = app.get("/api/v1/tickets", Some(&w.resident)).await;
    assert_eq!(list["total"], 1, "only the good one stored: {list}");
}

async fn page_csp(app: &TestApp, path: &str) -> String {
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp")
        .to_string()
}

fn img_src(csp: &str) -> String {
    csp.split(';')
        .map(str::trim)
        .find(|d| d.starts_with("img-src"))
        .expect("img-src")
        .to_string()
}

#[actix_web::test]
async fn without_a_tile_server_the_pages_allow_no_outside_host() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    for path in ["/", "/staff/", "/dashboard/"] {
        let csp = page_csp(&app, path).await;
        assert_eq!(img_src(&csp), "img-src 'self' blob: data:", "{path}: {csp}");
        assert!(!csp.contains("https://"), "{path}: {csp}");
    }
    let (s, v) = app.get("/api/v1/meta/map", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"tile_url": null, "attribution": null}));
}

async fn the_csp_allows_the_tile_host_when_configured(app: TestApp) {
    for path in ["/", "/staff/"] {
        let csp = page_csp(&app, path).await;
        assert_eq!(
            img_src(&csp),
            "img-src 'self' blob: data: https://tiles.example.cn",
            "{path}: {csp}"
        );
        assert!(csp.contains("connect-src 'self';"), "{csp}");
    }
    let (s, v) = app.get("/api/v1/meta/map", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"tile_url": TILE_URL, "attribution": "© 示例地图"})
    );
}
