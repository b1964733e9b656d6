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

use std::sync::Arc;
use std::time::Duration;

use super::query::{Page, TicketFilter};
use super::view::Lookups;
use crate::auth::AuthUser;
use crate::db::models::TicketRow;
use crate::domain::role::Role;
pub use crate::kept::{Keeper, Weigh};

/// The longest a kept total is used.
pub const KEEP: Duration = Duration::from_secs(30);
/// The longest a kept page is used: shorter than a total's, because its rows are shown.
pub const KEEP_PAGE: Duration = Duration::from_secs(5);

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

/// The queue's totals: a count per scope and filters.
pub type Totals = Keeper<String, i64>;
/// The queue's pages: rows, cursor, total and lookups per scope, filters, order, page and size.
pub type Pages = Keeper<String, Arc<KeptPage>>;

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
        let pages: Keeper<String, i64> = Keeper::new(KEEP, 3);
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
