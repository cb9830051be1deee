//! `panic`: panics, for trap tests.
//!
//! Params: `message` (string, default `"this action panics on purpose"`).
//! Result: none. Logs: the panic message on stderr. On wasm32-wasip1 a panic aborts, which traps:
//! the invoker reports "The action did not produce a valid response and exited unexpectedly.".
//! Natively the process exits with code 101.

use ow_action::serde_json::Value;

fn main() {
    ow_action::run(|params: Value| -> Result<Value, Value> {
        let message = params
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("this action panics on purpose");
        panic!("{message}");
    });
}
