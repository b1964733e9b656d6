//! One year's holiday file: public holidays and 调休 make-up days, read from TOML or JSON and
//! validated.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::CalendarError;

/// The only time zone a year file may name: the street office works on Beijing time, and a file
/// naming another zone was most likely written for somewhere else.
pub const TIME_ZONE_NAME: &str = "Asia/Shanghai";

/// A public holiday: consecutive days off, `from` and `to` inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HolidayRange {
    /// The holiday's name, e.g. `春节`.
    pub name: String,
    /// First day off.
    pub from: NaiveDate,
    /// Last day off (inclusive).
    pub to: NaiveDate,
}

/// One year's holiday file exactly as written (TOML) or uploaded (JSON), before validation.
///
/// Unknown fields are rejected: a misspelt `off` would otherwise silently drop every holiday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct YearCalendarSpec {
    /// The calendar year every date belongs to.
    pub year: i32,
    /// Must be `Asia/Shanghai`.
    pub timezone: String,
    /// Make-up working days (调休): working even on a Saturday or Sunday.
    #[serde(default)]
    pub work: Vec<NaiveDate>,
    /// Public holidays: not working even on a weekday.
    #[serde(default)]
    pub off: Vec<HolidayRange>,
}

/// One year's validated public holidays and make-up working days.
///
/// Serializes as, and deserializes (with validation) from, the same shape as
/// [`YearCalendarSpec`], in TOML or JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "YearCalendarSpec", into = "YearCalendarSpec")]
pub struct YearCalendar {
    spec: YearCalendarSpec,
    off_days: BTreeSet<NaiveDate>,
    work_days: BTreeSet<NaiveDate>,
}

impl YearCalendar {
    /// Parses and validates a year file in TOML.
    ///
    /// Make-up days may be listed at the top level or, as in the published files, in a `work`
    /// line placed after the `[[off]]` tables (which TOML attaches to the last holiday); both are
    /// merged into the year's list.
    pub fn from_toml_str(text: &str) -> Result<Self, CalendarError> {
        let file: TomlYearFile = toml::from_str(text)?;
        YearCalendar::try_from(YearCalendarSpec::from(file))
    }

    /// Writes the calendar back as TOML that [`YearCalendar::from_toml_str`] reads unchanged.
    pub fn to_toml_string(&self) -> Result<String, CalendarError> {
        Ok(toml::to_string(&self.spec)?)
    }

    /// The year this calendar covers.
    pub fn year(&self) -> i32 {
        self.spec.year
    }

    /// The public holidays, in file order.
    pub fn off(&self) -> &[HolidayRange] {
        &self.spec.off
    }

    /// The make-up working days, in file order.
    pub fn work(&self) -> &[NaiveDate] {
        &self.spec.work
    }

    /// The calendar as written.
    pub fn spec(&self) -> &YearCalendarSpec {
        &self.spec
    }

    /// Whether `date` falls within a public holiday.
    pub fn is_off(&self, date: NaiveDate) -> bool {
        self.off_days.contains(&date)
    }

    /// Whether `date` is a declared make-up working day.
    pub fn is_make_up_day(&self, date: NaiveDate) -> bool {
        self.work_days.contains(&date)
    }
}

impl TryFrom<YearCalendarSpec> for YearCalendar {
    type Error = CalendarError;

    fn try_from(spec: YearCalendarSpec) -> Result<Self, Self::Error> {
        if spec.timezone != TIME_ZONE_NAME {
            return Err(CalendarError::TimeZone(spec.timezone));
        }
        let year = spec.year;
        let in_year = |date: NaiveDate| {
            if date.year() == year {
                Ok(())
            } else {
                Err(CalendarError::DateOutsideYear { date, year })
            }
        };

        // Remembers which holiday claimed each day, to name both sides of a conflict.
        let mut off_by_day: BTreeMap<NaiveDate, &str> = BTreeMap::new();
        for range in &spec.off {
            if range.name.trim().is_empty() {
                return Err(CalendarError::EmptyName { from: range.from });
            }
            if let Err(e) = crate::domain::validate::text("name", &range.name, 40) {
                return Err(CalendarError::InvalidName {
                    from: range.from,
                    reason: e.message,
                });
            }
            in_year(range.from)?;
            in_year(range.to)?;
            if range.from > range.to {
                return Err(CalendarError::InvertedRange {
                    name: range.name.clone(),
                    from: range.from,
                    to: range.to,
                });
            }
            for date in range.from.iter_days().take_while(|d| *d <= range.to) {
                if let Some(first) = off_by_day.insert(date, &range.name) {
                    return Err(CalendarError::OverlappingOff {
                        first: first.to_owned(),
                        second: range.name.clone(),
                        date,
                    });
                }
            }
        }

        let mut work_days = BTreeSet::new();
        for &date in &spec.work {
            in_year(date)?;
            if let Some(name) = off_by_day.get(&date) {
                return Err(CalendarError::OffAndWork {
                    date,
                    name: (*name).to_owned(),
                });
            }
            if !work_days.insert(date) {
                return Err(CalendarError::DuplicateWork(date));
            }
        }

        let off_days = off_by_day.into_keys().collect();
        Ok(YearCalendar {
            spec,
            off_days,
            work_days,
        })
    }
}

impl From<YearCalendar> for YearCalendarSpec {
    fn from(calendar: YearCalendar) -> Self {
        calendar.spec
    }
}

/// The TOML layout of a year file. It differs from [`YearCalendarSpec`] only in letting each
/// holiday carry make-up days: a `work = [...]` line written after the `[[off]]` tables belongs,
/// by TOML's rules, to the last holiday, and reading it strictly would drop every make-up day.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlYearFile {
    year: i32,
    timezone: String,
    #[serde(default)]
    work: Vec<NaiveDate>,
    #[serde(default)]
    off: Vec<TomlHoliday>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlHoliday {
    name: String,
    from: NaiveDate,
    to: NaiveDate,
    #[serde(default)]
    work: Vec<NaiveDate>,
}

impl From<TomlYearFile> for YearCalendarSpec {
    fn from(file: TomlYearFile) -> Self {
        let mut work = file.work;
        let off = file
            .off
            .into_iter()
            .map(|holiday| {
                work.extend(holiday.work);
                HolidayRange {
                    name: holiday.name,
                    from: holiday.from,
                    to: holiday.to,
                }
            })
            .collect();
        YearCalendarSpec {
            year: file.year,
            timezone: file.timezone,
            work,
            off,
        }
    }
}
