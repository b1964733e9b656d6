//! Integration tests: the real service over HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod accountability;
mod auth;
mod backup;
mod browser;
mod callbacks;
mod cli;
mod http;
mod input;
mod limits;
mod location;
mod logs;
mod metrics;
mod notifications;
mod open311;
mod openapi;
mod org_users;
mod page_gaps;
mod privacy;
mod queue_totals;
mod readiness;
mod sessions;
mod sla;
mod stats;
mod stream;
mod tickets;
mod typed_core;
mod uploads;
mod web;
mod write_path;
