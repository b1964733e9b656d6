//! Use cases over a database connection, shared by the HTTP handlers and the CLI.

pub mod api_keys;
pub mod auth;
pub mod callbacks;
pub mod limits;
pub mod open311;
pub mod org;
pub mod privacy;
pub mod sla;
pub mod stats;
pub mod sweeper;
pub mod tickets;
pub mod users;
