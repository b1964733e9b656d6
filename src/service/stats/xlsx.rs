//! The exports as Excel workbooks (`/stats/tickets.xlsx`, `/stats/ranking.xlsx`): the same rows
//! and columns as the CSV files, with typed cells: times are real Excel date-times (Asia/Shanghai
//! wall clock, shown `yyyy-mm-dd hh:mm:ss`), rates are numbers shown as percentages, counts and
//! minutes are numbers. Text is always written as text, never as a formula, so the CSV's `'`
//! guard is not needed.

use chrono::{Datelike, NaiveDateTime, Timelike};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::export::{ranking_headers, ExportRow, TICKET_EXPORT_HEADERS};
use super::ranking::{RankRow, RankUnit};
use crate::error::{AppError, AppResult};

/// The content type of an `.xlsx` file.
pub const CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fn internal(e: XlsxError) -> AppError {
    AppError::Internal(anyhow::anyhow!("writing the workbook: {e}"))
}

fn excel_time(t: NaiveDateTime) -> Result<ExcelDateTime, XlsxError> {
    // Ticket times are recent; the clamp only keeps the casts honest (Excel starts at 1900).
    // Month, day, hour, minute and second always fit their narrower types.
    let year = t.year().clamp(1900, 9999) as u16;
    ExcelDateTime::from_ymd(year, t.month() as u8, t.day() as u8)?.and_hms(
        t.hour() as u16,
        t.minute() as u8,
        t.second(),
    )
}

/// Bold titles in row 0, frozen so they stay visible, and the column widths (in characters;
/// a Chinese character counts about two).
fn header(sheet: &mut Worksheet, titles: &[&str], widths: &[f64]) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold();
    for (col, (title, width)) in titles.iter().zip(widths).enumerate() {
        let col = col as u16;
        sheet.write_string_with_format(0, col, *title, &bold)?;
        sheet.set_column_width(col, *width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(())
}

fn write_tickets(rows: &[ExportRow]) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("工单")?;
    header(
        sheet,
        &TICKET_EXPORT_HEADERS,
        &[
            20.0, 30.0, 12.0, 10.0, 14.0, 14.0, 12.0, 9.0, 20.0, 20.0, 20.0, 20.0, 10.0, 6.0, 9.0,
            6.0,
        ],
    )?;
    let time = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    for (i, r) in rows.iter().enumerate() {
        // At most MAX_EXPORT_ROWS (50,000) rows: fits a u32 and a sheet.
        let row = (i + 1) as u32;
        sheet.write_string(row, 0, &r.reference)?;
        sheet.write_string(row, 1, &r.title)?;
        sheet.write_string(row, 2, r.status)?;
        sheet.write_string(row, 3, r.level)?;
        sheet.write_string(row, 4, &r.community)?;
        sheet.write_string(row, 5, &r.compound)?;
        sheet.write_string(row, 6, &r.category)?;
        sheet.write_string(row, 7, r.urgency)?;
        let times = [
            Some(r.created_at),
            r.acknowledged_at,
            r.resolved_at,
            r.closed_at,
        ];
        for (k, t) in times.into_iter().enumerate() {
            if let Some(t) = t {
                sheet.write_datetime_with_format(row, 8 + k as u16, excel_time(t)?, &time)?;
            }
        }
        if !r.closed_by.is_empty() {
            sheet.write_string(row, 12, r.closed_by)?;
        }
        if let Some(v) = r.rating {
            sheet.write_number(row, 13, v)?;
        }
        sheet.write_number(row, 14, r.escalation_count)?;
        sheet.write_string(row, 15, if r.overdue { "是" } else { "否" })?;
    }
    book.save_to_buffer()
}

fn write_ranking(rows: &[RankRow], unit: RankUnit) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(match unit {
        RankUnit::Community => "社区排名",
        RankUnit::Compound => "小区排名",
    })?;
    header(
        sheet,
        &ranking_headers(unit),
        &[
            6.0, 8.0, 20.0, 8.0, 10.0, 10.0, 10.0, 14.0, 10.0, 22.0, 20.0,
        ],
    )?;
    let percent = Format::new().set_num_format("0.00%");
    let minutes = Format::new().set_num_format("0.0");
    for (i, r) in rows.iter().enumerate() {
        // At most MAX_EXPORT_ROWS (50,000) rows: fits a u32 and a sheet.
        let row = (i + 1) as u32;
        sheet.write_number(row, 0, r.rank as f64)?;
        sheet.write_number(row, 1, r.unit_id as f64)?;
        sheet.write_string(row, 2, &r.name)?;
        sheet.write_number(row, 3, r.tickets as f64)?;
        let rates = [
            r.response_rate,
            r.resolution_rate,
            r.satisfaction_rate,
            r.settled_in_compound_rate,
        ];
        for (k, v) in rates.into_iter().enumerate() {
            // No rate (nothing counted) stays an empty cell, as in the CSV.
            if let Some(v) = v {
                sheet.write_number_with_format(row, 4 + k as u16, v, &percent)?;
            }
        }
        sheet.write_number(row, 8, r.overdue as f64)?;
        let medians = [r.median_first_answer_seconds, r.median_settle_seconds];
        for (k, v) in medians.into_iter().enumerate() {
            if let Some(s) = v {
                sheet.write_number_with_format(row, 9 + k as u16, s as f64 / 60.0, &minutes)?;
            }
        }
    }
    book.save_to_buffer()
}

/// The ticket export as an `.xlsx` file.
pub fn tickets_xlsx(rows: &[ExportRow]) -> AppResult<Vec<u8>> {
    write_tickets(rows).map_err(internal)
}

/// The ranking as an `.xlsx` file.
pub fn ranking_xlsx(rows: &[RankRow], unit: RankUnit) -> AppResult<Vec<u8>> {
    write_ranking(rows, unit).map_err(internal)
}

fn write_ledger(l: &super::ledger::Ledger) -> Result<Vec<u8>, XlsxError> {
    use crate::domain::ledger::LedgerKind;
    use crate::domain::text_enum::TextEnum;
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("责任账本")?;
    let titles = super::export::ledger_headers(l.unit);
    let mut widths = vec![8.0, 20.0, 16.0];
    widths.extend(LedgerKind::all().iter().map(|_| 10.0));
    widths.extend([12.0, 12.0, 40.0]);
    header(sheet, &titles, &widths)?;
    let percent = Format::new().set_num_format("0.00%");
    let kinds = LedgerKind::all();
    let first_rate = 3 + kinds.len() as u16;
    for (i, r) in l.rows.iter().enumerate() {
        let row = (i + 1) as u32;
        sheet.write_number(row, 0, r.unit_id as f64)?;
        sheet.write_string(row, 1, &r.unit_name)?;
        sheet.write_string(row, 2, &r.parent_name)?;
        for (k, kind) in kinds.iter().enumerate() {
            sheet.write_number(row, 3 + k as u16, r.count(*kind) as f64)?;
        }
        let rates = [r.self_rated_satisfaction_rate, r.callback_satisfaction_rate];
        for (k, v) in rates.into_iter().enumerate() {
            if let Some(v) = v {
                sheet.write_number_with_format(row, first_rate + k as u16, v, &percent)?;
            }
        }
        sheet.write_string(
            row,
            first_rate + 2,
            super::export::reasons_text(&r.called_up_reasons),
        )?;
    }
    book.save_to_buffer()
}

/// The ledger as an `.xlsx` file.
pub fn ledger_xlsx(l: &super::ledger::Ledger) -> AppResult<Vec<u8>> {
    write_ledger(l).map_err(internal)
}

fn write_report(r: &super::report::MonthlyReport) -> Result<Vec<u8>, XlsxError> {
    use crate::domain::ledger::LedgerKind;
    use crate::domain::ticket::ClosedBy;
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let percent = Format::new().set_num_format("0.00%");

    let sheet = book.add_worksheet();
    sheet.set_name("月度概览")?;
    sheet.write_string_with_format(0, 0, format!("{} {} 月报", r.unit_name, r.month), &bold)?;
    header_row(sheet, 2, &["指标", &r.month, &r.previous_month], &bold)?;
    sheet.set_column_width(0, 24.0)?;
    sheet.set_column_width(1, 14.0)?;
    sheet.set_column_width(2, 14.0)?;
    let (a, b) = (&r.rates.this, &r.rates.previous);
    let rates = [
        ("响应率", a.response_rate, b.response_rate),
        ("解决率", a.resolution_rate, b.resolution_rate),
        (
            "满意率（居民自评）",
            a.satisfaction_rate,
            b.satisfaction_rate,
        ),
        (
            "回访满意率",
            a.callback_satisfaction_rate,
            b.callback_satisfaction_rate,
        ),
        (
            "小事不出小区率",
            a.settled_in_compound_rate,
            b.settled_in_compound_rate,
        ),
        ("确认办结率", a.confirmed_rate, b.confirmed_rate),
    ];
    sheet.write_string(3, 0, "工单数")?;
    sheet.write_number(3, 1, a.tickets as f64)?;
    sheet.write_number(3, 2, b.tickets as f64)?;
    sheet.write_string(4, 0, "已办结未确认（超时自动关闭）")?;
    sheet.write_number(4, 1, a.resolved_unconfirmed as f64)?;
    sheet.write_number(4, 2, b.resolved_unconfirmed as f64)?;
    for (i, (name, x, y)) in rates.iter().enumerate() {
        let row = 5 + i as u32;
        sheet.write_string(row, 0, *name)?;
        for (col, v) in [(1u16, x), (2u16, y)] {
            if let Some(v) = v {
                sheet.write_number_with_format(row, col, *v, &percent)?;
            }
        }
    }
    let mut row = 5 + rates.len() as u32 + 1;
    sheet.write_string_with_format(row, 0, "结案方式", &bold)?;
    for c in ClosedBy::ALL {
        row += 1;
        sheet.write_string(row, 0, c.label_zh())?;
        sheet.write_number(row, 1, *r.closed_by.get(c.as_str()).unwrap_or(&0) as f64)?;
    }
    row += 2;
    sheet.write_string_with_format(row, 0, "回访", &bold)?;
    let c = &r.callbacks;
    for (name, n) in [
        ("应回访", c.total),
        ("待回访", c.pending),
        ("已接通", c.reached),
        ("满意", c.satisfied),
        ("基本满意", c.basically_satisfied),
        ("不满意", c.unsatisfied),
        ("无法联系", c.unreachable),
        ("反映被诱导", c.pressed),
        ("重新办理", c.reopened),
    ] {
        row += 1;
        sheet.write_string(row, 0, name)?;
        sheet.write_number(row, 1, n as f64)?;
    }

    let sheet = book.add_worksheet();
    sheet.set_name("责任账本")?;
    let kinds = [
        LedgerKind::Received,
        LedgerKind::AcknowledgedOnTime,
        LedgerKind::AcknowledgedLate,
        LedgerKind::CalledUpBySweeper,
        LedgerKind::Declines,
        LedgerKind::UrgesReceived,
        LedgerKind::Reopenings,
    ];
    let mut titles = vec!["", "小区", "所属社区"];
    titles.extend(kinds.iter().map(|k| k.label_zh()));
    header_row(sheet, 0, &titles, &bold)?;
    sheet.set_column_width(1, 18.0)?;
    sheet.set_column_width(2, 16.0)?;
    let mut row = 0;
    for (label, rows) in [("最好", &r.ledger_top), ("最差", &r.ledger_bottom)] {
        for l in rows.iter() {
            row += 1;
            sheet.write_string(row, 0, label)?;
            sheet.write_string(row, 1, &l.unit_name)?;
            sheet.write_string(row, 2, &l.parent_name)?;
            for (k, kind) in kinds.iter().enumerate() {
                sheet.write_number(row, 3 + k as u16, l.count(*kind) as f64)?;
            }
        }
    }

    let sheet = book.add_worksheet();
    sheet.set_name("类别与小区")?;
    header_row(sheet, 0, &["类别", "工单数", "", "小区", "工单数"], &bold)?;
    sheet.set_column_width(0, 16.0)?;
    sheet.set_column_width(3, 18.0)?;
    for (i, c) in r.top_categories.iter().enumerate() {
        sheet.write_string(1 + i as u32, 0, &c.name)?;
        sheet.write_number(1 + i as u32, 1, c.tickets as f64)?;
    }
    for (i, c) in r.top_compounds.iter().enumerate() {
        sheet.write_string(1 + i as u32, 3, &c.name)?;
        sheet.write_number(1 + i as u32, 4, c.tickets as f64)?;
    }

    for (name, items) in [("超时工单", &r.overdue), ("重新办理", &r.reopened)] {
        let sheet = book.add_worksheet();
        sheet.set_name(name)?;
        header_row(sheet, 0, &["编号", "标题", "说明"], &bold)?;
        sheet.set_column_width(0, 20.0)?;
        sheet.set_column_width(1, 30.0)?;
        sheet.set_column_width(2, 16.0)?;
        for (i, t) in items.iter().enumerate() {
            let row = 1 + i as u32;
            sheet.write_string(row, 0, &t.reference)?;
            sheet.write_string(row, 1, &t.title)?;
            sheet.write_string(row, 2, &t.detail)?;
        }
    }
    book.save_to_buffer()
}

fn header_row(
    sheet: &mut Worksheet,
    row: u32,
    titles: &[&str],
    bold: &Format,
) -> Result<(), XlsxError> {
    for (col, t) in titles.iter().enumerate() {
        sheet.write_string_with_format(row, col as u16, *t, bold)?;
    }
    Ok(())
}

/// The monthly report as an `.xlsx` file.
pub fn report_xlsx(r: &super::report::MonthlyReport) -> AppResult<Vec<u8>> {
    write_report(r).map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn a_workbook_is_a_zip_with_the_rows() {
        let t = NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(17, 5, 9))
            .expect("time");
        let row = ExportRow {
            reference: "YC-20261130-0001".into(),
            title: "楼道灯不亮".into(),
            status: "待受理",
            level: "小区",
            community: "一社区".into(),
            compound: "一小区".into(),
            category: "设施".into(),
            urgency: "一般",
            created_at: t,
            acknowledged_at: None,
            resolved_at: None,
            closed_at: None,
            closed_by: "",
            rating: None,
            escalation_count: 0,
            overdue: false,
        };
        let bytes = tickets_xlsx(&[row]).expect("xlsx");
        assert_eq!(&bytes[..2], b"PK");
        assert!(excel_time(t).is_ok());
    }
}
