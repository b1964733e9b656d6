//! Claiming rows for work that several instances may attempt at once (the SLA sweeper, the
//! notification dispatcher): the one place where claiming differs by backend.

/// Runs `$query.$load(conn)` (e.g. `load`, `first`) so that the rows it returns are this
/// transaction's alone: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so two instances never
/// claim the same row and neither waits for the other; on SQLite as it is, because the write
/// transaction (`BEGIN IMMEDIATE`, see `write_tx`) already excludes every other writer.
#[macro_export]
macro_rules! load_skip_locked {
    ($conn:expr, $query:expr, $load:ident) => {
        match $conn {
            $crate::db::DbConn::Pg(c) => $query.for_update().skip_locked().$load(c),
            $crate::db::DbConn::Sqlite(c) => $query.$load(c),
        }
    };
}
