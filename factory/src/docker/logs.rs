//! One activation's stdout/stderr, read through the Engine API's `logs` endpoint (json-file driver,
//! docker's fixed-width RFC 3339 nanosecond timestamps) the way OpenWhisk's json-file log store reads
//! them (protocol reference, section 9): from the container's position after the previous activation,
//! up to the two sentinels, within the log limit, formatted as `<time> <stream>: <text>`.
//!
//! The position is the timestamp of the last line consumed (and how many lines carried exactly that
//! timestamp): the API filters by whole seconds (`since`), finer positions are skipped here. Lines past
//! the log limit are still consumed up to the sentinels, so the next activation starts clean.
//!
//! Cost: the 20.10 json-file reader decodes a container's log from its start on every `logs` call and
//! filters by `since` afterwards, so a read costs O(all the container's log so far). That is cheap for
//! short-lived or quiet containers; for chatty long-lived ones, reading backwards with `tail` (doubling
//! until the oldest line returned precedes the cursor), or reading the json-file at a byte offset as
//! OpenWhisk's `DockerClientWithFileAccess` does, would bound it.
//!
//! With intra-container concurrency above 1 the lines of simultaneous activations interleave and the
//! sentinels cannot tell them apart (OpenWhisk requires out-of-band logs for that): each activation
//! then gets the lines up to the next two sentinels, whoever wrote them.

use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures::StreamExt;
use time::{Date, Month, PrimitiveDateTime, Time};
use tokio::time::Instant;

use crate::logs::{LogBuffer, Stream};

/// The line every managed runtime writes to stdout and to stderr after each activation.
pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";
/// Appended when the sentinels did not arrive in time or reading failed.
pub const LOG_COLLECTION_ERROR: &str =
    "There was an issue while collecting your logs. Data might be missing.";
/// Appended after a developer error, when OpenWhisk does not wait for sentinels.
pub const DEVELOPER_ERROR_LOGS: &str =
    "The action did not initialize or run as expected. Log data might be missing.";
/// Longest wait for the next line while waiting for the sentinels (OpenWhisk's idle timeout). Bounds a
/// runtime that refused a request and so writes no sentinel.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Per MB of log limit (at least 5 MB), how long collection may take in all (OpenWhisk's
/// `max(limit MB, 5) * 2 s`). Bounds a runtime that keeps writing forever.
pub const TIME_PER_LOG_MB: Duration = Duration::from_secs(2);
/// How often the log is read again while waiting for the sentinels.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Where the previous activation's logs ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogCursor {
    /// Timestamp of the last line consumed.
    last: Option<String>,
    /// Lines consumed that carry exactly `last`.
    at_last: u32,
}

impl LogCursor {
    /// Whole seconds since the epoch of the position (the API's `since`), 0 at the start.
    fn since(&self) -> i32 {
        self.last
            .as_deref()
            .and_then(epoch_seconds)
            .and_then(|s| i32::try_from(s).ok())
            .unwrap_or(0)
    }

    /// Whether a line stamped `at` was consumed by an earlier read (`before` is the cursor as that read
    /// left it; `skipped` counts the lines stamped exactly `before.last` skipped so far in this read);
    /// otherwise moves the position past it.
    fn consume(&mut self, before: &LogCursor, at: &str, skipped: &mut u32) -> bool {
        if let Some(last) = before.last.as_deref() {
            if at < last {
                return true;
            }
            if at == last && *skipped < before.at_last {
                *skipped += 1;
                return true;
            }
        }
        if self.last.as_deref() == Some(at) {
            self.at_last += 1;
        } else {
            self.last = Some(at.to_string());
            self.at_last = 1;
        }
        false
    }
}

/// Seconds since the epoch of a docker timestamp (`2024-04-05T19:34:38.990123456Z`).
fn epoch_seconds(at: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| at.get(range).and_then(|s| s.parse::<i32>().ok());
    let date = Date::from_calendar_date(
        number(0..4)?,
        Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?,
        u8::try_from(number(8..10)?).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(14..16)?).ok()?,
        u8::try_from(number(17..19)?).ok()?,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// How to read one activation's logs.
#[derive(Debug, Clone, Copy)]
pub struct LogRequest {
    /// The action's log limit in MB.
    pub limit_mb: u32,
    /// Follow the logs until both sentinels arrived (sentinelled runtime, no developer error).
    pub wait_for_sentinels: bool,
    /// The activation ended in a developer error: read what is there and say logs may be missing.
    pub developer_error: bool,
}

/// Reads the logs of the activation that just ended on container `id`, from `cursor` on, and moves
/// `cursor` past them. Never fails: problems become OpenWhisk's notices in the returned lines.
///
/// Waiting for sentinels polls the log (every [`POLL_INTERVAL`], as OpenWhisk tails the json-file)
/// rather than following it: each read is a consistent snapshot up to the end of the file, while a
/// follow stream of the 20.10 json-file driver can lose lines written as it switches from reading to
/// watching.
pub async fn collect(
    docker: &Docker,
    id: &str,
    cursor: &mut LogCursor,
    request: LogRequest,
) -> Vec<String> {
    let limit_bytes = u64::from(request.limit_mb) * crate::limits::BYTES_PER_MB;
    let mut buffer = LogBuffer::new(limit_bytes);
    let wait = request.wait_for_sentinels && !request.developer_error;
    let deadline = Instant::now() + TIME_PER_LOG_MB * request.limit_mb.max(5);
    let mut sentinels = 0;
    let mut last_progress = Instant::now();
    let failed = loop {
        let before = cursor.clone();
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(cursor.since())
            .build();
        let mut stream = docker.logs(id, Some(options));
        let mut skipped = 0;
        let mut progressed = false;
        let mut read_failed = false;
        'read: loop {
            let (stream_kind, message) =
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Err(_) => {
                        read_failed = true;
                        break;
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        tracing::warn!(container = id, error = %e, "reading container logs failed");
                        read_failed = true;
                        break;
                    }
                    Ok(Some(Ok(LogOutput::StdOut { message }))) => (Stream::Stdout, message),
                    Ok(Some(Ok(LogOutput::StdErr { message }))) => (Stream::Stderr, message),
                    Ok(Some(Ok(_))) => continue,
                };
            let text = String::from_utf8_lossy(&message);
            for record in text.split_terminator('\n') {
                let (at, line) = record.split_once(' ').unwrap_or((record, ""));
                if cursor.consume(&before, at, &mut skipped) {
                    continue;
                }
                progressed = true;
                if line.contains(SENTINEL) {
                    sentinels += 1;
                    if wait && sentinels >= 2 {
                        // Whatever follows belongs to the next activation.
                        break 'read;
                    }
                    continue;
                }
                // Past the limit lines are still consumed, so the next activation does not see them.
                buffer.push(at, stream_kind, line);
            }
        }
        if read_failed {
            break true;
        }
        if !wait || sentinels >= 2 {
            break false;
        }
        let now = Instant::now();
        if progressed {
            last_progress = now;
        }
        if now >= deadline || now.duration_since(last_progress) >= IDLE_TIMEOUT {
            break true;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    if failed {
        buffer.push_notice(Stream::Stderr, LOG_COLLECTION_ERROR);
    }
    if request.developer_error {
        buffer.push_notice(Stream::Stderr, DEVELOPER_ERROR_LOGS);
    }
    buffer.into_lines()
}

/// Whether collected logs end with a collection failure notice (OpenWhisk's `isLogCollectingError`):
/// the container should be destroyed even if the activation succeeded.
pub fn collection_failed(lines: &[String]) -> bool {
    let ends_with = |line: Option<&String>| line.is_some_and(|l| l.ends_with(LOG_COLLECTION_ERROR));
    match lines.last() {
        Some(last) if last.ends_with(DEVELOPER_ERROR_LOGS) => ends_with(lines.iter().rev().nth(1)),
        last => ends_with(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cursor_skips_consumed_lines_with_equal_stamps() {
        let mut cursor = LogCursor::default();
        let start = cursor.clone();
        let mut skipped = 0;
        assert!(!cursor.consume(&start, "2024-04-05T19:34:38.000000001Z", &mut skipped));
        assert!(!cursor.consume(&start, "2024-04-05T19:34:39.000000000Z", &mut skipped));
        assert!(!cursor.consume(&start, "2024-04-05T19:34:39.000000000Z", &mut skipped));
        assert_eq!(cursor.since(), 1_712_345_679);
        // The next read starts again at 19:34:39 and must skip the two lines it already took.
        let before = cursor.clone();
        let mut skipped = 0;
        assert!(cursor.consume(&before, "2024-04-05T19:34:38.900000000Z", &mut skipped));
        assert!(cursor.consume(&before, "2024-04-05T19:34:39.000000000Z", &mut skipped));
        assert!(cursor.consume(&before, "2024-04-05T19:34:39.000000000Z", &mut skipped));
        assert!(!cursor.consume(&before, "2024-04-05T19:34:39.000000000Z", &mut skipped));
        assert!(!cursor.consume(&before, "2024-04-05T19:34:39.500000000Z", &mut skipped));
        assert!(!cursor.consume(&before, "2024-04-05T19:34:39.500000000Z", &mut skipped));
    }

    #[test]
    fn test_collection_failure_is_detected_like_openwhisk() {
        let notice = |t: &str| format!("2024-04-05T19:34:38.990123Z     stderr: {t}");
        assert!(collection_failed(&[notice(LOG_COLLECTION_ERROR)]));
        assert!(collection_failed(&[
            notice(LOG_COLLECTION_ERROR),
            notice(DEVELOPER_ERROR_LOGS)
        ]));
        assert!(!collection_failed(&[notice(DEVELOPER_ERROR_LOGS)]));
        assert!(!collection_failed(&[]));
    }
}
