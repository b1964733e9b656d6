//! Issue #15 point 1: Open311 GeoReport v2 intake for partner systems (docs/open311.md). Keys
//! issued and revoked by an admin; services and their definitions; a request posted with a key
//! becomes a ticket in the compound's queue, and its status read back through Open311 follows
//! the ticket to closed; refusals in the specification's error list, in JSON and XML.

use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, sms_to, TestApp};
use crate::tickets::act;

both_backends!(
    admins_issue_list_and_revoke_keys,
    services_and_their_definitions_list_our_categories_and_compounds,
    a_posted_request_reaches_the_compound_and_follows_the_ticket_to_closed,
    bad_keys_and_missing_fields_are_refused_in_the_spec_format,
    requests_are_filtered_as_the_specification_says,
    each_key_is_held_to_its_rate,
);

/// A partner's resident (not one of the demo residents).
const PHONE: &str = "13800000009";

/// Issues a key as the demo admin; returns the whole answer.
async fn issue(
    app: &TestApp,
    admin: &str,
    partner: &str,
    source: &str,
    rate: Option<i64>,
) -> Value {
    let mut body = json!({"partner": partner, "source": source});
    if let Some(r) = rate {
        body["rate_limit_per_minute"] = json!(r);
    }
    let (s, v) = app.post("/api/v1/admin/api-keys", Some(admin), body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

struct Raw {
    status: StatusCode,
    content_type: String,
    retry_after: Option<String>,
    text: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

async fn raw(resp: reqwest::Response) -> Raw {
    let header = |name: header::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
    let retry_after = header(header::RETRY_AFTER);
    Raw {
        status: resp.status(),
        content_type,
        retry_after,
        text: resp.text().await.expect("body"),
    }
}

async fn get(app: &TestApp, path: &str) -> Raw {
    raw(app
        .client
        .get(format!("{}/open311/v2/{path}", app.base))
        .send()
        .await
        .expect("request"))
    .await
}

/// `POST requests.{format}`, form-encoded as the specification has it.
async fn post_form(app: &TestApp, format: &str, form: &[(&str, String)]) -> Raw {
    raw(app
        .client
        .post(format!("{}/open311/v2/requests.{format}", app.base))
        .form(form)
        .send()
        .await
        .expect("request"))
    .await
}

/// The specification's example request, adapted: a location, our compound attribute, the
/// resident's phone and name.
fn example(key: &str, service_code: &str, compound: i64) -> Vec<(&'static str, String)> {
    vec![
        ("api_key", key.to_string()),
        ("service_code", service_code.to_string()),
        ("lat", "23.1291".into()),
        ("long", "113.2644".into()),
        ("address_string", "方园小区东门垃圾站".into()),
        ("attribute[compound_id]", compound.to_string()),
        ("email", "resident@example.cn".into()),
        ("first_name", "建国".into()),
        ("last_name", "王".into()),
        ("phone", PHONE.into()),
        ("description", "垃圾站三天没有清运，气味很大".into()),
        (
            "media_url",
            "https://partner.example.cn/photos/1.jpg".into(),
        ),
    ]
}

/// The `(code, description)` of each error of a JSON error list.
fn errors(v: &Value) -> Vec<(i64, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an error list: {v}"))
        .iter()
        .map(|e| {
            (
                e["code"].as_i64().expect("code"),
                e["description"].as_str().expect("description").to_string(),
            )
        })
        .collect()
}

struct Setup {
    seed: Value,
    admin: String,
    key: String,
    code: String,
    compound: i64,
    compound_name: String,
}

async fn setup(app: &TestApp, source: &str) -> Setup {
    let seed = app.seed();
    let admin = app.login_staff("yc-admin").await;
    let key = issue(app, &admin, "12345 市民服务热线", source, None).await["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    Setup {
        code: seed["categories"][0]["code"].as_str().expect("code").into(),
        compound: seed["compounds"][0]["id"].as_i64().expect("compound"),
        compound_name: seed["compounds"][0]["name"].as_str().expect("name").into(),
        seed,
        admin,
        key,
    }
}

async fn posted_id(app: &TestApp, s: &Setup) -> String {
    let r = post_form(app, "json", &example(&s.key, &s.code, s.compound)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()[0]["service_request_id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// One request read back through Open311: never the resident's phone or name.
async fn read(app: &TestApp, key: &str, id: &str) -> Value {
    let r = get(app, &format!("requests/{id}.json?api_key={key}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        !r.text.contains(PHONE) && !r.text.contains("王建国"),
        "{}",
        r.text
    );
    let v = r.json();
    assert_eq!(v.as_array().expect("list").len(), 1, "{v}");
    v[0].clone()
}

async fn admins_issue_list_and_revoke_keys(app: TestApp) {
    let s = setup(&app, "hotline").await;
    // Staff may not issue keys.
    let secretary = app.login_staff("yc-c1-p1").await;
    let (st, v) = app
        .post(
            "/api/v1/admin/api-keys",
            Some(&secretary),
            json!({"partner": "x", "source": "app"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // Only hotline and app are partner sources; the rate has bounds.
    for body in [
        json!({"partner": "小程序", "source": "desk"}),
        json!({"partner": "小程序", "source": "app", "rate_limit_per_minute": 0}),
        json!({"partner": " ", "source": "app"}),
    ] {
        let (st, v) = app
            .post("/api/v1/admin/api-keys", Some(&s.admin), body)
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        error_code(&v);
    }

    let issued = issue(&app, &s.admin, "居民小程序", "app", Some(120)).await;
    let key = issued["api_key"].as_str().expect("key");
    assert!(key.starts_with("hy311_"), "{key}");
    // 32 random bytes in URL-safe base64 after the prefix.
    assert_eq!(key.len(), "hy311_".len() + 43, "{key}");
    assert_eq!(issued["partner"], "居民小程序");
    assert_eq!(issued["source"], "app");
    assert_eq!(issued["rate_limit_per_minute"], 120);
    assert_eq!(issued["key_prefix"], &key[..12]);
    assert_eq!(issued["revoked_at"], Value::Null);
    let id = issued["id"].as_i64().expect("id");

    // The list never shows a key again.
    let (st, list) = app.get("/api/v1/admin/api-keys", Some(&s.admin)).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let list = list.as_array().expect("list").clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], id, "newest first");
    assert_eq!(list[1]["partner"], "12345 市民服务热线");
    assert_eq!(list[1]["rate_limit_per_minute"], 60, "the default rate");
    assert!(list.iter().all(|k| k.get("api_key").is_none()), "{list:?}");
    assert!(!serde_json::to_string(&list).expect("json").contains(key));
    let (st, _) = app.get("/api/v1/admin/api-keys", Some(&secretary)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // The key works until it is revoked, then answers 403.
    let r = get(&app, &format!("requests.json?api_key={key}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json(), json!([]));
    let (st, v) = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/api-keys/{id}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["revoked_at"].is_string(), "{v}");
    let r = get(&app, &format!("requests.json?api_key={key}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(errors(&r.json())[0].0, 403);
    let r = post_form(&app, "json", &example(key, &s.code, s.compound)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // The other key is untouched.
    let r = get(&app, &format!("requests.json?api_key={}", s.key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (st, v) = app
        .request(
            reqwest::Method::DELETE,
            "/api/v1/admin/api-keys/999999",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");

    // Both are in the audit log, with the prefix and never the key.
    let (st, log) = app.get("/api/v1/admin/audit-log", Some(&s.admin)).await;
    assert_eq!(st, StatusCode::OK, "{log}");
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec!["api_key_revoke", "api_key_issue", "api_key_issue"]
    );
    let newest = &log["items"][0];
    assert_eq!(
        newest["detail"],
        format!("居民小程序（{}…）", &key[..12]),
        "{newest}"
    );
    assert!(!log.to_string().contains(key));

    // The admin endpoints are in the OpenAPI document; Open311 is documented in docs/open311.md.
    let (_, doc) = app.get("/api/openapi.json", None).await;
    let paths = &doc["paths"];
    assert!(paths["/api/v1/admin/api-keys"]["post"].is_object());
    assert!(paths["/api/v1/admin/api-keys"]["get"].is_object());
    assert!(paths["/api/v1/admin/api-keys/{id}"]["delete"].is_object());
}

async fn services_and_their_definitions_list_our_categories_and_compounds(app: TestApp) {
    let s = setup(&app, "hotline").await;
    let r = get(&app, "services.json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    let services = r.json();
    let categories = s.seed["categories"].as_array().expect("categories");
    assert_eq!(services.as_array().expect("list").len(), categories.len());
    let first = &services[0];
    assert_eq!(first["service_code"], categories[0]["code"]);
    assert_eq!(first["service_name"], categories[0]["name"]);
    assert_eq!(first["metadata"], true);
    assert_eq!(first["type"], "realtime");
    assert_eq!(first["keywords"], categories[0]["name"]);
    assert_eq!(first["group"], "民生诉求");
    assert!(first["description"].as_str().is_some_and(|d| !d.is_empty()));

    let r = get(&app, "services.xml").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.content_type.starts_with("text/xml"), "{}", r.content_type);
    assert!(
        r.text
            .starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<services><service>"),
        "{}",
        r.text
    );
    assert!(r
        .text
        .contains(&format!("<service_code>{}</service_code>", s.code)));
    assert!(r.text.contains("<metadata>true</metadata><service_code>"));
    assert!(r.text.contains("<type>realtime</type>"));
    assert_eq!(r.text.matches("<service>").count(), categories.len());

    let r = get(&app, &format!("services/{}.json", s.code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let def = r.json();
    assert_eq!(def["service_code"], s.code.as_str());
    let attrs = def["attributes"].as_array().expect("attributes");
    let compound = attrs
        .iter()
        .find(|a| a["code"] == "compound_id")
        .expect("compound_id");
    assert_eq!(compound["required"], true);
    assert_eq!(compound["variable"], true);
    assert_eq!(compound["datatype"], "singlevaluelist");
    assert_eq!(compound["order"], 1);
    let compounds = s.seed["compounds"].as_array().expect("compounds");
    let values = compound["values"].as_array().expect("values");
    assert_eq!(values.len(), compounds.len());
    assert_eq!(values[0]["key"], s.compound.to_string());
    assert_eq!(
        values[0]["name"],
        format!(
            "{}·{}",
            s.seed["communities"][0]["name"].as_str().expect("name"),
            s.compound_name
        )
    );
    let building = attrs
        .iter()
        .find(|a| a["code"] == "building_id")
        .expect("building");
    assert_eq!(building["required"], false);
    assert_eq!(
        building["values"].as_array().expect("values").len(),
        s.seed["buildings"].as_array().expect("buildings").len()
    );
    let urgency = attrs
        .iter()
        .find(|a| a["code"] == "urgency")
        .expect("urgency");
    assert_eq!(urgency["values"][1]["key"], "urgent");
    assert_eq!(urgency["values"][1]["name"], "紧急");
    for code in ["title", "external_ref"] {
        let a = attrs.iter().find(|a| a["code"] == code).expect(code);
        assert_eq!(a["datatype"], "string");
        assert_eq!(a["required"], false);
    }

    let r = get(&app, &format!("services/{}.xml", s.code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text
            .contains("<service_definition><attributes><attribute>"),
        "{}",
        r.text
    );
    assert!(r.text.contains("<code>compound_id</code>"));
    assert!(r
        .text
        .contains(&format!("<values><value><key>{}</key><name>", s.compound)));
    assert!(r.text.contains(&format!(
        "<service_code>{}</service_code></service_definition>",
        s.code
    )));

    // An unknown service: 404 in the specification's format, in the format asked for.
    let r = get(&app, "services/no_such_service.json").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(errors(&r.json())[0].0, 404);
    let r = get(&app, "services/no_such_service.xml").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.text
            .contains("<errors><error><code>404</code><description>"),
        "{}",
        r.text
    );
    // Neither JSON nor XML: no such document.
    let r = get(&app, "services.html").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(errors(&r.json())[0].0, 404);

    // Discovery: where the endpoint is and what it speaks.
    let r = get(&app, "discovery.json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let d = r.json();
    let endpoint = &d["endpoints"][0];
    // The published address (server.public_url), not the one the request came to.
    assert_eq!(
        endpoint["url"],
        format!("{}/open311/v2", app.settings.server.public_url)
    );
    assert_eq!(endpoint["type"], "production");
    assert_eq!(endpoint["formats"], json!(["application/json", "text/xml"]));
    let r = get(&app, "discovery.xml").await;
    assert!(
        r.text.contains(
            "<formats><format>application/json</format><format>text/xml</format></formats>"
        ),
        "{}",
        r.text
    );
}

async fn a_posted_request_reaches_the_compound_and_follows_the_ticket_to_closed(app: TestApp) {
    let s = setup(&app, "hotline").await;
    let mut form = example(&s.key, &s.code, s.compound);
    form.push(("attribute[external_ref]", "12345-20261130-0007".into()));
    form.push(("attribute[urgency]", "urgent".into()));
    let r = post_form(&app, "json", &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let answer = r.json();
    let answer = answer.as_array().expect("a list of one");
    assert_eq!(answer.len(), 1);
    let id = answer[0]["service_request_id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(id.starts_with("YC-"), "{id}");
    assert_eq!(answer[0]["account_id"], Value::Null);
    let notice = answer[0]["service_notice"].as_str().expect("notice");
    assert!(
        notice.contains(&id) && notice.contains(&s.compound_name),
        "{notice}"
    );

    // In the compound's queue, entered for that resident with the key's source.
    let secretary = app.login_staff("yc-c1-p1").await;
    let (st, queue) = app.get("/api/v1/tickets", Some(&secretary)).await;
    assert_eq!(st, StatusCode::OK, "{queue}");
    let ticket = queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["reference"] == id.as_str())
        .unwrap_or_else(|| panic!("not in the queue: {queue}"))
        .clone();
    assert_eq!(ticket["source"], "hotline");
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["urgency"], "urgent");
    assert_eq!(ticket["external_ref"], "12345-20261130-0007");
    assert_eq!(ticket["title"], "垃圾站三天没有清运，气味很大");
    assert_eq!(ticket["location"]["text"], "方园小区东门垃圾站");
    assert_eq!(ticket["location"]["latitude"], 23.1291);
    assert_eq!(ticket["resident"]["display_name"], "王建国");
    assert_eq!(ticket["resident"]["phone_masked"], "138****0009");
    let ticket_id = ticket["id"].as_i64().expect("ticket id");
    // No staff member entered it: the timeline names the system.
    let (st, events) = app
        .get(
            &format!("/api/v1/tickets/{ticket_id}/events"),
            Some(&secretary),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{events}");
    assert_eq!(events[0]["action"], "create");
    assert_eq!(events[0]["actor"]["role"], "system");
    assert_eq!(ticket["entered_by"], Value::Null);
    // A hotline call: the resident gets the SMS with the link, as when staff enter a call.
    crate::notifications::dispatch(&app).await;
    let sms = sms_to(&app, PHONE);
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert!(sms[0].contains("已为您登记诉求"), "{sms:?}");

    let v = read(&app, &s.key, &id).await;
    assert_eq!(v["service_request_id"], id.as_str());
    assert_eq!(v["status"], "open");
    assert_eq!(v["status_notes"], format!("待{}受理", "小区党支部"));
    assert_eq!(v["service_code"], s.code.as_str());
    assert_eq!(v["service_name"], s.seed["categories"][0]["name"]);
    assert_eq!(v["description"], "垃圾站三天没有清运，气味很大");
    assert_eq!(v["agency_responsible"], s.compound_name.as_str());
    assert_eq!(v["address"], "方园小区东门垃圾站");
    assert_eq!(v["lat"], 23.1291);
    assert_eq!(v["long"], 113.2644);
    assert_eq!(v["media_url"], "https://partner.example.cn/photos/1.jpg");
    let requested = v["requested_datetime"].as_str().expect("requested");
    assert!(requested.ends_with("+08:00"), "{requested}");
    let expected = v["expected_datetime"]
        .as_str()
        .expect("the answer deadline");
    assert!(
        chrono::DateTime::parse_from_rfc3339(expected).expect("w3c")
            > chrono::DateTime::parse_from_rfc3339(requested).expect("w3c")
    );

    // The compound answers; an internal note never shows; the status follows.
    let (st, t) = act(
        &app,
        &secretary,
        ticket_id,
        "acknowledge",
        json!({"note": "已联系环卫站"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let (st, t) = act(
        &app,
        &secretary,
        ticket_id,
        "comment",
        json!({"note": "内部：环卫站负责人电话 13912345678", "internal": true}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let v = read(&app, &s.key, &id).await;
    assert_eq!(v["status"], "open");
    assert_eq!(
        v["status_notes"],
        format!("{}已受理，处理中：已联系环卫站", "小区党支部")
    );
    assert!(!v.to_string().contains("13912345678"), "{v}");

    let (st, t) = act(
        &app,
        &secretary,
        ticket_id,
        "resolve",
        json!({"note": "已清运并消毒"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let v = read(&app, &s.key, &id).await;
    assert_eq!(v["status"], "open", "resolved waits for the resident");
    assert_eq!(v["status_notes"], "已办结，待您确认：已清运并消毒");
    assert_eq!(v["expected_datetime"], Value::Null);

    // The resident of the phone confirms: closed.
    let resident = app.login_resident(PHONE).await;
    let (st, t) = act(&app, &resident, ticket_id, "confirm", json!({"rating": 5})).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let v = read(&app, &s.key, &id).await;
    assert_eq!(v["status"], "closed");
    // A closed request's updated_datetime is when it was closed.
    let instant = |s: &Value| {
        chrono::DateTime::parse_from_rfc3339(s.as_str().expect("time"))
            .expect("w3c")
            .timestamp()
    };
    assert_eq!(
        instant(&v["updated_datetime"]),
        instant(&t["ticket"]["closed_at"])
    );
    assert!(
        v["status_notes"]
            .as_str()
            .expect("notes")
            .starts_with("已完成"),
        "{v}"
    );
    let r = get(
        &app,
        &format!("requests.json?api_key={}&status=closed", s.key),
    )
    .await;
    assert_eq!(r.json()[0]["service_request_id"], id.as_str(), "{}", r.text);
    let r = get(
        &app,
        &format!("requests.json?api_key={}&status=open", s.key),
    )
    .await;
    assert_eq!(r.json(), json!([]));

    // The token of a request created at once is its id.
    let r = get(&app, &format!("tokens/{id}.json?api_key={}", s.key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json(), json!([{"service_request_id": id, "token": id}]));
    let r = get(&app, &format!("tokens/{id}.xml?api_key={}", s.key)).await;
    assert_eq!(
        r.text,
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<service_requests><request><service_request_id>{id}</service_request_id><token>{id}</token></request></service_requests>")
    );

    // The XML variant of one request.
    let r = get(&app, &format!("requests/{id}.xml?api_key={}", s.key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("<service_requests><request>"), "{}", r.text);
    assert!(r.text.contains("<status>closed</status>"));
    assert!(r
        .text
        .contains(&format!("<service_request_id>{id}</service_request_id>")));
    assert!(r.text.contains(&format!(
        "<agency_responsible>{}</agency_responsible>",
        s.compound_name
    )));
    assert!(r.text.contains("<zipcode></zipcode>"));

    // A resident hidden from the compound: the compound sees 匿名居民, Open311 shows no one.
    let mut form = example(&s.key, &s.code, s.compound);
    form.push(("attribute[hide_identity]", "true".into()));
    let r = post_form(&app, "json", &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let hidden = r.json()[0]["service_request_id"]
        .as_str()
        .expect("id")
        .to_string();
    let (_, queue) = app
        .get(&format!("/api/v1/tickets?q={hidden}"), Some(&secretary))
        .await;
    assert_eq!(queue["items"][0]["reference"], hidden.as_str(), "{queue}");
    assert_eq!(queue["items"][0]["identity_hidden"], true);
    assert_eq!(queue["items"][0]["resident"]["display_name"], "匿名居民");
    assert_eq!(queue["items"][0]["resident"]["phone_masked"], Value::Null);
    let v = read(&app, &s.key, &hidden).await;
    assert_eq!(v["status"], "open");

    // Another partner does not see it.
    let other = issue(&app, &s.admin, "别的平台", "app", None).await["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    let r = get(&app, &format!("requests/{id}.json?api_key={other}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = get(&app, &format!("requests.json?api_key={other}")).await;
    assert_eq!(r.json(), json!([]));
}

async fn bad_keys_and_missing_fields_are_refused_in_the_spec_format(app: TestApp) {
    let s = setup(&app, "app").await;
    // No key, an unknown key, a key of the wrong shape: 403, and nothing stored.
    for key in ["", "hy311_not-a-key-we-issued", "'; DROP TABLE tickets; --"] {
        let r = post_form(&app, "json", &example(key, &s.code, s.compound)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        let errs = errors(&r.json());
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, 403);
        assert!(errs[0].1.contains("api_key"), "{errs:?}");
    }
    let r = post_form(&app, "xml", &example("nope", &s.code, s.compound)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.content_type.starts_with("text/xml"), "{}", r.content_type);
    assert!(
        r.text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<errors><error><code>403</code><description>"),
        "{}",
        r.text
    );
    let r = get(&app, "requests.json").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    // Nothing but the key: every missing field is named, one error each.
    let r = post_form(&app, "json", &[("api_key", s.key.clone())]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let errs = errors(&r.json());
    assert!(errs.iter().all(|(c, _)| *c == 400), "{errs:?}");
    for field in [
        "service_code",
        "lat",
        "attribute[compound_id]",
        "description",
        "phone",
    ] {
        assert!(
            errs.iter().any(|(_, d)| d.contains(field)),
            "{field} not named: {errs:?}"
        );
    }
    assert_eq!(errs.len(), 5, "{errs:?}");
    let r = post_form(&app, "xml", &[("api_key", s.key.clone())]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.text.matches("<error><code>400</code>").count(),
        5,
        "{}",
        r.text
    );

    // Malformed values: each named; an unknown compound or building is a 400 too.
    // A service code we do not know: 404 alone, as the specification has it.
    let r = post_form(
        &app,
        "json",
        &example(&s.key, "no_such_service", s.compound),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let errs = errors(&r.json());
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, 404);
    assert!(errs[0].1.contains("service_code"), "{errs:?}");
    let mut bad = example(&s.key, &s.code, s.compound);
    bad.retain(|(k, _)| *k != "lat" && *k != "phone" && *k != "media_url");
    bad.push(("lat", "north".into()));
    bad.push(("phone", "12345".into()));
    bad.push(("media_url", "javascript:alert(1)".into()));
    bad.push(("attribute[urgency]", "yesterday".into()));
    bad.push(("attribute[hide_identity]", "maybe".into()));
    let r = post_form(&app, "json", &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let errs = errors(&r.json());
    assert_eq!(errs.len(), 5, "{errs:?}");
    assert!(
        !r.text.contains("javascript"),
        "client input echoed: {}",
        r.text
    );
    for (field, value) in [
        ("attribute[compound_id]", "999999".to_string()),
        ("attribute[building_id]", "999999".to_string()),
        ("attribute[compound_id]", "abc".to_string()),
        ("lat", "95".to_string()),
    ] {
        let mut form = example(&s.key, &s.code, s.compound);
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let r = post_form(&app, "json", &form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.text);
        assert_eq!(errors(&r.json())[0].0, 400);
    }
    // A description past 2,000 characters, or with a control character.
    for description in ["很".repeat(2001), "a\u{0}b".to_string()] {
        let mut form = example(&s.key, &s.code, s.compound);
        form.retain(|(k, _)| *k != "description");
        form.push(("description", description));
        let r = post_form(&app, "json", &form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    // JSON is not what the specification posts.
    let r = raw(app
        .client
        .post(format!("{}/open311/v2/requests.json", app.base))
        .json(&json!({"api_key": s.key}))
        .send()
        .await
        .expect("request"))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(errors(&r.json())[0].0, 400);

    // Bad filters.
    for q in [
        "status=pending",
        "start_date=yesterday",
        "start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z",
        // Outside what the databases store comfortably: refused, never a 500.
        "start_date=%2B262142-12-31",
        "end_date=0001-01-01T00:00:00Z",
    ] {
        let r = get(&app, &format!("requests.json?api_key={}&{q}", s.key)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text);
        assert_eq!(errors(&r.json())[0].0, 400);
    }
    // An unknown request or route under /open311/v2: 404 in the same format.
    let r = get(
        &app,
        &format!("requests/YC-19990101-0001.json?api_key={}", s.key),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(errors(&r.json())[0].0, 404);
    let r = get(&app, "nothing/here/at/all.xml").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.text.contains("<errors><error><code>404</code>"),
        "{}",
        r.text
    );

    // None of it made a ticket.
    let (_, all) = app.get("/api/v1/tickets", Some(&s.admin)).await;
    assert_eq!(all["total"], 0, "{all}");
}

async fn requests_are_filtered_as_the_specification_says(app: TestApp) {
    let s = setup(&app, "hotline").await;
    let first = posted_id(&app, &s).await;
    let other_code = s.seed["categories"][1]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let mut form = example(&s.key, &other_code, s.compound);
    form.retain(|(k, _)| !matches!(*k, "lat" | "long"));
    let r = post_form(&app, "json", &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let second = r.json()[0]["service_request_id"]
        .as_str()
        .expect("id")
        .to_string();
    // Only an address id is a location too.
    let mut form = example(&s.key, &s.code, s.compound);
    form.retain(|(k, _)| !matches!(*k, "lat" | "long" | "address_string"));
    form.push(("address_id", "YC-ADDR-0042".into()));
    let r = post_form(&app, "json", &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let third = r.json()[0]["service_request_id"]
        .as_str()
        .expect("id")
        .to_string();

    let ids = |r: &Raw| -> Vec<String> {
        r.json()
            .as_array()
            .expect("list")
            .iter()
            .map(|v| v["service_request_id"].as_str().expect("id").to_string())
            .collect()
    };
    let key = &s.key;
    // Default: the last 90 days, newest first.
    let r = get(&app, &format!("requests.json?api_key={key}")).await;
    assert_eq!(ids(&r), vec![third.clone(), second.clone(), first.clone()]);
    let all = r.json();
    assert_eq!(all[0]["address_id"], "YC-ADDR-0042");
    assert_eq!(all[0]["lat"], Value::Null);
    assert_eq!(all[1]["service_code"], other_code.as_str());
    // A comma list of ids overrides every other filter.
    let r = get(
        &app,
        &format!("requests.json?api_key={key}&service_request_id={first},{third}&status=closed"),
    )
    .await;
    assert_eq!(ids(&r), vec![third.clone(), first.clone()]);
    let r = get(
        &app,
        &format!("requests.json?api_key={key}&service_code={other_code}"),
    )
    .await;
    assert_eq!(ids(&r), vec![second.clone()]);
    // Codes and statuses may repeat or be comma-delimited.
    let r = get(
        &app,
        &format!(
            "requests.json?api_key={key}&service_code={},{other_code}&status=open&status=closed",
            s.code
        ),
    )
    .await;
    assert_eq!(ids(&r), vec![third.clone(), second.clone(), first.clone()]);
    let r = get(
        &app,
        &format!("requests.json?api_key={key}&service_code=no_such&service_code={other_code}"),
    )
    .await;
    assert_eq!(ids(&r), vec![second.clone()]);
    let r = get(
        &app,
        &format!("requests.json?api_key={key}&service_code=no_such"),
    )
    .await;
    assert_eq!(ids(&r), Vec::<String>::new());
    // Dates in W3C format, in any offset.
    let now = app.now();
    let earlier =
        (now - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let later = (now + chrono::Duration::hours(1))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let q = |s: &str| s.replace('+', "%2B");
    let r = get(
        &app,
        &format!(
            "requests.json?api_key={key}&start_date={}&end_date={}",
            q(&earlier),
            q(&later)
        ),
    )
    .await;
    assert_eq!(ids(&r).len(), 3, "{}", r.text);
    let r = get(
        &app,
        &format!("requests.json?api_key={key}&start_date={}", q(&later)),
    )
    .await;
    assert_eq!(ids(&r), Vec::<String>::new());
    // After 91 days they fall out of the default window.
    app.advance(chrono::Duration::days(91));
    let r = get(&app, &format!("requests.json?api_key={key}&status=open")).await;
    assert_eq!(ids(&r), Vec::<String>::new());
    let r = get(
        &app,
        &format!("requests.json?api_key={key}&start_date={}", q(&earlier)),
    )
    .await;
    assert_eq!(ids(&r).len(), 3, "{}", r.text);

    // XML list: one <request> per request.
    let r = get(
        &app,
        &format!("requests.xml?api_key={key}&service_request_id={first},{second}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("<service_requests><request>"), "{}", r.text);
    assert_eq!(r.text.matches("<request>").count(), 2);
    assert!(r.text.contains(&format!(
        "<service_request_id>{second}</service_request_id>"
    )));
}

async fn each_key_is_held_to_its_rate(app: TestApp) {
    let s = setup(&app, "hotline").await;
    let slow = issue(&app, &s.admin, "慢速平台", "hotline", Some(2)).await["api_key"]
        .as_str()
        .expect("key")
        .to_string();
    for _ in 0..2 {
        let r = get(&app, &format!("requests.json?api_key={slow}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = post_form(&app, "json", &example(&slow, &s.code, s.compound)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let wait: i64 = r
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=31).contains(&wait), "{wait}");
    let errs = errors(&r.json());
    assert_eq!(errs[0].0, 429);
    assert!(errs[0].1.contains("每分钟 2 次"), "{errs:?}");
    let r = get(&app, &format!("requests.xml?api_key={slow}")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.text.contains("<errors><error><code>429</code>"),
        "{}",
        r.text
    );
    // Another key is not held back.
    let r = get(&app, &format!("requests.json?api_key={}", s.key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Public documents need no key and are not counted.
    let r = get(&app, "services.json").await;
    assert_eq!(r.status, StatusCode::OK);
}
