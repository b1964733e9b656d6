//! Holding every level to account: calls entered by staff and own findings, answer before
//! calling up, decline review, transfer, urging, taking over, extension requests, and a
//! resident hidden from the compound.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, local, phone_of, sms_to, sweep, TestApp};
use crate::notifications::dispatch;
use crate::tickets::{act, create, world, World};
use huying::service::sla::SlaEngine;
use huying::service::sweeper::sweep_once;

both_backends!(
    staff_enter_a_walk_in_for_a_new_phone_and_the_resident_follows_it,
    an_own_finding_is_raised_resolved_and_closed_by_the_raising_level,
    staff_calls_are_checked_for_source_scope_and_resident,
    a_level_answers_before_it_calls_up_but_the_sweeper_still_moves_silence,
    a_decline_is_reviewed_above_and_upheld_with_the_resident_told,
    an_overturned_decline_goes_back_down_once_or_stays_with_the_reviewer,
    an_unreviewed_decline_is_called_up_by_the_sweeper,
    a_ticket_is_transferred_at_most_twice_within_its_community,
    urging_is_told_counted_and_limited_per_level_and_hour,
    the_street_takes_over_a_compound_ticket,
    extensions_are_approved_rejected_or_left_unanswered,
    an_extension_approval_racing_a_breach_has_one_outcome,
    a_take_over_racing_an_acknowledge_has_one_outcome,
    a_hidden_resident_is_anonymous_to_the_compound_only,
    authorization_table_for_the_accountability_actions,
    supervision_lists_the_lower_levels_waiting_disputed_and_reviewed_tickets,
);

/// The demo street on a working-day morning (Monday 2026-11-30, 09:00 Beijing time).
async fn morning(app: &TestApp) -> World {
    app.clock.set(local(2026, 11, 30, 9, 0));
    let w = world(app).await;
    app.clock.set(local(2026, 11, 30, 9, 0));
    w
}

fn unit(w: &World, i: usize) -> i64 {
    w.seed["compounds"][i]["id"].as_i64().expect("compound")
}

fn id_of(t: &Value) -> i64 {
    t["id"].as_i64().expect("id")
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("timestamp in {v}"))
        .parse()
        .expect("rfc3339")
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn ok(app: &TestApp, token: &str, id: i64, action: &str, body: Value) -> Value {
    let (s, v) = act(app, token, id, action, body).await;
    assert_eq!(s, StatusCode::OK, "{action}: {v}");
    v["ticket"].clone()
}

async fn refused(app: &TestApp, token: &str, id: i64, action: &str, body: Value) -> Value {
    let (s, v) = act(app, token, id, action, body).await;
    assert_eq!(s, StatusCode::CONFLICT, "{action}: {v}");
    assert_eq!(error_code(&v), "action_not_allowed", "{v}");
    v
}

async fn get(app: &TestApp, token: &str, id: i64) -> (StatusCode, Value) {
    app.get(&format!("/api/v1/tickets/{id}"), Some(token)).await
}

async fn events(app: &TestApp, token: &str, id: i64) -> Vec<Value> {
    let (s, v) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(token))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array().expect("events").clone()
}

fn kinds(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["action"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Kinds of the in-app notifications `token`'s holder has.
async fn inbox_kinds(app: &TestApp, token: &str) -> Vec<String> {
    let (s, v) = app
        .get("/api/v1/notifications?limit=100", Some(token))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|n| n["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn staff_call(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.post("/api/v1/tickets", Some(token), body).await
}

fn call_body(w: &World, compound: i64, extra: Value) -> Value {
    let mut b = json!({
        "compound_id": compound,
        "category_id": w.category,
        "title": "楼下路灯不亮",
        "description": "老人来服务站反映，小区北门路灯坏了三天",
    });
    if let (Some(b), Some(e)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    b
}

/// A fresh resident call, acknowledged by the compound.
async fn acknowledged(app: &TestApp, w: &World, compound_staff: &str) -> i64 {
    let id = id_of(&create(app, w, "电梯异响").await);
    ok(app, compound_staff, id, "acknowledge", json!({})).await;
    id
}

async fn staff_enter_a_walk_in_for_a_new_phone_and_the_resident_follows_it(app: TestApp) {
    let w = morning(&app).await;
    let community = app.login_staff("yc-c1").await;
    let phone = "13911112222";
    let (s, t) = staff_call(
        &app,
        &community,
        call_body(
            &w,
            w.compound,
            json!({"source": "desk", "resident_phone": phone, "resident_name": "王阿姨"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = id_of(&t);
    assert_eq!(t["source"], "desk");
    assert_eq!(
        t["level"], "compound",
        "a call on behalf starts at the compound"
    );
    assert_eq!(t["status"], "open");
    assert_eq!(
        t["entered_by_level"], "community",
        "entered by community staff"
    );
    assert!(t["entered_by"]["name"].as_str().is_some(), "{t}");
    assert_eq!(t["resident"]["display_name"], "王阿姨");
    // The resident is told by SMS, with the link.
    dispatch(&app).await;
    let texts = sms_to(&app, phone);
    assert!(
        texts
            .iter()
            .any(|m| m.contains("已为您登记") && m.contains("/t/")),
        "{texts:?}"
    );
    // The account was created for the new number: signing in with the code shows the ticket.
    let resident = app.login_resident(phone).await;
    let (s, mine) = app.get("/api/v1/tickets", Some(&resident)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(mine["total"], 1, "{mine}");
    assert_eq!(mine["items"][0]["id"], id);
    let (_, seen) = get(&app, &resident, id).await;
    assert_eq!(seen["source"], "desk");
    assert_eq!(seen["entered_by_level"], "community");
    assert!(seen["entered_by"].is_null(), "residents see no staff names");
    // The resident acts on it like on their own.
    let (s, _) = act(&app, &resident, id, "comment", json!({"note": "灯在北门"})).await;
    assert_eq!(s, StatusCode::OK);
    // A hotline call carries the external reference; the queue filters by source.
    let street = app.login_staff("yc-street").await;
    let (s, h) = staff_call(
        &app,
        &street,
        call_body(
            &w,
            unit(&w, 2),
            json!({"source": "hotline", "resident_phone": "13911113333", "external_ref": "12345-20261130-0042"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_eq!(h["external_ref"], "12345-20261130-0042");
    let (_, q) = app.get("/api/v1/tickets?source=desk", Some(&street)).await;
    assert_eq!(q["total"], 1, "{q}");
    let (_, q) = app
        .get("/api/v1/tickets?source=desk,hotline", Some(&street))
        .await;
    assert_eq!(q["total"], 2, "{q}");
    let (s, q) = app.get("/api/v1/tickets?source=fax", Some(&street)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
    // The dashboard counts tickets by source.
    let (s, by) = app
        .get(
            "/api/v1/stats/sources?from=2026-11-30&to=2026-11-30",
            Some(&street),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{by}");
    let count = |src: &str| {
        by.as_array()
            .expect("sources")
            .iter()
            .find(|r| r["source"] == src)
            .map(|r| r["tickets"].as_i64().unwrap_or(-1))
    };
    assert_eq!(count("desk"), Some(1), "{by}");
    assert_eq!(count("hotline"), Some(1), "{by}");
    assert_eq!(count("app"), Some(0), "{by}");
}

async fn an_own_finding_is_raised_resolved_and_closed_by_the_raising_level(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let (s, t) = staff_call(
        &app,
        &p1,
        call_body(&w, w.compound, json!({"source": "own_finding"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = id_of(&t);
    assert_eq!(t["raised_level"], "compound");
    assert!(
        t["resident"].is_null(),
        "no resident behind an own finding: {t}"
    );
    let acts: Vec<String> = serde_json::from_value(t["allowed_actions"].clone()).expect("acts");
    assert!(!acts.contains(&"reveal_phone".to_string()), "{acts:?}");
    assert!(!acts.contains(&"wait_on_resident".to_string()), "{acts:?}");
    ok(&app, &p1, id, "acknowledge", json!({})).await;
    let r = ok(&app, &p1, id, "resolve", json!({"note": "已更换灯泡"})).await;
    assert_eq!(r["status"], "resolved");
    assert!(r["allowed_actions"]
        .as_array()
        .expect("acts")
        .contains(&json!("confirm")));
    let c = ok(&app, &p1, id, "confirm", json!({})).await;
    assert_eq!(c["status"], "closed");
    assert_eq!(c["closed_by"], "raising_level");
    assert!(c["rating"].is_null());
    // Nobody stands behind it as a resident: the raiser is not told of its own progress.
    let told = inbox_kinds(&app, &p1).await;
    assert!(
        !told.iter().any(|k| k == "acknowledged" || k == "resolved"),
        "{told:?}"
    );
    let evs = events(&app, &p1, id).await;
    assert_eq!(
        kinds(&evs),
        ["create", "acknowledge", "resolve", "confirm"],
        "{evs:?}"
    );
    // A community's own finding starts at the community; only the community confirms it.
    let community = app.login_staff("yc-c1").await;
    let (s, t) = staff_call(
        &app,
        &community,
        call_body(&w, w.compound, json!({"source": "own_finding"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    assert_eq!(t["level"], "community");
    let id = id_of(&t);
    ok(
        &app,
        &community,
        id,
        "resolve",
        json!({"note": "已协调修复"}),
    )
    .await;
    refused(&app, &p1, id, "confirm", json!({})).await;
    ok(&app, &community, id, "confirm", json!({})).await;
}

async fn staff_calls_are_checked_for_source_scope_and_resident(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let community2 = app.login_staff("yc-c2").await;
    let admin = app.login_staff("yc-admin").await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (p1.as_str(), json!({}), "invalid_source"),
        (p1.as_str(), json!({"source": "app"}), "invalid_source"),
        (p1.as_str(), json!({"source": "phone"}), "invalid_phone"),
        (
            p1.as_str(),
            json!({"source": "phone", "resident_phone": "123"}),
            "invalid_phone",
        ),
        (
            p1.as_str(),
            json!({"source": "hotline", "resident_phone": "13911114444"}),
            "missing_field",
        ),
        (
            p1.as_str(),
            json!({"source": "own_finding", "resident_phone": "13911114444"}),
            "invalid_source",
        ),
        (
            community2.as_str(),
            json!({"source": "visit", "resident_phone": "13911114444"}),
            "compound_out_of_scope",
        ),
    ];
    for (token, extra, code) in cases {
        let (s, v) = staff_call(&app, token, call_body(&w, w.compound, extra.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{extra}: {v}");
        assert_eq!(error_code(&v), code, "{extra}: {v}");
    }
    // The compound may not enter calls for its sibling compound.
    let (s, v) = staff_call(
        &app,
        &p1,
        call_body(
            &w,
            unit(&w, 1),
            json!({"source": "phone", "resident_phone": "13911114444"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Residents cannot claim to be staff, admins do not enter calls.
    let (s, v) = staff_call(
        &app,
        &w.resident,
        call_body(
            &w,
            w.compound,
            json!({"source": "hotline", "external_ref": "x"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _) = staff_call(
        &app,
        &admin,
        call_body(&w, w.compound, json!({"source": "own_finding"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Nothing was stored.
    let street = app.login_staff("yc-street").await;
    let (_, all) = app.get("/api/v1/tickets", Some(&street)).await;
    assert_eq!(all["total"], 0, "{all}");
}

async fn a_level_answers_before_it_calls_up_but_the_sweeper_still_moves_silence(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let id = id_of(&create(&app, &w, "先应后呼").await);
    let v = refused(
        &app,
        &p1,
        id,
        "escalate",
        json!({"reason": "beyond_authority", "note": "超出职权"}),
    )
    .await;
    let allowed = v["details"]["allowed_actions"].as_array().expect("allowed");
    assert!(allowed.contains(&json!("acknowledge")), "{v}");
    assert!(!allowed.contains(&json!("escalate")), "{v}");
    ok(&app, &p1, id, "acknowledge", json!({})).await;
    let t = ok(
        &app,
        &p1,
        id,
        "escalate",
        json!({"reason": "beyond_authority", "note": "超出职权"}),
    )
    .await;
    assert_eq!(t["level"], "community");
    // An unanswered ticket is still called up by the sweeper: the non-response path.
    let silent = id_of(&create(&app, &w, "无人应答").await);
    app.clock.set(local(2026, 11, 30, 15, 1));
    sweep(&app, app.now());
    // Access tokens last 15 minutes: sign in again at the new time.
    let p1 = app.login_staff("yc-c1-p1").await;
    let (_, t) = get(&app, &p1, silent).await;
    assert_eq!(t["level"], "community", "{t}");
    let evs = events(&app, &p1, silent).await;
    let up = evs
        .iter()
        .find(|e| e["action"] == "escalate")
        .expect("escalate");
    assert_eq!(up["reason"], "sla_breach_acknowledge");
    assert_eq!(up["actor"]["role"], "system");
}

async fn a_decline_is_reviewed_above_and_upheld_with_the_resident_told(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let community = app.login_staff("yc-c1").await;
    let id = id_of(&create(&app, &w, "要求拆除邻居违建").await);
    let t = ok(
        &app,
        &p1,
        id,
        "decline",
        json!({"reason": "属城管执法事项，非小区职责"}),
    )
    .await;
    assert_eq!(t["status"], "decline_review");
    assert_eq!(t["level"], "community");
    assert!(t["decide_due_at"].is_string(), "{t}");
    // The compound no longer acts; the community reviews.
    assert!(t["allowed_actions"].as_array().expect("a").is_empty());
    let (_, c) = get(&app, &community, id).await;
    let acts = c["allowed_actions"].as_array().expect("acts").clone();
    for a in ["uphold_decline", "overturn_decline", "return"] {
        assert!(acts.contains(&json!(a)), "{a} in {acts:?}");
    }
    // It waits in the community's 待我决定 queue.
    let (_, q) = app
        .get("/api/v1/tickets?view=decisions", Some(&community))
        .await;
    assert_eq!(q["total"], 1, "{q}");
    let (_, mine) = get(&app, &w.resident, id).await;
    assert_eq!(mine["status"], "decline_review");
    let up = ok(
        &app,
        &community,
        id,
        "uphold-decline",
        json!({"note": "经核实，确属执法事项，已告知居民向城管反映"}),
    )
    .await;
    assert_eq!(up["status"], "declined");
    dispatch(&app).await;
    let texts = sms_to(&app, "13800000001");
    assert!(texts.iter().any(|m| m.contains("复核")), "{texts:?}");
    let evs = events(&app, &w.resident, id).await;
    assert!(
        kinds(&evs).contains(&"uphold_decline".to_string()),
        "{evs:?}"
    );
    // The resident may still dispute: it goes above the reviewer.
    let d = ok(&app, &w.resident, id, "dispute", json!({"note": "不服"})).await;
    assert_eq!(d["level"], "street");
    assert_eq!(d["status"], "open");
    // A street-level decline is final.
    let street = app.login_staff("yc-street").await;
    ok(&app, &street, id, "acknowledge", json!({})).await;
    let f = ok(
        &app,
        &street,
        id,
        "decline",
        json!({"reason": "不属街道职责"}),
    )
    .await;
    assert_eq!(f["status"], "declined");
    assert_eq!(f["level"], "street");
}

async fn an_overturned_decline_goes_back_down_once_or_stays_with_the_reviewer(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let community = app.login_staff("yc-c1").await;
    let id = id_of(&create(&app, &w, "楼道堆物").await);
    ok(&app, &p1, id, "decline", json!({"reason": "不归我们管"})).await;
    let back = ok(
        &app,
        &community,
        id,
        "return",
        json!({"note": "楼道堆物属小区自治事项，请物业清理"}),
    )
    .await;
    assert_eq!(back["level"], "compound");
    assert_eq!(back["status"], "open");
    let evs = events(&app, &p1, id).await;
    let ret = evs
        .iter()
        .rfind(|e| e["action"] == "return")
        .expect("return");
    assert_eq!(ret["reason"], "decline_overturned");
    // Declined again: the community cannot return it a second time, it takes it itself.
    ok(&app, &p1, id, "decline", json!({"reason": "仍不归我们管"})).await;
    let v = refused(&app, &community, id, "return", json!({"note": "再退"})).await;
    assert!(
        v["details"]["allowed_actions"]
            .as_array()
            .expect("a")
            .contains(&json!("overturn_decline")),
        "{v}"
    );
    let t = ok(
        &app,
        &community,
        id,
        "overturn-decline",
        json!({"note": "社区直接协调"}),
    )
    .await;
    assert_eq!(t["level"], "community");
    assert_eq!(t["status"], "open");
    assert!(t["ack_due_at"].is_string());
    dispatch(&app).await;
    assert!(
        sms_to(&app, "13800000001")
            .iter()
            .any(|m| m.contains("继续办理")),
        "{:?}",
        sms_to(&app, "13800000001")
    );
}

async fn an_unreviewed_decline_is_called_up_by_the_sweeper(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let id = id_of(&create(&app, &w, "无人复核").await);
    let t = ok(&app, &p1, id, "decline", json!({"reason": "不属实"})).await;
    let due = ts(&t["decide_due_at"]);
    // One working day: Monday 09:00 → Tuesday 09:00.
    assert_eq!(due, local(2026, 12, 1, 9, 0), "{t}");
    app.clock.set(due + Duration::minutes(1));
    sweep(&app, app.now());
    let street = app.login_staff("yc-street").await;
    let (_, t) = get(&app, &street, id).await;
    assert_eq!(t["level"], "street", "{t}");
    assert_eq!(t["status"], "decline_review");
    let evs = events(&app, &street, id).await;
    let up = evs
        .iter()
        .find(|e| e["action"] == "escalate")
        .expect("escalate");
    assert_eq!(up["reason"], "sla_breach_review");
    assert_eq!(up["level"], "community");
    // At the street, nothing is above: the breach is marked overdue, once.
    app.clock
        .set(ts(&t["decide_due_at"]) + Duration::minutes(1));
    sweep(&app, app.now());
    sweep(&app, app.now());
    let street = app.login_staff("yc-street").await;
    let evs = events(&app, &street, id).await;
    let overdue: Vec<&Value> = evs.iter().filter(|e| e["action"] == "overdue").collect();
    assert_eq!(overdue.len(), 1, "{evs:?}");
    assert_eq!(overdue[0]["reason"], "sla_breach_review");
    // The street still decides.
    ok(&app, &street, id, "uphold-decline", json!({})).await;
}

async fn a_ticket_is_transferred_at_most_twice_within_its_community(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let p2 = app.login_staff("yc-c1-p2").await;
    let community = app.login_staff("yc-c1").await;
    let id = id_of(&create(&app, &w, "报错了小区").await);
    // Not to another community's compound.
    let (s, v) = act(
        &app,
        &p1,
        id,
        "transfer",
        json!({"compound_id": unit(&w, 2), "note": "转二社区"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v), "invalid_compound");
    let t = ok(
        &app,
        &p1,
        id,
        "transfer",
        json!({"compound_id": unit(&w, 1), "note": "居民住在二小区"}),
    )
    .await;
    assert_eq!(t["compound"]["id"], unit(&w, 1));
    assert_eq!(t["transfer_count"], 1);
    assert_eq!(t["status"], "open");
    assert_eq!(
        ts(&t["ack_due_at"]),
        local(2026, 11, 30, 15, 0),
        "fresh clocks"
    );
    let (s, _) = get(&app, &p1, id).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the old compound lets go");
    let (s, _) = get(&app, &p2, id).await;
    assert_eq!(s, StatusCode::OK);
    dispatch(&app).await;
    assert!(
        sms_to(&app, "13800000001")
            .iter()
            .any(|m| m.contains("已转至")),
        "{:?}",
        sms_to(&app, "13800000001")
    );
    assert!(inbox_kinds(&app, &p2)
        .await
        .contains(&"transferred".to_string()));
    // The community moves it between its compounds too.
    let t = ok(
        &app,
        &community,
        id,
        "transfer",
        json!({"compound_id": unit(&w, 0), "note": "核实后仍属一小区"}),
    )
    .await;
    assert_eq!(t["transfer_count"], 2);
    let v = refused(
        &app,
        &p1,
        id,
        "transfer",
        json!({"compound_id": unit(&w, 1), "note": "第三次"}),
    )
    .await;
    assert!(!v["details"]["allowed_actions"]
        .as_array()
        .expect("a")
        .contains(&json!("transfer")));
    let evs = events(&app, &p1, id).await;
    let transfers: Vec<&Value> = evs.iter().filter(|e| e["action"] == "transfer").collect();
    assert_eq!(transfers.len(), 2);
    assert_eq!(transfers[0]["reason"], format!("unit:{}", unit(&w, 0)));
}

async fn urging_is_told_counted_and_limited_per_level_and_hour(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let community = app.login_staff("yc-c1").await;
    let street = app.login_staff("yc-street").await;
    let id = acknowledged(&app, &w, &p1).await;
    let t = ok(
        &app,
        &community,
        id,
        "urge",
        json!({"note": "请今天内处理"}),
    )
    .await;
    assert_eq!(t["urge_count"], 1);
    let (s, v) = act(&app, &community, id, "urge", json!({"note": "再催"})).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(error_code(&v), "urge_too_soon");
    // Another level keeps its own hour.
    let t = ok(&app, &street, id, "urge", json!({"note": "街道督办"})).await;
    assert_eq!(t["urge_count"], 2);
    // The compound cannot urge itself; a resident cannot urge.
    let (s, _) = act(&app, &p1, id, "urge", json!({"note": "x"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.advance(Duration::minutes(61));
    let community = app.login_staff("yc-c1").await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let resident = app.login_resident("13800000001").await;
    let t = ok(
        &app,
        &community,
        id,
        "urge",
        json!({"note": "一小时后再催"}),
    )
    .await;
    assert_eq!(t["urge_count"], 3);
    dispatch(&app).await;
    let texts = sms_to(&app, &phone_of(&w.seed, "yc-c1-p1"));
    assert!(
        texts.iter().filter(|m| m.contains("催办")).count() >= 1,
        "{texts:?}"
    );
    assert!(inbox_kinds(&app, &p1).await.contains(&"urged".to_string()));
    // Counted per unit: the compound received three urges, its sibling none.
    let (s, rank) = app
        .get(
            "/api/v1/stats/ranking?unit=compound&from=2026-11-30&to=2026-11-30",
            Some(&community),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rank}");
    let urges = |unit: i64| {
        rank.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["unit_id"] == unit)
            .map(|r| r["urges"].clone())
    };
    assert_eq!(urges(w.compound), Some(json!(3)), "{rank}");
    assert_eq!(urges(unit(&w, 1)), Some(json!(0)), "{rank}");
    let evs = events(&app, &resident, id).await;
    assert_eq!(
        evs.iter().filter(|e| e["action"] == "urge").count(),
        3,
        "residents see that their ticket was urged"
    );
    // 督办: the community sees the compound's ticket in its supervision view.
    let (_, q) = app
        .get("/api/v1/tickets?view=supervision", Some(&community))
        .await;
    assert_eq!(q["total"], 1, "{q}");
    let (s, q) = app
        .get("/api/v1/tickets?view=supervision", Some(&resident))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
}

async fn the_street_takes_over_a_compound_ticket(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let street = app.login_staff("yc-street").await;
    let id = acknowledged(&app, &w, &p1).await;
    let t = ok(
        &app,
        &street,
        id,
        "take-over",
        json!({"note": "涉及多部门，街道直接领办"}),
    )
    .await;
    assert_eq!(t["level"], "street");
    assert_eq!(t["status"], "open");
    assert_eq!(t["escalation_count"], 0, "taken over, not called up");
    assert_eq!(
        ts(&t["ack_due_at"]),
        local(2026, 11, 30, 11, 0),
        "street clocks"
    );
    // The compound keeps reading it, without acting.
    let (s, c) = get(&app, &p1, id).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        c["allowed_actions"].as_array().expect("a").is_empty(),
        "{c}"
    );
    dispatch(&app).await;
    assert!(inbox_kinds(&app, &p1)
        .await
        .contains(&"taken_over".to_string()));
    let evs = events(&app, &street, id).await;
    let e = evs
        .iter()
        .find(|e| e["action"] == "take_over")
        .expect("take_over");
    assert_eq!(e["level"], "compound");
    assert_eq!(e["level_after"], "street");
    assert!(!kinds(&evs).contains(&"escalate".to_string()));
    // Nothing to take over once it is the street's own.
    let (s, _) = act(&app, &street, id, "take-over", json!({"note": "x"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn extensions_are_approved_rejected_or_left_unanswered(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let community = app.login_staff("yc-c1").await;
    let id = acknowledged(&app, &w, &p1).await;
    let (_, t) = get(&app, &p1, id).await;
    let due = ts(&t["resolve_due_at"]);
    // Too far: more than 10 working days past the deadline.
    let (s, v) = act(
        &app,
        &p1,
        id,
        "request-extension",
        json!({"note": "需要等配件", "due_at": rfc(due + Duration::days(30))}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v), "invalid_due_at");
    let asked = due + Duration::days(5);
    let t = ok(
        &app,
        &p1,
        id,
        "request-extension",
        json!({"note": "电梯配件需从厂家订购", "due_at": rfc(asked)}),
    )
    .await;
    assert_eq!(ts(&t["extension"]["requested_due_at"]), asked);
    assert_eq!(
        ts(&t["resolve_due_at"]),
        due,
        "a pending request does not move the clock"
    );
    refused(
        &app,
        &p1,
        id,
        "request-extension",
        json!({"note": "再申请", "due_at": rfc(asked)}),
    )
    .await;
    // Only the level directly above decides.
    let street = app.login_staff("yc-street").await;
    let (s, _) = act(&app, &street, id, "approve-extension", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, q) = app
        .get("/api/v1/tickets?view=decisions", Some(&community))
        .await;
    assert_eq!(q["total"], 1, "{q}");
    let t = ok(
        &app,
        &community,
        id,
        "approve-extension",
        json!({"note": "同意"}),
    )
    .await;
    assert_eq!(ts(&t["resolve_due_at"]), asked);
    assert!(t["extension"].is_null());
    assert_eq!(t["extensions_granted"], 1);
    dispatch(&app).await;
    assert!(
        sms_to(&app, "13800000001")
            .iter()
            .any(|m| m.contains("延至")),
        "{:?}",
        sms_to(&app, "13800000001")
    );
    // Rejected.
    let later = asked + Duration::days(2);
    ok(
        &app,
        &p1,
        id,
        "request-extension",
        json!({"note": "还要两天", "due_at": rfc(later)}),
    )
    .await;
    let (s, v) = act(&app, &community, id, "reject-extension", json!({})).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a rejection gives a reason: {v}"
    );
    let t = ok(
        &app,
        &community,
        id,
        "reject-extension",
        json!({"note": "请按期办结"}),
    )
    .await;
    assert_eq!(ts(&t["resolve_due_at"]), asked);
    assert_eq!(t["extensions_granted"], 1);
    // Unanswered: recorded once against the community, and the request still stands.
    let t = ok(
        &app,
        &p1,
        id,
        "request-extension",
        json!({"note": "第三次申请", "due_at": rfc(later)}),
    )
    .await;
    let decide = ts(&t["decide_due_at"]);
    app.clock.set(decide + Duration::minutes(1));
    sweep(&app, app.now());
    sweep(&app, app.now());
    let community = app.login_staff("yc-c1").await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let evs = events(&app, &community, id).await;
    let lapsed: Vec<&Value> = evs
        .iter()
        .filter(|e| e["action"] == "extension_unanswered")
        .collect();
    assert_eq!(lapsed.len(), 1, "{evs:?}");
    assert_eq!(
        lapsed[0]["level"], "community",
        "counted against the approver"
    );
    let (_, t) = get(&app, &community, id).await;
    assert_eq!(t["extension"]["unanswered"], true);
    assert_eq!(t["level"], "compound");
    ok(&app, &community, id, "approve-extension", json!({})).await;
    // Two granted: no third request at this level.
    let (_, t) = get(&app, &p1, id).await;
    assert_eq!(t["extensions_granted"], 2);
    assert!(!t["allowed_actions"]
        .as_array()
        .expect("a")
        .contains(&json!("request_extension")));
}

async fn an_extension_approval_racing_a_breach_has_one_outcome(app: TestApp) {
    let w = morning(&app).await;
    for round in 0..4 {
        app.clock.set(local(2026, 11, 30, 9, 0));
        let p1 = app.login_staff("yc-c1-p1").await;
        let resident = app.login_resident("13800000001").await;
        app.clock.set(local(2026, 11, 30, 9, 0));
        let w = World {
            resident,
            seed: w.seed.clone(),
            compound: w.compound,
            category: w.category,
        };
        let id = acknowledged(&app, &w, &p1).await;
        let (_, t) = get(&app, &p1, id).await;
        let due = ts(&t["resolve_due_at"]);
        ok(
            &app,
            &p1,
            id,
            "request-extension",
            json!({"note": "并发", "due_at": rfc(due + Duration::days(3))}),
        )
        .await;
        // Past the deadline: the sweeper's breach and the approval race.
        app.clock.set(due + Duration::minutes(1));
        let community = app.login_staff("yc-c1").await;
        let approve = act(&app, &community, id, "approve-extension", json!({}));
        let sweeper = async {
            tokio::task::spawn_blocking({
                let db_settings = app.settings.clone();
                let now = app.now();
                move || {
                    let db = huying::db::Db::connect(&db_settings).expect("db");
                    let mut conn = db.get().expect("conn");
                    let sla = SlaEngine::from_settings(&db_settings.sla).expect("sla");
                    sla.reload(&mut conn).expect("reload");
                    sweep_once(&mut conn, &sla, now, 1000).expect("sweep")
                }
            })
            .await
            .expect("join")
        };
        let ((s, _), _) = tokio::join!(approve, sweeper);
        let (_, t) = get(&app, &community, id).await;
        let evs = events(&app, &community, id).await;
        let approved = evs.iter().any(|e| e["action"] == "approve_extension");
        let breached = evs
            .iter()
            .any(|e| e["action"] == "escalate" && e["reason"] == "sla_breach_resolve");
        if s == StatusCode::OK {
            assert!(approved && !breached, "round {round}: {evs:?}");
            assert_eq!(t["level"], "compound");
            assert_eq!(ts(&t["resolve_due_at"]), due + Duration::days(3));
        } else {
            assert!(!approved && breached, "round {round}: {s} {evs:?}");
            assert_eq!(t["level"], "community");
            assert!(t["extension"].is_null());
        }
    }
}

async fn a_take_over_racing_an_acknowledge_has_one_outcome(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let street = app.login_staff("yc-street").await;
    for round in 0..4 {
        let id = id_of(&create(&app, &w, "并发领办").await);
        let (a, b) = tokio::join!(
            act(&app, &p1, id, "acknowledge", json!({})),
            act(&app, &street, id, "take-over", json!({"note": "街道领办"})),
        );
        let evs = events(&app, &street, id).await;
        let ks = kinds(&evs);
        let oks = [a.0, b.0].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ks.len(), 1 + oks, "round {round}: {ks:?}");
        let (_, t) = get(&app, &street, id).await;
        if b.0 == StatusCode::OK {
            // Taken over (after the acknowledgement, or instead of it).
            assert_eq!(t["level"], "street", "round {round}");
            assert_eq!(ks.last().map(String::as_str), Some("take_over"));
        } else {
            assert_eq!(a.0, StatusCode::OK, "round {round}: {a:?} {b:?}");
            assert_eq!(t["status"], "acknowledged");
            assert_eq!(t["level"], "compound");
        }
        for (s, v) in [&a, &b] {
            assert!(
                *s == StatusCode::OK || *s == StatusCode::CONFLICT || *s == StatusCode::FORBIDDEN,
                "round {round}: {s} {v}"
            );
        }
    }
}

async fn a_hidden_resident_is_anonymous_to_the_compound_only(app: TestApp) {
    let w = morning(&app).await;
    let (s, t) = app
        .post(
            "/api/v1/tickets",
            Some(&w.resident),
            json!({"compound_id": w.compound, "category_id": w.category, "title": "楼上邻居深夜噪音",
                   "description": "每天凌晨一点还在装修", "hide_identity": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = id_of(&t);
    assert_eq!(t["identity_hidden"], true);
    let (s, _) = act(
        &app,
        &w.resident,
        id,
        "comment",
        json!({"note": "今晚又吵"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let p1 = app.login_staff("yc-c1-p1").await;
    let (_, seen) = get(&app, &p1, id).await;
    assert_eq!(seen["resident"]["display_name"], "匿名居民", "{seen}");
    assert!(seen["resident"]["phone_masked"].is_null());
    assert!(!seen["allowed_actions"]
        .as_array()
        .expect("a")
        .contains(&json!("reveal_phone")));
    let (s, v) = act(&app, &p1, id, "reveal-phone", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let evs = events(&app, &p1, id).await;
    let comment = evs
        .iter()
        .find(|e| e["action"] == "comment")
        .expect("comment");
    assert_eq!(comment["actor"]["name"], "匿名居民");
    assert!(comment["actor"]["id"].is_null());
    let raw = serde_json::to_string(&evs).expect("json") + &seen.to_string();
    assert!(
        !raw.contains("13800000001") && !raw.contains("138****"),
        "{raw}"
    );
    // The community and the street still see the masked phone.
    for u in ["yc-c1", "yc-street"] {
        let token = app.login_staff(u).await;
        let (_, t) = get(&app, &token, id).await;
        assert_eq!(t["resident"]["phone_masked"], "138****0001", "{u}: {t}");
    }
}

/// Every new action × role, on a ticket in the state the action needs (or the wrong one).
async fn authorization_table_for_the_accountability_actions(app: TestApp) {
    let w = morning(&app).await;
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
    let p1 = tokens["compound_in"].clone();
    let community = tokens["community_in"].clone();
    const ACTIONS: [&str; 8] = [
        "transfer",
        "urge",
        "take-over",
        "request-extension",
        "approve-extension",
        "reject-extension",
        "uphold-decline",
        "overturn-decline",
    ];
    let sibling = unit(&w, 1);
    let body = |action: &str, due: DateTime<Utc>| match action {
        "transfer" => json!({"compound_id": sibling, "note": "转办"}),
        "request-extension" => json!({"note": "延期", "due_at": rfc(due + Duration::days(1))}),
        _ => json!({"note": "意见"}),
    };
    #[derive(Clone, Copy)]
    enum State {
        /// Acknowledged at the compound.
        Working,
        /// Acknowledged at the compound with an extension request pending.
        Pending,
        /// Declined by the compound, under review at the community.
        Review,
        /// Closed: the wrong status for everything.
        Closed,
    }
    /// An actor and the status each action answers with.
    type Row = (&'static str, [u16; 8]);
    #[rustfmt::skip]
    let table: &[(State, &[Row])] = &[
        //                                   tra  urg  tko  req  apr  rej  uph  ovr
        (State::Working, &[
            ("owner",            [403, 403, 403, 403, 403, 403, 403, 403]),
            ("other_resident",   [404, 404, 404, 404, 404, 404, 404, 404]),
            ("compound_in",      [200, 403, 403, 200, 403, 403, 409, 409]),
            ("compound_sibling", [404, 404, 404, 404, 404, 404, 404, 404]),
            ("compound_out",     [404, 404, 404, 404, 404, 404, 404, 404]),
            ("community_in",     [200, 200, 200, 403, 409, 409, 403, 403]),
            ("community_out",    [404, 404, 404, 404, 404, 404, 404, 404]),
            ("street",           [409, 200, 200, 403, 409, 409, 403, 403]),
            ("admin",            [403, 403, 403, 403, 403, 403, 403, 403]),
        ]),
        (State::Pending, &[
            ("compound_in",      [200, 403, 403, 409, 403, 403, 409, 409]),
            ("community_in",     [200, 200, 200, 403, 200, 200, 403, 403]),
            ("street",           [409, 200, 200, 403, 409, 409, 403, 403]),
        ]),
        (State::Review, &[
            ("owner",            [403, 403, 403, 403, 403, 403, 403, 403]),
            ("compound_in",      [403, 403, 403, 403, 403, 403, 403, 403]),
            ("community_in",     [409, 403, 403, 409, 403, 403, 200, 200]),
            ("community_out",    [404, 404, 404, 404, 404, 404, 404, 404]),
            ("street",           [409, 200, 409, 403, 409, 409, 403, 403]),
        ]),
        (State::Closed, &[
            ("compound_in",      [409, 403, 403, 409, 403, 403, 409, 409]),
            ("community_in",     [409, 409, 409, 403, 409, 409, 403, 403]),
            ("street",           [409, 409, 409, 403, 409, 409, 403, 403]),
        ]),
    ];
    for (state, rows) in table {
        for (actor, expected) in rows.iter() {
            for (i, action) in ACTIONS.iter().enumerate() {
                app.clock.set(local(2026, 11, 30, 9, 0));
                let id = id_of(&create(&app, &w, "权限测试").await);
                match state {
                    State::Working | State::Pending | State::Closed => {
                        ok(&app, &p1, id, "acknowledge", json!({})).await;
                    }
                    State::Review => {
                        ok(&app, &p1, id, "decline", json!({"reason": "不予受理"})).await;
                    }
                }
                let (_, t) = get(&app, &p1, id).await;
                let due = t["resolve_due_at"]
                    .as_str()
                    .map(|_| ts(&t["resolve_due_at"]))
                    .unwrap_or_else(|| app.now());
                match state {
                    State::Pending => {
                        ok(
                            &app,
                            &p1,
                            id,
                            "request-extension",
                            body("request-extension", due),
                        )
                        .await;
                    }
                    State::Closed => {
                        ok(&app, &p1, id, "resolve", json!({"note": "已修好"})).await;
                        ok(&app, &w.resident, id, "confirm", json!({"rating": 5})).await;
                    }
                    _ => {}
                }
                let (s, v) = act(&app, &tokens[actor], id, action, body(action, due)).await;
                assert_eq!(s.as_u16(), expected[i], "{actor} {action}: {v}");
                if s == StatusCode::CONFLICT {
                    assert_eq!(error_code(&v), "action_not_allowed", "{v}");
                    assert!(v["details"]["allowed_actions"].is_array(), "{v}");
                }
            }
        }
    }
    let _ = community;
}

async fn supervision_lists_the_lower_levels_waiting_disputed_and_reviewed_tickets(app: TestApp) {
    let w = morning(&app).await;
    let p1 = app.login_staff("yc-c1-p1").await;
    let community = app.login_staff("yc-c1").await;
    let street = app.login_staff("yc-street").await;
    let waiting = id_of(&create(&app, &w, "等待受理").await);
    let disputed = acknowledged(&app, &w, &p1).await;
    ok(&app, &p1, disputed, "resolve", json!({"note": "已处理"})).await;
    let d = ok(
        &app,
        &w.resident,
        disputed,
        "dispute",
        json!({"note": "没修好"}),
    )
    .await;
    assert_eq!(d["disputes_at_level"], 1);
    let reviewed = id_of(&create(&app, &w, "不予受理待复核").await);
    ok(&app, &p1, reviewed, "decline", json!({"reason": "不属实"})).await;
    let ids = |v: &Value| -> Vec<i64> {
        let mut ids: Vec<i64> = v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(id_of)
            .collect();
        ids.sort_unstable();
        ids
    };
    let (_, q) = app
        .get("/api/v1/tickets?view=supervision", Some(&community))
        .await;
    assert_eq!(
        ids(&q),
        [waiting, disputed],
        "the review is the community's own decision"
    );
    let (_, q) = app
        .get(
            "/api/v1/tickets?view=supervision&disputed=true",
            Some(&community),
        )
        .await;
    assert_eq!(ids(&q), [disputed]);
    let (_, q) = app
        .get("/api/v1/tickets?view=supervision", Some(&street))
        .await;
    assert_eq!(ids(&q), [waiting, disputed, reviewed]);
    let (_, q) = app
        .get(
            "/api/v1/tickets?view=supervision&status=decline_review",
            Some(&street),
        )
        .await;
    assert_eq!(ids(&q), [reviewed]);
    let (_, q) = app
        .get("/api/v1/tickets?view=decisions", Some(&community))
        .await;
    assert_eq!(ids(&q), [reviewed]);
    // The compound has no level below it.
    let (_, q) = app.get("/api/v1/tickets?view=supervision", Some(&p1)).await;
    assert_eq!(q["total"], 0, "{q}");
}
