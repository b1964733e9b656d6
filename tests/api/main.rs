//! Integration tests: the real service over HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod auth;
mod browser;
mod cli;
mod limits;
mod notifications;
mod openapi;
mod org_users;
mod sessions;
mod sla;
mod stats;
mod tickets;
mod typed_core;
mod web;
