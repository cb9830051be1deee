//! `flood`: writes far more log than the log limit allows, then returns, for log limit tests.
//!
//! Params: `mb` (non-negative integer, default 20).
//! Logs: `mb` MiB (`mb` × 1048576 bytes, newlines included) of 100-byte lines in total,
//! alternating stdout and stderr, each `flood <stream> line <i>` padded with `.`.
//! Result: `{"done": true}`; an application error when `mb` is not a non-negative integer or
//! larger than [`MAX_MB`].
//!
//! Writes are buffered in 64 KiB blocks per stream so the flood is cheap to produce; the order of
//! lines within each stream is kept.

use std::io::{BufWriter, Write};

use ow_action::serde_json::{Value, json};

/// `mb` when the params do not say: twice OpenWhisk's default log limit of 10 MB.
const DEFAULT_MB: u64 = 20;
/// The most asked for; guards the test host from a typo asking for terabytes.
const MAX_MB: u64 = 4096;
/// Length of each line, newline included.
const LINE: usize = 100;
/// Buffer per stream.
const BUFFER: usize = 64 << 10;

fn main() {
    ow_action::run(|params: Value| -> Result<Value, String> {
        let mb = match params.get("mb") {
            None => DEFAULT_MB,
            Some(m) => m
                .as_u64()
                .ok_or("The parameter \"mb\" must be a non-negative integer.")?,
        };
        if mb > MAX_MB {
            return Err(format!("The parameter \"mb\" must be at most {MAX_MB}."));
        }
        let total = mb << 20;
        let mut out = BufWriter::with_capacity(BUFFER, std::io::stdout().lock());
        let mut err = BufWriter::with_capacity(BUFFER, std::io::stderr().lock());
        let mut written: u64 = 0;
        let mut i: u64 = 0;
        let mut line = String::with_capacity(LINE);
        while written < total {
            let (stream, sink): (&str, &mut dyn Write) = if i.is_multiple_of(2) {
                ("stdout", &mut out)
            } else {
                ("stderr", &mut err)
            };
            // The last line may be shorter so the total is exact.
            let len = usize::try_from((total - written).min(LINE as u64)).unwrap_or(LINE);
            line.clear();
            line.push_str(&format!("flood {stream} line {i} "));
            while line.len() < len - 1 {
                line.push('.');
            }
            line.truncate(len - 1);
            line.push('\n');
            sink.write_all(line.as_bytes())
                .map_err(|e| format!("flood could not write its log: {e}"))?;
            written += len as u64;
            i += 1;
        }
        out.flush()
            .map_err(|e| format!("flood could not write its log: {e}"))?;
        err.flush()
            .map_err(|e| format!("flood could not write its log: {e}"))?;
        Ok(json!({ "done": true }))
    });
}
