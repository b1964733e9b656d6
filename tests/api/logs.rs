//! Logs people can trust, read from the real binary's stderr: a forged line stays escaped on
//! one line, client errors are not warnings, query strings are not logged, and the request id
//! comes from a trusted proxy only.

use std::process::Stdio;

use crate::cli::{free_port, huying, until_ready};
use crate::helpers::{Backend, TestDb};

const FAKE: &str =
    "2026-01-01T00:00:00.000000Z  INFO huying::api::auth: signed in user_id=1 role=admin";

#[test]
fn a_forged_line_stays_escaped_and_client_errors_are_not_warnings() {
    let db = TestDb::create(Backend::Sqlite).expect("sqlite");
    let port = free_port();
    let log = db.dir().join("stderr.log");
    let mut child = huying()
        .env("DATABASE_URL", &db.url)
        .env("HUYING__DATA__DIR", db.dir().join("data"))
        .env("HUYING__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HUYING__SERVER__TRUSTED_PROXIES", "127.0.0.1")
        .env("HUYING__LOG__LEVEL", "debug")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("serve");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let result: Result<(), String> = rt.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        if !until_ready(&base).await {
            return Err("service did not become ready".into());
        }
        let forged = format!("{{\"x\\n{FAKE}\":1}}");
        let r = client
            .post(format!("{base}/api/v1/auth/login"))
            .header("content-type", "application/json")
            .header("x-request-id", "proxy-id-42")
            .body(forged)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != reqwest::StatusCode::UNPROCESSABLE_ENTITY {
            return Err(format!("forged body answered {}", r.status()));
        }
        let echoed = r
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok());
        if echoed != Some("proxy-id-42") {
            return Err(format!("trusted proxy's id not kept: {echoed:?}"));
        }
        client
            .get(format!(
                "{base}/api/v1/tickets?access_token=secret-in-query&q=x"
            ))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        client
            .get(format!(
                "{base}/api/v1/tickets/%0A{}",
                FAKE.replace(' ', "%20")
            ))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    });
    let _ = child.kill();
    let _ = child.wait();
    result.expect("requests");
    let text = std::fs::read_to_string(&log).expect("stderr");
    for line in text.lines() {
        assert!(
            line.starts_with("20") && !line.starts_with(FAKE),
            "a line that is not an event of its own: {line:?}\n{text}"
        );
        assert!(
            !line.contains(" WARN ") || !line.contains("request"),
            "{line}"
        );
    }
    assert!(
        !text.contains("secret-in-query"),
        "query string logged:\n{text}"
    );
    let rejected: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("request rejected"))
        .collect();
    assert!(
        rejected.iter().all(|l| l.contains("DEBUG")),
        "client errors are debug: {rejected:?}"
    );
    assert!(
        rejected
            .iter()
            .any(|l| l.contains("request_id=proxy-id-42") && l.contains("code=\"invalid_json\"")),
        "{text}"
    );
}
