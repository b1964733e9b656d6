//! WeCom (企业微信) group robot: POST a markdown message to the unit's webhook URL.

use serde::Deserialize;
use serde_json::json;

use super::email::SendError;

#[derive(Deserialize)]
struct Reply {
    errcode: Option<i64>,
    errmsg: Option<String>,
}

/// Sends `markdown` to the robot at `url`.
pub async fn send(client: &reqwest::Client, url: &str, markdown: &str) -> Result<(), SendError> {
    let resp = client
        .post(url)
        .json(&json!({"msgtype": "markdown", "markdown": {"content": markdown}}))
        .send()
        .await
        .map_err(|e| SendError::Temporary(format!("robot unreachable: {e}")))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(SendError::Temporary(format!("robot answered {status}")));
    }
    if !status.is_success() {
        return Err(SendError::Permanent(format!(
            "robot answered {status}: {}",
            text.chars().take(200).collect::<String>()
        )));
    }
    let reply: Reply = serde_json::from_str(&text)
        .map_err(|_| SendError::Temporary("robot answered something that is not JSON".into()))?;
    match reply.errcode.unwrap_or(0) {
        0 => Ok(()),
        // -1 system busy, 45009 too many messages a minute: later.
        code @ (-1 | 45009) => Err(SendError::Temporary(format!(
            "robot errcode {code}: {}",
            reply.errmsg.unwrap_or_default()
        ))),
        code => Err(SendError::Permanent(format!(
            "robot errcode {code}: {}",
            reply.errmsg.unwrap_or_default()
        ))),
    }
}
