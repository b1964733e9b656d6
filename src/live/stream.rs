//! One client's Server-Sent Events body: what its scope lets it see, heartbeats, and the end
//! when its access token expires.
//!
//! Events (each `data` is JSON):
//! - `ready` `{"heartbeat_secs": n}` once, after the `retry:` hint;
//! - `tickets` `{"ids": [...]}`: tickets the caller may see changed (coalesced per burst);
//! - `notice` `{}`: the caller has new in-app notices (read `GET /me` for the unread count);
//! - `resync` `{}`: changes may have been missed (the client fell behind, or this instance
//!   re-established its LISTEN connection): reload what is shown;
//! - `expired` `{}`: the access token expired; the stream ends, reconnect with a fresh token.
//!
//! Lines starting with `:` are heartbeats.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

use super::{Hub, LiveEvent, Scope};
use crate::config::StreamSettings;

struct Client {
    rx: Receiver<Arc<LiveEvent>>,
    scope: Scope,
    heartbeat: tokio::time::Interval,
    expires: Pin<Box<tokio::time::Sleep>>,
    opening: Option<Bytes>,
    ended: bool,
}

/// What a burst of events comes to for one client.
#[derive(Debug, Default, PartialEq, Eq)]
struct Batch {
    ids: BTreeSet<i64>,
    notice: bool,
    resync: bool,
    closing: bool,
}

impl Batch {
    fn add(&mut self, scope: &Scope, ev: &LiveEvent) {
        match ev {
            LiveEvent::Resync => self.resync = true,
            LiveEvent::Closing => self.closing = true,
            LiveEvent::Change(c) => {
                if let Some(t) = &c.ticket {
                    if scope.sees_ticket(t) {
                        self.ids.insert(t.id);
                    }
                }
                if scope.gets_notice(c) {
                    self.notice = true;
                }
            }
        }
    }

    /// The SSE text, or None when nothing in the burst was for this client.
    fn render(&self) -> Option<Bytes> {
        if self.resync {
            // Reloading everything covers whatever else the burst held.
            return Some(event("resync", "{}"));
        }
        let mut out = String::new();
        if !self.ids.is_empty() {
            let ids = serde_json::json!({ "ids": self.ids });
            out.push_str(&format!("event: tickets\ndata: {ids}\n\n"));
        }
        if self.notice {
            out.push_str("event: notice\ndata: {}\n\n");
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The body of `GET /api/v1/stream` for a caller with `scope` whose token is valid for `ttl`.
/// Never blocks the hub: a client that stops reading stops being polled, its receiver falls
/// behind, and when it reads again it gets `resync`.
pub fn sse(
    hub: &Hub,
    scope: Scope,
    cfg: &StreamSettings,
    ttl: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> + 'static {
    let every = Duration::from_secs(cfg.heartbeat_secs.max(1));
    let opening = format!(
        "retry: {}\nevent: ready\ndata: {}\n\n",
        cfg.retry_ms,
        serde_json::json!({ "heartbeat_secs": every.as_secs() })
    );
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // A client that was not read from for a while gets one heartbeat, not a burst.
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let client = Client {
        rx: hub.subscribe(),
        scope,
        heartbeat,
        expires: Box::pin(tokio::time::sleep(ttl)),
        opening: Some(Bytes::from(opening)),
        ended: false,
    };
    futures_util::stream::unfold(client, |mut c| async move {
        if c.ended {
            return None;
        }
        if let Some(first) = c.opening.take() {
            return Some((Ok(first), c));
        }
        let chunk = next_chunk(&mut c).await?;
        Some((Ok(chunk), c))
    })
}

/// Waits for the next thing to send; None ends the stream.
async fn next_chunk(c: &mut Client) -> Option<Bytes> {
    loop {
        let first = tokio::select! {
            _ = &mut c.expires => {
                c.ended = true;
                return Some(event("expired", "{}"));
            }
            _ = c.heartbeat.tick() => return Some(Bytes::from_static(b": ping\n\n")),
            r = c.rx.recv() => r,
        };
        let mut batch = Batch::default();
        match first {
            Ok(ev) => batch.add(&c.scope, &ev),
            Err(RecvError::Lagged(_)) => batch.resync = true,
            // The hub is gone: the app is stopping.
            Err(RecvError::Closed) => return None,
        }
        // Whatever else has arrived goes out in the same chunk.
        loop {
            match c.rx.try_recv() {
                Ok(ev) => batch.add(&c.scope, &ev),
                Err(TryRecvError::Lagged(_)) => batch.resync = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        if batch.closing {
            // What came before the shutdown still goes out; then the stream ends.
            c.ended = true;
            return batch.render();
        }
        if let Some(bytes) = batch.render() {
            return Some(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::{Change, TicketScope};

    fn cfg(buffer: usize) -> StreamSettings {
        StreamSettings {
            heartbeat_secs: 15,
            retry_ms: 5000,
            buffer,
        }
    }

    fn admin() -> Scope {
        Scope::of(&crate::auth::AuthUser {
            id: 1,
            role: crate::domain::role::Role::Admin,
            org_unit_id: None,
            display_name: String::new(),
        })
    }

    fn ticket(id: i64) -> LiveEvent {
        LiveEvent::Change(Change {
            ticket: Some(TicketScope {
                id,
                street_id: 1,
                community_id: 2,
                compound_id: 3,
                resident_id: 4,
            }),
            ..Change::default()
        })
    }

    async fn next_text<S: Stream<Item = Result<Bytes, Infallible>> + Unpin>(s: &mut S) -> String {
        use futures_util::StreamExt;
        let item = tokio::time::timeout(Duration::from_secs(2), s.next())
            .await
            .expect("in time")
            .expect("an item");
        match item {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(never) => match never {},
        }
    }

    /// A client nobody reads from falls behind on its own: the hub never waits for it, a
    /// reading client gets every change, and the stalled one is told to resync when it reads.
    #[tokio::test]
    async fn a_stalled_client_lags_alone_and_is_told_to_resync() {
        let hub = Hub::new(4);
        let settings = cfg(4);
        let mut stalled = Box::pin(sse(&hub, admin(), &settings, Duration::from_secs(60)));
        let mut reading = Box::pin(sse(&hub, admin(), &settings, Duration::from_secs(60)));
        assert!(next_text(&mut stalled)
            .await
            .starts_with("retry: 5000\nevent: ready\n"));
        assert!(next_text(&mut reading).await.contains("event: ready"));
        for id in 1..=20 {
            hub.publish(ticket(id));
            assert_eq!(
                next_text(&mut reading).await,
                format!("event: tickets\ndata: {{\"ids\":[{id}]}}\n\n")
            );
        }
        assert_eq!(next_text(&mut stalled).await, "event: resync\ndata: {}\n\n");
        // Back in step afterwards.
        hub.publish(ticket(21));
        assert_eq!(
            next_text(&mut stalled).await,
            "event: tickets\ndata: {\"ids\":[21]}\n\n"
        );
    }

    #[tokio::test]
    async fn heartbeats_then_the_end_at_expiry() {
        let hub = Hub::new(4);
        let mut settings = cfg(4);
        settings.heartbeat_secs = 1;
        let mut s = Box::pin(sse(&hub, admin(), &settings, Duration::from_millis(1500)));
        assert!(next_text(&mut s).await.contains("{\"heartbeat_secs\":1}"));
        assert_eq!(next_text(&mut s).await, ": ping\n\n");
        assert_eq!(next_text(&mut s).await, "event: expired\ndata: {}\n\n");
        use futures_util::StreamExt;
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn streams_end_when_the_process_stops() {
        let hub = Hub::new(4);
        let mut s = Box::pin(sse(&hub, admin(), &cfg(4), Duration::from_secs(60)));
        assert!(next_text(&mut s).await.contains("event: ready"));
        hub.publish(ticket(3));
        hub.publish(LiveEvent::Closing);
        assert_eq!(
            next_text(&mut s).await,
            "event: tickets\ndata: {\"ids\":[3]}\n\n"
        );
        use futures_util::StreamExt;
        assert!(s.next().await.is_none());
    }

    #[test]
    fn a_burst_is_one_chunk_of_what_the_client_may_see() {
        let user = crate::auth::AuthUser {
            id: 40,
            role: crate::domain::role::Role::Resident,
            org_unit_id: None,
            display_name: String::new(),
        };
        let scope = Scope::of(&user);
        let change = |id, resident_id, notice_for: Vec<i64>| {
            LiveEvent::Change(Change {
                ticket: Some(TicketScope {
                    id,
                    street_id: 1,
                    community_id: 2,
                    compound_id: 3,
                    resident_id,
                }),
                notice_for,
                ..Change::default()
            })
        };
        let mut b = Batch::default();
        b.add(&scope, &change(7, 40, vec![]));
        b.add(&scope, &change(8, 41, vec![41]));
        b.add(&scope, &change(5, 40, vec![40]));
        assert_eq!(
            b.render(),
            Some(Bytes::from(
                "event: tickets\ndata: {\"ids\":[5,7]}\n\nevent: notice\ndata: {}\n\n"
            ))
        );
        let mut other = Batch::default();
        other.add(&scope, &change(8, 41, vec![41]));
        assert_eq!(other.render(), None);
        other.add(&scope, &LiveEvent::Resync);
        assert_eq!(
            other.render(),
            Some(Bytes::from("event: resync\ndata: {}\n\n"))
        );
    }
}
