//! Smaller gaps the pages needed (issue #15, point 6): colleagues for the assign dialog, the
//! auto-close time of a resolved ticket, and the 即将超时 filter in working time.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, local, TestApp};
use crate::tickets::{act, create, world};

both_backends!(
    staff_list_the_colleagues_of_their_own_unit_only,
    a_resolved_ticket_says_when_it_completes_by_itself,
    due_soon_means_past_the_warning_point_in_working_time,
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

/// The ids of the 即将超时 tickets `username` sees at `at` (signed in afresh: access tokens
/// last 15 minutes of the test clock).
async fn due_soon(app: &TestApp, username: &str, at: DateTime<Utc>) -> Vec<i64> {
    app.clock.set(at);
    let token = app.login_staff(username).await;
    app.clock.set(at);
    let (s, v) = app.get("/api/v1/tickets?due_soon=true", Some(&token)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut ids: Vec<i64> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["id"].as_i64())
        .collect();
    ids.sort_unstable();
    ids
}

async fn due_soon_means_past_the_warning_point_in_working_time(app: TestApp) {
    // Monday 2026-11-30; working hours 08:30–12:00 and 14:00–17:30.
    app.clock.set(local(2026, 11, 30, 9, 0));
    let w = world(&app).await;
    app.clock.set(local(2026, 11, 30, 9, 0));
    let a = create(&app, &w, "楼道灯不亮").await;
    assert_eq!(ts(&a["ack_due_at"]), local(2026, 11, 30, 15, 0), "{a}");
    app.clock.set(local(2026, 11, 30, 10, 0));
    let w = world_again(&app, w).await;
    app.clock.set(local(2026, 11, 30, 10, 0));
    let b = create(&app, &w, "垃圾没人清").await;
    assert_eq!(ts(&b["ack_due_at"]), local(2026, 11, 30, 16, 0), "{b}");
    let (a, b) = (a["id"].as_i64().expect("id"), b["id"].as_i64().expect("id"));
    let compound = "yc-c1-p1";

    // 11:00: two working hours left on A (one before lunch, one after): not yet near.
    assert_eq!(
        due_soon(&app, compound, local(2026, 11, 30, 11, 0)).await,
        Vec::<i64>::new()
    );
    // 14:30: A has half a working hour left, B one and a half; the wall-clock two hours would
    // have listed both.
    assert_eq!(
        due_soon(&app, compound, local(2026, 11, 30, 14, 30)).await,
        vec![a]
    );
    let before = (local(2026, 11, 30, 16, 30)).to_rfc3339();
    let token = app.login_staff(compound).await;
    // Each ticket says when it becomes near (the staff page's red countdown): A is past its
    // warning point (14:00), B reaches it at 15:00, half an hour from now.
    let soon_in = |v: &Value| {
        v["due_soon_in_seconds"]
            .as_i64()
            .expect("due_soon_in_seconds")
    };
    let (_, va) = app.get(&format!("/api/v1/tickets/{a}"), Some(&token)).await;
    let (_, vb) = app.get(&format!("/api/v1/tickets/{b}"), Some(&token)).await;
    assert!(soon_in(&va) <= 0, "{va}");
    assert!((1700..=1800).contains(&soon_in(&vb)), "{vb}");
    let (_, v) = app
        .get(
            &format!("/api/v1/tickets?due_before={}", before.replace('+', "%2B")),
            Some(&token),
        )
        .await;
    assert_eq!(v["total"], 2, "{v}");
    // The sweeper's warning does not take A off the list.
    {
        let db = huying::db::Db::connect(&app.settings).expect("db");
        let mut conn = db.get().expect("conn");
        let sla = huying::service::sla::SlaEngine::from_settings(&app.settings.sla).expect("sla");
        sla.reload(&mut conn).expect("reload");
        let r = huying::service::sweeper::sweep_once(
            &mut conn,
            &sla,
            local(2026, 11, 30, 14, 30),
            1000,
        )
        .expect("sweep");
        assert_eq!(r.warned, 1, "{r:?}");
    }
    assert_eq!(
        due_soon(&app, compound, local(2026, 11, 30, 14, 40)).await,
        vec![a]
    );
    // Answered: the settle clock has days left.
    let token = app.login_staff(compound).await;
    let (s, v) = act(&app, &token, a, "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // 15:30: B has half an hour left; 16:30: B is past its deadline, overdue rather than near.
    assert_eq!(
        due_soon(&app, compound, local(2026, 11, 30, 15, 30)).await,
        vec![b]
    );
    assert_eq!(
        due_soon(&app, compound, local(2026, 11, 30, 16, 30)).await,
        Vec::<i64>::new()
    );
    // Another compound's staff do not see them at all.
    assert_eq!(
        due_soon(&app, "yc-c1-p2", local(2026, 11, 30, 15, 30)).await,
        Vec::<i64>::new()
    );
}

/// The same world with the resident signed in again at the clock's current time.
async fn world_again(app: &TestApp, w: crate::tickets::World) -> crate::tickets::World {
    crate::tickets::World {
        resident: app.login_resident("13800000001").await,
        ..w
    }
}
