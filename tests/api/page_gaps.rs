//! Smaller gaps the pages needed (issue #15, point 6): colleagues for the assign dialog, the
//! auto-close time of a resolved ticket, and the 即将超时 filter in working time.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, TestApp};
use crate::tickets::{act, create, world};

both_backends!(
    staff_list_the_colleagues_of_their_own_unit_only,
    a_resolved_ticket_says_when_it_completes_by_itself,
);

fn account_unit(seed: &Value, username: &str) -> i64 {
    seed["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["username"] == username)
        .and_then(|a| a["org_unit_id"].as_i64())
        .expect("unit")
}

async fn staff_list_the_colleagues_of_their_own_unit_only(app: TestApp) {
    let w = world(&app).await;
    let unit = account_unit(&w.seed, "yc-c1-p1");
    let other = account_unit(&w.seed, "yc-c1-p2");
    assert_ne!(unit, other);
    let admin = app.login_staff("yc-admin").await;
    for (username, name, disabled) in [("yc-c1-p1-b", "王二", false), ("yc-c1-p1-x", "赵停", true)]
    {
        let (s, v) = app
            .post(
                "/api/v1/users",
                Some(&admin),
                json!({"role": "compound_staff", "username": username, "password": "colleague-pass-1",
                       "display_name": name, "phone": "13911112222", "org_unit_id": unit}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        if disabled {
            let id = v["id"].as_i64().expect("id");
            let (s, v) = app
                .patch(
                    &format!("/api/v1/users/{id}"),
                    Some(&admin),
                    json!({"disabled": true}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }
    let compound = app.login_staff("yc-c1-p1").await;
    let (s, v) = app
        .get(&format!("/api/v1/org/units/{unit}/staff"), Some(&compound))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let list = v.as_array().expect("list");
    let names: Vec<&str> = list
        .iter()
        .filter_map(|c| c["display_name"].as_str())
        .collect();
    assert_eq!(list.len(), 2, "{v}");
    assert!(names.contains(&"王二"), "{v}");
    assert!(
        !names.contains(&"赵停"),
        "a disabled account is no colleague: {v}"
    );
    for c in list {
        let keys: Vec<&String> = c.as_object().expect("obj").keys().collect();
        assert_eq!(keys.len(), 2, "only id and name: {c}");
        assert!(c["id"].is_i64() && c.get("phone").is_none(), "{c}");
    }
    assert!(!v.to_string().contains("1391111"), "no phone: {v}");

    // Another unit: refused, for staff of another compound and for the community above.
    let (s, v) = app
        .get(&format!("/api/v1/org/units/{other}/staff"), Some(&compound))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(error_code(&v), "forbidden");
    let community = app.login_staff("yc-c1").await;
    let (s, _) = app
        .get(&format!("/api/v1/org/units/{unit}/staff"), Some(&community))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Residents: refused; signed out: 401.
    let (s, _) = app
        .get(
            &format!("/api/v1/org/units/{unit}/staff"),
            Some(&w.resident),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .get(&format!("/api/v1/org/units/{unit}/staff"), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Admins: any unit; an unknown one is 404.
    let (s, v) = app
        .get(&format!("/api/v1/org/units/{other}/staff"), Some(&admin))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    let (s, _) = app
        .get("/api/v1/org/units/999999/staff", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

async fn a_resolved_ticket_says_when_it_completes_by_itself(app: TestApp) {
    let w = world(&app).await;
    let t = create(&app, &w, "楼道灯不亮").await;
    let id = t["id"].as_i64().expect("id");
    assert!(t["auto_close_at"].is_null(), "{t}");
    let compound = app.login_staff("yc-c1-p1").await;
    let (s, v) = act(&app, &compound, id, "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["ticket"]["auto_close_at"].is_null(), "{v}");
    let (s, v) = act(&app, &compound, id, "resolve", json!({"note": "已修好"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ticket"]["status"], "resolved");
    let resolved_at = ts(&v["ticket"]["resolved_at"]);
    assert_eq!(
        ts(&v["ticket"]["auto_close_at"]),
        resolved_at + Duration::days(7)
    );
    // The resident sees it too, and in the list.
    let (s, v) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&w.resident))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ts(&v["auto_close_at"]), resolved_at + Duration::days(7));
    let (_, v) = app.get("/api/v1/tickets", Some(&w.resident)).await;
    assert_eq!(
        ts(&v["items"][0]["auto_close_at"]),
        resolved_at + Duration::days(7)
    );
    // Confirmed: no longer resolved, so no auto-close time.
    let (s, v) = act(&app, &w.resident, id, "confirm", json!({"rating": 5})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ticket"]["status"], "closed");
    assert!(v["ticket"]["auto_close_at"].is_null(), "{v}");
}
