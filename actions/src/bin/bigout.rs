//! `bigout`: returns a result larger than the payload limit, for result size tests.
//!
//! Params: `bytes` (non-negative integer, default 2097152 = 2 MiB).
//! Result: `{"data": "xxx…"}`, valid JSON whose line is exactly `max(bytes, 11)` bytes long
//! (without the newline): 11 bytes of JSON syntax plus `bytes - 11` `x` characters. An
//! application error when `bytes` is not a non-negative integer or larger than
//! [`MAX_BYTES`].

use ow_action::serde_json::{Value, json};

/// `bytes` when the params do not say: twice the default 1 MiB payload limit.
const DEFAULT_BYTES: u64 = 2 << 20;
/// The largest result asked for; guards the test host from a typo asking for gigabytes.
const MAX_BYTES: u64 = 256 << 20;
/// Length of `{"data":""}`.
const OVERHEAD: u64 = 11;

fn main() {
    ow_action::run(|params: Value| -> Result<Value, String> {
        let bytes = match params.get("bytes") {
            None => DEFAULT_BYTES,
            Some(b) => b
                .as_u64()
                .ok_or("The parameter \"bytes\" must be a non-negative integer.")?,
        };
        if bytes > MAX_BYTES {
            return Err(format!(
                "The parameter \"bytes\" must be at most {MAX_BYTES}."
            ));
        }
        let padding = usize::try_from(bytes.saturating_sub(OVERHEAD))
            .map_err(|_| "The parameter \"bytes\" does not fit in memory.".to_owned())?;
        Ok(json!({ "data": "x".repeat(padding) }))
    });
}
