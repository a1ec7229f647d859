//! Status-change callbacks for R (`on_status_change()`).
//!
//! The core calls its listeners from whichever thread stored the event (the writer
//! thread for the implicit STARTED -> RUNNING of progress), and R may only be
//! entered from its main thread. So the listener never touches R: it appends the
//! event to a queue behind a mutex, and the R layer drains the queue at its next tasker
//! call (`tk_take_events`), running the R callbacks there, on the main thread.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use extendr_api::prelude::*;
use tasker::{EventRow, Tracker};

/// Events kept for R at most; older ones are dropped (and counted) if R never drains.
const MAX_QUEUED: usize = 10_000;

#[derive(Default)]
struct Queue {
    events: VecDeque<EventRow>,
    dropped: u64,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    events: VecDeque::new(),
    dropped: 0,
});

fn queue() -> std::sync::MutexGuard<'static, Queue> {
    QUEUE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Adds the queueing listener to a tracker; returns its id for `remove_listener`.
pub(crate) fn listen(t: &Tracker) -> u64 {
    t.add_listener(Arc::new(|e: &EventRow| {
        let mut q = queue();
        if q.events.len() >= MAX_QUEUED {
            q.events.pop_front();
            q.dropped += 1;
        }
        q.events.push_back(e.clone());
    }))
}

/// Forgets what is queued (when R stops listening).
pub(crate) fn clear() {
    let mut q = queue();
    q.events.clear();
    q.dropped = 0;
}

/// The queued events, oldest first, as columns; empties the queue. The attribute
/// `dropped` counts events lost to the queue's bound since the last call.
/// @keywords internal
#[extendr]
fn tk_take_events() -> Robj {
    let (events, dropped) = {
        let mut q = queue();
        (
            std::mem::take(&mut q.events),
            std::mem::take(&mut q.dropped),
        )
    };
    let mut c = crate::Cols::new();
    c.d("event_id", events.iter().map(|e| Some(e.event_id as f64)));
    c.d(
        "time",
        events
            .iter()
            .map(|e| Some(e.time.timestamp_micros() as f64 / 1e6)),
    );
    c.s("run_id", events.iter().map(|e| Some(e.run_id.as_str())));
    c.s(
        "stage_name",
        events.iter().map(|e| Some(e.stage_name.as_str())),
    );
    c.s(
        "task_name",
        events.iter().map(|e| Some(e.task_name.as_str())),
    );
    c.i("subtask_number", events.iter().map(|e| e.subtask_number));
    c.s("kind", events.iter().map(|e| Some(e.kind.as_str())));
    c.s(
        "old_status",
        events.iter().map(|e| e.old_status.map(|s| s.as_str())),
    );
    c.s(
        "new_status",
        events.iter().map(|e| Some(e.new_status.as_str())),
    );
    c.s("message", events.iter().map(|e| e.message.as_deref()));
    let mut r = c.done();
    let _ = r.set_attrib("dropped", dropped as f64);
    r
}

/// Starts (`on = TRUE`) or stops queueing events for R, now and for every database
/// opened later in this session.
/// @keywords internal
#[extendr]
fn tk_listen(on: bool) -> bool {
    crate::set_listening(on);
    on
}

extendr_module! {
    mod events;
    fn tk_take_events;
    fn tk_listen;
}
