//! The pages in a real headless Chromium, driven through chromedriver (WebDriver).
//!
//! Skipped, loudly, when Chromium or chromedriver is not installed; `HUYING_REQUIRE_BROWSER=1`
//! (set by CI) turns that skip into a failure. Screenshots land in `docs/screenshots/`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::TestApp;

both_backends!(
    a_request_travels_from_a_phone_to_the_dashboard,
    the_community_presses_and_grants_more_time,
    the_street_calls_back_and_the_ticket_reopens
);

const WAIT: Duration = Duration::from_secs(15);

pub struct Browser {
    pub client: Client,
    driver: Child,
    /// Only one run writes docs/screenshots/ (the backends run in parallel).
    pub screenshots: bool,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Killing chromedriver alone leaves its Chromium running (on a pass as on a panic):
        // chromedriver leads its own process group, so end the whole group, Chromium included.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.driver.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find_program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for c in candidates {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(c);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn skip(why: &str) -> Option<Browser> {
    if std::env::var("HUYING_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("HUYING_REQUIRE_BROWSER=1 but {why}");
    }
    // Past the test harness's capture, so that a skip is seen even when the test "passes".
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED (browser test): {why}; install Debian's chromium and chromium-driver"
    );
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Browser {
    /// A 375×667 phone for a story on `app`; only the SQLite run writes the screenshots.
    async fn phone_for(app: &TestApp) -> Option<Browser> {
        let mut b = Browser::start(375, 667).await?;
        b.screenshots = app
            .settings
            .database
            .url
            .expose_secret()
            .starts_with("sqlite");
        Some(b)
    }

    /// Chromium at the given window size, or None (after saying so) when it is not installed.
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        let Some(chromium) = find_program(
            "HUYING_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome", "chrome"],
        ) else {
            return skip("no Chromium found (set HUYING_CHROMIUM)");
        };
        let Some(chromedriver) = find_program("HUYING_CHROMEDRIVER", &["chromedriver"]) else {
            return skip("no chromedriver found (set HUYING_CHROMEDRIVER)");
        };
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            // Chromium takes its UI locale (date inputs, number formats) from the environment.
            .env("LANGUAGE", "zh_CN")
            .env("LANG", "zh_CN.UTF-8")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let url = format!("http://127.0.0.1:{port}");
        let status = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = status.get(format!("{url}/status")).send().await {
                if r.status().is_success() {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not come up on {url}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    "--lang=zh-CN",
                    format!("--window-size={width},{height}"),
                ],
                "prefs": {"intl.accept_languages": "zh-CN"},
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let client = ClientBuilder::native()
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("WebDriver session");
        let mut b = Browser {
            client,
            driver,
            screenshots: true,
        };
        b.resize(width, height).await;
        b.client.goto("about:blank").await.expect("blank");
        Some(b)
    }

    /// Makes the viewport exactly `width`×`height` CSS pixels. Resizing the headless window
    /// does not (Chromium keeps a minimum window width), so emulate the device over CDP.
    pub async fn resize(&mut self, width: u32, height: u32) {
        let cmd = Cdp {
            cmd: "Emulation.setDeviceMetricsOverride",
            params: json!({
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": width < 600,
            }),
        };
        self.client
            .issue_cmd(cmd)
            .await
            .expect("CDP device metrics");
    }

    /// Runs one Chrome DevTools Protocol command (e.g. `Browser.grantPermissions`).
    pub async fn cdp(&self, cmd: &'static str, params: Value) {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"));
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn wait_long(&self, css: &str, at_most: Duration) -> Element {
        self.client
            .wait()
            .at_most(at_most)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("waiting {at_most:?} for {css}: {e}"))
    }

    pub async fn wait(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("waiting for {css}: {e}"))
    }

    /// Waits until `css` is displayed and enabled, then does `act` to it (retrying while the
    /// page is still re-rendering, e.g. a stale element or one under an animation).
    async fn when_ready<F, Fut>(&self, css: &str, what: &str, act: F)
    where
        F: Fn(Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let el = self.wait(css).await;
            if el.is_displayed().await.unwrap_or(false) && el.is_enabled().await.unwrap_or(false) {
                match act(el).await {
                    Ok(()) => return,
                    Err(e) if std::time::Instant::now() > deadline => panic!("{what} {css}: {e}"),
                    Err(_) => {}
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} {css}: never ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.when_ready(css, "click", |el| async move { el.click().await })
            .await;
    }

    /// Replaces the text of an input or textarea.
    pub async fn fill(&self, css: &str, text: &str) {
        self.when_ready(css, "type into", |el| async move {
            el.clear().await?;
            el.send_keys(text).await
        })
        .await;
    }

    /// Picks the option of a <select> whose value is `value`.
    pub async fn select_value(&self, css: &str, value: &str) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let el = self.wait(css).await;
            if el.select_by_value(value).await.is_ok() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{css} never offered the value {value}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.wait(css).await.text().await.expect("text")
    }

    /// Waits until the text of `css` satisfies `pred`; returns it.
    pub async fn wait_text(&self, css: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        let mut last = String::new();
        while std::time::Instant::now() < deadline {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    if pred(&t) {
                        return t;
                    }
                    last = t;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("text of {css} never matched; last seen: {last:?}");
    }

    /// Waits until a JavaScript expression is truthy.
    pub async fn wait_js(&self, what: &str, expr: &str) {
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            let v = self
                .client
                .execute(&format!("return !!({expr})"), vec![])
                .await
                .expect("execute");
            if v == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("waited in vain for {what} ({expr})");
    }

    pub async fn js(&self, expr: &str) -> Value {
        self.client
            .execute(&format!("return ({expr})"), vec![])
            .await
            .expect("execute")
    }

    /// Saves a PNG of the viewport to docs/screenshots/NAME.png.
    pub async fn screenshot(&self, name: &str) {
        if !self.screenshots {
            return;
        }
        // Let countdowns tick and images decode so the picture shows the settled page.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A passing toast would cover what the picture is meant to show.
        self.js("(document.querySelectorAll('#toast, .toast').forEach(t => t.remove()), true)")
            .await;
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Script errors and unhandled rejections the page recorded (web/common/ui.js keeps them
    /// in `window.__huyingErrors`): a script error is a failed page, even if it looks fine.
    pub async fn page_errors(&self) -> Vec<String> {
        match self.js("window.__huyingErrors || []").await {
            Value::Array(v) => v.into_iter().map(|e| e.to_string()).collect(),
            other => vec![format!("unexpected: {other}")],
        }
    }
}

fn account(seed: &Value, unit_id: i64) -> &str {
    seed["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["org_unit_id"] == unit_id)
        .and_then(|a| a["username"].as_str())
        .expect("a secretary for the unit")
}

/// On a phone: no sideways scrolling and every control at least 44×44 CSS pixels.
async fn assert_phone_usable(b: &Browser, page: &str) {
    let bad = b
        .js(r#"(() => {
          const bad = [];
          const doc = document.documentElement;
          if (doc.scrollWidth > window.innerWidth) bad.push('page scrolls sideways: ' + doc.scrollWidth);
          const controls = 'button, input, select, textarea, a.btn, [role=button], nav a';
          for (const el of document.querySelectorAll(controls)) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 && r.height === 0) continue;
            if (['checkbox', 'radio', 'hidden'].includes(el.type)) continue;
            if (getComputedStyle(el).visibility === 'hidden') continue;
            if (el.closest('dialog:not([open])')) continue;
            if (r.height < 44 || r.width < 44) {
              bad.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} ${Math.round(r.width)}x${Math.round(r.height)}`);
            }
          }
          return bad;
        })()"#)
        .await;
    assert_eq!(bad, json!([]), "{page}: too small for a finger at 375×667");
}

/// The page's `<link rel="modulepreload">` list names exactly the ES modules it loads: the browser
/// then fetches them all at once instead of one import level after another (on 3G each level
/// costs a round trip). The entry script (`app.js`) and the vendored ECharts are loaded by
/// `<script>` tags.
async fn assert_modules_preloaded(b: &Browser, page: &str) {
    let diff = b
        .js(r#"(() => {
          const path = (u) => new URL(u, location.href).pathname;
          const listed = new Set([...document.querySelectorAll('link[rel=modulepreload]')].map((l) => path(l.href)));
          const loaded = new Set(performance.getEntriesByType('resource').map((e) => path(e.name))
            .filter((p) => p.startsWith('/static/') && p.endsWith('.js'))
            .filter((p) => !p.startsWith('/static/vendor/') && !p.endsWith('/app.js')));
          return {
            unlisted: [...loaded].filter((p) => !listed.has(p)).sort(),
            unused: [...listed].filter((p) => !loaded.has(p)).sort(),
          };
        })()"#)
        .await;
    assert_eq!(
        diff,
        json!({"unlisted": [], "unused": []}),
        "{page}: the modulepreload list is out of step with the modules"
    );
}

fn assert_no_page_errors(errors: Vec<String>, page: &str) {
    assert!(
        errors.is_empty(),
        "script errors on the {page} page: {errors:?}"
    );
}

/// The issue's whole story in a real browser: a resident on a 375×667 phone signs in with the
/// SMS code, submits a request with a photo; the compound secretary sees it arrive, acknowledges
/// and calls it up; the community secretary resolves it; the resident confirms with 5 stars; the
/// street dashboard shows the numbers that follow.
async fn a_request_travels_from_a_phone_to_the_dashboard(app: TestApp) {
    let Some(mut b) = Browser::phone_for(&app).await else {
        return;
    };
    let seed = app.seed();
    let compound = &seed["compounds"][0];
    let compound_id = compound["id"].as_i64().expect("compound id");
    let community_id = compound["parent_id"].as_i64().expect("community id");
    let compound_secretary = account(&seed, compound_id).to_string();
    let community_secretary = account(&seed, community_id).to_string();
    let street_staff = account(&seed, seed["street"]["id"].as_i64().expect("street")).to_string();
    let phone = "13800000001";
    let base = app.base.clone();
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/common/icon-192.png");

    // ---- Resident, on a phone.
    b.goto(&format!("{base}/")).await;
    assert_eq!(
        b.js("[window.innerWidth, window.innerHeight]").await,
        json!([375, 667])
    );
    b.fill("#phone", phone).await;
    assert_modules_preloaded(&b, "resident").await;
    b.screenshot("resident-sign-in").await;
    assert_phone_usable(&b, "resident-sign-in").await;
    b.click("#send-code").await;
    let code = sms_code(&app, phone, None).await;
    b.fill("#code", &code).await;
    b.click("#login").await;
    b.click("#nav-new").await;
    b.select_value("#compound", &compound_id.to_string()).await;
    let category = seed["categories"][0]["id"]
        .as_i64()
        .expect("category")
        .to_string();
    b.select_value("#category", &category).await;
    b.select_value("#urgency", "normal").await;
    // A title that would run as script if the page put user text into innerHTML.
    let title = "3号楼楼道灯坏了<img src=x onerror=window.__xss=1>";
    b.fill("#title", title).await;
    b.fill(
        "#description",
        "三单元二楼到五楼的楼道灯都不亮，晚上老人上下楼很危险。",
    )
    .await;
    // 使用我的位置: refused first (the form says so and still works), then allowed.
    b.cdp(
        "Browser.setPermission",
        json!({"permission": {"name": "geolocation"}, "setting": "denied", "origin": base}),
    )
    .await;
    b.js("(document.getElementById('use-location').scrollIntoView({block: 'center'}), true)")
        .await;
    b.click("#use-location").await;
    b.wait_text("#geo-status", |t| t.contains("未获得位置权限"))
        .await;
    b.cdp(
        "Browser.grantPermissions",
        json!({"permissions": ["geolocation"], "origin": base}),
    )
    .await;
    b.cdp(
        "Emulation.setGeolocationOverride",
        json!({"latitude": 23.129163, "longitude": 113.264435, "accuracy": 25}),
    )
    .await;
    b.js("(document.getElementById('use-location').scrollIntoView({block: 'center'}), true)")
        .await;
    b.click("#use-location").await;
    b.wait_text("#geo-text", |t| {
        t.contains("北纬 23.129163°") && t.contains("东经 113.264435°") && t.contains("±25 米")
    })
    .await;
    b.wait("#photos")
        .await
        .send_keys(&photo.to_string_lossy())
        .await
        .expect("choose a photo");
    b.wait("#thumbs .thumb[data-state='ready']").await;
    b.js("(document.getElementById('thumbs').scrollIntoView({block: 'center'}), true)")
        .await;
    b.screenshot("resident-new-request").await;
    assert_phone_usable(&b, "resident-new-request").await;
    b.click("#submit").await;
    b.wait_js("the request page", "location.hash.startsWith('#/t/')")
        .await;
    let hash = b.js("location.hash").await;
    let ticket_id: i64 = hash
        .as_str()
        .and_then(|h| h.strip_prefix("#/t/"))
        .and_then(|s| s.split(['/', '?']).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("ticket id in {hash}"));
    b.wait_text("#ticket-title", |t| t == title).await;
    b.wait_text("#status-text", |t| t.contains("待小区党支部受理"))
        .await;
    b.wait("#photos-view img").await;
    assert_eq!(b.js("window.__xss === undefined").await, json!(true));
    b.screenshot("resident-request").await;
    assert_phone_usable(&b, "resident-request").await;
    // The photo arrived with the ticket.
    let token = app.login_resident(phone).await;
    let (_, atts) = app
        .get(
            &format!("/api/v1/tickets/{ticket_id}/attachments"),
            Some(&token),
        )
        .await;
    assert_eq!(atts.as_array().map(Vec::len), Some(1), "{atts}");
    // The location went with it, accuracy included.
    let (_, mine) = app
        .get(&format!("/api/v1/tickets/{ticket_id}"), Some(&token))
        .await;
    assert_eq!(
        mine["location"],
        json!({"text": null, "latitude": 23.129163, "longitude": 113.264435, "accuracy_m": 25.0}),
        "{mine}"
    );
    b.wait_text("#ticket-coords", |t| t.contains("±25 米"))
        .await;
    assert_no_page_errors(b.page_errors().await, "resident");

    // ---- Compound secretary, on a desktop.
    b.resize(1366, 768).await;
    b.goto(&format!("{base}/staff/")).await;
    b.fill("#username", &compound_secretary).await;
    b.fill("#password", crate::helpers::DEMO_PASSWORD).await;
    b.click("#login").await;
    b.wait_text(".tab[data-tab='open'] .count", |t| t.trim() == "1")
        .await;
    let row = format!(".ticket-row[data-id='{ticket_id}']");
    b.wait_text(&row, |t| t.contains("3号楼楼道灯坏了")).await;
    assert_modules_preloaded(&b, "staff").await;
    b.screenshot("staff-queue").await;
    // Another resident calls while the secretary watches the queue: it appears without a
    // reload, told by the live stream (GET /api/v1/stream) within a few seconds, far sooner
    // than the 20 s polling the page falls back to.
    let neighbour = app.login_resident("13800000002").await;
    let (status, second) = app
        .post(
            "/api/v1/tickets",
            Some(&neighbour),
            json!({
                "compound_id": compound_id,
                "category_id": seed["categories"][1]["id"],
                "urgency": "urgent",
                "title": "5号楼门口下水道堵了",
                "description": "污水漫到路面，老人小孩出入不便。",
            }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{second}");
    let second_row = format!(".ticket-row[data-id='{}']", second["id"]);
    b.wait_long(&second_row, Duration::from_secs(5)).await;
    b.wait_text(".tab[data-tab='open'] .count", |t| t.trim() == "2")
        .await;
    b.click(&row).await;
    b.wait_text("#ticket-title", |t| t == title).await;
    b.click(".action[data-action='acknowledge']").await;
    submit_action_dialog(&b, &[]).await;
    b.wait_text("#status-text", |t| t.contains("已受理")).await;
    b.wait("#photos-view img").await;
    // The coordinates, and no map: no tile server is configured, so nothing comes from outside.
    b.wait_text("#ticket-coords", |t| {
        t.contains("23.129163") && t.contains("113.264435") && t.contains("±25 米")
    })
    .await;
    assert_eq!(
        b.js(r#"[!!document.getElementById('ticket-map'),
                 performance.getEntriesByType('resource').map((e) => new URL(e.name).origin)
                   .filter((o) => o !== location.origin)]"#)
            .await,
        json!([false, []])
    );
    b.screenshot("staff-ticket").await;
    b.click(".action[data-action='escalate']").await;
    b.wait("dialog#action-dialog[open]").await;
    // The API takes one of five reason codes; the page offers them as a select, with the words
    // of GET /meta/labels, in the order a secretary weighs them and "other" last.
    assert_eq!(
        b.js("[...document.querySelectorAll('#action-reason option')].map(o => [o.value, o.textContent])")
            .await,
        json!([
            ["", "请选择上报原因"],
            ["beyond_authority", "超出本级职权"],
            ["needs_resources", "需要协调资源"],
            ["needs_enforcement", "需要执法力量"],
            ["cross_compound", "涉及多个小区"],
            ["other", "其他"],
        ])
    );
    b.select_value("#action-reason", "beyond_authority").await;
    let note = "涉及楼道线路改造，需社区协调物业和电力公司。";
    submit_action_dialog(&b, &[("#action-note", note)]).await;
    b.wait_text("#status-text", |t| t.contains("社区")).await;
    // The timeline speaks the labels: the level called up to, the reason's words.
    b.wait_text("#timeline", |t| {
        t.contains("上报至社区党支部") && t.contains("原因：超出本级职权")
    })
    .await;
    assert_no_page_errors(b.page_errors().await, "staff");

    // ---- Community secretary resolves. A colleague of the community, for the assign picker.
    let admin = app.login_staff("yc-admin").await;
    let (status, v) = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"role": "community_staff", "username": "yc-c1-colleague", "password": "colleague-pass-1",
                   "display_name": "李同事", "org_unit_id": community_id}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{v}");
    let colleague_id = v["id"].as_i64().expect("colleague id");
    b.click("#logout").await;
    b.fill("#username", &community_secretary).await;
    b.fill("#password", crate::helpers::DEMO_PASSWORD).await;
    b.click("#login").await;
    b.resize(375, 667).await;
    b.wait_text(".tab[data-tab='open'] .count", |t| t.trim() == "1")
        .await;
    b.wait(&row).await;
    b.screenshot("staff-queue-phone").await;
    assert_phone_usable(&b, "staff-queue-phone").await;
    b.resize(1366, 768).await;
    b.click(&row).await;
    b.wait_text("#ticket-title", |t| t == title).await;
    for action in ["acknowledge", "resolve"] {
        b.click(&format!(".action[data-action='{action}']")).await;
        let fields: &[(&str, &str)] = if action == "resolve" {
            &[(
                "#action-note",
                "已协调物业更换三单元全部楼道灯，线路已检修。",
            )]
        } else {
            &[]
        };
        submit_action_dialog(&b, fields).await;
        let want = if action == "resolve" {
            "办结"
        } else {
            "已受理"
        };
        b.wait_text("#status-text", |t| t.contains(want)).await;
        if action == "acknowledge" {
            // The assign dialog offers the unit's colleagues by name.
            b.click(".action[data-action='assign']").await;
            b.wait(&format!("#action-assignee option[value='{colleague_id}']"))
                .await;
            assert_eq!(
                b.text(&format!("#action-assignee option[value='{colleague_id}']"))
                    .await,
                "李同事"
            );
            b.click("#action-cancel").await;
            b.wait_js(
                "the action dialog to close",
                "!document.querySelector('dialog#action-dialog[open]')",
            )
            .await;
        }
    }
    assert_no_page_errors(b.page_errors().await, "staff");
    // Notification settings, from the 通知 button: email switched, an address, saved.
    b.click("#nav-notices").await;
    b.wait("#settings-save:not([disabled])").await;
    let email_was = b
        .js("document.getElementById('setting-email').checked")
        .await;
    b.click("label[for='setting-email']").await;
    b.fill("#setting-email-address", "c1@example.com").await;
    b.click("#settings-save").await;
    b.wait_text("#settings-status", |t| t == "已保存").await;
    let token = app.login_staff(&community_secretary).await;
    let (_, settings) = app
        .get("/api/v1/me/notification-settings", Some(&token))
        .await;
    assert_eq!(
        settings["email"],
        json!(email_was.as_bool() != Some(true)),
        "{settings}"
    );
    assert_eq!(settings["email_address"], "c1@example.com", "{settings}");
    assert_no_page_errors(b.page_errors().await, "staff");

    // ---- The resident confirms with five stars, back on the phone.
    b.resize(375, 667).await;
    b.goto(&format!("{base}/#/t/{ticket_id}")).await;
    b.wait_text("#status-text", |t| t.contains("待您确认"))
        .await;
    b.wait_text("#auto-close", |t| {
        t.starts_with("请在 ") && t.ends_with(" 前确认，逾期将自动完成。")
    })
    .await;
    b.click("#confirm-open").await;
    b.click("button.star[data-value='5']").await;
    b.fill("#rating-comment", "处理很及时，谢谢！").await;
    b.click("#confirm-submit").await;
    b.wait_text("#status-text", |t| t.contains("已完成")).await;
    b.screenshot("resident-confirmed").await;
    assert_phone_usable(&b, "resident-confirmed").await;
    b.click("#nav-list").await;
    b.wait_text(&format!(".request-item[data-id='{ticket_id}']"), |t| {
        t.contains("已完成")
    })
    .await;
    b.screenshot("resident-my-requests").await;
    assert_phone_usable(&b, "resident-my-requests").await;
    // In-app notices told the resident of each step.
    let unread: u32 = b
        .wait_text("#unread-count", |t| {
            t.trim().parse::<u32>().is_ok_and(|n| n > 0)
        })
        .await
        .trim()
        .parse()
        .expect("unread");
    b.click("#nav-notices").await;
    b.wait("#notices-list .notice-item").await;
    let items = b
        .js("document.querySelectorAll('#notices-list .notice-item').length")
        .await;
    assert!(
        items.as_u64().unwrap_or(0) >= u64::from(unread),
        "{items} notices, {unread} unread"
    );
    b.screenshot("resident-notices").await;
    assert_phone_usable(&b, "resident-notices").await;
    // Notification settings at the foot of 消息: SMS and in-app only; in-app switched, saved.
    b.wait("#settings-save:not([disabled])").await;
    assert_eq!(
        b.js("!!document.getElementById('setting-email')").await,
        json!(false)
    );
    let inapp_was = b
        .js("document.getElementById('setting-inapp').checked")
        .await;
    b.click("label[for='setting-inapp']").await;
    b.click("#settings-save").await;
    b.wait_text("#settings-status", |t| t == "已保存").await;
    assert_eq!(
        b.js("document.getElementById('setting-inapp').checked")
            .await,
        json!(inapp_was.as_bool() != Some(true))
    );
    assert_no_page_errors(b.page_errors().await, "resident");

    // ---- The street committee's dashboard.
    b.resize(1366, 768).await;
    b.goto(&format!("{base}/dashboard/")).await;
    b.fill("#username", &street_staff).await;
    b.fill("#password", crate::helpers::DEMO_PASSWORD).await;
    b.click("#login").await;
    b.wait_js("the dashboard's first load", "document.body.dataset.loaded")
        .await;
    assert_modules_preloaded(&b, "dashboard").await;
    let kpi = |k: &str| format!("[data-kpi='{k}'] .value");
    // Two tickets: the one that went the whole way, and the neighbour's, still waiting.
    b.wait_text(&kpi("total"), |t| t.trim() == "2").await;
    assert_eq!(b.text(&kpi("closed")).await.trim(), "1");
    assert_eq!(b.text(&kpi("open_compound")).await.trim(), "1");
    assert_eq!(b.text(&kpi("open_community")).await.trim(), "0");
    assert_eq!(b.text(&kpi("response_rate")).await.trim(), "100.0%");
    assert_eq!(b.text(&kpi("resolution_rate")).await.trim(), "100.0%");
    assert_eq!(b.text(&kpi("satisfaction_rate")).await.trim(), "100.0%");
    // Settled by the community: not a compound-level settlement.
    assert_eq!(
        b.text(&kpi("settled_in_compound_rate")).await.trim(),
        "0.0%"
    );
    assert_eq!(b.text(&kpi("overdue")).await.trim(), "0");
    // Both came from the residents' own app; every other source is listed with zero.
    assert_eq!(
        b.text("#sources-table tr[data-source='app'] td")
            .await
            .trim(),
        "2"
    );
    assert_eq!(
        b.text("#sources-table tr[data-source='own_finding'] th")
            .await
            .trim(),
        "自查发现"
    );
    b.screenshot("dashboard").await;
    // Chart tooltips are built as elements (no HTML strings): the ranking's names the unit and
    // its numbers, the flows' the two levels.
    b.js(r#"(() => {
          for (const id of ['chart-ranking', 'chart-flows']) {
            echarts.getInstanceByDom(document.getElementById(id))
              .dispatchAction({ type: 'showTip', seriesIndex: 0, dataIndex: 0 });
          }
          return true;
        })()"#)
        .await;
    b.wait_text("#chart-ranking", |t| {
        t.contains("1. ") && t.contains("响应率")
    })
    .await;
    b.wait_text("#chart-flows", |t| t.contains("小区→社区 上报：1 次"))
        .await;
    // The same numbers the API gives (the page computes nothing of its own).
    let token = app.login_staff(&street_staff).await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let (_, summary) = app
        .get(
            &format!("/api/v1/stats/summary?from={today}&to={today}"),
            Some(&token),
        )
        .await;
    assert_eq!(summary["tickets"], 2, "{summary}");
    assert_eq!(summary["satisfaction_rate"], 1.0, "{summary}");
    // Every export downloads (the contents are checked by the stats API tests).
    for button in [
        "#export-tickets-csv",
        "#export-tickets-xlsx",
        "#export-ranking-csv",
        "#export-ranking-xlsx",
    ] {
        b.js("(document.getElementById('toast')?.remove(), true)")
            .await;
        b.click(button).await;
        let ext = button.rsplit('-').next().unwrap_or_default();
        b.wait_text("#toast", |t| t.starts_with("已下载") && t.ends_with(ext))
            .await;
    }
    b.click("#wall").await;
    b.wait_js("wall mode", "document.body.classList.contains('wall')")
        .await;
    b.resize(1920, 1080).await;
    b.screenshot("dashboard-wall").await;
    assert_no_page_errors(b.page_errors().await, "dashboard");
}

/// Signs the staff page in as `username` (signing out whoever is in first).
async fn staff_sign_in(b: &Browser, base: &str, username: &str) {
    let signed_in = b
        .js("!!document.querySelector('#app-view:not(.hidden)')")
        .await;
    if signed_in == json!(true) {
        b.click("#logout").await;
    } else {
        b.goto(&format!("{base}/staff/")).await;
    }
    b.fill("#username", username).await;
    b.fill("#password", crate::helpers::DEMO_PASSWORD).await;
    b.click("#login").await;
    b.wait(".queue-view").await;
}

/// Issue #11 in a real browser: a call taken by phone is entered by the compound secretary on
/// a 375×667 phone and acknowledged; the community secretary, watching the compounds from the
/// 督办 tab, urges it; the compound secretary asks for more time; the community secretary grants
/// it from 待我决定; the resident (whose account the phone call made) reads the new deadline.
async fn the_community_presses_and_grants_more_time(app: TestApp) {
    let Some(mut b) = Browser::phone_for(&app).await else {
        return;
    };
    let seed = app.seed();
    let compound_id = seed["compounds"][0]["id"].as_i64().expect("compound id");
    let community_id = seed["compounds"][0]["parent_id"]
        .as_i64()
        .expect("community id");
    let compound_secretary = account(&seed, compound_id).to_string();
    let community_secretary = account(&seed, community_id).to_string();
    let category = seed["categories"][0]["id"]
        .as_i64()
        .expect("category")
        .to_string();
    let base = app.base.clone();
    let phone = "13800000009";
    let title = "2栋地下车库积水<script>window.__xss=1</script>";

    // ---- The compound secretary enters a phone call, on a phone.
    staff_sign_in(&b, &base, &compound_secretary).await;
    b.click("#nav-intake").await;
    b.wait("#intake-form").await;
    // The sources a secretary enters, in the words of GET /meta/labels.
    assert_eq!(
        b.js("[...document.querySelectorAll('#intake-source option')].map(o => o.value)")
            .await,
        json!(["phone", "desk", "visit", "hotline", "own_finding"])
    );
    b.select_value("#intake-source", "hotline").await;
    b.wait_js(
        "the reference field for a hotline call",
        "!document.getElementById('intake-ref-field').classList.contains('hidden')",
    )
    .await;
    b.select_value("#intake-source", "own_finding").await;
    b.wait_js(
        "no resident fields for an own finding",
        "document.getElementById('intake-phone-field').classList.contains('hidden')",
    )
    .await;
    b.select_value("#intake-source", "phone").await;
    b.fill("#intake-phone", phone).await;
    b.fill("#intake-name", "王大爷").await;
    b.select_value("#intake-category", &category).await;
    b.fill("#intake-title", title).await;
    b.fill(
        "#intake-description",
        "王大爷来电：连续下雨后车库积水没过脚踝，排水泵好像坏了。",
    )
    .await;
    assert_eq!(
        b.js("document.getElementById('intake-compound').value")
            .await,
        json!(compound_id.to_string()),
        "the secretary's only compound is chosen already"
    );
    b.js("(window.scrollTo(0, 0), true)").await;
    b.screenshot("staff-intake-phone").await;
    assert_phone_usable(&b, "staff-intake-phone").await;
    b.click("#intake-submit").await;
    b.wait_js("the new ticket", "location.hash.startsWith('#/t/')")
        .await;
    let hash = b.js("location.hash").await;
    let ticket_id: i64 = hash
        .as_str()
        .and_then(|h| h.strip_prefix("#/t/"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("ticket id in {hash}"));
    b.wait_text("#ticket-title", |t| t == title).await;
    b.wait_text(".facts", |t| t.contains("电话代录")).await;
    b.click(".action[data-action='acknowledge']").await;
    submit_action_dialog(&b, &[]).await;
    b.wait_text("#status-text", |t| t.contains("已受理")).await;
    assert_eq!(b.js("window.__xss === undefined").await, json!(true));
    assert_no_page_errors(b.page_errors().await, "staff");

    // ---- The community secretary urges it from 督办, on a phone as well.
    staff_sign_in(&b, &base, &community_secretary).await;
    b.click(".tab[data-tab='supervision']").await;
    let row = format!(".ticket-row[data-id='{ticket_id}']");
    b.wait_text(&row, |t| t.contains("2栋地下车库积水")).await;
    b.wait_text(".subtab[data-sub='all'] .count", |t| t.trim() == "1")
        .await;
    b.wait_text(".subtab[data-sub='overdue'] .count", |t| t.trim() == "0")
        .await;
    b.wait(&format!("{row} .row-action[data-action='take_over']"))
        .await;
    b.screenshot("staff-supervision-phone").await;
    assert_phone_usable(&b, "staff-supervision-phone").await;
    b.click(&format!("{row} .row-action[data-action='urge']"))
        .await;
    submit_action_dialog(
        &b,
        &[("#action-note", "居民反映强烈，请今天内先抽水，明天修泵。")],
    )
    .await;
    // Urged: once an hour per level, so the button goes; the row counts the urge.
    b.wait_text(&row, |t| t.contains("已催办 1 次")).await;
    b.wait_js(
        "the urge button to go",
        &format!("!document.querySelector(\"{row} .row-action[data-action='urge']\")"),
    )
    .await;
    assert_no_page_errors(b.page_errors().await, "staff");

    // ---- The compound secretary asks for more time (desktop).
    b.resize(1366, 768).await;
    staff_sign_in(&b, &base, &compound_secretary).await;
    b.goto(&format!("{base}/staff/#/t/{ticket_id}")).await;
    b.wait_text("#timeline", |t| t.contains("催办")).await;
    let token = app.login_staff(&compound_secretary).await;
    let (_, ticket) = app
        .get(&format!("/api/v1/tickets/{ticket_id}"), Some(&token))
        .await;
    let due: chrono::DateTime<chrono::Utc> = ticket["resolve_due_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("resolve_due_at in {ticket}"));
    // Two days more, to the minute (what a datetime-local input holds).
    let asked = {
        use chrono::{DurationRound, TimeDelta};
        (due + TimeDelta::days(2))
            .duration_trunc(TimeDelta::minutes(1))
            .expect("whole minute")
    };
    b.click(".action[data-action='request_extension']").await;
    b.wait("dialog#action-dialog[open] #action-due").await;
    // The browser's own zone, whatever the machine's: the input holds local time.
    b.js(&format!(
        r#"(() => {{
          const d = new Date('{}');
          const two = (n) => String(n).padStart(2, '0');
          const el = document.getElementById('action-due');
          el.value = `${{d.getFullYear()}}-${{two(d.getMonth() + 1)}}-${{two(d.getDate())}}T${{two(d.getHours())}}:${{two(d.getMinutes())}}`;
          el.dispatchEvent(new Event('input', {{ bubbles: true }}));
          return true;
        }})()"#,
        asked.to_rfc3339()
    ))
    .await;
    submit_action_dialog(
        &b,
        &[("#action-note", "排水泵需厂家上门更换，配件两天后到。")],
    )
    .await;
    b.wait_text("#pending-extension", |t| t.contains("延期申请待批准"))
        .await;
    b.js("(document.getElementById('pending-extension').scrollIntoView({block: 'center'}), true)")
        .await;
    b.screenshot("staff-extension-request").await;
    assert_no_page_errors(b.page_errors().await, "staff");

    // ---- The community secretary grants it from 待我决定.
    staff_sign_in(&b, &base, &community_secretary).await;
    b.wait_text(".tab[data-tab='decisions'] .count", |t| t.trim() == "1")
        .await;
    b.click(".tab[data-tab='decisions']").await;
    b.wait_text(&format!("{row} .decision"), |t| t.contains("延至"))
        .await;
    b.screenshot("staff-decisions").await;
    b.click(&format!(
        "{row} .row-action[data-action='approve_extension']"
    ))
    .await;
    b.wait("#action-extension-due").await;
    submit_action_dialog(&b, &[]).await;
    b.wait_text(".tab[data-tab='decisions'] .count", |t| t.trim() == "0")
        .await;
    // Signing out in the browser ends the secretary's sessions: ask as the community.
    let token = app.login_staff(&community_secretary).await;
    let (_, ticket) = app
        .get(&format!("/api/v1/tickets/{ticket_id}"), Some(&token))
        .await;
    assert_eq!(ticket["extensions_granted"], 1, "{ticket}");
    let granted: chrono::DateTime<chrono::Utc> = ticket["resolve_due_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("resolve_due_at in {ticket}"));
    assert_eq!(granted, asked, "{ticket}");
    assert_no_page_errors(b.page_errors().await, "staff");

    // ---- The resident, on a phone: who entered the call, and the new deadline.
    b.resize(375, 667).await;
    b.goto(&format!("{base}/")).await;
    b.fill("#phone", phone).await;
    b.click("#send-code").await;
    let login_code = sms_code(&app, phone, None).await;
    b.fill("#code", &login_code).await;
    b.click("#login").await;
    b.wait(&format!(".request-item[data-id='{ticket_id}']"))
        .await;
    b.goto(&format!("{base}/#/t/{ticket_id}")).await;
    b.wait_text("#source-note", |t| t.contains("由小区党支部代为登记"))
        .await;
    let beijing = asked
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y/%m/%d %H:%M")
        .to_string();
    b.wait_text("#extension-note", |t| {
        t.contains("办理期限已延至") && t.contains(&beijing)
    })
    .await;
    b.wait_text("#timeline", |t| {
        t.contains(&format!("办理期限已延至 {beijing}"))
    })
    .await;
    b.screenshot("resident-extension").await;
    assert_phone_usable(&b, "resident-extension").await;

    // ---- The resident closes the account from the page: a fresh code, then the name and the
    // phone are gone from the ticket.
    app.advance(chrono::Duration::minutes(2));
    b.click("#nav-notices").await;
    b.wait("#export-data").await;
    b.js("(document.getElementById('erase-account').scrollIntoView({block: 'center'}), true)")
        .await;
    b.screenshot("resident-privacy").await;
    assert_phone_usable(&b, "resident-privacy").await;
    b.click("#erase-account").await;
    b.click("#erase-send-code").await;
    let fresh = sms_code(&app, phone, Some(&login_code)).await;
    b.fill("#erase-code", &fresh).await;
    b.click("#erase-confirm").await;
    b.wait("#send-code").await;
    assert_no_page_errors(b.page_errors().await, "resident");
    let street = app.login_staff("yc-street").await;
    let (_, t) = app
        .get(&format!("/api/v1/tickets/{ticket_id}"), Some(&street))
        .await;
    assert!(t["resident"]["phone_masked"].is_null(), "{t}");
    assert!(!t.to_string().contains(phone), "{t}");
}

/// Issue #12 in a real browser: a resident confirms with five stars minutes after the
/// resolution (a quick five-star rating, always called back) and reads how the request was
/// closed; a street staff member works the callback queue (回访), reaches the resident and records
/// 不满意, and calls another resident three times in vain (无法联系); the ticket reopens in the
/// compound's queue and the compound secretary sees it; the
/// dashboard's ledger (责任账本) counts the reopening for that compound and opens the ticket
/// behind the number; the monthly report (月报) renders.
async fn the_street_calls_back_and_the_ticket_reopens(app: TestApp) {
    let Some(mut b) = Browser::phone_for(&app).await else {
        return;
    };
    let seed = app.seed();
    let compound_id = seed["compounds"][0]["id"].as_i64().expect("compound id");
    let community_id = seed["compounds"][0]["parent_id"]
        .as_i64()
        .expect("community id");
    let compound_secretary = account(&seed, compound_id).to_string();
    let street_staff = account(&seed, seed["street"]["id"].as_i64().expect("street")).to_string();
    let base = app.base.clone();
    let phone = "13800000001";
    let title = "1栋电梯异响<b>停运</b>";
    let (_, labels) = app.get("/api/v1/meta/labels", None).await;
    let word = |set: &str, key: &str| -> String {
        labels[set][key]
            .as_str()
            .unwrap_or_else(|| panic!("label {set}.{key} in {labels}"))
            .to_string()
    };

    // ---- A call, answered and resolved by the compound (through the API).
    let resident = app.login_resident(phone).await;
    let (s, t) = app
        .post(
            "/api/v1/tickets",
            Some(&resident),
            json!({"compound_id": compound_id, "category_id": seed["categories"][0]["id"],
                   "title": title, "description": "电梯运行时有很响的摩擦声，老人不敢坐。"}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{t}");
    let ticket_id = t["id"].as_i64().expect("ticket id");
    let reference = t["reference"].as_str().expect("reference").to_string();
    let secretary = app.login_staff(&compound_secretary).await;
    for (action, body) in [
        ("acknowledge", json!({})),
        (
            "resolve",
            json!({"note": "已请维保单位上门检修，更换了导轨滑块。"}),
        ),
    ] {
        let (s, v) = app
            .post(
                &format!("/api/v1/tickets/{ticket_id}/{action}"),
                Some(&secretary),
                body,
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::OK, "{action}: {v}");
    }

    // ---- More of the month, so that the ledger and the report have something to show: a
    // neighbour's call settled and rated four stars, one withdrawn, one called up to the community
    // and settled there with five quick stars.
    let neighbour = app.login_resident("13800000002").await;
    let community = app.login_staff(account(&seed, community_id)).await;
    let compounds: Vec<i64> = (0..3)
        .map(|i| seed["compounds"][i]["id"].as_i64().expect("compound"))
        .collect();
    let mut more = Vec::new();
    for (i, (compound, title)) in [
        (compounds[1], "5号楼垃圾桶满溢"),
        (compounds[2], "楼下夜间施工噪音"),
        (compounds[0], "小区北门路面塌陷"),
    ]
    .into_iter()
    .enumerate()
    {
        let (s, t) = app
            .post(
                "/api/v1/tickets",
                Some(&neighbour),
                json!({"compound_id": compound, "category_id": seed["categories"][i + 1]["id"],
                       "title": title, "description": "请尽快处理。"}),
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::CREATED, "{t}");
        more.push(t["id"].as_i64().expect("id"));
    }
    let p2 = app.login_staff(account(&seed, compounds[1])).await;
    let steps: Vec<(&str, i64, &str, Value)> = vec![
        (p2.as_str(), more[0], "acknowledge", json!({})),
        (p2.as_str(), more[0], "resolve", json!({"note": "已清运。"})),
        (neighbour.as_str(), more[0], "confirm", json!({"rating": 4})),
        (
            neighbour.as_str(),
            more[1],
            "withdraw",
            json!({"note": "已自行协商解决"}),
        ),
        (secretary.as_str(), more[2], "acknowledge", json!({})),
        (
            secretary.as_str(),
            more[2],
            "escalate",
            json!({"reason": "needs_resources", "note": "需社区协调市政维修。"}),
        ),
        (community.as_str(), more[2], "acknowledge", json!({})),
        (
            community.as_str(),
            more[2],
            "resolve",
            json!({"note": "市政已回填修复。"}),
        ),
        (neighbour.as_str(), more[2], "confirm", json!({"rating": 5})),
    ];
    for (token, id, action, body) in steps {
        let (s, v) = app
            .post(&format!("/api/v1/tickets/{id}/{action}"), Some(token), body)
            .await;
        assert_eq!(s, reqwest::StatusCode::OK, "{action} {id}: {v}");
    }

    // ---- The resident confirms with five stars on the phone, right after the resolution.
    let old_code = app.sms.last_code(phone);
    b.goto(&format!("{base}/")).await;
    b.fill("#phone", phone).await;
    b.click("#send-code").await;
    let code = sms_code(&app, phone, old_code.as_deref()).await;
    b.fill("#code", &code).await;
    b.click("#login").await;
    b.wait(&format!(".request-item[data-id='{ticket_id}']"))
        .await;
    b.goto(&format!("{base}/#/t/{ticket_id}")).await;
    b.click("#confirm-open").await;
    b.click("button.star[data-value='5']").await;
    b.click("#confirm-submit").await;
    b.wait_text("#status-text", |t| t.contains("已完成")).await;
    // How it was closed, in plain words.
    let by_resident = word("closed_by", "resident");
    b.wait_text("#closed-by", |t| t.contains(&by_resident))
        .await;
    assert_phone_usable(&b, "resident-closed").await;
    assert_no_page_errors(b.page_errors().await, "resident");

    // ---- The street works its callback queue, on a desktop.
    let street = app.login_staff(&street_staff).await;
    let (s, queue) = app.get("/api/v1/callbacks", Some(&street)).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{queue}");
    let item = queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["ticket_id"] == ticket_id)
        .unwrap_or_else(|| panic!("the quick five stars are called back: {queue}"))
        .clone();
    assert_eq!(item["flag"], "quick_five_star", "{item}");
    let cb_id = item["id"].as_i64().expect("callback id");
    b.resize(1366, 768).await;
    staff_sign_in(&b, &base, &street_staff).await;
    b.click("#nav-callbacks").await;
    let card = format!(".cb-item[data-id='{cb_id}']");
    b.wait_text(&card, |t| t.contains("1栋电梯异响")).await;
    let pending = queue["counts"]["pending"].to_string();
    b.wait_text(".tab[data-cbtab='pending'] .count", |t| t.trim() == pending)
        .await;
    let quick = word("callback_flag", "quick_five_star");
    b.wait_text(&format!("{card} .cb-flag"), |t| t == quick)
        .await;
    b.wait_text(&format!("{card} .cb-phone"), |t| t.contains(phone))
        .await;
    assert_eq!(
        b.js(&format!(
            "document.querySelector(\"{card} .cb-phone\").getAttribute('href')"
        ))
        .await,
        json!(format!("tel:{phone}"))
    );
    b.click(&format!("{card} summary.cb-record-open")).await;
    b.click(&format!("{card} .cb-reached[data-reached='yes']"))
        .await;
    b.select_value(&format!("#cb-verdict-{cb_id}"), "unsatisfied")
        .await;
    // A rating asks whether the resident was pressed into it.
    assert_eq!(item["asks_pressed"], true, "{item}");
    b.select_value(&format!("#cb-pressed-{cb_id}"), "no").await;
    b.fill(
        &format!("#cb-note-{cb_id}"),
        "居民说电梯还是有异响，只是不好意思给差评。",
    )
    .await;
    b.js("(window.scrollTo(0, 0), true)").await;
    b.screenshot("staff-callbacks").await;
    b.click(&format!("{card} .cb-submit")).await;
    b.wait_text("#toast", |t| {
        t.contains("重新办理") && t.contains(&reference)
    })
    .await;
    assert_no_page_errors(b.page_errors().await, "staff");

    // ---- The other quick five stars: nobody answers, three times; then it is unreachable.
    let other = queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["ticket_id"] == more[2])
        .unwrap_or_else(|| panic!("the community's quick five stars are called back: {queue}"))
        ["id"]
        .as_i64()
        .expect("callback id");
    let card2 = format!(".cb-item[data-id='{other}']");
    for attempt in 1..=3 {
        b.js(&format!(
            "(document.querySelector(\"{card2} details.cb-record\").open = true, true)"
        ))
        .await;
        b.click(&format!("{card2} .cb-reached[data-reached='no']"))
            .await;
        b.click(&format!("{card2} .cb-submit")).await;
        if attempt < 3 {
            b.wait_text(&format!("{card2} .cb-attempts"), |t| {
                t.contains(&format!("已拨打 {attempt} 次"))
            })
            .await;
        }
    }
    let unreachable = word("callback_state", "unreachable");
    b.wait_text("#toast", |t| t.contains(&unreachable)).await;
    b.wait_text(".tab[data-cbtab='unreachable'] .count", |t| t.trim() == "1")
        .await;
    b.click(".tab[data-cbtab='unreachable']").await;
    b.wait_text(&format!("{card2} .cb-outcome"), |t| {
        t.contains(&unreachable)
    })
    .await;
    // The first one is done: the verdict, and that it reopened the ticket.
    b.click(".tab[data-cbtab='done']").await;
    let unsatisfied = word("callback_verdict", "unsatisfied");
    b.wait_text(&format!("{card} .cb-verdict"), |t| t == unsatisfied)
        .await;
    b.wait(&format!("{card} .cb-reopened")).await;
    // The queue works on a phone too.
    b.resize(375, 667).await;
    b.click(".tab[data-cbtab='all']").await;
    b.wait(&card2).await;
    assert_phone_usable(&b, "staff-callbacks-phone").await;
    b.resize(1366, 768).await;
    assert_no_page_errors(b.page_errors().await, "staff");

    // ---- The ticket is open again at the compound, and its secretary sees it.
    let (_, t) = app
        .get(&format!("/api/v1/tickets/{ticket_id}"), Some(&street))
        .await;
    assert_eq!(t["status"], "open", "{t}");
    assert_eq!(t["level"], "compound", "{t}");
    staff_sign_in(&b, &base, &compound_secretary).await;
    let row = format!(".ticket-row[data-id='{ticket_id}']");
    b.wait_text(&row, |t| t.contains("1栋电梯异响")).await;
    b.click(&row).await;
    let reopen = word("event_kind", "callback_reopen");
    b.wait_text("#timeline", |t| t.contains(&reopen)).await;
    assert_no_page_errors(b.page_errors().await, "staff");

    // ---- The dashboard's ledger counts the reopening for the compound.
    b.click("#logout").await;
    b.goto(&format!("{base}/dashboard/")).await;
    b.fill("#username", &street_staff).await;
    b.fill("#password", crate::helpers::DEMO_PASSWORD).await;
    b.click("#login").await;
    b.wait("body[data-ledger]").await;
    let cell = format!(
        "#ledger-table tr[data-unit-id='{compound_id}'] button.cell-link[data-column='reopenings']"
    );
    b.wait_text(&cell, |t| t.trim() == "1").await;
    b.wait_text("[data-kpi='callback_satisfaction_rate'] .value", |t| {
        t == "0.0%"
    })
    .await;
    b.click(&cell).await;
    let link = format!("#ledger-tickets a.lt-link[data-id='{ticket_id}']");
    b.wait_text(&link, |t| t.contains(&reference)).await;
    assert_eq!(
        b.js(&format!(
            "document.querySelector(\"{link}\").getAttribute('href')"
        ))
        .await,
        json!(format!("/staff/#/t/{ticket_id}"))
    );
    b.click("#ledger-dialog-close").await;
    // Sorting by a heading puts the compound with the reopening on top.
    b.click("#ledger-table button.sort[data-sort='reopenings']")
        .await;
    b.wait_js(
        "the ledger sorted by reopenings",
        &format!(
            "document.querySelector('#ledger-table tbody tr').dataset.unitId === '{compound_id}'"
        ),
    )
    .await;
    // The ledger's exports download, by compound and by community.
    for unit in ["compound", "community"] {
        b.click(&format!("[data-lunit='{unit}']")).await;
        b.wait_text("#ledger-title", |t| t.ends_with(&word("org_kind", unit)))
            .await;
        for button in ["#export-ledger-csv", "#export-ledger-xlsx"] {
            b.js("(document.getElementById('toast')?.remove(), true)")
                .await;
            b.click(button).await;
            let ext = button.rsplit('-').next().unwrap_or_default();
            b.wait_text("#toast", |t| t.starts_with("已下载") && t.ends_with(ext))
                .await;
        }
    }
    b.click("[data-lunit='compound']").await;
    b.wait_js(
        "the ledger by compound, sorted by reopenings",
        &format!(
            "document.querySelector('#ledger-table tbody tr').dataset.unitId === '{compound_id}'"
        ),
    )
    .await;
    // The ledger's 27 columns on a wide screen, from the left.
    b.resize(1600, 900).await;
    b.js("(document.getElementById('ledger-table-wrap').scrollLeft = 0, document.getElementById('ledger').scrollIntoView(), true)")
        .await;
    b.screenshot("dashboard-ledger").await;
    b.resize(1366, 768).await;
    assert_no_page_errors(b.page_errors().await, "dashboard");

    // ---- The monthly report: last month by default, then this month, printable.
    let href = b
        .js("document.getElementById('monthly-report').getAttribute('href')")
        .await;
    let href = href.as_str().expect("月报 link").to_string();
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let this_month = today.format("%Y-%m").to_string();
    let last_month = {
        use chrono::Datelike;
        let first = today.date_naive().with_day(1).expect("first of the month");
        (first - chrono::Days::new(1)).format("%Y-%m").to_string()
    };
    b.goto(&format!("{base}{href}")).await;
    b.wait_js(
        "last month's report",
        &format!("document.body.dataset.ready === '{last_month}'"),
    )
    .await;
    b.goto(&format!("{base}{href}?month={this_month}")).await;
    b.wait_js(
        "this month's report",
        &format!("document.body.dataset.ready === '{this_month}'"),
    )
    .await;
    b.wait_text("#report-title", |t| t.contains("云城街道"))
        .await;
    b.wait_text(".t-reopened", |t| t.contains(&reference)).await;
    b.wait_text(".t-closed-by", |t| t.contains(&by_resident))
        .await;
    assert_eq!(
        b.js("[...document.querySelectorAll('.chart svg')].length >= 5")
            .await,
        json!(true),
        "the charts are drawn as SVG (they print sharp)"
    );
    b.js("(document.getElementById('toast')?.remove(), true)")
        .await;
    b.click("#download-xlsx").await;
    b.wait_text("#toast", |t| {
        t.starts_with("已下载") && t.ends_with(".xlsx")
    })
    .await;
    // Printable: an A4 page rule, and on paper the controls are gone.
    assert_eq!(
        b.js("[...document.styleSheets].some((s) => [...s.cssRules].some((r) => r instanceof CSSPageRule && /size: a4/i.test(r.cssText)))")
            .await,
        json!(true)
    );
    b.cdp("Emulation.setEmulatedMedia", json!({"media": "print"}))
        .await;
    assert_eq!(
        b.js("getComputedStyle(document.querySelector('.report-bar')).display")
            .await,
        json!("none")
    );
    b.cdp("Emulation.setEmulatedMedia", json!({"media": ""}))
        .await;
    b.resize(900, 1270).await;
    b.js("(window.dispatchEvent(new Event('resize')), true)")
        .await;
    b.screenshot("monthly-report").await;
    assert_no_page_errors(b.page_errors().await, "monthly report");
}

/// With a tile server configured (`map.tile_url`), the staff ticket page shows the coordinates
/// and a 3×3-tile map around them at zoom 16, tiles from that server only. Requests to it are
/// blocked over CDP, so the test never leaves the machine.
#[actix_web::test]
async fn the_staff_ticket_page_draws_a_map_from_the_configured_tiles() {
    let Some(app) =
        TestApp::spawn_with(crate::helpers::Backend::Sqlite, crate::location::with_map).await
    else {
        return;
    };
    let Some(b) = Browser::start(375, 667).await else {
        return;
    };
    let seed = app.seed();
    let compound_id = seed["compounds"][0]["id"].as_i64().expect("compound");
    let resident = app.login_resident("13800000001").await;
    let (lat, lon) = (23.129163_f64, 113.264435_f64);
    let (s, t) = app
        .post(
            "/api/v1/tickets",
            Some(&resident),
            json!({"compound_id": compound_id, "category_id": seed["categories"][0]["id"],
                   "title": "井盖缺失", "description": "路口井盖不见了",
                   "location": {"latitude": lat, "longitude": lon, "accuracy_m": 40}}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{t}");
    b.cdp("Network.enable", json!({})).await;
    b.cdp(
        "Network.setBlockedURLs",
        json!({"urls": ["*tiles.example.cn*"]}),
    )
    .await;
    staff_sign_in(&b, &app.base, account(&seed, compound_id)).await;
    b.goto(&format!("{}/staff/#/t/{}", app.base, t["id"])).await;
    b.wait_text("#ticket-coords", |t| t.contains("±40 米"))
        .await;
    b.wait("#ticket-map .map-marker").await;
    // The tile under the point, by the Web Mercator formula.
    let n = 2f64.powi(16);
    let x = ((lon + 180.0) / 360.0 * n).floor();
    let r = lat.to_radians();
    let y = ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor();
    let srcs = b
        .js("[...document.querySelectorAll('#ticket-map img.map-tile')].map((i) => i.getAttribute('src'))")
        .await;
    let srcs: Vec<String> = serde_json::from_value(srcs).expect("srcs");
    assert_eq!(srcs.len(), 9, "{srcs:?}");
    assert!(
        srcs.iter()
            .all(|s| s.starts_with("https://tiles.example.cn/vec/16/")
                && s.ends_with("?tk=0123456789abcdef")),
        "{srcs:?}"
    );
    assert_eq!(
        srcs[4],
        format!("https://tiles.example.cn/vec/16/{x}/{y}.png?tk=0123456789abcdef")
    );
    assert_eq!(b.text("#ticket-map figcaption").await, "© 示例地图");
    assert_phone_usable(&b, "staff-ticket-map").await;
}

/// The newest code the SMS gateway stand-in received for `phone` (other than `not`), waiting up
/// to 10 s for it.
async fn sms_code(app: &TestApp, phone: &str, not: Option<&str>) -> String {
    for _ in 0..100 {
        if let Some(c) = app.sms.last_code(phone).filter(|c| Some(c.as_str()) != not) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the SMS gateway stand-in received no new code for {phone}");
}

/// Fills the action dialog's fields and submits it; waits until it has closed.
async fn submit_action_dialog(b: &Browser, fields: &[(&str, &str)]) {
    b.wait("dialog#action-dialog[open]").await;
    for (css, text) in fields {
        b.fill(css, text).await;
    }
    b.click("#action-submit").await;
    b.wait_js(
        "the action dialog to close",
        "!document.querySelector('dialog#action-dialog[open]')",
    )
    .await;
}

/// A Chrome DevTools Protocol command through chromedriver's `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}
