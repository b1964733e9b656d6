//! Integration tests: the real service over HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod auth;
mod backup;
mod browser;
mod cli;
mod notifications;
mod openapi;
mod org_users;
mod privacy;
mod sla;
mod stats;
mod tickets;
mod typed_core;
mod uploads;
mod web;
