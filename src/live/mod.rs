//! Live updates (`GET /api/v1/stream`, issue #15): what changed, announced from inside the
//! transaction that changed it, delivered to this instance's subscribers once it committed.
//!
//! A [`Change`] is announced where ticket changes and in-app notices are stored
//! (`service::tickets::commit`, `notify::enqueue_for_event`). `db::write_tx` keeps the changes
//! of its transaction pending and, on PostgreSQL, sends them with `pg_notify` just before the
//! commit (so they are delivered only if it commits, to every instance listening); on SQLite
//! (one instance) it publishes them to the [`Hub`] after the commit. The backend-specific part
//! lives in `db::changes`. Each subscriber filters what it may see ([`Scope`]).

pub mod stream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::auth::AuthUser;
use crate::db::models::TicketRow;
use crate::domain::role::Role;

/// One committed change, small enough for a `pg_notify` payload (at most 8000 bytes). Short
/// field names: it crosses the database once per change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The ticket that changed, with the units and the resident that decide who may see it.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketScope>,
    /// Users who got a new in-app notice.
    #[serde(rename = "n", default, skip_serializing_if = "Vec::is_empty")]
    pub notice_for: Vec<i64>,
    /// Users whose account changed (name, unit, disabled, signed out: `auth::Accounts` forgets
    /// what it kept of them).
    #[serde(rename = "u", default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<i64>,
}

impl Change {
    /// Whether this change moves the hub's account generation.
    pub fn touches_accounts(&self) -> bool {
        !self.accounts.is_empty()
    }
}

/// A ticket's id and what `service::tickets::query::filtered` scopes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketScope {
    #[serde(rename = "i")]
    pub id: i64,
    #[serde(rename = "s")]
    pub street_id: i64,
    #[serde(rename = "c")]
    pub community_id: i64,
    #[serde(rename = "p")]
    pub compound_id: i64,
    #[serde(rename = "r")]
    pub resident_id: i64,
}

impl TicketScope {
    pub fn of(t: &TicketRow) -> TicketScope {
        TicketScope {
            id: t.id,
            street_id: t.street_id,
            community_id: t.community_id,
            compound_id: t.compound_id,
            resident_id: t.resident_id,
        }
    }
}

/// What a subscriber receives from the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    Change(Change),
    /// Changes may have been missed (the LISTEN connection was re-established): clients reload.
    Resync,
    /// The process is stopping: streams end now (clients reconnect, behind a proxy to another
    /// instance) rather than hold the server's graceful shutdown for its whole timeout.
    Closing,
}

/// Records that `t` changed, in the current write transaction (announced after it commits).
pub fn ticket_changed(t: &TicketRow) {
    scope_changed(TicketScope::of(t));
}

/// Records that the ticket of `scope` changed, in the current write transaction.
pub fn scope_changed(scope: TicketScope) {
    crate::db::changes::announce(Change {
        ticket: Some(scope),
        ..Change::default()
    });
}

/// Records that the account of `user_id` changed, in the current write transaction.
pub fn account_changed(user_id: i64) {
    crate::db::changes::announce(Change {
        accounts: vec![user_id],
        ..Change::default()
    });
}

/// Records new in-app notices for `users`, in the current write transaction.
pub fn notices_for(users: Vec<i64>) {
    if users.is_empty() {
        return;
    }
    crate::db::changes::announce(Change {
        notice_for: users,
        ..Change::default()
    });
}

/// This instance's fan-out to its stream clients. Sending never waits: each subscriber has a
/// bounded buffer of its own, and one that falls behind is told to resync.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    /// Moves on every ticket change this instance learns of (its own at commit, the others'
    /// through the database): what was read at an older generation may be out of date.
    generation: AtomicU64,
    /// The same for changes of accounts (see [`Change::accounts`]).
    accounts: AtomicU64,
}

impl Hub {
    /// `capacity`: events buffered per subscriber before it lags.
    pub fn new(capacity: usize) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Arc::new(Hub {
            tx,
            generation: AtomicU64::new(0),
            accounts: AtomicU64::new(0),
        })
    }

    /// See `accounts`: read before reading an account that is kept.
    pub fn account_generation(&self) -> u64 {
        self.accounts.load(Ordering::Acquire)
    }

    /// An account changed (committed by this instance, announced or not yet).
    fn accounts_changed(&self) {
        self.accounts.fetch_add(1, Ordering::AcqRel);
    }

    /// See `generation`: read before a read whose result is kept.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A ticket changed (committed by this instance, announced or not yet).
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn publish(&self, event: LiveEvent) {
        match &event {
            LiveEvent::Change(c) => self.committed(c),
            // Missed notifications may have named any ticket or account.
            LiveEvent::Resync => {
                self.changed();
                self.accounts_changed();
            }
            LiveEvent::Closing => {}
        }
        // No subscriber is not an error: nobody is watching right now.
        let _ = self.tx.send(Arc::new(event));
    }

    /// `c` committed: what was read before it may be out of date.
    pub fn committed(&self, c: &Change) {
        if c.ticket.is_some() {
            self.changed();
        }
        if c.touches_accounts() {
            self.accounts_changed();
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }

    /// Streams open right now (each holds one receiver).
    pub fn clients(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// Ends every stream of `hub` when the process is asked to stop (SIGTERM or Ctrl-C; the HTTP
/// server hears the same signal and then waits for open responses, which an endless stream
/// otherwise makes it do for its whole shutdown timeout).
pub async fn close_on_shutdown(hub: std::sync::Weak<Hub>) {
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::pin!(term);
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if r.is_err() {
                // No Ctrl-C handler here: wait for SIGTERM alone.
                (&mut term).await;
            }
        }
        _ = &mut term => {}
    }
    if let Some(h) = hub.upgrade() {
        tracing::info!("live updates: closing the streams for shutdown");
        h.publish(LiveEvent::Closing);
    }
}

/// Which changes a user may see: the same rule as the ticket list
/// (`service::tickets::query::filtered`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    user_id: i64,
    role: Role,
    unit: Option<i64>,
}

impl Scope {
    pub fn of(user: &AuthUser) -> Scope {
        Scope {
            user_id: user.id,
            role: user.role,
            unit: user.org_unit_id,
        }
    }

    pub fn sees_ticket(&self, t: &TicketScope) -> bool {
        match self.role {
            Role::Resident => t.resident_id == self.user_id,
            Role::CompoundStaff => self.unit == Some(t.compound_id),
            Role::CommunityStaff => self.unit == Some(t.community_id),
            Role::StreetStaff => self.unit == Some(t.street_id),
            Role::Admin => true,
        }
    }

    pub fn gets_notice(&self, c: &Change) -> bool {
        c.notice_for.contains(&self.user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TicketScope {
        TicketScope {
            id: 9,
            street_id: 1,
            community_id: 2,
            compound_id: 3,
            resident_id: 40,
        }
    }

    fn scope(role: Role, user_id: i64, unit: Option<i64>) -> Scope {
        Scope {
            user_id,
            role,
            unit,
        }
    }

    #[test]
    fn scopes_follow_the_ticket_list() {
        assert!(scope(Role::Resident, 40, None).sees_ticket(&t()));
        assert!(!scope(Role::Resident, 41, None).sees_ticket(&t()));
        assert!(scope(Role::CompoundStaff, 5, Some(3)).sees_ticket(&t()));
        assert!(!scope(Role::CompoundStaff, 5, Some(2)).sees_ticket(&t()));
        assert!(scope(Role::CommunityStaff, 5, Some(2)).sees_ticket(&t()));
        assert!(!scope(Role::CommunityStaff, 5, Some(3)).sees_ticket(&t()));
        assert!(scope(Role::StreetStaff, 5, Some(1)).sees_ticket(&t()));
        assert!(!scope(Role::StreetStaff, 5, None).sees_ticket(&t()));
        assert!(scope(Role::Admin, 5, None).sees_ticket(&t()));
    }

    #[test]
    fn payload_is_small_and_round_trips() {
        let c = Change {
            ticket: Some(t()),
            notice_for: vec![7, 8],
            ..Change::default()
        };
        let s = serde_json::to_string(&c).expect("json");
        assert_eq!(s, r#"{"t":{"i":9,"s":1,"c":2,"p":3,"r":40},"n":[7,8]}"#);
        assert_eq!(serde_json::from_str::<Change>(&s).expect("parse"), c);
        let a = Change {
            accounts: vec![5],
            ..Change::default()
        };
        let s = serde_json::to_string(&a).expect("json");
        assert_eq!(s, r#"{"u":[5]}"#);
        assert_eq!(serde_json::from_str::<Change>(&s).expect("parse"), a);
    }

    #[test]
    fn account_changes_move_the_account_generation_only() {
        let hub = Hub::new(4);
        let (tickets, accounts) = (hub.generation(), hub.account_generation());
        hub.publish(LiveEvent::Change(Change {
            accounts: vec![5],
            ..Change::default()
        }));
        assert_eq!(hub.generation(), tickets);
        assert_eq!(hub.account_generation(), accounts + 1);
        hub.publish(LiveEvent::Change(Change {
            ticket: Some(t()),
            ..Change::default()
        }));
        assert_eq!(hub.generation(), tickets + 1);
        assert_eq!(hub.account_generation(), accounts + 1);
        // Missed notifications may have named any account.
        hub.publish(LiveEvent::Resync);
        assert_eq!(hub.account_generation(), accounts + 2);
    }
}
