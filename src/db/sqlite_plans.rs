//! SQLite's query planner on the writer's connection and the request readers, held to plans
//! that do not depend on bound values.
//!
//! By default SQLite lets a bound value shape a statement's plan: a `LIMIT ?` (every diesel
//! `.first()` and `.limit(n)`) or a `col = ?` compared with a partial index's condition marks
//! the statement "to be recompiled when this parameter is bound again". diesel binds every
//! parameter afresh on each execution, so such statements were parsed and planned again on
//! every run although they sit in the statement cache: on the create path that was about a
//! tenth of the writer thread's time, on a queue request a sixth of all its time (the user
//! lookup's `.first()` and the page's `LIMIT ?`). The query planner stability guarantee
//! (`SQLITE_DBCONFIG_ENABLE_QPSG`) switches that off, so a cached statement is planned once.
//!
//! The writer's connection and the request readers (`Db::run`) get it ([`open_with_stable_plans`]):
//! they run short, repeated statements. The dashboard's range aggregates read on connections of
//! their own without it (`Db::run_ranged`): their plans are better when the planner sees the
//! range (measured: the ledger of a street's month took 2 ms with the values and 10 ms without).
//! With the guarantee a partial index is used
//! only when the query states its condition literally (a bound `role = ?` no longer proves
//! `WHERE role = 'resident'`), so the lookups that rely on one write it as SQL text:
//! [`resident_role`], [`street_kind`], [`status_in`].

use std::cell::Cell;
use std::ffi::{c_char, c_int};
use std::sync::Once;

use diesel::dsl::sql;
use diesel::expression::SqlLiteral;
use diesel::sql_types::Bool;
use libsqlite3_sys as ffi;

use crate::domain::text_enum::TextEnum;
use crate::domain::ticket::Status;

thread_local! {
    /// Set while this thread opens a connection that is to plan independently of bound values.
    static OPENING_STABLE: Cell<bool> = const { Cell::new(false) };
}

/// Opens a connection with `open` (on this thread) that plans independently of bound values.
pub fn open_with_stable_plans<T>(open: impl FnOnce() -> T) -> T {
    register();
    OPENING_STABLE.with(|f| f.set(true));
    let conn = open();
    OPENING_STABLE.with(|f| f.set(false));
    conn
}

/// Registers [`enable_qpsg`] as an automatic extension (SQLite's only hook into every
/// `sqlite3_open`; diesel does not expose the handle). Idempotent.
fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `enable_qpsg` has the signature SQLite calls an automatic extension with, and
        // registering one is thread-safe (SQLite serialises the list with its own mutex).
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(enable_qpsg)) };
        if rc != ffi::SQLITE_OK {
            tracing::warn!(code = rc, "cannot register SQLite's stable query plans");
        }
    });
}

/// Runs inside `sqlite3_open_v2` for each new connection.
unsafe extern "C" fn enable_qpsg(
    db: *mut ffi::sqlite3,
    _err: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    if !OPENING_STABLE.with(Cell::get) {
        return ffi::SQLITE_OK;
    }
    // SAFETY: `db` is the connection being opened; the option takes an int and an optional
    // out-pointer (null: not asked).
    unsafe {
        ffi::sqlite3_db_config(
            db,
            ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as c_int,
            std::ptr::null_mut::<c_int>(),
        )
    }
}

/// `users.role = 'resident'` as SQL text, so that the partial index `users_resident_phone`
/// (residents' phone numbers are unique) serves the lookups by phone on SQLite.
pub fn resident_role() -> SqlLiteral<Bool> {
    sql::<Bool>("users.role = 'resident'")
}

/// `tickets.status IN (…)` with `statuses` (not empty) as SQL text, so that the partial indexes
/// of the active tickets (`tickets_active_street`, `tickets_active_community`: `status IN ('open',
/// 'acknowledged')`) serve the filters they cover. The values are the closed set's own names,
/// never a client's bytes, written in declaration order: one statement text per set.
pub fn status_in(statuses: &[Status]) -> SqlLiteral<Bool> {
    let names: Vec<String> = Status::all()
        .iter()
        .filter(|s| statuses.contains(s))
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    sql::<Bool>(&format!("tickets.status IN ({})", names.join(", ")))
}

/// `org_units.kind = 'street'` as SQL text, for the partial index `org_units_street_code`.
pub fn street_kind() -> SqlLiteral<Bool> {
    sql::<Bool>("org_units.kind = 'street'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    /// Opens a raw in-memory connection (with stable plans or not) and returns how many times
    /// `SELECT ?1 LIMIT ?2` was prepared again over `runs` executions with fresh bindings, and
    /// whether the connection reports the stability guarantee on.
    fn reprepares(stable: bool, runs: i64) -> (i32, c_int) {
        let mut db: *mut ffi::sqlite3 = std::ptr::null_mut();
        let name = CString::new(":memory:").unwrap();
        let sql = CString::new("SELECT ?1 LIMIT ?2").unwrap();
        // SAFETY: plain use of the C API on a connection and statement owned by this function.
        unsafe {
            let mut open = || ffi::sqlite3_open(name.as_ptr(), &mut db);
            let rc = if stable {
                open_with_stable_plans(open)
            } else {
                open()
            };
            assert_eq!(rc, ffi::SQLITE_OK);
            let mut qpsg: c_int = -1;
            ffi::sqlite3_db_config(db, ffi::SQLITE_DBCONFIG_ENABLE_QPSG, -1 as c_int, &mut qpsg);
            let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
            let rc = ffi::sqlite3_prepare_v3(
                db,
                sql.as_ptr(),
                -1,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            );
            assert_eq!(rc, ffi::SQLITE_OK);
            for i in 0..runs {
                ffi::sqlite3_reset(stmt);
                ffi::sqlite3_bind_int64(stmt, 1, i);
                ffi::sqlite3_bind_int64(stmt, 2, 1);
                assert_eq!(ffi::sqlite3_step(stmt), ffi::SQLITE_ROW);
                assert_eq!(ffi::sqlite3_column_int64(stmt, 0), i);
            }
            let n = ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_REPREPARE, 0);
            ffi::sqlite3_finalize(stmt);
            ffi::sqlite3_close(db);
            (n, qpsg)
        }
    }

    #[test]
    fn a_cached_statement_with_a_bound_limit_is_planned_once_on_a_stable_connection() {
        let (n, qpsg) = reprepares(true, 50);
        assert_eq!(qpsg, 1, "the connection holds plans stable");
        assert_eq!(n, 0, "re-binding LIMIT ? must not recompile the statement");
    }

    #[test]
    fn other_connections_keep_plans_that_see_bound_values() {
        register();
        let (n, qpsg) = reprepares(false, 50);
        assert_eq!(qpsg, 0, "only connections opened for it hold plans stable");
        // What the setting avoids: SQLite recompiles on every new LIMIT binding.
        assert_eq!(n, 50);
    }
}
