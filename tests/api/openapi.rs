//! The served OpenAPI document is whole: every `$ref` resolves, and every operation documents
//! the errors its shape implies: 401 and 503 with the bearer security, 404 with a path
//! parameter, 422 with query parameters, 413, 415 and 422 with a request body, at least one 4xx/5xx unless it
//! cannot fail; every documented error carries the `{code, message}` body (`ErrorBody`).
//! The document does not depend on the backend, so this runs on SQLite only.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};

/// Operations that cannot fail: no input, no sign-in, no database.
const INFALLIBLE: [&str; 3] = [
    "GET /healthz",
    "GET /api/v1/meta/labels",
    "GET /api/v1/meta/map",
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}

/// Where `reference` points inside `doc`, if it is a local reference that resolves.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// What is wrong with one operation's documented errors (empty when nothing is).
fn operation_problems(name: &str, op: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let responses = op["responses"].as_object().cloned().unwrap_or_default();
    let has = |status: &str| responses.contains_key(status);
    let bearer = op["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|req| req.get("bearer").is_some()));
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let in_query = params.iter().any(|p| p["in"] == "query");
    let in_path = name.contains('{') || params.iter().any(|p| p["in"] == "path");
    let mut require = |cond: bool, status: &str, why: &str| {
        if cond && !has(status) {
            problems.push(format!("{name}: {why} but no {status}"));
        }
    };
    require(bearer, "401", "signs in with a bearer token");
    require(bearer, "503", "reads the caller's account through the pool");
    require(in_path, "404", "has a path parameter");
    for status in ["413", "415", "422"] {
        require(
            op.get("requestBody").is_some(),
            status,
            "takes a request body",
        );
    }
    require(in_query, "422", "takes query parameters");
    let errors: Vec<_> = responses
        .iter()
        .filter(|(status, _)| status.starts_with('4') || status.starts_with('5'))
        .collect();
    if errors.is_empty() && !INFALLIBLE.contains(&name) {
        problems.push(format!("{name}: documents no error status"));
    }
    for (status, resp) in errors {
        let schema = &resp["content"]["application/json"]["schema"]["$ref"];
        if schema != "#/components/schemas/ErrorBody" {
            problems.push(format!("{name}: {status} does not carry ErrorBody"));
        }
    }
    problems
}

#[actix_web::test]
async fn every_reference_resolves_and_every_operation_documents_its_errors() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let (status, doc) = app.get("/api/openapi.json", None).await;
    assert_eq!(status, reqwest::StatusCode::OK);

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty(), "the document references no schema at all");
    refs.sort_unstable();
    refs.dedup();
    let mut problems: Vec<String> = refs
        .into_iter()
        .filter(|r| resolve(&doc, r).is_none())
        .map(|r| format!("dangling reference {r}"))
        .collect();

    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 40, "only {} paths documented", paths.len());
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let name = format!("{} {path}", method.to_uppercase());
                problems.extend(operation_problems(&name, op));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
