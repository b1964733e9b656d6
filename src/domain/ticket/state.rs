//! The ticket as the rules see it: who it belongs to, where it stands, and its clocks.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

use super::deadlines::Deadlines;
use super::kinds::{ClosedBy, Level, Source, Status, Urgency};
use super::rules::{RuleFacts, TicketUnits};
use crate::domain::ids::{TicketId, UnitId, UserId};

/// `due_at` when no clock runs: sorts last in every queue.
pub fn no_deadline() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// Every field the rules read or change; times are UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: TicketId,
    pub street_id: UnitId,
    pub community_id: UnitId,
    pub compound_id: UnitId,
    pub resident_id: UserId,
    pub category_id: i64,
    pub urgency: Urgency,
    pub status: Status,
    pub level: Level,
    pub assignee_id: Option<UserId>,
    pub assigned_handler: Option<String>,
    pub resolution_note: Option<String>,
    pub decline_reason: Option<String>,
    pub declined_at: Option<NaiveDateTime>,
    pub rating: Option<i32>,
    pub rating_comment: Option<String>,
    pub closed_by: Option<ClosedBy>,
    pub escalation_count: i32,
    pub disputes_at_level: i32,
    pub returned_by_community: bool,
    pub returned_by_street: bool,
    pub level_entered_at: NaiveDateTime,
    pub level_acknowledged_at: Option<NaiveDateTime>,
    pub ack_due_at: Option<NaiveDateTime>,
    pub resolve_due_at: Option<NaiveDateTime>,
    /// The queue's sort key: the running deadline, or [`no_deadline`].
    pub due_at: NaiveDateTime,
    /// When the sweeper should look at the ticket next.
    pub next_check_at: Option<NaiveDateTime>,
    pub ack_warned: bool,
    pub resolve_warned: bool,
    /// Breached at the street, where nothing is above to call up to.
    pub overdue: bool,
    /// Grows by one with every change; writes are conditional on it.
    pub version: i32,
    pub updated_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub paused_at: Option<NaiveDateTime>,
    pub paused_minutes: i64,
    pub source: Source,
    /// An own finding's raising level.
    pub raised_level: Option<Level>,
    /// The resident asked to be hidden from the compound.
    pub identity_hidden: bool,
    pub transfer_count: i32,
    pub urge_count: i32,
    pub urged_by_community_at: Option<NaiveDateTime>,
    pub urged_by_street_at: Option<NaiveDateTime>,
    /// The deadline of the pending decision: a decline review, or an extension request.
    pub decide_due_at: Option<NaiveDateTime>,
    /// A pending extension request: the resolve deadline asked for, why, and when.
    pub extension_due_at: Option<NaiveDateTime>,
    pub extension_reason: Option<String>,
    pub extension_requested_at: Option<NaiveDateTime>,
    /// The pending request's decision clock ran out (recorded once, against the approver).
    pub extension_lapsed: bool,
    /// Extensions granted at the current level.
    pub extensions_granted: i32,
}

/// Where a new call is filed.
#[derive(Debug, Clone, Copy)]
pub struct NewCall {
    pub street_id: UnitId,
    pub community_id: UnitId,
    pub compound_id: UnitId,
    pub resident_id: UserId,
    pub category_id: i64,
    pub urgency: Urgency,
    pub source: Source,
    /// The level the call starts at: the compound, or an own finding's raising level.
    pub level: Level,
    pub identity_hidden: bool,
}

impl Ticket {
    /// A new call, open at the compound with its clocks running from `now`. The id is given by
    /// the database when the ticket is stored.
    pub(super) fn call(c: NewCall, sla: &dyn Deadlines, now: DateTime<Utc>) -> Ticket {
        let ts = now.naive_utc();
        let mut t = Ticket {
            id: TicketId(0),
            street_id: c.street_id,
            community_id: c.community_id,
            compound_id: c.compound_id,
            resident_id: c.resident_id,
            category_id: c.category_id,
            urgency: c.urgency,
            status: Status::Open,
            level: Level::Compound,
            assignee_id: None,
            assigned_handler: None,
            resolution_note: None,
            decline_reason: None,
            declined_at: None,
            rating: None,
            rating_comment: None,
            closed_by: None,
            escalation_count: 0,
            disputes_at_level: 0,
            returned_by_community: false,
            returned_by_street: false,
            level_entered_at: ts,
            level_acknowledged_at: None,
            ack_due_at: None,
            resolve_due_at: None,
            due_at: no_deadline(),
            next_check_at: None,
            ack_warned: false,
            resolve_warned: false,
            overdue: false,
            version: 0,
            updated_at: ts,
            acknowledged_at: None,
            resolved_at: None,
            closed_at: None,
            paused_at: None,
            paused_minutes: 0,
            source: c.source,
            raised_level: (c.source == Source::OwnFinding).then_some(c.level),
            identity_hidden: c.identity_hidden,
            transfer_count: 0,
            urge_count: 0,
            urged_by_community_at: None,
            urged_by_street_at: None,
            decide_due_at: None,
            extension_due_at: None,
            extension_reason: None,
            extension_requested_at: None,
            extension_lapsed: false,
            extensions_granted: 0,
        };
        t.arrive_at(c.level, sla, now);
        t
    }

    pub fn facts(&self) -> RuleFacts {
        RuleFacts {
            status: self.status,
            level: self.level,
            returned_by_community: self.returned_by_community,
            returned_by_street: self.returned_by_street,
            declined_at: self.declined_at.map(|d| d.and_utc()),
            paused: self.paused_at.is_some(),
            source: self.source,
            raised_level: self.raised_level,
            identity_hidden: self.identity_hidden,
            transfer_count: self.transfer_count,
            urged_by_community_at: self.urged_by_community_at.map(|d| d.and_utc()),
            urged_by_street_at: self.urged_by_street_at.map(|d| d.and_utc()),
            extension_pending: self.extension_due_at.is_some(),
            extensions_granted: self.extensions_granted,
            overdue: self.overdue,
        }
    }

    /// Waiting on the accountable level: an answer, a resolution or a review.
    pub fn awaits_level(&self) -> bool {
        self.status.is_active() || self.status == Status::DeclineReview
    }

    pub fn units(&self) -> TicketUnits {
        TicketUnits {
            street_id: self.street_id,
            community_id: self.community_id,
            compound_id: self.compound_id,
            resident_id: self.resident_id,
            level: self.level,
        }
    }

    /// The unit accountable at `level`.
    pub fn unit_at(&self, level: Level) -> UnitId {
        match level {
            Level::Compound => self.compound_id,
            Level::Community => self.community_id,
            Level::Street => self.street_id,
        }
    }

    /// Starts the clocks of the level the ticket has just arrived at; what the level below did
    /// (assignment, resolution, decline, pause) stays with that level.
    pub(super) fn arrive_at(&mut self, level: Level, sla: &dyn Deadlines, now: DateTime<Utc>) {
        let clocks = sla.clocks(level, self.category_id, self.urgency, now);
        self.level = level;
        self.status = Status::Open;
        self.level_entered_at = now.naive_utc();
        // A final decline disputed by the resident is open again.
        self.closed_at = None;
        self.closed_by = None;
        self.level_acknowledged_at = None;
        self.ack_due_at = Some(clocks.ack_due.naive_utc());
        self.resolve_due_at = Some(clocks.resolve_due.naive_utc());
        self.ack_warned = false;
        self.resolve_warned = false;
        self.disputes_at_level = 0;
        self.assignee_id = None;
        self.assigned_handler = None;
        self.resolved_at = None;
        self.resolution_note = None;
        self.declined_at = None;
        self.decline_reason = None;
        self.paused_at = None;
        self.paused_minutes = 0;
        self.decide_due_at = None;
        self.clear_extension();
        self.extensions_granted = 0;
        self.schedule(sla);
    }

    /// A decline goes up to `level` for review, with that level's decision clock; the decline's
    /// reason and time stay for the reviewer and the resident to see.
    pub(super) fn arrive_for_review(
        &mut self,
        level: Level,
        sla: &dyn Deadlines,
        now: DateTime<Utc>,
    ) {
        let clocks = sla.clocks(level, self.category_id, self.urgency, now);
        self.level = level;
        self.status = Status::DeclineReview;
        self.level_entered_at = now.naive_utc();
        self.level_acknowledged_at = None;
        self.ack_due_at = None;
        self.resolve_due_at = None;
        self.ack_warned = false;
        self.resolve_warned = false;
        self.disputes_at_level = 0;
        self.assignee_id = None;
        self.assigned_handler = None;
        self.paused_at = None;
        self.paused_minutes = 0;
        self.decide_due_at = Some(clocks.decide_due.naive_utc());
        self.clear_extension();
        self.extensions_granted = 0;
        self.schedule(sla);
    }

    pub(super) fn clear_extension(&mut self) {
        self.extension_due_at = None;
        self.extension_reason = None;
        self.extension_requested_at = None;
        self.extension_lapsed = false;
    }

    /// Restarts the clocks at the same level (a dispute reopens it): new deadlines from now.
    pub(super) fn restart_clocks(&mut self, sla: &dyn Deadlines, now: DateTime<Utc>) {
        let clocks = sla.clocks(self.level, self.category_id, self.urgency, now);
        self.level_entered_at = now.naive_utc();
        self.ack_due_at = Some(clocks.ack_due.naive_utc());
        self.resolve_due_at = Some(clocks.resolve_due.naive_utc());
        self.ack_warned = false;
        self.resolve_warned = false;
    }

    /// Derives the queue's sort key and the sweeper's next look from status and clocks.
    pub fn schedule(&mut self, sla: &dyn Deadlines) {
        let entered = self.level_entered_at.and_utc();
        let clocks = sla.clocks(self.level, self.category_id, self.urgency, entered);
        // Warnings keep their lead time even when the stored due time differs from the policy's.
        let warn_at = |due: NaiveDateTime, warn: DateTime<Utc>, policy_due: DateTime<Utc>| {
            due - (policy_due - warn)
        };
        match self.status {
            Status::Open => {
                let due = self.ack_due_at.unwrap_or_else(no_deadline);
                self.due_at = due;
                let warn = warn_at(due, clocks.ack_warn, clocks.ack_due);
                self.next_check_at = Some(if self.ack_warned { due } else { warn.min(due) });
            }
            Status::Acknowledged if self.paused_at.is_some() => {
                // Paused: the deadline waits; the sweeper looks again when the pause cap runs out.
                self.due_at = self.resolve_due_at.unwrap_or_else(no_deadline);
                self.next_check_at = self.paused_at.map(|p| {
                    sla.pause_ends(
                        clocks.clock,
                        p.and_utc(),
                        Duration::minutes(self.paused_minutes),
                    )
                    .naive_utc()
                });
            }
            Status::Acknowledged => {
                let due = self.resolve_due_at.unwrap_or_else(no_deadline);
                self.due_at = due;
                let warn = warn_at(due, clocks.resolve_warn, clocks.resolve_due);
                self.next_check_at = Some(if self.resolve_warned {
                    due
                } else {
                    warn.min(due)
                });
            }
            Status::DeclineReview => {
                let due = self.decide_due_at.unwrap_or_else(no_deadline);
                self.due_at = due;
                self.next_check_at = self.decide_due_at;
            }
            Status::Resolved => {
                self.due_at = no_deadline();
                self.next_check_at = self.resolved_at.map(|r| r + sla.auto_close_after());
            }
            Status::Closed | Status::Declined | Status::Withdrawn => {
                self.due_at = no_deadline();
                self.next_check_at = None;
            }
        }
        if self.overdue && self.awaits_level() {
            // At the top an overdue ticket has nothing more to breach; only the queue order matters.
            self.next_check_at = None;
        }
        // An extension request waits on the level above: look again when its decision is due.
        if let (Some(decide), false) = (
            self.extension_due_at.and(self.decide_due_at),
            self.extension_lapsed,
        ) {
            if self.status == Status::Acknowledged {
                self.next_check_at = Some(self.next_check_at.map_or(decide, |n| n.min(decide)));
            }
        }
    }

    /// Restarts a paused settle clock at `now`: the deadline moves back by the paused working
    /// time, never by more than what is left of the per-level cap.
    pub(super) fn resume(&mut self, sla: &dyn Deadlines, now: DateTime<Utc>) {
        let Some(paused_at) = self.paused_at else {
            return;
        };
        let clock = sla
            .clocks(self.level, self.category_id, self.urgency, now)
            .clock;
        let (extension, total) = sla.pause_extension(
            clock,
            paused_at.and_utc(),
            now,
            Duration::minutes(self.paused_minutes),
        );
        if let Some(due) = self.resolve_due_at {
            self.resolve_due_at = Some(sla.extend(clock, due.and_utc(), extension).naive_utc());
        }
        self.paused_minutes = total.num_minutes();
        self.paused_at = None;
    }
}
