//! The queue's `total` and its pages, read when asked and kept until a ticket changes.
//! Counting a scope costs what the scope holds (a street with 100,000 tickets: milliseconds per
//! request) and a page's rows cost a range scan and their decoding, while a street changes a few
//! times a minute and its secretaries reload the queue far more often.
//! What is kept is used only while no ticket changed since it was read (the live hub's
//! generation: this instance's commits at once, other instances' through the database within
//! moments) and for at most a fixed time, which bounds how long a change the hub missed
//! (another process writing the SQLite file, e.g. `huying sweep`) can leave it behind.
//! A kept page holds its rows and what their views looked up (units' and people's names,
//! categories, photo counts: a photo added is announced like a ticket change; a name changed
//! shows within [`KEEP_PAGE`]); what is derived from the clock (actions, overdue marks, time
//! left) is computed again on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::query::{Page, TicketFilter};
use super::view::Lookups;
use crate::auth::AuthUser;
use crate::db::models::TicketRow;
use crate::domain::role::Role;

/// The longest a kept total is used.
pub const KEEP: Duration = Duration::from_secs(30);
/// The longest a kept page is used: shorter than a total's, because its rows are shown.
pub const KEEP_PAGE: Duration = Duration::from_secs(5);

/// What one kept value weighs against its keeper's budget.
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for i64 {
    fn weight(&self) -> usize {
        1
    }
}

/// A page of a queue and what its views looked up.
#[derive(Debug)]
pub struct KeptPage {
    pub page: Page,
    pub lookups: Lookups,
    /// Each row's view as JSON up to its clock fields (`TicketView::kept_json`), for the role
    /// the page key names; `None` if a view could not be split there.
    pub json: Option<Vec<Vec<u8>>>,
}

impl Weigh for Arc<KeptPage> {
    fn weight(&self) -> usize {
        self.page.weight()
            + self.lookups.weight()
            + self
                .json
                .as_ref()
                .map_or(0, |j| j.iter().map(Vec::len).sum::<usize>())
    }
}

impl Weigh for Page {
    /// About the bytes a page holds: the rows and their texts.
    fn weight(&self) -> usize {
        fn text(s: &Option<String>) -> usize {
            s.as_ref().map_or(0, String::len)
        }
        self.rows
            .iter()
            .map(|t: &TicketRow| {
                std::mem::size_of::<TicketRow>()
                    + t.reference.len()
                    + t.title.len()
                    + t.description.len()
                    + text(&t.location_text)
                    + text(&t.assigned_handler)
                    + text(&t.resolution_note)
                    + text(&t.decline_reason)
                    + text(&t.rating_comment)
                    + text(&t.external_ref)
            })
            .sum::<usize>()
            + self.next_cursor.as_ref().map_or(0, String::len)
    }
}

#[derive(Debug, Clone)]
struct Kept<V> {
    generation: u64,
    at: Instant,
    weight: usize,
    value: V,
    /// When one caller set out to read the value again after it grew old (see [`Keeper::get`]).
    refreshing: Option<Instant>,
}

/// How long the other callers keep using a value that grew old while one caller reads it again.
pub const REFRESH_GRACE: Duration = Duration::from_millis(500);

/// Whether the value read at `at` is still used: young enough; or grown old with nothing
/// announced, while another caller reads it again (since less than [`REFRESH_GRACE`]). A caller
/// told no marks the refresh as under way (`refreshing`) when it is the first.
pub fn fresh_enough(at: Instant, keep: Duration, refreshing: &mut Option<Instant>) -> bool {
    let age = at.elapsed();
    if age < keep {
        return true;
    }
    // Every caller reading a popular page or account again at once, each at the cost of a
    // miss, made the slowest requests of a busy queue several times slower than the rest.
    if age < keep + REFRESH_GRACE && refreshing.is_some_and(|r| r.elapsed() < REFRESH_GRACE) {
        return true;
    }
    *refreshing = Some(Instant::now());
    false
}

#[derive(Debug)]
struct Shelf<V> {
    kept: HashMap<String, Kept<V>>,
    /// The sum of the kept values' weights.
    used: usize,
}

/// Values read at a generation of the live hub, each under its key, within a weight budget.
#[derive(Debug)]
pub struct Keeper<V> {
    shelf: Mutex<Shelf<V>>,
    keep: Duration,
    /// More than this in all and the older generations' values are dropped (the key space is
    /// the filters callers try, which is not bounded).
    budget: usize,
}

/// The queue's totals: a count per scope and filters.
pub type Totals = Keeper<i64>;
/// The queue's pages: rows, cursor, total and lookups per scope, filters, order, page and size.
pub type Pages = Keeper<Arc<KeptPage>>;

impl Default for Totals {
    fn default() -> Totals {
        Keeper::new(KEEP, 10_000)
    }
}

impl Default for Pages {
    /// 8 MiB of rows: a few hundred first pages of the units' shared queues.
    fn default() -> Pages {
        Keeper::new(KEEP_PAGE, 8 << 20)
    }
}

impl<V: Clone + Weigh> Keeper<V> {
    pub fn new(keep: Duration, budget: usize) -> Keeper<V> {
        Keeper {
            shelf: Mutex::new(Shelf {
                kept: HashMap::new(),
                used: 0,
            }),
            keep,
            budget,
        }
    }

    /// The value kept under `key` if nothing changed since (`generation` is the hub's now) and
    /// it is fresh enough ([`fresh_enough`]).
    pub fn get(&self, key: &str, generation: u64) -> Option<V> {
        let mut shelf = self.shelf.lock().ok()?;
        let k = shelf.kept.get_mut(key)?;
        if k.generation != generation || !fresh_enough(k.at, self.keep, &mut k.refreshing) {
            return None;
        }
        Some(k.value.clone())
    }

    /// Keeps `value`, read at `generation` (read before the value).
    pub fn put(&self, key: String, generation: u64, value: V) {
        let Ok(mut guard) = self.shelf.lock() else {
            return;
        };
        let shelf = &mut *guard;
        let weight = value.weight();
        if weight > self.budget {
            return;
        }
        if shelf.used + weight > self.budget {
            let keep = self.keep;
            shelf
                .kept
                .retain(|_, k| k.generation == generation && k.at.elapsed() < keep);
            shelf.used = shelf.kept.values().map(|k| k.weight).sum();
            if shelf.used + weight > self.budget {
                shelf.kept.clear();
                shelf.used = 0;
            }
        }
        let new = Kept {
            generation,
            at: Instant::now(),
            weight,
            value,
            refreshing: None,
        };
        shelf.used += weight;
        if let Some(old) = shelf.kept.insert(key, new) {
            shelf.used -= old.weight;
        }
    }
}

/// The key of a caller's scope and filters (paging and order aside), or `None` when the
/// result also depends on the clock (overdue, due soon), which no change announces.
pub fn scope_key(user: &AuthUser, f: &TicketFilter) -> Option<String> {
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

/// The key of one page of a scope shared by a unit's staff (see [`scope_key`]), or `None`:
/// a resident's or one person's own queue is read by that person alone, so keeping it would
/// rarely be used.
pub fn page_key(user: &AuthUser, f: &TicketFilter) -> Option<String> {
    if !user.role.is_staff() || f.assigned_to_me == Some(true) {
        return None;
    }
    let scope = scope_key(user, f)?;
    Some(format!("{scope}|{:?}|{:?}|{:?}", f.sort, f.limit, f.cursor))
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
    fn one_caller_reads_an_old_value_again_while_the_others_keep_it() {
        let keep = Duration::from_millis(100);
        let mut refreshing = None;
        let young = Instant::now();
        assert!(fresh_enough(young, keep, &mut refreshing));
        assert_eq!(refreshing, None);
        let Some(old) = Instant::now().checked_sub(keep + Duration::from_millis(1)) else {
            return;
        };
        assert!(
            !fresh_enough(old, keep, &mut refreshing),
            "the first reads again"
        );
        assert!(refreshing.is_some());
        assert!(
            fresh_enough(old, keep, &mut refreshing),
            "the others keep it"
        );
        // Past the grace nobody uses it: the bound on an unannounced change holds.
        let Some(older) = Instant::now().checked_sub(keep + REFRESH_GRACE) else {
            return;
        };
        assert!(!fresh_enough(older, keep, &mut refreshing));
    }

    #[test]
    fn a_total_is_kept_until_the_generation_moves() {
        let t = Totals::default();
        let key = scope_key(&staff(3), &TicketFilter::default()).expect("key");
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
        let k = |u: i64, f: &TicketFilter| scope_key(&staff(u), f);
        assert_eq!(k(3, &first), k(3, &next));
        assert_ne!(k(3, &first), k(4, &first));
        assert_ne!(k(3, &first), k(3, &open));
        let mut colleague = staff(3);
        colleague.id = 8;
        assert_eq!(scope_key(&colleague, &first), k(3, &first));
        let mine = TicketFilter {
            assigned_to_me: Some(true),
            ..TicketFilter::default()
        };
        assert_ne!(scope_key(&colleague, &mine), k(3, &mine));
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
        assert_eq!(scope_key(&staff(3), &overdue), None);
        assert_eq!(scope_key(&staff(3), &soon), None);
        assert_eq!(page_key(&staff(3), &overdue), None);
    }

    #[test]
    fn pages_are_kept_for_a_units_shared_queue_only() {
        let first = TicketFilter::default();
        let next = TicketFilter {
            cursor: Some("abc".into()),
            ..TicketFilter::default()
        };
        let mut colleague = staff(3);
        colleague.id = 8;
        let key = page_key(&staff(3), &first).expect("shared");
        assert_eq!(page_key(&colleague, &first).as_deref(), Some(key.as_str()));
        assert_ne!(page_key(&staff(3), &next), Some(key));
        let mine = TicketFilter {
            assigned_to_me: Some(true),
            ..TicketFilter::default()
        };
        assert_eq!(page_key(&staff(3), &mine), None);
        let resident = AuthUser {
            id: 9,
            role: Role::Resident,
            org_unit_id: None,
            display_name: "居民".into(),
        };
        assert_eq!(page_key(&resident, &first), None);
    }

    #[test]
    fn what_is_kept_stays_within_its_budget() {
        let pages: Keeper<i64> = Keeper::new(KEEP, 3);
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            pages.put(key.into(), 1, i as i64);
        }
        assert_eq!(pages.get("c", 1), Some(2));
        assert_eq!(pages.get("a", 1), Some(0));
        // Full: the older generation's values go first.
        pages.put("d".into(), 2, 3);
        assert_eq!(pages.get("d", 2), Some(3));
        assert_eq!(pages.get("a", 1), None);
        // The same key again replaces its value and its weight.
        for _ in 0..5 {
            pages.put("d".into(), 2, 4);
        }
        pages.put("e".into(), 2, 5);
        pages.put("f".into(), 2, 6);
        assert_eq!(pages.get("d", 2), Some(4));
        assert_eq!(pages.get("f", 2), Some(6));
    }
}
