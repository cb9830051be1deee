//! Activation log lines in OpenWhisk's format, and the byte budget that caps them.
//!
//! OpenWhisk formats each container log record as `<time left-aligned in 30 columns> <stream>: <text>`
//! (`DockerToActivationLogStore.scala` `LogLine.toFormattedString`). Docker's json-file times have nine
//! fraction digits and are exactly 30 characters; notices the invoker adds itself are padded.

use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::outcome::messages;

/// Appended when log collection failed (the sentinels did not arrive in time, or reading failed);
/// OpenWhisk's `Messages.logFailure`. The factory that appends it also sets
/// [`crate::ContainerFault::LogsLost`]: callers read the fault, not this line.
pub const LOG_COLLECTION_ERROR: &str =
    "There was an issue while collecting your logs. Data might be missing.";
/// Appended after a developer error, when OpenWhisk does not wait for sentinels;
/// OpenWhisk's `Messages.logWarningDeveloperError`.
pub const DEVELOPER_ERROR_LOGS: &str =
    "The action did not initialize or run as expected. Log data might be missing.";

/// The stream a log line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The stream's name as it appears in a log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Formats a time as docker does in json-file logs: UTC RFC 3339 with nine fraction digits.
pub fn format_time(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
    let (year, month, day) = (at.year(), u8::from(at.month()), at.day());
    let (hour, minute, second, nanos) = (at.hour(), at.minute(), at.second(), at.nanosecond());
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{nanos:09}Z")
}

/// Formats one log line: `<time padded to 30> <stream>: <text>`.
pub fn format_line(at: &str, stream: Stream, text: &str) -> String {
    format!("{at:<30} {}: {text}", stream.as_str())
}

/// Formats a notice the invoker adds itself; OpenWhisk stamps these with `Instant.now.toString`
/// (microsecond precision, so shorter than 30 columns and padded).
pub fn format_notice(at: SystemTime, stream: Stream, text: &str) -> String {
    let at = OffsetDateTime::from(at);
    let micros = at
        .replace_nanosecond(at.nanosecond() / 1000 * 1000)
        .unwrap_or(at);
    let stamp = micros
        .format(&Rfc3339)
        .unwrap_or_else(|_| format_time(SystemTime::now()));
    format_line(&stamp, stream, text)
}

/// Collects formatted log lines up to a byte budget, then appends OpenWhisk's truncation notice once.
///
/// The budget counts the raw text of each line plus one byte for its line break, as OpenWhisk counts
/// the raw json-file lines; a line that does not fit ends collection.
#[derive(Debug)]
pub struct LogBuffer {
    limit_bytes: u64,
    used_bytes: u64,
    lines: Vec<String>,
    truncated: bool,
}

impl LogBuffer {
    /// A buffer that keeps at most `limit_bytes` bytes of log text.
    pub fn new(limit_bytes: u64) -> Self {
        Self {
            limit_bytes,
            used_bytes: 0,
            lines: Vec::new(),
            truncated: false,
        }
    }

    /// Adds one line written at `at` (already formatted by [`format_time`]) on `stream`. Returns `false`
    /// once the budget is exhausted (the line was dropped and the notice appended).
    pub fn push(&mut self, at: &str, stream: Stream, text: &str) -> bool {
        if self.truncated {
            return false;
        }
        let cost = text.len() as u64 + 1;
        if self.used_bytes + cost > self.limit_bytes {
            self.truncate();
            return false;
        }
        self.used_bytes += cost;
        self.lines.push(format_line(at, stream, text));
        true
    }

    /// Marks the logs as cut at the limit: appends the notice (once) and drops everything after.
    pub fn truncate(&mut self) {
        if !self.truncated {
            self.truncated = true;
            self.lines.push(format_notice(
                SystemTime::now(),
                Stream::Stderr,
                &messages::truncated_logs(self.limit_bytes),
            ));
        }
    }

    /// Appends a line the invoker adds itself (not counted against the budget), e.g. a trap message.
    pub fn push_notice(&mut self, stream: Stream, text: &str) {
        self.lines
            .push(format_notice(SystemTime::now(), stream, text));
    }

    /// Whether the budget was exceeded.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Bytes of log text accepted so far.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// The collected lines.
    pub fn into_lines(self) -> Vec<String> {
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn test_format_time_has_nine_digits_and_thirty_columns() {
        let at = UNIX_EPOCH + Duration::new(1_712_345_678, 990_123_456);
        let stamp = format_time(at);
        assert_eq!(stamp, "2024-04-05T19:34:38.990123456Z");
        assert_eq!(
            format_line(&stamp, Stream::Stdout, "hello"),
            "2024-04-05T19:34:38.990123456Z stdout: hello"
        );
    }

    #[test]
    fn test_notice_is_padded_to_thirty_columns() {
        let at = UNIX_EPOCH + Duration::new(1_712_345_678, 990_123_456);
        let line = format_notice(at, Stream::Stderr, "x");
        // 27 characters of time, padded to 30, then the separating space.
        assert_eq!(line, "2024-04-05T19:34:38.990123Z    stderr: x");
    }

    #[test]
    fn test_log_buffer_truncates_once_at_limit() {
        let mut logs = LogBuffer::new(10);
        assert!(logs.push("t", Stream::Stdout, "1234"));
        assert!(logs.push("t", Stream::Stdout, "1234"));
        assert!(!logs.push("t", Stream::Stdout, "1"));
        assert!(!logs.push("t", Stream::Stdout, "1"));
        let lines = logs.into_lines();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with(
            "stderr: Logs were truncated because the total bytes size exceeds the limit of 10 bytes."
        ));
    }
}
