//! SLA clocks on the Chinese working calendar and the sweeper that calls tickets up.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{local, sweep, TestApp};
use crate::tickets::{act, create, world};
use huying::service::sla::SlaEngine;
use huying::service::sweeper::sweep_once;

both_backends!(
    a_ticket_before_national_day_is_due_after_the_holiday,
    an_unanswered_ticket_walks_up_to_the_street_and_turns_overdue,
    warnings_come_once_and_resolved_tickets_close_by_themselves,
    a_secretary_and_the_sweeper_racing_produce_one_outcome,
    two_sweepers_escalate_every_ticket_exactly_once,
    waiting_on_the_resident_pauses_the_settle_clock,
    a_pause_never_outlasts_its_cap,
    admins_change_policies_for_new_arrivals_only,
    admins_load_another_years_calendar,
    a_ticket_whose_change_fails_is_left_alone_and_its_chunk_goes_on,
);

/// The demo world, with the clock then set to exactly `at` (signing residents in moves it).
async fn world_at(app: &TestApp, at: DateTime<Utc>) -> crate::tickets::World {
    app.clock.set(at);
    let w = world(app).await;
    app.clock.set(at);
    w
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("timestamp").parse().expect("rfc3339")
}

async fn a_ticket_before_national_day_is_due_after_the_holiday(app: TestApp) {
    // 2026-09-30 (Wednesday) is the last working day before 国庆 (10-01 … 10-07).
    let w = world_at(&app, local(2026, 9, 30, 17, 0)).await;
    let t = create(&app, &w, "节前报修").await;
    // 4 working hours: 30 min that evening, 3.5 h on Thursday 10-08 morning.
    assert_eq!(ts(&t["ack_due_at"]), local(2026, 10, 8, 12, 0), "{t}");
    // 3 working days = 21 working hours: 0.5 h + 10-08 (7 h) + 10-09 (7 h) + Saturday 10-10, a make-up working day (6.5 h).
    assert_eq!(ts(&t["resolve_due_at"]), local(2026, 10, 10, 17, 0), "{t}");
}

async fn an_unanswered_ticket_walks_up_to_the_street_and_turns_overdue(app: TestApp) {
    let w = world_at(&app, local(2026, 11, 30, 9, 0)).await; // a Monday
    let t = create(&app, &w, "没人理").await;
    let id = t["id"].as_i64().expect("id");
    let due = ts(&t["ack_due_at"]);
    assert_eq!(
        due,
        local(2026, 11, 30, 15, 0),
        "4 working hours across lunch: 09:00–12:00, 14:00–15:00"
    );

    // A sweep before the deadline changes nothing but the warning.
    let r = sweep(&app, local(2026, 11, 30, 13, 0));
    assert_eq!(r.escalated, 0);
    let r = sweep(&app, due + Duration::seconds(1));
    assert_eq!(r.escalated, 1, "{r:?}");
    let again = sweep(&app, due + Duration::seconds(2));
    assert_eq!(again.escalated, 0, "never twice");

    let staff = app.login_staff("yc-c1").await;
    let (_, v) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&staff))
        .await;
    assert_eq!(v["level"], "community");
    assert_eq!(v["status"], "open");
    let community_due = ts(&v["ack_due_at"]);
    sweep(&app, community_due + Duration::seconds(1));
    let (_, v) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&staff))
        .await;
    assert_eq!(v["level"], "street");
    let street_due = ts(&v["ack_due_at"]);
    let r = sweep(&app, street_due + Duration::seconds(1));
    assert_eq!(r.marked_overdue, 1);
    let r = sweep(&app, street_due + Duration::hours(5));
    assert_eq!(r.marked_overdue, 0, "overdue is marked once");
    let street = app.login_staff("yc-street").await;
    let (_, v) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&street))
        .await;
    assert_eq!(v["overdue"], true);
    assert_eq!(v["escalation_count"], 2);
    let (_, overdue) = app.get("/api/v1/tickets?overdue=true", Some(&street)).await;
    assert_eq!(overdue["total"], 1);

    let (_, events) = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&street))
        .await;
    let story: Vec<(String, Option<String>)> = events
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] != "sla_warning")
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["reason"].as_str().map(str::to_string),
            )
        })
        .collect();
    let breach = Some("sla_breach_acknowledge".to_string());
    assert_eq!(
        story,
        vec![
            ("create".to_string(), None),
            ("escalate".to_string(), breach.clone()),
            ("escalate".to_string(), breach.clone()),
            ("overdue".to_string(), breach),
        ]
    );
    assert!(events
        .as_array()
        .expect("e")
        .iter()
        .all(|e| e["actor"]["name"] == "系统" || e["action"] == "create"));
}

async fn warnings_come_once_and_resolved_tickets_close_by_themselves(app: TestApp) {
    let w = world_at(&app, local(2026, 11, 30, 9, 0)).await;
    let id = create(&app, &w, "提醒").await["id"].as_i64().expect("id");
    // A quarter of 4 h is 1 h: the warning is due at 14:00 local, one working hour before 15:00.
    let r = sweep(&app, local(2026, 11, 30, 11, 0));
    assert_eq!(r.warned, 0);
    let r = sweep(&app, local(2026, 11, 30, 13, 59));
    assert_eq!(r.warned, 0);
    let r = sweep(&app, local(2026, 11, 30, 14, 0));
    assert_eq!(r.warned, 1);
    let r = sweep(&app, local(2026, 11, 30, 14, 10));
    assert_eq!(r.warned, 0, "once per clock");

    app.clock.set(local(2026, 11, 30, 14, 15));
    let staff = app.login_staff("yc-c1-p1").await;
    let (s, _) = act(&app, &staff, id, "resolve", json!({"note": "已修好"})).await;
    assert_eq!(s, StatusCode::OK);
    let r = sweep(&app, local(2026, 12, 7, 14, 0));
    assert_eq!(r.auto_closed, 0, "not yet seven days");
    let r = sweep(&app, local(2026, 12, 7, 14, 16));
    assert_eq!(r.auto_closed, 1);
    let (_, v) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&staff))
        .await;
    assert_eq!(v["status"], "closed");
    assert_eq!(v["closed_by"], "auto");
}

async fn a_secretary_and_the_sweeper_racing_produce_one_outcome(app: TestApp) {
    let w = world_at(&app, local(2026, 11, 30, 9, 0)).await;
    let id = create(&app, &w, "竞争").await["id"].as_i64().expect("id");
    let after_due = local(2026, 11, 30, 15, 1);
    app.clock.set(after_due);
    let staff = app.login_staff("yc-c1-p1").await;
    let settings = app.settings.clone();
    let sweeper = std::thread::spawn(move || {
        let db = huying::db::Db::connect(&settings).expect("db");
        let mut conn = db.get().expect("conn");
        let sla = SlaEngine::with_defaults().expect("sla");
        sweep_once(&mut conn, &sla, after_due, 1000).expect("sweep")
    });
    let (s, _) = act(
        &app,
        &staff,
        id,
        "resolve",
        json!({"note": "抢在上报前办结"}),
    )
    .await;
    let report = sweeper.join().expect("join");
    let (_, v) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&staff))
        .await;
    if s == StatusCode::OK {
        // The secretary won: resolved at compound level, unless the sweeper ran first and the
        // resolve then failed — which the status code rules out.
        assert_eq!(v["status"], "resolved");
        assert_eq!(report.escalated, 0);
    } else {
        assert!(
            s == StatusCode::CONFLICT || s == StatusCode::FORBIDDEN,
            "{s}"
        );
        assert_eq!(v["level"], "community");
        assert_eq!(report.escalated, 1);
    }
}

async fn two_sweepers_escalate_every_ticket_exactly_once(app: TestApp) {
    let w = world_at(&app, local(2026, 11, 30, 9, 0)).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            create(&app, &w, &format!("批量{i}")).await["id"]
                .as_i64()
                .expect("id"),
        );
    }
    let at = local(2026, 11, 30, 15, 30);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let settings = app.settings.clone();
            std::thread::spawn(move || {
                let db = huying::db::Db::connect(&settings).expect("db");
                let mut conn = db.get().expect("conn");
                let sla = SlaEngine::with_defaults().expect("sla");
                sweep_once(&mut conn, &sla, at, 1000).expect("sweep")
            })
        })
        .collect();
    let total: usize = handles
        .into_iter()
        .map(|h| h.join().expect("join").escalated)
        .sum();
    assert_eq!(total, 20);
    let staff = app.login_staff("yc-c1").await;
    for id in ids {
        let (_, events) = app
            .get(&format!("/api/v1/tickets/{id}/events"), Some(&staff))
            .await;
        let escalations = events
            .as_array()
            .expect("e")
            .iter()
            .filter(|e| e["action"] == "escalate")
            .count();
        assert_eq!(escalations, 1, "ticket {id}");
    }
}

async fn waiting_on_the_resident_pauses_the_settle_clock(app: TestApp) {
    let w = world_at(&app, local(2026, 11, 30, 9, 0)).await;
    let id = create(&app, &w, "需补充").await["id"].as_i64().expect("id");
    let staff = app.login_staff("yc-c1-p1").await;
    let (_, v) = act(&app, &staff, id, "acknowledge", json!({})).await;
    // 3 working days = 21 working hours from Monday 09:00 → Thursday 09:00.
    assert_eq!(ts(&v["ticket"]["resolve_due_at"]), local(2026, 12, 3, 9, 0));
    let (s, v) = act(&app, &staff, id, "wait-on-resident", json!({})).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a note is required: {v}"
    );
    app.clock.set(local(2026, 11, 30, 10, 0));
    let staff = app.login_staff("yc-c1-p1").await;
    let (s, v) = act(
        &app,
        &staff,
        id,
        "wait-on-resident",
        json!({"note": "请补充漏水位置的照片"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ticket"]["waiting_on_resident"], true);
    assert!(
        v["ticket"]["due_in_seconds"].is_null(),
        "no countdown while paused"
    );
    let (s, _) = act(
        &app,
        &staff,
        id,
        "wait-on-resident",
        json!({"note": "again"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Nothing breaches while paused, even past the original deadline.
    let r = sweep(&app, local(2026, 12, 3, 9, 30));
    assert_eq!(r.escalated, 0);

    // The resident answers on Tuesday 10:00: 7 working hours were paused (Mon 10:00–17:30 less
    // lunch = 5.5 h, Tue 08:30–10:00 = 1.5 h), so the deadline moves from Thu 09:00 to Fri 09:00.
    app.clock.set(local(2026, 12, 1, 10, 0));
    let resident = app.login_resident("13800000001").await;
    app.clock.set(local(2026, 12, 1, 10, 0));
    let (s, v) = act(
        &app,
        &resident,
        id,
        "comment",
        json!({"note": "照片已上传"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ticket"]["waiting_on_resident"], false);
    assert_eq!(ts(&v["ticket"]["resolve_due_at"]), local(2026, 12, 4, 9, 0));
}

async fn a_pause_never_outlasts_its_cap(app: TestApp) {
    let w = world_at(&app, local(2026, 11, 30, 9, 0)).await;
    let id = create(&app, &w, "一直不补充").await["id"]
        .as_i64()
        .expect("id");
    let staff = app.login_staff("yc-c1-p1").await;
    act(&app, &staff, id, "acknowledge", json!({})).await;
    app.clock.set(local(2026, 11, 30, 10, 0));
    let staff = app.login_staff("yc-c1-p1").await;
    let (s, _) = act(
        &app,
        &staff,
        id,
        "wait-on-resident",
        json!({"note": "请补充"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // The cap is 3 working days (21 h) from Monday 10:00: Thursday 10:00.
    let r = sweep(&app, local(2026, 12, 3, 9, 59));
    assert_eq!(r.resumed, 0);
    let r = sweep(&app, local(2026, 12, 3, 10, 0));
    assert_eq!(r.resumed, 1, "{r:?}");
    app.clock.set(local(2026, 12, 3, 10, 0));
    let staff = app.login_staff("yc-c1-p1").await;
    let (_, v) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&staff))
        .await;
    assert_eq!(v["waiting_on_resident"], false);
    // Thursday 09:00 plus the whole cap of 21 working hours: Tuesday 12-08 09:00.
    assert_eq!(ts(&v["resolve_due_at"]), local(2026, 12, 8, 9, 0));
    let r = sweep(&app, local(2026, 12, 8, 9, 1));
    assert_eq!(r.escalated, 1, "the clock runs again and breaches");
}

async fn admins_change_policies_for_new_arrivals_only(app: TestApp) {
    let w = world_at(&app, local(2026, 11, 30, 9, 0)).await;
    let before = create(&app, &w, "改策略前").await;
    let admin = app.login_staff("yc-admin").await;
    let staff = app.login_staff("yc-c1-p1").await;
    let (s, v) = app.get("/api/v1/sla-policies", Some(&staff)).await;
    assert_eq!(s, StatusCode::OK);
    let mut policies = v["policies"].as_array().expect("policies").clone();
    assert_eq!(policies.len(), 6);
    let (s, _) = app.get("/api/v1/sla-policies", Some(&w.resident)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for p in policies.iter_mut() {
        if p["level"] == "compound" && p["urgency"].is_null() {
            p["acknowledge_minutes"] = json!(60);
        }
    }
    let (s, _) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/sla-policies",
            Some(&staff),
            Some(&json!({"policies": policies})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/sla-policies",
            Some(&admin),
            Some(&json!({"policies": policies})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let after = create(&app, &w, "改策略后").await;
    assert_eq!(ts(&after["ack_due_at"]), local(2026, 11, 30, 10, 0));
    let (_, unchanged) = app
        .get(&format!("/api/v1/tickets/{}", before["id"]), Some(&staff))
        .await;
    assert_eq!(
        unchanged["ack_due_at"], before["ack_due_at"],
        "running clocks keep their deadlines"
    );

    let only_compound: Vec<Value> = policies
        .iter()
        .filter(|p| p["level"] == "compound")
        .cloned()
        .collect();
    let (s, v) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/sla-policies",
            Some(&admin),
            Some(&json!({"policies": only_compound})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["code"], "missing_default_policy");
    let mut bad = policies.clone();
    bad[0]["acknowledge_minutes"] = json!(99999);
    let (s, v) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/sla-policies",
            Some(&admin),
            Some(&json!({"policies": bad})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["code"], "invalid_policy");
}

async fn admins_load_another_years_calendar(app: TestApp) {
    let w = world_at(&app, local(2026, 12, 31, 16, 0)).await;
    let admin = app.login_staff("yc-admin").await;
    let (_, years) = app.get("/api/v1/calendars", Some(&admin)).await;
    assert_eq!(years.as_array().map(Vec::len), Some(1));
    assert_eq!(years[0]["year"], 2026);
    let spec = json!({"year": 2027, "timezone": "Asia/Shanghai", "off": [{"name": "元旦", "from": "2027-01-01", "to": "2027-01-03"}], "work": []});
    let (s, v) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/calendars/2027",
            Some(&admin),
            Some(&spec),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // 16:00–17:30 on 12-31 (1.5 h), 元旦 and the weekend off, then Monday 2027-01-04 08:30 + 2.5 h.
    let t = create(&app, &w, "跨年").await;
    assert_eq!(ts(&t["ack_due_at"]), local(2027, 1, 4, 11, 0));
    let (_, got) = app.get("/api/v1/calendars/2027", Some(&admin)).await;
    assert_eq!(got["off"][0]["name"], "元旦");

    let toml = include_str!("../../config/calendars/2026.toml");
    let r = app
        .client
        .put(format!("{}/api/v1/calendars/2028", app.base))
        .bearer_auth(&admin)
        .header("content-type", "application/toml")
        .body(toml)
        .send()
        .await
        .expect("put");
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "year in path and file differ"
    );
    let r = app
        .client
        .put(format!("{}/api/v1/calendars/2026", app.base))
        .bearer_auth(&admin)
        .header("content-type", "application/toml")
        .body(toml)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::OK);
    let bad = json!({"year": 2029, "timezone": "Asia/Shanghai", "off": [{"name": "x", "from": "2029-05-05", "to": "2029-05-01"}]});
    let (s, v) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/calendars/2029",
            Some(&admin),
            Some(&bad),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["code"], "invalid_calendar");
    let resident = app.login_resident("13800000002").await;
    let (s, _) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/calendars/2027",
            Some(&resident),
            Some(&spec),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// Runs `sql` on the app's database, in the engine's own dialect (test set-up only).
fn exec_sql(app: &TestApp, sqlite: &str, postgres: &str) {
    use diesel::connection::SimpleConnection;
    let db = huying::db::Db::connect(&app.settings).expect("db");
    let mut conn = db.get().expect("conn");
    match &mut *conn {
        huying::db::DbConn::Sqlite(c) => c.batch_execute(sqlite),
        huying::db::DbConn::Pg(c) => c.batch_execute(postgres),
    }
    .expect("set-up SQL");
}

/// The outbox rows of each ticket's first call-up as (recipient, channel, kind, address),
/// sorted.
fn outbox_of(app: &TestApp, ids: &[i64]) -> Vec<Vec<(String, String, String, String)>> {
    use diesel::prelude::*;
    use huying::db::notify_schema::notifications;
    use huying::db::schema::ticket_events;
    use huying::domain::ticket::EventKind;
    use huying::notify::rules::Channel;
    let db = huying::db::Db::connect(&app.settings).expect("db");
    let mut conn = db.get().expect("conn");
    ids.iter()
        .map(|&id| {
            let first = ticket_events::table
                .filter(ticket_events::ticket_id.eq(id))
                .filter(ticket_events::action.eq(EventKind::Escalate))
                .select(diesel::dsl::min(ticket_events::id));
            let event: Option<i64> = match &mut *conn {
                huying::db::DbConn::Sqlite(c) => first.first(c),
                huying::db::DbConn::Pg(c) => first.first(c),
            }
            .expect("first call-up");
            let q = notifications::table
                .filter(notifications::event_id.eq(event.expect("called up")))
                .select((
                    notifications::recipient_key,
                    notifications::channel,
                    notifications::kind,
                    notifications::address,
                ));
            let rows: Vec<(String, Channel, String, String)> = match &mut *conn {
                huying::db::DbConn::Sqlite(c) => q.load(c),
                huying::db::DbConn::Pg(c) => q.load(c),
            }
            .expect("outbox");
            let mut rows: Vec<_> = rows
                .into_iter()
                .map(|(k, c, kind, a)| (k, format!("{c:?}"), kind, a))
                .collect();
            rows.sort();
            rows
        })
        .collect()
}

/// A chunk's changes are stored together; when that fails (here a trigger refuses one
/// ticket's update), the chunk is swept again ticket by ticket: the failing one is left for the
/// next sweep and the others are called up, with the same outbox rows as a chunk stored in one
/// go.
async fn a_ticket_whose_change_fails_is_left_alone_and_its_chunk_goes_on(app: TestApp) {
    let w = world_at(&app, local(2026, 11, 30, 9, 0)).await;
    let mut together = Vec::new();
    for i in 0..4 {
        together.push(
            create(&app, &w, &format!("一起{i}")).await["id"]
                .as_i64()
                .expect("id"),
        );
    }
    let r = sweep(&app, local(2026, 11, 30, 15, 30));
    assert_eq!(r.escalated, 4, "{r:?}");

    // The next day (a fresh sign-in: the first one's token has expired).
    app.clock.set(local(2026, 12, 1, 9, 0));
    let w = crate::tickets::World {
        resident: app.login_resident("13800000001").await,
        ..w
    };
    app.clock.set(local(2026, 12, 1, 9, 0));
    let mut apart = Vec::new();
    for i in 0..5 {
        apart.push(
            create(&app, &w, &format!("分开{i}")).await["id"]
                .as_i64()
                .expect("id"),
        );
    }
    let bad = apart[2];
    exec_sql(
        &app,
        &format!(
            "CREATE TRIGGER refuse_one BEFORE UPDATE OF level ON tickets WHEN NEW.id = {bad} \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;"
        ),
        &format!(
            "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.id = {bad} AND NEW.level <> OLD.level THEN RAISE EXCEPTION 'refused'; \
             END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse_one BEFORE UPDATE ON tickets FOR EACH ROW \
             EXECUTE FUNCTION refuse_one();"
        ),
    );
    // The first four, at community level since yesterday, are called up again: 4 + 4.
    let r = sweep(&app, local(2026, 12, 1, 15, 30));
    assert_eq!(r.escalated, 8, "{r:?}");
    let staff = app.login_staff("yc-c1").await;
    for &id in &apart {
        let (_, v) = app
            .get(&format!("/api/v1/tickets/{id}"), Some(&staff))
            .await;
        let want = if id == bad { "compound" } else { "community" };
        assert_eq!(v["level"], want, "ticket {id}: {v}");
    }
    exec_sql(
        &app,
        "DROP TRIGGER refuse_one;",
        "DROP TRIGGER refuse_one ON tickets; DROP FUNCTION refuse_one();",
    );
    let r = sweep(&app, local(2026, 12, 1, 15, 31));
    assert_eq!(r.escalated, 1, "{r:?}");

    // Whichever way they were stored, every call-up told the same people the same way.
    let all: Vec<i64> = together.iter().chain(&apart).copied().collect();
    let outboxes = outbox_of(&app, &all);
    assert!(!outboxes[0].is_empty());
    for (id, rows) in all.iter().zip(&outboxes) {
        assert_eq!(rows, &outboxes[0], "ticket {id}");
    }
}
