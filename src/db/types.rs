//! The domain's closed sets and ids as column values, written once for both backends: an enum
//! is stored as its text form, and a value the enum does not know is a read error, never a
//! guess. The CHECK constraints of migration 000007 refuse such values on the way in too.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{BigInt, Text};

use crate::domain::callback::{
    CallbackFlag, CallbackLevel, CallbackReason, CallbackState, CallbackVerdict,
};
use crate::domain::channel::Channel;
use crate::domain::ledger::LedgerKind;
use crate::domain::org::OrgKind;
use crate::domain::partner::PartnerSource;
use crate::domain::privacy::AuditAction;
use crate::domain::role::{ActorRole, Role};
use crate::domain::sla::ClockKind;
use crate::domain::ticket::{ClosedBy, EventKind, Level, Source, Status, Urgency};

/// `AsExpression` for a type and its reference, plain and nullable (what the derive writes).
macro_rules! as_expression {
    ($t:ty, $st:ty) => {
        impl diesel::expression::AsExpression<$st> for $t {
            type Expression = diesel::internal::derives::as_expression::Bound<$st, Self>;
            fn as_expression(self) -> Self::Expression {
                diesel::internal::derives::as_expression::Bound::new(self)
            }
        }
        impl<'a> diesel::expression::AsExpression<$st> for &'a $t {
            type Expression = diesel::internal::derives::as_expression::Bound<$st, Self>;
            fn as_expression(self) -> Self::Expression {
                diesel::internal::derives::as_expression::Bound::new(self)
            }
        }
        impl diesel::expression::AsExpression<diesel::sql_types::Nullable<$st>> for $t {
            type Expression = diesel::internal::derives::as_expression::Bound<
                diesel::sql_types::Nullable<$st>,
                Self,
            >;
            fn as_expression(self) -> Self::Expression {
                diesel::internal::derives::as_expression::Bound::new(self)
            }
        }
        impl<'a> diesel::expression::AsExpression<diesel::sql_types::Nullable<$st>> for &'a $t {
            type Expression = diesel::internal::derives::as_expression::Bound<
                diesel::sql_types::Nullable<$st>,
                Self,
            >;
            fn as_expression(self) -> Self::Expression {
                diesel::internal::derives::as_expression::Bound::new(self)
            }
        }
        impl<DB: Backend> ToSql<diesel::sql_types::Nullable<$st>, DB> for $t
        where
            Self: ToSql<$st, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                ToSql::<$st, DB>::to_sql(self, out)
            }
        }

        impl<DB, ST> diesel::deserialize::Queryable<ST, DB> for $t
        where
            DB: Backend,
            ST: diesel::sql_types::SingleValue,
            Self: FromSql<ST, DB>,
        {
            type Row = Self;
            fn build(row: Self) -> deserialize::Result<Self> {
                Ok(row)
            }
        }
    };
}

macro_rules! text_column {
    ($($t:ty),+ $(,)?) => {$(
        as_expression!($t, Text);

        impl<DB: Backend> ToSql<Text, DB> for $t
        where
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<Text, DB> for $t
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let s = String::from_sql(bytes)?;
                <$t>::parse(&s).ok_or_else(|| {
                    format!(concat!("unknown ", stringify!($t), " in the database: {:?}"), s).into()
                })
            }
        }
    )+};
}

text_column!(
    Status,
    Source,
    Level,
    Urgency,
    EventKind,
    ClosedBy,
    Role,
    ActorRole,
    OrgKind,
    Channel,
    ClockKind,
    AuditAction,
    CallbackReason,
    CallbackFlag,
    CallbackState,
    CallbackVerdict,
    CallbackLevel,
    LedgerKind,
    PartnerSource
);

macro_rules! id_column {
    ($($t:ty),+ $(,)?) => {$(
        as_expression!($t, BigInt);

        impl<DB: Backend> ToSql<BigInt, DB> for $t
        where
            i64: ToSql<BigInt, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<BigInt, DB> for $t
        where
            i64: FromSql<BigInt, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                Ok(Self(i64::from_sql(bytes)?))
            }
        }
    )+};
}

id_column!(
    crate::domain::ids::TicketId,
    crate::domain::ids::UserId,
    crate::domain::ids::UnitId
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::text_enum::TextEnum;

    const PG_CHECKS: &str =
        include_str!("../../migrations/postgres/2026-11-29-000007_closed_set_checks/up.sql");
    const SQLITE_CHECKS: &str =
        include_str!("../../migrations/sqlite/2026-11-29-000007_closed_set_checks/up.sql");
    /// Migration 000010 widens some of 000007's checks and adds new ones: its definition wins.
    const PG_WIDER: &str =
        include_str!("../../migrations/postgres/2026-11-30-000010_accountability/up.sql");
    const SQLITE_WIDER: &str =
        include_str!("../../migrations/sqlite/2026-11-30-000010_accountability/up.sql");
    /// Migration 000013 widens again (closed_by, event kinds) and creates the callback and
    /// ledger tables with their checks inline.
    const PG_CALLBACKS: &str =
        include_str!("../../migrations/postgres/2026-11-30-000013_callbacks/up.sql");
    const SQLITE_CALLBACKS: &str =
        include_str!("../../migrations/sqlite/2026-11-30-000013_callbacks/up.sql");

    fn values<T: TextEnum>() -> String {
        T::all()
            .iter()
            .map(|v| format!("'{}'", v.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The values the migrations allow in `table.column`, as written there.
    fn allowed(sql: &str, table: &str, column: &str, marker: &str) -> String {
        try_allowed(sql, table, column, marker)
            .unwrap_or_else(|| panic!("no check for {table}.{column}"))
    }

    /// The newest definition: the first of `migrations` (newest first) that has one.
    fn newest(migrations: &[&str], table: &str, column: &str, marker: &str) -> String {
        migrations
            .iter()
            .find_map(|sql| try_allowed(sql, table, column, marker))
            .unwrap_or_else(|| panic!("no check for {table}.{column}"))
    }

    /// A check written inline in `CREATE TABLE table (…)`: `column TEXT … IN (…)`.
    fn inline_allowed(sql: &str, table: &str, column: &str) -> String {
        let body = sql
            .split(&format!("CREATE TABLE {table} ("))
            .nth(1)
            .unwrap_or_else(|| panic!("no table {table}"));
        let line = body
            .lines()
            .take_while(|l| !l.starts_with(");"))
            .find(|l| l.trim_start().starts_with(&format!("{column} ")) && l.contains(" IN ("))
            .unwrap_or_else(|| panic!("no check for {table}.{column}"));
        let start = line.find(" IN (").expect("IN list") + 5;
        let end = line[start..].find(')').expect("closing parenthesis") + start;
        line[start..end].to_string()
    }

    #[test]
    fn the_new_tables_check_exactly_the_values_the_code_knows() {
        use crate::domain::callback::{
            CallbackFlag, CallbackLevel, CallbackReason, CallbackState, CallbackVerdict,
        };
        use crate::domain::ledger::LedgerKind;
        let cases: Vec<(&str, &str, String)> = vec![
            ("callbacks", "closed_by", values::<ClosedBy>()),
            ("callbacks", "closed_level", values::<Level>()),
            ("callbacks", "reason", values::<CallbackReason>()),
            ("callbacks", "flag", values::<CallbackFlag>()),
            ("callbacks", "assigned_level", values::<CallbackLevel>()),
            ("callbacks", "state", values::<CallbackState>()),
            ("callbacks", "verdict", values::<CallbackVerdict>()),
            ("ledger_entries", "level", values::<Level>()),
            ("ledger_entries", "kind", values::<LedgerKind>()),
        ];
        for (table, column, expected) in cases {
            for sql in [PG_CALLBACKS, SQLITE_CALLBACKS] {
                assert_eq!(
                    inline_allowed(sql, table, column),
                    expected,
                    "{table}.{column}"
                );
            }
        }
    }

    fn try_allowed(sql: &str, table: &str, column: &str, marker: &str) -> Option<String> {
        let line = sql
            .lines()
            .skip_while(|l| !l.contains(marker) || !l.contains(table))
            .find(|l| {
                l.contains(&format!("{column} NOT IN (")) || l.contains(&format!("{column} IN ("))
            })?;
        let start = line.find(" IN (").expect("IN list") + 5;
        let end = line[start..].find(')').expect("closing parenthesis") + start;
        Some(line[start..end].to_string())
    }

    #[test]
    fn the_checks_allow_exactly_the_values_the_code_knows() {
        let cases: Vec<(&str, &str, String)> = vec![
            ("tickets", "status", values::<Status>()),
            ("tickets", "level", values::<Level>()),
            ("tickets", "urgency", values::<Urgency>()),
            ("tickets", "closed_by", values::<ClosedBy>()),
            ("tickets", "source", values::<Source>()),
            ("tickets", "raised_level", values::<Level>()),
            ("ticket_events", "actor_role", values::<ActorRole>()),
            ("ticket_events", "action", values::<EventKind>()),
            ("ticket_events", "status_before", values::<Status>()),
            ("ticket_events", "level_after", values::<Level>()),
            ("notifications", "channel", values::<Channel>()),
            ("ticket_stats", "status", values::<Status>()),
            ("ticket_stays", "level", values::<Level>()),
            ("ticket_stats", "closed_by", values::<ClosedBy>()),
            (
                "org_units",
                "callback_level",
                values::<crate::domain::callback::CallbackLevel>(),
            ),
        ];
        for (table, column, expected) in cases {
            let pg_marker = format!("ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_check");
            assert_eq!(
                newest(
                    &[PG_CALLBACKS, PG_WIDER, PG_CHECKS],
                    table,
                    column,
                    &pg_marker
                ),
                expected,
                "postgres {table}.{column}"
            );
            let sqlite_marker = format!("CREATE TRIGGER {table}_{column}_check_insert");
            assert_eq!(
                newest(
                    &[SQLITE_CALLBACKS, SQLITE_WIDER, SQLITE_CHECKS],
                    table,
                    column,
                    &sqlite_marker
                ),
                expected,
                "sqlite {table}.{column}"
            );
        }
    }

    /// Migration 000012 widens the audit log's actions and adds the partner keys' source.
    const PG_KEYS: &str =
        include_str!("../../migrations/postgres/2026-11-30-000012_api_keys/up.sql");
    const SQLITE_KEYS: &str =
        include_str!("../../migrations/sqlite/2026-11-30-000012_api_keys/up.sql");

    #[test]
    fn the_audit_log_checks_allow_exactly_the_values_the_code_knows() {
        const PG: &str =
            include_str!("../../migrations/postgres/2026-11-29-000009_personal_data/up.sql");
        const SQLITE: &str =
            include_str!("../../migrations/sqlite/2026-11-29-000009_personal_data/up.sql");
        for (column, expected) in [
            ("action", values::<AuditAction>()),
            ("actor_role", values::<ActorRole>()),
        ] {
            let pg_marker =
                format!("ALTER TABLE audit_log ADD CONSTRAINT audit_log_{column}_check");
            assert_eq!(
                newest(&[PG_KEYS, PG], "audit_log", column, &pg_marker),
                expected
            );
            let sqlite_marker = format!("CREATE TRIGGER audit_log_{column}_check_insert");
            assert_eq!(
                newest(&[SQLITE_KEYS, SQLITE], "audit_log", column, &sqlite_marker),
                expected
            );
        }
    }

    #[test]
    fn the_api_key_source_check_allows_exactly_the_partner_sources() {
        let expected = values::<PartnerSource>();
        let pg_marker = "ALTER TABLE api_keys ADD CONSTRAINT api_keys_source_check";
        assert_eq!(allowed(PG_KEYS, "api_keys", "source", pg_marker), expected);
        let sqlite_marker = "CREATE TRIGGER api_keys_source_check_insert";
        assert_eq!(
            allowed(SQLITE_KEYS, "api_keys", "source", sqlite_marker),
            expected
        );
    }
}
