//! In-memory progress: what the hot path writes and the writer flushes.
//!
//! A progress call only touches atomics of one `Cell` (no lock, no I/O). The
//! writer takes each dirty cell's pending state and turns it into one
//! `ProgressUpdate`; increments are taken as deltas so that many processes can
//! add to one stored count exactly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::store::ProgressUpdate;

/// "Nothing pending" for the optional numeric fields.
const NONE: u64 = u64::MAX;

/// Pending progress of one subtask (or, with `subtask == None`, of the run).
#[derive(Debug)]
pub(crate) struct Cell {
    subtask: Option<u32>,
    delta: AtomicU64,
    items_set: AtomicU64,
    items_total: AtomicU64,
    /// f64 bits; `NONE` (a NaN pattern no caller can set: NaN is refused) means unset.
    percent: AtomicU64,
    current_subtask: AtomicU64,
    message: ArcSwapOption<String>,
    dirty: AtomicBool,
}

impl Cell {
    pub(crate) fn new(subtask: Option<u32>) -> Cell {
        Cell {
            subtask,
            delta: AtomicU64::new(0),
            items_set: AtomicU64::new(NONE),
            items_total: AtomicU64::new(NONE),
            percent: AtomicU64::new(NONE),
            current_subtask: AtomicU64::new(NONE),
            message: ArcSwapOption::empty(),
            dirty: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn increment(&self, n: u64) {
        self.delta.fetch_add(n, Ordering::Relaxed);
        self.mark_dirty();
    }

    #[inline]
    fn mark_dirty(&self) {
        // A plain load first keeps the cache line shared while already dirty.
        if !self.dirty.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// An absolute count replaces whatever this process added before it.
    #[inline]
    pub(crate) fn set_items(&self, items: u64) {
        self.delta.store(0, Ordering::Relaxed);
        self.items_set.store(items, Ordering::Relaxed);
        self.mark_dirty();
    }

    pub(crate) fn set_items_total(&self, total: u64) {
        self.items_total.store(total, Ordering::Relaxed);
        self.mark_dirty();
    }

    #[inline]
    pub(crate) fn set_percent(&self, percent: f64) {
        self.percent.store(percent.to_bits(), Ordering::Relaxed);
        self.mark_dirty();
    }

    pub(crate) fn set_current_subtask(&self, n: u32) {
        self.current_subtask.store(u64::from(n), Ordering::Relaxed);
        self.mark_dirty();
    }

    pub(crate) fn set_message(&self, message: String) {
        self.message.store(Some(Arc::new(message)));
        self.mark_dirty();
    }

    /// Takes the pending state, leaving the cell clean. `None` when nothing is pending.
    pub(crate) fn take(&self, run_id: &Arc<str>) -> Option<ProgressUpdate> {
        // A plain load first: a flush scans every cell of a run, most of them clean,
        // and a swap on each would take every cache line for writing.
        if !self.dirty.load(Ordering::Acquire) || !self.dirty.swap(false, Ordering::AcqRel) {
            return None;
        }
        let opt = |a: &AtomicU64| Some(a.swap(NONE, Ordering::Relaxed)).filter(|v| *v != NONE);
        let update = ProgressUpdate {
            run_id: Arc::clone(run_id),
            subtask: self.subtask,
            items_set: opt(&self.items_set),
            items_delta: self.delta.swap(0, Ordering::Relaxed),
            items_total: opt(&self.items_total),
            percent: opt(&self.percent).map(f64::from_bits),
            message: self.message.swap(None).map(|m| (*m).clone()),
            current_subtask: opt(&self.current_subtask).map(|v| v as u32),
        };
        let empty = update.items_set.is_none()
            && update.items_delta == 0
            && update.items_total.is_none()
            && update.percent.is_none()
            && update.message.is_none()
            && update.current_subtask.is_none();
        (!empty).then_some(update)
    }

    /// Puts back an update that could not be written, merged under newer state.
    pub(crate) fn restore(&self, u: ProgressUpdate) {
        self.delta.fetch_add(u.items_delta, Ordering::Relaxed);
        let keep_older = |a: &AtomicU64, v: Option<u64>| {
            if let Some(v) = v {
                let _ = a.compare_exchange(NONE, v, Ordering::Relaxed, Ordering::Relaxed);
            }
        };
        keep_older(&self.items_set, u.items_set);
        keep_older(&self.items_total, u.items_total);
        keep_older(&self.percent, u.percent.map(f64::to_bits));
        keep_older(&self.current_subtask, u.current_subtask.map(u64::from));
        if let Some(m) = u.message {
            self.message
                .compare_and_swap(&None::<Arc<String>>, Some(Arc::new(m)));
        }
        self.dirty.store(true, Ordering::Release);
    }
}

/// The cells of one run: the run's own and one per subtask this process touched.
/// Copy-on-write: lookups never lock (also not in a forked child, where a lock
/// held by a parent thread at fork time would never be released).
#[derive(Debug)]
pub(crate) struct RunCells {
    pub(crate) run: ArcSwap<Cell>,
    subtasks: ArcSwap<Vec<(u32, Arc<Cell>)>>,
}

impl RunCells {
    pub(crate) fn new() -> RunCells {
        RunCells {
            run: ArcSwap::from_pointee(Cell::new(None)),
            subtasks: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// Runs `f` on the cell of subtask `number`, if this process has one.
    #[inline]
    pub(crate) fn with<R>(&self, number: u32, f: impl FnOnce(&Cell) -> R) -> Option<R> {
        let cells = self.subtasks.load();
        cells
            .binary_search_by_key(&number, |(n, _)| *n)
            .ok()
            .map(|i| f(&cells[i].1))
    }

    /// Adds a cell for `number` (keeping an existing one).
    pub(crate) fn insert(&self, number: u32) {
        self.subtasks.rcu(|cells| {
            let mut next = Vec::clone(cells);
            if let Err(i) = next.binary_search_by_key(&number, |(n, _)| *n) {
                next.insert(i, (number, Arc::new(Cell::new(Some(number)))));
            }
            next
        });
    }

    /// Replaces a subtask's cell with an empty one (a restarted subtask starts from zero).
    pub(crate) fn clear(&self, number: u32) {
        self.subtasks.rcu(|cells| {
            cells
                .iter()
                .map(|(n, c)| {
                    let c = if *n == number {
                        Arc::new(Cell::new(Some(number)))
                    } else {
                        Arc::clone(c)
                    };
                    (*n, c)
                })
                .collect::<Vec<_>>()
        });
    }

    /// Drops the cell of a finished subtask (after its progress was written), so flushes
    /// only scan live subtasks. A late progress call re-attaches it.
    pub(crate) fn remove(&self, number: u32) {
        self.subtasks.rcu(|cells| {
            cells
                .iter()
                .filter(|(n, _)| *n != number)
                .cloned()
                .collect::<Vec<_>>()
        });
    }

    /// Drops every subtask cell (the run finished and its progress was written).
    pub(crate) fn remove_all(&self) {
        self.subtasks.store(Arc::new(Vec::new()));
    }

    /// Forgets everything pending (a forked child: the parent writes it).
    pub(crate) fn reset_all(&self) {
        self.run.store(Arc::new(Cell::new(None)));
        let fresh: Vec<(u32, Arc<Cell>)> = self
            .subtasks
            .load()
            .iter()
            .map(|(n, _)| (*n, Arc::new(Cell::new(Some(*n)))))
            .collect();
        self.subtasks.store(Arc::new(fresh));
    }

    /// Takes every pending update of this run.
    pub(crate) fn take_all(&self, run_id: &Arc<str>, out: &mut Vec<ProgressUpdate>) {
        // Subtasks first: the run-level update then sees their effect in the same batch.
        for (_, c) in self.subtasks.load().iter() {
            out.extend(c.take(run_id));
        }
        out.extend(self.run.load().take(run_id));
    }

    /// Puts back updates the writer could not store.
    pub(crate) fn restore(&self, u: ProgressUpdate) {
        match u.subtask {
            None => self.run.load().restore(u),
            Some(n) => {
                self.insert(n);
                self.with(n, |c| c.restore(u));
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn increments_are_taken_as_deltas_and_sets_replace_them() {
        let id: Arc<str> = Arc::from("r");
        let c = Cell::new(Some(1));
        assert!(c.take(&id).is_none());
        c.increment(2);
        c.increment(3);
        let u = c.take(&id).unwrap();
        assert_eq!((u.items_delta, u.items_set), (5, None));
        assert!(c.take(&id).is_none());
        c.increment(4);
        c.set_items(10);
        c.increment(1);
        let u = c.take(&id).unwrap();
        assert_eq!((u.items_delta, u.items_set), (1, Some(10)));
    }

    #[test]
    fn restore_keeps_newer_values() {
        let id: Arc<str> = Arc::from("r");
        let c = Cell::new(Some(1));
        c.increment(5);
        c.set_message("old".into());
        let u = c.take(&id).unwrap();
        c.increment(1);
        c.set_message("new".into());
        c.restore(u);
        let u = c.take(&id).unwrap();
        assert_eq!(u.items_delta, 6);
        assert_eq!(u.message.as_deref(), Some("new"));
    }

    #[test]
    fn cells_are_found_by_number() {
        let cells = RunCells::new();
        for n in [5, 1, 3] {
            cells.insert(n);
        }
        assert_eq!(cells.with(3, |_| 3), Some(3));
        assert_eq!(cells.with(2, |_| 2), None);
        cells.with(3, |c| c.increment(7));
        cells.reset_all();
        let mut out = Vec::new();
        cells.take_all(&Arc::from("r"), &mut out);
        assert!(out.is_empty());
    }
}
