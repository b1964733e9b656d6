//! Notifications: the outbox written with each ticket event, the inbox, the dispatcher against
//! real servers (the SMS gateway stand-in, an SMTP server, a WeCom robot stand-in).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, local, phone_of, sms_to, TestApp};
use crate::tickets::{act, create, world};
use huying::config::{Settings, SmtpTls};
use huying::notify::dispatch::{DispatchReport, Dispatcher};

both_backends!(
    a_new_ticket_reaches_the_compound_staff_by_sms_and_inbox_once,
    a_call_up_tells_the_receiving_unit_and_the_resident,
    internal_notes_and_phone_reveals_notify_nobody,
    a_gateway_500_is_retried_and_a_400_is_dead_until_an_admin_retries,
    quiet_hours_hold_normal_sms_until_morning_but_not_urgent_ones,
    residents_choose_sms_or_in_app_only,
    the_inbox_pages_unread_first,
    the_compound_robot_gets_markdown_with_the_link,
    two_dispatchers_deliver_each_row_once,
    email_arrives_at_a_real_smtp_server_over_starttls,
    an_smtp_outage_delays_mail_but_loses_and_doubles_none,
    email_arrives_over_implicit_tls,
    pooled_smtp_connections_are_reused_and_replaced_when_the_relay_restarts,
);

pub fn dispatcher_with(app: &TestApp, tweak: impl FnOnce(&mut Settings)) -> Dispatcher {
    let mut s = app.settings.clone();
    tweak(&mut s);
    let db = huying::db::Db::connect(&s).expect("db");
    let sms = huying::sms::from_settings(&s.sms).expect("sms");
    Dispatcher::new(&s, db, sms).expect("dispatcher")
}

pub async fn dispatch(app: &TestApp) -> DispatchReport {
    dispatcher_with(app, |_| {})
        .dispatch_once(app.now())
        .await
        .expect("dispatch")
}

/// A working-day morning, out of quiet hours.
/// The demo world at 09:00 on a working day (Asia/Shanghai), outside the SMS quiet hours, so
/// that what a test dispatches does not depend on the hour the suite runs.
pub async fn morning_world(app: &TestApp) -> crate::tickets::World {
    app.clock.set(local(2026, 11, 30, 9, 0));
    let w = world(app).await;
    app.clock.set(local(2026, 11, 30, 9, 0));
    w
}

async fn a_new_ticket_reaches_the_compound_staff_by_sms_and_inbox_once(app: TestApp) {
    let w = morning_world(&app).await;
    let t = create(&app, &w, "楼道灯不亮").await;
    let id = t["id"].as_i64().expect("id");
    let reference = t["reference"].as_str().expect("ref").to_string();
    let staff = app.login_staff("yc-c1-p1").await;
    let (_, me) = app.get("/api/v1/me", Some(&staff)).await;
    assert_eq!(me["unread_notifications"], 1, "{me}");
    let (s, inbox) = app.get("/api/v1/notifications", Some(&staff)).await;
    assert_eq!(s, StatusCode::OK);
    let item = &inbox["items"][0];
    assert_eq!(item["kind"], "created");
    assert_eq!(item["link"], format!("/t/{id}"));
    assert!(item["title"].as_str().expect("t").contains(&reference));
    assert!(
        item["body"].as_str().expect("b").contains("小区党支部"),
        "{item}"
    );
    assert!(item["body"].as_str().expect("b").contains("楼道灯不亮"));

    // Nothing goes out until the dispatcher runs; then exactly once.
    let phone = phone_of(&w.seed, "yc-c1-p1");
    assert!(sms_to(&app, &phone).is_empty());
    let r = dispatch(&app).await;
    assert_eq!(r.sent, 1, "{r:?}");
    let texts = sms_to(&app, &phone);
    assert_eq!(texts.len(), 1);
    let text = &texts[0];
    assert!(text.contains(&reference), "{text}");
    assert!(text.contains("楼道灯不亮"), "{text}");
    assert!(
        text.contains(&format!("{}/t/{id}", app.settings.server.public_url)),
        "{text}"
    );
    assert!(
        text.chars().count() <= 70,
        "one segment: {text} ({})",
        text.chars().count()
    );
    assert!(
        text.contains("限30日15:00"),
        "deadline in Beijing time: {text}"
    );
    assert!(!text.contains("13800000001"), "never the resident's phone");
    assert_eq!(dispatch(&app).await.claimed, 0);
    assert_eq!(sms_to(&app, &phone).len(), 1, "never twice");

    // The other compound's staff hear nothing.
    assert!(sms_to(&app, &phone_of(&w.seed, "yc-c1-p2")).is_empty());

    let nid = item["id"].as_i64().expect("nid");
    let (s, _) = app
        .post(
            &format!("/api/v1/notifications/{nid}/read"),
            Some(&staff),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, me) = app.get("/api/v1/me", Some(&staff)).await;
    assert_eq!(me["unread_notifications"], 0);
    // Somebody else's notification is not found.
    let other = app.login_staff("yc-c1-p2").await;
    let (s, _) = app
        .post(
            &format!("/api/v1/notifications/{nid}/read"),
            Some(&other),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn a_call_up_tells_the_receiving_unit_and_the_resident(app: TestApp) {
    let w = morning_world(&app).await;
    let t = create(&app, &w, "路面塌陷").await;
    let id = t["id"].as_i64().expect("id");
    let compound = app.login_staff("yc-c1-p1").await;
    let (s, v) = act(&app, &compound, id, "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = act(
        &app,
        &compound,
        id,
        "escalate",
        json!({"reason": "needs_resources", "note": "需社区协调"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    dispatch(&app).await;
    let community = sms_to(&app, &phone_of(&w.seed, "yc-c1"));
    assert_eq!(community.len(), 1, "{community:?}");
    assert!(
        community[0].contains("由小区党支部上呼"),
        "{}",
        community[0]
    );
    // The resident heard of the answer, then of the call up.
    let resident = sms_to(&app, "13800000001");
    assert_eq!(resident.len(), 2, "{resident:?}");
    assert!(resident[0].contains("已受理"), "{}", resident[0]);
    assert!(resident[1].contains("社区党支部"), "{}", resident[1]);
    assert!(
        resident[1].contains(&format!("/t/{id}")),
        "residents get the public link"
    );
    let c = app.login_staff("yc-c1").await;
    let (_, inbox) = app.get("/api/v1/notifications", Some(&c)).await;
    assert_eq!(inbox["items"][0]["kind"], "called_up");
    assert!(inbox["items"][0]["body"]
        .as_str()
        .expect("b")
        .contains("需要协调资源"));

    // The community returns it: the compound hears of it.
    let (s, v) = act(&app, &c, id, "return", json!({"note": "请小区先协调物业"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    dispatch(&app).await;
    let p1 = sms_to(&app, &phone_of(&w.seed, "yc-c1-p1"));
    assert!(p1.iter().any(|s| s.contains("下派")), "{p1:?}");
    // Acknowledge and resolve: the resident hears of both.
    let (s, _) = act(&app, &compound, id, "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = act(&app, &compound, id, "resolve", json!({"note": "已修复"})).await;
    assert_eq!(s, StatusCode::OK);
    dispatch(&app).await;
    let resident = sms_to(&app, "13800000001");
    assert!(
        resident.iter().any(|s| s.contains("已受理")),
        "{resident:?}"
    );
    assert!(
        resident.iter().any(|s| s.contains("已办结")),
        "{resident:?}"
    );
    let (_, me) = app.get("/api/v1/me", Some(&w.resident)).await;
    assert_eq!(
        me["unread_notifications"], 3,
        "acknowledged (compound, then community) + resolved in-app: {me}"
    );
}

async fn internal_notes_and_phone_reveals_notify_nobody(app: TestApp) {
    let w = morning_world(&app).await;
    let t = create(&app, &w, "噪音扰民").await;
    let id = t["id"].as_i64().expect("id");
    let staff = app.login_staff("yc-c1-p1").await;
    dispatch(&app).await;
    let before = app.sms.messages().len();
    let (s, _) = act(
        &app,
        &staff,
        id,
        "comment",
        json!({"note": "内部：先查监控", "internal": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = act(&app, &staff, id, "reveal-phone", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(dispatch(&app).await.claimed, 0);
    assert_eq!(app.sms.messages().len(), before);
    let (_, me) = app.get("/api/v1/me", Some(&w.resident)).await;
    assert_eq!(me["unread_notifications"], 0);
    // A public reply does reach the resident.
    let (s, _) = act(&app, &staff, id, "comment", json!({"note": "已联系物业"})).await;
    assert_eq!(s, StatusCode::OK);
    dispatch(&app).await;
    assert_eq!(sms_to(&app, "13800000001").len(), 1);
}

async fn a_gateway_500_is_retried_and_a_400_is_dead_until_an_admin_retries(app: TestApp) {
    let w = morning_world(&app).await;
    app.sms.fail_with.store(500, Ordering::SeqCst);
    create(&app, &w, "电梯故障").await;
    let r = dispatch(&app).await;
    assert_eq!((r.claimed, r.retried, r.sent), (1, 1, 0), "{r:?}");
    // Not due again at once: the backoff holds it.
    assert_eq!(dispatch(&app).await.claimed, 0);
    app.sms.fail_with.store(0, Ordering::SeqCst);
    app.advance(chrono::Duration::seconds(31));
    let r = dispatch(&app).await;
    assert_eq!(r.sent, 1, "{r:?}");
    assert_eq!(sms_to(&app, &phone_of(&w.seed, "yc-c1-p1")).len(), 1);

    // 400: refused for good, dead with the reason, after one attempt.
    app.sms.fail_with.store(400, Ordering::SeqCst);
    create(&app, &w, "水管爆裂").await;
    let r = dispatch(&app).await;
    assert_eq!(r.dead, 1, "{r:?}");
    let admin = app.login_staff("yc-admin").await;
    let (s, page) = app
        .get("/api/v1/admin/notifications?status=dead", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{page}");
    assert!(
        items[0]["last_error"]
            .as_str()
            .expect("err")
            .contains("400"),
        "{page}"
    );
    assert_eq!(items[0]["attempts"], 1);
    assert!(
        items[0]["address"].as_str().expect("a").contains("****"),
        "phones masked"
    );
    let nid = items[0]["id"].as_i64().expect("id");
    let staff = app.login_staff("yc-c1-p1").await;
    let (s, _) = app
        .post(
            &format!("/api/v1/admin/notifications/{nid}/retry"),
            Some(&staff),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.sms.fail_with.store(0, Ordering::SeqCst);
    let (s, v) = app
        .post(
            &format!("/api/v1/admin/notifications/{nid}/retry"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "pending");
    let (s, v) = app
        .post(
            &format!("/api/v1/admin/notifications/{nid}/retry"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&v), "not_dead");
    assert_eq!(dispatch(&app).await.sent, 1);
    assert_eq!(sms_to(&app, &phone_of(&w.seed, "yc-c1-p1")).len(), 2);

    // A gateway that keeps failing: dead after max_attempts, with the last error.
    app.sms.fail_with.store(503, Ordering::SeqCst);
    create(&app, &w, "井盖丢失").await;
    let d = dispatcher_with(&app, |s| s.notify.max_attempts = 3);
    let mut dead = 0;
    for _ in 0..3 {
        dead += d.dispatch_once(app.now()).await.expect("dispatch").dead;
        app.advance(chrono::Duration::hours(2));
    }
    assert_eq!(dead, 1);
    let admin = app.login_staff("yc-admin").await;
    let (_, page) = app
        .get("/api/v1/admin/notifications?status=dead", Some(&admin))
        .await;
    assert_eq!(page["items"][0]["attempts"], 3, "{page}");
    assert!(page["items"][0]["last_error"]
        .as_str()
        .expect("e")
        .contains("503"));
}

async fn quiet_hours_hold_normal_sms_until_morning_but_not_urgent_ones(app: TestApp) {
    app.clock.set(local(2026, 11, 30, 22, 55));
    let w = world(&app).await;
    app.clock.set(local(2026, 11, 30, 23, 0));
    create(&app, &w, "楼上漏水").await;
    let r = dispatch(&app).await;
    assert_eq!(r.deferred, 1, "{r:?}");
    let phone = phone_of(&w.seed, "yc-c1-p1");
    assert!(sms_to(&app, &phone).is_empty());
    // The in-app message is there at once.
    let staff = app.login_staff("yc-c1-p1").await;
    let (_, me) = app.get("/api/v1/me", Some(&staff)).await;
    assert_eq!(me["unread_notifications"], 1);
    // Urgent goes now.
    let (s, v) = app
        .post(
            "/api/v1/tickets",
            Some(&w.resident),
            json!({"compound_id": w.compound, "category_id": w.category, "urgency": "urgent", "title": "燃气泄漏", "description": "闻到很重的煤气味"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let r = dispatch(&app).await;
    assert_eq!((r.sent, r.deferred), (1, 0), "{r:?}");
    assert!(sms_to(&app, &phone)[0].contains("燃气泄漏"));
    app.clock.set(local(2026, 12, 1, 7, 29));
    assert_eq!(dispatch(&app).await.claimed, 0);
    app.clock.set(local(2026, 12, 1, 7, 30));
    assert_eq!(dispatch(&app).await.sent, 1);
    assert_eq!(sms_to(&app, &phone).len(), 2);
}

async fn residents_choose_sms_or_in_app_only(app: TestApp) {
    let w = morning_world(&app).await;
    let (s, v) = app
        .get("/api/v1/me/notification-settings", Some(&w.resident))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"sms": true, "inapp": true, "email": false, "email_address": null})
    );
    let (s, v) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/me/notification-settings",
            Some(&w.resident),
            Some(&json!({"sms": true, "inapp": true, "email": true, "email_address": "a@b.cn"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "email_not_available");
    let (s, v) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/me/notification-settings",
            Some(&w.resident),
            Some(&json!({"sms": false, "inapp": true, "email": false, "email_address": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let t = create(&app, &w, "垃圾没人收").await;
    let staff = app.login_staff("yc-c1-p1").await;
    act(
        &app,
        &staff,
        t["id"].as_i64().expect("id"),
        "acknowledge",
        json!({}),
    )
    .await;
    dispatch(&app).await;
    assert!(sms_to(&app, "13800000001").is_empty(), "SMS turned off");
    let (_, me) = app.get("/api/v1/me", Some(&w.resident)).await;
    assert_eq!(me["unread_notifications"], 1);
    // Staff may give an email address; a bad one is refused.
    let (s, v) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/me/notification-settings",
            Some(&staff),
            Some(&json!({"sms": true, "inapp": true, "email": true, "email_address": "not an address"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

async fn the_inbox_pages_unread_first(app: TestApp) {
    let w = morning_world(&app).await;
    for i in 0..5 {
        create(&app, &w, &format!("诉求{i}")).await;
    }
    let staff = app.login_staff("yc-c1-p1").await;
    let (_, first) = app.get("/api/v1/notifications?limit=2", Some(&staff)).await;
    let oldest = first["items"][1]["id"].as_i64().expect("id");
    // Read the second newest: it moves behind the unread ones.
    app.post(
        &format!("/api/v1/notifications/{oldest}/read"),
        Some(&staff),
        json!({}),
    )
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/notifications?limit=2&cursor={c}"),
            None => "/api/v1/notifications?limit=2".to_string(),
        };
        let (s, page) = app.get(&path, Some(&staff)).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for it in page["items"].as_array().expect("items") {
            seen.push((
                it["id"].as_i64().expect("id"),
                it["read"].as_bool().expect("read"),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen.last(), Some(&(oldest, true)), "{seen:?}");
    assert!(seen[..4].iter().all(|(_, r)| !r));
    let (s, v) = app
        .post("/api/v1/notifications/read-all", Some(&staff), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["marked"], 4);
    let (_, me) = app.get("/api/v1/me", Some(&staff)).await;
    assert_eq!(me["unread_notifications"], 0);
}

/// A stand-in for a WeCom group robot (or any JSON webhook): records bodies, answers `reply`.
#[derive(Clone)]
pub struct Robot {
    pub received: Arc<Mutex<Vec<Value>>>,
}

async fn robot_send(robot: web::Data<Robot>, body: web::Json<Value>) -> HttpResponse {
    robot.received.lock().expect("lock").push(body.into_inner());
    HttpResponse::Ok().json(json!({"errcode": 0, "errmsg": "ok"}))
}

pub async fn start_robot() -> (Robot, String) {
    let robot = Robot {
        received: Arc::new(Mutex::new(Vec::new())),
    };
    let data = web::Data::new(robot.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/cgi-bin/webhook/send", web::post().to(robot_send))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    actix_web::rt::spawn(server);
    (
        robot,
        format!("http://127.0.0.1:{port}/cgi-bin/webhook/send?key=robot-key"),
    )
}

async fn the_compound_robot_gets_markdown_with_the_link(app: TestApp) {
    let w = morning_world(&app).await;
    let (robot, url) = start_robot().await;
    let admin = app.login_staff("yc-admin").await;
    let (s, v) = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/org/units/{}/webhook", w.compound),
            Some(&admin),
            Some(&json!({"url": url})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, _) = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/org/units/{}/webhook", w.compound),
            Some(&w.resident),
            Some(&json!({"url": url})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let t = create(&app, &w, "消防通道被占").await;
    let id = t["id"].as_i64().expect("id");
    let r = dispatch(&app).await;
    assert_eq!(r.sent, 2, "SMS + robot: {r:?}");
    let got = robot.received.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["msgtype"], "markdown");
    let md = got[0]["markdown"]["content"].as_str().expect("md");
    assert!(md.contains("消防通道被占"), "{md}");
    assert!(md.contains(&format!("/t/{id})")), "{md}");
    // The admin view does not show the robot key.
    let (_, page) = app.get("/api/v1/admin/notifications", Some(&admin)).await;
    assert!(!page.to_string().contains("robot-key"), "{page}");
}

async fn two_dispatchers_deliver_each_row_once(app: TestApp) {
    let w = morning_world(&app).await;
    let n = 30;
    for i in 0..n {
        create(&app, &w, &format!("并发{i}")).await;
    }
    let a = dispatcher_with(&app, |s| s.notify.batch = 4);
    let b = dispatcher_with(&app, |s| s.notify.batch = 4);
    let now = app.now();
    let run = |d: Dispatcher| async move {
        let mut sent = 0;
        loop {
            let r = d.dispatch_once(now).await.expect("dispatch");
            sent += r.sent;
            if r.claimed == 0 {
                return sent;
            }
        }
    };
    let (sa, sb) = futures::join!(run(a), run(b));
    assert_eq!(sa + sb, n, "{sa} + {sb}");
    let texts = sms_to(&app, &phone_of(&w.seed, "yc-c1-p1"));
    assert_eq!(texts.len(), n);
    let distinct: std::collections::BTreeSet<_> = texts.iter().collect();
    assert_eq!(distinct.len(), n, "no row delivered twice");
}

// ---------------------------------------------------------------- SMTP

/// A real SMTP server for the tests: Python's aiosmtpd in a subprocess, writing every message it
/// accepts to a directory. Killed (by its own pid) when dropped.
pub struct SmtpServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: std::path::PathBuf,
    cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    mode: SmtpTls,
}

const SMTP_SERVER_PY: &str = r#"
import os, ssl, sys, time, uuid
from aiosmtpd.controller import Controller
port, outdir, cert, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
class Handler:
    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(outdir, uuid.uuid4().hex)
        with open(path + ".tmp", "wb") as f:
            f.write(("X-Test-Rcpt: " + ",".join(envelope.rcpt_tos) + "\r\n").encode())
            f.write(("X-Test-Peer: " + str(session.peer[1]) + "\r\n").encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path + ".eml")
        return "250 OK"
ctx = None
if cert != "-":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
if mode == "tls":
    c = Controller(Handler(), hostname="127.0.0.1", port=port, ssl_context=ctx)
else:
    c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=ctx is not None)
c.start()
print("READY", flush=True)
while True:
    time.sleep(3600)
"#;

fn smtp_missing(why: &str) -> Option<SmtpServer> {
    if std::env::var("HUYING_REQUIRE_SMTP").as_deref() == Ok("1") {
        panic!("HUYING_REQUIRE_SMTP=1 but {why}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED (smtp): {why}; install it with `pip install aiosmtpd` (this SMTP test did not run)"
    );
    None
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl SmtpServer {
    /// Starts the server on `port` (STARTTLS required, TLS from the first byte, or plain), or
    /// `None` loudly.
    pub fn start(port: u16, mode: SmtpTls) -> Option<SmtpServer> {
        let ok = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return smtp_missing("python3 with aiosmtpd is not available");
        }
        let dir =
            std::env::temp_dir().join(format!("huying-smtp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let cert = if mode != SmtpTls::None {
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            let made = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=localhost",
                ])
                .arg("-keyout")
                .arg(&k)
                .arg("-out")
                .arg(&c)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !made {
                return smtp_missing(
                    "the openssl command (for a test certificate) is not available",
                );
            }
            Some((c, k))
        } else {
            None
        };
        let mut s = SmtpServer {
            child: None,
            port,
            dir,
            cert,
            mode,
        };
        s.spawn();
        Some(s)
    }

    fn spawn(&mut self) {
        let mailbox = self.dir.join("mail");
        std::fs::create_dir_all(&mailbox).expect("mail dir");
        let (c, k) = match &self.cert {
            Some((c, k)) => (c.display().to_string(), k.display().to_string()),
            None => ("-".into(), "-".into()),
        };
        // The port came from `free_port`, so another test's socket may have taken it since
        // (seen in CI: "address already in use"): try again for a few seconds before failing.
        for attempt in 1..=10 {
            let mut child = Command::new("python3")
                .args(["-c", SMTP_SERVER_PY, &self.port.to_string()])
                .arg(&mailbox)
                .args([&c, &k])
                .arg(match self.mode {
                    SmtpTls::None => "none",
                    SmtpTls::Starttls => "starttls",
                    SmtpTls::Tls => "tls",
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start python3");
            let mut line = String::new();
            let stdout = child.stdout.take().expect("stdout");
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .expect("read");
            if line.trim() == "READY" {
                self.child = Some(child);
                return;
            }
            let _ = child.wait();
            assert!(
                attempt < 10,
                "SMTP server did not start on port {}",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }

    /// Stops the server (the port is free again until [`SmtpServer::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The client ports the messages came from: one per SMTP connection that carried mail.
    pub fn connections(&self) -> std::collections::BTreeSet<String> {
        self.messages()
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find(|l| l.starts_with("X-Test-Peer:"))
                    .map(str::to_string)
            })
            .collect()
    }

    /// Every message received: the envelope recipients line and the raw message.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.join("mail")) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "eml") {
                    out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn with_smtp(s: &mut Settings, port: u16, tls: SmtpTls) {
    s.email.enabled = true;
    s.email.from = "呼应 <noreply@huying.test>".into();
    s.email.smtp.host = "127.0.0.1".into();
    s.email.smtp.port = port;
    s.email.smtp.tls = tls;
    s.email.smtp.accept_invalid_certs = true;
    s.email.smtp.timeout_secs = 5;
}

/// Puts compound staff `username` on email instead of SMS.
async fn email_instead_of_sms(app: &TestApp, username: &str, address: &str) {
    let token = app.login_staff(username).await;
    let (s, v) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/me/notification-settings",
            Some(&token),
            Some(&json!({"sms": false, "inapp": true, "email": true, "email_address": address})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// The raw message with its base64 parts and encoded-word headers decoded, for assertions.
fn decoded(raw: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(|b| String::from_utf8_lossy(&b).to_string())
            .ok()
    };
    let raw = raw.replace("\r\n", "\n");
    let mut out = raw.clone();
    // Headers: =?utf-8?b?…?= encoded words.
    for part in raw.split("=?utf-8?b?").skip(1) {
        if let Some(end) = part.find("?=") {
            out.push_str(&b64(&part[..end]).unwrap_or_default());
        }
    }
    // Bodies: blocks of base64 lines between blank lines and boundaries.
    for block in raw.split("\n\n") {
        let compact: String = block
            .lines()
            .take_while(|l| !l.starts_with("--"))
            .map(str::trim)
            .collect();
        if let Some(text) = b64(&compact) {
            out.push('\n');
            out.push_str(&text);
        }
    }
    out
}

async fn email_arrives_at_a_real_smtp_server_over_starttls(app: TestApp) {
    let port = free_port();
    let Some(smtp) = SmtpServer::start(port, SmtpTls::Starttls) else {
        return;
    };
    let w = morning_world(&app).await;
    email_instead_of_sms(&app, "yc-c1-p1", "secretary@compound.test").await;
    let t = create(&app, &w, "小区门禁坏了").await;
    let id = t["id"].as_i64().expect("id");
    let reference = t["reference"].as_str().expect("ref");
    let d = dispatcher_with(&app, |s| with_smtp(s, port, SmtpTls::Starttls));
    let r = d.dispatch_once(app.now()).await.expect("dispatch");
    assert_eq!(r.sent, 1, "{r:?}");
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1);
    let m = &mail[0];
    assert!(m.starts_with("X-Test-Rcpt: secretary@compound.test"), "{m}");
    assert!(m.contains("Message-ID: <notification-"), "{m}");
    assert!(m.contains("multipart/alternative"), "{m}");
    assert!(m.contains("text/html"), "{m}");
    let text = decoded(m);
    assert!(
        text.contains(reference),
        "subject names the reference: {text}"
    );
    assert!(text.contains("小区门禁坏了"), "{text}");
    assert!(text.contains(&format!("/t/{id}")), "{text}");
    assert!(
        sms_to(&app, &phone_of(&w.seed, "yc-c1-p1")).is_empty(),
        "email instead of SMS"
    );

    // Misconfigured without TLS, the server refuses (530, must STARTTLS): nothing is sent in
    // clear, and the row is dead with the server's answer for an admin to retry once fixed.
    create(&app, &w, "第二件事").await;
    let plain = dispatcher_with(&app, |s| with_smtp(s, port, SmtpTls::None));
    let r = plain.dispatch_once(app.now()).await.expect("dispatch");
    assert_eq!((r.sent, r.dead), (0, 1), "{r:?}");
    assert_eq!(smtp.messages().len(), 1);
    let admin = app.login_staff("yc-admin").await;
    let (_, page) = app
        .get("/api/v1/admin/notifications?status=dead", Some(&admin))
        .await;
    let err = page["items"][0]["last_error"].as_str().unwrap_or("");
    assert!(
        err.contains("530") || err.to_lowercase().contains("starttls"),
        "{page}"
    );
    let nid = page["items"][0]["id"].as_i64().expect("id");
    let (s, _) = app
        .post(
            &format!("/api/v1/admin/notifications/{nid}/retry"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = d.dispatch_once(app.now()).await.expect("dispatch");
    assert_eq!(r.sent, 1, "{r:?}");
    assert_eq!(smtp.messages().len(), 2);
}

async fn an_smtp_outage_delays_mail_but_loses_and_doubles_none(app: TestApp) {
    let port = free_port();
    let Some(mut smtp) = SmtpServer::start(port, SmtpTls::None) else {
        return;
    };
    smtp.stop();
    let w = morning_world(&app).await;
    email_instead_of_sms(&app, "yc-c1-p1", "secretary@compound.test").await;
    let n = 6;
    for i in 0..n {
        create(&app, &w, &format!("停电{i}")).await;
    }
    let d = dispatcher_with(&app, |s| with_smtp(s, port, SmtpTls::None));
    let r = d.dispatch_once(app.now()).await.expect("dispatch");
    assert_eq!((r.claimed, r.retried), (n, n), "{r:?}");
    app.advance(chrono::Duration::minutes(2));
    let r = d.dispatch_once(app.now()).await.expect("dispatch");
    assert_eq!(r.retried, n, "still down: {r:?}");
    smtp.restart();
    app.advance(chrono::Duration::minutes(5));
    let r = d.dispatch_once(app.now()).await.expect("dispatch");
    assert_eq!(r.sent, n, "{r:?}");
    app.advance(chrono::Duration::hours(2));
    assert_eq!(
        d.dispatch_once(app.now()).await.expect("dispatch").claimed,
        0
    );
    let mail = smtp.messages();
    assert_eq!(mail.len(), n);
    let ids: std::collections::BTreeSet<String> = mail
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("Message-ID:"))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(ids.len(), n, "each once");
}

/// SMTPS (`email.smtp.tls = "tls"`): TLS from the first byte, on connections the mailer opens
/// itself.
async fn email_arrives_over_implicit_tls(app: TestApp) {
    let port = free_port();
    let Some(smtp) = SmtpServer::start(port, SmtpTls::Tls) else {
        return;
    };
    let w = morning_world(&app).await;
    email_instead_of_sms(&app, "yc-c1-p1", "secretary@compound.test").await;
    create(&app, &w, "楼道灯不亮").await;
    let d = dispatcher_with(&app, |s| with_smtp(s, port, SmtpTls::Tls));
    let r = d.dispatch_once(app.now()).await.expect("dispatch");
    assert_eq!(r.sent, 1, "{r:?}");
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1);
    assert!(decoded(&mail[0]).contains("楼道灯不亮"), "{}", mail[0]);

    // The same relay spoken to in clear gets no SMTP greeting: the row waits for a retry.
    create(&app, &w, "第二件事").await;
    let plain = dispatcher_with(&app, |s| with_smtp(s, port, SmtpTls::None));
    let r = plain.dispatch_once(app.now()).await.expect("dispatch");
    assert_eq!((r.sent, r.retried + r.dead), (0, 1), "{r:?}");
    assert_eq!(smtp.messages().len(), 1);
}

/// The pool keeps connections open between messages, and a pooled connection that the relay
/// dropped (here: the relay restarted) is replaced at once instead of failing the message.
async fn pooled_smtp_connections_are_reused_and_replaced_when_the_relay_restarts(app: TestApp) {
    let port = free_port();
    let Some(mut smtp) = SmtpServer::start(port, SmtpTls::None) else {
        return;
    };
    let w = morning_world(&app).await;
    email_instead_of_sms(&app, "yc-c1-p1", "secretary@compound.test").await;
    let d = dispatcher_with(&app, |s| {
        with_smtp(s, port, SmtpTls::None);
        s.email.smtp.pool_size = 1;
    });
    for i in 0..3 {
        create(&app, &w, &format!("第{i}件事")).await;
        let r = d.dispatch_once(app.now()).await.expect("dispatch");
        assert_eq!(r.sent, 1, "{r:?}");
    }
    assert_eq!(smtp.messages().len(), 3);
    assert_eq!(
        smtp.connections().len(),
        1,
        "one connection carried all three"
    );

    smtp.restart();
    create(&app, &w, "重启之后").await;
    let r = d.dispatch_once(app.now()).await.expect("dispatch");
    assert_eq!((r.sent, r.retried), (1, 0), "{r:?}");
    let mail = smtp.messages();
    assert_eq!(mail.len(), 4);
    assert!(mail.iter().any(|m| decoded(m).contains("重启之后")));
    assert_eq!(
        smtp.connections().len(),
        2,
        "a new connection after the restart"
    );
}

// ---------------------------------------------------------------- Aliyun SMS over HTTP

#[derive(Clone)]
struct AliyunStandIn {
    secret: String,
    queries: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    answer: Arc<Mutex<(u16, Value)>>,
}

async fn aliyun_endpoint(s: web::Data<AliyunStandIn>, req: HttpRequest) -> HttpResponse {
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let mut unsigned = q.clone();
    let given = unsigned.remove("Signature").unwrap_or_default();
    let expected = huying::sms::aliyun::sign(
        &s.secret,
        &huying::sms::aliyun::string_to_sign("GET", &unsigned),
    );
    s.queries.lock().expect("lock").push(q);
    if given != expected {
        return HttpResponse::BadRequest()
            .json(json!({"Code": "SignatureDoesNotMatch", "Message": "bad signature"}));
    }
    let (status, body) = s.answer.lock().expect("lock").clone();
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status")).json(body)
}

#[actix_web::test]
async fn aliyun_sms_is_signed_and_its_answers_are_classified() {
    use huying::sms::{SmsError, SmsMessage, SmsSender};
    let stand_in = AliyunStandIn {
        secret: "stand-in-secret".into(),
        queries: Arc::new(Mutex::new(Vec::new())),
        answer: Arc::new(Mutex::new((
            200,
            json!({"Code": "OK", "Message": "OK", "BizId": "1"}),
        ))),
    };
    let data = web::Data::new(stand_in.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::get().to(aliyun_endpoint))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    actix_web::rt::spawn(server);
    let mut s = Settings::load_with_env(None, &[]).expect("settings");
    s.sms.aliyun.access_key_id = "stand-in-id".into();
    s.sms.aliyun.access_key_secret = secrecy::SecretString::from("stand-in-secret".to_string());
    s.sms.aliyun.sign_name = "呼应".into();
    s.sms.aliyun.template_code = "SMS_000001".into();
    s.sms.aliyun.endpoint = format!("http://127.0.0.1:{port}/");
    let sms = huying::sms::aliyun::AliyunSms::new(&s.sms.aliyun).expect("aliyun");
    let msg = SmsMessage {
        phone: "13800000001".into(),
        text: "【呼应】您的诉求「路灯 坏了*」已办结".into(),
        template: "notify_resolved".into(),
        params: BTreeMap::new(),
    };
    sms.send(&msg)
        .await
        .expect("accepted by the stand-in, signature checked");
    let q = stand_in.queries.lock().expect("lock")[0].clone();
    assert_eq!(q["Action"], "SendSms");
    assert_eq!(q["SignName"], "呼应");
    assert_eq!(q["TemplateCode"], "SMS_000001");
    assert_eq!(q["PhoneNumbers"], "13800000001");
    let tp: Value = serde_json::from_str(&q["TemplateParam"]).expect("json");
    assert_eq!(tp["text"], msg.text);

    *stand_in.answer.lock().expect("lock") = (
        200,
        json!({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控"}),
    );
    assert!(matches!(sms.send(&msg).await, Err(SmsError::Temporary(_))));
    *stand_in.answer.lock().expect("lock") = (
        200,
        json!({"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}),
    );
    assert!(matches!(sms.send(&msg).await, Err(SmsError::Permanent(_))));
    *stand_in.answer.lock().expect("lock") = (500, json!({"Code": "InternalError"}));
    assert!(matches!(sms.send(&msg).await, Err(SmsError::Temporary(_))));
}

// ---------------------------------------------------------------- crash and load

fn huying_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_huying"));
    for (k, _) in std::env::vars() {
        if k.starts_with("HUYING__") || k == "DATABASE_URL" || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}

/// Kills the child by its own pid when dropped (a failed assertion must not leave it running).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn kill_test(backend: crate::helpers::Backend) {
    let Some(db) = crate::helpers::TestDb::create(backend) else {
        return;
    };
    let (gateway, gateway_url) = start_robot().await;
    let envs = |c: &mut Command| {
        c.env("DATABASE_URL", &db.url)
            .env("HUYING__AUTH__JWT_SECRET", crate::helpers::JWT_SECRET)
            .env("HUYING__SMS__PROVIDER", "http")
            .env("HUYING__SMS__HTTP__URL", &gateway_url)
            .env("HUYING__DATA__DIR", db.dir().join("data"))
            .env("HUYING__NOTIFY__QUIET_HOURS_START", "00:00")
            .env("HUYING__NOTIFY__QUIET_HOURS_END", "00:00")
            .env("HUYING__NOTIFY__BATCH", "1000")
            .env("HUYING__LOG__LEVEL", "warn");
    };
    let mut seed = huying_bin();
    envs(&mut seed);
    let out = seed
        .args(["seed-demo", "--password", "demo-pass-123"])
        .output()
        .expect("seed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seed: Value = serde_json::from_slice(&out.stdout).expect("seed json");
    let compound = seed["compounds"][0]["id"].as_i64().expect("compound");
    let category = seed["categories"][0]["id"].as_i64().expect("category");
    let staff_phone = phone_of(&seed, "yc-c1-p1");

    let port = free_port();
    let mut serve = huying_bin();
    envs(&mut serve);
    // This instance only takes calls; delivery happens after the crash (see docs/benchmarks.md).
    serve
        .env("HUYING__NOTIFY__DISPATCHER_ENABLED", "false")
        .env("HUYING__SLA__SWEEPER_ENABLED", "false")
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = Killed(serve.spawn().expect("serve"));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (s, _) = (
        client
            .post(format!("{base}/api/v1/auth/otp"))
            .json(&json!({"phone": "13800000001"}))
            .send()
            .await
            .expect("otp")
            .status(),
        (),
    );
    assert!(s.is_success());
    let code = gateway
        .received
        .lock()
        .expect("lock")
        .iter()
        .rev()
        .find_map(|b| b["params"]["code"].as_str().map(str::to_string))
        .expect("code");
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"phone": "13800000001", "code": code}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["access_token"].as_str().expect("token").to_string();

    // Four clients create tickets as fast as they can; the service is killed under them.
    let ok: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (client, base, token, ok) = (client.clone(), base.clone(), token.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let r = client
                    .post(format!("{base}/api/v1/tickets"))
                    .bearer_auth(&token)
                    .json(&json!({"compound_id": compound, "category_id": category, "title": format!("压测{w}-{i}"), "description": "kill test"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        if let Some(reference) = v["reference"].as_str() {
                            ok.lock().expect("lock").push(reference.to_string());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // SIGKILL: no shutdown hook runs.
    child.0.kill().expect("kill");
    let _ = child.0.wait();
    for t in tasks {
        let _ = t.await;
    }
    let acknowledged = ok.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 5,
        "load too light: {}",
        acknowledged.len()
    );

    // Restart: `huying dispatch --once` until nothing is left.
    for _ in 0..20 {
        let mut d = huying_bin();
        envs(&mut d);
        let out = d.args(["dispatch", "--once"]).output().expect("dispatch");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("report");
        if report["claimed"] == 0 {
            break;
        }
    }
    let sms: Vec<String> = gateway
        .received
        .lock()
        .expect("lock")
        .iter()
        .filter(|b| b["phone"] == staff_phone.as_str())
        .filter_map(|b| b["text"].as_str().map(str::to_string))
        .collect();
    for reference in &acknowledged {
        let n = sms
            .iter()
            .filter(|t| t.contains(reference.as_str()))
            .count();
        assert_eq!(n, 1, "{reference}: {n} SMS");
    }
    // Tickets committed whose answer was lost in the kill are told too, and nothing twice.
    let distinct: std::collections::BTreeSet<&String> = sms.iter().collect();
    assert_eq!(distinct.len(), sms.len(), "a message went out twice");
    assert!(sms.len() >= acknowledged.len());
}

#[actix_web::test]
async fn killing_the_service_under_load_loses_no_notification_sqlite() {
    kill_test(crate::helpers::Backend::Sqlite).await;
}

#[actix_web::test]
async fn killing_the_service_under_load_loses_no_notification_postgres() {
    kill_test(crate::helpers::Backend::Postgres).await;
}
