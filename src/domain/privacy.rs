//! Personal data (个人信息保护法): what the audit log records, the pseudonym an erased resident
//! gets, and when retention erases a resident.

use chrono::{DateTime, Months, Utc};

crate::text_enum! {
    /// What an audit log row records.
    pub enum AuditAction {
        RevealPhone = ("reveal_phone", "查看居民完整电话"),
        StatsExport = ("stats_export", "导出统计或工单"),
        PersonalDataExport = ("personal_data_export", "下载本人个人信息"),
        Erasure = ("erasure", "注销并删除本人个人信息"),
        RetentionErasure = ("retention_erasure", "保存期满自动删除个人信息"),
        /// An admin issued an Open311 key to a partner system (migration 000012).
        ApiKeyIssue = ("api_key_issue", "签发对接系统密钥"),
        ApiKeyRevoke = ("api_key_revoke", "吊销对接系统密钥"),
    }
}

/// The name an erased resident is shown under: stable and unique (by id), naming nobody.
pub fn pseudonym(user_id: i64) -> String {
    format!("已注销居民{user_id:06}")
}

/// A resident whose last ticket was finished before this instant is erased by retention.
/// `years` of 0 switches retention off.
pub fn retention_cutoff(now: DateTime<Utc>, years: u32) -> Option<DateTime<Utc>> {
    if years == 0 {
        return None;
    }
    now.checked_sub_months(Months::new(years.saturating_mul(12)))
}

/// The strings that identify a person in free text: the phone, its masked form, the name and
/// the email. A name of one character would match too much text, so it is not replaced.
pub fn identifiers(
    phone: Option<&str>,
    masked_phone: Option<String>,
    name: &str,
    email: Option<&str>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    out.extend(phone.filter(|p| !p.is_empty()).map(str::to_string));
    out.extend(masked_phone.filter(|p| !p.is_empty()));
    if name.trim().chars().count() >= 2 {
        out.push(name.trim().to_string());
    }
    out.extend(email.filter(|e| !e.is_empty()).map(str::to_string));
    // Longest first: a name inside an email address is replaced as part of the address.
    out.sort_by_key(|s| std::cmp::Reverse(s.chars().count()));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retention_counts_calendar_years_and_zero_is_off() {
        let now = Utc
            .with_ymd_and_hms(2029, 3, 1, 0, 0, 0)
            .single()
            .expect("t");
        assert_eq!(
            retention_cutoff(now, 3),
            Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single()
        );
        assert_eq!(retention_cutoff(now, 0), None);
    }

    #[test]
    fn identifiers_skip_one_letter_names_and_go_longest_first() {
        let ids = identifiers(
            Some("13800000001"),
            Some("138****0001".into()),
            "王",
            Some("wang@example.cn"),
        );
        assert_eq!(ids, vec!["wang@example.cn", "13800000001", "138****0001"]);
        assert!(pseudonym(42).contains("000042"));
    }
}
