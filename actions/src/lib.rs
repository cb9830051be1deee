//! SDK for OpenWhisk actions compiled to `wasm32-wasip1` and run by wasm-invoker.
//!
//! An action is an ordinary Rust binary (a WASI preview 1 *command*). wasm-invoker hands it the
//! activation's parameters as JSON and takes the **last line of stdout** as its result; everything
//! else written to stdout and stderr becomes the activation's log. The full contract is in
//! the wasm action contract (`actions/README.md`); this crate only makes it hard to get wrong. It is optional: an action that
//! reads `argv[1]` (or stdin) and prints one line of JSON needs nothing from here (see the `echo`
//! example).
//!
//! The SDK centres on one entry point:
//!
//! * [`run`]: reads the parameters, calls your function, prints its `Ok` value as the result or
//!   its `Err` value as an application error (`{"error": ...}`).
//!
//! and a few pieces for actions that need more control:
//!
//! * [`read_params`] for the parameters ([`ParamsError`] when they cannot be read),
//! * [`write_result`] and [`write_error`] to print the result line yourself,
//! * [`log!`] and [`log_err!`] for log lines (stdout and stderr), which never end up after the
//!   result line,
//! * [`Activation`] for the `__OW_` activation context.
//!
//! The same binary also works natively, with the contract of OpenWhisk's docker-skeleton
//! (`openwhisk/dockerskeleton`) native actions: parameters in `argv[1]`, result on the last stdout
//! line. Run natively by hand without `argv[1]` and with a terminal on stdin, the parameters are
//! `{}` instead of waiting for input.
//!
//! Host-side helpers for the tests and benches of other crates live in `artifacts`, which exists
//! only for non-wasm targets.
//!
//! # Examples
//!
//! ```no_run
//! use ow_action::serde_json::{Value, json};
//!
//! // `hello.wasm`: `{"name": "Ada"}` -> `{"greeting": "Hello, Ada!"}`.
//! fn main() {
//!     ow_action::run(|params: Value| {
//!         let name = match params.get("name") {
//!             None => "stranger",
//!             Some(Value::String(name)) => name.as_str(),
//!             // An `Err` becomes the application error `{"error": "name must be a string"}`.
//!             Some(_) => return Err("name must be a string"),
//!         };
//!         ow_action::log!("greeting {name}");
//!         Ok(json!({ "greeting": format!("Hello, {name}!") }))
//!     });
//! }
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip1` and deploy
//! `target/wasm32-wasip1/release/hello.wasm` (raw or zipped) as kind `wasm:wasip1`.

pub use serde_json;

mod activation;
pub mod log;
mod output;
mod params;

pub use activation::Activation;
pub use output::{write_error, write_result};
pub use params::{MAX_ARGV_PARAMS_BYTES, ParamsError, read_params};

#[cfg(not(target_family = "wasm"))]
pub mod artifacts;

use serde_json::Value;

/// Runs an action: reads its parameters, calls `action` once and prints the outcome as the result.
///
/// * `Ok(value)` is printed as the result. It should be a JSON object or array; anything else is
///   printed as is (the invoker then reports a developer error) with a warning on stderr. An
///   object with a top-level `error` key counts as an application error too.
/// * `Err(e)` is printed as the application error `{"error": e}`. `e` is anything that converts
///   into a JSON value: a `String`, a `&str`, a [`Value`] (e.g. `json!({"code": 42})`).
/// * Parameters that cannot be read or parsed are reported as an application error without
///   calling `action`.
///
/// A panic in `action` is not caught: on wasm it traps (a developer error, "exited
/// unexpectedly"), natively the process exits with code 101 and no result.
///
/// If stdout cannot be written, the reason goes to stderr and the process exits with code 1.
pub fn run<F, E>(action: F)
where
    F: FnOnce(Value) -> Result<Value, E>,
    E: Into<Value>,
{
    let written = match read_params() {
        Ok(params) => match action(params) {
            Ok(result) => {
                if !(result.is_object() || result.is_array()) {
                    log_err!(
                        "ow_action: the result is not a JSON object or array, so the invoker \
                         will report \"The action did not return a dictionary or array.\""
                    );
                }
                write_result(&result)
            }
            Err(e) => write_error(e),
        },
        Err(e) => write_error(e.to_string()),
    };
    if let Err(e) = written {
        log_err!("ow_action: could not write the result to stdout: {e}");
        std::process::exit(1);
    }
}
