//! Pure domain rules: no database, no web framework.

pub mod clock;
pub mod org;
pub mod role;
pub mod validate;
