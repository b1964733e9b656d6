//! The working-time calendar of a Chinese street office: which days are working days (weekdays,
//! public holidays and 调休 make-up days, year by year), which hours of them count, and SLA
//! arithmetic in working time.
//!
//! Days and hours are reckoned in Beijing time (`Asia/Shanghai`); instants are UTC. Durations of
//! working time are measured between real instants, so `working_between` is the exact inverse of
//! `add_working` whatever the zone's history.

mod hours;
mod year;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Asia::Shanghai;

pub use hours::{WorkingHours, WorkingInterval};
pub use year::{HolidayRange, YearCalendar, YearCalendarSpec, TIME_ZONE_NAME};

/// Why a calendar or its working hours were rejected.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The TOML text is malformed or does not have the calendar's shape (this includes dates
    /// that do not exist, such as `2026-02-30`).
    #[error("invalid calendar TOML: {0}")]
    Parse(Box<toml::de::Error>),
    /// The calendar could not be written as TOML.
    #[error("cannot write calendar as TOML: {0}")]
    Serialize(Box<toml::ser::Error>),
    /// The file names a time zone other than `Asia/Shanghai`.
    #[error("time zone must be {TIME_ZONE_NAME}, not {0:?}")]
    TimeZone(String),
    /// A date lies outside the year the file is for.
    #[error("{date} is outside the calendar's year {year}")]
    DateOutsideYear {
        /// The offending date.
        date: NaiveDate,
        /// The year the file declares.
        year: i32,
    },
    /// A holiday has no name.
    #[error("a holiday starting {from} has an empty name")]
    EmptyName {
        /// First day of the unnamed holiday.
        from: NaiveDate,
    },
    /// A holiday's name holds control characters, bidi controls or nothing visible.
    #[error("a holiday starting {from} has an invalid name: {reason}")]
    InvalidName {
        /// First day of the holiday.
        from: NaiveDate,
        /// What the text check said.
        reason: String,
    },
    /// A holiday ends before it starts.
    #[error("holiday {name:?} ends ({to}) before it starts ({from})")]
    InvertedRange {
        /// The holiday's name.
        name: String,
        /// Its first day.
        from: NaiveDate,
        /// Its last day.
        to: NaiveDate,
    },
    /// Two holidays share a day.
    #[error("holidays {first:?} and {second:?} overlap on {date}")]
    OverlappingOff {
        /// The earlier-listed holiday.
        first: String,
        /// The later-listed holiday.
        second: String,
        /// A day both cover.
        date: NaiveDate,
    },
    /// A make-up working day is listed twice.
    #[error("{0} is listed as a make-up working day more than once")]
    DuplicateWork(NaiveDate),
    /// A day is both a holiday and a make-up working day.
    #[error("{date} is both a holiday ({name:?}) and a make-up working day")]
    OffAndWork {
        /// The contradictory day.
        date: NaiveDate,
        /// The holiday that covers it.
        name: String,
    },
    /// A weekday's working hours are malformed.
    #[error("working hours on {weekday}: {reason}")]
    InvalidHours {
        /// The weekday whose hours are wrong.
        weekday: Weekday,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// No weekday has working hours, so no deadline could ever be reached.
    #[error("working hours leave every weekday empty")]
    NoWorkingHours,
}

impl From<toml::de::Error> for CalendarError {
    fn from(e: toml::de::Error) -> Self {
        CalendarError::Parse(Box::new(e))
    }
}

impl From<toml::ser::Error> for CalendarError {
    fn from(e: toml::ser::Error) -> Self {
        CalendarError::Serialize(Box::new(e))
    }
}

/// How a single local day is treated.
enum DayRule {
    /// A declared make-up day: works Monday's hours whatever its weekday.
    MakeUp,
    /// A declared public holiday.
    Off,
    /// Neither: the weekday's ordinary hours apply.
    Ordinary,
}

/// Working hours plus the per-year holiday files: answers "is this working time?" and does the
/// SLA arithmetic.
///
/// A year with no file falls back to ordinary weekday hours; such years are logged once and
/// reported by [`WorkCalendar::fallback_years`] so the service can tell an administrator to
/// upload that year's file.
#[derive(Debug)]
pub struct WorkCalendar {
    hours: WorkingHours,
    years: BTreeMap<i32, YearCalendar>,
    // Behind a mutex because the lookups that discover a missing year take `&self`, and the
    // calendar is shared between request handlers.
    fallback: Mutex<BTreeSet<i32>>,
}

impl Default for WorkCalendar {
    /// Default working hours and no year files.
    fn default() -> Self {
        WorkCalendar::new(WorkingHours::default(), [])
    }
}

impl Clone for WorkCalendar {
    fn clone(&self) -> Self {
        WorkCalendar {
            hours: self.hours.clone(),
            years: self.years.clone(),
            fallback: Mutex::new(self.fallback_set().clone()),
        }
    }
}

impl WorkCalendar {
    /// Builds a calendar; a later year file for the same year replaces an earlier one.
    pub fn new(hours: WorkingHours, years: impl IntoIterator<Item = YearCalendar>) -> Self {
        WorkCalendar {
            hours,
            years: years.into_iter().map(|y| (y.year(), y)).collect(),
            fallback: Mutex::new(BTreeSet::new()),
        }
    }

    /// Adds or replaces one year's file, returning the one it replaced.
    pub fn insert_year(&mut self, calendar: YearCalendar) -> Option<YearCalendar> {
        let year = calendar.year();
        // The year is no longer guessed, so it must stop being reported as such.
        self.fallback
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&year);
        self.years.insert(year, calendar)
    }

    /// The working hours of ordinary days.
    pub fn hours(&self) -> &WorkingHours {
        &self.hours
    }

    /// The loaded year files, by year.
    pub fn years(&self) -> &BTreeMap<i32, YearCalendar> {
        &self.years
    }

    /// Years that some computation needed but that have no file, so were treated as plain
    /// Monday-to-Friday years; ascending.
    pub fn fallback_years(&self) -> Vec<i32> {
        self.fallback_set().iter().copied().collect()
    }

    /// Whether `date` (a local date) is a working day: in a year with a file, a make-up day is
    /// working and a holiday is not; otherwise the weekday decides (by default Monday to Friday).
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.rule(date) {
            DayRule::MakeUp => true,
            DayRule::Off => false,
            DayRule::Ordinary => !self.hours.for_weekday(date.weekday()).is_empty(),
        }
    }

    /// The total working time on `date` (a local date).
    pub fn working_time_on(&self, date: NaiveDate) -> Duration {
        self.intervals(date).map(|(start, end)| end - start).sum()
    }

    /// Whether `t` lies inside working time (intervals include their start, not their end).
    pub fn is_working_instant(&self, t: DateTime<Utc>) -> bool {
        self.intervals(local_date(t))
            .any(|(start, end)| start <= t && t < end)
    }

    /// `t` itself if it is working time, else the start of the next working interval.
    pub fn next_working_instant(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut date = local_date(t);
        loop {
            if let Some((start, _)) = self.intervals(date).find(|&(_, end)| end > t) {
                return start.max(t);
            }
            date = match date.succ_opt() {
                Some(next) => next,
                None => return DateTime::<Utc>::MAX_UTC,
            };
        }
    }

    /// The instant at which `d` of working time has elapsed after `start`.
    ///
    /// Counting begins at the next working interval if `start` is outside working time. A zero
    /// or negative `d` returns `start` unchanged. For a positive `d` the result is working time
    /// or the very end of a working interval (a deadline that fills the morning is 12:00, not
    /// 14:00). Whole days are skipped by their total, so the cost grows with the number of
    /// calendar days spanned, not with the duration's resolution.
    pub fn add_working(&self, start: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        if d <= Duration::zero() {
            return start;
        }
        let mut remaining = d;
        let mut date = local_date(start);

        // The first day may be entered part-way through, so it is walked interval by interval.
        for (interval_start, end) in self.intervals(date) {
            if end <= start {
                continue;
            }
            let from = interval_start.max(start);
            let available = end - from;
            if remaining <= available {
                return from + remaining;
            }
            remaining -= available;
        }

        loop {
            date = match date.succ_opt() {
                Some(next) => next,
                None => return DateTime::<Utc>::MAX_UTC,
            };
            let total = self.working_time_on(date);
            if remaining > total {
                remaining -= total;
                continue;
            }
            for (interval_start, end) in self.intervals(date) {
                let available = end - interval_start;
                if remaining <= available {
                    return interval_start + remaining;
                }
                remaining -= available;
            }
        }
    }

    /// The working time within `[a, b)`; zero if `b <= a`.
    pub fn working_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        if b <= a {
            return Duration::zero();
        }
        let last = local_date(b);
        let mut date = local_date(a);
        let mut total = Duration::zero();
        loop {
            for (start, end) in self.intervals(date) {
                let from = start.max(a);
                let to = end.min(b);
                if to > from {
                    total += to - from;
                }
            }
            if date >= last {
                return total;
            }
            date = match date.succ_opt() {
                Some(next) => next,
                None => return total,
            };
        }
    }

    fn rule(&self, date: NaiveDate) -> DayRule {
        match self.years.get(&date.year()) {
            Some(year) if year.is_make_up_day(date) => DayRule::MakeUp,
            Some(year) if year.is_off(date) => DayRule::Off,
            Some(_) => DayRule::Ordinary,
            None => {
                self.note_fallback(date.year());
                DayRule::Ordinary
            }
        }
    }

    fn day_hours(&self, date: NaiveDate) -> &[WorkingInterval] {
        match self.rule(date) {
            DayRule::MakeUp => self.hours.for_weekday(Weekday::Mon),
            DayRule::Off => &[],
            DayRule::Ordinary => self.hours.for_weekday(date.weekday()),
        }
    }

    /// The working intervals of a local date as UTC instants, in order.
    fn intervals(
        &self,
        date: NaiveDate,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        self.day_hours(date)
            .iter()
            .map(move |&(start, end)| (local_to_utc(date, start), local_to_utc(date, end)))
    }

    fn note_fallback(&self, year: i32) {
        let mut seen = self.fallback.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.insert(year) {
            tracing::warn!(
                year,
                "no holiday calendar loaded for this year; treating it as plain weekdays"
            );
        }
    }

    fn fallback_set(&self) -> std::sync::MutexGuard<'_, BTreeSet<i32>> {
        self.fallback.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Shanghai).date_naive()
}

/// The end of `t`'s day in Beijing time (the next local midnight).
pub fn end_of_local_day(t: DateTime<Utc>) -> DateTime<Utc> {
    let next = local_date(t).succ_opt().unwrap_or(NaiveDate::MAX);
    local_to_utc(next, NaiveTime::MIN)
}

/// The first instant of the local (Beijing) day `t` falls in.
pub fn local_day_of(t: DateTime<Utc>) -> DateTime<Utc> {
    local_to_utc(local_date(t), NaiveTime::MIN)
}

/// The first instant of local (Beijing) day `date`.
pub fn local_day_start(date: NaiveDate) -> DateTime<Utc> {
    local_to_utc(date, NaiveTime::MIN)
}

fn local_to_utc(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let local = date.and_time(time);
    match Shanghai.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        // Only inside the 1986–1991 summer-time gaps; UTC+8 is the zone's standard offset.
        LocalResult::None => {
            let utc = local
                .checked_sub_signed(Duration::hours(8))
                .unwrap_or(local);
            Utc.from_utc_datetime(&utc)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hours::hm;
    use super::*;

    const FILE_2026: &str = include_str!("../../../config/calendars/2026.toml");

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A Beijing wall-clock time as a UTC instant.
    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Shanghai
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn year_2026() -> YearCalendar {
        YearCalendar::from_toml_str(FILE_2026).unwrap()
    }

    fn cal() -> WorkCalendar {
        WorkCalendar::new(WorkingHours::default(), [year_2026()])
    }

    fn hours(h: i64) -> Duration {
        Duration::hours(h)
    }

    fn minutes(m: i64) -> Duration {
        Duration::minutes(m)
    }

    fn spec_toml(body: &str) -> String {
        format!("year = 2026\ntimezone = \"Asia/Shanghai\"\n{body}")
    }

    // --- working hours ---

    #[test]
    fn default_weekday_has_seven_working_hours() {
        let h = WorkingHours::default();
        for wd in [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ] {
            assert_eq!(h.day_length(wd), hours(7));
        }
    }

    #[test]
    fn default_weekend_has_no_working_hours() {
        let h = WorkingHours::default();
        assert!(h.for_weekday(Weekday::Sat).is_empty());
        assert!(h.for_weekday(Weekday::Sun).is_empty());
    }

    #[test]
    fn working_hours_reject_an_interval_that_ends_before_it_starts() {
        let mut days: [Vec<WorkingInterval>; 7] = Default::default();
        days[0] = vec![(hm(12, 0), hm(8, 30))];
        assert!(matches!(
            WorkingHours::new(days),
            Err(CalendarError::InvalidHours {
                weekday: Weekday::Mon,
                ..
            })
        ));
    }

    #[test]
    fn working_hours_reject_overlapping_intervals() {
        let mut days: [Vec<WorkingInterval>; 7] = Default::default();
        days[2] = vec![(hm(8, 0), hm(12, 0)), (hm(11, 0), hm(13, 0))];
        assert!(matches!(
            WorkingHours::new(days),
            Err(CalendarError::InvalidHours {
                weekday: Weekday::Wed,
                ..
            })
        ));
    }

    #[test]
    fn working_hours_reject_a_week_without_any_hours() {
        let days: [Vec<WorkingInterval>; 7] = Default::default();
        assert!(matches!(
            WorkingHours::new(days),
            Err(CalendarError::NoWorkingHours)
        ));
    }

    #[test]
    fn working_hours_deserialize_with_validation() {
        let ok = r#"[[["08:30:00","12:00:00"]],[],[],[],[],[],[]]"#;
        let h: WorkingHours = serde_json::from_str(ok).unwrap();
        assert_eq!(h.day_length(Weekday::Mon), Duration::minutes(210));
        let bad = r#"[[["12:00:00","08:30:00"]],[],[],[],[],[],[]]"#;
        assert!(serde_json::from_str::<WorkingHours>(bad).is_err());
    }

    // --- year files ---

    #[test]
    fn parses_the_2026_file() {
        let y = year_2026();
        assert_eq!(y.year(), 2026);
        assert_eq!(y.off().len(), 7);
        assert_eq!(y.off()[1].name, "春节");
        assert_eq!(y.off()[1].from, date(2026, 2, 15));
        assert_eq!(y.off()[1].to, date(2026, 2, 23));
        assert_eq!(
            y.work(),
            &[
                date(2026, 1, 4),
                date(2026, 2, 14),
                date(2026, 2, 28),
                date(2026, 5, 9),
                date(2026, 9, 20),
                date(2026, 10, 10),
            ]
        );
    }

    #[test]
    fn every_2026_make_up_day_falls_on_a_weekend() {
        for d in year_2026().work() {
            assert!(
                matches!(d.weekday(), Weekday::Sat | Weekday::Sun),
                "{d} is a {}",
                d.weekday()
            );
        }
    }

    #[test]
    fn year_2026_has_248_working_days() {
        let c = cal();
        let count = date(2026, 1, 1)
            .iter_days()
            .take_while(|d| d.year() == 2026)
            .filter(|d| c.is_working_day(*d))
            .count();
        assert_eq!(count, 248);
        assert!(c.fallback_years().is_empty());
    }

    #[test]
    fn published_layout_with_work_after_the_holidays_keeps_the_make_up_days() {
        // In the shipped file `work` follows the last `[[off]]` table, so TOML nests it there.
        let raw: toml::Table = toml::from_str(FILE_2026).unwrap();
        assert!(!raw.contains_key("work"));
        assert_eq!(year_2026().work().len(), 6);
    }

    #[test]
    fn strict_serde_reading_of_the_published_layout_fails_instead_of_dropping_days() {
        assert!(toml::from_str::<YearCalendar>(FILE_2026).is_err());
    }

    #[test]
    fn top_level_and_nested_make_up_days_are_merged() {
        let text = spec_toml(
            "work = [\"2026-01-04\"]\n[[off]]\nname = \"春节\"\nfrom = \"2026-02-15\"\nto = \"2026-02-23\"\n\
             work = [\"2026-02-14\", \"2026-02-28\"]\n",
        );
        let y = YearCalendar::from_toml_str(&text).unwrap();
        assert_eq!(
            y.work(),
            &[date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28)]
        );
    }

    #[test]
    fn written_toml_puts_make_up_days_at_the_top_level() {
        let text = year_2026().to_toml_string().unwrap();
        let raw: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(raw["work"].as_array().map(Vec::len), Some(6));
        assert_eq!(toml::from_str::<YearCalendar>(&text).unwrap(), year_2026());
    }

    #[test]
    fn toml_round_trip_preserves_the_calendar() {
        let y = year_2026();
        let text = y.to_toml_string().unwrap();
        assert_eq!(YearCalendar::from_toml_str(&text).unwrap(), y);
    }

    #[test]
    fn json_with_the_same_fields_is_accepted() {
        let json = r#"{"year":2026,"timezone":"Asia/Shanghai",
            "off":[{"name":"元旦","from":"2026-01-01","to":"2026-01-03"}],
            "work":["2026-01-04"]}"#;
        let y: YearCalendar = serde_json::from_str(json).unwrap();
        assert!(y.is_off(date(2026, 1, 2)));
        assert!(y.is_make_up_day(date(2026, 1, 4)));
    }

    #[test]
    fn json_round_trip_preserves_the_calendar() {
        let y = year_2026();
        let json = serde_json::to_string(&y).unwrap();
        assert_eq!(serde_json::from_str::<YearCalendar>(&json).unwrap(), y);
    }

    #[test]
    fn json_upload_is_validated_like_toml() {
        let json = r#"{"year":2027,"timezone":"Asia/Shanghai",
            "off":[{"name":"元旦","from":"2026-12-31","to":"2027-01-01"}],"work":[]}"#;
        let err = serde_json::from_str::<YearCalendar>(json).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }

    #[test]
    fn toml_rejects_a_date_that_does_not_exist() {
        let text = spec_toml(
            "work = []\n[[off]]\nname = \"x\"\nfrom = \"2026-02-30\"\nto = \"2026-03-01\"\n",
        );
        assert!(matches!(
            YearCalendar::from_toml_str(&text),
            Err(CalendarError::Parse(_))
        ));
    }

    #[test]
    fn toml_rejects_a_day_that_is_both_off_and_work() {
        let text = spec_toml(
            "work = [\"2026-10-03\"]\n[[off]]\nname = \"国庆节\"\nfrom = \"2026-10-01\"\nto = \"2026-10-07\"\n",
        );
        match YearCalendar::from_toml_str(&text) {
            Err(CalendarError::OffAndWork { date: d, name }) => {
                assert_eq!(d, date(2026, 10, 3));
                assert_eq!(name, "国庆节");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn toml_rejects_dates_outside_the_year() {
        let text = spec_toml("work = [\"2027-01-02\"]\n");
        assert!(matches!(
            YearCalendar::from_toml_str(&text),
            Err(CalendarError::DateOutsideYear { year: 2026, .. })
        ));
    }

    #[test]
    fn toml_rejects_a_holiday_that_ends_before_it_starts() {
        let text = spec_toml("[[off]]\nname = \"x\"\nfrom = \"2026-05-05\"\nto = \"2026-05-01\"\n");
        assert!(matches!(
            YearCalendar::from_toml_str(&text),
            Err(CalendarError::InvertedRange { .. })
        ));
    }

    #[test]
    fn toml_rejects_overlapping_holidays() {
        let text = spec_toml(
            "[[off]]\nname = \"a\"\nfrom = \"2026-05-01\"\nto = \"2026-05-05\"\n\
             [[off]]\nname = \"b\"\nfrom = \"2026-05-05\"\nto = \"2026-05-06\"\n",
        );
        assert!(matches!(
            YearCalendar::from_toml_str(&text),
            Err(CalendarError::OverlappingOff { .. })
        ));
    }

    #[test]
    fn toml_rejects_a_repeated_make_up_day() {
        let text = spec_toml("work = [\"2026-02-14\", \"2026-02-14\"]\n");
        assert!(matches!(
            YearCalendar::from_toml_str(&text),
            Err(CalendarError::DuplicateWork(_))
        ));
    }

    #[test]
    fn toml_rejects_another_time_zone() {
        let text = "year = 2026\ntimezone = \"Asia/Hong_Kong\"\n";
        assert!(matches!(
            YearCalendar::from_toml_str(text),
            Err(CalendarError::TimeZone(_))
        ));
    }

    #[test]
    fn toml_rejects_an_unnamed_holiday() {
        let text = spec_toml("[[off]]\nname = \" \"\nfrom = \"2026-05-01\"\nto = \"2026-05-01\"\n");
        assert!(matches!(
            YearCalendar::from_toml_str(&text),
            Err(CalendarError::EmptyName { .. })
        ));
    }

    #[test]
    fn toml_rejects_a_misspelt_field() {
        let text = spec_toml("[[of]]\nname = \"a\"\nfrom = \"2026-05-01\"\nto = \"2026-05-01\"\n");
        assert!(matches!(
            YearCalendar::from_toml_str(&text),
            Err(CalendarError::Parse(_))
        ));
    }

    #[test]
    fn toml_rejects_a_missing_year() {
        assert!(YearCalendar::from_toml_str("timezone = \"Asia/Shanghai\"\n").is_err());
    }

    // --- working days ---

    #[test]
    fn holiday_on_a_weekday_is_not_a_working_day() {
        let c = cal();
        assert!(!c.is_working_day(date(2026, 10, 1)));
        assert!(!c.is_working_day(date(2026, 2, 23)));
    }

    #[test]
    fn make_up_weekend_days_are_working_days() {
        let c = cal();
        assert!(c.is_working_day(date(2026, 2, 14)));
        assert!(c.is_working_day(date(2026, 1, 4)));
        assert_eq!(c.working_time_on(date(2026, 2, 14)), hours(7));
    }

    #[test]
    fn ordinary_saturday_is_not_a_working_day() {
        assert!(!cal().is_working_day(date(2026, 11, 28)));
    }

    #[test]
    fn thursday_after_national_day_week_is_a_working_day() {
        let c = cal();
        assert!(!c.is_working_day(date(2026, 10, 7)));
        assert!(c.is_working_day(date(2026, 10, 8)));
    }

    #[test]
    fn unknown_year_falls_back_to_weekdays_and_is_remembered_once() {
        let c = cal();
        assert!(c.is_working_day(date(2027, 1, 1)));
        assert!(!c.is_working_day(date(2027, 1, 2)));
        assert!(c.is_working_day(date(2027, 1, 4)));
        assert_eq!(c.fallback_years(), vec![2027]);
    }

    #[test]
    fn known_year_is_never_reported_as_fallback() {
        let c = cal();
        c.is_working_day(date(2026, 6, 1));
        assert!(c.fallback_years().is_empty());
    }

    #[test]
    fn inserting_a_year_clears_its_fallback_record() {
        let mut c = WorkCalendar::default();
        c.is_working_day(date(2026, 10, 1));
        c.is_working_day(date(2025, 10, 1));
        assert_eq!(c.fallback_years(), vec![2025, 2026]);
        assert!(c.insert_year(year_2026()).is_none());
        assert_eq!(c.fallback_years(), vec![2025]);
        assert!(!c.is_working_day(date(2026, 10, 1)));
    }

    #[test]
    fn clone_keeps_fallback_record() {
        let c = cal();
        c.is_working_day(date(2030, 1, 1));
        assert_eq!(c.clone().fallback_years(), vec![2030]);
    }

    #[test]
    fn make_up_day_works_mondays_hours() {
        let mut days: [Vec<WorkingInterval>; 7] = Default::default();
        days[0] = vec![(hm(9, 0), hm(11, 0))];
        days[5] = vec![(hm(10, 0), hm(10, 30))];
        let c = WorkCalendar::new(WorkingHours::new(days).unwrap(), [year_2026()]);
        // 2026-02-14 is a make-up Saturday: Monday's 2 hours, not Saturday's half hour.
        assert_eq!(c.working_time_on(date(2026, 2, 14)), hours(2));
        assert_eq!(c.working_time_on(date(2026, 2, 7)), minutes(30));
    }

    #[test]
    fn configured_saturday_hours_make_saturday_a_working_day() {
        let mut days: [Vec<WorkingInterval>; 7] = Default::default();
        days[5] = vec![(hm(9, 0), hm(12, 0))];
        let c = WorkCalendar::new(WorkingHours::new(days).unwrap(), []);
        assert!(c.is_working_day(date(2026, 11, 28)));
        assert!(!c.is_working_day(date(2026, 11, 27)));
        assert_eq!(
            c.add_working(local(2026, 11, 27, 9, 0), hours(1)),
            local(2026, 11, 28, 10, 0)
        );
    }

    // --- instants ---

    #[test]
    fn interval_includes_its_start_but_not_its_end() {
        let c = cal();
        assert!(c.is_working_instant(local(2026, 11, 25, 8, 30)));
        assert!(c.is_working_instant(local(2026, 11, 25, 11, 59)));
        assert!(!c.is_working_instant(local(2026, 11, 25, 12, 0)));
        assert!(!c.is_working_instant(local(2026, 11, 25, 8, 29)));
        assert!(!c.is_working_instant(local(2026, 11, 25, 17, 30)));
    }

    #[test]
    fn next_working_instant_of_working_time_is_itself() {
        let t = local(2026, 11, 25, 10, 17);
        assert_eq!(cal().next_working_instant(t), t);
    }

    #[test]
    fn next_working_instant_at_lunch_is_two_pm() {
        let c = cal();
        assert_eq!(
            c.next_working_instant(local(2026, 11, 25, 12, 0)),
            local(2026, 11, 25, 14, 0)
        );
        assert_eq!(
            c.next_working_instant(local(2026, 11, 25, 13, 1)),
            local(2026, 11, 25, 14, 0)
        );
    }

    #[test]
    fn next_working_instant_on_friday_evening_is_monday_morning() {
        assert_eq!(
            cal().next_working_instant(local(2026, 11, 27, 17, 30)),
            local(2026, 11, 30, 8, 30)
        );
    }

    #[test]
    fn next_working_instant_in_national_day_week_is_october_eighth() {
        assert_eq!(
            cal().next_working_instant(local(2026, 10, 3, 10, 0)),
            local(2026, 10, 8, 8, 30)
        );
    }

    // --- adding working time ---

    #[test]
    fn friday_afternoon_ticket_rolls_over_the_weekend() {
        // Half an hour on Friday, then 3.5 hours fill Monday's morning exactly.
        assert_eq!(
            cal().add_working(local(2026, 11, 27, 17, 0), hours(4)),
            local(2026, 11, 30, 12, 0)
        );
    }

    #[test]
    fn last_ticket_before_national_day_lands_after_the_holiday() {
        // 2026-09-30 is a Wednesday; 10-01..10-07 are off and 10-08 is an ordinary Thursday.
        assert_eq!(
            cal().add_working(local(2026, 9, 30, 17, 0), hours(4)),
            local(2026, 10, 8, 12, 0)
        );
    }

    #[test]
    fn working_time_spans_the_lunch_break() {
        assert_eq!(
            cal().add_working(local(2026, 11, 25, 11, 0), hours(2)),
            local(2026, 11, 25, 15, 0)
        );
    }

    #[test]
    fn start_in_the_lunch_break_counts_from_two_pm() {
        assert_eq!(
            cal().add_working(local(2026, 11, 25, 12, 30), minutes(30)),
            local(2026, 11, 25, 14, 30)
        );
    }

    #[test]
    fn start_before_opening_counts_from_opening() {
        assert_eq!(
            cal().add_working(local(2026, 11, 25, 7, 0), hours(1)),
            local(2026, 11, 25, 9, 30)
        );
    }

    #[test]
    fn start_after_closing_counts_from_next_morning() {
        assert_eq!(
            cal().add_working(local(2026, 11, 25, 18, 0), hours(1)),
            local(2026, 11, 26, 9, 30)
        );
    }

    #[test]
    fn start_on_an_ordinary_saturday_counts_from_monday() {
        assert_eq!(
            cal().add_working(local(2026, 11, 28, 10, 0), hours(1)),
            local(2026, 11, 30, 9, 30)
        );
    }

    #[test]
    fn filling_a_morning_exactly_ends_at_noon_not_at_two() {
        assert_eq!(
            cal().add_working(local(2026, 11, 25, 8, 30), minutes(210)),
            local(2026, 11, 25, 12, 0)
        );
    }

    #[test]
    fn spring_festival_eve_rolls_onto_the_make_up_saturday() {
        // 2026-02-13 is a Friday; 2026-02-14 is a make-up Saturday on Monday's hours.
        assert_eq!(
            cal().add_working(local(2026, 2, 13, 17, 0), hours(3)),
            local(2026, 2, 14, 11, 0)
        );
    }

    #[test]
    fn spring_festival_week_is_skipped() {
        // Half an hour on the make-up Saturday; 02-15..02-23 are off; the rest on Tue 02-24.
        assert_eq!(
            cal().add_working(local(2026, 2, 14, 17, 0), hours(1)),
            local(2026, 2, 24, 9, 0)
        );
    }

    #[test]
    fn three_working_days_span_a_weekend() {
        // Thursday 10:00 + 21 working hours = Tuesday 10:00.
        assert_eq!(
            cal().add_working(local(2026, 11, 26, 10, 0), hours(21)),
            local(2026, 12, 1, 10, 0)
        );
    }

    #[test]
    fn year_end_falls_back_to_the_weekday_rule_for_2027() {
        let c = cal();
        // 1.5 h on Thursday 2026-12-31, then 2.5 h on Friday 2027-01-01 (no 2027 file yet).
        assert_eq!(
            c.add_working(local(2026, 12, 31, 16, 0), hours(4)),
            local(2027, 1, 1, 11, 0)
        );
        assert_eq!(c.fallback_years(), vec![2027]);
    }

    #[test]
    fn zero_duration_returns_start_even_outside_working_time() {
        let t = local(2026, 11, 28, 3, 7);
        assert_eq!(cal().add_working(t, Duration::zero()), t);
    }

    #[test]
    fn negative_duration_returns_start() {
        let t = local(2026, 11, 25, 10, 0);
        assert_eq!(cal().add_working(t, minutes(-5)), t);
    }

    #[test]
    fn two_hundred_working_days_end_on_october_27th() {
        let c = cal();
        let start = local(2026, 1, 5, 8, 30);
        let d = hours(7 * 200);
        let due = c.add_working(start, d);
        assert_eq!(due, local(2026, 10, 27, 17, 30));
        assert_eq!(c.working_between(start, due), d);
    }

    #[test]
    fn ten_years_of_working_time_is_handled() {
        let c = cal();
        let start = local(2026, 3, 2, 9, 0);
        let d = hours(7 * 2500);
        let due = c.add_working(start, d);
        assert_eq!(c.working_between(start, due), d);
        assert!(due.year() >= 2035);
    }

    #[test]
    fn sub_minute_precision_is_kept() {
        let c = cal();
        let start = local(2026, 11, 25, 11, 59) + Duration::seconds(30);
        let due = c.add_working(start, Duration::seconds(45));
        assert_eq!(due, local(2026, 11, 25, 14, 0) + Duration::seconds(15));
    }

    // --- working time between instants ---

    #[test]
    fn working_between_within_a_morning() {
        assert_eq!(
            cal().working_between(local(2026, 11, 25, 9, 0), local(2026, 11, 25, 10, 15)),
            minutes(75)
        );
    }

    #[test]
    fn working_between_skips_lunch() {
        assert_eq!(
            cal().working_between(local(2026, 11, 25, 11, 0), local(2026, 11, 25, 15, 0)),
            hours(2)
        );
    }

    #[test]
    fn working_between_reversed_or_equal_is_zero() {
        let c = cal();
        let a = local(2026, 11, 25, 9, 0);
        let b = local(2026, 11, 25, 10, 0);
        assert_eq!(c.working_between(b, a), Duration::zero());
        assert_eq!(c.working_between(a, a), Duration::zero());
    }

    #[test]
    fn working_between_over_a_weekend_counts_only_weekdays() {
        assert_eq!(
            cal().working_between(local(2026, 11, 27, 17, 0), local(2026, 11, 30, 9, 0)),
            minutes(60)
        );
    }

    #[test]
    fn working_between_over_spring_festival_counts_only_the_make_up_saturday() {
        assert_eq!(
            cal().working_between(local(2026, 2, 13, 17, 30), local(2026, 2, 24, 8, 30)),
            hours(7)
        );
    }

    #[test]
    fn working_between_a_whole_week_is_thirty_five_hours() {
        assert_eq!(
            cal().working_between(local(2026, 11, 23, 0, 0), local(2026, 11, 30, 0, 0)),
            hours(35)
        );
    }

    // --- properties ---

    fn is_interval_end(c: &WorkCalendar, t: DateTime<Utc>) -> bool {
        c.intervals(local_date(t)).any(|(_, end)| end == t)
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const MINUTES_IN_2026: i64 = 365 * 24 * 60;
        const MAX_WORKING_MINUTES: i64 = 40 * 60;

        fn instant(offset_minutes: i64) -> DateTime<Utc> {
            local(2026, 1, 1, 0, 0) + Duration::minutes(offset_minutes)
        }

        proptest! {
            #[test]
            fn adding_is_associative(
                t in 0..MINUTES_IN_2026,
                a in 0..=MAX_WORKING_MINUTES,
                b in 0..=MAX_WORKING_MINUTES,
            ) {
                let c = cal();
                let t = instant(t);
                let (a, b) = (Duration::minutes(a), Duration::minutes(b));
                prop_assert_eq!(c.add_working(c.add_working(t, a), b), c.add_working(t, a + b));
            }

            #[test]
            fn result_is_never_strictly_inside_non_working_time(
                t in 0..MINUTES_IN_2026,
                d in 1..=MAX_WORKING_MINUTES,
            ) {
                let c = cal();
                let r = c.add_working(instant(t), Duration::minutes(d));
                prop_assert!(c.is_working_instant(r) || is_interval_end(&c, r), "{r}");
            }

            #[test]
            fn working_between_inverts_adding(
                t in 0..MINUTES_IN_2026,
                d in 0..=MAX_WORKING_MINUTES,
            ) {
                let c = cal();
                let t = instant(t);
                let d = Duration::minutes(d);
                prop_assert_eq!(c.working_between(t, c.add_working(t, d)), d);
            }

            #[test]
            fn adding_is_monotonic(
                t in 0..MINUTES_IN_2026,
                a in 0..=MAX_WORKING_MINUTES,
                b in 0..=MAX_WORKING_MINUTES,
            ) {
                let c = cal();
                let t = instant(t);
                let (lo, hi) = (a.min(b), a.max(b));
                prop_assert!(
                    c.add_working(t, Duration::minutes(lo)) <= c.add_working(t, Duration::minutes(hi))
                );
            }

            #[test]
            fn next_working_instant_is_working_and_skips_no_working_time(
                t in 0..MINUTES_IN_2026,
            ) {
                let c = cal();
                let t = instant(t);
                let next = c.next_working_instant(t);
                prop_assert!(next >= t);
                prop_assert!(c.is_working_instant(next));
                prop_assert_eq!(c.working_between(t, next), Duration::zero());
            }

            #[test]
            fn working_between_is_additive(
                t in 0..MINUTES_IN_2026,
                a in 0..=(3 * 24 * 60i64),
                b in 0..=(3 * 24 * 60i64),
            ) {
                let c = cal();
                let t0 = instant(t);
                let t1 = t0 + Duration::minutes(a);
                let t2 = t1 + Duration::minutes(b);
                prop_assert_eq!(
                    c.working_between(t0, t2),
                    c.working_between(t0, t1) + c.working_between(t1, t2)
                );
            }
        }
    }
}
