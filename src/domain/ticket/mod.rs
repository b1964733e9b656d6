//! The ticket: its closed sets of values (`kinds`) and who may do what (`rules`).

pub mod kinds;
pub mod rules;

pub use kinds::{
    Action, ClosedBy, EscalationReason, EventKind, Level, Status, SystemReason, Urgency,
};
pub use rules::*;
