//! Values read from the database kept in memory while nothing announced a change to them
//! (a generation of the live hub, `live::Hub`) and for at most a fixed time, within a budget:
//! the staff queue's totals and pages (`service::tickets::totals`) and the signed-in accounts
//! (`auth::extractor`).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one kept value weighs against its keeper's budget.
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for i64 {
    fn weight(&self) -> usize {
        1
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
struct Shelf<K, V> {
    kept: HashMap<K, Kept<V>>,
    /// The sum of the kept values' weights.
    used: usize,
}

/// Values read at a generation of the live hub, each under its key, within a weight budget.
#[derive(Debug)]
pub struct Keeper<K, V> {
    shelf: Mutex<Shelf<K, V>>,
    keep: Duration,
    /// More than this in all and the older generations' values are dropped (the key space is
    /// the filters callers try, which is not bounded).
    budget: usize,
}

impl<K: Hash + Eq, V: Clone + Weigh> Keeper<K, V> {
    pub fn new(keep: Duration, budget: usize) -> Keeper<K, V> {
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
    pub fn get<Q>(&self, key: &Q, generation: u64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut shelf = self.shelf.lock().ok()?;
        let k = shelf.kept.get_mut(key)?;
        if k.generation != generation || !fresh_enough(k.at, self.keep, &mut k.refreshing) {
            return None;
        }
        Some(k.value.clone())
    }

    /// Keeps `value`, read at `generation` (read before the value).
    pub fn put(&self, key: K, generation: u64, value: V) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
