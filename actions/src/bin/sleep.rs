//! `sleep`: sleeps, for timeout tests of an action blocked in the host rather than running wasm.
//!
//! Params: `ms` (non-negative integer, default 1000): how long to sleep, in milliseconds;
//! `step_ms` (positive integer, optional): sleep in steps of at most this many milliseconds
//! instead of one long sleep (a loop of short sleeps, returning to the action between them).
//! Result: `{"slept_ms": <ms>}` once the whole time has passed; an application error when a
//! parameter has the wrong type or `step_ms` is 0.
//!
//! Uses `std::thread::sleep`, which on `wasm32-wasip1` is one `poll_oneoff` call with a relative
//! monotonic clock subscription per sleep: the action spends its time in the host, where the
//! engine's own interruption (which only checks in wasm code) cannot reach it.

use std::thread::sleep;
use std::time::Duration;

use ow_action::serde_json::{Value, json};

/// `ms` when the params do not say.
const DEFAULT_MS: u64 = 1000;

fn main() {
    ow_action::run(|params: Value| -> Result<Value, String> {
        let ms = match params.get("ms") {
            None => DEFAULT_MS,
            Some(ms) => ms
                .as_u64()
                .ok_or("The parameter \"ms\" must be a non-negative integer.")?,
        };
        let step_ms = match params.get("step_ms") {
            None => ms,
            Some(step) => step
                .as_u64()
                .filter(|&step| step > 0)
                .ok_or("The parameter \"step_ms\" must be a positive integer.")?,
        };
        let mut left = ms;
        while left > 0 {
            let step = left.min(step_ms);
            sleep(Duration::from_millis(step));
            left -= step;
        }
        Ok(json!({ "slept_ms": ms }))
    });
}
