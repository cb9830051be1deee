//! `exit`: prints a valid result, then exits with a non-zero code, for the rule that the exit code
//! does not change a valid result.
//!
//! Params: `code` (integer, default 3).
//! Result: `{"code": <code>}`, printed before exiting with that code; an application error
//! (exit code 0) when `code` is not an integer that fits in an `i32`.
//! Logs: after the result, `exiting with code <code>` via `log!`, which the SDK sends to stderr
//! because a result has been written (so stdout still ends with the result).

use ow_action::serde_json::json;

/// `code` when the params do not say.
const DEFAULT_CODE: i32 = 3;

fn main() {
    let params = match ow_action::read_params() {
        Ok(params) => params,
        Err(e) => return report(ow_action::write_error(e.to_string())),
    };
    let code = match params.get("code") {
        None => DEFAULT_CODE,
        Some(c) => match c.as_i64().and_then(|c| i32::try_from(c).ok()) {
            Some(code) => code,
            None => {
                return report(ow_action::write_error(
                    "The parameter \"code\" must be an integer that fits in 32 bits.",
                ));
            }
        },
    };
    report(ow_action::write_result(&json!({ "code": code })));
    ow_action::log!("exiting with code {code}");
    std::process::exit(code);
}

/// Reports a failure to write the result, the one thing that cannot be a result itself.
fn report(written: std::io::Result<()>) {
    if let Err(e) = written {
        ow_action::log_err!("exit: could not write the result: {e}");
    }
}
