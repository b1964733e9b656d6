use std::sync::Arc;

use crate::auth::password::HashPool;
use crate::auth::tokens::JwtKeys;
use crate::config::Settings;
use crate::db::Db;
use crate::domain::clock::Clock;
use crate::limits::{AddressLimits, PartnerLimits};
use crate::metrics::Metrics;
use crate::service::sla::SlaEngine;
use crate::sms::SmsSender;

/// Everything a handler needs, shared by all workers.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub clock: Arc<dyn Clock>,
    pub sms: Arc<dyn SmsSender>,
    pub jwt: Arc<JwtKeys>,
    pub sla: Arc<SlaEngine>,
    /// The only place passwords are hashed or checked while serving (bounded).
    pub hasher: Arc<HashPool>,
    pub address_limits: Arc<AddressLimits>,
    /// Per-key rate limits of partner systems (Open311).
    pub partner_limits: Arc<PartnerLimits>,
    /// This process's metrics (`/metrics`); recorded whether or not the endpoint is on.
    pub metrics: Arc<Metrics>,
    /// Live updates: the committed changes this instance's stream clients hear of.
    pub live: Arc<crate::live::Hub>,
    /// The queue's totals, kept until a ticket changes.
    pub totals: Arc<crate::service::tickets::totals::Totals>,
    /// The queue's pages of the units' shared scopes, kept until a ticket changes.
    pub pages: Arc<crate::service::tickets::totals::Pages>,
    /// Signed-in users' accounts, kept until an account changes.
    pub accounts: Arc<crate::auth::extractor::Accounts>,
}
