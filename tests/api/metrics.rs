//! `/metrics` (issue #15): Prometheus text that parses, per-route counters that move with
//! traffic and never carry a raw path, the token, the separate listener, and the gauges read
//! from the database.

use std::collections::BTreeMap;

use chrono::Duration;
use huying::config::Settings;
use reqwest::StatusCode;
use secrecy::SecretString;

use crate::helpers::{error_code, TestApp};
use crate::notifications::free_port;
use crate::tickets::create;
use crate::{both_backends, both_backends_with};

const TOKEN: &str = "scrape-token-0123456789";

/// One sample: its labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition.
#[derive(Debug)]
struct Scrape {
    samples: Vec<Sample>,
    raw: String,
}

impl Scrape {
    /// Parses the Prometheus text format strictly enough to catch a broken page: every line is
    /// a comment or `name{labels} value`, and every sample belongs to a family with `# TYPE`.
    fn parse(text: &str) -> Scrape {
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().expect("TYPE name").to_string();
                let kind = parts.next().expect("TYPE kind").to_string();
                assert!(
                    [
                        "counter",
                        "gauge",
                        "histogram",
                        "summary",
                        "untyped",
                        "info"
                    ]
                    .contains(&kind.as_str()),
                    "unknown type in `{line}`"
                );
                types.insert(name, kind);
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            samples.push(parse_sample(line));
        }
        for s in &samples {
            let typed = types.contains_key(&s.name)
                || ["_total", "_bucket", "_sum", "_count", "_created"]
                    .iter()
                    .any(|suffix| {
                        s.name
                            .strip_suffix(suffix)
                            .is_some_and(|family| types.contains_key(family))
                    });
            assert!(typed, "sample {} has no # TYPE", s.name);
        }
        Scrape {
            samples,
            raw: text.to_string(),
        }
    }

    /// The sum of the samples named `name` whose labels include every pair in `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

fn bad<T>(line: &str) -> T {
    panic!("not `name{{labels}} value`: `{line}`")
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| bad(line));
    let name = &line[..name_end];
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit()),
        "bad metric name in `{line}`"
    );
    let mut labels = BTreeMap::new();
    let mut rest: Vec<char> = line[name_end..].chars().collect();
    if rest.first() == Some(&'{') {
        let mut i = 1;
        while rest.get(i) != Some(&'}') {
            let mut key = String::new();
            while let Some(&c) = rest.get(i) {
                i += 1;
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad label name `{key}` in `{line}`"
            );
            assert_eq!(rest.get(i), Some(&'"'), "`{line}`");
            i += 1;
            let mut value = String::new();
            loop {
                let c = *rest.get(i).unwrap_or_else(|| bad(line));
                i += 1;
                match c {
                    '\\' => {
                        let e = *rest.get(i).unwrap_or_else(|| bad(line));
                        i += 1;
                        value.push(if e == 'n' { '\n' } else { e });
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
            match rest.get(i) {
                Some(',') => i += 1,
                Some('}') => {}
                _ => bad::<()>(line),
            }
        }
        rest = rest.split_off(i + 1);
    }
    let rest: String = rest.into_iter().collect();
    let mut fields = rest.trim_start_matches(' ').split(' ');
    let value = fields.next().unwrap_or_else(|| bad(line));
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().unwrap_or_else(|_| bad(line)),
    };
    // An optional timestamp, nothing more.
    if let Some(ts) = fields.next() {
        assert!(ts.parse::<i64>().is_ok(), "bad timestamp in `{line}`");
    }
    assert!(fields.next().is_none(), "trailing text in `{line}`");
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}

async fn scrape_at(app: &TestApp, base: &str, token: Option<&str>) -> Scrape {
    let mut req = app.client.get(format!("{base}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("text/plain"), "content type {ct}");
    Scrape::parse(&resp.text().await.expect("body"))
}

async fn scrape(app: &TestApp) -> Scrape {
    scrape_at(app, &app.base, Some(TOKEN)).await
}

fn enabled(s: &mut Settings) {
    s.metrics.enabled = true;
    s.metrics.token = SecretString::from(TOKEN.to_string());
    s.metrics.refresh_secs = 1;
}

both_backends_with!(enabled;
    counters_move_with_traffic_per_route_template,
    the_token_is_required,
    gauges_show_tickets_outbox_and_sweeper_lag,
);

async fn counters_move_with_traffic_per_route_template(app: TestApp) {
    let before = scrape(&app).await;
    assert!(before.has("huying_build_info"), "{}", before.raw);
    assert_eq!(
        before.sum(
            "huying_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    let template = [("route", "/api/v1/tickets/{id}"), ("status", "401")];
    let unmatched = [("route", "unmatched"), ("status", "404")];
    let categories = [("route", "/api/v1/categories"), ("status", "200")];

    for id in [7, 8, 9] {
        let (s, _) = app.get(&format!("/api/v1/tickets/{id}"), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..2 {
        let (s, _) = app.get("/api/v1/categories", None).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, _) = app.get("/no/such/path-4711", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let after = scrape(&app).await;
    let grew = |labels: &[(&str, &str)]| {
        after.sum("huying_http_requests_total", labels)
            - before.sum("huying_http_requests_total", labels)
    };
    assert_eq!(grew(&template), 3.0, "{}", after.raw);
    assert_eq!(grew(&categories), 2.0);
    assert_eq!(grew(&unmatched), 1.0);
    // The latency histogram counts the same requests.
    assert_eq!(
        after.sum("huying_http_request_duration_seconds_count", &template)
            - before.sum("huying_http_request_duration_seconds_count", &template),
        3.0
    );
    assert_eq!(
        after.sum(
            "huying_http_request_duration_seconds_bucket",
            &[
                ("route", "/api/v1/tickets/{id}"),
                ("status", "401"),
                ("le", "+Inf")
            ]
        ),
        after.sum("huying_http_request_duration_seconds_count", &template)
    );
    // No raw path in any label.
    for raw in ["/api/v1/tickets/7", "/no/such/path-4711", "path-4711"] {
        assert!(!after.raw.contains(raw), "raw path {raw} in the scrape");
    }
    let routes: Vec<&str> = after
        .samples
        .iter()
        .filter_map(|s| s.labels.get("route").map(String::as_str))
        .collect();
    assert!(routes
        .iter()
        .all(|r| *r == "unmatched" || r.starts_with('/')));
    // The per-pool gauges are there.
    assert_eq!(
        after.sum("huying_db_pool_max_connections", &[]),
        f64::from(app.settings.database.pool_size)
    );
    assert!(after.has("huying_db_pool_waiting"));
    assert!(after.has("huying_db_pool_connections"));
}

async fn the_token_is_required(app: TestApp) {
    let url = format!("{}/metrics", app.base);
    let resp = app.client.get(&url).send().await.expect("scrape");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(error_code(&v), "unauthorized");
    for wrong in ["scrape-token-0123456780", "x", ""] {
        let resp = app
            .client
            .get(&url)
            .bearer_auth(wrong)
            .send()
            .await
            .expect("scrape");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "token `{wrong}`");
    }
    let resp = app
        .client
        .get(&url)
        .header("authorization", TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "not a bearer token"
    );
    scrape(&app).await;
}

async fn gauges_show_tickets_outbox_and_sweeper_lag(app: TestApp) {
    // At the hour CI happens to run, quiet hours would hold the SMS row back from the dispatch
    // below (it failed from 22:00 Beijing time).
    let w = crate::notifications::morning_world(&app).await;
    create(&app, &w, "指标测试：楼道灯坏了").await;

    let m = scrape(&app).await;
    assert_eq!(
        m.sum(
            "huying_tickets",
            &[("level", "compound"), ("status", "open")]
        ),
        1.0,
        "{}",
        m.raw
    );
    assert_eq!(m.sum("huying_tickets", &[]), 1.0);
    // The new ticket's notifications wait in the outbox (tests run no dispatcher).
    assert!(
        m.sum("huying_outbox_rows", &[("status", "pending")]) > 0.0,
        "{}",
        m.raw
    );
    assert!(m.has("huying_outbox_oldest_pending_age_seconds"));
    assert_eq!(m.sum("huying_tickets_overdue", &[]), 0.0);
    // The resident's sign-in code went out through the counted SMS sender.
    assert!(
        m.sum(
            "huying_sms_total",
            &[("purpose", "login_code"), ("outcome", "sent")]
        ) >= 1.0,
        "{}",
        m.raw
    );

    // A month later nobody answered and no sweeper ran: the ticket is overdue and waits for a
    // sweep; the outbox rows are long due.
    app.advance(Duration::days(30));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let m = scrape(&app).await;
    assert_eq!(
        m.sum("huying_tickets_overdue", &[("level", "compound")]),
        1.0,
        "{}",
        m.raw
    );
    let lag = m.sum("huying_sweeper_lag_seconds", &[]);
    assert!(lag > 86_400.0, "sweeper lag {lag}");
    let due = m.sum("huying_outbox_due_lag_seconds", &[]);
    assert!(due > 86_400.0, "outbox due lag {due}");

    // Delivered (by a dispatcher of its own), the pending rows are gone at the next refresh.
    crate::notifications::dispatch(&app).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let m = scrape(&app).await;
    assert_eq!(
        m.sum("huying_outbox_rows", &[("status", "pending")]),
        0.0,
        "{}",
        m.raw
    );
    assert_eq!(m.sum("huying_outbox_due_lag_seconds", &[]), 0.0);
    assert_documented(&m);
}

const OPERATIONS_MD: &str = include_str!("../../docs/operations.md");

/// The family a sample belongs to.
fn family(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .filter(|f| OPERATIONS_MD.contains(&format!("`{f}`")))
        .unwrap_or(name)
}

/// Every metric the service exposes is in the table of docs/operations.md.
fn assert_documented(m: &Scrape) {
    for s in &m.samples {
        let f = family(&s.name);
        assert!(
            OPERATIONS_MD.contains(&format!("| `{f}` |")),
            "{f} is not in the metrics table of docs/operations.md"
        );
    }
}

/// The Grafana dashboard is valid JSON and asks only for documented metrics.
#[test]
fn the_grafana_dashboard_uses_documented_metrics() {
    let text = include_str!("../../docs/grafana-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
    let panels = dash["panels"].as_array().expect("panels");
    let mut exprs = 0;
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("expr");
            exprs += 1;
            let mut rest = expr;
            while let Some(i) = rest.find("huying_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let f = family(&name);
                assert!(
                    OPERATIONS_MD.contains(&format!("| `{f}` |")),
                    "dashboard asks for {name}, not in docs/operations.md"
                );
                rest = &rest[i + name.len()..];
            }
        }
    }
    assert!(exprs >= 15, "only {exprs} queries");
}

/// Off (the default): `/metrics` is 404 like any unknown path.
async fn disabled_is_404(app: TestApp) {
    let (s, v) = app.get("/metrics", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(error_code(&v), "not_found");
}

both_backends!(disabled_is_404);

fn separate(s: &mut Settings) {
    enabled(s);
    s.metrics.bind = format!("127.0.0.1:{}", free_port());
}

both_backends_with!(separate; a_separate_bind_serves_it);

/// `metrics.bind`: its own listener serves `/metrics`; the main one does not.
async fn a_separate_bind_serves_it(app: TestApp) {
    let (s, _) = app.get("/metrics", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not on the main listener");
    let (s, _) = app.get("/api/v1/categories", None).await;
    assert_eq!(s, StatusCode::OK);
    let other = format!("http://{}", app.settings.metrics.bind);
    let resp = app
        .client
        .get(format!("{other}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "token still needed"
    );
    let m = scrape_at(&app, &other, Some(TOKEN)).await;
    assert_eq!(
        m.sum(
            "huying_http_requests_total",
            &[("route", "/api/v1/categories"), ("status", "200")]
        ),
        1.0,
        "{}",
        m.raw
    );
    let resp = app
        .client
        .get(format!("{other}/elsewhere"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
