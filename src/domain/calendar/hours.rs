//! Working hours: which hours of an ordinary day count, weekday by weekday.

use chrono::{Duration, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

use super::CalendarError;

/// A span of working time within one local day: `[start, end)`.
pub type WorkingInterval = (NaiveTime, NaiveTime);

/// Evaluated at compile time, so a typo in a default is a build error rather than a panic.
pub(super) const fn hm(hour: u32, minute: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, minute, 0) {
        Some(t) => t,
        None => panic!("invalid constant time"),
    }
}

const MORNING: WorkingInterval = (hm(8, 30), hm(12, 0));
const AFTERNOON: WorkingInterval = (hm(14, 0), hm(17, 30));

/// Working hours for each weekday, Monday first.
///
/// Invariant: each day's intervals are non-empty spans, sorted and non-overlapping, and at least
/// one weekday has hours (otherwise a deadline would never arrive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "[Vec<WorkingInterval>; 7]",
    into = "[Vec<WorkingInterval>; 7]"
)]
pub struct WorkingHours {
    days: [Vec<WorkingInterval>; 7],
}

impl WorkingHours {
    /// Validates and builds working hours from seven lists of intervals, Monday first.
    pub fn new(days: [Vec<WorkingInterval>; 7]) -> Result<Self, CalendarError> {
        for (index, intervals) in days.iter().enumerate() {
            let weekday = weekday_from_index(index);
            for &(start, end) in intervals {
                if start >= end {
                    return Err(CalendarError::InvalidHours {
                        weekday,
                        reason: "an interval does not end after it starts",
                    });
                }
            }
            for pair in intervals.windows(2) {
                if pair[0].1 > pair[1].0 {
                    return Err(CalendarError::InvalidHours {
                        weekday,
                        reason: "intervals must be in order and must not overlap",
                    });
                }
            }
        }
        if days.iter().all(Vec::is_empty) {
            return Err(CalendarError::NoWorkingHours);
        }
        Ok(WorkingHours { days })
    }

    /// The working intervals of an ordinary (neither holiday nor make-up) day on `weekday`.
    pub fn for_weekday(&self, weekday: Weekday) -> &[WorkingInterval] {
        &self.days[weekday.num_days_from_monday() as usize]
    }

    /// The length of an ordinary day's working time on `weekday`, as written on the clock face.
    pub fn day_length(&self, weekday: Weekday) -> Duration {
        self.for_weekday(weekday)
            .iter()
            .map(|&(start, end)| end - start)
            .sum()
    }
}

impl Default for WorkingHours {
    /// Monday to Friday 08:30–12:00 and 14:00–17:30 (7 hours); no hours at the weekend.
    fn default() -> Self {
        let weekday = vec![MORNING, AFTERNOON];
        WorkingHours {
            days: [
                weekday.clone(),
                weekday.clone(),
                weekday.clone(),
                weekday.clone(),
                weekday,
                Vec::new(),
                Vec::new(),
            ],
        }
    }
}

impl TryFrom<[Vec<WorkingInterval>; 7]> for WorkingHours {
    type Error = CalendarError;

    fn try_from(days: [Vec<WorkingInterval>; 7]) -> Result<Self, Self::Error> {
        WorkingHours::new(days)
    }
}

impl From<WorkingHours> for [Vec<WorkingInterval>; 7] {
    fn from(hours: WorkingHours) -> Self {
        hours.days
    }
}

fn weekday_from_index(index: usize) -> Weekday {
    match index {
        0 => Weekday::Mon,
        1 => Weekday::Tue,
        2 => Weekday::Wed,
        3 => Weekday::Thu,
        4 => Weekday::Fri,
        5 => Weekday::Sat,
        _ => Weekday::Sun,
    }
}
