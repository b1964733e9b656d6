//! Who may do what, in which status, at which level. Pure rules;
//! the database layer applies them inside a transaction.

use chrono::{DateTime, Duration, Utc};

use super::kinds::{Action, Level, Source, Status};
use crate::domain::ids::{UnitId, UserId};
use crate::domain::role::Role;

/// How the caller stands towards a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The resident who called.
    Owner,
    /// Staff of the unit accountable at the ticket's current level.
    Accountable,
    /// Staff of a unit above the accountable level, in the ticket's scope: supervises (urges,
    /// takes over, decides on extension requests). Carries the caller's level.
    Above(Level),
    /// Staff of the unit below the accountable level (the ticket went up from it): reads.
    Below(Level),
    /// An admin: reads everything.
    Reader,
    /// Not visible at all: answers 404.
    None,
}

impl Relation {
    /// The level of the staff member standing in this relation, given the ticket's level.
    pub fn staff_level(self, ticket_level: Level) -> Option<Level> {
        match self {
            Relation::Accountable => Some(ticket_level),
            Relation::Above(l) | Relation::Below(l) => Some(l),
            Relation::Owner | Relation::Reader | Relation::None => None,
        }
    }

    /// Reads without acting as the accountable level or the resident.
    pub fn is_reader(self) -> bool {
        matches!(
            self,
            Relation::Above(_) | Relation::Below(_) | Relation::Reader
        )
    }
}

/// How long a resident may dispute a decline.
pub const DECLINE_DISPUTE_WINDOW_DAYS: i64 = 7;
/// How often one level may urge one ticket.
pub const URGE_INTERVAL_MINUTES: i64 = 60;
/// Transfers a ticket may take in all.
pub const MAX_TRANSFERS: i32 = 2;
/// Extensions a level may be granted on one stay.
pub const MAX_EXTENSIONS_PER_LEVEL: i32 = 2;
/// How far past the running deadline an extension may reach, in working days.
pub const MAX_EXTENSION_WORKING_DAYS: i64 = 10;

/// The facts about a ticket that the permission rules look at.
#[derive(Debug, Clone)]
pub struct RuleFacts {
    pub status: Status,
    pub level: Level,
    pub returned_by_community: bool,
    pub returned_by_street: bool,
    pub declined_at: Option<DateTime<Utc>>,
    /// The settle clock is paused, waiting on the resident.
    pub paused: bool,
    pub source: Source,
    /// An own finding's raising level: it confirms the closure.
    pub raised_level: Option<Level>,
    /// The resident asked to be hidden from the compound.
    pub identity_hidden: bool,
    pub transfer_count: i32,
    /// When the community / the street last urged the ticket.
    pub urged_by_community_at: Option<DateTime<Utc>>,
    pub urged_by_street_at: Option<DateTime<Utc>>,
    pub extension_pending: bool,
    pub extensions_granted: i32,
    /// Breached at the street: nothing above to call up to.
    pub overdue: bool,
}

impl RuleFacts {
    fn returned_from(&self, level: Level) -> bool {
        match level {
            Level::Community => self.returned_by_community,
            Level::Street => self.returned_by_street,
            Level::Compound => true,
        }
    }

    fn urged_at(&self, by: Level) -> Option<DateTime<Utc>> {
        match by {
            Level::Community => self.urged_by_community_at,
            Level::Street => self.urged_by_street_at,
            Level::Compound => None,
        }
    }

    /// Waiting on the accountable level: an answer, a resolution or a review.
    fn awaiting_level(&self) -> bool {
        self.status.is_active() || self.status == Status::DeclineReview
    }
}

/// Until when `by` must wait before urging again, if it urged within the last hour.
pub fn urge_wait(f: &RuleFacts, by: Level, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    f.urged_at(by)
        .map(|t| t + Duration::minutes(URGE_INTERVAL_MINUTES))
        .filter(|until| *until > now)
}

/// Whether this relation may ever take this action (regardless of status).
pub fn relation_may(relation: Relation, action: Action) -> bool {
    use Action::*;
    match relation {
        Relation::Owner => matches!(action, Comment | Confirm | Dispute | Withdraw),
        Relation::Accountable => matches!(
            action,
            Acknowledge
                | Comment
                | Assign
                | Resolve
                | Escalate
                | Decline
                | Return
                | RevealPhone
                | WaitOnResident
                | Transfer
                | RequestExtension
                | UpholdDecline
                | OverturnDecline
                | Confirm
        ),
        Relation::Above(_) => matches!(
            action,
            Urge | TakeOver | Transfer | ApproveExtension | RejectExtension | Confirm
        ),
        Relation::Below(_) => action == Confirm,
        Relation::Reader | Relation::None => false,
    }
}

/// Whether this relation may ever take this action on this ticket: as [`relation_may`], except
/// that staff confirm only own findings (a resident's call is the resident's to confirm).
pub fn relation_may_on(f: &RuleFacts, relation: Relation, action: Action) -> bool {
    relation_may(relation, action)
        && !(action == Action::Confirm
            && relation != Relation::Owner
            && f.source != Source::OwnFinding)
}

/// Whether the ticket's state allows the action now (for a relation that may take it).
pub fn state_allows(f: &RuleFacts, relation: Relation, action: Action, now: DateTime<Utc>) -> bool {
    use Status::*;
    let own_finding = f.source == Source::OwnFinding;
    match (relation, action) {
        (Relation::Owner, Action::Comment) => {
            matches!(f.status, Open | Acknowledged | Resolved | DeclineReview)
        }
        (Relation::Owner, Action::Confirm) => f.status == Resolved,
        (Relation::Owner, Action::Dispute) => match f.status {
            Resolved => true,
            Declined => {
                f.level.up().is_some()
                    && f.declined_at
                        .is_some_and(|d| now - d <= Duration::days(DECLINE_DISPUTE_WINDOW_DAYS))
            }
            _ => false,
        },
        (Relation::Owner, Action::Withdraw) => f.awaiting_level(),
        // An own finding has no resident: the level that raised it confirms the result.
        (_, Action::Confirm) => {
            own_finding
                && f.status == Resolved
                && relation.staff_level(f.level).is_some()
                && relation.staff_level(f.level) == f.raised_level
        }
        (Relation::Accountable, Action::Acknowledge) => f.status == Open,
        (Relation::Accountable, Action::Comment) => {
            matches!(f.status, Open | Acknowledged | Resolved | DeclineReview)
        }
        (Relation::Accountable, Action::Assign) => f.status.is_active(),
        (Relation::Accountable, Action::Resolve) => f.status.is_active(),
        // 先应后呼: a level answers before it may call up; silence is the sweeper's path.
        (Relation::Accountable, Action::Escalate) => {
            f.status == Acknowledged && f.level.up().is_some()
        }
        (Relation::Accountable, Action::Decline) => f.status.is_active(),
        (Relation::Accountable, Action::Return) => {
            f.awaiting_level() && f.level.down().is_some() && !f.returned_from(f.level)
        }
        (Relation::Accountable, Action::UpholdDecline | Action::OverturnDecline) => {
            f.status == DeclineReview
        }
        (Relation::Accountable, Action::RevealPhone) => {
            // An own finding has no resident; a hidden resident's phone is not the compound's.
            let hidden_here = f.identity_hidden && f.level == Level::Compound;
            !(own_finding || hidden_here)
        }
        (Relation::Accountable, Action::WaitOnResident) => {
            f.status == Acknowledged && !f.paused && !own_finding
        }
        (Relation::Accountable, Action::Transfer)
        | (Relation::Above(Level::Community), Action::Transfer) => {
            f.level == Level::Compound && f.status.is_active() && f.transfer_count < MAX_TRANSFERS
        }
        (Relation::Accountable, Action::RequestExtension) => {
            f.status == Acknowledged
                && f.level.up().is_some()
                && !f.extension_pending
                && f.extensions_granted < MAX_EXTENSIONS_PER_LEVEL
                && !f.overdue
        }
        (Relation::Above(by), Action::Urge) => {
            f.awaiting_level() && urge_wait(f, by, now).is_none()
        }
        (Relation::Above(_), Action::TakeOver) => f.status.is_active(),
        (Relation::Above(by), Action::ApproveExtension | Action::RejectExtension) => {
            f.extension_pending && f.status == Acknowledged && f.level.up() == Some(by)
        }
        _ => false,
    }
}

/// What the caller may do now, in a stable order, so a client never guesses.
pub fn allowed_actions(f: &RuleFacts, relation: Relation, now: DateTime<Utc>) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|a| relation_may_on(f, relation, *a) && state_allows(f, relation, *a, now))
        .collect()
}

/// The units and the resident a ticket belongs to, and the level accountable now.
#[derive(Debug, Clone, Copy)]
pub struct TicketUnits {
    pub street_id: UnitId,
    pub community_id: UnitId,
    pub compound_id: UnitId,
    pub resident_id: UserId,
    pub level: Level,
}

/// How the caller stands towards a ticket, from roles and the org units involved.
pub fn relation(role: Role, user_id: UserId, unit_id: Option<UnitId>, t: &TicketUnits) -> Relation {
    match role {
        Role::Resident => {
            if t.resident_id == user_id {
                Relation::Owner
            } else {
                Relation::None
            }
        }
        Role::Admin => Relation::Reader,
        staff => {
            let Some(unit) = unit_id else {
                return Relation::None;
            };
            let Some(level) = Level::of_role(staff) else {
                return Relation::None;
            };
            let ticket_unit = match level {
                Level::Compound => t.compound_id,
                Level::Community => t.community_id,
                Level::Street => t.street_id,
            };
            if ticket_unit != unit {
                Relation::None
            } else if level == t.level {
                Relation::Accountable
            } else if level > t.level {
                Relation::Above(level)
            } else {
                Relation::Below(level)
            }
        }
    }
}

/// What a dispute does: reopen where it is, or call it up a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeOutcome {
    ReopenSameLevel,
    CallUp(Level),
}

/// The first dispute of a resolution reopens at the same level; the second calls it up (at the
/// street, the top, it reopens there again). A disputed decline always goes up.
pub fn dispute_outcome(f: &RuleFacts, disputes_at_level: i32) -> DisputeOutcome {
    match (f.status, f.level.up()) {
        (Status::Declined, Some(up)) => DisputeOutcome::CallUp(up),
        (_, Some(up)) if disputes_at_level >= 1 => DisputeOutcome::CallUp(up),
        _ => DisputeOutcome::ReopenSameLevel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: Status, level: Level) -> RuleFacts {
        RuleFacts {
            status,
            level,
            returned_by_community: false,
            returned_by_street: false,
            declined_at: None,
            paused: false,
            source: Source::App,
            raised_level: None,
            identity_hidden: false,
            transfer_count: 0,
            urged_by_community_at: None,
            urged_by_street_at: None,
            extension_pending: false,
            extensions_granted: 0,
            overdue: false,
        }
    }

    fn scope(level: Level) -> TicketUnits {
        TicketUnits {
            street_id: UnitId(1),
            community_id: UnitId(2),
            compound_id: UnitId(3),
            resident_id: UserId(10),
            level,
        }
    }

    #[test]
    fn levels_chain_up_and_down() {
        assert_eq!(Level::Compound.up(), Some(Level::Community));
        assert_eq!(Level::Community.up(), Some(Level::Street));
        assert_eq!(Level::Street.up(), None);
        assert_eq!(Level::Street.down(), Some(Level::Community));
        assert_eq!(Level::Compound.down(), None);
    }

    #[test]
    fn only_the_accountable_level_acts_and_others_read() {
        let s = scope(Level::Community);
        assert_eq!(
            relation(Role::CommunityStaff, UserId(5), Some(UnitId(2)), &s),
            Relation::Accountable
        );
        // The compound it came from keeps reading it; the street above supervises.
        assert_eq!(
            relation(Role::CompoundStaff, UserId(5), Some(UnitId(3)), &s),
            Relation::Below(Level::Compound)
        );
        assert_eq!(
            relation(Role::StreetStaff, UserId(5), Some(UnitId(1)), &s),
            Relation::Above(Level::Street)
        );
        // Another compound or community sees nothing.
        assert_eq!(
            relation(Role::CompoundStaff, UserId(5), Some(UnitId(99)), &s),
            Relation::None
        );
        assert_eq!(
            relation(Role::CommunityStaff, UserId(5), Some(UnitId(98)), &s),
            Relation::None
        );
        assert_eq!(
            relation(Role::Resident, UserId(10), None, &s),
            Relation::Owner
        );
        assert_eq!(
            relation(Role::Resident, UserId(11), None, &s),
            Relation::None
        );
        assert_eq!(relation(Role::Admin, UserId(1), None, &s), Relation::Reader);
    }

    #[test]
    fn an_open_ticket_is_answered_before_it_can_be_called_up() {
        let now = Utc::now();
        let f = facts(Status::Open, Level::Compound);
        let acts = allowed_actions(&f, Relation::Accountable, now);
        assert!(acts.contains(&Action::Acknowledge));
        assert!(!acts.contains(&Action::Escalate), "先应后呼");
        let answered = facts(Status::Acknowledged, Level::Compound);
        assert!(allowed_actions(&answered, Relation::Accountable, now).contains(&Action::Escalate));
        assert!(
            !acts.contains(&Action::Return),
            "compound has no level below"
        );
        assert_eq!(
            allowed_actions(&f, Relation::Owner, now),
            vec![Action::Comment, Action::Withdraw]
        );
        assert!(allowed_actions(&f, Relation::Reader, now).is_empty());
        assert!(allowed_actions(&f, Relation::Below(Level::Compound), now).is_empty());
    }

    #[test]
    fn street_cannot_call_up_and_returns_only_once() {
        let now = Utc::now();
        let mut f = facts(Status::Acknowledged, Level::Street);
        let acts = allowed_actions(&f, Relation::Accountable, now);
        assert!(!acts.contains(&Action::Escalate));
        assert!(acts.contains(&Action::Return));
        f.returned_by_street = true;
        assert!(!allowed_actions(&f, Relation::Accountable, now).contains(&Action::Return));
    }

    #[test]
    fn resolved_ticket_is_confirmed_or_disputed_by_its_resident() {
        let now = Utc::now();
        let f = facts(Status::Resolved, Level::Compound);
        let acts = allowed_actions(&f, Relation::Owner, now);
        assert_eq!(
            acts,
            vec![Action::Comment, Action::Confirm, Action::Dispute]
        );
        assert_eq!(dispute_outcome(&f, 0), DisputeOutcome::ReopenSameLevel);
        assert_eq!(
            dispute_outcome(&f, 1),
            DisputeOutcome::CallUp(Level::Community)
        );
        let top = facts(Status::Resolved, Level::Street);
        assert_eq!(dispute_outcome(&top, 3), DisputeOutcome::ReopenSameLevel);
    }

    #[test]
    fn a_decline_may_be_disputed_for_seven_days_and_goes_up() {
        let now = Utc::now();
        let mut f = facts(Status::Declined, Level::Compound);
        f.declined_at = Some(now - Duration::days(6));
        assert!(allowed_actions(&f, Relation::Owner, now).contains(&Action::Dispute));
        assert_eq!(
            dispute_outcome(&f, 0),
            DisputeOutcome::CallUp(Level::Community)
        );
        f.declined_at = Some(now - Duration::days(8));
        assert!(!allowed_actions(&f, Relation::Owner, now).contains(&Action::Dispute));
        let mut top = facts(Status::Declined, Level::Street);
        top.declined_at = Some(now);
        assert!(!allowed_actions(&top, Relation::Owner, now).contains(&Action::Dispute));
    }

    #[test]
    fn finished_tickets_allow_nothing() {
        let now = Utc::now();
        for st in [Status::Closed, Status::Withdrawn] {
            let f = facts(st, Level::Community);
            assert!(allowed_actions(&f, Relation::Owner, now).is_empty());
            assert_eq!(
                allowed_actions(&f, Relation::Accountable, now),
                vec![Action::RevealPhone]
            );
        }
    }

    #[test]
    fn only_an_acknowledged_running_clock_can_wait_on_the_resident() {
        let now = Utc::now();
        let mut f = facts(Status::Acknowledged, Level::Compound);
        assert!(allowed_actions(&f, Relation::Accountable, now).contains(&Action::WaitOnResident));
        f.paused = true;
        assert!(!allowed_actions(&f, Relation::Accountable, now).contains(&Action::WaitOnResident));
        let open = facts(Status::Open, Level::Compound);
        assert!(
            !allowed_actions(&open, Relation::Accountable, now).contains(&Action::WaitOnResident)
        );
        assert!(!allowed_actions(&f, Relation::Owner, now).contains(&Action::WaitOnResident));
    }

    #[test]
    fn actions_parse_from_paths() {
        assert_eq!(Action::from_path("reveal-phone"), Some(Action::RevealPhone));
        assert_eq!(Action::from_path("escalate"), Some(Action::Escalate));
        assert_eq!(Action::from_path("explode"), None);
        for a in Action::ALL {
            assert_eq!(Action::from_path(a.as_str()), Some(a));
        }
    }
}
