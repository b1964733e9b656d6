//! The exports: the ranking and the caller's tickets as CSV (and the rows and column titles the
//! XLSX files share), with zh-CN labels and Asia/Shanghai times.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::prelude::*;

use super::ranking::{RankRow, RankUnit};
use super::scope::{require_stats_role, unit_names};
use crate::auth::AuthUser;
use crate::db::schema::{categories, tickets};
use crate::db::{DbConn, MultiBackend};
use crate::domain::ticket::{Level, Status, Urgency};
use crate::error::AppResult;
use crate::service::tickets::no_deadline;
use crate::service::tickets::query::{Sort, TicketFilter};

/// Most rows `GET /stats/tickets.csv` writes.
pub const MAX_EXPORT_ROWS: usize = 50_000;

/// UTF-8 byte order mark: Excel then reads the file as UTF-8, Chinese included.
pub const BOM: &str = "\u{FEFF}";

/// One CSV field (RFC 4180 quoting). Text starting like a formula gets a leading `'` so a
/// spreadsheet shows it instead of evaluating it.
pub fn csv_field(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

pub fn csv_line(out: &mut String, fields: &[String]) {
    let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// A CSV file's start: the byte order mark and the title line.
fn csv_start(titles: &[&str]) -> String {
    let mut out = String::from(BOM);
    let titles: Vec<String> = titles.iter().map(|s| s.to_string()).collect();
    csv_line(&mut out, &titles);
    out
}

fn opt_rate(r: Option<f64>) -> String {
    r.map(|v| format!("{v:.4}")).unwrap_or_default()
}

fn opt_minutes(s: Option<i64>) -> String {
    s.map(|v| format!("{:.1}", v as f64 / 60.0))
        .unwrap_or_default()
}

/// The ranking export's column titles (CSV and XLSX).
pub fn ranking_headers(unit: RankUnit) -> [&'static str; 11] {
    [
        "名次",
        "单位ID",
        match unit {
            RankUnit::Community => "社区",
            RankUnit::Compound => "小区",
        },
        "工单数",
        "响应率",
        "解决率",
        "满意率",
        "小事不出小区率",
        "当前超时",
        "首次响应中位时长(分钟)",
        "办结中位时长(分钟)",
    ]
}

pub fn ranking_csv(rows: &[RankRow], unit: RankUnit) -> String {
    let mut out = csv_start(&ranking_headers(unit));
    for r in rows {
        csv_line(
            &mut out,
            &[
                r.rank.to_string(),
                r.unit_id.to_string(),
                r.name.clone(),
                r.tickets.to_string(),
                opt_rate(r.response_rate),
                opt_rate(r.resolution_rate),
                opt_rate(r.satisfaction_rate),
                opt_rate(r.settled_in_compound_rate),
                r.overdue.to_string(),
                opt_minutes(r.median_first_answer_seconds),
                opt_minutes(r.median_settle_seconds),
            ],
        );
    }
    out
}

/// The columns of a ticket the export writes.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tickets)]
pub struct ExportTicket {
    pub id: i64,
    pub reference: String,
    pub status: String,
    pub level: String,
    pub community_id: i64,
    pub compound_id: i64,
    pub category_id: i64,
    pub urgency: String,
    pub title: String,
    pub escalation_count: i32,
    pub rating: Option<i32>,
    pub closed_by: Option<String>,
    pub overdue: bool,
    pub due_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
}

/// The same scope and filters as `GET /tickets`, in the export's order; paging fields are ignored.
fn export_query<'a>(
    user: &AuthUser,
    f: &TicketFilter,
    now: DateTime<Utc>,
) -> AppResult<tickets::BoxedQuery<'a, MultiBackend>> {
    let q = crate::service::tickets::query::filtered(user, f, now)?;
    Ok(match f.sort.unwrap_or(Sort::Created) {
        Sort::Due => q.order((tickets::due_at.asc(), tickets::id.asc())),
        Sort::Created => q.order((tickets::created_at.desc(), tickets::id.desc())),
        Sort::Updated => q.order((tickets::updated_at.desc(), tickets::id.desc())),
    })
}

/// The export's column titles (CSV and XLSX).
pub const TICKET_EXPORT_HEADERS: [&str; 16] = [
    "编号",
    "标题",
    "状态",
    "当前层级",
    "社区",
    "小区",
    "类别",
    "紧急程度",
    "创建时间",
    "首次响应时间",
    "办结时间",
    "关闭时间",
    "关闭方式",
    "评分",
    "上报次数",
    "超时",
];

/// One exported ticket, as the spreadsheet shows it: labels in Chinese, times in Asia/Shanghai.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub reference: String,
    pub title: String,
    pub status: &'static str,
    pub level: &'static str,
    pub community: String,
    pub compound: String,
    pub category: String,
    pub urgency: &'static str,
    /// Local (Asia/Shanghai) wall-clock times.
    pub created_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub closed_by: &'static str,
    pub rating: Option<i32>,
    pub escalation_count: i32,
    pub overdue: bool,
}

fn to_local(t: NaiveDateTime) -> NaiveDateTime {
    t.and_utc().with_timezone(&Shanghai).naive_local()
}

/// The caller's tickets with the filters of `GET /tickets`, at most [`MAX_EXPORT_ROWS`], and
/// whether the list was cut there.
pub fn export_tickets(
    conn: &mut DbConn,
    user: &AuthUser,
    f: &TicketFilter,
    now: DateTime<Utc>,
) -> AppResult<(Vec<ExportRow>, bool)> {
    require_stats_role(user)?;
    let mut rows: Vec<ExportTicket> = export_query(user, f, now)?
        .limit(MAX_EXPORT_ROWS as i64 + 1)
        .select(ExportTicket::as_select())
        .load(conn)?;
    let truncated = rows.len() > MAX_EXPORT_ROWS;
    rows.truncate(MAX_EXPORT_ROWS);
    let names = unit_names(
        conn,
        rows.iter()
            .flat_map(|r| [r.community_id, r.compound_id])
            .collect(),
    )?;
    let cats: HashMap<i64, String> = categories::table
        .select((categories::id, categories::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let now_ts = now.naive_utc();
    let out = rows
        .into_iter()
        .map(|r| {
            let active = Status::parse(&r.status).is_some_and(Status::is_active);
            let overdue = active && (r.overdue || (r.due_at != no_deadline() && r.due_at < now_ts));
            ExportRow {
                status: Status::parse(&r.status)
                    .map(Status::label_zh)
                    .unwrap_or_default(),
                level: Level::parse(&r.level)
                    .map(|l| l.label_zh())
                    .unwrap_or_default(),
                community: names.get(&r.community_id).cloned().unwrap_or_default(),
                compound: names.get(&r.compound_id).cloned().unwrap_or_default(),
                category: cats.get(&r.category_id).cloned().unwrap_or_default(),
                urgency: Urgency::parse(&r.urgency)
                    .unwrap_or(Urgency::Normal)
                    .label_zh(),
                created_at: to_local(r.created_at),
                acknowledged_at: r.acknowledged_at.map(to_local),
                resolved_at: r.resolved_at.map(to_local),
                closed_at: r.closed_at.map(to_local),
                closed_by: r
                    .closed_by
                    .as_deref()
                    .and_then(crate::domain::ticket::ClosedBy::parse)
                    .map_or("", |c| c.label_zh()),
                rating: r.rating,
                escalation_count: r.escalation_count,
                overdue,
                reference: r.reference,
                title: r.title,
            }
        })
        .collect();
    Ok((out, truncated))
}

fn csv_time(t: Option<NaiveDateTime>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The export: the CSV text and whether it was cut at [`MAX_EXPORT_ROWS`].
pub fn tickets_csv(
    conn: &mut DbConn,
    user: &AuthUser,
    f: &TicketFilter,
    now: DateTime<Utc>,
) -> AppResult<(String, bool)> {
    let (rows, truncated) = export_tickets(conn, user, f, now)?;
    let mut out = csv_start(&TICKET_EXPORT_HEADERS);
    for r in &rows {
        csv_line(
            &mut out,
            &[
                r.reference.clone(),
                r.title.clone(),
                r.status.to_string(),
                r.level.to_string(),
                r.community.clone(),
                r.compound.clone(),
                r.category.clone(),
                r.urgency.to_string(),
                csv_time(Some(r.created_at)),
                csv_time(r.acknowledged_at),
                csv_time(r.resolved_at),
                csv_time(r.closed_at),
                r.closed_by.to_string(),
                r.rating.map(|v| v.to_string()).unwrap_or_default(),
                r.escalation_count.to_string(),
                if r.overdue { "是" } else { "否" }.to_string(),
            ],
        );
    }
    Ok((out, truncated))
}

/// The ledger export's column titles (CSV and XLSX): the unit, then every ledger column, then
/// the two satisfaction rates and the call-up reasons.
pub fn ledger_headers(unit: RankUnit) -> Vec<&'static str> {
    use crate::domain::ledger::LedgerKind;
    use crate::domain::text_enum::TextEnum;
    let mut h = vec![
        "单位ID",
        match unit {
            RankUnit::Community => "社区",
            RankUnit::Compound => "小区",
        },
        "所属社区",
    ];
    h.extend(LedgerKind::all().iter().map(|k| k.label_zh()));
    h.extend(["居民自评满意率", "回访满意率", "上报原因"]);
    h
}

/// `called_up_reasons` as one cell: `超出本级职权 2；超时未受理，自动上报 1`.
pub fn reasons_text(r: &std::collections::BTreeMap<String, i64>) -> String {
    use crate::domain::ticket::{EscalationReason, SystemReason};
    r.iter()
        .map(|(k, n)| {
            let label = EscalationReason::parse(k)
                .map(|e| e.label_zh())
                .or_else(|| SystemReason::parse(k).map(|s| s.label_zh()))
                .unwrap_or(k.as_str());
            format!("{label} {n}")
        })
        .collect::<Vec<_>>()
        .join("；")
}

/// The ledger as CSV: one line per unit, rates as fractions with 4 decimals.
pub fn ledger_csv(l: &super::ledger::Ledger) -> String {
    use crate::domain::ledger::LedgerKind;
    use crate::domain::text_enum::TextEnum;
    let mut out = csv_start(&ledger_headers(l.unit));
    for r in &l.rows {
        let mut f = vec![
            r.unit_id.to_string(),
            r.unit_name.clone(),
            r.parent_name.clone(),
        ];
        f.extend(LedgerKind::all().iter().map(|k| r.count(*k).to_string()));
        f.push(opt_rate(r.self_rated_satisfaction_rate));
        f.push(opt_rate(r.callback_satisfaction_rate));
        f.push(reasons_text(&r.called_up_reasons));
        csv_line(&mut out, &f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("楼道灯"), "楼道灯");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        let mut s = String::new();
        csv_line(&mut s, &["x".into(), "y\nz".into()]);
        assert_eq!(s, "x,\"y\nz\"\r\n");
    }
}
