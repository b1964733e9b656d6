//! SMS behind one interface. `log` writes to the log (development); `http` posts JSON to a
//! generic gateway; `aliyun` calls Alibaba Cloud SMS.

pub mod aliyun;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::config::{SmsProviderKind, SmsSettings};
use crate::domain::validate::mask_phone;

/// One message: the rendered text plus the template name and its parameters, for gateways that
/// render templates themselves.
#[derive(Debug, Clone, Serialize)]
pub struct SmsMessage {
    pub phone: String,
    pub text: String,
    pub template: String,
    pub params: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// Worth retrying: network failure, timeout, 5xx, 429.
    #[error("temporary SMS failure: {0}")]
    Temporary(String),
    /// Retrying will not help: the gateway rejected the request.
    #[error("permanent SMS failure: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait SmsSender: Send + Sync {
    async fn send(&self, msg: &SmsMessage) -> Result<(), SmsError>;
}

pub struct LogSms;

#[async_trait]
impl SmsSender for LogSms {
    async fn send(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        // Development only: the full text (which may hold a code) goes to the log, the phone
        // stays masked.
        tracing::info!(phone = %mask_phone(&msg.phone), template = %msg.template, text = %msg.text, "SMS (log provider)");
        Ok(())
    }
}

pub struct HttpSms {
    client: reqwest::Client,
    url: String,
    auth_header: SecretString,
}

impl HttpSms {
    pub fn new(url: String, auth_header: SecretString, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(HttpSms {
            client,
            url,
            auth_header,
        })
    }
}

#[async_trait]
impl SmsSender for HttpSms {
    async fn send(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        let mut req = self.client.post(&self.url).json(msg);
        let auth = self.auth_header.expose_secret();
        if !auth.is_empty() {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| SmsError::Temporary(format!("gateway unreachable: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(SmsError::Temporary(format!(
                "gateway answered {status}: {body}"
            )))
        } else {
            Err(SmsError::Permanent(format!(
                "gateway answered {status}: {body}"
            )))
        }
    }
}

pub fn from_settings(s: &SmsSettings) -> anyhow::Result<Arc<dyn SmsSender>> {
    Ok(match s.provider {
        SmsProviderKind::Log => {
            // Config validation already refused it on a public address unless allowed.
            tracing::warn!(
                "sms.provider = \"log\": every SMS, sign-in codes included, is written to this log; for development only"
            );
            Arc::new(LogSms)
        }
        SmsProviderKind::Http => Arc::new(HttpSms::new(
            s.http.url.clone(),
            s.http.auth_header.clone(),
            Duration::from_secs(s.http.timeout_secs),
        )?),
        SmsProviderKind::Aliyun => Arc::new(aliyun::AliyunSms::new(&s.aliyun)?),
    })
}
