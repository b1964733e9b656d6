//! Personal data (个人信息保护法): a resident's export, erasure confirmed by a code (name and
//! phone nowhere in the database afterwards, statistics unchanged), retention, and the audit
//! log of reveals and exports.

use chrono::{Datelike, Duration};
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, Backend, TestApp};
use crate::tickets::{act, create, upload, world};
use crate::uploads::png;

both_backends!(
    a_resident_downloads_everything_kept_about_them,
    erasure_leaves_no_name_or_phone_anywhere_and_the_statistics_unchanged,
    retention_erases_residents_whose_tickets_ended_long_ago,
    reveals_and_exports_are_in_the_audit_log,
);

const PHONE: &str = "13800000001";
const MASKED: &str = "138****0001";
const NAME: &str = "张阿姨";

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Every `table.column` of the database whose text contains `needle`.
fn columns_containing(app: &TestApp, needle: &str) -> Vec<String> {
    let pattern = format!("%{needle}%");
    let mut found = Vec::new();
    match app.db.backend {
        Backend::Sqlite => {
            let path = app.db.url.trim_start_matches("sqlite://");
            let mut c = SqliteConnection::establish(path).expect("sqlite");
            let tables: Vec<Name> = diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .load(&mut c)
            .expect("tables");
            for t in tables {
                let cols: Vec<Name> = diesel::sql_query("SELECT name FROM pragma_table_info(?)")
                    .bind::<diesel::sql_types::Text, _>(&t.name)
                    .load(&mut c)
                    .expect("columns");
                for col in cols {
                    let n: Count = diesel::sql_query(format!(
                        "SELECT COUNT(*) AS n FROM \"{}\" WHERE CAST(\"{}\" AS TEXT) LIKE ?",
                        t.name, col.name
                    ))
                    .bind::<diesel::sql_types::Text, _>(&pattern)
                    .get_result(&mut c)
                    .expect("count");
                    if n.n > 0 {
                        found.push(format!("{}.{}", t.name, col.name));
                    }
                }
            }
        }
        Backend::Postgres => {
            let mut c = PgConnection::establish(&app.db.url).expect("postgres");
            let cols: Vec<Column> = diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name \
                 FROM information_schema.columns WHERE table_schema = 'public' \
                 AND data_type IN ('text', 'character varying', 'character')",
            )
            .load(&mut c)
            .expect("columns");
            assert!(cols.len() > 20, "{}", cols.len());
            for col in cols {
                let n: Count = diesel::sql_query(format!(
                    "SELECT COUNT(*) AS n FROM \"{}\" WHERE \"{}\" LIKE $1",
                    col.table_name, col.column_name
                ))
                .bind::<diesel::sql_types::Text, _>(&pattern)
                .get_result(&mut c)
                .expect("count");
                if n.n > 0 {
                    found.push(format!("{}.{}", col.table_name, col.column_name));
                }
            }
        }
    }
    found
}

/// This month so far (Asia/Shanghai dates), as the dashboard asks for it.
fn this_month(app: &TestApp) -> String {
    let local = (app.now() + Duration::hours(8)).date_naive();
    format!("from={}-{:02}-01&to={local}", local.year(), local.month())
}

async fn ok_json(app: &TestApp, path: &str, token: &str) -> Value {
    let (s, v) = app.get(path, Some(token)).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    v
}

async fn a_resident_downloads_everything_kept_about_them(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "楼道灯坏了").await["id"]
        .as_i64()
        .expect("id");
    let (s, _) = upload(&app, &w.resident, id, png(), "灯.png").await;
    assert_eq!(s, StatusCode::CREATED);
    let staff = app.login_staff("yc-c1-p1").await;
    let (s, _) = act(&app, &staff, id, "comment", json!({"note": "明天上午来修"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = act(
        &app,
        &staff,
        id,
        "comment",
        json!({"note": "内部：电工已派", "internal": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let r = app
        .client
        .get(format!("{}/api/v1/me/export", app.base))
        .bearer_auth(&w.resident)
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .expect("header")
        .starts_with("attachment"));
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["account"]["phone"], PHONE);
    assert_eq!(v["account"]["display_name"], NAME);
    assert_eq!(v["tickets"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["tickets"][0]["id"], id);
    assert_eq!(v["attachments"].as_array().map(Vec::len), Some(1));
    let notes: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["note"].as_str())
        .collect();
    assert!(notes.contains(&"明天上午来修"), "{notes:?}");
    assert!(!notes.iter().any(|n| n.contains("内部")), "{notes:?}");
    let notifications = v["notifications"].as_array().expect("notifications");
    assert!(!notifications.is_empty(), "{v}");
    assert!(notifications
        .iter()
        .all(|n| n["recipient_key"] == format!("user:{}", v["account"]["id"])));
    assert!(v["notification_settings"].is_object());
    // Another resident's export holds none of it.
    let other = app.login_resident("13800000002").await;
    let o = ok_json(&app, "/api/v1/me/export", &other).await;
    assert_eq!(o["tickets"], json!([]));
    assert!(!o.to_string().contains(PHONE));
}

async fn erasure_leaves_no_name_or_phone_anywhere_and_the_statistics_unchanged(app: TestApp) {
    let w = world(&app).await;
    let resident_id = ok_json(&app, "/api/v1/me", &w.resident).await["id"]
        .as_i64()
        .expect("id");
    let compound = app.login_staff("yc-c1-p1").await;
    let street = app.login_staff("yc-street").await;
    // Tickets that carry the name and phone in every free-text place a resident or staff can.
    let (s, t) = app
        .post(
            "/api/v1/tickets",
            Some(&w.resident),
            json!({
                "compound_id": w.compound, "category_id": w.category,
                "title": format!("{NAME}家门口积水"),
                "description": format!("我是{NAME}，电话{PHONE}，请联系我"),
                "location": {"text": format!("{NAME}家楼下 {PHONE}")}
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let first = t["id"].as_i64().expect("id");
    let (s, _) = upload(&app, &w.resident, first, png(), &format!("{PHONE}.png")).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = act(&app, &compound, first, "reveal-phone", json!({})).await;
    assert_eq!((s, v["phone"].as_str()), (StatusCode::OK, Some(PHONE)));
    for (action, body) in [
        ("acknowledge", json!({})),
        (
            "comment",
            json!({"note": format!("已电话联系{NAME}（{MASKED}）")}),
        ),
        (
            "assign",
            json!({"handler": format!("电工老刘，联系{NAME} {PHONE}")}),
        ),
        ("resolve", json!({"note": format!("已为{NAME}疏通")})),
    ] {
        let (s, v) = act(&app, &compound, first, action, body).await;
        assert_eq!(s, StatusCode::OK, "{action}: {v}");
    }
    let (s, v) = act(
        &app,
        &w.resident,
        first,
        "confirm",
        json!({"rating": 5, "comment": format!("{NAME}很满意")}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let second = create(&app, &w, "路灯不亮").await["id"]
        .as_i64()
        .expect("id");
    assert!(
        !columns_containing(&app, PHONE).is_empty(),
        "the phone is stored before the erasure"
    );

    // The compound's queue page, kept until a ticket changes: the erasure is such a change.
    let queue = ok_json(&app, "/api/v1/tickets?status=closed", &compound).await;
    assert_eq!(queue["items"][0]["title"], format!("{NAME}家门口积水"));

    let range = this_month(&app);
    let summary = format!("/api/v1/stats/summary?{range}");
    let before = ok_json(&app, &summary, &street).await;
    assert_eq!(before["tickets"], 2, "{before}");

    let (s, _) = app
        .post("/api/v1/auth/otp", None, json!({"phone": PHONE}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let code = app.sms.last_code(PHONE).expect("code");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, v) = app
        .post(
            "/api/v1/me/erase",
            Some(&w.resident),
            json!({"code": wrong}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v), "invalid_code");
    let (s, v) = app
        .post("/api/v1/me/erase", Some(&compound), json!({"code": code}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = app
        .post("/api/v1/me/erase", Some(&w.resident), json!({"code": code}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["tickets"], 2);
    let pseudonym = v["pseudonym"].as_str().expect("pseudonym").to_string();

    for needle in [PHONE, MASKED, NAME] {
        assert_eq!(
            columns_containing(&app, needle),
            Vec::<String>::new(),
            "{needle} is still stored"
        );
    }
    // Signed out everywhere at once.
    let (s, _) = app.get("/api/v1/me", Some(&w.resident)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The tickets stay, under the pseudonym, with the text otherwise intact.
    let t = ok_json(&app, &format!("/api/v1/tickets/{first}"), &compound).await;
    assert_eq!(t["title"], format!("{pseudonym}家门口积水"));
    assert_eq!(t["status"], "closed");
    assert!(!t.to_string().contains(NAME), "{t}");
    let queue = ok_json(&app, "/api/v1/tickets?status=closed", &compound).await;
    assert_eq!(queue["items"][0]["title"], format!("{pseudonym}家门口积水"));
    let t2 = ok_json(&app, &format!("/api/v1/tickets/{second}"), &compound).await;
    assert_eq!(t2["status"], "open");
    let after = ok_json(&app, &summary, &street).await;
    assert_eq!(before, after, "the statistics changed");

    // The same phone may sign in again: a new, empty account.
    let again = app.login_resident(PHONE).await;
    let me = ok_json(&app, "/api/v1/me", &again).await;
    assert_ne!(me["id"], resident_id);
    let (_, list) = app.get("/api/v1/tickets", Some(&again)).await;
    assert_eq!(list["total"], 0);

    let admin = app.login_staff("yc-admin").await;
    let log = ok_json(
        &app,
        &format!("/api/v1/admin/audit-log?subject_user_id={resident_id}"),
        &admin,
    )
    .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["erasure", "reveal_phone"]);
}

async fn retention_erases_residents_whose_tickets_ended_long_ago(app: TestApp) {
    let w = world(&app).await;
    let gone = create(&app, &w, "旧事").await["id"].as_i64().expect("id");
    let (s, v) = act(&app, &w.resident, gone, "withdraw", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let neighbour = app.login_resident("13800000002").await;
    let (s, v) = app
        .post(
            "/api/v1/tickets",
            Some(&neighbour),
            json!({"compound_id": w.compound, "category_id": w.category, "title": "还在处理", "description": "李先生的事"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let open = v["id"].as_i64().expect("id");

    let db = huying::db::Db::connect(&app.settings).expect("db");
    let years = app.settings.privacy.retention_years;
    assert_eq!(years, 3);
    let almost = app.now() + Duration::days(3 * 365 - 2);
    assert_eq!(
        huying::service::privacy::erase_expired(&db, almost, years).expect("retention"),
        0
    );
    let later = app.now() + Duration::days(3 * 365 + 2);
    assert_eq!(
        huying::service::privacy::erase_expired(&db, later, years).expect("retention"),
        1
    );
    // Once only.
    assert_eq!(
        huying::service::privacy::erase_expired(&db, later, years).expect("retention"),
        0
    );
    assert_eq!(columns_containing(&app, PHONE), Vec::<String>::new());
    assert!(!columns_containing(&app, "13800000002").is_empty());
    let staff = app.login_staff("yc-c1-p1").await;
    let t = ok_json(&app, &format!("/api/v1/tickets/{open}"), &staff).await;
    assert_eq!(t["resident"]["display_name"], "李先生");
    let admin = app.login_staff("yc-admin").await;
    let log = ok_json(
        &app,
        "/api/v1/admin/audit-log?action=retention_erasure",
        &admin,
    )
    .await;
    assert_eq!(log["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(log["items"][0]["actor_role"], "system");
    assert_eq!(log["items"][0]["actor_id"], Value::Null);
}

async fn reveals_and_exports_are_in_the_audit_log(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "电话").await["id"].as_i64().expect("id");
    let compound = app.login_staff("yc-c1-p1").await;
    let (s, _) = act(&app, &compound, id, "reveal-phone", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let street = app.login_staff("yc-street").await;
    for path in [
        "/api/v1/stats/tickets.csv",
        "/api/v1/stats/tickets.xlsx",
        "/api/v1/stats/ranking.csv",
        "/api/v1/stats/ranking.xlsx",
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(&street)
            .send()
            .await
            .expect("export");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let (s, _) = app.get("/api/v1/admin/audit-log", Some(&street)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let admin = app.login_staff("yc-admin").await;
    let all = ok_json(&app, "/api/v1/admin/audit-log", &admin).await;
    let items = all["items"].as_array().expect("items");
    assert_eq!(items.len(), 5, "{all}");
    assert_eq!(all["next_before"], Value::Null);
    let reveal = items.last().expect("oldest");
    assert_eq!(reveal["action"], "reveal_phone");
    assert_eq!(reveal["ticket_id"], id);
    assert_eq!(reveal["actor_role"], "compound_staff");
    assert!(reveal["actor_name"].as_str().is_some());
    assert!(items[..4].iter().all(|e| e["action"] == "stats_export"
        && e["actor_role"] == "street_staff"
        && e["subject_user_id"].is_null()));
    // Paged: two at a time, newest first, the same five rows.
    let mut seen = Vec::new();
    let mut path = "/api/v1/admin/audit-log?limit=2".to_string();
    loop {
        let page = ok_json(&app, &path, &admin).await;
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|e| e["id"].clone()),
        );
        match page["next_before"].as_i64() {
            Some(b) => path = format!("/api/v1/admin/audit-log?limit=2&before={b}"),
            None => break,
        }
    }
    let ids: Vec<Value> = items.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(seen, ids);
    let (s, v) = app
        .get("/api/v1/admin/audit-log?limit=0", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}
