//! SQLite's query planner, held to plans that do not depend on bound values.
//!
//! By default SQLite lets a bound value shape a statement's plan: a `LIMIT ?` (every diesel
//! `.first()` and `.limit(n)`) or a `col = ?` compared with a partial index's condition marks
//! the statement "to be recompiled when this parameter is bound again". diesel binds every
//! parameter afresh on each execution, so such statements were parsed and planned again on
//! every run although they sit in the statement cache: on the create path that was about a
//! tenth of the writer thread's time. The query planner stability guarantee
//! (`SQLITE_DBCONFIG_ENABLE_QPSG`) switches that off, so a cached statement is planned once.
//!
//! The price: a partial index is used only when the query states its condition literally (a
//! bound `role = ?` no longer proves `WHERE role = 'resident'`). The queries that rely on a
//! partial index write the condition as SQL text: [`resident_role`], [`street_kind`], and the
//! dispatcher's claim.

use std::ffi::{c_char, c_int};
use std::sync::Once;

use diesel::dsl::sql;
use diesel::expression::SqlLiteral;
use diesel::sql_types::Bool;
use libsqlite3_sys as ffi;

/// Makes every SQLite connection this process opens from now on plan independently of bound
/// values. Idempotent; called before the first connection is opened.
pub fn hold_plans_stable() {
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

/// `org_units.kind = 'street'` as SQL text, for the partial index `org_units_street_code`.
pub fn street_kind() -> SqlLiteral<Bool> {
    sql::<Bool>("org_units.kind = 'street'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    /// Opens a raw in-memory connection (after [`hold_plans_stable`]) and returns how many times
    /// `SELECT ?1 LIMIT ?2` was prepared again over `runs` executions with fresh bindings, and
    /// whether the connection reports the stability guarantee on.
    fn reprepares(runs: i64) -> (i32, c_int) {
        hold_plans_stable();
        let mut db: *mut ffi::sqlite3 = std::ptr::null_mut();
        let name = CString::new(":memory:").unwrap();
        let sql = CString::new("SELECT ?1 LIMIT ?2").unwrap();
        // SAFETY: plain use of the C API on a connection and statement owned by this function.
        unsafe {
            assert_eq!(ffi::sqlite3_open(name.as_ptr(), &mut db), ffi::SQLITE_OK);
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
    fn a_cached_statement_with_a_bound_limit_is_planned_once() {
        let (n, qpsg) = reprepares(50);
        assert_eq!(
            qpsg, 1,
            "connections opened after registration hold plans stable"
        );
        assert_eq!(n, 0, "re-binding LIMIT ? must not recompile the statement");
    }
}
