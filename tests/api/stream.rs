//! Live updates, `GET /api/v1/stream` (issue #15, point 3): Server-Sent Events of what the
//! caller may see. On PostgreSQL an action through one instance reaches a client of another
//! (LISTEN/NOTIFY); on SQLite, within the one instance. Scopes, a client that stops reading,
//! token expiry and the 401.

use std::time::{Duration, Instant};

use huying::config::Settings;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};
use crate::tickets::{act, create, world, World};

/// The bound: an acknowledge reaches a client of another instance within 1 s.
const WITHIN: Duration = Duration::from_secs(1);

/// One open stream, read event by event.
struct Sse {
    resp: reqwest::Response,
    buf: String,
    heartbeats: usize,
}

impl Sse {
    /// Opens `GET /api/v1/stream` on `base` and reads up to the `ready` event.
    async fn open(client: &reqwest::Client, base: &str, token: &str) -> Sse {
        let resp = client
            .get(format!("{base}/api/v1/stream"))
            .bearer_auth(token)
            .send()
            .await
            .expect("stream request");
        assert_eq!(resp.status(), StatusCode::OK);
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(header("content-type"), "text/event-stream");
        assert_eq!(header("cache-control"), "no-cache, no-store");
        assert_eq!(header("x-accel-buffering"), "no");
        // Not compressed: gzip would hold small events back.
        assert_ne!(header("content-encoding"), "gzip");
        let mut s = Sse {
            resp,
            buf: String::new(),
            heartbeats: 0,
        };
        let (name, data) = s
            .next(Duration::from_secs(5))
            .await
            .expect("the ready event");
        assert_eq!(name, "ready");
        assert!(
            data["heartbeat_secs"] == 15 || data["heartbeat_secs"] == 1,
            "{data}"
        );
        s
    }

    /// The next event (heartbeats are counted and skipped), or None if none came in time or
    /// the stream ended.
    async fn next(&mut self, within: Duration) -> Option<(String, Value)> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut name = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.heartbeats += 1;
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    } else if let Some(v) = line.strip_prefix("retry: ") {
                        assert_eq!(v, "5000", "the retry hint");
                    }
                }
                if !data.is_empty() {
                    let value = serde_json::from_str(&data).expect("event data is JSON");
                    return Some((name, value));
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// The ids of the next `tickets` event within `within` (other events are skipped).
    async fn tickets(&mut self, within: Duration) -> Option<Vec<i64>> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (name, data) = self.next(left).await?;
            if name == "tickets" {
                return Some(ids(&data));
            }
        }
    }

    /// Waits until a `tickets` event names `id`; the ids of every `tickets` event seen on the way.
    async fn until_ticket(&mut self, id: i64, within: Duration) -> Vec<Vec<i64>> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("ticket {id} not announced in {within:?}; saw {seen:?}"));
            let got = self
                .tickets(left)
                .await
                .unwrap_or_else(|| panic!("ticket {id} not announced in {within:?}; saw {seen:?}"));
            let done = got.contains(&id);
            seen.push(got);
            if done {
                return seen;
            }
        }
    }
}

fn ids(data: &Value) -> Vec<i64> {
    data["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_i64().expect("id"))
        .collect()
}

fn id_of(t: &Value) -> i64 {
    t["id"].as_i64().expect("ticket id")
}

/// A ticket of the second resident in another community's compound (方园小区 is compounds[0]
/// in 方园社区; compounds[2] is 萧岗花园 in 萧岗社区).
async fn elsewhere(app: &TestApp, w: &World, token: &str, title: &str) -> Value {
    let (s, v) = app
        .post(
            "/api/v1/tickets",
            Some(token),
            json!({"compound_id": w.seed["compounds"][2]["id"], "category_id": w.category,
                   "title": title, "description": "小区门口路灯一直不亮"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

/// The test: an acknowledge through instance A reaches a staff client of instance B
/// within 1 s, and the resident's own client too; on SQLite "B" is A itself (one instance).
async fn an_acknowledge_reaches_the_other_instance_within_a_second(app: TestApp, b_base: String) {
    let w = world(&app).await;
    let staff = app.login_staff("yc-c1-p1").await;
    let t = create(&app, &w, "楼道灯不亮").await;
    let id = id_of(&t);
    let mut staff_on_b = Sse::open(&app.client, &b_base, &staff).await;
    let mut resident_on_b = Sse::open(&app.client, &b_base, &w.resident).await;

    let start = Instant::now();
    let (s, v) = act(&app, &staff, id, "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let seen = staff_on_b.until_ticket(id, WITHIN).await;
    assert_eq!(seen, vec![vec![id]]);
    assert!(start.elapsed() < WITHIN, "took {:?}", start.elapsed());
    assert_eq!(resident_on_b.until_ticket(id, WITHIN).await, vec![vec![id]]);

    // What the event announced is what the API now says.
    let (s, v) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&staff))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "acknowledged");
}

/// A sweep stores a chunk of call-ups in one transaction; every ticket of it is announced to
/// the clients of every instance (the chunk's notifications leave in one statement before the
/// commit). PostgreSQL only: the test's sweep runs on a `Db` of its own, which on SQLite
/// publishes to no instance's hub (`serve`'s sweeper runs on the instance's own).
async fn a_sweeps_call_ups_all_reach_the_other_instance(app: TestApp, b_base: String) {
    let w = world(&app).await;
    let street = app.login_staff("yc-street").await;
    let mut ids_created = Vec::new();
    for title in ["楼道灯不亮", "水管漏水", "电梯异响"] {
        ids_created.push(id_of(&create(&app, &w, title).await));
    }
    let mut street_on_b = Sse::open(&app.client, &b_base, &street).await;
    // Every clock has run out three days on; the app's own clock stays (the stream's token
    // would expire with it).
    let report = crate::helpers::sweep(&app, app.now() + chrono::Duration::days(3));
    assert_eq!(report.escalated, 3, "{report:?}");
    let mut heard: Vec<i64> = Vec::new();
    let deadline = Instant::now() + WITHIN;
    while !ids_created.iter().all(|id| heard.contains(id)) {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("heard {heard:?} of {ids_created:?}"));
        let got = street_on_b
            .tickets(left)
            .await
            .unwrap_or_else(|| panic!("heard {heard:?} of {ids_created:?}"));
        heard.extend(got);
    }
    for id in &ids_created {
        let (s, v) = app
            .get(&format!("/api/v1/tickets/{id}"), Some(&street))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["level"], "community", "{v}");
    }
}

/// Residents hear of their own tickets only, staff of their scope only, and notices reach
/// their recipients.
async fn each_client_hears_only_what_it_may_see(app: TestApp, b_base: String) {
    let w = world(&app).await;
    let neighbour = app.login_resident("13800000002").await;
    let compound = app.login_staff("yc-c1-p1").await;
    let community = app.login_staff("yc-c1").await;
    let street = app.login_staff("yc-street").await;
    let other_compound = app.login_staff("yc-c2-p1").await;
    let other_community = app.login_staff("yc-c2").await;
    let mut mine = Sse::open(&app.client, &b_base, &w.resident).await;
    let mut theirs = Sse::open(&app.client, &b_base, &neighbour).await;
    let mut compound_s = Sse::open(&app.client, &b_base, &compound).await;
    let mut community_s = Sse::open(&app.client, &b_base, &community).await;
    let mut street_s = Sse::open(&app.client, &b_base, &street).await;
    let mut other_compound_s = Sse::open(&app.client, &b_base, &other_compound).await;
    let mut other_community_s = Sse::open(&app.client, &b_base, &other_community).await;

    // The first resident's call in 方园小区.
    let first = id_of(&create(&app, &w, "楼道灯不亮").await);
    assert_eq!(mine.until_ticket(first, WITHIN).await, vec![vec![first]]);
    assert_eq!(
        community_s.until_ticket(first, WITHIN).await,
        vec![vec![first]]
    );
    assert_eq!(
        street_s.until_ticket(first, WITHIN).await,
        vec![vec![first]]
    );
    // The compound secretary gets the ticket and the new-call notice (in-app), in one burst
    // or two.
    let mut got_ticket = false;
    let mut got_notice = false;
    let deadline = Instant::now() + WITHIN;
    while !(got_ticket && got_notice) {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("ticket and notice in time");
        let (name, data) = compound_s.next(left).await.expect("an event");
        match name.as_str() {
            "tickets" => {
                assert_eq!(ids(&data), vec![first]);
                got_ticket = true;
            }
            "notice" => {
                assert_eq!(data, json!({}));
                got_notice = true;
            }
            other => panic!("unexpected {other}: {data}"),
        }
    }
    let (s, me) = app.get("/api/v1/me", Some(&compound)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["unread_notifications"], 1);

    // The neighbour's call in 萧岗花园: the first resident, the 方园 compound and community never
    // hear of it, and nobody outside 方园 heard of the first call: the next ticket event
    // each of them gets is this one.
    let second = id_of(&elsewhere(&app, &w, &neighbour, "路灯不亮").await);
    assert_eq!(
        theirs.until_ticket(second, WITHIN).await,
        vec![vec![second]]
    );
    assert_eq!(
        other_compound_s.until_ticket(second, WITHIN).await,
        vec![vec![second]]
    );
    assert_eq!(
        other_community_s.until_ticket(second, WITHIN).await,
        vec![vec![second]]
    );
    assert_eq!(
        street_s.until_ticket(second, WITHIN).await,
        vec![vec![second]]
    );
    // A third change in 方园, which the 方园 clients see next: nothing of `second` before it.
    let (s, v) = act(&app, &compound, first, "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(mine.until_ticket(first, WITHIN).await, vec![vec![first]]);
    assert_eq!(
        community_s.until_ticket(first, WITHIN).await,
        vec![vec![first]]
    );
    assert_eq!(
        compound_s.until_ticket(first, WITHIN).await,
        vec![vec![first]]
    );
    // And the outsiders saw nothing of it.
    assert_eq!(theirs.tickets(Duration::from_millis(300)).await, None);
    assert_eq!(
        other_compound_s.tickets(Duration::from_millis(300)).await,
        None
    );
}

/// A refused action changes nothing and announces nothing (the rolled-back transaction's
/// changes are dropped).
async fn a_refused_action_announces_nothing(app: TestApp, b_base: String) {
    let w = world(&app).await;
    let staff = app.login_staff("yc-c1-p1").await;
    let t = create(&app, &w, "楼道灯不亮").await;
    let id = id_of(&t);
    let mut s = Sse::open(&app.client, &b_base, &staff).await;
    // Confirming is the resident's: refused, nothing stored, nothing announced.
    let (status, v) = act(&app, &staff, id, "confirm", json!({"rating": 5})).await;
    assert!(status.is_client_error(), "{status}: {v}");
    let (status, v) = act(&app, &staff, id, "acknowledge", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // The first ticket event is the acknowledge, alone.
    assert_eq!(s.tickets(WITHIN).await, Some(vec![id]));
}

/// A client that opened the stream and stopped reading does not hold the others back.
async fn a_client_that_stops_reading_does_not_stall_the_others(app: TestApp, b_base: String) {
    let w = world(&app).await;
    let staff = app.login_staff("yc-c1-p1").await;
    let t = create(&app, &w, "楼道灯不亮").await;
    let id = id_of(&t);
    // Open, read the head, then never read again.
    let stalled = app
        .client
        .get(format!("{b_base}/api/v1/stream"))
        .bearer_auth(&staff)
        .send()
        .await
        .expect("stream");
    assert_eq!(stalled.status(), StatusCode::OK);
    let mut reader = Sse::open(&app.client, &b_base, &staff).await;
    // Many changes (ten times the per-client buffer): comments on the ticket, each one
    // announced, each reaching the reading client within the bound.
    for i in 0..40 {
        let (s, v) = act(
            &app,
            &staff,
            id,
            "comment",
            json!({"note": format!("第{i}次补充说明")}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // The reader keeps up as the changes come.
        assert_eq!(reader.until_ticket(id, WITHIN).await, vec![vec![id]]);
    }
    drop(stalled);
}

fn small_buffer(s: &mut Settings) {
    s.stream.buffer = 4;
}

/// The stream ends with `expired` when the access token does.
async fn the_stream_ends_when_the_token_expires(app: TestApp) {
    app.seed();
    let staff = app.login_staff("yc-c1-p1").await;
    let mut s = Sse::open(&app.client, &app.base, &staff).await;
    let start = Instant::now();
    let (name, data) = s
        .next(Duration::from_secs(5))
        .await
        .expect("the expired event");
    assert_eq!((name.as_str(), data), ("expired", json!({})));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // And then the stream is over.
    assert_eq!(s.next(Duration::from_secs(2)).await, None);
    // The token is no longer good for a new one: 401 until the client refreshes. (The app's
    // clock is the test's; it moves when told to.)
    app.advance(chrono::Duration::seconds(3));
    let (status, v) = app.get("/api/v1/stream", Some(&staff)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "invalid_token");
}

/// An idle stream outlives the server's keep-alive and request-head timeouts (5 s), kept
/// open by heartbeats, and still carries the next change.
async fn an_idle_stream_stays_open_with_heartbeats(app: TestApp) {
    let w = world(&app).await;
    let staff = app.login_staff("yc-c1-p1").await;
    let mut s = Sse::open(&app.client, &app.base, &staff).await;
    let start = Instant::now();
    assert_eq!(s.next(Duration::from_secs(7)).await, None);
    assert!(start.elapsed() >= Duration::from_secs(7));
    assert!(s.heartbeats >= 5, "{} heartbeats in 7 s", s.heartbeats);
    let id = id_of(&create(&app, &w, "楼道灯不亮").await);
    assert_eq!(s.until_ticket(id, WITHIN).await, vec![vec![id]]);
}

fn fast_heartbeat(s: &mut Settings) {
    s.stream.heartbeat_secs = 1;
}

/// `/metrics` counts the open streams; a client that went away is counted out by the next
/// heartbeat.
async fn metrics_count_the_open_streams(app: TestApp) {
    app.seed();
    let staff = app.login_staff("yc-c1-p1").await;
    let clients = |app: &TestApp| {
        let url = format!("{}/metrics", app.base);
        let client = app.client.clone();
        async move {
            let text = client
                .get(url)
                .send()
                .await
                .expect("scrape")
                .text()
                .await
                .expect("text");
            text.lines()
                .find_map(|l| l.strip_prefix("huying_live_stream_clients "))
                .map(|v| v.trim().parse::<i64>().expect("a number"))
                .expect("the live_stream_clients gauge")
        }
    };
    assert_eq!(clients(&app).await, 0);
    let first = Sse::open(&app.client, &app.base, &staff).await;
    let _second = Sse::open(&app.client, &app.base, &staff).await;
    assert_eq!(clients(&app).await, 2);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = clients(&app).await;
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "still {n} streams counted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn metrics_and_fast_heartbeat(s: &mut Settings) {
    s.metrics.enabled = true;
    s.stream.heartbeat_secs = 1;
}

fn short_tokens(s: &mut Settings) {
    s.auth.access_ttl_secs = 2;
}

async fn no_token_is_a_json_401(app: TestApp) {
    app.seed();
    let (status, v) = app.get("/api/v1/stream", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "unauthorized");
    let (status, v) = app.get("/api/v1/stream", Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "invalid_token");
}

/// Runs `f(app, base of the instance the clients use)`: on PostgreSQL a second instance on the
/// same database; on SQLite the one instance.
macro_rules! two_instances {
    ($($name:ident $(with $configure:ident)?),+ $(,)?) => {
        $(
            mod $name {
                use crate::helpers::{Backend, TestApp};
                #[actix_web::test]
                async fn sqlite() {
                    if let Some(app) = TestApp::spawn_with(Backend::Sqlite, |_s| { $(super::$configure(_s))? }).await {
                        let base = app.base.clone();
                        super::$name(app, base).await;
                    }
                }
                #[actix_web::test]
                async fn postgres_two_instances() {
                    if let Some(app) = TestApp::spawn_with(Backend::Postgres, |_s| { $(super::$configure(_s))? }).await {
                        let second = app.spawn_second().await;
                        assert_ne!(second.base, app.base);
                        super::$name(app, second.base).await;
                    }
                }
            }
        )+
    };
}

two_instances!(
    an_acknowledge_reaches_the_other_instance_within_a_second,
    each_client_hears_only_what_it_may_see,
    a_refused_action_announces_nothing,
    a_client_that_stops_reading_does_not_stall_the_others with small_buffer,
);

crate::both_backends!(no_token_is_a_json_401);
crate::both_backends_with!(short_tokens; the_stream_ends_when_the_token_expires);
crate::both_backends_with!(fast_heartbeat; an_idle_stream_stays_open_with_heartbeats);
crate::both_backends_with!(metrics_and_fast_heartbeat; metrics_count_the_open_streams);

mod a_sweeps_call_ups_all_reach_the_other_instance {
    use crate::helpers::{Backend, TestApp};
    #[actix_web::test]
    async fn postgres_two_instances() {
        if let Some(app) = TestApp::spawn_with(Backend::Postgres, |_s| {}).await {
            let second = app.spawn_second().await;
            super::a_sweeps_call_ups_all_reach_the_other_instance(app, second.base).await;
        }
    }
}
