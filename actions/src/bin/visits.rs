//! `visits`: how many activations this instance has served, which must always be one.
//!
//! Params: none. Result: `{"visits": n}`, where `n` counts the runs of `main` seen by this
//! instance's memory (a static, zero in the module's image). Every activation gets a fresh
//! instance, or a pooled one whose memory was reset, so `n` is 1 each time; any other number means
//! one activation's memory reached the next. Logs: none.

use std::sync::atomic::{AtomicU64, Ordering};

static VISITS: AtomicU64 = AtomicU64::new(0);

fn main() {
    let visits = VISITS.fetch_add(1, Ordering::Relaxed) + 1;
    println!("{{\"visits\":{visits}}}");
}
