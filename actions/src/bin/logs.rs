//! `logs`: writes log lines to both streams, for log collection and ordering tests.
//!
//! Params: `n` (non-negative integer, default 10).
//! Logs: `n` stdout lines `stdout line <i>` and `n` stderr lines `stderr line <i>`, for
//! `i` = 0..n, alternating stdout, stderr.
//! Result: `{"lines": <n>}`; an application error when `n` is not a non-negative integer.

use ow_action::serde_json::{Value, json};

/// `n` when the params do not say.
const DEFAULT_N: u64 = 10;

fn main() {
    ow_action::run(|params: Value| -> Result<Value, String> {
        let n = match params.get("n") {
            None => DEFAULT_N,
            Some(n) => n
                .as_u64()
                .ok_or("The parameter \"n\" must be a non-negative integer.")?,
        };
        for i in 0..n {
            ow_action::log!("stdout line {i}");
            ow_action::log_err!("stderr line {i}");
        }
        Ok(json!({ "lines": n }))
    });
}
