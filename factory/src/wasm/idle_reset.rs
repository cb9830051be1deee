//! Slot resets deferred to a worker's idle time: the reset after the answer.
//!
//! Dropping an activation's store gives its instance slot back to the pool, and that drop is most
//! of a warm start's instantiation cost: wasmtime finds the pages the guest dirtied (a
//! `PAGEMAP_SCAN` ioctl), copies them back from the module's memory image, and returns the slot to
//! its allocator. Done inline, it stands between the guest's last instruction and the outcome.
//!
//! On a worker thread whose runtime calls [`reset_idle_slots`] before it parks (tokio's
//! `Builder::on_thread_park`; the `wasm-invoker` binary does), a finished store is instead kept on
//! that thread and dropped the next time the worker has nothing to do. The activation's answer goes
//! out first; the reset costs the same CPU, on the same thread and warm cache, while it would
//! otherwise sleep. An earlier try spawned a task per reset instead: that woke the other worker to
//! steal it and made single activations slower (`benches/RESULTS-wasm.md`), which a park hook
//! cannot do.
//!
//! Isolation is unchanged: a kept store is unreachable (nothing but this module holds it), and its
//! slot is reset before wasmtime hands it out again, exactly as on an inline drop.
//!
//! Bounds, so that deferring never costs a slot or unbounded memory:
//!
//! - Only small instances wait: a linear memory of at most [`MAX_KEPT_MEMORY_BYTES`]. A larger one
//!   is reset inline, so that a worker kept busy for minutes (a long CPU-bound guest yields but
//!   never lets it park) holds no large memory it no longer needs.
//! - At most [`MAX_KEPT_PER_THREAD`] stores wait on one thread; a busy worker that never parks
//!   resets the rest inline, as before.
//! - At most [`MAX_DEFERRED_RESETS`] wait in the whole process, and every engine's pool has that
//!   many slots beyond its activation permits ([`engine`](super::engine)), so a waiting store
//!   never makes an activation wait for, or fail to get, an instance.
//! - Threads that never ran the hook (blocking threads, the bench's `block_on`, tests' runtimes
//!   without it) reset inline, and a thread that ends drops what it kept.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::Store;

use super::activation::ActivationState;

/// Most finished stores one worker thread keeps for its next idle moment. Under light load a
/// worker parks after each activation, so one would do; a few absorb a short burst.
pub const MAX_KEPT_PER_THREAD: usize = 4;

/// Largest linear memory, in bytes, of an instance whose reset may wait: 8 MiB, several times what
/// a small action has (`echo`'s is 1.1 MiB), and at most 64 MiB in all with [`MAX_DEFERRED_RESETS`].
pub const MAX_KEPT_MEMORY_BYTES: usize = 8 << 20;

/// Most finished stores kept in the whole process; each engine's pool reserves this many slots
/// beyond its permits for them.
pub const MAX_DEFERRED_RESETS: u32 = 8;

/// Stores kept now, over every thread.
static DEFERRED: AtomicUsize = AtomicUsize::new(0);

/// What one thread keeps.
#[derive(Default)]
struct Kept {
    /// Whether this thread's runtime calls [`reset_idle_slots`] when it parks.
    idle_hook: bool,
    stores: Vec<Store<ActivationState>>,
}

impl Drop for Kept {
    fn drop(&mut self) {
        let count = self.stores.len();
        self.stores.clear();
        DEFERRED.fetch_sub(count, Ordering::AcqRel);
    }
}

thread_local! {
    static KEPT: RefCell<Kept> = RefCell::new(Kept::default());
}

/// Resets the instance slots of the activations this thread finished since it last went idle.
/// Give it to the tokio runtime's `on_thread_park` on every runtime that runs wasm activations;
/// it also marks the thread as one that goes idle, so later activations on it defer their reset.
/// Cheap when there is nothing to reset.
pub fn reset_idle_slots() {
    loop {
        // One at a time, outside the borrow: a store's drop must not run while `KEPT` is borrowed.
        let next = KEPT.try_with(|kept| {
            let mut kept = kept.borrow_mut();
            kept.idle_hook = true;
            kept.stores.pop()
        });
        match next {
            Ok(Some(store)) => {
                drop(store);
                DEFERRED.fetch_sub(1, Ordering::AcqRel);
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// Gives a finished activation's store back: kept for this thread's next idle moment when it has
/// one and the bounds allow, dropped (reset) here otherwise.
pub(crate) fn release(mut store: Store<ActivationState>) {
    if store.data_mut().limiter().memory_size() > MAX_KEPT_MEMORY_BYTES {
        drop(store);
        return;
    }
    let mut store = Some(store);
    // `try_with` fails only while the thread is ending; the store is then dropped below.
    let _ = KEPT.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.idle_hook && kept.stores.len() < MAX_KEPT_PER_THREAD && reserve() {
            kept.stores.extend(store.take());
        }
    });
    drop(store);
}

/// Counts one more kept store if the process-wide bound allows.
fn reserve() -> bool {
    let bound = usize::try_from(MAX_DEFERRED_RESETS).unwrap_or(usize::MAX);
    DEFERRED
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |kept| {
            (kept < bound).then_some(kept + 1)
        })
        .is_ok()
}

/// Stores kept now, over every thread (for tests and metrics).
pub fn deferred_resets() -> usize {
    DEFERRED.load(Ordering::Acquire)
}
