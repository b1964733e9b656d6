//! The queue's `total` is counted when asked and kept until a ticket changes: it always equals
//! a count of the scope in the database after any change through the service, on either
//! backend and across instances, while a request between changes is served without counting.
//! A unit's queue pages are kept the same way: after any change they show the database's rows.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::tickets::{act, create, world};
use huying::db::schema::tickets;

/// The database's own count of a compound's tickets, optionally of one status.
fn counted(app: &TestApp, compound: i64, status: Option<&str>) -> i64 {
    let db = huying::db::Db::connect(&app.settings).expect("db");
    let mut conn = db.get().expect("conn");
    let mut q = tickets::table
        .filter(tickets::compound_id.eq(compound))
        .into_boxed::<huying::db::MultiBackend>();
    if let Some(s) = status {
        q = q.filter(tickets::status.eq(s));
    }
    q.count().get_result(&mut *conn).expect("count")
}

/// `GET /api/v1/{path}` on the instance at `base`, which must answer 200.
async fn get_ok(app: &TestApp, base: &str, token: &str, path: &str) -> serde_json::Value {
    let r = app
        .client
        .get(format!("{base}/api/v1/{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

/// The staff queue's answer to `GET /tickets?{query}` on the instance at `base`.
async fn list(app: &TestApp, base: &str, token: &str, query: &str) -> serde_json::Value {
    get_ok(app, base, token, &format!("tickets?{query}")).await
}

async fn total(app: &TestApp, base: &str, token: &str, query: &str) -> i64 {
    list(app, base, token, query).await["total"]
        .as_i64()
        .expect("total")
}

async fn totals_follow_every_change(app: TestApp, other: String) {
    let w = world(&app).await;
    let staff = app.login_staff("yc-c1-p1").await;
    let base = app.base.clone();
    let c = w.compound;
    for i in 0..3 {
        create(&app, &w, &format!("计数{i}")).await;
    }
    for (query, status) in [("limit=5", None), ("status=open", Some("open"))] {
        assert_eq!(
            total(&app, &base, &staff, query).await,
            counted(&app, c, status)
        );
    }

    // A change through the service: the next request counts afresh.
    let t = create(&app, &w, "计数3").await;
    assert_eq!(
        total(&app, &base, &staff, "limit=5").await,
        counted(&app, c, None)
    );
    assert_eq!(total(&app, &base, &staff, "status=open").await, 4);
    let id = t["id"].as_i64().expect("id");
    let (s, v) = act(&app, &staff, id, "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(total(&app, &base, &staff, "status=open").await, 3);
    assert_eq!(
        total(&app, &base, &staff, "status=acknowledged").await,
        counted(&app, c, Some("acknowledged"))
    );

    // A write behind the service's back (no instance hears of it) shows that a kept total is
    // served without counting: it stays as it was until the next change through the service.
    // (PostgreSQL: first let this instance hear its own changes back through LISTEN, which moves
    // the generation once more.)
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(total(&app, &base, &staff, "status=open").await, 3);
    {
        let db = huying::db::Db::connect(&app.settings).expect("db");
        let mut conn = db.get().expect("conn");
        diesel::update(tickets::table.filter(tickets::id.eq(id)))
            .set(tickets::status.eq("open"))
            .execute(&mut *conn)
            .expect("update");
    }
    assert_eq!(total(&app, &base, &staff, "status=open").await, 3, "kept");
    create(&app, &w, "计数4").await;
    assert_eq!(
        total(&app, &base, &staff, "status=open").await,
        counted(&app, c, Some("open"))
    );

    // A change made through another instance (PostgreSQL: a second one on the same database)
    // reaches this one's kept totals within moments.
    let before = total(&app, &base, &staff, "limit=5").await;
    let r = app
        .client
        .post(format!("{other}/api/v1/tickets"))
        .bearer_auth(&w.resident)
        .json(&json!({"compound_id": c, "category_id": w.category, "title": "另一实例", "description": "从另一实例提交"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let now = total(&app, &base, &staff, "limit=5").await;
        if now == before + 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "total still {now}, want {}",
            before + 1
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        total(&app, &base, &staff, "limit=5").await,
        counted(&app, c, None)
    );
}

/// `mod $name` with one test per backend, each running `$name(app, base of another instance)`:
/// on PostgreSQL a second instance on the same database; on SQLite the one instance.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            use crate::helpers::{Backend, TestApp};
            #[actix_web::test]
            async fn sqlite() {
                if let Some(app) = TestApp::spawn(Backend::Sqlite).await {
                    let base = app.base.clone();
                    super::$name(app, base).await;
                }
            }
            #[actix_web::test]
            async fn postgres_two_instances() {
                if let Some(app) = TestApp::spawn(Backend::Postgres).await {
                    let second = app.spawn_second().await;
                    super::$name(app, second.base).await;
                }
            }
        }
    };
}

on_both_backends!(totals_follow_every_change);
on_both_backends!(pages_follow_every_change);
on_both_backends!(kept_pages_show_what_a_fresh_read_shows);

/// A compound's tickets in the staff queue's order (running deadline, then id): id, status, title.
fn first_rows(app: &TestApp, compound: i64) -> Vec<(i64, String, String)> {
    let db = huying::db::Db::connect(&app.settings).expect("db");
    let mut conn = db.get().expect("conn");
    tickets::table
        .filter(tickets::compound_id.eq(compound))
        .order((tickets::due_at.asc(), tickets::id.asc()))
        .select((tickets::id, tickets::status, tickets::title))
        .limit(50)
        .load(&mut *conn)
        .expect("rows")
}

/// The staff queue's first page as the same triples.
async fn page(app: &TestApp, base: &str, token: &str) -> Vec<(i64, String, String)> {
    list(app, base, token, "limit=50").await["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| {
            (
                t["id"].as_i64().expect("id"),
                t["status"].as_str().expect("status").to_string(),
                t["title"].as_str().expect("title").to_string(),
            )
        })
        .collect()
}

/// The photo count the staff queue's first page shows for ticket `id`.
async fn photos(app: &TestApp, base: &str, token: &str, id: i64) -> i64 {
    list(app, base, token, "limit=50").await["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["id"].as_i64() == Some(id))
        .and_then(|t| t["attachment_count"].as_i64())
        .expect("the ticket and its photo count")
}

async fn pages_follow_every_change(app: TestApp, other: String) {
    let w = world(&app).await;
    let staff = app.login_staff("yc-c1-p1").await;
    let base = app.base.clone();
    let c = w.compound;
    for i in 0..3 {
        create(&app, &w, &format!("翻页{i}")).await;
    }
    let rows = first_rows(&app, c);
    assert_eq!(rows.len(), 3);
    assert_eq!(page(&app, &base, &staff).await, rows);
    // Read twice between changes: the second is the kept page, still the database's rows.
    assert_eq!(page(&app, &base, &staff).await, rows);

    // A change through the service shows on the next request.
    let id = rows[0].0;
    let (s, v) = act(&app, &staff, id, "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rows = first_rows(&app, c);
    assert!(rows.iter().any(|r| r.0 == id && r.1 == "acknowledged"));
    assert_eq!(page(&app, &base, &staff).await, rows);

    // A write behind the service's back shows that the page is kept, until the next change
    // through the service (see `totals_follow_every_change` for the wait on PostgreSQL).
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let kept = page(&app, &base, &staff).await;
    {
        let db = huying::db::Db::connect(&app.settings).expect("db");
        let mut conn = db.get().expect("conn");
        diesel::update(tickets::table.filter(tickets::id.eq(id)))
            .set(tickets::title.eq("背后改过"))
            .execute(&mut *conn)
            .expect("update");
    }
    assert_eq!(page(&app, &base, &staff).await, kept, "kept");
    create(&app, &w, "翻页3").await;
    let rows = first_rows(&app, c);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().any(|r| r.2 == "背后改过"));
    assert_eq!(page(&app, &base, &staff).await, rows);

    // A photo is part of the page's views: its count shows at once.
    assert_eq!(photos(&app, &base, &staff, id).await, 0);
    let (s, v) =
        crate::tickets::upload(&app, &w.resident, id, crate::uploads::png(), "a.png").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(photos(&app, &base, &staff, id).await, 1);

    // A change made through another instance reaches this one's kept page within moments.
    let r = app
        .client
        .post(format!("{other}/api/v1/tickets"))
        .bearer_auth(&w.resident)
        .json(&json!({"compound_id": c, "category_id": w.category, "title": "另一实例翻页", "description": "从另一实例提交"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), StatusCode::CREATED);
    let rows = first_rows(&app, c);
    assert_eq!(rows.len(), 5);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let now = page(&app, &base, &staff).await;
        if now == rows {
            break;
        }
        assert!(Instant::now() < deadline, "page {now:?}, want {rows:?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A kept page is written from each view's JSON kept up to its clock fields plus those fields
/// computed at the request's time: it must show exactly what reading the page afresh shows,
/// clock fields included, also when the clock has moved since it was kept.
async fn kept_pages_show_what_a_fresh_read_shows(app: TestApp, _other: String) {
    let w = world(&app).await;
    let staff = app.login_staff("yc-c1-p1").await;
    let base = app.base.clone();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            create(&app, &w, &format!("原样{i}")).await["id"]
                .as_i64()
                .expect("id"),
        );
    }
    // An acknowledged ticket beside open ones: different clocks and actions; the residents'
    // names and the Chinese titles are escaped text inside the kept part.
    let (s, v) = act(&app, &staff, ids[1], "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fresh = list(&app, &base, &staff, "limit=50").await;
    let kept = list(&app, &base, &staff, "limit=50").await;
    assert_eq!(kept, fresh, "the kept page's bytes are the fresh page's");
    let items = fresh["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert!(
        items.iter().all(|t| t["due_in_seconds"].is_i64()),
        "{fresh}"
    );

    // Ninety minutes later, nothing changed: the page is still the kept one, its clock fields
    // are those of now, and every view is the one `GET /tickets/{id}` shows now.
    app.advance(chrono::Duration::minutes(90));
    // The access token has expired by then; signing in again changes no ticket.
    let staff = app.login_staff("yc-c1-p1").await;
    let later = list(&app, &base, &staff, "limit=50").await;
    for (before, after) in items.iter().zip(later["items"].as_array().expect("items")) {
        assert_eq!(after["id"], before["id"]);
        let id = after["id"].as_i64().expect("id");
        assert_eq!(
            after,
            &get_ok(&app, &base, &staff, &format!("tickets/{id}")).await,
            "ticket {id}"
        );
        let moved = before["due_in_seconds"].as_i64().expect("due")
            - after["due_in_seconds"].as_i64().expect("due");
        assert_eq!(moved, 90 * 60, "ticket {id}");
    }
    assert_eq!(later["total"], fresh["total"]);
    assert_eq!(later["next_cursor"], fresh["next_cursor"]);
}
