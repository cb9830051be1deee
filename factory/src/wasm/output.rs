//! Capture of an activation's stdout and stderr: the log, within its byte limit, and the result
//! line, within the result cap, whatever the action writes.
//!
//! The wasm action contract (`actions/README.md`), output: everything written is the log, one entry per line, except the last
//! stdout line, which is the result. An action may write far more than its log limit and still
//! return a result (the `flood` example), so the capture cannot be a bounded pipe that fails when
//! full (`MemoryOutputPipe` traps). Instead both streams write into one `OutputCapture` through
//! `CaptureStream`s, wasmtime-wasi [`StdoutStream`]s that accept every byte and keep only:
//!
//! - log lines up to the action's log limit, then OpenWhisk's truncation notice once (via
//!   [`LogBuffer`]); later log bytes are counted and dropped;
//! - the current last stdout line (the result candidate), bounded by the result cap + 1 byte so an
//!   oversize result is recognised and reported with its first bytes, and by the remaining log
//!   budget + 1 so that, when it turns out not to be the last, it can still be logged;
//! - the lines completed after that candidate, bounded by the remaining log budget, so that they
//!   are logged in order after it whether or not it ends up as the result.
//!
//! Memory per activation is thus bounded by about twice the log limit plus twice the result cap,
//! and by [`MAX_LOG_LINES`] formatted lines.
//!
//! **Times**: each line is stamped with the time the write that completed it reached the host (one
//! `SystemTime::now()` per `fd_write` call of at most 4 KiB), like Docker's json-file driver stamps
//! a line when it reads it. Lines still open when the action ends are stamped with that moment.
//!
//! **Which line is the result**: the last stdout line that is not blank (only whitespace), as the
//! docker skeleton strips its output before taking the last line; a final line without a newline
//! counts. Blank stdout lines are logged like any other.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::logs::{LogBuffer, Stream, format_time};

/// What a capture stream tells the guest it may write at once (`check-write`). WASI p1 writes in
/// chunks of at most 4 KiB anyway; any value that large or larger only saves round trips. The
/// stream never reports being full: bytes past the limits are dropped, not refused.
pub const WRITE_PERMIT_BYTES: usize = 64 * 1024;

/// Most log lines kept per activation, whatever the byte limit. Threat: a flood of empty lines
/// costs one byte of log budget each but ~80 bytes of formatted line, 80x the configured limit in
/// memory. Past this count the logs are truncated as if the byte limit had been reached (with the
/// same notice). OpenWhisk's default 10 MB limit with 100-byte lines is 100k lines.
pub const MAX_LOG_LINES: usize = 250_000;

/// One line as written: when, where, its kept bytes and its full length.
#[derive(Debug)]
struct Line {
    at: SystemTime,
    stream: Stream,
    /// The first bytes of the line (all of it unless `len` is larger).
    text: Vec<u8>,
    /// The full length of the line in bytes, without its newline.
    len: usize,
}

impl Line {
    fn is_complete(&self) -> bool {
        self.text.len() == self.len
    }

    fn is_blank(&self) -> bool {
        self.is_complete() && self.text.iter().all(u8::is_ascii_whitespace)
    }
}

/// The line being written on one stream.
#[derive(Debug, Default)]
struct Partial {
    text: Vec<u8>,
    len: usize,
}

/// The state shared by the two streams of one activation.
#[derive(Debug)]
struct Capture {
    logs: LogBuffer,
    log_limit_bytes: u64,
    lines_logged: usize,
    max_result_bytes: usize,
    stdout: Partial,
    stderr: Partial,
    /// The last non-blank stdout line so far: the result, unless another one follows.
    held: Option<Line>,
    /// Lines completed after `held`, in order, waiting for `held`'s fate.
    after: Vec<Line>,
    /// Budget the `after` lines cost.
    after_bytes: u64,
    /// Whether lines after `held` were dropped because they exceed the remaining budget even
    /// without `held`: the logs end truncated there either way.
    after_overflow: bool,
}

impl Capture {
    /// Log budget not yet spent or promised to `after` lines.
    fn remaining_bytes(&self) -> u64 {
        if self.logs.is_truncated() {
            return 0;
        }
        self.log_limit_bytes
            .saturating_sub(self.logs.used_bytes() + self.after_bytes)
    }

    /// How many bytes of an open line on `stream` are worth keeping: one more than can still be
    /// logged (so a cut line is known not to fit), and for stdout one more than the result cap.
    fn keep_bytes(&self, stream: Stream) -> usize {
        let log = usize::try_from(self.remaining_bytes())
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        match stream {
            Stream::Stdout => log.max(self.max_result_bytes.saturating_add(1)),
            Stream::Stderr if self.logs.is_truncated() => 0,
            Stream::Stderr => log,
        }
    }

    fn partial(&mut self, stream: Stream) -> &mut Partial {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    fn append(&mut self, stream: Stream, chunk: &[u8]) {
        let keep = self.keep_bytes(stream);
        let partial = self.partial(stream);
        partial.len = partial.len.saturating_add(chunk.len());
        let room = keep.saturating_sub(partial.text.len());
        partial
            .text
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    fn write(&mut self, stream: Stream, mut bytes: &[u8], at: SystemTime) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            self.append(stream, &bytes[..newline]);
            self.end_line(stream, at);
            bytes = &bytes[newline + 1..];
        }
        self.append(stream, bytes);
    }

    fn end_line(&mut self, stream: Stream, at: SystemTime) {
        let Partial { text, len } = std::mem::take(self.partial(stream));
        self.complete(Line {
            at,
            stream,
            text,
            len,
        });
    }

    fn complete(&mut self, line: Line) {
        if line.stream == Stream::Stdout && !line.is_blank() {
            if let Some(previous) = self.held.take() {
                self.commit(previous);
            }
            self.flush_after();
            self.held = Some(line);
        } else if self.held.is_some() {
            self.defer(line);
        } else {
            self.commit(line);
        }
    }

    /// Queues a line completed after the held one.
    fn defer(&mut self, line: Line) {
        if self.after_overflow {
            return;
        }
        let cost = u64::try_from(line.len)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let too_many = self.lines_logged + self.after.len() >= MAX_LOG_LINES;
        if too_many || !line.is_complete() || cost > self.remaining_bytes() {
            self.after_overflow = true;
            return;
        }
        self.after_bytes += cost;
        self.after.push(line);
    }

    /// Logs the queued lines, then the truncation they ran into, if any.
    fn flush_after(&mut self) {
        self.after_bytes = 0;
        for line in std::mem::take(&mut self.after) {
            self.commit(line);
        }
        if std::mem::take(&mut self.after_overflow) {
            self.logs.truncate();
        }
    }

    /// Logs one line, or truncates the logs when it does not fit.
    fn commit(&mut self, line: Line) {
        if self.logs.is_truncated() {
            return;
        }
        if !line.is_complete() || self.lines_logged >= MAX_LOG_LINES {
            self.logs.truncate();
            return;
        }
        let text = String::from_utf8_lossy(&line.text);
        if self.logs.push(&format_time(line.at), line.stream, &text) {
            self.lines_logged += 1;
        }
    }
}

/// The output of one activation, shared by its stdout and stderr streams.
#[derive(Debug, Clone)]
pub(crate) struct OutputCapture {
    inner: Arc<Mutex<Capture>>,
}

/// The result line an activation wrote: its first bytes and its full length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResultLine<'a> {
    /// The line, or its first `max_result_bytes + 1` bytes when it is longer.
    pub(crate) text: &'a [u8],
    /// The line's full length in bytes (without the newline).
    pub(crate) len: usize,
}

impl OutputCapture {
    /// A capture keeping `log_limit_bytes` of logs and recognising results up to `max_result_bytes`.
    pub(crate) fn new(log_limit_bytes: u64, max_result_bytes: usize) -> Self {
        let capture = Capture {
            logs: LogBuffer::new(log_limit_bytes),
            log_limit_bytes,
            lines_logged: 0,
            max_result_bytes,
            stdout: Partial::default(),
            stderr: Partial::default(),
            held: None,
            after: Vec::new(),
            after_bytes: 0,
            after_overflow: false,
        };
        Self {
            inner: Arc::new(Mutex::new(capture)),
        }
    }

    /// The guest's stdout.
    pub(crate) fn stdout(&self) -> CaptureStream {
        CaptureStream {
            inner: Arc::clone(&self.inner),
            stream: Stream::Stdout,
        }
    }

    /// The guest's stderr.
    pub(crate) fn stderr(&self) -> CaptureStream {
        CaptureStream {
            inner: Arc::clone(&self.inner),
            stream: Stream::Stderr,
        }
    }

    /// Ends the capture: open lines are completed, stamped now. Returns what was captured; the
    /// streams keep accepting (and dropping nothing extra) should the guest still hold them.
    pub(crate) fn finish(&self) -> Captured {
        let mut capture = lock(&self.inner);
        let now = SystemTime::now();
        for stream in [Stream::Stdout, Stream::Stderr] {
            if capture.partial(stream).len > 0 {
                capture.end_line(stream, now);
            }
        }
        let empty = Capture {
            logs: LogBuffer::new(0),
            log_limit_bytes: 0,
            lines_logged: 0,
            max_result_bytes: 0,
            stdout: Partial::default(),
            stderr: Partial::default(),
            held: None,
            after: Vec::new(),
            after_bytes: 0,
            after_overflow: false,
        };
        Captured {
            capture: std::mem::replace(&mut *capture, empty),
        }
    }
}

fn lock(inner: &Mutex<Capture>) -> MutexGuard<'_, Capture> {
    // The capture's own code does not panic; a poisoned lock still holds consistent data.
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What an activation wrote, once it ended.
#[derive(Debug)]
pub(crate) struct Captured {
    capture: Capture,
}

impl Captured {
    /// The last non-blank stdout line, if any.
    pub(crate) fn result_line(&self) -> Option<ResultLine<'_>> {
        self.capture.held.as_ref().map(|line| ResultLine {
            text: &line.text,
            len: line.len,
        })
    }

    /// The logs: every line in order within the limit, the result line included unless
    /// `result_taken` (it was the activation's result, which is not logged).
    pub(crate) fn into_logs(mut self, result_taken: bool) -> LogBuffer {
        let capture = &mut self.capture;
        if let Some(held) = capture.held.take()
            && !result_taken
        {
            capture.commit(held);
        }
        capture.flush_after();
        self.capture.logs
    }
}

/// One stream (stdout or stderr) of an [`OutputCapture`], as wasmtime-wasi wants it.
#[derive(Debug, Clone)]
pub(crate) struct CaptureStream {
    inner: Arc<Mutex<Capture>>,
    stream: Stream,
}

impl CaptureStream {
    fn accept(&self, bytes: &[u8]) {
        lock(&self.inner).write(self.stream, bytes, SystemTime::now());
    }
}

impl IsTerminal for CaptureStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CaptureStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CaptureStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT_BYTES)
    }
}

impl AsyncWrite for CaptureStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(logs: LogBuffer) -> Vec<String> {
        logs.into_lines()
            .into_iter()
            .map(|line| line[31..].to_string())
            .collect()
    }

    fn write(capture: &OutputCapture, stream: Stream, text: &str) {
        let sink = match stream {
            Stream::Stdout => capture.stdout(),
            Stream::Stderr => capture.stderr(),
        };
        sink.accept(text.as_bytes());
    }

    #[test]
    fn test_last_stdout_line_is_the_result_and_not_logged() {
        let capture = OutputCapture::new(1 << 20, 1 << 20);
        write(&capture, Stream::Stdout, "one\n");
        write(&capture, Stream::Stderr, "two\n");
        write(&capture, Stream::Stdout, "{\"a\":");
        write(&capture, Stream::Stdout, "1}\n");
        write(&capture, Stream::Stderr, "three\n");
        let captured = capture.finish();
        let result = captured.result_line().unwrap();
        assert_eq!(result.text, b"{\"a\":1}");
        assert_eq!(result.len, 7);
        assert_eq!(
            texts(captured.into_logs(true)),
            ["stdout: one", "stderr: two", "stderr: three"]
        );
    }

    #[test]
    fn test_an_unused_result_line_is_logged_in_its_place() {
        let capture = OutputCapture::new(1 << 20, 1 << 20);
        write(&capture, Stream::Stdout, "a\nnot json\n");
        write(&capture, Stream::Stderr, "after\n\n");
        write(&capture, Stream::Stdout, "  \n");
        let captured = capture.finish();
        assert_eq!(captured.result_line().unwrap().text, b"not json");
        assert_eq!(
            texts(captured.into_logs(false)),
            [
                "stdout: a",
                "stdout: not json",
                "stderr: after",
                "stderr: ",
                "stdout:   "
            ]
        );
    }

    #[test]
    fn test_a_final_line_without_newline_counts() {
        let capture = OutputCapture::new(1 << 20, 1 << 20);
        write(&capture, Stream::Stdout, "log\n[1,2]");
        let captured = capture.finish();
        assert_eq!(captured.result_line().unwrap().text, b"[1,2]");
    }

    #[test]
    fn test_logs_past_the_limit_are_dropped_but_the_result_is_kept() {
        let capture = OutputCapture::new(20, 100);
        for i in 0..1000 {
            write(&capture, Stream::Stdout, &format!("line {i}\n"));
            write(&capture, Stream::Stderr, &format!("err {i}\n"));
        }
        write(&capture, Stream::Stdout, "{\"done\":true}\n");
        let captured = capture.finish();
        assert_eq!(captured.result_line().unwrap().text, b"{\"done\":true}");
        let logs = captured.into_logs(true);
        assert!(logs.is_truncated());
        let lines = texts(logs);
        assert_eq!(lines[..2], ["stdout: line 0", "stderr: err 0"]);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[3].ends_with("exceeds the limit of 20 bytes."));
    }

    #[test]
    fn test_a_huge_result_line_is_kept_only_up_to_the_cap() {
        let capture = OutputCapture::new(10, 8);
        let line = "x".repeat(1 << 20);
        write(&capture, Stream::Stdout, &line);
        write(&capture, Stream::Stdout, "\n");
        let captured = capture.finish();
        let result = captured.result_line().unwrap();
        assert_eq!(result.len, 1 << 20);
        assert!(result.text.len() <= 11, "kept {}", result.text.len());
    }

    #[test]
    fn test_zero_limit_keeps_no_logs_but_the_notice() {
        let capture = OutputCapture::new(0, 100);
        write(&capture, Stream::Stderr, "e\n");
        write(&capture, Stream::Stdout, "{}\n");
        let captured = capture.finish();
        assert!(captured.result_line().is_some());
        let lines = texts(captured.into_logs(true));
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("exceeds the limit of 0 bytes."));
    }

    #[test]
    fn test_line_count_cap_truncates() {
        let capture = OutputCapture::new(u64::MAX, 100);
        let many = "\n".repeat(MAX_LOG_LINES + 10);
        write(&capture, Stream::Stderr, &many);
        let logs = capture.finish().into_logs(false);
        assert!(logs.is_truncated());
        assert_eq!(logs.into_lines().len(), MAX_LOG_LINES + 1);
    }
}
