//! The dashboard's measures as pure rules (definitions: docs/metrics.md): a ticket's stays and
//! verdicts from its history ([`history`]), and how verdicts and durations add up over a group
//! of tickets: fractions and rates, medians, counts by status and level, flows between levels.
//! `service::stats` loads the rows and stores or aggregates what these rules decide.

mod history;

pub use history::{
    judge, outcome, pair_events, visits, Judged, Outcome, StatEvent, StatTicket, Visit,
    HISTORY_ACTIONS,
};

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::role::ActorRole;
use crate::domain::ticket::{EventKind, Level, Status};

/// Whole seconds from `a` to `b`.
pub fn secs(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    (b - a).num_seconds()
}

/// The median of whole seconds; the mean of the two middle values (rounded down) when even.
pub fn median(values: &mut [i64]) -> Option<i64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    // Selection, not a full sort: the street's month is hundreds of thousands of values.
    let (lower, mid, _) = values.select_nth_unstable(n / 2);
    let upper = *mid;
    Some(if n % 2 == 1 {
        upper
    } else {
        let below = lower.iter().copied().max().unwrap_or(upper);
        (below + upper).div_euclid(2)
    })
}

/// A rate as a fraction, rounded to 4 decimals; `None` when nothing is counted.
pub fn rate(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator > 0).then(|| (numerator as f64 / denominator as f64 * 10_000.0).round() / 10_000.0)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Fraction {
    /// Tickets that met the measure.
    pub numerator: i64,
    /// Tickets the measure counts.
    pub denominator: i64,
}

impl Fraction {
    fn add(&mut self, v: Option<bool>) {
        if let Some(ok) = v {
            self.denominator += 1;
            self.numerator += i64::from(ok);
        }
    }

    pub fn rate(&self) -> Option<f64> {
        rate(self.numerator, self.denominator)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RateCounts {
    pub response: Fraction,
    pub resolution: Fraction,
    pub satisfaction: Fraction,
    pub settled_in_compound: Fraction,
    /// Closed tickets (numerator: confirmed by the resident, a callback or the raising level;
    /// the rest closed automatically: resolved, unconfirmed).
    pub confirmed: Fraction,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct LevelMedians {
    /// Per ticket: from creation (see docs/metrics.md).
    pub all: Option<i64>,
    /// Per stay at the level: from arrival at the level.
    pub compound: Option<i64>,
    pub community: Option<i64>,
    pub street: Option<i64>,
}

/// Sums over a group of tickets: how many, the rates' fractions, and every duration the
/// medians are taken of.
#[derive(Debug, Default)]
pub struct Tally {
    pub tickets: i64,
    pub counts: RateCounts,
    first_answer: Vec<i64>,
    settle: Vec<i64>,
    answer_by_level: [Vec<i64>; 3],
    settle_by_level: [Vec<i64>; 3],
}

fn level_index(l: Level) -> usize {
    match l {
        Level::Compound => 0,
        Level::Community => 1,
        Level::Street => 2,
    }
}

impl Tally {
    /// One ticket, judged.
    pub fn add(&mut self, j: &Judged) {
        self.tickets += 1;
        self.counts.response.add(j.response);
        self.counts.resolution.add(j.resolution);
        self.counts.satisfaction.add(j.satisfied);
        self.counts.settled_in_compound.add(j.settled_in_compound);
        self.counts.confirmed.add(j.confirmed);
        self.add_durations(j.first_answer_secs, j.settle_secs);
        for v in &j.visits {
            // A resolve answers too, so a resolved stay is an answered one.
            if let Some(a) = v.answered {
                let settle = v.resolved.map(|r| secs(v.arrived, r));
                self.add_stay(v.level, secs(v.arrived, a), settle);
            }
        }
    }

    /// One ticket's seconds from creation to its first answer and to its settlement.
    pub fn add_durations(&mut self, first_answer: Option<i64>, settle: Option<i64>) {
        self.first_answer.extend(first_answer);
        self.settle.extend(settle);
    }

    /// One answered stay at `level`: seconds from arrival to the answer and to a resolve there.
    pub fn add_stay(&mut self, level: Level, answer: i64, settle: Option<i64>) {
        let i = level_index(level);
        self.answer_by_level[i].push(answer);
        self.settle_by_level[i].extend(settle);
    }

    pub fn median_first_answer(&mut self) -> LevelMedians {
        let [c, m, s] = &mut self.answer_by_level;
        LevelMedians {
            all: median(&mut self.first_answer),
            compound: median(c),
            community: median(m),
            street: median(s),
        }
    }

    pub fn median_settle(&mut self) -> LevelMedians {
        let [c, m, s] = &mut self.settle_by_level;
        LevelMedians {
            all: median(&mut self.settle),
            compound: median(c),
            community: median(m),
            street: median(s),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusCounts {
    pub open: i64,
    pub acknowledged: i64,
    pub resolved: i64,
    pub closed: i64,
    pub declined: i64,
    /// Declined below, waiting for the level above to review the decline.
    pub decline_review: i64,
    pub withdrawn: i64,
}

impl StatusCounts {
    /// `n` tickets in status `s`.
    pub fn add(&mut self, s: Status, n: i64) {
        match s {
            Status::Open => self.open += n,
            Status::Acknowledged => self.acknowledged += n,
            Status::Resolved => self.resolved += n,
            Status::Closed => self.closed += n,
            Status::Declined => self.declined += n,
            Status::DeclineReview => self.decline_review += n,
            Status::Withdrawn => self.withdrawn += n,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct LevelCounts {
    pub compound: i64,
    pub community: i64,
    pub street: i64,
}

impl LevelCounts {
    /// `n` tickets at level `l`.
    pub fn add(&mut self, l: Level, n: i64) {
        match l {
            Level::Compound => self.compound += n,
            Level::Community => self.community += n,
            Level::Street => self.street += n,
        }
    }
}

/// Calls up and returns between levels that happened in the range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Flows {
    /// 小区 → 社区: escalations (by staff or the SLA sweeper) and disputes that called it up.
    pub up_compound_to_community: i64,
    /// 社区 → 街道.
    pub up_community_to_street: i64,
    /// 街道 → 社区: returns.
    pub down_street_to_community: i64,
    /// 社区 → 小区: returns.
    pub down_community_to_compound: i64,
    /// Of the calls up, those made by the SLA sweeper (a clock ran out).
    pub up_automatic: i64,
    /// Of the calls up, those caused by a resident's dispute.
    pub up_by_dispute: i64,
}

impl Flows {
    pub fn add(&mut self, action: EventKind, from: Level, to: Level, actor_role: ActorRole) {
        use EventKind::{Dispute, Escalate, Return};
        match (action, from, to) {
            (Escalate | Dispute, Level::Compound, Level::Community) => {
                self.up_compound_to_community += 1
            }
            (Escalate | Dispute, Level::Community, Level::Street) => {
                self.up_community_to_street += 1
            }
            (Return, Level::Street, Level::Community) => self.down_street_to_community += 1,
            (Return, Level::Community, Level::Compound) => self.down_community_to_compound += 1,
            _ => return,
        }
        if to > from {
            if action == Dispute {
                self.up_by_dispute += 1;
            } else if actor_role == ActorRole::System {
                self.up_automatic += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_take_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [7]), Some(7));
        assert_eq!(median(&mut [9, 1, 5]), Some(5));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
        assert_eq!(median(&mut [60, 120]), Some(90));
    }

    #[test]
    fn rates_round_to_four_places_and_are_absent_without_a_denominator() {
        assert_eq!(rate(2, 3), Some(0.6667));
        assert_eq!(rate(3, 4), Some(0.75));
        assert_eq!(rate(0, 0), None);
    }

    #[test]
    fn flows_count_calls_up_and_returns_by_direction() {
        let mut f = Flows::default();
        f.add(
            EventKind::parse("escalate").expect("kind"),
            Level::parse("compound").expect("level"),
            Level::parse("community").expect("level"),
            ActorRole::parse("system").expect("role"),
        );
        f.add(
            EventKind::parse("escalate").expect("kind"),
            Level::parse("community").expect("level"),
            Level::parse("street").expect("level"),
            ActorRole::parse("community_staff").expect("role"),
        );
        f.add(
            EventKind::parse("dispute").expect("kind"),
            Level::parse("compound").expect("level"),
            Level::parse("community").expect("level"),
            ActorRole::parse("resident").expect("role"),
        );
        f.add(
            EventKind::parse("dispute").expect("kind"),
            Level::parse("compound").expect("level"),
            Level::parse("compound").expect("level"),
            ActorRole::parse("resident").expect("role"),
        );
        f.add(
            EventKind::parse("return").expect("kind"),
            Level::parse("street").expect("level"),
            Level::parse("community").expect("level"),
            ActorRole::parse("street_staff").expect("role"),
        );
        f.add(
            EventKind::parse("return").expect("kind"),
            Level::parse("community").expect("level"),
            Level::parse("compound").expect("level"),
            ActorRole::parse("community_staff").expect("role"),
        );
        assert_eq!(f.up_compound_to_community, 2);
        assert_eq!(f.up_community_to_street, 1);
        assert_eq!(f.down_street_to_community, 1);
        assert_eq!(f.down_community_to_compound, 1);
        assert_eq!(f.up_automatic, 1);
        assert_eq!(f.up_by_dispute, 1);
    }
}
