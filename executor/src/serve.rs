//! The one HTTP/1.1 accept loop of the executor's servers: the invoker's admin server
//! ([`crate::admin`]) and the standalone REST server ([`crate::standalone`]).
//!
//! Both listen where anonymous clients can reach them, so the loop bounds what one client can hold:
//!
//! - at most [`ServeLimits::max_connections`] connections are served at once. The loop does not
//!   accept beyond that: further connections wait in the kernel's listen backlog (their TCP
//!   handshake completes, nothing is read or answered) until a served connection closes. Waiting
//!   instead of accept-and-close keeps a burst of honest clients (probes, `wsk`) working and never
//!   spins the accept loop;
//! - a connection must send a complete request head within [`ServeLimits::header_read_timeout`].
//!   hyper restarts that timer whenever a keep-alive connection goes idle between requests, so the
//!   same bound closes a silent new connection, a client dripping its headers (slowloris) and an
//!   idle keep-alive connection;
//! - [`ServeLimits::max_connection_age`], when set, closes a connection that long after it was
//!   accepted, whatever it is doing (a stalled body or a client that never reads its response);
//! - over TLS ([`serve_with`]), the handshake must complete within the same
//!   [`ServeLimits::header_read_timeout`], so a client that connects and never says hello holds
//!   its slot no longer than one that never sends a request head;
//! - on cancellation the loop stops accepting, asks every connection to finish its current request
//!   and close (hyper's graceful shutdown), and returns when they have.
//!
//! Whatever a client sends ends, at worst, its own connection: parsing is hyper's, handlers answer
//! every request with a response, and a panicking handler takes down only its connection's task
//! (the connection slot is released when the task unwinds).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Pause after a failed `accept` (out of file descriptors and the like) before trying again, so the
/// loop backs off instead of spinning on an error that persists.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// The bounds one server puts on its connections; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Most connections served at once; further ones wait in the listen backlog. At least 1 is
    /// used whatever is given.
    pub max_connections: usize,
    /// How long a connection may take to send a complete request head, counted from when it
    /// connects or last went idle between requests.
    pub header_read_timeout: Duration,
    /// How long after it was accepted a connection is dropped, whatever it is doing; `None` for no
    /// bound (the standalone server: a blocking invoke holds its connection for as long as the
    /// action runs).
    pub max_connection_age: Option<Duration>,
}

/// Serves HTTP/1.1 on `listener` with `handler` within `limits` until `cancel` fires; then stops
/// accepting, lets open connections finish their current request, and returns once they are all
/// closed (callers that must not wait for a stalled client bound this with a timeout).
pub async fn serve<H, F>(
    listener: TcpListener,
    limits: ServeLimits,
    handler: H,
    cancel: CancellationToken,
) where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    serve_with(listener, limits, None, handler, cancel).await;
}

/// [`serve`], over TLS when `tls` is given (the invoker's admin server with
/// `CONFIG_whisk_invoker_protocol=https`, [`crate::tls`]).
///
/// With TLS, each accepted connection first completes a handshake within
/// [`ServeLimits::header_read_timeout`], so a client that connects and says nothing holds its slot
/// no longer than a silent plain-HTTP client does; the handshake also counts towards
/// [`ServeLimits::max_connection_age`]. A failed handshake (a plain-HTTP request, no or an unknown
/// client certificate, a timeout) ends that connection, logged at debug, and nothing else.
pub async fn serve_with<H, F>(
    listener: TcpListener,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
    handler: H,
    cancel: CancellationToken,
) where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    loop {
        // A slot first, then the accept: past the bound, connections stay in the backlog.
        let permit = tokio::select! {
            () = cancel.cancelled() => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; if it were, nothing more could be served.
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                drop(permit);
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = Arc::clone(&handler);
        let cancel = cancel.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let _permit = permit;
            let age = async {
                match limits.max_connection_age {
                    Some(age) => tokio::time::sleep(age).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(age);
            let Some(tls) = tls else {
                drive(stream, peer, limits, handler, &cancel, age).await;
                return;
            };
            let handshake = tokio::time::timeout(limits.header_read_timeout, tls.accept(stream));
            let stream = tokio::select! {
                () = cancel.cancelled() => return,
                () = &mut age => return,
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake not completed in time");
                        return;
                    }
                },
            };
            drive(stream, peer, limits, handler, &cancel, age).await;
        });
    }
    connections.close();
    connections.wait().await;
}

/// Serves one connection's requests until it ends, `age` fires, or (after `cancel`) its current
/// request is answered.
async fn drive<I, H, F>(
    io: I,
    peer: SocketAddr,
    limits: ServeLimits,
    handler: Arc<H>,
    cancel: &CancellationToken,
    mut age: Pin<&mut impl Future<Output = ()>>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let service = service_fn(move |request| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, std::convert::Infallible>(handler(request).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                break;
            }
            () = cancel.cancelled(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            () = &mut age => {
                tracing::debug!(%peer, "connection closed at its maximum age");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hyper::StatusCode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// Bound on every wait of these tests; generous for a loaded 2-core machine.
    const STEP: Duration = Duration::from_secs(10);
    /// A timeout long enough never to fire during a test.
    const LONG: Duration = Duration::from_secs(300);
    const REQUEST: &[u8] = b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n";

    async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
        tokio::time::timeout(STEP, future)
            .await
            .unwrap_or_else(|_| panic!("{what} did not happen within {STEP:?}"))
    }

    async fn pong(_request: Request<Incoming>) -> Response<Full<Bytes>> {
        Response::new(Full::new(Bytes::from_static(b"pong")))
    }

    /// Starts the loop on a free 127.0.0.1 port with `limits`; returns its address, its token and
    /// its task.
    async fn start(
        limits: ServeLimits,
    ) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(listener, limits, pong, cancel.clone()));
        (addr, cancel, task)
    }

    /// Limits allowing `max_connections`, with a header timeout too long to fire ([`LONG`]) and
    /// no maximum age: no connection is closed by a limit during a test.
    fn limits(max_connections: usize) -> ServeLimits {
        ServeLimits {
            max_connections,
            header_read_timeout: LONG,
            max_connection_age: None,
        }
    }

    /// A connection to the loop at `addr`.
    async fn connect(addr: SocketAddr) -> TcpStream {
        within("connect", TcpStream::connect(addr))
            .await
            .expect("connect")
    }

    /// Sends one request on `stream` and reads its response (status line to body `pong`).
    async fn exchange(stream: &mut TcpStream) -> String {
        stream.write_all(REQUEST).await.expect("write request");
        read_response(stream).await
    }

    /// Reads a response on `stream`, up to its body `pong`.
    async fn read_response(stream: &mut TcpStream) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.ends_with(b"pong") {
            let n = stream.read(&mut buf).await.expect("read response");
            assert!(n > 0, "connection closed before the response");
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// Reads until the server closes the connection (EOF or reset); returns what was read.
    async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test]
    async fn test_partial_header_then_stall_is_disconnected_after_the_header_timeout() {
        let (addr, cancel, _task) = start(ServeLimits {
            header_read_timeout: Duration::from_millis(200),
            ..limits(4)
        })
        .await;
        let mut stream = connect(addr).await;
        stream
            .write_all(b"GET /ping HTTP/1.1\r\nHost: te")
            .await
            .expect("write partial head");
        let seen = within(
            "the server closing a stalled half-sent request head",
            until_closed(&mut stream),
        )
        .await;
        assert!(
            !String::from_utf8_lossy(&seen).contains("pong"),
            "a half-sent request was answered"
        );
        cancel.cancel();
    }

    #[tokio::test]
    async fn test_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
        let (addr, cancel, _task) = start(ServeLimits {
            header_read_timeout: Duration::from_millis(200),
            ..limits(4)
        })
        .await;
        let mut stream = connect(addr).await;
        let response = within("a response", exchange(&mut stream)).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        let rest = within(
            "the server closing an idle keep-alive connection",
            until_closed(&mut stream),
        )
        .await;
        assert!(rest.is_empty(), "unexpected bytes after the response");
        cancel.cancel();
    }

    #[tokio::test]
    async fn test_connection_past_the_bound_waits_until_a_served_one_closes() {
        let (addr, cancel, _task) = start(limits(2)).await;
        // Two keep-alive connections, each answered once, so both hold a slot.
        let mut first = connect(addr).await;
        within("first response", exchange(&mut first)).await;
        let mut second = connect(addr).await;
        within("second response", exchange(&mut second)).await;

        // The third completes its handshake in the backlog but is not served...
        let mut third = connect(addr).await;
        third.write_all(REQUEST).await.expect("write request");
        let mut buf = [0u8; 64];
        let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
        assert!(
            early.is_err(),
            "a connection past the bound was served or closed: {early:?}"
        );
        // ...until one of the two closes; then its request is answered.
        drop(first);
        let response = within(
            "the waiting connection being served",
            read_response(&mut third),
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        cancel.cancel();
    }

    #[tokio::test]
    async fn test_connection_is_dropped_at_its_maximum_age() {
        let (addr, cancel, _task) = start(ServeLimits {
            max_connection_age: Some(Duration::from_millis(200)),
            ..limits(4)
        })
        .await;
        let mut stream = connect(addr).await;
        within("a response", exchange(&mut stream)).await;
        within(
            "the server closing a connection at its maximum age",
            until_closed(&mut stream),
        )
        .await;
        cancel.cancel();
    }

    #[tokio::test]
    async fn test_cancel_closes_idle_connections_and_returns() {
        let (addr, cancel, task) = start(limits(4)).await;
        let mut stream = connect(addr).await;
        within("a response", exchange(&mut stream)).await;
        cancel.cancel();
        within("the loop returning after cancel", task)
            .await
            .expect("serve task");
        within(
            "the idle connection being closed on cancel",
            until_closed(&mut stream),
        )
        .await;
    }

    #[tokio::test]
    async fn test_garbage_gets_400_and_the_server_keeps_serving() {
        let (addr, cancel, _task) = start(limits(4)).await;
        let mut bad = connect(addr).await;
        bad.write_all(b"\x00\xff not http at all\r\n\r\n")
            .await
            .expect("write garbage");
        let answer = within("the garbage connection closing", until_closed(&mut bad)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {}", StatusCode::BAD_REQUEST.as_u16())),
            "{answer}"
        );
        let mut good = connect(addr).await;
        let response = within("a response after garbage", exchange(&mut good)).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        cancel.cancel();
    }
}
