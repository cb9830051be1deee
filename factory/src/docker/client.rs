//! `/init` and `/run` over HTTP/1.1 to an action container, and the mapping of their answers to
//! OpenWhisk's activation responses (protocol reference, sections 8.1-8.4).
//!
//! Every request opens a new TCP connection, as OpenWhisk's Apache client does (no connection reuse).
//! That is also what keeps runs reliable and fast here: a pooled socket can go stale (Node.js closes
//! idle kept-alive sockets after 5 s), and the docker skeleton's gevent server writes headers and body in
//! two segments, which on a reused connection costs a ~44 ms Nagle/delayed-ACK stall per run, while a
//! fresh connection answers in ~4 ms.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::outcome::{Status, classify_result, error_result, messages};

/// Cap on an `/init` response (OpenWhisk's `MAX_ACTIVATION_ENTITY_LIMIT`, 1 MB). Threat: a runtime
/// answering with an unbounded body.
pub const MAX_INIT_RESPONSE_BYTES: usize = 1024 * 1024;
/// How often `/init` retries a refused connection while the runtime in a new container starts.
pub const INIT_RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// An HTTP answer from the runtime, read up to a cap.
#[derive(Debug, Clone)]
pub struct ContainerResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body, at most the cap.
    pub body: Bytes,
    /// The announced (or, without `Content-Length`, the observed) length of the body.
    pub length: usize,
    /// Whether the body was longer than the cap and was cut.
    pub truncated: bool,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The action's time limit ran out first; `connected` says whether the runtime had accepted the
    /// connection by then (a container that never accepted it may be gone).
    Timeout {
        /// Whether the TCP connection had been established.
        connected: bool,
    },
    /// The connection could not be made or broke (the runtime died or is not listening).
    Connection(String),
}

/// When a call tries again on a new connection, every [`INIT_RETRY_INTERVAL`] until its time is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retry {
    /// Refused connections (a new container's server may not listen yet): `/init` does.
    pub refused: bool,
    /// Connections closed before any answer. Only where a proxy in between accepts connections before
    /// the runtime listens (docker's userland proxy for ports published on the loopback).
    pub unanswered: bool,
}

/// POSTs `body` to `http://addr{path}`, on a new connection, within `timeout`, reading at most `max`
/// bytes of the answer, retrying as `retry` says.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    body: Bytes,
    timeout: Duration,
    max: usize,
    retry: Retry,
) -> Result<ContainerResponse, CallError> {
    let deadline = Instant::now() + timeout;
    let connected = AtomicBool::new(false);
    let attempts = async {
        loop {
            match exchange(
                addr,
                path,
                body.clone(),
                max,
                retry.refused,
                deadline,
                &connected,
            )
            .await
            {
                Err(Failure::Unanswered(reason)) => {
                    if !retry.unanswered || Instant::now() + INIT_RETRY_INTERVAL >= deadline {
                        return Err(CallError::Connection(reason));
                    }
                    connected.store(false, Ordering::Relaxed);
                    tokio::time::sleep(INIT_RETRY_INTERVAL).await;
                }
                Err(Failure::Call(error)) => return Err(error),
                Ok(response) => return Ok(response),
            }
        }
    };
    match tokio::time::timeout_at(deadline, attempts).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout {
            connected: connected.load(Ordering::Relaxed),
        }),
    }
}

/// How one exchange failed: closed before any answer (maybe retried) or for good.
enum Failure {
    Unanswered(String),
    Call(CallError),
}

async fn connect(
    addr: SocketAddr,
    retry_refused: bool,
    deadline: Instant,
) -> Result<TcpStream, CallError> {
    loop {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                let retriable = matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::HostUnreachable
                        | std::io::ErrorKind::NetworkUnreachable
                        | std::io::ErrorKind::ConnectionReset
                );
                if !(retry_refused && retriable) || Instant::now() + INIT_RETRY_INTERVAL >= deadline
                {
                    return Err(CallError::Connection(format!("connect to {addr}: {e}")));
                }
                tokio::time::sleep(INIT_RETRY_INTERVAL).await;
            }
        }
    }
}

async fn exchange(
    addr: SocketAddr,
    path: &str,
    body: Bytes,
    max: usize,
    retry_refused: bool,
    deadline: Instant,
    connected: &AtomicBool,
) -> Result<ContainerResponse, Failure> {
    let stream = connect(addr, retry_refused, deadline)
        .await
        .map_err(Failure::Call)?;
    connected.store(true, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let broken = |e: hyper::Error| format!("{path} on {addr}: {e}");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::Unanswered(broken(e)))?;
    // The connection task ends when the response is read or the exchange is dropped (timeout).
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::post(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::ACCEPT, "application/json")
        .body(Full::new(body))
        .map_err(|e| {
            Failure::Call(CallError::Connection(format!(
                "cannot build the request: {e}"
            )))
        })?;
    let result = async {
        // No response head at all: nothing of the request was answered.
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Failure::Unanswered(broken(e)))?;
        read_capped(response, max)
            .await
            .map_err(|e| Failure::Call(CallError::Connection(broken(e))))
    }
    .await;
    driver.abort();
    result
}

async fn read_capped(
    response: hyper::Response<Incoming>,
    max: usize,
) -> Result<ContainerResponse, hyper::Error> {
    let status = response.status().as_u16();
    let announced = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut body = response.into_body();
    let mut buffer: Vec<u8> = Vec::with_capacity(announced.unwrap_or(0).min(max));
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            let room = max.saturating_sub(buffer.len());
            buffer.extend_from_slice(&data[..data.len().min(room)]);
            if seen > max {
                // Read no further than the cap: the rest is not ours to buffer.
                break;
            }
        }
    }
    let length = announced.unwrap_or(seen).max(seen);
    Ok(ContainerResponse {
        status,
        body: Bytes::from(buffer),
        length,
        truncated: length > max,
    })
}

/// What an activation response mapping yields, before logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// The status.
    pub status: Status,
    /// The result.
    pub result: Value,
    /// `response.size`, when a response was read.
    pub size: Option<usize>,
    /// Whether the time limit was hit.
    pub timed_out: bool,
}

impl Mapped {
    fn developer(result: Value, size: Option<usize>) -> Self {
        Self {
            status: Status::DeveloperError,
            result,
            size,
            timed_out: false,
        }
    }
}

/// How a call ended, for the container: a mapped response, a dropped connection (to check for OOM and
/// for a just-resumed container) or a runtime shutting down (503: reschedule).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A response in OpenWhisk's terms.
    Mapped(Mapped),
    /// The connection failed; the caller checks `OOMKilled` and picks the message.
    ConnectionFailed(String),
    /// HTTP 503: the runtime is shutting down; the activation must run elsewhere.
    ShuttingDown,
}

fn body_text(response: &ContainerResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// Maps an `/init` exchange (section 8.4). `Mapped` with status success means the init worked.
pub fn map_init(
    call: Result<ContainerResponse, CallError>,
    elapsed: Duration,
    timeout: Duration,
) -> Answer {
    let timed_out = Mapped {
        status: Status::DeveloperError,
        result: error_result(messages::init_timed_out(timeout.as_millis() as u64)),
        size: None,
        timed_out: true,
    };
    if elapsed >= timeout {
        return Answer::Mapped(timed_out);
    }
    match call {
        Err(CallError::Timeout { .. }) => Answer::Mapped(timed_out),
        Err(CallError::Connection(reason)) => Answer::ConnectionFailed(reason),
        Ok(response) if response.status == 503 => Answer::ShuttingDown,
        Ok(response) if response.status == 200 && !response.truncated => Answer::Mapped(Mapped {
            status: Status::Success,
            result: Value::Object(Default::default()),
            size: Some(response.length),
            timed_out: false,
        }),
        Ok(response) => {
            let size = Some(response.length);
            if response.truncated {
                let message = messages::truncated_response(
                    response.length,
                    MAX_INIT_RESPONSE_BYTES,
                    &body_text(&response),
                );
                return Answer::Mapped(Mapped::developer(error_result(message), size));
            }
            let text = body_text(&response);
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(mut fields)) if fields.contains_key("error") => {
                    let error = fields.remove("error").unwrap_or(Value::Null);
                    Answer::Mapped(Mapped::developer(error_result(error), size))
                }
                _ => Answer::Mapped(Mapped::developer(
                    error_result(messages::init_failed(&text)),
                    size,
                )),
            }
        }
    }
}

/// Maps a `/run` exchange (section 8.4). `max` is the payload limit the response was read with.
pub fn map_run(
    call: Result<ContainerResponse, CallError>,
    elapsed: Duration,
    timeout: Duration,
    max: usize,
) -> Answer {
    let timed_out = Mapped {
        status: Status::DeveloperError,
        result: error_result(messages::timed_out(timeout.as_millis() as u64)),
        size: None,
        timed_out: true,
    };
    if elapsed >= timeout {
        return Answer::Mapped(timed_out);
    }
    let response = match call {
        Err(CallError::Timeout { .. }) => return Answer::Mapped(timed_out),
        Err(CallError::Connection(reason)) => return Answer::ConnectionFailed(reason),
        Ok(response) if response.status == 503 => return Answer::ShuttingDown,
        Ok(response) => response,
    };
    let size = Some(response.length);
    let text = body_text(&response);
    if response.truncated {
        let message = messages::truncated_response(response.length, max, &text);
        return Answer::Mapped(Mapped {
            status: Status::ApplicationError,
            result: error_result(message),
            size,
            timed_out: false,
        });
    }
    let ok = response.status == 200;
    let invalid = || Mapped::developer(error_result(messages::invalid_run_response(&text)), size);
    let mapped = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut fields)) if !ok => match fields.remove("error") {
            Some(error) => Mapped::developer(error_result(error), size),
            None => invalid(),
        },
        Ok(value @ (Value::Object(_) | Value::Array(_))) if ok => match classify_result(value) {
            Some((status, result)) => Mapped {
                status,
                result,
                size,
                timed_out: false,
            },
            None => invalid(),
        },
        _ => invalid(),
    };
    Answer::Mapped(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: Duration = Duration::from_millis(1000);

    fn response(status: u16, body: &str) -> Result<ContainerResponse, CallError> {
        Ok(ContainerResponse {
            status,
            body: Bytes::from(body.to_string()),
            length: body.len(),
            truncated: false,
        })
    }

    fn mapped(answer: Answer) -> Mapped {
        match answer {
            Answer::Mapped(m) => m,
            other => panic!("not mapped: {other:?}"),
        }
    }

    #[test]
    fn test_run_responses_map_like_openwhisk() {
        let ms = Duration::from_millis(5);
        let m = mapped(map_run(response(200, r#"{"a":1}"#), ms, T, 100));
        assert_eq!(
            (m.status, m.result, m.size),
            (Status::Success, json!({"a":1}), Some(7))
        );
        let m = mapped(map_run(response(200, r#"{"error":"x"}"#), ms, T, 100));
        assert_eq!(
            (m.status, m.result),
            (Status::ApplicationError, json!({"error":"x"}))
        );
        let m = mapped(map_run(response(200, "[1,2]"), ms, T, 100));
        assert_eq!((m.status, m.result), (Status::Success, json!([1, 2])));
        let m = mapped(map_run(response(502, r#"{"error":"boom"}"#), ms, T, 100));
        assert_eq!(
            (m.status, m.result),
            (Status::DeveloperError, json!({"error":"boom"}))
        );
        let m = mapped(map_run(response(502, "[1]"), ms, T, 100));
        assert_eq!(
            m.result,
            json!({"error":"The action did not produce a valid JSON or JSON Array response: [1]"})
        );
        let m = mapped(map_run(response(200, "\"str\""), ms, T, 100));
        assert_eq!(m.status, Status::DeveloperError);
        let m = mapped(map_run(
            Err(CallError::Timeout { connected: true }),
            T,
            T,
            100,
        ));
        assert_eq!(
            (m.status, m.result, m.timed_out),
            (
                Status::DeveloperError,
                json!({"error":"The action exceeded its time limits of 1000 milliseconds."}),
                true
            )
        );
        assert_eq!(map_run(response(503, ""), ms, T, 100), Answer::ShuttingDown);
        let truncated = Ok(ContainerResponse {
            status: 200,
            body: Bytes::from("abc"),
            length: 10,
            truncated: true,
        });
        let m = mapped(map_run(truncated, ms, T, 3));
        assert_eq!(m.status, Status::ApplicationError);
        assert_eq!(m.size, Some(10));
        assert_eq!(
            m.result,
            json!({"error":"The action produced a response that exceeded the allowed length: 10 > 3 bytes. The truncated response was: abc"})
        );
    }

    #[test]
    fn test_init_responses_map_like_openwhisk() {
        let ms = Duration::from_millis(5);
        assert_eq!(
            mapped(map_init(response(200, "OK"), ms, T)).status,
            Status::Success
        );
        let m = mapped(map_init(response(502, r#"{"error":"nope"}"#), ms, T));
        assert_eq!(
            (m.status, m.result),
            (Status::DeveloperError, json!({"error":"nope"}))
        );
        let m = mapped(map_init(response(500, ""), ms, T));
        assert_eq!(
            m.result,
            json!({"error":"The action failed during initialization"})
        );
        let m = mapped(map_init(response(500, "x"), ms, T));
        assert_eq!(
            m.result,
            json!({"error":"The action failed during initialization: x"})
        );
        let m = mapped(map_init(Err(CallError::Timeout { connected: false }), T, T));
        assert!(m.timed_out);
        assert_eq!(
            m.result,
            json!({"error":"The action exceeded its time limits of 1000 milliseconds during initialization."})
        );
    }
}
