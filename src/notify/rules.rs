//! Who hears what: the issue's table as code. Pure: no database.

use crate::domain::role::ActorRole;
use crate::domain::ticket::{EventKind, Level, Source};

/// Every template kind the rules use (the template file must define each).
pub const ALL_KINDS: [&str; 30] = [
    "created",
    "called_up",
    "called_up_resident",
    "returned",
    "sla_warning",
    "overdue",
    "acknowledged",
    "replied",
    "resolved",
    "declined",
    "resident_comment",
    "disputed",
    "auto_closed",
    "wait_on_resident",
    "assigned",
    "entered_on_behalf",
    "decline_review",
    "decline_upheld",
    "decline_overturned",
    "transferred",
    "transferred_resident",
    "urged",
    "taken_over",
    "taken_over_resident",
    "extension_requested",
    "extension_granted",
    "extension_decided",
    "extension_unanswered",
    "callback_reopened",
    "callback_reopened_resident",
];

pub use crate::domain::channel::Channel;

/// A group of recipients, resolved against the database later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Active staff of the ticket's unit at this level.
    UnitStaff(Level),
    /// The resident who called.
    Resident,
    /// One staff member (the assignee).
    User(i64),
    /// The group robot of the ticket's unit at this level.
    UnitRobot(Level),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub kind: &'static str,
    pub who: Who,
    pub channels: &'static [Channel],
}

/// What an event is about, as far as the rules care.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts {
    pub kind: EventKind,
    pub actor_role: ActorRole,
    pub internal: bool,
    pub level_before: Level,
    pub level_after: Level,
    pub assignee_id: Option<i64>,
    pub source: Source,
}

const SMS_INAPP: &[Channel] = &[Channel::Sms, Channel::InApp];
const INAPP: &[Channel] = &[Channel::InApp];

fn rule(kind: &'static str, who: Who, channels: &'static [Channel]) -> Rule {
    Rule {
        kind,
        who,
        channels,
    }
}

/// The rules for one event; the actor is removed from the recipients later.
pub fn for_event(f: &EventFacts) -> Vec<Rule> {
    let called_up = f.level_after > f.level_before;
    // An own finding has no resident behind it: nobody to tell.
    let resident = |kind, channels| match f.source {
        Source::OwnFinding => vec![],
        _ => vec![rule(kind, Who::Resident, channels)],
    };
    match f.kind {
        EventKind::Create => {
            let mut r = vec![
                rule("created", Who::UnitStaff(f.level_after), SMS_INAPP),
                rule("created", Who::UnitRobot(f.level_after), &[Channel::Wecom]),
            ];
            if f.source != Source::App {
                // Entered on the resident's behalf: the SMS carries the link to follow it.
                r.extend(resident("entered_on_behalf", &[Channel::Sms]));
            }
            r
        }
        // A compound's or community's decline goes to the level above for review.
        EventKind::Decline if called_up => vec![rule(
            "decline_review",
            Who::UnitStaff(f.level_after),
            SMS_INAPP,
        )],
        EventKind::UpholdDecline => resident("decline_upheld", SMS_INAPP),
        EventKind::OverturnDecline => resident("decline_overturned", SMS_INAPP),
        EventKind::Transfer => {
            let mut r = vec![rule(
                "transferred",
                Who::UnitStaff(Level::Compound),
                SMS_INAPP,
            )];
            r.extend(resident("transferred_resident", &[Channel::Sms]));
            r
        }
        EventKind::Urge => vec![rule("urged", Who::UnitStaff(f.level_before), SMS_INAPP)],
        EventKind::TakeOver => {
            let mut r = vec![rule(
                "taken_over",
                Who::UnitStaff(f.level_before),
                SMS_INAPP,
            )];
            r.extend(resident("taken_over_resident", INAPP));
            r
        }
        EventKind::RequestExtension => match f.level_after.up() {
            Some(up) => vec![rule("extension_requested", Who::UnitStaff(up), SMS_INAPP)],
            None => vec![],
        },
        EventKind::ApproveExtension => {
            let mut r = vec![rule(
                "extension_decided",
                Who::UnitStaff(f.level_after),
                INAPP,
            )];
            r.extend(resident("extension_granted", SMS_INAPP));
            r
        }
        EventKind::RejectExtension => {
            vec![rule(
                "extension_decided",
                Who::UnitStaff(f.level_after),
                INAPP,
            )]
        }
        // Recorded against the approver, and the approver is told.
        EventKind::ExtensionUnanswered => vec![rule(
            "extension_unanswered",
            Who::UnitStaff(f.level_before),
            SMS_INAPP,
        )],
        EventKind::Escalate => called_up_rules(f.level_after, f.source),
        EventKind::Dispute if called_up => called_up_rules(f.level_after, f.source),
        EventKind::Dispute => vec![rule("disputed", Who::UnitStaff(f.level_after), SMS_INAPP)],
        EventKind::Return => vec![rule("returned", Who::UnitStaff(f.level_after), SMS_INAPP)],
        EventKind::SlaWarning => vec![rule(
            "sla_warning",
            match f.assignee_id {
                Some(a) => Who::User(a),
                None => Who::UnitStaff(f.level_after),
            },
            SMS_INAPP,
        )],
        EventKind::Overdue => vec![
            rule(
                "overdue",
                Who::UnitStaff(Level::Street),
                &[Channel::Sms, Channel::Email],
            ),
            rule("overdue", Who::UnitRobot(Level::Street), &[Channel::Wecom]),
        ],
        EventKind::Acknowledge => resident("acknowledged", SMS_INAPP),
        EventKind::Resolve => resident("resolved", SMS_INAPP),
        EventKind::Decline => resident("declined", SMS_INAPP),
        EventKind::WaitOnResident => resident("wait_on_resident", SMS_INAPP),
        EventKind::AutoClose => resident("auto_closed", INAPP),
        EventKind::Comment if f.internal => vec![],
        EventKind::Comment if f.actor_role == ActorRole::Resident => vec![rule(
            "resident_comment",
            Who::UnitStaff(f.level_after),
            INAPP,
        )],
        EventKind::Comment => resident("replied", SMS_INAPP),
        EventKind::Assign => match f.assignee_id {
            Some(a) => vec![rule("assigned", Who::User(a), INAPP)],
            None => vec![],
        },
        // A callback found the resident unsatisfied or pressed: the level now accountable hears
        // it at once, the resident in the app.
        EventKind::CallbackReopen => {
            let mut r = vec![rule(
                "callback_reopened",
                Who::UnitStaff(f.level_after),
                SMS_INAPP,
            )];
            r.extend(resident("callback_reopened_resident", INAPP));
            r
        }
        EventKind::Confirm
        | EventKind::Callback
        | EventKind::Withdraw
        | EventKind::RevealPhone
        | EventKind::ClockResumed => vec![],
    }
}

fn called_up_rules(to: Level, source: Source) -> Vec<Rule> {
    let mut r = vec![rule("called_up", Who::UnitStaff(to), SMS_INAPP)];
    if source != Source::OwnFinding {
        r.push(rule("called_up_resident", Who::Resident, &[Channel::Sms]));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(action: &str, role: &str, before: Level, after: Level) -> EventFacts {
        EventFacts {
            kind: EventKind::parse(action).expect("event kind"),
            actor_role: ActorRole::parse(role).expect("actor role"),
            internal: false,
            level_before: before,
            level_after: after,
            assignee_id: None,
            source: Source::App,
        }
    }

    #[test]
    fn the_table_of_the_issue() {
        use Level::*;
        let r = for_event(&facts("create", "resident", Compound, Compound));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].who, Who::UnitStaff(Compound));
        let r = for_event(&facts("escalate", "system", Compound, Community));
        assert_eq!(r[0].who, Who::UnitStaff(Community));
        assert_eq!(r[1].who, Who::Resident);
        assert_eq!(r[1].channels, &[Channel::Sms]);
        let r = for_event(&facts("dispute", "resident", Community, Street));
        assert_eq!(r[0].kind, "called_up");
        let r = for_event(&facts("dispute", "resident", Compound, Compound));
        assert_eq!(r[0].kind, "disputed");
        let r = for_event(&facts("overdue", "system", Street, Street));
        assert_eq!(r[0].channels, &[Channel::Sms, Channel::Email]);
        assert_eq!(r[1].who, Who::UnitRobot(Street));
        let mut f = facts("comment", "compound_staff", Compound, Compound);
        assert_eq!(for_event(&f)[0].kind, "replied");
        f.internal = true;
        assert!(for_event(&f).is_empty(), "internal notes notify nobody");
        assert!(for_event(&facts("reveal_phone", "compound_staff", Compound, Compound)).is_empty());
        assert!(for_event(&facts("clock_resumed", "system", Compound, Compound)).is_empty());
        let mut w = facts("sla_warning", "system", Community, Community);
        assert_eq!(for_event(&w)[0].who, Who::UnitStaff(Community));
        w.assignee_id = Some(7);
        assert_eq!(for_event(&w)[0].who, Who::User(7));
        assert_eq!(
            for_event(&facts("auto_close", "system", Compound, Compound))[0].channels,
            &[Channel::InApp]
        );
    }
}
