//! The queue's `total`, counted when asked and kept until a ticket changes. Counting a scope
//! costs what the scope holds (a street with 100,000 tickets: milliseconds per request), while
//! a street changes a few times a minute and its secretaries reload the queue far more often.
//! A kept total is used only while no ticket changed since it was counted (the live hub's
//! generation: this instance's commits at once, other instances' through the database within
//! moments) and for at most [`KEEP`], which bounds how long a change the hub missed (another
//! process writing the SQLite file, e.g. `huying sweep`) can leave a total behind.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::query::TicketFilter;
use crate::auth::AuthUser;
use crate::domain::role::Role;

/// The longest a kept total is used.
pub const KEEP: Duration = Duration::from_secs(30);
/// More keys than this and the oldest generation's are dropped (the key space is the filters
/// callers try, which is not bounded).
const MOST: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Kept {
    generation: u64,
    at: Instant,
    total: i64,
}

#[derive(Debug, Default)]
pub struct Totals {
    kept: Mutex<HashMap<String, Kept>>,
}

impl Totals {
    /// The key of a caller's scope and filters (paging and order aside), or `None` when the
    /// count also depends on the clock (overdue, due soon), which no change announces.
    pub fn key(user: &AuthUser, f: &TicketFilter) -> Option<String> {
        if f.overdue.is_some() || f.due_soon == Some(true) {
            return None;
        }
        let mut f = f.clone();
        f.cursor = None;
        f.limit = None;
        f.sort = None;
        // Staff of one unit share a scope, unless the filter is their own assignments.
        let who = match user.role {
            Role::Resident | Role::Admin => user.id,
            _ if f.assigned_to_me == Some(true) => user.id,
            _ => 0,
        };
        Some(format!(
            "{:?}:{who}:{}:{f:?}",
            user.role,
            user.org_unit_id.unwrap_or(-1)
        ))
    }

    /// The total kept under `key` if nothing changed since (`generation` is the hub's now).
    pub fn get(&self, key: &str, generation: u64) -> Option<i64> {
        let kept = self.kept.lock().ok()?;
        kept.get(key)
            .filter(|k| k.generation == generation && k.at.elapsed() < KEEP)
            .map(|k| k.total)
    }

    /// Keeps `total`, counted at `generation` (read before the count).
    pub fn put(&self, key: String, generation: u64, total: i64) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.len() >= MOST {
            kept.retain(|_, k| k.generation == generation && k.at.elapsed() < KEEP);
            if kept.len() >= MOST {
                kept.clear();
            }
        }
        kept.insert(
            key,
            Kept {
                generation,
                at: Instant::now(),
                total,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(unit: i64) -> AuthUser {
        AuthUser {
            id: 7,
            role: Role::CommunityStaff,
            org_unit_id: Some(unit),
            display_name: "社区书记".into(),
        }
    }

    #[test]
    fn a_total_is_kept_until_the_generation_moves() {
        let t = Totals::default();
        let key = Totals::key(&staff(3), &TicketFilter::default()).expect("key");
        assert_eq!(t.get(&key, 1), None);
        t.put(key.clone(), 1, 42);
        assert_eq!(t.get(&key, 1), Some(42));
        assert_eq!(t.get(&key, 2), None, "a ticket changed since");
    }

    #[test]
    fn paging_shares_a_key_and_scope_and_filters_do_not() {
        let first = TicketFilter::default();
        let next = TicketFilter {
            cursor: Some("abc".into()),
            limit: Some(20),
            ..TicketFilter::default()
        };
        let open = TicketFilter {
            status: Some("open".into()),
            ..TicketFilter::default()
        };
        let k = |u: i64, f: &TicketFilter| Totals::key(&staff(u), f);
        assert_eq!(k(3, &first), k(3, &next));
        assert_ne!(k(3, &first), k(4, &first));
        assert_ne!(k(3, &first), k(3, &open));
        let mut colleague = staff(3);
        colleague.id = 8;
        assert_eq!(Totals::key(&colleague, &first), k(3, &first));
        let mine = TicketFilter {
            assigned_to_me: Some(true),
            ..TicketFilter::default()
        };
        assert_ne!(Totals::key(&colleague, &mine), k(3, &mine));
    }

    #[test]
    fn counts_that_move_with_the_clock_are_not_kept() {
        let overdue = TicketFilter {
            overdue: Some(true),
            ..TicketFilter::default()
        };
        let soon = TicketFilter {
            due_soon: Some(true),
            ..TicketFilter::default()
        };
        assert_eq!(Totals::key(&staff(3), &overdue), None);
        assert_eq!(Totals::key(&staff(3), &soon), None);
    }
}
