//! The ticket: its closed sets of values (`kinds`), who may do what (`rules`), the typed ticket
//! (`state`) and the one function that changes it (`transition`).

pub mod deadlines;
pub mod kinds;
pub mod rules;
pub mod state;
pub mod transition;

#[cfg(test)]
pub(crate) mod tests;

pub use deadlines::{Clocks, Deadlines};
pub use kinds::{
    Action, ClosedBy, EscalationReason, EventKind, Level, Source, Status, SystemReason, Urgency,
};
pub use rules::*;
pub use state::{no_deadline, NewCall, Ticket};
pub use transition::{
    apply, call, due_effect, next_look, Actor, ClockName, Command, Event, Refusal, Transition,
};
