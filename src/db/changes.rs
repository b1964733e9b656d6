//! How live changes (`crate::live`) travel, the one place that differs by backend.
//!
//! Changes announced inside a write transaction wait on this thread (`write_tx` runs the whole
//! transaction on one thread). Before PostgreSQL commits, `write_tx` sends them with
//! `pg_notify`, which the server delivers to every listening instance only if the transaction
//! commits; each instance runs one LISTEN connection ([`spawn_listener`]) that feeds its hub.
//! SQLite serves one instance: after the commit the changes go straight to the hub of the
//! `Db` the transaction ran under. A rolled-back transaction announces nothing.

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};

use super::DbConn;
use crate::live::{Change, Hub, LiveEvent};

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "huying_changes";

/// `pg_notify` refuses payloads of 8000 bytes or more; notices for many users are split.
const MAX_PAYLOAD: usize = 7000;
const NOTICE_CHUNK: usize = 400;

/// How often the LISTEN connection looks for notifications. diesel reads them without waiting
/// (`notifications_iter` consumes what has arrived), so the listener looks every so often; a
/// look costs one non-blocking read and no round trip.
const LISTEN_POLL: Duration = Duration::from_millis(50);
/// A round trip now and then notices a connection that died without a word.
const LISTEN_PING: Duration = Duration::from_secs(30);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

thread_local! {
    static PENDING: RefCell<Vec<Change>> = const { RefCell::new(Vec::new()) };
    /// The hub of the `Db` whose `run` is on this thread right now (SQLite publishes there).
    static HUB: RefCell<Option<Arc<Hub>>> = const { RefCell::new(None) };
}

/// Records a change of the current write transaction.
pub fn announce(change: Change) {
    PENDING.with(|p| p.borrow_mut().push(change));
}

/// Forgets what an earlier transaction on this thread left (one that never reached
/// `write_tx`'s end, or ran outside it).
pub(super) fn begin() {
    PENDING.with(|p| p.borrow_mut().clear());
}

/// The transaction rolled back: none of its changes happened.
pub(super) fn discard() {
    begin();
}

/// The changes announced on this thread since `begin`, taken away (a job of the SQLite writer
/// keeps them until its group has committed).
pub(super) fn take() -> Vec<Change> {
    PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// Hands committed changes to `hub`.
pub(super) fn publish(hub: &Hub, changes: Vec<Change>) {
    for c in changes {
        hub.publish(LiveEvent::Change(c));
    }
}

/// Inside the transaction, just before the commit. PostgreSQL: one notification per change,
/// delivered by the server at commit (and dropped if it rolls back), all sent with one
/// statement: a sweep's chunk changes dozens of tickets, and a round trip each cost more than
/// the rest of their call-ups.
pub(super) fn before_commit(conn: &mut DbConn) -> QueryResult<()> {
    let DbConn::Pg(c) = conn else {
        return Ok(());
    };
    let payloads: Vec<String> = PENDING.with(|p| p.borrow().iter().flat_map(payloads).collect());
    if payloads.is_empty() {
        return Ok(());
    }
    // WITH ORDINALITY keeps the changes in the order they were announced.
    diesel::sql_query(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS u(p, n) ORDER BY n",
    )
    .bind::<Text, _>(CHANNEL)
    .bind::<Array<Text>, _>(payloads)
    .execute(c)?;
    Ok(())
}

/// After the commit. SQLite: the changes go to this instance's hub now; PostgreSQL: they come
/// back through the LISTEN connection, to this instance as to the others.
pub(super) fn after_commit(conn: &DbConn) {
    let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if pending.is_empty() {
        return;
    }
    HUB.with(|h| {
        let Some(hub) = &*h.borrow() else {
            return;
        };
        if !matches!(conn, DbConn::Pg(_)) {
            publish(hub, pending);
        } else {
            // What this instance reads next must not predate its own commit, which the
            // LISTEN connection reports only a moment later.
            for c in &pending {
                hub.committed(c);
            }
        }
    });
}

/// Runs `f` with `hub` as this thread's hub (restored afterwards, also on a panic).
pub(super) fn with_hub<T>(hub: Option<&Arc<Hub>>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<Hub>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let old = self.0.take();
            HUB.with(|h| *h.borrow_mut() = old);
        }
    }
    let old = HUB.with(|h| std::mem::replace(&mut *h.borrow_mut(), hub.cloned()));
    let _restore = Restore(old);
    f()
}

/// The payloads of one change: one, or several when it names many notice recipients.
fn payloads(c: &Change) -> Vec<String> {
    let one = serde_json::to_string(c).unwrap_or_default();
    if one.len() < MAX_PAYLOAD {
        return vec![one];
    }
    let mut out = vec![serde_json::to_string(&Change {
        ticket: c.ticket,
        notice_for: Vec::new(),
        accounts: c.accounts.clone(),
    })
    .unwrap_or_default()];
    for chunk in c.notice_for.chunks(NOTICE_CHUNK) {
        out.push(
            serde_json::to_string(&Change {
                notice_for: chunk.to_vec(),
                ..Change::default()
            })
            .unwrap_or_default(),
        );
    }
    out
}

/// Starts this instance's one LISTEN connection on its own thread: notifications go to `hub`
/// for as long as the hub exists. When the connection drops it is opened again with backoff
/// (1 s doubling to 30 s), and the hub's clients are told to resync, since whatever was
/// committed meanwhile was not heard.
pub fn spawn_listener(url: String, hub: &Arc<Hub>) -> std::io::Result<()> {
    let hub = Arc::downgrade(hub);
    std::thread::Builder::new()
        .name("huying-listen".into())
        .spawn(move || listen_loop(&url, &hub))
        .map(drop)
}

fn listen_loop(url: &str, hub: &Weak<Hub>) {
    let mut backoff = Duration::from_secs(1);
    let mut connected_before = false;
    loop {
        if hub.strong_count() == 0 {
            return;
        }
        match listen_connect(url) {
            Ok(mut conn) => {
                if connected_before {
                    tracing::info!("live updates: LISTEN connection restored");
                    if let Some(h) = hub.upgrade() {
                        h.publish(LiveEvent::Resync);
                    }
                }
                connected_before = true;
                backoff = Duration::from_secs(1);
                match pump(&mut conn, hub) {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "live updates: LISTEN connection lost"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "live updates: cannot LISTEN"),
        }
        // Sleep in steps so that a stopped app's listener ends soon.
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if hub.strong_count() == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn listen_connect(url: &str) -> anyhow::Result<PgConnection> {
    super::init_openssl();
    let mut conn = PgConnection::establish(url)?;
    conn.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    Ok(conn)
}

/// Hands notifications to the hub until the connection fails (Err) or the hub is gone (Ok).
fn pump(conn: &mut PgConnection, hub: &Weak<Hub>) -> anyhow::Result<()> {
    let mut pinged = Instant::now();
    loop {
        let Some(h) = hub.upgrade() else {
            return Ok(());
        };
        for n in conn.notifications_iter() {
            let n = n?;
            if n.channel != CHANNEL {
                continue;
            }
            match serde_json::from_str::<Change>(&n.payload) {
                Ok(c) => h.publish(LiveEvent::Change(c)),
                Err(e) => tracing::warn!(error = %e, "live updates: unreadable notification"),
            }
        }
        drop(h);
        if pinged.elapsed() >= LISTEN_PING {
            conn.batch_execute("SELECT 1")?;
            pinged = Instant::now();
        }
        std::thread::sleep(LISTEN_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::TicketScope;

    #[test]
    fn many_recipients_are_split_under_the_payload_limit() {
        let c = Change {
            ticket: Some(TicketScope {
                id: 1,
                street_id: 2,
                community_id: 3,
                compound_id: 4,
                resident_id: 5,
            }),
            notice_for: (1_000_000_000..1_000_002_000).collect(),
            accounts: vec![6],
        };
        let parts = payloads(&c);
        assert_eq!(parts.len(), 1 + 2000 / NOTICE_CHUNK);
        assert!(parts.iter().all(|p| p.len() < MAX_PAYLOAD));
        let back: Vec<Change> = parts
            .iter()
            .map(|p| serde_json::from_str(p).expect("json"))
            .collect();
        assert_eq!(back[0].ticket, c.ticket);
        assert_eq!(back[0].accounts, c.accounts);
        let ids: Vec<i64> = back.iter().flat_map(|b| b.notice_for.clone()).collect();
        assert_eq!(ids, c.notice_for);
    }

    /// On SQLite the hub hears of a change only once its transaction committed.
    #[test]
    fn only_committed_changes_are_published() {
        let mut conn = crate::db::Target::Sqlite(":memory:".into())
            .connect()
            .expect("sqlite");
        let hub = Hub::new(8);
        let mut rx = hub.subscribe();
        let change = |id| Change {
            notice_for: vec![id],
            ..Change::default()
        };
        with_hub(Some(&hub), || {
            let r: Result<(), diesel::result::Error> = crate::db::write_tx(&mut conn, |_| {
                announce(change(1));
                Err(diesel::result::Error::RollbackTransaction)
            });
            assert!(r.is_err());
            crate::db::write_tx(&mut conn, |_| {
                announce(change(2));
                assert!(rx.try_recv().is_err(), "published before the commit");
                Ok::<_, diesel::result::Error>(())
            })
            .expect("commit");
        });
        let got = rx.try_recv().expect("the committed change");
        assert_eq!(*got, LiveEvent::Change(change(2)));
        assert!(
            rx.try_recv().is_err(),
            "the rolled-back change was published"
        );
        // Outside `Db::run` there is no hub: nothing is kept for later either.
        crate::db::write_tx(&mut conn, |_| {
            announce(change(3));
            Ok::<_, diesel::result::Error>(())
        })
        .expect("commit");
        assert!(rx.try_recv().is_err());
        assert!(PENDING.with(|p| p.borrow().is_empty()));
    }

    #[test]
    fn a_small_change_is_one_payload() {
        let c = Change {
            notice_for: vec![3],
            ..Change::default()
        };
        assert_eq!(payloads(&c), vec![r#"{"n":[3]}"#.to_string()]);
    }
}
