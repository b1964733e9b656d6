use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, TestApp};
use crate::uploads::{assert_stored_files, pixels, png};

both_backends!(
    the_whole_chain_from_resident_to_street_and_back_is_told_by_the_timeline,
    first_dispute_reopens_and_second_calls_up,
    a_disputed_decline_goes_up_a_level,
    authorization_table_every_role_every_action,
    parallel_acknowledgements_let_exactly_one_win,
    the_same_idempotency_key_creates_one_ticket,
    bad_input_is_refused_and_nothing_is_stored,
    residents_see_only_their_own_tickets_and_never_internal_notes,
    queues_filter_sort_and_page_with_a_total,
    return_goes_down_once_per_level,
    photos_are_checked_by_content_and_limited,
    staff_see_masked_phones_and_revealing_is_recorded,
    a_call_is_shown_with_its_place_and_an_archived_compound_takes_none,
);

pub struct World {
    pub seed: Value,
    pub resident: String,
    pub compound: i64,
    pub category: i64,
}

pub async fn world(app: &TestApp) -> World {
    let seed = app.seed();
    let resident = app.login_resident("13800000001").await;
    World {
        compound: seed["compounds"][0]["id"].as_i64().expect("compound"),
        category: seed["categories"][0]["id"].as_i64().expect("category"),
        seed,
        resident,
    }
}

pub async fn create(app: &TestApp, w: &World, title: &str) -> Value {
    let (s, v) = app
        .post(
            "/api/v1/tickets",
            Some(&w.resident),
            json!({"compound_id": w.compound, "category_id": w.category, "title": title, "description": "楼道灯坏了一周，晚上很黑"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

pub async fn act(
    app: &TestApp,
    token: &str,
    id: i64,
    action: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/tickets/{id}/{action}"), Some(token), body)
        .await
}

async fn ok(app: &TestApp, token: &str, id: i64, action: &str, body: Value) -> Value {
    let (s, v) = act(app, token, id, action, body).await;
    assert_eq!(s, StatusCode::OK, "{action}: {v}");
    v["ticket"].clone()
}

async fn the_whole_chain_from_resident_to_street_and_back_is_told_by_the_timeline(app: TestApp) {
    let w = world(&app).await;
    let t = create(&app, &w, "楼道灯不亮").await;
    let id = t["id"].as_i64().expect("id");
    assert_eq!(t["status"], "open");
    assert_eq!(t["level"], "compound");
    assert!(
        t["reference"].as_str().expect("ref").starts_with("YC-"),
        "{t}"
    );
    assert_eq!(
        t["reference"].as_str().map(str::len),
        Some("YC-20261127-0001".len())
    );
    assert!(t["ack_due_at"].is_string() && t["resolve_due_at"].is_string());
    assert!(t["allowed_actions"]
        .as_array()
        .expect("a")
        .contains(&json!("withdraw")));

    let compound = app.login_staff("yc-c1-p1").await;
    let community = app.login_staff("yc-c1").await;
    let street = app.login_staff("yc-street").await;

    let v = ok(
        &app,
        &compound,
        id,
        "acknowledge",
        json!({"note": "已收到，马上安排"}),
    )
    .await;
    assert_eq!(v["status"], "acknowledged");
    let v = ok(
        &app,
        &compound,
        id,
        "escalate",
        json!({"reason": "needs_resources", "note": "需社区协调电工"}),
    )
    .await;
    assert_eq!(v["level"], "community");
    assert_eq!(v["status"], "open");
    assert_eq!(v["escalation_count"], 1);
    // The compound can still read it but no longer act.
    let (s, v) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&compound))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["allowed_actions"], json!([]));
    let (s, v) = act(&app, &compound, id, "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    ok(&app, &community, id, "acknowledge", json!({})).await;
    let v = ok(
        &app,
        &community,
        id,
        "escalate",
        json!({"reason": "beyond_authority", "note": "涉及市政线路"}),
    )
    .await;
    assert_eq!(v["level"], "street");
    assert!(!v["allowed_actions"]
        .as_array()
        .expect("a")
        .contains(&json!("escalate")));
    ok(&app, &street, id, "acknowledge", json!({})).await;
    let v = ok(
        &app,
        &street,
        id,
        "resolve",
        json!({"note": "已协调供电所更换线路"}),
    )
    .await;
    assert_eq!(v["status"], "resolved");
    let (_, mine) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&w.resident))
        .await;
    assert_eq!(mine["status_text"], "已办结，待您确认");
    let v = ok(
        &app,
        &w.resident,
        id,
        "confirm",
        json!({"rating": 5, "comment": "很满意"}),
    )
    .await;
    assert_eq!(v["status"], "closed");
    assert_eq!(v["rating"], 5);
    assert_eq!(v["rating_comment"], "很满意");
    assert_eq!(v["closed_by"], "resident");

    let (s, events) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&street))
        .await;
    assert_eq!(s, StatusCode::OK);
    let story: Vec<(String, String, String)> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["level"].as_str().unwrap_or("").to_string(),
                e["status_after"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected = [
        ("create", "compound", "open"),
        ("acknowledge", "compound", "acknowledged"),
        ("escalate", "compound", "open"),
        ("acknowledge", "community", "acknowledged"),
        ("escalate", "community", "open"),
        ("acknowledge", "street", "acknowledged"),
        ("resolve", "street", "resolved"),
        ("confirm", "street", "closed"),
    ];
    assert_eq!(story.len(), expected.len(), "{story:?}");
    for (got, want) in story.iter().zip(expected) {
        assert_eq!((got.0.as_str(), got.1.as_str(), got.2.as_str()), want);
    }
    assert_eq!(events[2]["reason"], "needs_resources");
    assert_eq!(events[2]["level_after"], "community");
    // Residents see branches, not people.
    let (_, resident_view) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&w.resident))
        .await;
    assert_eq!(resident_view[1]["actor"]["name"], "小区党支部");
    assert_eq!(resident_view[0]["actor"]["name"], "我");
}

async fn first_dispute_reopens_and_second_calls_up(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "垃圾没人清").await["id"]
        .as_i64()
        .expect("id");
    let compound = app.login_staff("yc-c1-p1").await;
    ok(&app, &compound, id, "resolve", json!({"note": "已清理"})).await;
    let v = ok(
        &app,
        &w.resident,
        id,
        "dispute",
        json!({"note": "还是很脏"}),
    )
    .await;
    assert_eq!(v["status"], "open");
    assert_eq!(v["level"], "compound");
    ok(&app, &compound, id, "acknowledge", json!({})).await;
    ok(&app, &compound, id, "resolve", json!({"note": "再次清理"})).await;
    let v = ok(
        &app,
        &w.resident,
        id,
        "dispute",
        json!({"note": "仍未解决"}),
    )
    .await;
    assert_eq!(v["status"], "open");
    assert_eq!(v["level"], "community");
    assert_eq!(v["escalation_count"], 1);
}

async fn a_disputed_decline_goes_up_a_level(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "邻居装修").await["id"]
        .as_i64()
        .expect("id");
    let compound = app.login_staff("yc-c1-p1").await;
    let (s, v) = act(&app, &compound, id, "decline", json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "reason required: {v}");
    let v = ok(
        &app,
        &compound,
        id,
        "decline",
        json!({"reason": "不属于本支部职责"}),
    )
    .await;
    // The community reviews the decline first; once it upholds it, the resident may dispute.
    assert_eq!(v["status"], "decline_review");
    assert_eq!(v["level"], "community");
    let community = app.login_staff("yc-c1").await;
    let v = ok(&app, &community, id, "uphold-decline", json!({})).await;
    assert_eq!(v["status"], "declined");
    let v = ok(
        &app,
        &w.resident,
        id,
        "dispute",
        json!({"note": "请街道处理"}),
    )
    .await;
    assert_eq!(v["level"], "street");
    assert_eq!(v["status"], "open");
    // After seven days a decline can no longer be disputed.
    let id2 = create(&app, &w, "另一件事").await["id"]
        .as_i64()
        .expect("id");
    ok(&app, &compound, id2, "decline", json!({"reason": "重复"})).await;
    ok(&app, &community, id2, "uphold-decline", json!({})).await;
    app.advance(chrono::Duration::days(8));
    let w2 = app.login_resident("13800000001").await;
    let (s, v) = act(&app, &w2, id2, "dispute", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&v), "action_not_allowed");
}

fn body_for(action: &str) -> Value {
    match action {
        "comment" => json!({"note": "补充说明"}),
        "assign" => json!({"handler": "物业公司"}),
        "resolve" => json!({"note": "已处理"}),
        "escalate" => json!({"reason": "beyond_authority", "note": "超出职权"}),
        "decline" => json!({"reason": "重复工单"}),
        "return" => json!({"note": "请小区先行处理"}),
        "confirm" => json!({"rating": 5}),
        "wait-on-resident" => json!({"note": "请补充照片"}),
        "dispute" => json!({"note": "未解决"}),
        _ => json!({}),
    }
}

const ACTIONS: [&str; 11] = [
    "acknowledge",
    "comment",
    "assign",
    "resolve",
    "escalate",
    "decline",
    "return",
    "confirm",
    "dispute",
    "withdraw",
    "reveal-phone",
];

async fn authorization_table_every_role_every_action(app: TestApp) {
    let w = world(&app).await;
    let other_resident = app.login_resident("13800000002").await;
    let mut tokens = std::collections::HashMap::new();
    tokens.insert("owner", w.resident.clone());
    tokens.insert("other_resident", other_resident);
    for (k, u) in [
        ("compound_in", "yc-c1-p1"),
        ("compound_sibling", "yc-c1-p2"),
        ("compound_out", "yc-c2-p1"),
        ("community_in", "yc-c1"),
        ("community_out", "yc-c2"),
        ("street", "yc-street"),
        ("admin", "yc-admin"),
    ] {
        tokens.insert(k, app.login_staff(u).await);
    }
    // Ticket at compound level, status open. Expected status per actor and action.
    #[rustfmt::skip]
    let compound_level: &[(&str, [u16; 12])] = &[
        //                 ack  com  asg  res  esc  dec  ret  cnf  dsp  wdr  rev  wait
        ("owner",             [403, 200, 403, 403, 403, 403, 403, 409, 409, 200, 403, 403]),
        ("other_resident",    [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        ("compound_in",       [200, 200, 200, 200, 409, 200, 409, 403, 403, 403, 200, 409]),
        ("compound_sibling",  [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        ("compound_out",      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        ("community_in",      [403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        ("community_out",     [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        ("street",            [403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        ("admin",             [403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
    ];
    // Ticket called up to community level, status open (wrong level for the compound).
    #[rustfmt::skip]
    let community_level: &[(&str, [u16; 12])] = &[
        ("owner",             [403, 200, 403, 403, 403, 403, 403, 409, 409, 200, 403, 403]),
        ("compound_in",       [403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
        ("community_in",      [200, 200, 200, 200, 409, 200, 200, 403, 403, 403, 200, 409]),
        ("community_out",     [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        ("street",            [403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
    ];
    let compound_staff = tokens["compound_in"].clone();
    for (table, escalate_first) in [(compound_level, false), (community_level, true)] {
        for (actor, expected) in table {
            for (i, action) in ACTIONS.iter().enumerate() {
                // A fresh ticket for each case, so earlier successes do not change later cases.
                let id = create(&app, &w, "权限测试").await["id"]
                    .as_i64()
                    .expect("id");
                if escalate_first {
                    // 先应后呼: the compound answers before it calls up.
                    ok(&app, &compound_staff, id, "acknowledge", json!({})).await;
                    ok(&app, &compound_staff, id, "escalate", body_for("escalate")).await;
                }
                let (s, v) = act(&app, &tokens[actor], id, action, body_for(action)).await;
                assert_eq!(
                    s.as_u16(),
                    expected[i],
                    "{actor} {action} (escalated: {escalate_first}): {v}"
                );
                if s.is_client_error() {
                    let code = error_code(&v);
                    if s == StatusCode::CONFLICT {
                        assert_eq!(code, "action_not_allowed");
                        assert!(v["details"]["allowed_actions"].is_array(), "{v}");
                    }
                }
            }
        }
    }
}

async fn parallel_acknowledgements_let_exactly_one_win(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "并发受理").await["id"]
        .as_i64()
        .expect("id");
    let a = app.login_staff("yc-c1-p1").await;
    let calls = (0..8).map(|_| act(&app, &a, id, "acknowledge", json!({})));
    let results = futures::future::join_all(calls).await;
    let wins = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let conflicts = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .count();
    assert_eq!(wins, 1, "{results:?}");
    assert_eq!(conflicts, 7, "{results:?}");
    let (_, events) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&a))
        .await;
    let acks = events
        .as_array()
        .expect("e")
        .iter()
        .filter(|e| e["action"] == "acknowledge")
        .count();
    assert_eq!(acks, 1);
}

async fn the_same_idempotency_key_creates_one_ticket(app: TestApp) {
    let w = world(&app).await;
    let body = json!({"compound_id": w.compound, "category_id": w.category, "title": "网络不好重复提交", "description": "同一请求发了两次"});
    let send = |key: &'static str, body: Value| {
        app.client
            .post(format!("{}/api/v1/tickets", app.base))
            .bearer_auth(&w.resident)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let r1 = send("key-123", body.clone()).await.expect("send");
    assert_eq!(r1.status(), StatusCode::CREATED);
    let v1: Value = r1.json().await.expect("json");
    let r2 = send("key-123", body.clone()).await.expect("send");
    assert_eq!(r2.status(), StatusCode::CREATED);
    assert_eq!(r2.headers()["idempotent-replayed"], "true");
    let v2: Value = r2.json().await.expect("json");
    assert_eq!(v1, v2);
    let (_, list) = app.get("/api/v1/tickets", Some(&w.resident)).await;
    assert_eq!(list["total"], 1);
    // The same key with a different body is refused.
    let mut other = body.clone();
    other["title"] = json!("另一件事");
    let r3 = send("key-123", other).await.expect("send");
    assert_eq!(r3.status(), StatusCode::CONFLICT);
    // Concurrent duplicates still make one ticket.
    let racers = (0..4).map(|_| send("key-race", body.clone()));
    let results = futures::future::join_all(racers).await;
    let mut ids = std::collections::BTreeSet::new();
    for r in results {
        let r = r.expect("send");
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.expect("json");
        ids.insert(v["id"].as_i64().expect("id"));
    }
    assert_eq!(ids.len(), 1);
    let (_, list) = app.get("/api/v1/tickets", Some(&w.resident)).await;
    assert_eq!(list["total"], 2);
}

async fn bad_input_is_refused_and_nothing_is_stored(app: TestApp) {
    let w = world(&app).await;
    let good = json!({"compound_id": w.compound, "category_id": w.category, "title": "标题", "description": "描述"});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("title", json!("")), "missing_field"),
        (with("title", json!("长".repeat(81))), "field_too_long"),
        (
            with("description", json!("x".repeat(2001))),
            "field_too_long",
        ),
        (with("urgency", json!("apocalyptic")), "invalid_json"),
        (with("compound_id", json!(999999)), "unknown_org_unit"),
        (
            with("compound_id", w.seed["communities"][0]["id"].clone()),
            "unknown_org_unit",
        ),
        (
            with("building_id", w.seed["buildings"][5]["id"].clone()),
            "unknown_org_unit",
        ),
        (with("category_id", json!(424242)), "unknown_category"),
        (
            with("location", json!({"latitude": 123.0, "longitude": 500.0})),
            "invalid_location",
        ),
        (with("surprise", json!(true)), "invalid_json"),
        (json!({"title": "缺字段"}), "invalid_json"),
    ];
    for (body, code) in cases {
        let (s, v) = app
            .post("/api/v1/tickets", Some(&w.resident), body.clone())
            .await;
        assert!(s.is_client_error(), "{body} → {s} {v}");
        assert_eq!(error_code(&v), code, "{body}");
    }
    // Staff do not create tickets as residents: a call they enter names its source.
    let staff = app.login_staff("yc-c1-p1").await;
    let (s, v) = app
        .post("/api/v1/tickets", Some(&staff), good.clone())
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "invalid_source");
    let (_, list) = app.get("/api/v1/tickets", Some(&w.resident)).await;
    assert_eq!(list["total"], 0, "nothing stored");
    // Bad action bodies and unknown actions.
    let id = create(&app, &w, "正常").await["id"].as_i64().expect("id");
    let (s, v) = act(
        &app,
        &staff,
        id,
        "escalate",
        json!({"reason": "bored", "note": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "invalid_reason");
    let (s, v) = act(&app, &staff, id, "escalate", json!({"reason": "other"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "text required: {v}");
    let (s, _) = act(&app, &staff, id, "explode", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = act(&app, &w.resident, id, "confirm", json!({"rating": 9})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "invalid_rating");
    let (s, v) = app.get("/api/v1/tickets?status=bogus", Some(&staff)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "invalid_status");
    let (s, v) = app.get("/api/v1/tickets?cursor=%%%", Some(&staff)).await;
    assert!(s.is_client_error());
    error_code(&v);
    let (s, v) = app.get("/api/v1/tickets?limit=500", Some(&staff)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "invalid_limit");
    let (_, events) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&staff))
        .await;
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(1),
        "failed actions leave no events"
    );
}

async fn residents_see_only_their_own_tickets_and_never_internal_notes(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "我的工单").await["id"]
        .as_i64()
        .expect("id");
    let staff = app.login_staff("yc-c1-p1").await;
    ok(
        &app,
        &staff,
        id,
        "comment",
        json!({"note": "内部：此户多次投诉", "internal": true}),
    )
    .await;
    ok(
        &app,
        &staff,
        id,
        "comment",
        json!({"note": "您好，已安排维修"}),
    )
    .await;
    let (_, mine) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&w.resident))
        .await;
    let notes: Vec<&str> = mine
        .as_array()
        .expect("e")
        .iter()
        .filter_map(|e| e["note"].as_str())
        .collect();
    assert!(notes.contains(&"您好，已安排维修"));
    assert!(!notes.iter().any(|n| n.contains("内部")), "{notes:?}");
    let (_, staff_view) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&staff))
        .await;
    assert!(staff_view
        .as_array()
        .expect("e")
        .iter()
        .any(|e| e["internal"] == true));

    let neighbour = app.login_resident("13800000002").await;
    for path in [
        format!("/api/v1/tickets/{id}"),
        format!("/api/v1/tickets/{id}/events"),
        format!("/api/v1/tickets/{id}/attachments"),
    ] {
        let (s, v) = app.get(&path, Some(&neighbour)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_code(&v), "not_found");
    }
    let (_, list) = app.get("/api/v1/tickets", Some(&neighbour)).await;
    assert_eq!(list["total"], 0);
    // Another compound's secretary sees nothing either; a missing id looks the same.
    let other = app.login_staff("yc-c2-p1").await;
    let (s1, v1) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&other))
        .await;
    let (s2, v2) = app.get("/api/v1/tickets/987654", Some(&other)).await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(v1, v2);
}

async fn queues_filter_sort_and_page_with_a_total(app: TestApp) {
    let w = world(&app).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            create(&app, &w, &format!("工单{i}号")).await["id"]
                .as_i64()
                .expect("id"),
        );
        app.advance(chrono::Duration::minutes(1));
    }
    let staff = app.login_staff("yc-c1-p1").await;
    ok(&app, &staff, ids[0], "acknowledge", json!({})).await;
    ok(&app, &staff, ids[1], "acknowledge", json!({})).await;
    ok(
        &app,
        &staff,
        ids[1],
        "escalate",
        json!({"reason": "other", "note": "上报"}),
    )
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/tickets?limit=3&cursor={c}"),
            None => "/api/v1/tickets?limit=3".to_string(),
        };
        let (s, page) = app.get(&path, Some(&staff)).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["total"], 7);
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|t| t["id"].as_i64().expect("id")),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 7, "every ticket once: {seen:?}");

    let (_, open) = app
        .get("/api/v1/tickets?status=open&level=compound", Some(&staff))
        .await;
    assert_eq!(open["total"], 5);
    let (_, several) = app
        .get("/api/v1/tickets?status=open,acknowledged", Some(&staff))
        .await;
    assert_eq!(several["total"], 7);
    let (_, up) = app.get("/api/v1/tickets?went_up=true", Some(&staff)).await;
    assert_eq!(up["total"], 1);
    assert_eq!(up["items"][0]["id"], ids[1]);
    let (_, q) = app.get("/api/v1/tickets?q=3%E5%8F%B7", Some(&staff)).await;
    assert_eq!(q["total"], 1);
    let reference = q["items"][0]["reference"]
        .as_str()
        .expect("ref")
        .to_lowercase();
    let (_, by_ref) = app
        .get(&format!("/api/v1/tickets?q={reference}"), Some(&staff))
        .await;
    assert_eq!(by_ref["total"], 1);
    let (_, newest) = app
        .get("/api/v1/tickets?sort=created&limit=1", Some(&staff))
        .await;
    assert_eq!(newest["items"][0]["id"], ids[6]);
    let community = app.login_staff("yc-c1").await;
    let (_, c) = app
        .get("/api/v1/tickets?level=community", Some(&community))
        .await;
    assert_eq!(c["total"], 1);
    let (_, all) = app.get("/api/v1/tickets", Some(&community)).await;
    assert_eq!(all["total"], 7, "community reads its compounds' tickets");
    let other = app.login_staff("yc-c2").await;
    let (_, none) = app.get("/api/v1/tickets", Some(&other)).await;
    assert_eq!(none["total"], 0);
    // Default staff sort is by the running deadline.
    let (_, due) = app
        .get("/api/v1/tickets?level=compound", Some(&staff))
        .await;
    // The running deadline: the answer clock while open, the settle clock once acknowledged.
    let dues: Vec<&str> = due["items"]
        .as_array()
        .expect("i")
        .iter()
        .filter_map(|t| match t["status"].as_str() {
            Some("open") => t["ack_due_at"].as_str(),
            _ => t["resolve_due_at"].as_str(),
        })
        .collect();
    assert_eq!(dues.len(), 6);
    assert!(dues.windows(2).all(|p| p[0] <= p[1]), "{dues:?}");
    assert!(due["items"][1]["due_in_seconds"].is_i64());
}

async fn return_goes_down_once_per_level(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "退回测试").await["id"]
        .as_i64()
        .expect("id");
    let compound = app.login_staff("yc-c1-p1").await;
    let community = app.login_staff("yc-c1").await;
    ok(&app, &compound, id, "acknowledge", json!({})).await;
    ok(
        &app,
        &compound,
        id,
        "escalate",
        json!({"reason": "other", "note": "上报"}),
    )
    .await;
    let v = ok(
        &app,
        &community,
        id,
        "return",
        json!({"note": "请先联系物业"}),
    )
    .await;
    assert_eq!(v["level"], "compound");
    assert_eq!(v["status"], "open");
    ok(&app, &compound, id, "acknowledge", json!({})).await;
    ok(
        &app,
        &compound,
        id,
        "escalate",
        json!({"reason": "other", "note": "物业不理"}),
    )
    .await;
    let (s, v) = act(&app, &community, id, "return", json!({"note": "再退"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(!v["details"]["allowed_actions"]
        .as_array()
        .expect("a")
        .contains(&json!("return")));
}

pub async fn upload(
    app: &TestApp,
    token: &str,
    id: i64,
    bytes: Vec<u8>,
    name: &str,
) -> (StatusCode, Value) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    );
    let r = app
        .client
        .post(format!("{}/api/v1/tickets/{id}/attachments", app.base))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn photos_are_checked_by_content_and_limited(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "附图").await["id"].as_i64().expect("id");
    let (s, v) = upload(
        &app,
        &w.resident,
        id,
        b"GIF89a this is not allowed".to_vec(),
        "photo.jpg",
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "unsupported_file_type");
    let (s, v) = upload(
        &app,
        &w.resident,
        id,
        vec![0xFF; 5 * 1024 * 1024 + 10],
        "big.jpg",
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    for i in 0..9 {
        let (s, v) = upload(&app, &w.resident, id, png(), &format!("{i}.png")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["content_type"], "image/png");
    }
    let (s, v) = upload(&app, &w.resident, id, png(), "10.png").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&v), "too_many_attachments");
    // The refused uploads left no file, not even a temporary one.
    assert_stored_files(&app, 9);
    let (_, list) = app
        .get(
            &format!("/api/v1/tickets/{id}/attachments"),
            Some(&w.resident),
        )
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(9));
    let url = list[0]["url"].as_str().expect("url");
    let staff = app.login_staff("yc-c1-p1").await;
    let r = app
        .client
        .get(format!("{}{url}", app.base))
        .bearer_auth(&staff)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    // Stored re-encoded: other bytes, the same picture.
    assert_eq!(pixels(&r.bytes().await.expect("bytes")), pixels(&png()));
    let neighbour = app.login_resident("13800000002").await;
    let r = app
        .client
        .get(format!("{}{url}", app.base))
        .bearer_auth(&neighbour)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, t) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&w.resident))
        .await;
    assert_eq!(t["attachment_count"], 9);
}

async fn staff_see_masked_phones_and_revealing_is_recorded(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "电话").await["id"].as_i64().expect("id");
    let staff = app.login_staff("yc-c1-p1").await;
    let (_, t) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&staff))
        .await;
    assert_eq!(t["resident"]["phone_masked"], "138****0001");
    assert!(!t.to_string().contains("13800000001"));
    let (s, v) = act(&app, &staff, id, "reveal-phone", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["phone"], "13800000001");
    let (_, events) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&staff))
        .await;
    let reveal = events
        .as_array()
        .expect("e")
        .iter()
        .find(|e| e["action"] == "reveal_phone")
        .expect("recorded");
    assert_eq!(reveal["internal"], true);
    let community = app.login_staff("yc-c1").await;
    let (s, _) = act(&app, &community, id, "reveal-phone", json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// A call with a building: the answer names its street, community, compound and building (read
/// as one statement when all is well); an archived compound, or a building of another compound,
/// is refused with what is wrong.
async fn a_call_is_shown_with_its_place_and_an_archived_compound_takes_none(app: TestApp) {
    let w = world(&app).await;
    let unit = |kind: &str, i: usize| w.seed[kind][i].clone();
    let (s, v) = app
        .post(
            "/api/v1/tickets",
            Some(&w.resident),
            json!({"compound_id": w.compound, "building_id": unit("buildings", 1)["id"],
                   "category_id": w.category, "title": "二栋电梯", "description": "电梯停在三楼不动"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["street"]["name"], w.seed["street"]["name"], "{v}");
    assert_eq!(
        v["community"]["name"],
        unit("communities", 0)["name"],
        "{v}"
    );
    assert_eq!(v["compound"]["name"], unit("compounds", 0)["name"], "{v}");
    assert_eq!(v["building"]["id"], unit("buildings", 1)["id"], "{v}");
    assert_eq!(v["building"]["name"], "2栋", "{v}");
    assert_eq!(v["category"]["id"], w.category, "{v}");
    assert_eq!(
        v["category"]["name"], w.seed["categories"][0]["name"],
        "{v}"
    );
    assert_eq!(v["attachment_count"], 0, "{v}");
    // The building of the second compound does not belong to the first.
    let (s, v) = app
        .post(
            "/api/v1/tickets",
            Some(&w.resident),
            json!({"compound_id": w.compound, "building_id": unit("buildings", 2)["id"],
                   "category_id": w.category, "title": "错楼栋", "description": "楼栋不对"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["message"], "该楼栋不属于所选小区", "{v}");
    let admin = app.login_staff("yc-admin").await;
    let (s, v) = app
        .patch(
            &format!("/api/v1/org/compounds/{}", w.compound),
            Some(&admin),
            json!({"archived": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .post(
            "/api/v1/tickets",
            Some(&w.resident),
            json!({"compound_id": w.compound, "category_id": w.category,
                   "title": "停用小区", "description": "小区已停用"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v), "unknown_org_unit", "{v}");
    assert_eq!(v["message"], "该小区已停用", "{v}");
    let (_, list) = app.get("/api/v1/tickets", Some(&w.resident)).await;
    assert_eq!(list["total"], 1, "only the first call stored: {list}");
}
