//! Huying (呼应): the three-tier call-and-response chain of a Chinese street.

pub mod api;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod kept;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod server;
pub mod service;
pub mod sms;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
