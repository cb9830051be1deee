//! Writing the result line: the last line of stdout, compact JSON.

use std::io::{self, Write};

use serde_json::Value;

/// Prints `result` as compact JSON on one line of stdout and flushes it.
///
/// The invoker takes the last stdout line as the result, so this should be the last thing the
/// action prints to stdout; [`log!`](crate::log!) lines written afterwards go to stderr. Calling it
/// twice makes the second value the result (the first becomes a log line). A value that is not an
/// object or array is printed as is; the invoker reports it as a developer error.
///
/// # Errors
///
/// Fails only if stdout cannot be written (e.g. it was closed).
pub fn write_result(result: &Value) -> io::Result<()> {
    // Compact serialisation never emits a raw newline (strings escape it), so this is one line.
    let mut line = serde_json::to_vec(result).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut stdout = io::stdout().lock();
    stdout.write_all(&line)?;
    stdout.flush()?;
    crate::log::mark_result_written();
    Ok(())
}

/// Prints the application error `{"error": error}` as the result (see [`write_result`]).
///
/// `error` is anything that converts into a JSON value: a message (`&str`, `String`) or a
/// structured value (`json!({"code": 42})`).
///
/// # Errors
///
/// Fails only if stdout cannot be written.
pub fn write_error(error: impl Into<Value>) -> io::Result<()> {
    let mut object = serde_json::Map::new();
    object.insert("error".to_owned(), error.into());
    write_result(&Value::Object(object))
}
