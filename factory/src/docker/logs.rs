//! One activation's stdout/stderr, read through the Engine API's `logs` endpoint (json-file driver,
//! docker's fixed-width RFC 3339 nanosecond timestamps) when the container's json-file cannot be read
//! directly ([`super::log_file`], preferred), the way OpenWhisk's json-file log store reads
//! them (protocol reference, section 9): from the container's position after the previous activation,
//! up to the two sentinels, within the log limit, formatted as `<time> <stream>: <text>`.
//!
//! The position is, per stream, the timestamp of the last line consumed (and how many lines carried
//! exactly that timestamp): the API filters by whole seconds (`since`), finer positions are skipped
//! here. Lines past
//! the log limit are still consumed up to the sentinels, so the next activation starts clean.
//!
//! Cost: the 20.10 json-file reader decodes a container's log from its start when asked for lines
//! `since` a time, so each read asks for the last lines instead (`tail`, which it finds by seeking
//! backwards from the end), going further back (x8) until the oldest line returned precedes the cursor.
//! A read then costs about the activation's own output, not all the container ever logged.
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
/// The notices are OpenWhisk's, not Docker's: they live in [`crate::logs`].
pub use crate::logs::{DEVELOPER_ERROR_LOGS, LOG_COLLECTION_ERROR};
/// Longest wait for the next line while waiting for the sentinels (OpenWhisk's idle timeout). Bounds a
/// runtime that refused a request and so writes no sentinel.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Per MB of log limit (at least 5 MB), how long collection may take in all (OpenWhisk's
/// `max(limit MB, 5) * 2 s`). Bounds a runtime that keeps writing forever.
pub const TIME_PER_LOG_MB: Duration = Duration::from_secs(2);
/// Lines asked for by the first backwards read of each poll (`tail`): an activation's usual output.
const INITIAL_TAIL_LINES: u64 = 1000;
/// How much further back each next read goes when the previous one did not reach the cursor.
const TAIL_GROWTH: u64 = 8;
/// Beyond this many lines the whole log is read.
const MAX_TAIL_LINES: u64 = 1_000_000;
/// How often the log is read again while waiting for the sentinels (the first few times sooner).
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Where the previous activation's logs ended, per stream: docker stamps each line when its stream's
/// copier reads it, so within one stream file order is time order, but across the two streams a line
/// can reach the file after a line of the other stream stamped later.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogCursor {
    stdout: StreamCursor,
    stderr: StreamCursor,
}

/// The position in one stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct StreamCursor {
    /// Timestamp of the last line consumed.
    last: Option<String>,
    /// Lines consumed that carry exactly `last`.
    at_last: u32,
}

impl StreamCursor {
    /// Whether a line stamped `at` was consumed by an earlier read (`before` is the cursor as that read
    /// left it; `skipped` counts the lines stamped exactly `before.last` skipped so far in this read);
    /// otherwise moves the position past it.
    fn consume(&mut self, before: &StreamCursor, at: &str, skipped: &mut u32) -> bool {
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

impl LogCursor {
    /// Moves the position of `stream` past a line stamped `at` that was read another way (from the
    /// json-file itself), so that a later read through the API starts after it.
    pub(crate) fn advance(&mut self, stream: Stream, at: &str) {
        let cursor = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        if cursor.last.as_deref() == Some(at) {
            cursor.at_last += 1;
        } else {
            cursor.last = Some(at.to_string());
            cursor.at_last = 1;
        }
    }

    /// The API's `since`: whole seconds of the older stream position, less a second for the skew
    /// between the streams; 0 at the start.
    fn since(&self) -> i32 {
        [&self.stdout, &self.stderr]
            .into_iter()
            .filter_map(|c| c.last.as_deref().and_then(epoch_seconds))
            .min()
            .and_then(|s| i32::try_from(s - 1).ok())
            .unwrap_or(0)
            .max(0)
    }

    /// The older of the two stream positions, when both streams have one.
    fn oldest(&self) -> Option<&str> {
        match (self.stdout.last.as_deref(), self.stderr.last.as_deref()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        }
    }

    /// Whether a line of `stream` stamped `at` was consumed by an earlier read (see
    /// [`StreamCursor::consume`]); otherwise moves that stream's position past it.
    fn consume(
        &mut self,
        before: &LogCursor,
        stream: Stream,
        at: &str,
        skipped: &mut [u32; 2],
    ) -> bool {
        match stream {
            Stream::Stdout => self.stdout.consume(&before.stdout, at, &mut skipped[0]),
            Stream::Stderr => self.stderr.consume(&before.stderr, at, &mut skipped[1]),
        }
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

/// One activation's collected logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedLogs {
    /// The formatted lines, notices included.
    pub lines: Vec<String>,
    /// Whether collection failed (the lines end with [`LOG_COLLECTION_ERROR`], before
    /// [`DEVELOPER_ERROR_LOGS`] if that follows): the container's log position is unknown and the
    /// container must not be reused ([`crate::ContainerFault::LogsLost`]). OpenWhisk also counts its
    /// truncation notice; here a truncated read still consumes the rest of the activation's output up
    /// to the sentinels, so truncation alone leaves the container usable.
    pub failed: bool,
}

impl CollectedLogs {
    /// The lines of `buffer` with OpenWhisk's notices: the collection failure notice when `failed`,
    /// then the developer-error notice when the activation ended in one.
    pub(crate) fn finish(mut buffer: LogBuffer, failed: bool, developer_error: bool) -> Self {
        if failed {
            buffer.push_notice(Stream::Stderr, LOG_COLLECTION_ERROR);
        }
        if developer_error {
            buffer.push_notice(Stream::Stderr, DEVELOPER_ERROR_LOGS);
        }
        Self {
            lines: buffer.into_lines(),
            failed,
        }
    }

    /// What is left when the logs cannot be read at all (no connection to the daemon).
    pub fn unreadable(developer_error: bool) -> Self {
        Self::finish(LogBuffer::new(0), true, developer_error)
    }
}

/// Reads the logs of the activation that just ended on container `id`, from `cursor` on, and moves
/// `cursor` past them. Never fails: problems become OpenWhisk's notices in the returned lines and
/// [`CollectedLogs::failed`].
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
) -> CollectedLogs {
    let limit_bytes = u64::from(request.limit_mb) * crate::limits::BYTES_PER_MB;
    let mut buffer = LogBuffer::new(limit_bytes);
    let wait = request.wait_for_sentinels && !request.developer_error;
    let deadline = Instant::now() + TIME_PER_LOG_MB * request.limit_mb.max(5);
    let mut sentinels = 0;
    let mut last_progress = Instant::now();
    let mut polls: u32 = 0;
    let failed = loop {
        let before = cursor.clone();
        let budget = if buffer.is_truncated() {
            0
        } else {
            limit_bytes.saturating_sub(buffer.used_bytes())
        };
        let mut tail = Some(INITIAL_TAIL_LINES);
        // Read backwards from the end, further each time, until the read reaches the cursor.
        let read = loop {
            match read_once(docker, id, &before, tail, deadline, wait, sentinels, budget).await {
                Err(()) => break None,
                Ok(read) if read.complete => break Some(read),
                Ok(_) => {
                    tail = tail
                        .map(|t| t * TAIL_GROWTH)
                        .filter(|t| *t <= MAX_TAIL_LINES);
                }
            }
        };
        let Some(read) = read else {
            break true;
        };
        *cursor = read.cursor;
        sentinels += read.sentinels;
        for (at, stream_kind, line) in &read.lines {
            // Past the limit lines are still consumed, so the next activation does not see them.
            buffer.push(at, *stream_kind, line);
        }
        if !wait || sentinels >= 2 {
            break false;
        }
        let now = Instant::now();
        if read.progressed {
            last_progress = now;
        }
        if now >= deadline || now.duration_since(last_progress) >= IDLE_TIMEOUT {
            break true;
        }
        // The lines are usually a moment behind the response: look again soon, then every POLL_INTERVAL.
        polls += 1;
        tokio::time::sleep(POLL_INTERVAL.min(Duration::from_millis(1 << polls.min(3)))).await;
    };
    CollectedLogs::finish(buffer, failed, request.developer_error)
}

/// What one read of the log found after the cursor, not yet given to the activation.
struct Read {
    /// The cursor after the lines read.
    cursor: LogCursor,
    /// The lines to keep (stamp, stream, text), at most one past the byte budget.
    lines: Vec<(String, Stream, String)>,
    /// Sentinels seen.
    sentinels: u32,
    /// Whether any line after the cursor was seen.
    progressed: bool,
    /// Whether nothing between the cursor and the lines read can be missing.
    complete: bool,
}

/// Reads the log once: the last `tail` lines (all with `None`) since the cursor's second. The read is
/// complete when it holds every line after the cursor: it was not limited, returned fewer lines than
/// asked, or starts before the cursor.
#[allow(
    clippy::too_many_arguments,
    reason = "one read of the collection loop, with its state"
)]
async fn read_once(
    docker: &Docker,
    id: &str,
    before: &LogCursor,
    tail: Option<u64>,
    deadline: Instant,
    wait: bool,
    sentinels_before: u32,
    budget: u64,
) -> Result<Read, ()> {
    let tail_text = tail.map_or_else(|| "all".to_string(), |t| t.to_string());
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .since(before.since())
        .tail(&tail_text)
        .build();
    let mut stream = docker.logs(id, Some(options));
    let mut read = Read {
        cursor: before.clone(),
        lines: Vec::new(),
        sentinels: 0,
        progressed: false,
        complete: false,
    };
    let mut skipped = [0; 2];
    let mut records: u64 = 0;
    let mut first: Option<String> = None;
    let mut kept_bytes: u64 = 0;
    let mut ended = false;
    'read: loop {
        let (stream_kind, message) = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Err(()),
            Ok(None) => {
                ended = true;
                break;
            }
            Ok(Some(Err(e))) => {
                tracing::warn!(container = id, error = %e, "reading container logs failed");
                return Err(());
            }
            Ok(Some(Ok(LogOutput::StdOut { message }))) => (Stream::Stdout, message),
            Ok(Some(Ok(LogOutput::StdErr { message }))) => (Stream::Stderr, message),
            Ok(Some(Ok(_))) => continue,
        };
        let text = String::from_utf8_lossy(&message);
        for record in text.split_terminator('\n') {
            let (at, line) = record.split_once(' ').unwrap_or((record, ""));
            records += 1;
            if first.is_none() {
                first = Some(at.to_string());
            }
            if read.cursor.consume(before, stream_kind, at, &mut skipped) {
                continue;
            }
            read.progressed = true;
            if line.contains(SENTINEL) {
                read.sentinels += 1;
                if wait && sentinels_before + read.sentinels >= 2 {
                    // Whatever follows belongs to the next activation.
                    break 'read;
                }
                continue;
            }
            if kept_bytes <= budget {
                kept_bytes += line.len() as u64 + 1;
                read.lines
                    .push((at.to_string(), stream_kind, line.to_string()));
            }
        }
    }
    let starts_before_cursor = match (first.as_deref(), before.oldest()) {
        (Some(first), Some(last)) => first < last,
        _ => false,
    };
    read.complete = match tail {
        None => true,
        Some(tail) => starts_before_cursor || (ended && records < tail),
    };
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cursor_skips_consumed_lines_with_equal_stamps() {
        let out = Stream::Stdout;
        let mut cursor = LogCursor::default();
        let start = cursor.clone();
        let mut skipped = [0; 2];
        assert!(!cursor.consume(&start, out, "2024-04-05T19:34:38.000000001Z", &mut skipped));
        assert!(!cursor.consume(&start, out, "2024-04-05T19:34:39.000000000Z", &mut skipped));
        assert!(!cursor.consume(&start, out, "2024-04-05T19:34:39.000000000Z", &mut skipped));
        assert_eq!(cursor.since(), 1_712_345_678);
        assert_eq!(cursor.oldest(), None);
        // The next read starts again before 19:34:39 and must skip the two lines it already took.
        let before = cursor.clone();
        let mut skipped = [0; 2];
        assert!(cursor.consume(&before, out, "2024-04-05T19:34:38.900000000Z", &mut skipped));
        assert!(cursor.consume(&before, out, "2024-04-05T19:34:39.000000000Z", &mut skipped));
        assert!(cursor.consume(&before, out, "2024-04-05T19:34:39.000000000Z", &mut skipped));
        assert!(!cursor.consume(&before, out, "2024-04-05T19:34:39.000000000Z", &mut skipped));
        assert!(!cursor.consume(&before, out, "2024-04-05T19:34:39.500000000Z", &mut skipped));
        assert!(!cursor.consume(&before, out, "2024-04-05T19:34:39.500000000Z", &mut skipped));
    }

    #[test]
    fn test_cursor_keeps_streams_apart() {
        // The stdout sentinel was stamped after a stderr line that reached the file later.
        let mut cursor = LogCursor::default();
        let start = cursor.clone();
        let mut skipped = [0; 2];
        assert!(!cursor.consume(
            &start,
            Stream::Stdout,
            "2024-04-05T19:34:38.000000005Z",
            &mut skipped
        ));
        assert!(!cursor.consume(
            &start,
            Stream::Stderr,
            "2024-04-05T19:34:38.000000003Z",
            &mut skipped
        ));
        assert_eq!(cursor.oldest(), Some("2024-04-05T19:34:38.000000003Z"));
        let before = cursor.clone();
        let mut skipped = [0; 2];
        assert!(cursor.consume(
            &before,
            Stream::Stdout,
            "2024-04-05T19:34:38.000000005Z",
            &mut skipped
        ));
        assert!(cursor.consume(
            &before,
            Stream::Stderr,
            "2024-04-05T19:34:38.000000003Z",
            &mut skipped
        ));
        assert!(!cursor.consume(
            &before,
            Stream::Stderr,
            "2024-04-05T19:34:38.000000004Z",
            &mut skipped
        ));
    }

    #[test]
    fn test_failed_collection_is_flagged_and_noticed_like_openwhisk() {
        let ends = |line: &String, text: &str| line.ends_with(&format!("stderr: {text}"));
        let mut buffer = LogBuffer::new(1024);
        buffer.push("2024-04-05T19:34:38.990123456Z", Stream::Stdout, "partial");
        let collected = CollectedLogs::finish(buffer, true, false);
        assert!(collected.failed);
        assert_eq!(collected.lines.len(), 2);
        assert!(ends(&collected.lines[1], LOG_COLLECTION_ERROR));

        // After a developer error OpenWhisk's warning comes last, after the failure notice.
        let collected = CollectedLogs::unreadable(true);
        assert!(collected.failed);
        assert_eq!(collected.lines.len(), 2);
        assert!(ends(&collected.lines[0], LOG_COLLECTION_ERROR));
        assert!(ends(&collected.lines[1], DEVELOPER_ERROR_LOGS));
    }

    #[test]
    fn test_complete_collection_is_not_flagged() {
        let collected = CollectedLogs::finish(LogBuffer::new(1024), false, true);
        assert!(!collected.failed);
        assert_eq!(collected.lines.len(), 1);
        assert!(collected.lines[0].ends_with(DEVELOPER_ERROR_LOGS));
        let collected = CollectedLogs::finish(LogBuffer::new(1024), false, false);
        assert_eq!(
            collected,
            CollectedLogs {
                lines: Vec::new(),
                failed: false
            }
        );
    }
}
