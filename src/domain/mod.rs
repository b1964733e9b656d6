//! Pure domain rules: no database, no web framework.

pub mod calendar;
pub mod callback;
pub mod channel;
pub mod clock;
pub mod ids;
pub mod ledger;
pub mod metrics;
pub mod org;
pub mod partner;
pub mod privacy;
pub mod role;
pub mod sla;
pub mod text_enum;
pub mod ticket;
pub mod validate;
