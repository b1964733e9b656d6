//! Closing the loop honestly: how tickets close, callbacks (回访), the accountability ledger and
//! the monthly report — with exact numbers for a hand-built month on both databases.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends_with;
use crate::helpers::{error_code, local, sweep, TestApp};
use crate::tickets::{act, create, world, World};
use huying::config::Settings;

both_backends_with!(
    month;
    a_hand_built_month_gives_the_exact_ledger_rates_and_report,
    a_pressed_withdrawal_is_flagged_called_back_and_reopened_where_it_closed,
    a_resident_unreachable_three_times_is_closed_as_unreachable,
    callbacks_belong_to_the_level_the_street_chose,
    the_sample_is_drawn_with_the_key_every_instance_shares,
);

/// Auto-close after one day (the default is seven) and no random sample, so every callback
/// of the month is one the test chose.
fn month(s: &mut Settings) {
    s.sla.auto_close_days = 1;
    s.callbacks.sample_percent = 0;
}

/// 2026-11 in Beijing time; `d` the day of the month.
fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    local(2026, 11, d, h, m)
}

async fn staff(app: &TestApp, who: &str) -> String {
    app.login_staff(who).await
}

/// Sets the clock and takes `action` on `id` as `who` (a staff username, or `resident`).
async fn step(app: &TestApp, when: DateTime<Utc>, who: &str, id: i64, action: &str, body: Value) {
    app.clock.set(when);
    let token = if who == "resident" {
        app.login_resident("13800000001").await
    } else {
        staff(app, who).await
    };
    let (s, v) = act(app, &token, id, action, body).await;
    assert_eq!(s, StatusCode::OK, "{who} {action} #{id} at {when}: {v}");
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

fn compound(w: &World, i: usize) -> i64 {
    w.seed["compounds"][i]["id"].as_i64().expect("compound")
}

async fn callbacks(app: &TestApp, token: &str, query: &str) -> Value {
    let (s, v) = app
        .get(&format!("/api/v1/callbacks{query}"), Some(token))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// The pending callback of ticket `ticket` in `token`'s queue.
async fn callback_of(app: &TestApp, token: &str, ticket: i64) -> Value {
    let q = callbacks(app, token, "?state=all&limit=200").await;
    q["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["ticket_id"] == ticket)
        .cloned()
        .unwrap_or_else(|| panic!("no callback for #{ticket}: {q}"))
}

async fn record(app: &TestApp, token: &str, callback: i64, body: Value) -> Value {
    let (s, v) = app
        .post(&format!("/api/v1/callbacks/{callback}"), Some(token), body)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn ticket(app: &TestApp, token: &str, id: i64) -> Value {
    let (s, v) = app.get(&format!("/api/v1/tickets/{id}"), Some(token)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// The row of unit `unit` in a ledger answer.
fn row(ledger: &Value, unit: i64) -> Value {
    ledger["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["unit_id"] == unit)
        .cloned()
        .unwrap_or_else(|| panic!("no row for {unit}: {ledger}"))
}

/// Asserts every ledger column of `row`: the ones named with their count, all others zero.
fn assert_columns(row: &Value, columns: &Value, expected: &[(&str, i64)]) {
    for c in columns.as_array().expect("columns") {
        let c = c.as_str().expect("column");
        let want = expected
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(0, |(_, n)| *n);
        assert_eq!(row[c], want, "{} {c}: {row}", row["unit_name"]);
    }
    for (k, _) in expected {
        assert!(
            columns.as_array().expect("columns").contains(&json!(k)),
            "{k} is a column"
        );
    }
}

/// Fifteen tickets in compound A in the first week of November 2026, taking every way a ticket
/// closes and every ledger column; then the ledger, the rates and the monthly report are exactly
/// what the story says (the comments count them).
async fn a_hand_built_month_gives_the_exact_ledger_rates_and_report(app: TestApp) {
    app.clock.set(at(2, 9, 0));
    let w = world(&app).await;
    let (a, b) = (compound(&w, 0), compound(&w, 1));
    let c1 = w.seed["communities"][0]["id"].as_i64().expect("community");
    let (p1, c1s, st) = ("yc-c1-p1", "yc-c1", "yc-street");
    // Monday 2 November 09:00: fifteen calls at compound A (T14 urgent).
    let mut t = vec![0i64];
    for n in 1..=15 {
        let v = if n == 14 {
            let (s, v) = app
                .post(
                    "/api/v1/tickets",
                    Some(&w.resident),
                    json!({"compound_id": a, "category_id": w.category, "urgency": "urgent",
                        "title": "T14 水管爆裂", "description": "楼道水管爆裂，水流不止"}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v
        } else {
            create(&app, &w, &format!("T{n} 楼道灯不亮")).await
        };
        t.push(id(&v));
    }
    let note = || json!({"note": "已处理"});
    // 09:10 A answers ten of them in time (answer clock: 4 working hours, due 15:00).
    for n in [1, 2, 3, 5, 6, 7, 8, 9, 11, 12, 15] {
        step(&app, at(2, 9, 10), p1, t[n], "acknowledge", json!({})).await;
    }
    step(&app, at(2, 9, 20), p1, t[14], "acknowledge", json!({})).await;
    // T1: resolved, confirmed with five stars five minutes later (looks pressed: flagged).
    step(&app, at(2, 9, 30), p1, t[1], "resolve", note()).await;
    step(
        &app,
        at(2, 9, 35),
        "resident",
        t[1],
        "confirm",
        json!({"rating": 5}),
    )
    .await;
    // T2: resolved, disputed (a reopening), answered and resolved again, rated two stars.
    step(&app, at(2, 9, 40), p1, t[2], "resolve", note()).await;
    step(
        &app,
        at(2, 9, 50),
        "resident",
        t[2],
        "dispute",
        json!({"note": "没修好"}),
    )
    .await;
    step(&app, at(2, 10, 0), p1, t[2], "acknowledge", json!({})).await;
    step(&app, at(2, 10, 30), p1, t[2], "resolve", note()).await;
    step(
        &app,
        at(2, 11, 0),
        "resident",
        t[2],
        "confirm",
        json!({"rating": 2}),
    )
    .await;
    // T3 and T15: resolved, nobody confirms: closed automatically a day later.
    step(&app, at(2, 9, 45), p1, t[3], "resolve", note()).await;
    step(&app, at(2, 9, 50), p1, t[15], "resolve", note()).await;
    // T5: declined, the community upholds it.
    let no = json!({"reason": "属于物业合同纠纷，不在受理范围"});
    step(&app, at(2, 9, 20), p1, t[5], "decline", no.clone()).await;
    step(&app, at(2, 10, 0), c1s, t[5], "uphold_decline", json!({})).await;
    // T6: a reply to the resident, then the resident withdraws an hour later (flagged).
    let reply = json!({"note": "我们联系物业后再说", "internal": false});
    step(&app, at(2, 9, 20), p1, t[6], "comment", reply).await;
    step(&app, at(2, 10, 20), "resident", t[6], "withdraw", json!({})).await;
    // T7: transferred to compound B, which never answers.
    let to_b = json!({"compound_id": b, "note": "属于二号小区"});
    step(&app, at(2, 9, 30), p1, t[7], "transfer", to_b).await;
    // T8: urged by the community; an extension asked and granted; a second one left unanswered.
    let urge = json!({"note": "请加快办理"});
    step(&app, at(2, 9, 30), c1s, t[8], "urge", urge).await;
    let ext = |d: u32| json!({"note": "等待配件", "due_at": at(d, 17, 0).to_rfc3339()});
    step(&app, at(2, 9, 40), p1, t[8], "request_extension", ext(6)).await;
    step(
        &app,
        at(2, 10, 0),
        c1s,
        t[8],
        "approve_extension",
        json!({}),
    )
    .await;
    step(&app, at(2, 10, 10), p1, t[8], "request_extension", ext(9)).await;
    // T9: called up for resources, returned by the community, answered again.
    let up = json!({"reason": "needs_resources", "note": "需要社区协调"});
    step(&app, at(2, 9, 20), p1, t[9], "escalate", up).await;
    let back = json!({"note": "小区可自行处理"});
    step(&app, at(2, 9, 40), c1s, t[9], "return", back).await;
    step(&app, at(2, 9, 50), p1, t[9], "acknowledge", json!({})).await;
    // T10: the street takes it over before A answers, and answers itself.
    let mine = json!({"note": "街道直接办理"});
    step(&app, at(2, 9, 30), st, t[10], "take_over", mine).await;
    step(&app, at(2, 9, 40), st, t[10], "acknowledge", json!({})).await;
    // T11: declined, the community overturns it and answers.
    step(&app, at(2, 9, 20), p1, t[11], "decline", no.clone()).await;
    step(
        &app,
        at(2, 9, 40),
        c1s,
        t[11],
        "overturn_decline",
        json!({}),
    )
    .await;
    step(&app, at(2, 9, 50), c1s, t[11], "acknowledge", json!({})).await;
    // T12: declined; the community lets its decision clock run out.
    step(&app, at(2, 10, 0), p1, t[12], "decline", no).await;
    // T13: answered an hour after its clock ran out.
    step(&app, at(2, 16, 0), p1, t[13], "acknowledge", json!({})).await;
    // 17:00 sweep: T4 (never answered) and T7 (B never answered) go up to the community.
    let r = sweep(&app, at(2, 17, 0));
    assert_eq!(r.escalated, 2, "{r:?}");
    step(&app, at(2, 17, 10), c1s, t[4], "acknowledge", json!({})).await;
    step(&app, at(2, 17, 10), c1s, t[7], "acknowledge", json!({})).await;
    step(&app, at(2, 17, 20), c1s, t[4], "resolve", note()).await;
    step(
        &app,
        at(2, 17, 40),
        "resident",
        t[4],
        "confirm",
        json!({"rating": 4}),
    )
    .await;
    // Tuesday: T14 (urgent, 24 h) resolved late.
    step(&app, at(3, 10, 0), p1, t[14], "resolve", note()).await;
    // Tuesday 17:00 sweep: T3 and T15 close themselves, T12's review goes up to the street
    // unanswered, T8's second extension request is left unanswered by the community.
    let r = sweep(&app, at(3, 17, 0));
    assert_eq!(r.auto_closed, 2, "{r:?}");

    // Wednesday: the street works its callback queue.
    app.clock.set(at(4, 10, 0));
    let street = staff(&app, st).await;
    let q = callbacks(&app, &street, "").await;
    assert_eq!(
        q["counts"],
        json!({"pending": 5, "due_today": 0, "overdue": 0, "flagged": 2, "done": 0, "unreachable": 0}),
        "{q}"
    );
    let mut queued: Vec<(i64, String)> = q["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| {
            (
                c["ticket_id"].as_i64().expect("ticket"),
                c["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect();
    queued.sort();
    assert_eq!(
        queued,
        vec![
            (t[1], "flagged".to_string()),
            (t[3], "auto_closed".to_string()),
            (t[5], "decline_upheld".to_string()),
            (t[6], "withdrawn_after_contact".to_string()),
            (t[15], "auto_closed".to_string()),
        ]
    );
    let cb1 = callback_of(&app, &street, t[1]).await;
    assert_eq!(cb1["flag"], "quick_five_star");
    assert_eq!(cb1["asks_pressed"], true);
    assert_eq!(cb1["resident_phone"], "13800000001");
    // Due three working days after the closure: Mon 09:35 → Thu 09:35 (plus the seconds the
    // sign-ins moved the test clock on).
    let closed: DateTime<Utc> = cb1["closed_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("closed_at");
    assert_eq!(cb1["due_at"], json!(at(5, 9, 35) + (closed - at(2, 9, 35))));
    record(
        &app,
        &street,
        id(&cb1),
        json!({"reached": true, "verdict": "satisfied", "pressed": false}),
    )
    .await;
    let cb3 = callback_of(&app, &street, t[3]).await;
    let done = record(
        &app,
        &street,
        id(&cb3),
        json!({"reached": true, "verdict": "basically_satisfied", "note": "灯已经亮了"}),
    )
    .await;
    assert_eq!(done["state"], "done");
    assert_eq!(ticket(&app, &street, t[3]).await["closed_by"], "callback");
    let cb5 = callback_of(&app, &street, t[5]).await;
    for _ in 0..3 {
        record(&app, &street, id(&cb5), json!({"reached": false})).await;
    }
    let cb6 = callback_of(&app, &street, t[6]).await;
    assert_eq!(cb6["flag"], "quick_withdrawal");
    let v = record(
        &app,
        &street,
        id(&cb6),
        json!({"reached": true, "verdict": "unsatisfied", "pressed": true, "note": "说是被劝撤的"}),
    )
    .await;
    assert_eq!(v["reopened"], true);
    let t6 = ticket(&app, &street, t[6]).await;
    assert_eq!(
        (&t6["status"], &t6["level"]),
        (&json!("open"), &json!("compound"))
    );
    assert_eq!(t6["closed_by"], Value::Null);

    app.clock.set(at(4, 10, 30));
    let street = staff(&app, st).await;
    let range = "from=2026-11-01&to=2026-11-30";
    let (s, l) = app
        .get(&format!("/api/v1/stats/ledger?{range}"), Some(&street))
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    let columns = l["columns"].clone();
    let ra = row(&l, a);
    assert_columns(
        &ra,
        &columns,
        &[
            // 15 calls + T9 back from the community.
            ("received", 16),
            // 13 at 09:10/09:20 (T14 urgent), T2 after its dispute, T9 after its return.
            ("acknowledged_on_time", 14),
            ("acknowledged_late", 1),
            // T1, T2 twice, T3, T15.
            ("resolved_on_time", 5),
            ("resolved_late", 1),
            ("called_up", 2),
            ("called_up_by_sweeper", 1),
            ("taken_over", 1),
            ("returns_received", 1),
            ("transfers_out", 1),
            ("declines", 3),
            ("declines_upheld", 1),
            ("declines_overturned", 1),
            ("urges_received", 1),
            ("extensions_requested", 2),
            ("extensions_granted", 1),
            ("disputes", 1),
            ("rated", 2),
            ("rated_satisfied", 1),
            ("callbacks_satisfied", 1),
            ("callbacks_basically_satisfied", 1),
            ("callbacks_unsatisfied", 1),
            // T2's dispute and T6's callback.
            ("reopenings", 2),
        ],
    );
    assert_eq!(
        ra["called_up_reasons"],
        json!({"needs_resources": 1, "sla_breach_acknowledge": 1})
    );
    assert_eq!(ra["self_rated_satisfaction_rate"], 0.5);
    assert_eq!(ra["callback_satisfaction_rate"], 0.6667);
    assert_eq!(
        ra["on_time_answer_rate"], 0.9333,
        "14 of 15 answers on time"
    );
    assert_columns(
        &row(&l, b),
        &columns,
        &[
            ("received", 1),
            ("transfers_in", 1),
            ("called_up", 1),
            ("called_up_by_sweeper", 1),
        ],
    );
    let (s, lc) = app
        .get(
            &format!("/api/v1/stats/ledger?{range}&unit=community"),
            Some(&street),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{lc}");
    assert_columns(
        &row(&lc, c1),
        &columns,
        &[
            // T4 and T7 by the sweeper, T9 called up, T11 overturned.
            ("received", 4),
            ("acknowledged_on_time", 3),
            ("resolved_on_time", 1),
            ("decline_reviews_unanswered", 1),
            ("extensions_unanswered", 1),
            ("rated", 1),
            ("rated_satisfied", 1),
            // T5's upheld decline closed at the community.
            ("callbacks_unreachable", 1),
        ],
    );

    // Each number links to the tickets behind it.
    let (s, behind) = app
        .get(
            &format!("/api/v1/stats/ledger/tickets?{range}&unit_id={a}&column=reopenings"),
            Some(&street),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{behind}");
    assert_eq!(behind["total"], 2);
    let mut ids: Vec<i64> = behind["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec![t[2], t[6]]);

    // The rates of the month.
    let (s, sum) = app
        .get(&format!("/api/v1/stats/summary?{range}"), Some(&street))
        .await;
    assert_eq!(s, StatusCode::OK, "{sum}");
    assert_eq!(sum["tickets"], 15);
    // Late: T4 (A never answered), T7 (B never answered), T13.
    assert_eq!(sum["response_rate"], 0.8, "{sum}");
    // Met: T1, T3 (closed by callback), T4; not met: T2 (disputed), T6 (reopened by callback),
    // T14 (resolved late); T15 closed itself: not counted.
    assert_eq!(
        sum["rate_counts"]["resolution"],
        json!({"numerator": 3, "denominator": 6})
    );
    // Ratings 5, 2, 4; the auto-closed T15 has none and raises nothing.
    assert_eq!(sum["satisfaction_rate"], 0.6667);
    // T1, T2, T3 settled in the compound; T4 went up; T15 unconfirmed.
    assert_eq!(sum["settled_in_compound_rate"], 0.75);
    assert_eq!(sum["confirmed_rate"], 0.8, "T1–T4 confirmed, T15 not");
    assert_eq!(sum["resolved_unconfirmed"], 1);
    assert_eq!(
        sum["callbacks"],
        json!({"total": 5, "pending": 1, "reached": 3, "satisfied": 1, "basically_satisfied": 1,
            "unsatisfied": 1, "unreachable": 1, "pressed": 1, "reopened": 1})
    );
    assert_eq!(sum["callback_satisfaction_rate"], 0.6667);

    // The monthly report.
    let (s, rep) = app
        .get("/api/v1/reports/monthly?month=2026-11", Some(&street))
        .await;
    assert_eq!(s, StatusCode::OK, "{rep}");
    assert_eq!(rep["month"], "2026-11");
    assert_eq!(rep["previous_month"], "2026-10");
    assert_eq!(rep["unit_name"], "云城街道");
    assert_eq!(rep["rates"]["this"]["tickets"], 15);
    assert_eq!(rep["rates"]["this"]["resolution_rate"], 0.5);
    assert_eq!(rep["rates"]["this"]["settled_in_compound_rate"], 0.75);
    assert_eq!(rep["rates"]["this"]["callback_satisfaction_rate"], 0.6667);
    assert_eq!(rep["rates"]["previous"]["tickets"], 0);
    assert_eq!(rep["rates"]["previous"]["response_rate"], Value::Null);
    // Only A acknowledged anything: it is the top, and nobody is below it.
    assert_eq!(rep["ledger_top"][0]["unit_id"], a);
    assert_eq!(rep["ledger_top"].as_array().map(Vec::len), Some(1));
    assert_eq!(rep["ledger_bottom"], json!([]));
    assert_eq!(rep["top_categories"][0]["tickets"], 15);
    assert_eq!(
        rep["top_compounds"],
        json!([{"unit_id": a, "name": w.seed["compounds"][0]["name"], "tickets": 14},
            {"unit_id": b, "name": w.seed["compounds"][1]["name"], "tickets": 1}])
    );
    assert_eq!(rep["reopened_total"], 2);
    assert_eq!(rep["overdue_total"], 0);
    assert_eq!(
        rep["closed_by"],
        json!({"resident": 3, "auto": 1, "callback": 1, "declined": 1, "withdrawn": 0, "raising_level": 0})
    );
    assert_eq!(rep["callbacks"], sum["callbacks"]);
    assert_eq!(rep["trend"].as_array().map(Vec::len), Some(30));

    // The daily roll-up gives what counting every entry gives, for whole days, partial days at
    // either end and ranges within one day.
    {
        use huying::service::stats::ledger::{ledger_from, LedgerSource};
        use huying::service::stats::{RankUnit, StatsScope};
        let db = huying::db::Db::connect(&app.settings).expect("db");
        let mut conn = db.get().expect("conn");
        let street_id = w.seed["street"]["id"].as_i64().expect("street");
        let scopes = [
            StatsScope {
                street_id: Some(street_id),
                community_id: None,
            },
            StatsScope {
                street_id: Some(street_id),
                community_id: Some(c1),
            },
        ];
        let ranges = [
            (at(1, 0, 0), at(30, 0, 0)),
            (at(2, 9, 15), at(4, 10, 5)),
            (at(2, 9, 0), at(2, 10, 0)),
            (at(3, 0, 0), at(4, 0, 0)),
            (at(2, 12, 0), at(3, 17, 30)),
        ];
        for scope in &scopes {
            for (from, to) in ranges {
                let range = huying::service::stats::Range { from, to };
                for unit in [RankUnit::Compound, RankUnit::Community] {
                    let days =
                        ledger_from(&mut conn, scope, &range, unit, LedgerSource::DaysAndEntries)
                            .expect("days");
                    let entries =
                        ledger_from(&mut conn, scope, &range, unit, LedgerSource::Entries)
                            .expect("entries");
                    assert_eq!(
                        serde_json::to_value(&days).expect("json"),
                        serde_json::to_value(&entries).expect("json"),
                        "{scope:?} {from}..{to} {unit:?}"
                    );
                }
            }
        }
    }

    // The same through CSV and XLSX.
    let resp = app
        .client
        .get(format!("{}/api/v1/stats/ledger.csv?{range}", app.base))
        .bearer_auth(&street)
        .send()
        .await
        .expect("csv");
    assert_eq!(resp.status(), StatusCode::OK);
    let csv = resp.text().await.expect("csv body");
    let header = csv.lines().next().expect("header");
    assert!(
        header.starts_with("\u{FEFF}单位ID,小区,所属社区,收到,按时受理,超时受理"),
        "{header}"
    );
    let line = csv
        .lines()
        .find(|l| l.starts_with(&format!("{a},")))
        .expect("A's line");
    let cells: Vec<&str> = line.split(',').collect();
    // received, on time, late, resolved on time, late, called up, by the sweeper.
    assert_eq!(
        &cells[3..10],
        &["16", "14", "1", "5", "1", "2", "1"],
        "{line}"
    );
    assert!(line.contains(",0.5000,0.6667,"), "{line}");
    for (path, marker) in [
        (format!("/api/v1/stats/ledger.xlsx?{range}"), "责任账本"),
        (
            "/api/v1/reports/monthly.xlsx?month=2026-11".to_string(),
            "月度概览",
        ),
    ] {
        let resp = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(&street)
            .send()
            .await
            .expect("xlsx");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let body = resp.bytes().await.expect("xlsx body");
        let parts =
            crate::stats::xlsx_parts(&body, &["xl/workbook.xml", "xl/worksheets/sheet1.xml"]);
        assert!(parts[0].contains(marker), "{path}: {}", parts[0]);
        if marker == "责任账本" {
            // A's received count as a number cell.
            assert!(parts[1].contains("<v>16</v>"), "{}", parts[1]);
        }
    }
}

/// A withdrawal an hour after the compound's reply is flagged; the resident says they were
/// pressed; the ticket reopens in the compound's queue (the level that closed it), the compound
/// is told, and the ledger counts it.
async fn a_pressed_withdrawal_is_flagged_called_back_and_reopened_where_it_closed(app: TestApp) {
    app.clock.set(at(30, 9, 0));
    let w = world(&app).await;
    let a = compound(&w, 0);
    let t = id(&create(&app, &w, "电梯异响").await);
    step(&app, at(30, 9, 10), "yc-c1-p1", t, "acknowledge", json!({})).await;
    let reply = json!({"note": "电梯公司说没问题，您看是否撤回", "internal": false});
    step(&app, at(30, 9, 20), "yc-c1-p1", t, "comment", reply).await;
    step(&app, at(30, 11, 0), "resident", t, "withdraw", json!({})).await;
    let street = staff(&app, "yc-street").await;
    let q = callbacks(&app, &street, "?flagged=true").await;
    assert_eq!(q["counts"]["flagged"], 1, "{q}");
    let cb = &q["items"][0];
    assert_eq!(cb["ticket_id"], t);
    assert_eq!(cb["reason"], "withdrawn_after_contact");
    assert_eq!(cb["flag"], "quick_withdrawal");
    assert_eq!(cb["closed_by"], "withdrawn");
    // Asked whether pressed: required.
    let (s, v) = app
        .post(
            &format!("/api/v1/callbacks/{}", id(cb)),
            Some(&street),
            json!({"reached": true, "verdict": "satisfied"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let v = record(
        &app,
        &street,
        id(cb),
        json!({"reached": true, "verdict": "satisfied", "pressed": true, "note": "居民说是被劝撤的"}),
    )
    .await;
    assert_eq!(v["reopened"], true);
    assert_eq!(v["state"], "done");
    let (s, v) = app
        .post(
            &format!("/api/v1/callbacks/{}", id(cb)),
            Some(&street),
            json!({"reached": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(error_code(&v), "callback_finished");
    // Back in the compound's open queue, told in the app.
    let p1 = staff(&app, "yc-c1-p1").await;
    let (s, queue) = app
        .get("/api/v1/tickets?level=compound&status=open", Some(&p1))
        .await;
    assert_eq!(s, StatusCode::OK, "{queue}");
    assert!(
        queue["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["id"] == t),
        "{queue}"
    );
    let (_, inbox) = app.get("/api/v1/notifications?limit=50", Some(&p1)).await;
    assert!(
        inbox["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|n| n["kind"] == "callback_reopened"),
        "{inbox}"
    );
    let (_, evs) = app
        .get(&format!("/api/v1/tickets/{t}/events"), Some(&p1))
        .await;
    let last = evs
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .expect("events");
    assert_eq!(last["action"], "callback_reopen");
    assert_eq!(last["reason"], "pressed");
    // What the resident said stays with the street: not shown to the compound or the resident.
    assert_eq!(last["note"], Value::Null, "{last}");
    for (token, note) in [
        (street.clone(), json!("居民说是被劝撤的")),
        (app.login_resident("13800000001").await, Value::Null),
    ] {
        let (_, evs) = app
            .get(&format!("/api/v1/tickets/{t}/events"), Some(&token))
            .await;
        let last = evs
            .as_array()
            .and_then(|e| e.last())
            .cloned()
            .expect("events");
        assert_eq!(
            (&last["action"], &last["note"]),
            (&json!("callback_reopen"), &note)
        );
    }
    let (_, l) = app
        .get(
            "/api/v1/stats/ledger?from=2026-11-30&to=2026-11-30",
            Some(&street),
        )
        .await;
    let ra = row(&l, a);
    assert_eq!(ra["reopenings"], 1, "{ra}");
    assert_eq!(ra["callbacks_satisfied"], 1, "{ra}");
}

async fn a_resident_unreachable_three_times_is_closed_as_unreachable(app: TestApp) {
    app.clock.set(at(30, 9, 0));
    let w = world(&app).await;
    let t = id(&create(&app, &w, "路灯不亮").await);
    step(
        &app,
        at(30, 9, 10),
        "yc-c1-p1",
        t,
        "resolve",
        json!({"note": "已更换灯泡"}),
    )
    .await;
    let r = sweep(&app, local(2026, 12, 1, 10, 0));
    assert_eq!(r.auto_closed, 1, "{r:?}");
    app.clock.set(local(2026, 12, 1, 11, 0));
    let street = staff(&app, "yc-street").await;
    let cb = callback_of(&app, &street, t).await;
    assert_eq!(cb["reason"], "auto_closed");
    assert_eq!(cb["asks_pressed"], false);
    // Two callers record a call at the same moment: every call kept is counted once.
    let url = format!("/api/v1/callbacks/{}", id(&cb));
    let (r1, r2) = tokio::join!(
        app.post(&url, Some(&street), json!({"reached": false})),
        app.post(&url, Some(&street), json!({"reached": false})),
    );
    let kept = [&r1, &r2]
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .count();
    for (s, v) in [&r1, &r2] {
        assert!(
            *s == StatusCode::OK || (*s == StatusCode::CONFLICT && error_code(v) == "conflict"),
            "{s}: {v}"
        );
    }
    assert!(kept >= 1);
    let now = callback_of(&app, &street, t).await;
    assert_eq!(
        now["attempts"].as_array().map(Vec::len),
        Some(kept),
        "{now}"
    );
    // The remaining calls up to three.
    let start = kept as u32;
    for n in (start + 1)..=3 {
        app.clock.set(local(2026, 12, 1, 11, n));
        let v = record(&app, &street, id(&cb), json!({"reached": false})).await;
        assert_eq!(v["attempts"].as_array().map(Vec::len), Some(n as usize));
        assert_eq!(v["state"], if n < 3 { "pending" } else { "unreachable" });
        assert_eq!(v["attempts"][n as usize - 1]["reached"], false);
    }
    // Unreachable: still closed automatically (unconfirmed), and counted.
    let tk = ticket(&app, &street, t).await;
    assert_eq!(
        (&tk["status"], &tk["closed_by"]),
        (&json!("closed"), &json!("auto"))
    );
    let q = callbacks(&app, &street, "").await;
    assert_eq!(q["counts"]["pending"], 0);
    assert_eq!(q["counts"]["unreachable"], 1);
    let (_, l) = app
        .get(
            "/api/v1/stats/ledger?from=2026-11-30&to=2026-12-01",
            Some(&street),
        )
        .await;
    assert_eq!(row(&l, compound(&w, 0))["callbacks_unreachable"], 1);
    let (_, evs) = app
        .get(&format!("/api/v1/tickets/{t}/events"), Some(&street))
        .await;
    let last = evs
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .expect("events");
    assert_eq!(
        (&last["action"], &last["reason"]),
        (&json!("callback"), &json!("unreachable"))
    );
}

/// The street makes callbacks unless it gives them to its communities; compound staff and
/// residents never see the queue.
async fn callbacks_belong_to_the_level_the_street_chose(app: TestApp) {
    app.clock.set(at(30, 9, 0));
    let w = world(&app).await;
    let street_id = w.seed["street"]["id"].as_i64().expect("street");
    let p1 = staff(&app, "yc-c1-p1").await;
    let (s, v) = app.get("/api/v1/callbacks", Some(&p1)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = app.get("/api/v1/callbacks", Some(&w.resident)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let first = id(&create(&app, &w, "垃圾未清运").await);
    step(
        &app,
        at(30, 9, 10),
        "yc-c1-p1",
        first,
        "resolve",
        json!({"note": "已清运"}),
    )
    .await;
    sweep(&app, local(2026, 12, 1, 10, 0));
    app.clock.set(local(2026, 12, 1, 10, 5));
    let street = staff(&app, "yc-street").await;
    let c1 = staff(&app, "yc-c1").await;
    assert_eq!(callbacks(&app, &street, "").await["counts"]["pending"], 1);
    assert_eq!(callbacks(&app, &c1, "").await["counts"]["pending"], 0);
    // The street hands callbacks to its communities (admin).
    let admin = staff(&app, "yc-admin").await;
    let (s, v) = app
        .patch(
            &format!("/api/v1/org/streets/{street_id}"),
            Some(&admin),
            json!({"callback_level": "community"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["callback_level"], "community");
    let compound_id = compound(&w, 0);
    let (s, v) = app
        .patch(
            &format!("/api/v1/org/compounds/{compound_id}"),
            Some(&admin),
            json!({"callback_level": "community"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let w = World {
        resident: app.login_resident("13800000001").await,
        ..w
    };
    let second = id(&create(&app, &w, "单元门坏了").await);
    step(
        &app,
        local(2026, 12, 1, 10, 10),
        "yc-c1-p1",
        second,
        "resolve",
        json!({"note": "已修"}),
    )
    .await;
    sweep(&app, local(2026, 12, 2, 11, 0));
    app.clock.set(local(2026, 12, 2, 11, 5));
    let street = staff(&app, "yc-street").await;
    let c1 = staff(&app, "yc-c1").await;
    let c2 = staff(&app, "yc-c2").await;
    let mine = callbacks(&app, &c1, "").await;
    assert_eq!(mine["counts"]["pending"], 1, "{mine}");
    assert_eq!(mine["items"][0]["ticket_id"], second);
    assert_eq!(callbacks(&app, &c2, "").await["counts"]["pending"], 0);
    // The earlier one stays with the street, which took it when the ticket closed.
    let theirs = callbacks(&app, &street, "").await;
    assert_eq!(theirs["items"][0]["ticket_id"], first, "{theirs}");
    // Another level's callback is not found.
    let cb = id(&theirs["items"][0]);
    let (s, _) = app
        .post(
            &format!("/api/v1/callbacks/{cb}"),
            Some(&c1),
            json!({"reached": false}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app
        .post(
            &format!("/api/v1/callbacks/{cb}"),
            Some(&street),
            json!({"reached": true}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = app
        .post(
            &format!("/api/v1/callbacks/{cb}"),
            Some(&street),
            json!({"reached": true, "verdict": "very_happy"}),
        )
        .await;
    assert!(s.is_client_error(), "{s}: {v}");
}

/// The sample's key lives in the database, so every instance (and `huying sweep`) draws the same
/// closures, and a second draw of the same closures picks the same ones. The key is random per
/// database: over 10,000 closures its share stays within two points of the setting (beyond four
/// standard deviations; the fixed-key unit test checks 1,000).
async fn the_sample_is_drawn_with_the_key_every_instance_shares(app: TestApp) {
    use huying::domain::callback::drawn;
    use huying::service::auth::shared_secret;
    let db = huying::db::Db::connect(&app.settings).expect("db");
    let mut conn = db.get().expect("conn");
    let now = huying::db::round_ts(app.now());
    let key = shared_secret(&mut conn, "callback_sample", now).expect("key");
    assert!(key.len() >= 32);
    let other = huying::db::Db::connect(&app.settings).expect("second instance");
    let mut conn2 = other.get().expect("conn");
    assert_eq!(
        shared_secret(&mut conn2, "callback_sample", now).expect("key"),
        key,
        "a second instance reads the same key"
    );
    for percent in [10u32, 30] {
        let closed = huying::db::round_ts(at(2, 10, 0));
        let picked: Vec<i64> = (1..=10_000)
            .filter(|id| drawn(*id, closed, percent * 10, &key))
            .collect();
        let again: Vec<i64> = (1..=10_000)
            .filter(|id| drawn(*id, closed, percent * 10, &key))
            .collect();
        assert_eq!(picked, again);
        let share = picked.len() as f64 / 100.0;
        assert!(
            (share - f64::from(percent)).abs() <= 2.0,
            "{percent} %: drew {} of 10,000",
            picked.len()
        );
    }
}
