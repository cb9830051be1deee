//! One activation's stdout/stderr read straight from the container's json-file log,
//! `<containers dir>/<id>/<id>-json.log`, as OpenWhisk's invoker reads it
//! (`DockerClientWithFileAccess`, `DockerContainer.logs`): from the byte offset where the previous
//! activation's logs ended, one JSON entry (`log`, `stream`, `time`) per line, up to the two
//! sentinels, within the log limit. The lines, notices, limits and failures are those of the API
//! reader ([`super::logs`]), which the container falls back to when its file cannot be opened.
//!
//! Why: reading the file costs a `pread` of the activation's own output, where the API costs a request
//! to the daemon per poll (several milliseconds a warm run).
//!
//! Bad input stays bounded and safe:
//! - an entry that is not valid JSON, or names no known stream, is skipped (and consumed);
//! - a line longer than [`MAX_ENTRY_BYTES`] is skipped up to its end without being buffered;
//! - a last line without its line break is not consumed: it is read again once complete;
//! - a rotated file (renamed by docker's `max-size`) is read to its end, then the new file from its
//!   start; a file truncated under the reader loses the position: the collection fails and the
//!   container is not reused, as when the sentinels never arrive (bounded by the API reader's idle and
//!   total timeouts).
//!
//! Each entry becomes one line (docker splits lines longer than 16 KB into several entries; the API
//! reader sees the same entries). The API reader's position is moved along with every entry read, so
//! the container can switch to the API at any activation boundary.

use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::docker::logs::{
    CollectedLogs, IDLE_TIMEOUT, LogCursor, LogRequest, SENTINEL, TIME_PER_LOG_MB,
};
use crate::docker::watch::{Watch, Watcher};
use crate::logs::{LogBuffer, Stream, format_time};

/// Longest json-file line kept for parsing. Docker writes at most 16 KB of text per entry (up to six
/// times that escaped); anything longer is not docker's and is skipped.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// Most bytes read per pass; between passes the reader yields, so a flood does not hold a worker
/// thread. At least [`MAX_ENTRY_BYTES`], so a pass always holds a whole entry.
const PASS_BYTES: usize = 2 * MAX_ENTRY_BYTES;
/// Longest wait between two looks at the file while the sentinels are missing (OpenWhisk's file poll
/// interval); an inotify wake-up usually comes much sooner.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The json-file log of `id` under the containers directory `dir`.
pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(id).join(format!("{id}-json.log"))
}

/// A container's json-file log and the position where the previous activation's logs ended.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    /// Device and inode of `file`: another file at `path` means docker rotated the log.
    identity: (u64, u64),
    /// Byte offset of the first entry not consumed yet.
    offset: u64,
    /// Inside a line longer than [`MAX_ENTRY_BYTES`]: the bytes up to its line break are skipped.
    skipping: bool,
    watcher: Option<Arc<Watcher>>,
    watch: Option<Watch>,
}

/// Why the file cannot be read on.
#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    /// Reading or reopening failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is shorter than the position: it was truncated, the lines in between are lost.
    #[error("{path} was truncated under the reader (position {offset}, length {length})")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The position.
        offset: u64,
        /// The file's length.
        length: u64,
    },
}

/// One json-file entry; `attrs` and anything else docker may add are ignored.
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// The activation being collected.
struct Activation<'a> {
    buffer: LogBuffer,
    sentinels: u32,
    /// Stop after the second sentinel (otherwise read to the end of the file).
    wait: bool,
    /// The API reader's position, moved along.
    cursor: &'a mut LogCursor,
}

/// What one pass found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Pass {
    /// An entry was consumed.
    progressed: bool,
    /// Both sentinels were read (only when waiting for them).
    done: bool,
    /// The pass stopped at [`PASS_BYTES`]; more is there to read.
    more: bool,
}

impl LogFile {
    /// Opens the log of container `id` under `dir`, positioned at its start; watched for changes by
    /// `watcher` when there is one.
    pub(crate) fn open(
        dir: &Path,
        id: &str,
        watcher: Option<Arc<Watcher>>,
    ) -> Result<Self, LogFileError> {
        let path = log_path(dir, id);
        let (file, identity) = open_identified(&path)?;
        let watch = watcher.as_ref().and_then(|w| w.watch(&path).ok());
        Ok(Self {
            path,
            file,
            identity,
            offset: 0,
            skipping: false,
            watcher,
            watch,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the activation that just ended, from the position on, and moves the position (and
    /// `cursor`, the API reader's) past it. Never fails: problems become OpenWhisk's notices in the
    /// returned lines and [`CollectedLogs::failed`], exactly as with the API reader.
    pub async fn collect(&mut self, cursor: &mut LogCursor, request: LogRequest) -> CollectedLogs {
        let limit_bytes = u64::from(request.limit_mb) * crate::limits::BYTES_PER_MB;
        let mut activation = Activation {
            buffer: LogBuffer::new(limit_bytes),
            sentinels: 0,
            wait: request.wait_for_sentinels && !request.developer_error,
            cursor,
        };
        let deadline = Instant::now() + TIME_PER_LOG_MB * request.limit_mb.max(5);
        let mut last_progress = Instant::now();
        let mut polls: u32 = 0;
        let failed = loop {
            let pass = match self.read_pass(&mut activation) {
                Ok(pass) => pass,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the container's log file failed");
                    break true;
                }
            };
            if pass.done {
                break false;
            }
            let now = Instant::now();
            if pass.progressed {
                last_progress = now;
            }
            if now >= deadline {
                break true;
            }
            if pass.more {
                tokio::task::yield_now().await;
                continue;
            }
            if !activation.wait {
                break false;
            }
            if now.duration_since(last_progress) >= IDLE_TIMEOUT {
                break true;
            }
            polls += 1;
            self.changed(polls).await;
        };
        CollectedLogs::finish(activation.buffer, failed, request.developer_error)
    }

    /// Waits until the file changed: an inotify wake-up, else (and at most) a poll interval, the first
    /// few shorter.
    async fn changed(&self, polls: u32) {
        match &self.watch {
            Some(watch) => {
                let _ = tokio::time::timeout(POLL_INTERVAL, watch.changed()).await;
            }
            None => {
                let backoff = Duration::from_millis(1 << polls.min(3));
                tokio::time::sleep(POLL_INTERVAL.min(backoff)).await;
            }
        }
    }

    /// Reads what is there from the position on (at most [`PASS_BYTES`]) and consumes its whole lines.
    fn read_pass(&mut self, activation: &mut Activation<'_>) -> Result<Pass, LogFileError> {
        let length = self.file.metadata().map_err(|e| self.io_error(e))?.len();
        if length < self.offset {
            return Err(LogFileError::Truncated {
                path: self.path.clone(),
                offset: self.offset,
                length,
            });
        }
        let remaining = length - self.offset;
        // Sized by what the file holds: a warm run reads a few hundred bytes, not a whole pass.
        let mut bytes = vec![
            0;
            usize::try_from(remaining)
                .unwrap_or(PASS_BYTES)
                .min(PASS_BYTES)
        ];
        let mut filled = 0;
        while filled < bytes.len() {
            match self
                .file
                .read_at(&mut bytes[filled..], self.offset + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        bytes.truncate(filled);
        let mut pass = Pass {
            more: remaining > PASS_BYTES as u64,
            ..Pass::default()
        };
        let consumed = self.consume(&bytes, activation, &mut pass);
        self.offset += consumed as u64;
        if pass.done || pass.more || consumed < filled {
            return Ok(pass);
        }
        // At the end of this file: is there a new file at the path (docker rotated the log)?
        match std::fs::metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) != self.identity => {
                // Lines docker wrote to the old file before renaming it come first.
                let old_length = self.file.metadata().map_err(|e| self.io_error(e))?.len();
                if old_length > self.offset {
                    pass.more = true;
                    return Ok(pass);
                }
                // The old file is read to its end: go on with the new one.
                let (file, identity) = open_identified(&self.path)?;
                tracing::debug!(path = %self.path.display(), "the container log was rotated");
                (self.file, self.identity, self.offset, self.skipping) = (file, identity, 0, false);
                // The old watch follows the renamed file.
                self.watch = self.watcher.as_ref().and_then(|w| w.watch(&self.path).ok());
                pass.more = true;
            }
            _ => {}
        }
        Ok(pass)
    }

    /// Consumes the whole lines of `bytes` (read at the position) into `activation`; returns how many
    /// bytes were consumed.
    fn consume(&mut self, bytes: &[u8], activation: &mut Activation<'_>, pass: &mut Pass) -> usize {
        let mut consumed = 0;
        while consumed < bytes.len() {
            let rest = &bytes[consumed..];
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                if rest.len() >= MAX_ENTRY_BYTES || self.skipping {
                    // Never a docker entry: drop what is there, skip the rest of it later.
                    self.skipping = true;
                    consumed = bytes.len();
                    pass.progressed = true;
                }
                break;
            };
            consumed += end + 1;
            pass.progressed = true;
            if std::mem::take(&mut self.skipping) || end > MAX_ENTRY_BYTES {
                tracing::warn!(path = %self.path.display(), "skipped an overlong log line");
                continue;
            }
            if activation.take(&rest[..end], &self.path) {
                pass.done = true;
                break;
            }
        }
        consumed
    }

    fn io_error(&self, source: std::io::Error) -> LogFileError {
        LogFileError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

fn open_identified(path: &Path) -> Result<(File, (u64, u64)), LogFileError> {
    let io = |source: std::io::Error| LogFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    Ok((file, (meta.dev(), meta.ino())))
}

impl Activation<'_> {
    /// Takes one json-file line; `true` once the second sentinel ended the activation.
    fn take(&mut self, line: &[u8], path: &Path) -> bool {
        let Ok(entry) = serde_json::from_slice::<Entry<'_>>(line) else {
            tracing::warn!(path = %path.display(), "skipped a log line that is not a json-file entry");
            return false;
        };
        let stream = match entry.stream.as_ref() {
            "stdout" => Stream::Stdout,
            "stderr" => Stream::Stderr,
            other => {
                tracing::warn!(path = %path.display(), stream = other, "skipped a log line of an unknown stream");
                return false;
            }
        };
        let at = docker_time(&entry.time);
        self.cursor.advance(stream, &at);
        let text = entry.log.strip_suffix('\n').unwrap_or(&entry.log);
        if text.contains(SENTINEL) {
            self.sentinels += 1;
            return self.wait && self.sentinels >= 2;
        }
        // Past the limit lines are still consumed, so the next activation does not see them.
        self.buffer.push(&at, stream, text);
        false
    }
}

/// A json-file time as the API writes it (UTC, nine fraction digits, 30 columns). Docker writes
/// json-file times that way already; others are normalised, and one that is no time is kept as is.
fn docker_time(raw: &str) -> Cow<'_, str> {
    if raw.len() == 30 && raw.ends_with('Z') && raw.as_bytes().get(19) == Some(&b'.') {
        return Cow::Borrowed(raw);
    }
    match OffsetDateTime::parse(raw, &Rfc3339) {
        Ok(at) => Cow::Owned(format_time(at.into())),
        Err(_) => Cow::Borrowed(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const ID: &str = "c0ffee";

    fn entry(stream: &str, time_nanos: u32, text: &str) -> String {
        serde_json::json!({
            "log": format!("{text}\n"),
            "stream": stream,
            "time": format!("2024-04-05T19:34:38.{time_nanos:09}Z"),
        })
        .to_string()
            + "\n"
    }

    fn sentinels(time_nanos: u32) -> String {
        entry("stdout", time_nanos, SENTINEL) + &entry("stderr", time_nanos + 1, SENTINEL)
    }

    struct Fixture {
        dir: tempfile::TempDir,
        file: File,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join(ID)).unwrap();
            let file = File::create(log_path(dir.path(), ID)).unwrap();
            Self { dir, file }
        }

        fn write(&mut self, text: &str) {
            self.file.write_all(text.as_bytes()).unwrap();
        }

        fn open(&self) -> LogFile {
            LogFile::open(self.dir.path(), ID, None).unwrap()
        }

        fn open_watched(&self) -> LogFile {
            let watcher = Watcher::start().map(Arc::new).ok();
            LogFile::open(self.dir.path(), ID, watcher).unwrap()
        }
    }

    fn request(limit_mb: u32) -> LogRequest {
        LogRequest {
            limit_mb,
            wait_for_sentinels: true,
            developer_error: false,
        }
    }

    fn texts(collected: &CollectedLogs) -> Vec<String> {
        collected
            .lines
            .iter()
            .map(|l| l.get(31..).unwrap_or(l).to_string())
            .collect()
    }

    #[tokio::test]
    async fn test_sentinels_on_both_streams_end_each_activation_and_offsets_carry_over() {
        let mut f = Fixture::new();
        f.write(&entry("stdout", 1, "startup"));
        f.write(&entry("stdout", 2, "one out"));
        f.write(&entry("stderr", 3, "one err"));
        f.write(&sentinels(4));
        f.write(&entry("stdout", 6, "two out"));
        f.write(&sentinels(7));
        let mut log = f.open();
        let mut cursor = LogCursor::default();
        let first = log.collect(&mut cursor, request(10)).await;
        assert!(!first.failed);
        assert_eq!(
            first.lines,
            vec![
                "2024-04-05T19:34:38.000000001Z stdout: startup",
                "2024-04-05T19:34:38.000000002Z stdout: one out",
                "2024-04-05T19:34:38.000000003Z stderr: one err",
            ]
        );
        let second = log.collect(&mut cursor, request(10)).await;
        assert_eq!(texts(&second), vec!["stdout: two out"]);
        // The API reader's position moved along: it would start after the second activation.
        let mut expected = LogCursor::default();
        expected.advance(Stream::Stdout, "2024-04-05T19:34:38.000000007Z");
        expected.advance(Stream::Stderr, "2024-04-05T19:34:38.000000008Z");
        assert_eq!(cursor, expected);
        assert_eq!(log.offset, std::fs::metadata(log.path()).unwrap().len());
    }

    #[tokio::test]
    async fn test_partial_last_line_waits_for_its_end() {
        let mut f = Fixture::new();
        let line = entry("stdout", 1, "whole");
        let sentinels = sentinels(2);
        let (head, tail) = sentinels.split_at(20);
        f.write(&line);
        f.write(head);
        let mut log = f.open_watched();
        let mut cursor = LogCursor::default();
        let mut writer = f.file.try_clone().unwrap();
        let tail = tail.to_string();
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            writer.write_all(tail.as_bytes()).unwrap();
        });
        let collected = log.collect(&mut cursor, request(10)).await;
        late.await.unwrap();
        assert!(!collected.failed, "{:?}", collected.lines);
        assert_eq!(texts(&collected), vec!["stdout: whole"]);
    }

    #[tokio::test]
    async fn test_garbage_and_overlong_lines_are_skipped_and_consumed() {
        let mut f = Fixture::new();
        f.write("{\"log\":\"cut in the mid\n");
        f.write("not json at all\n");
        f.write("{\"log\":\"x\\n\",\"stream\":\"stdin\",\"time\":\"t\"}\n");
        f.write(&"x".repeat(MAX_ENTRY_BYTES * 3));
        f.write("\n");
        f.write(&entry("stderr", 1, "kept"));
        f.write(&sentinels(2));
        f.write(&entry("stdout", 4, "next"));
        f.write(&sentinels(5));
        let mut log = f.open();
        let mut cursor = LogCursor::default();
        let collected = log.collect(&mut cursor, request(10)).await;
        assert!(!collected.failed);
        assert_eq!(texts(&collected), vec!["stderr: kept"]);
        let next = log.collect(&mut cursor, request(10)).await;
        assert_eq!(texts(&next), vec!["stdout: next"]);
    }

    #[tokio::test]
    async fn test_limit_truncates_and_consumes_up_to_the_sentinels() {
        let mut f = Fixture::new();
        let text = "y".repeat(1000);
        for i in 0..2000 {
            f.write(&entry("stdout", i, &text));
        }
        f.write(&sentinels(5000));
        f.write(&entry("stdout", 6000, "after"));
        f.write(&sentinels(6001));
        let mut log = f.open();
        let mut cursor = LogCursor::default();
        let collected = log.collect(&mut cursor, request(1)).await;
        assert!(!collected.failed);
        // 1047 lines of 1000 bytes and a line break fit 1 MiB.
        assert_eq!(collected.lines.len(), 1047 + 1);
        assert!(collected.lines[1047].ends_with(
            "stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes."
        ));
        let next = log.collect(&mut cursor, request(1)).await;
        assert_eq!(texts(&next), vec!["stdout: after"]);
    }

    #[tokio::test]
    async fn test_missing_sentinels_fail_after_the_idle_timeout() {
        let mut f = Fixture::new();
        f.write(&entry("stdout", 1, "alone"));
        f.write(&entry("stdout", 2, SENTINEL));
        let mut log = f.open();
        let mut cursor = LogCursor::default();
        let collected = log.collect(&mut cursor, request(10)).await;
        assert!(collected.failed);
        assert_eq!(collected.lines.len(), 2);
        assert!(collected.lines[1].ends_with(crate::logs::LOG_COLLECTION_ERROR));
        // A developer error does not wait: what is there, then OpenWhisk's warning.
        f.write(&entry("stderr", 3, "late"));
        let developer = LogRequest {
            developer_error: true,
            ..request(10)
        };
        let collected = log.collect(&mut cursor, developer).await;
        assert!(!collected.failed);
        assert_eq!(texts(&collected)[0], "stderr: late");
        assert!(collected.lines[1].ends_with(crate::logs::DEVELOPER_ERROR_LOGS));
    }

    #[tokio::test]
    async fn test_rotation_reads_the_old_file_to_its_end_then_the_new_one() {
        let mut f = Fixture::new();
        f.write(&entry("stdout", 1, "before"));
        f.write(&sentinels(2));
        let mut log = f.open();
        let mut cursor = LogCursor::default();
        assert_eq!(
            texts(&log.collect(&mut cursor, request(10)).await),
            vec!["stdout: before"]
        );
        // Docker's max-size rotation: the file is renamed and a new one takes its name.
        f.write(&entry("stdout", 4, "old file"));
        let path = log_path(f.dir.path(), ID);
        std::fs::rename(&path, path.with_extension("log.1")).unwrap();
        f.file = File::create(&path).unwrap();
        f.write(&entry("stderr", 5, "new file"));
        f.write(&sentinels(6));
        let collected = log.collect(&mut cursor, request(10)).await;
        assert!(!collected.failed);
        assert_eq!(
            texts(&collected),
            vec!["stdout: old file", "stderr: new file"]
        );
    }

    #[tokio::test]
    async fn test_truncation_under_the_reader_fails_the_collection() {
        let mut f = Fixture::new();
        f.write(&entry("stdout", 1, "before"));
        f.write(&sentinels(2));
        let mut log = f.open();
        let mut cursor = LogCursor::default();
        log.collect(&mut cursor, request(10)).await;
        f.file.set_len(0).unwrap();
        let collected = log.collect(&mut cursor, request(10)).await;
        assert!(collected.failed);
    }

    #[test]
    fn test_times_are_normalised_to_thirty_columns() {
        assert_eq!(
            docker_time("2024-04-05T19:34:38.990123456Z"),
            "2024-04-05T19:34:38.990123456Z"
        );
        assert_eq!(
            docker_time("2024-04-05T21:34:38.99+02:00"),
            "2024-04-05T19:34:38.990000000Z"
        );
        assert_eq!(docker_time("garbage"), "garbage");
    }
}
