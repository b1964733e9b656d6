//! What the ticket rules need to know about time: the deadlines a level's clocks give, and how
//! a pause moves them. The SLA engine (policies + working calendar) answers; the rules stay pure.

use chrono::{DateTime, Duration, Utc};

use super::kinds::{Level, Urgency};
use crate::domain::sla::ClockKind;

/// Deadlines for one ticket at one level, computed when it arrives there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clocks {
    pub ack_due: DateTime<Utc>,
    pub ack_warn: DateTime<Utc>,
    pub resolve_due: DateTime<Utc>,
    pub resolve_warn: DateTime<Utc>,
    /// When a decision this level owes is due: a decline review or an extension request.
    pub decide_due: DateTime<Utc>,
    pub clock: ClockKind,
}

pub trait Deadlines {
    /// The clocks a ticket starts when it arrives at `level` at `start`.
    fn clocks(
        &self,
        level: Level,
        category_id: i64,
        urgency: Urgency,
        start: DateTime<Utc>,
    ) -> Clocks;
    /// How far a pause from `from` to `to` moves the deadline, given `already` paused time at
    /// this level, and the new total (both capped).
    fn pause_extension(
        &self,
        clock: ClockKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        already: Duration,
    ) -> (Duration, Duration);
    /// `due` moved back by `by` on `clock`.
    fn extend(&self, clock: ClockKind, due: DateTime<Utc>, by: Duration) -> DateTime<Utc>;
    /// When a pause started at `from` reaches the cap.
    fn pause_ends(&self, clock: ClockKind, from: DateTime<Utc>, already: Duration)
        -> DateTime<Utc>;
    /// The latest resolve deadline an extension of `due` may ask for.
    fn latest_extension(&self, clock: ClockKind, due: DateTime<Utc>) -> DateTime<Utc>;
    /// How long a resolved ticket waits for the resident before it closes itself.
    fn auto_close_after(&self) -> Duration;
}
