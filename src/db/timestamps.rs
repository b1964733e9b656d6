//! Reading `TIMESTAMP` columns of the hot rows without chrono's format parser on SQLite.
//!
//! SQLite keeps a timestamp as text, and diesel parses it by trying chrono format strings in
//! turn: about 7 % of a SQLite queue request (51 ticket rows, a handful of timestamps each).
//! Every timestamp this service writes has diesel's shape, `YYYY-MM-DD HH:MM:SS[.fraction]`;
//! [`parse`] reads exactly that shape by hand and anything else goes to diesel's own parser,
//! so a value written some other way (a `T`, a zone, a Julian day number) reads as before.
//! PostgreSQL sends timestamps in binary: unchanged.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::sql_types::{Nullable, Timestamp};
use diesel::sqlite::Sqlite;

use super::MultiBackend;

/// A `TIMESTAMP` read with [`parse`] on SQLite (`#[diesel(deserialize_as = Ts)]`).
#[derive(diesel::deserialize::FromSqlRow)]
pub struct Ts(NaiveDateTime);

/// A nullable `TIMESTAMP` read the same way.
#[derive(diesel::deserialize::FromSqlRow)]
pub struct OptTs(Option<NaiveDateTime>);

impl From<Ts> for NaiveDateTime {
    fn from(t: Ts) -> NaiveDateTime {
        t.0
    }
}

impl From<OptTs> for Option<NaiveDateTime> {
    fn from(t: OptTs) -> Option<NaiveDateTime> {
        t.0
    }
}

/// `YYYY-MM-DD HH:MM:SS` with an optional fraction of 1–9 digits; `None` for anything else.
pub fn parse(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let n = num(20, b.len())?;
            n * 10u32.pow(9 - u32::try_from(digits.len()).ok()?)
        }
        _ => return None,
    };
    let year = i32::try_from(num(0, 4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(5, 7)?, num(8, 10)?)?.and_hms_nano_opt(
        num(11, 13)?,
        num(14, 16)?,
        num(17, 19)?,
        nanos,
    )
}

fn from_sqlite(mut value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<NaiveDateTime> {
    match parse(value.read_text()) {
        Some(t) => Ok(t),
        None => <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value),
    }
}

impl FromSql<Timestamp, Sqlite> for Ts {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Ts> {
        from_sqlite(value).map(Ts)
    }
}

impl FromSql<Timestamp, Pg> for Ts {
    fn from_sql(value: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Ts> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Ts)
    }
}

impl FromSql<Timestamp, MultiBackend> for Ts {
    fn from_sql(value: <MultiBackend as Backend>::RawValue<'_>) -> deserialize::Result<Ts> {
        value.from_sql::<Ts, Timestamp>()
    }
}

/// `OptTs` on each backend: NULL is `None`, a value reads as [`Ts`] does.
macro_rules! opt_ts_from_sql {
    ($($backend:ty),*) => {$(
        impl FromSql<Nullable<Timestamp>, $backend> for OptTs {
            fn from_sql(value: <$backend as Backend>::RawValue<'_>) -> deserialize::Result<OptTs> {
                <OptTs as FromSql<Nullable<Timestamp>, $backend>>::from_nullable_sql(Some(value))
            }

            fn from_nullable_sql(
                value: Option<<$backend as Backend>::RawValue<'_>>,
            ) -> deserialize::Result<OptTs> {
                match value {
                    Some(v) => <Ts as FromSql<Timestamp, $backend>>::from_sql(v).map(|t| OptTs(Some(t.0))),
                    None => Ok(OptTs(None)),
                }
            }
        }
    )*};
}

opt_ts_from_sql!(Sqlite, Pg, MultiBackend);

#[cfg(test)]
mod tests {
    use super::parse;
    use chrono::NaiveDateTime;

    /// What diesel's own parser makes of `text` with the format this service writes.
    fn chrono(text: &str) -> Option<NaiveDateTime> {
        NaiveDateTime::parse_from_str(text, "%F %T%.f").ok()
    }

    #[test]
    fn reads_what_diesel_writes_as_chrono_does() {
        for text in [
            "2026-12-01 02:03:05",
            "2026-12-01 02:03:05.1",
            "2026-12-01 02:03:05.123456",
            "2026-12-01 02:03:05.000001",
            "2026-12-01 02:03:05.123456789",
            "9999-12-31 00:00:00",
            "0001-01-01 23:59:59.5",
            "2024-02-29 12:00:00",
        ] {
            assert_eq!(parse(text), chrono(text), "{text}");
            assert!(parse(text).is_some(), "{text}");
        }
        let written = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 58, 999_999))
            .expect("date");
        let text = written.format("%F %T%.f").to_string();
        assert_eq!(parse(&text), Some(written));
    }

    #[test]
    fn leaves_every_other_shape_to_diesel() {
        for text in [
            "2026-12-01T02:03:05",
            "2026-12-01 02:03",
            "2026-12-01 02:03:05Z",
            "2026-12-01 02:03:05+08:00",
            "2026-12-01 02:03:05.",
            "2026-12-01 02:03:05.1234567890",
            "2026-13-01 02:03:05",
            "2025-02-29 02:03:05",
            "2026-12-01 24:00:00",
            "2026-12-01 02:03:60",
            "2026-12-0a 02:03:05",
            "+2026-12-01 02:03:05",
            "2461010.5",
            "",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
