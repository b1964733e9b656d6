//! The zh-CN templates in `config/templates/zh-CN.toml`, compiled in, and the small text rules
//! (placeholders, one SMS segment, email HTML, robot markdown).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::error::{AppError, AppResult};

const ZH_CN: &str = include_str!("../../config/templates/zh-CN.toml");

/// One SMS segment of UCS-2 text (Chinese) holds 70 characters.
pub const SMS_SEGMENT: usize = 70;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub title: String,
    pub body: String,
    pub sms: String,
}

fn all() -> AppResult<&'static BTreeMap<String, Template>> {
    static PARSED: OnceLock<Result<BTreeMap<String, Template>, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| toml::from_str(ZH_CN).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("notification templates: {e}")))
}

pub fn get(kind: &str) -> AppResult<&'static Template> {
    all()?
        .get(kind)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no notification template `{kind}`")))
}

/// Replaces `{name}` by its value; unknown placeholders (such as `{link}`) stay for later.
pub fn render(text: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Fills in the link and, if the SMS is longer than one segment, shortens the ticket title
/// (the text inside the first 「」) until it fits or only four characters are left (then the
/// message takes two segments: reference, deadline and link are never cut).
pub fn finish_sms(text: &str, link: &str) -> String {
    let full = text.replace("{link}", link);
    if full.chars().count() <= SMS_SEGMENT {
        return full;
    }
    let (Some(open), Some(close)) = (full.find('「'), full.find('」')) else {
        return full;
    };
    if close < open {
        return full;
    }
    let title: Vec<char> = full[open + '「'.len_utf8()..close].chars().collect();
    let over = full.chars().count() - SMS_SEGMENT;
    // Keep at least four characters of the title, plus the ellipsis.
    let keep = title.len().saturating_sub(over + 1).max(4);
    if keep >= title.len() {
        return full;
    }
    let short: String = title[..keep].iter().collect::<String>() + "…";
    format!("{}「{}{}", &full[..open], short, &full[close..])
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTML part of an email: the plain text, escaped, and a link button.
pub fn email_html(subject: &str, body: &str, link: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{s}</title></head><body>\
         <h3>{s}</h3><p>{b}</p><p><a href=\"{l}\">查看工单 / Open the ticket</a></p>\
         <p style=\"color:#888\">呼应 · 三级呼叫响应</p></body></html>",
        s = html_escape(subject),
        b = html_escape(body).replace('\n', "<br>"),
        l = html_escape(link)
    )
}

pub fn email_text(body: &str, link: &str) -> String {
    format!("{body}\n\n查看工单：{link}\n\n—— 呼应 · 三级呼叫响应\n")
}

/// WeCom group robot markdown.
pub fn wecom_markdown(title: &str, body: &str, link: &str) -> String {
    format!("### {title}\n> {body}\n\n[查看工单]({link})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_every_kind_exists() {
        for kind in crate::notify::rules::ALL_KINDS {
            let t = get(kind).expect(kind);
            assert!(!t.title.is_empty() && !t.body.is_empty() && !t.sms.is_empty());
            assert!(t.sms.contains('「'), "{kind}: the title must sit in 「」");
        }
    }

    #[test]
    fn long_titles_are_shortened_to_one_segment() {
        let t = "【呼应】YC-20261127-0001「小区东门外的路灯已经坏了整整三个星期晚上出入非常不方便请尽快派人维修」待受理，限27日15:00 {link}";
        let s = finish_sms(t, "https://hy.example.cn/t/1234");
        assert_eq!(s.chars().count(), SMS_SEGMENT, "{s}");
        assert!(s.contains("「小区东门") && s.contains("…」"), "{s}");
        assert!(s.contains("YC-20261127-0001") && s.contains("限27日15:00"));
        assert!(s.ends_with("/t/1234"));
        let short = finish_sms("【呼应】「灯坏了」 {link}", "http://x/t/1");
        assert_eq!(short, "【呼应】「灯坏了」 http://x/t/1");
    }

    #[test]
    fn placeholders_are_replaced_and_html_is_escaped() {
        let mut v = BTreeMap::new();
        v.insert("title", "<b>灯</b>".to_string());
        assert_eq!(render("「{title}」{link}", &v), "「<b>灯</b>」{link}");
        assert!(email_html("s", "<b>", "http://x").contains("&lt;b&gt;"));
    }
}
