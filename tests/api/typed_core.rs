//! The closed sets hold in the database itself: a value the code does not know is refused even
//! when written straight into a table, on both backends.

use diesel::connection::SimpleConnection;

use crate::both_backends;
use crate::helpers::TestApp;
use crate::tickets::{create, world};

async fn an_unknown_value_written_straight_into_the_database_is_refused(app: TestApp) {
    let w = world(&app).await;
    let t = create(&app, &w, "楼道灯不亮").await;
    let id = t["id"].as_i64().expect("id");
    let db = huying::db::Db::connect(&app.settings).expect("db");
    let mut conn = db.get().expect("conn");
    for (table, column, bad) in [
        ("tickets", "status", "lost"),
        ("tickets", "level", "city"),
        ("tickets", "urgency", "whenever"),
        ("tickets", "closed_by", "nobody"),
    ] {
        let sql = format!("UPDATE {table} SET {column} = '{bad}' WHERE id = {id}");
        let err = conn
            .batch_execute(&sql)
            .expect_err("the check refuses an unknown value");
        let msg = err.to_string();
        assert!(
            msg.contains("check") || msg.contains("CHECK"),
            "{table}.{column}: {msg}"
        );
    }
    let err = conn
        .batch_execute(&format!(
            "UPDATE ticket_events SET action = 'teleport' WHERE ticket_id = {id}"
        ))
        .expect_err("event kinds are checked too");
    assert!(err.to_string().to_lowercase().contains("check"), "{err}");
    // Known values still pass, and the ticket reads back unchanged through the API.
    conn.batch_execute(&format!(
        "UPDATE tickets SET urgency = 'urgent' WHERE id = {id}"
    ))
    .expect("a known value is stored");
    let (s, v) = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&w.resident))
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{v}");
    assert_eq!(v["status"], "open");
    assert_eq!(v["urgency"], "urgent");
}

both_backends!(an_unknown_value_written_straight_into_the_database_is_refused);
