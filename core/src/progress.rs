//! In-memory progress: what the hot path writes and the writer flushes.
//!
//! A progress call only touches atomics of one `Cell` (no lock, no allocation,
//! no I/O). The writer takes each dirty cell's pending state and turns it into
//! one `ProgressUpdate`; increments are taken as deltas so that many processes
//! can add to one stored count exactly.
//!
//! The cells of a run live in a `CellTable`: an open-addressing table whose
//! slots are written once, so lookups never lock (also not in a forked child,
//! where a lock held by a parent thread at fork time would never be released)
//! and starting or finishing a subtask costs the same with 1 or 10,000 others
//! open. A finished subtask's cell stays (marked finished, so that a late
//! explicit update is refused) until the table is rebuilt, which happens when it
//! is half full and keeps only the cells still in use: amortised O(1).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::model::Status;
use crate::store::ProgressUpdate;

/// `Cell::finished` while the subtask is not known to have finished.
const UNFINISHED: i32 = -1;

/// "Nothing pending" for the optional numeric fields.
const NONE: u64 = u64::MAX;

/// Pending progress of one subtask (or, with `number == None`, of the run).
#[derive(Debug)]
pub(crate) struct Cell {
    /// The number this process's calls use for it (see `uid` for what is stored).
    number: Option<u32>,
    /// The subtask's identity when this process started it or learned it: writes
    /// go to that subtask whatever number the database gave it.
    uid: Option<Arc<str>>,
    /// The number the database gave it, once known (0: not yet).
    stored: AtomicU32,
    delta: AtomicU64,
    items_set: AtomicU64,
    items_total: AtomicU64,
    /// f64 bits; `NONE` (a NaN pattern no caller can set: NaN is refused) means unset.
    percent: AtomicU64,
    current_subtask: AtomicU64,
    message: ArcSwapOption<String>,
    dirty: AtomicBool,
    /// The status the subtask finished with, as far as this process knows
    /// (`UNFINISHED` until then): explicit updates are refused after it.
    finished: AtomicI32,
}

impl Cell {
    pub(crate) fn new(number: Option<u32>, uid: Option<Arc<str>>, stored: Option<u32>) -> Cell {
        Cell {
            number,
            uid,
            stored: AtomicU32::new(stored.unwrap_or(0)),
            delta: AtomicU64::new(0),
            items_set: AtomicU64::new(NONE),
            items_total: AtomicU64::new(NONE),
            percent: AtomicU64::new(NONE),
            current_subtask: AtomicU64::new(NONE),
            message: ArcSwapOption::empty(),
            dirty: AtomicBool::new(false),
            finished: AtomicI32::new(UNFINISHED),
        }
    }

    pub(crate) fn uid(&self) -> Option<&Arc<str>> {
        self.uid.as_ref()
    }

    /// The number the database gave the subtask, once known.
    pub(crate) fn stored_number(&self) -> Option<u32> {
        Some(self.stored.load(Ordering::Relaxed)).filter(|n| *n != 0)
    }

    pub(crate) fn set_stored_number(&self, n: u32) {
        self.stored.store(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed) != UNFINISHED
    }

    /// The status it finished with, if it did (as far as this process knows).
    pub(crate) fn finished_status(&self) -> Option<Status> {
        Status::from_code(self.finished.load(Ordering::Relaxed))
    }

    pub(crate) fn finish(&self, status: Status) {
        self.finished.store(status as i32, Ordering::Relaxed);
    }

    /// Adds `n` items unless the subtask finished; false then.
    #[inline]
    pub(crate) fn try_increment(&self, n: u64) -> bool {
        if self.is_finished() {
            return false;
        }
        self.delta.fetch_add(n, Ordering::Relaxed);
        self.mark_dirty();
        true
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

    fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
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
            subtask: self.stored_number().or(self.number),
            subtask_uid: self.uid.clone(),
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
}

/// A slot of the cell table: a subtask number and its cell, written once.
type Slot = OnceLock<(u32, Arc<Cell>)>;

/// One generation of a run's cell table. Slots are written once (key and cell
/// together) and never change; a rebuild makes a new generation.
#[derive(Debug)]
struct Table {
    slots: Box<[Slot]>,
    used: AtomicUsize,
    /// Serialises inserts into this generation (never taken by lookups).
    grow: Mutex<()>,
}

impl Table {
    fn with_capacity(entries: usize) -> Table {
        let cap = (entries * 4).max(16).next_power_of_two();
        Table {
            slots: (0..cap).map(|_| OnceLock::new()).collect(),
            used: AtomicUsize::new(0),
            grow: Mutex::new(()),
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline]
    fn get(&self, number: u32) -> Option<&Arc<Cell>> {
        // Subtask numbers are mostly 1, 2, 3...: the identity hash lays them out
        // side by side without collisions.
        let mask = self.mask();
        let mut i = number as usize & mask;
        loop {
            let (key, cell) = self.slots[i].get()?;
            if *key == number {
                return Some(cell);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds an entry; false when this generation is too full for it.
    fn try_add(&self, number: u32, cell: &Arc<Cell>) -> bool {
        if (self.used.load(Ordering::Relaxed) + 1) * 2 > self.slots.len() {
            return false;
        }
        let mask = self.mask();
        let mut i = number as usize & mask;
        loop {
            if self.slots[i].set((number, Arc::clone(cell))).is_ok() {
                self.used.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    fn entries(&self) -> impl Iterator<Item = &(u32, Arc<Cell>)> {
        self.slots.iter().filter_map(OnceLock::get)
    }
}

/// The cells of one run: the run's own and one per subtask this process touched,
/// by the number its calls use (a cell may have two: the number given out while
/// the database was away and the one it stored).
#[derive(Debug)]
pub(crate) struct RunCells {
    pub(crate) run: ArcSwap<Cell>,
    table: ArcSwap<Table>,
}

impl RunCells {
    pub(crate) fn new() -> RunCells {
        RunCells {
            run: ArcSwap::from_pointee(Cell::new(None, None, None)),
            table: ArcSwap::from_pointee(Table::with_capacity(0)),
        }
    }

    /// Runs `f` on the cell of subtask `number`, if this process has one.
    #[inline]
    pub(crate) fn with<R>(&self, number: u32, f: impl FnOnce(&Arc<Cell>) -> R) -> Option<R> {
        self.table.load().get(number).map(f)
    }

    /// Makes `number` name `cell` (replacing what it named before).
    pub(crate) fn insert(&self, number: u32, cell: Arc<Cell>) {
        loop {
            let table = self.table.load_full();
            let _g = table.grow.lock().unwrap_or_else(PoisonError::into_inner);
            if !Arc::ptr_eq(&table, &self.table.load()) {
                continue; // rebuilt meanwhile: insert into the new generation
            }
            match table.get(number) {
                Some(old) if Arc::ptr_eq(old, &cell) => return,
                Some(_) => {}
                None if table.try_add(number, &cell) => return,
                None => {}
            }
            self.rebuild(&table, Some((number, cell)));
            return;
        }
    }

    /// A new generation with the entries still in use (a cell not finished, or
    /// with progress still to write) and `extra`, which replaces its number's entry.
    fn rebuild(&self, old: &Table, extra: Option<(u32, Arc<Cell>)>) {
        let replaced = extra.as_ref().map(|(x, _)| *x);
        let keep: Vec<(u32, Arc<Cell>)> = old
            .entries()
            .filter(|(n, c)| Some(*n) != replaced && (!c.is_finished() || c.is_dirty()))
            .map(|(n, c)| (*n, Arc::clone(c)))
            .chain(extra)
            .collect();
        let next = Table::with_capacity(keep.len());
        for (n, c) in &keep {
            next.try_add(*n, c);
        }
        self.table.store(Arc::new(next));
    }

    /// Marks every open subtask finished (the run finished with `status`).
    pub(crate) fn finish_all(&self, status: Status) {
        for (_, c) in self.table.load().entries() {
            if !c.is_finished() {
                c.finish(status);
            }
        }
    }

    /// Forgets everything pending (a forked child: the parent writes it). Takes no
    /// lock: one held by a parent thread at fork time would never be released.
    pub(crate) fn reset_all(&self) {
        self.run.store(Arc::new(Cell::new(None, None, None)));
        let old = self.table.load();
        let fresh = Table::with_capacity(old.used.load(Ordering::Relaxed));
        let mut renewed: Vec<(*const Cell, Arc<Cell>)> = Vec::new();
        for (n, c) in old.entries() {
            let copy = match renewed
                .iter()
                .find(|(p, _)| std::ptr::eq(*p, Arc::as_ptr(c)))
            {
                Some((_, copy)) => Arc::clone(copy),
                None => {
                    let copy = Arc::new(Cell::new(c.number, c.uid.clone(), c.stored_number()));
                    if let Some(status) = c.finished_status() {
                        copy.finish(status);
                    }
                    renewed.push((Arc::as_ptr(c), Arc::clone(&copy)));
                    copy
                }
            };
            fresh.try_add(*n, &copy);
        }
        self.table.store(Arc::new(fresh));
    }

    /// Takes every pending update of this run.
    pub(crate) fn take_all(&self, run_id: &Arc<str>, out: &mut Vec<ProgressUpdate>) {
        // Subtasks first: the run-level update then sees their effect in the same
        // batch. A cell under two numbers is taken once (the second finds it clean).
        for (_, c) in self.table.load().entries() {
            out.extend(c.take(run_id));
        }
        out.extend(self.run.load().take(run_id));
    }

    /// The cell of the subtask with identity `uid`, if this process has one.
    pub(crate) fn find_uid(&self, uid: &str) -> Option<Arc<Cell>> {
        self.table
            .load()
            .entries()
            .find(|(_, c)| c.uid().is_some_and(|u| &**u == uid))
            .map(|(_, c)| Arc::clone(c))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn cell(n: u32) -> Arc<Cell> {
        Arc::new(Cell::new(Some(n), None, Some(n)))
    }

    #[test]
    fn increments_are_taken_as_deltas_and_sets_replace_them() {
        let id: Arc<str> = Arc::from("r");
        let c = Cell::new(Some(1), None, Some(1));
        assert!(c.take(&id).is_none());
        c.try_increment(2);
        c.try_increment(3);
        let u = c.take(&id).unwrap();
        assert_eq!((u.items_delta, u.items_set), (5, None));
        assert!(c.take(&id).is_none());
        c.try_increment(4);
        c.set_items(10);
        c.try_increment(1);
        let u = c.take(&id).unwrap();
        assert_eq!((u.items_delta, u.items_set), (1, Some(10)));
    }

    #[test]
    fn a_finished_cell_refuses_increments() {
        let c = Cell::new(Some(1), None, Some(1));
        assert!(c.try_increment(1));
        c.finish(Status::Completed);
        assert!(!c.try_increment(1));
        assert_eq!(c.finished_status(), Some(Status::Completed));
    }

    #[test]
    fn cells_are_found_by_number_and_survive_rebuilds() {
        let cells = RunCells::new();
        for n in [5, 1, 3, 1_000_000, 17] {
            cells.insert(n, cell(n));
        }
        assert_eq!(cells.with(3, |_| 3), Some(3));
        assert_eq!(cells.with(2, |_| 2), None);
        assert_eq!(cells.with(1_000_000, |c| c.number), Some(Some(1_000_000)));
        // Many starts and finishes: the table is rebuilt, live cells stay.
        for n in 100..10_000 {
            cells.insert(n, cell(n));
            cells.with(n, |c| c.finish(Status::Completed));
        }
        for n in [5, 1, 3, 1_000_000, 17] {
            assert_eq!(cells.with(n, |c| c.number), Some(Some(n)), "{n}");
        }
        assert!(
            cells.table.load().slots.len() < 1024,
            "finished cells are dropped"
        );
        cells.with(3, |c| c.try_increment(7));
        cells.reset_all();
        let mut out = Vec::new();
        cells.take_all(&Arc::from("r"), &mut out);
        assert!(out.is_empty());
        assert!(cells.with(3, |_| ()).is_some());
    }

    #[test]
    fn a_finished_cell_with_pending_items_is_kept_until_written() {
        let cells = RunCells::new();
        let c = cell(1);
        cells.insert(1, Arc::clone(&c));
        c.try_increment(4);
        c.finish(Status::Completed);
        for n in 2..200 {
            cells.insert(n, cell(n));
            cells.with(n, |c| c.finish(Status::Completed));
        }
        let mut out = Vec::new();
        cells.take_all(&Arc::from("r"), &mut out);
        assert_eq!(out.iter().map(|u| u.items_delta).sum::<u64>(), 4);
    }

    #[test]
    fn one_cell_under_two_numbers_is_written_once() {
        let cells = RunCells::new();
        let c = Arc::new(Cell::new(Some(2), Some(Arc::from("u")), None));
        cells.insert(2, Arc::clone(&c));
        c.set_stored_number(5);
        cells.insert(5, Arc::clone(&c));
        cells.with(2, |c| c.try_increment(1));
        cells.with(5, |c| c.try_increment(1));
        let mut out = Vec::new();
        cells.take_all(&Arc::from("r"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].subtask, out[0].items_delta), (Some(5), 2));
        assert_eq!(out[0].subtask_uid.as_deref(), Some("u"));
        assert!(Arc::ptr_eq(&cells.find_uid("u").unwrap(), &c));
    }
}
