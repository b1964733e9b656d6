//! Alibaba Cloud SMS (`SendSms`, API version 2017-05-25), signed with RPC signature V1:
//! HMAC-SHA1 over `GET&%2F&` + the percent-encoded canonicalized query, key = secret + "&".

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;

use super::{SmsError, SmsMessage, SmsSender};
use crate::config::SmsAliyunSettings;

/// RFC 3986 unreserved characters stay; everything else is `%XX` (so space is `%20`, `*` is
/// `%2A` and `~` stays), as the signature documentation requires.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// `k=v&…` over the parameters sorted by name, both sides encoded.
pub fn canonicalized_query(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn string_to_sign(method: &str, params: &BTreeMap<String, String>) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonicalized_query(params))
    )
}

/// Base64 of HMAC-SHA1(secret + "&", string to sign).
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub struct AliyunSms {
    client: reqwest::Client,
    endpoint: String,
    access_key_id: String,
    access_key_secret: SecretString,
    sign_name: String,
    template_code: String,
    login_template_code: String,
    region_id: String,
}

impl AliyunSms {
    pub fn new(s: &SmsAliyunSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(s.timeout_secs))
            .build()?;
        Ok(AliyunSms {
            client,
            endpoint: s.endpoint.clone(),
            access_key_id: s.access_key_id.clone(),
            access_key_secret: s.access_key_secret.clone(),
            sign_name: s.sign_name.clone(),
            template_code: s.template_code.clone(),
            login_template_code: s.login_template_code.clone(),
            region_id: s.region_id.clone(),
        })
    }

    /// The signed query parameters for one message.
    pub fn signed_params(
        &self,
        msg: &SmsMessage,
        nonce: &str,
        timestamp: &str,
    ) -> BTreeMap<String, String> {
        let template = if msg.template == "login_code" && !self.login_template_code.is_empty() {
            &self.login_template_code
        } else {
            &self.template_code
        };
        let mut p = BTreeMap::new();
        for (k, v) in [
            ("AccessKeyId", self.access_key_id.as_str()),
            ("Action", "SendSms"),
            ("Format", "JSON"),
            ("PhoneNumbers", msg.phone.as_str()),
            ("RegionId", self.region_id.as_str()),
            ("SignName", self.sign_name.as_str()),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", template.as_str()),
            ("Timestamp", timestamp),
            ("Version", "2017-05-25"),
        ] {
            p.insert(k.to_string(), v.to_string());
        }
        let mut tp = msg.params.clone();
        if msg.template != "login_code" {
            tp.insert("text".into(), msg.text.clone());
        }
        p.insert(
            "TemplateParam".into(),
            serde_json::to_string(&tp).unwrap_or_else(|_| "{}".into()),
        );
        let sig = sign(
            self.access_key_secret.expose_secret(),
            &string_to_sign("GET", &p),
        );
        p.insert("Signature".into(), sig);
        p
    }
}

#[derive(serde::Deserialize)]
struct AliyunReply {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

/// Codes that say "try again later" (flow control, throttling, the service's own trouble).
fn temporary_code(code: &str) -> bool {
    code.contains("LIMIT_CONTROL")
        || code.contains("Throttling")
        || code.contains("ServiceUnavailable")
        || code == "isp.SYSTEM_ERROR"
}

#[async_trait]
impl SmsSender for AliyunSms {
    async fn send(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        let nonce = uuid::Uuid::new_v4().to_string();
        let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let params = self.signed_params(msg, &nonce, &ts);
        let url = format!(
            "{}?{}",
            self.endpoint.trim_end_matches('?'),
            canonicalized_query(&params)
        );
        let resp = self
            .client
            .get(url)
            .send()
            .await
            // The URL carries the message's parameters (a sign-in code): never in an error.
            .map_err(|e| SmsError::Temporary(format!("aliyun unreachable: {}", e.without_url())))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let reply: Option<AliyunReply> = serde_json::from_str(&text).ok();
        let code = reply
            .as_ref()
            .and_then(|r| r.code.clone())
            .unwrap_or_default();
        if status.is_success() && code == "OK" {
            return Ok(());
        }
        let detail = format!(
            "aliyun answered {status} {code}: {}",
            reply
                .and_then(|r| r.message)
                .unwrap_or_else(|| text.chars().take(200).collect())
        );
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || temporary_code(&code)
        {
            Err(SmsError::Temporary(detail))
        } else {
            Err(SmsError::Permanent(detail))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The worked example of Alibaba Cloud's "签名机制" documentation (ECS DescribeRegions,
    /// AccessKey secret `testsecret`): the string to sign and `CT9X0VtwR86fNWSnsc6v8YGOjuE=`.
    #[test]
    fn published_rpc_signature_example() {
        let p = params(&[
            ("TimeStamp", "2016-02-23T12:46:24Z"),
            ("Format", "XML"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("Version", "2014-05-26"),
            ("SignatureVersion", "1.0"),
        ]);
        let sts = string_to_sign("GET", &p);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML\
             %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             %26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(sign("testsecret", &sts), "CT9X0VtwR86fNWSnsc6v8YGOjuE=");
    }

    /// The SendSms example of the SMS service's signature documentation (AccessKey `testId` /
    /// `testSecret`, sign name 阿里云短信测试专用): `zJDF+Lrzhj/ThnlvIToysFRq6t4=`.
    #[test]
    fn published_send_sms_signature_example() {
        let p = params(&[
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", "{\"customer\":\"test\"}"),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]);
        assert_eq!(
            sign("testSecret", &string_to_sign("GET", &p)),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
    }

    #[test]
    fn encoding_follows_rfc3986() {
        assert_eq!(percent_encode("a b*c~d/é"), "a%20b%2Ac~d%2F%C3%A9");
    }
}
