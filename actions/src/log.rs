//! Log lines for actions: [`log!`](crate::log!) writes to stdout, [`log_err!`](crate::log_err!)
//! to stderr, one line per call.
//!
//! Both streams become the activation's log. The last stdout line is the result, so once a result
//! has been written ([`write_result`](crate::write_result), [`write_error`](crate::write_error) or
//! [`run`](crate::run)), stdout log lines go to stderr instead: a log line can never take the
//! result's place. Failures to write a log line are ignored, as there is nowhere to report them.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a result line has been written; from then on stdout log lines go to stderr.
static RESULT_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Writes a log line to stdout, or to stderr once a result has been written. Use [`log!`](crate::log!).
pub fn stdout_line(args: fmt::Arguments<'_>) {
    if RESULT_WRITTEN.load(Ordering::Acquire) {
        stderr_line(args);
    } else {
        let _ = writeln!(std::io::stdout().lock(), "{args}");
    }
}

/// Writes a log line to stderr. Use [`log_err!`](crate::log_err!).
pub fn stderr_line(args: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// Records that a result line is on stdout (called by the output functions).
pub(crate) fn mark_result_written() {
    RESULT_WRITTEN.store(true, Ordering::Release);
}

/// Writes one log line to stdout, with `format!` syntax: `log!("greeting {name}")`.
///
/// Unlike `println!` it never becomes the result: after the result has been written the line goes
/// to stderr. It never panics.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::stdout_line(::std::format_args!($($arg)*))
    };
}

/// Writes one log line to stderr, with `format!` syntax: `log_err!("retrying: {e}")`.
///
/// Unlike `eprintln!` it never panics.
#[macro_export]
macro_rules! log_err {
    ($($arg:tt)*) => {
        $crate::log::stderr_line(::std::format_args!($($arg)*))
    };
}
