//! The invoker's admin HTTP server (OpenWhisk's `DefaultInvokerServer`), on
//! `PORT`:
//!
//! | route | method | auth | answer |
//! |---|---|---|---|
//! | `/ping` | GET | none | `pong` |
//! | `/metrics` | GET | none | Prometheus text |
//! | `/enable` | POST | basic | `invoker0/0 is now enabled.` / `... is already enabled.` |
//! | `/disable` | POST | basic | one disabled ping, then silence; `... is now disabled.` / `... is already disabled.` |
//! | `/isEnabled` | GET | basic | `{"enabled":true}` |
//! | `/pool` | GET | basic | FPC mode only: OpenWhisk's `TotalContainerPoolState` JSON |
//! | `/pool/count` | GET | basic | FPC mode only: containers busy, paused or being created, e.g. `0` |
//!
//! What `/enable` and `/disable` switch is a [`Switch`]: the classic invoker's health pinger, or in
//! FPC mode the health key and the container pool ([`crate::fpc`]; there `/enable` and `/disable`
//! always answer "is now ...", as OpenWhisk's `FPCInvokerServer` does).
//!
//! Missing or wrong credentials on any other route: 401; valid credentials on an unknown route: 404.
//! With `CONFIG_whisk_invoker_protocol=https` every route is served over TLS only, with the PKCS12
//! keystore's key and, with `clientAuth`, only to clients presenting one of its certificates
//! ([`crate::tls`]).
//! [`handle`] is the whole service as a function, so tests call it without a socket.
//!
//! The server listens on every interface, as OpenWhisk's does, so it is hardened for clients other
//! than the controller and the operator: credentials are compared in constant time, connections
//! are served by [`crate::serve`] within [`ADMIN_LIMITS`], and [`serve`] warns at start when the
//! password is OpenWhisk's published default.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::{DEFAULT_HTTP_PASSWORD, DEFAULT_HTTP_USERNAME};
use crate::metrics::Metrics;
use crate::ping::Pinger;
use crate::pool::Pool;
use crate::serve::{self, ServeLimits};

/// OpenWhisk's default admin user (`whisk.invoker.username`), the same as the configuration's.
pub const DEFAULT_USERNAME: &str = DEFAULT_HTTP_USERNAME;
/// OpenWhisk's default admin password (`whisk.invoker.password`), the same as the configuration's.
pub const DEFAULT_PASSWORD: &str = DEFAULT_HTTP_PASSWORD;

/// The bounds of the admin server's connections. Its honest clients are a handful at a time (a
/// health probe, a metrics scraper, an operator's `curl`), and it listens on every interface of
/// the node, so the bounds are there for anyone else who reaches the port:
///
/// - 256 connections at once: far above honest use, far below the process's descriptor limit;
///   further connections wait in the listen backlog (see [`crate::serve`]);
/// - 10 s to send a request head, also the longest a keep-alive connection may sit idle: probes
///   and scrapers send their request as soon as they connect;
/// - 60 s for a whole connection: every admin route answers at once, so a connection older than
///   that is a client holding a slot (a stalled body, a response it does not read).
pub const ADMIN_LIMITS: ServeLimits = ServeLimits {
    max_connections: 256,
    header_read_timeout: Duration::from_secs(10),
    max_connection_age: Some(Duration::from_secs(60)),
};
/// How long [`serve`] waits, after cancellation, for open admin connections to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Longest `Authorization` header looked at; bounds the base64 decoding an anonymous caller can cause.
const MAX_AUTH_HEADER_LEN: usize = 1024;

/// What `/enable`, `/disable`, `/isEnabled` and (FPC mode) `/pool` act on.
#[async_trait]
pub trait Switch: Send + Sync + std::fmt::Debug {
    /// The instance as the answers name it (`invoker0/0`).
    fn name(&self) -> String;
    /// Whether the node takes work.
    fn is_enabled(&self) -> bool;
    /// Enables the node; returns whether it was disabled.
    async fn enable(&self) -> bool;
    /// Disables the node; returns whether it was enabled.
    async fn disable(&self) -> bool;
    /// Whether a repeated `/enable` or `/disable` answers "is already ..." (classic) rather than
    /// "is now ..." (FPC).
    fn says_already(&self) -> bool {
        true
    }
    /// `/pool/count`, where the mode has it.
    fn pool_count(&self) -> Option<usize> {
        None
    }
    /// `/pool`, where the mode has it.
    fn pool_state(&self) -> Option<serde_json::Value> {
        None
    }
}

#[async_trait]
impl Switch for Pinger {
    fn name(&self) -> String {
        self.instance().to_string()
    }

    fn is_enabled(&self) -> bool {
        Pinger::is_enabled(self)
    }

    async fn enable(&self) -> bool {
        Pinger::enable(self).await
    }

    async fn disable(&self) -> bool {
        Pinger::disable(self).await
    }
}

/// What the admin routes act on.
#[derive(Debug)]
pub struct Admin {
    /// What `/enable` and `/disable` switch.
    pub switch: Arc<dyn Switch>,
    /// Metrics for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The pool, for occupancy gauges.
    pub pool: Option<Arc<Pool>>,
    /// Basic-auth user name.
    pub username: String,
    /// Basic-auth password.
    pub password: String,
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        "text/plain; charset=UTF-8"
            .parse()
            .expect("constant header value"),
    );
    response
}

fn json(body: String) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::OK, body);
    response.headers_mut().insert(
        CONTENT_TYPE,
        "application/json".parse().expect("constant header value"),
    );
    response
}

impl Admin {
    /// Whether the admin password is OpenWhisk's published default (the user name is not a
    /// secret; the password is what keeps anyone who reaches the port from disabling the invoker).
    pub fn uses_default_password(&self) -> bool {
        is_default_password(&self.password)
    }
}

fn is_default_password(password: &str) -> bool {
    password == DEFAULT_HTTP_PASSWORD
}

/// SHA-256 of a credential: comparing fixed-size digests in constant time tells a caller nothing
/// about the secret's length or how many of its leading bytes matched.
fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Whether `headers` carry `Basic` credentials equal to `username` and `password`. Both parts are
/// compared in constant time and both comparisons always run; only the shape of the header (missing,
/// not `Basic`, not base64, no colon) is decided early, and that shape is the caller's own input.
fn authorized(headers: &HeaderMap, username: &str, password: &str) -> bool {
    let Some(header) = headers.get(AUTHORIZATION).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    if header.len() > MAX_AUTH_HEADER_LEN {
        return false;
    }
    let Some((scheme, encoded)) = header.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
    let user_ok = digest(user).ct_eq(&digest(username.as_bytes()));
    let pass_ok = digest(pass).ct_eq(&digest(password.as_bytes()));
    bool::from(user_ok & pass_ok)
}

/// `None` for requests carrying `username` and `password`; for any other, the 401 every protected
/// route answers without valid credentials.
fn rejection(headers: &HeaderMap, username: &str, password: &str) -> Option<Response<Full<Bytes>>> {
    (!authorized(headers, username, password)).then(unauthorized)
}

fn unauthorized() -> Response<Full<Bytes>> {
    let mut response = text(
        StatusCode::UNAUTHORIZED,
        "The resource requires authentication, which was not supplied with the request",
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        "Basic realm=\"invoker\", charset=UTF-8"
            .parse()
            .expect("constant header value"),
    );
    response
}

/// Answers one request.
pub async fn handle<B>(admin: &Admin, request: Request<B>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/ping") => return text(StatusCode::OK, "pong"),
        (&Method::GET, "/metrics") => {
            let stats = admin.pool.as_ref().map(|pool| pool.stats());
            let mut response = text(StatusCode::OK, admin.metrics.render(stats));
            response.headers_mut().insert(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
                    .parse()
                    .expect("constant header value"),
            );
            return response;
        }
        _ => {}
    }
    if let Some(response) = rejection(request.headers(), &admin.username, &admin.password) {
        return response;
    }
    let switch = &admin.switch;
    let name = switch.name();
    let changed = |changed: bool, state: &str| {
        if changed || !switch.says_already() {
            text(StatusCode::OK, format!("{name} is now {state}."))
        } else {
            text(StatusCode::OK, format!("{name} is already {state}."))
        }
    };
    match (&method, path.as_str()) {
        (&Method::POST, "/enable") => changed(switch.enable().await, "enabled"),
        (&Method::POST, "/disable") => changed(switch.disable().await, "disabled"),
        (&Method::GET, "/isEnabled") => {
            json(serde_json::json!({"enabled": switch.is_enabled()}).to_string())
        }
        (&Method::GET, "/pool" | "/pool/") if switch.pool_state().is_some() => {
            // OpenWhisk writes these bodies as text.
            text(
                StatusCode::OK,
                switch.pool_state().unwrap_or_default().to_string(),
            )
        }
        (&Method::GET, "/pool/count") if switch.pool_count().is_some() => text(
            StatusCode::OK,
            switch.pool_count().unwrap_or_default().to_string(),
        ),
        (_, "/enable" | "/disable" | "/isEnabled") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "HTTP method not allowed, supported methods: the documented one",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        ),
    }
}

/// Serves `admin` on `listener` until `cancel` fires, within [`ADMIN_LIMITS`], over TLS when `tls`
/// is given (`CONFIG_whisk_invoker_protocol=https`: then plain HTTP gets no answer, as from
/// OpenWhisk's invoker); after `cancel`, waits at most [`SHUTDOWN_GRACE`] for open connections.
/// Warns once at start when the credentials are OpenWhisk's defaults.
pub async fn serve(
    listener: TcpListener,
    admin: Arc<Admin>,
    tls: Option<TlsAcceptor>,
    cancel: CancellationToken,
) {
    if admin.uses_default_password() {
        warn!(
            "the admin server (/enable, /disable, /isEnabled) uses OpenWhisk's default password \
             {DEFAULT_HTTP_PASSWORD:?}, which anyone who reaches its port knows; set \
             CONFIG_whisk_invoker_username and CONFIG_whisk_invoker_password (configuration keys \
             http.username and http.password)"
        );
    }
    let handler = move |request| {
        let admin = Arc::clone(&admin);
        async move { handle(&admin, request).await }
    };
    let serving = serve::serve_with(listener, ADMIN_LIMITS, tls, handler, cancel.clone());
    tokio::pin!(serving);
    tokio::select! {
        () = serving.as_mut() => {}
        () = cancel.cancelled() => {
            if tokio::time::timeout(SHUTDOWN_GRACE, serving).await.is_err() {
                debug!("admin connections still open after the shutdown grace; dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    const USER: &str = "ops";
    const PASS: &str = "s3cret-pass";

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().expect("test header value"));
        headers
    }

    fn basic(credentials: &str) -> HeaderMap {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        with_authorization(&format!("Basic {encoded}"))
    }

    #[test]
    fn test_right_credentials_pass() {
        assert!(rejection(&basic("ops:s3cret-pass"), USER, PASS).is_none());
        // The scheme is case-insensitive (RFC 7235) and a password may contain colons.
        let encoded = base64::engine::general_purpose::STANDARD.encode("ops:a:b");
        let lower = with_authorization(&format!("basic {encoded}"));
        assert!(rejection(&lower, USER, "a:b").is_none());
    }

    #[test]
    fn test_wrong_password_wrong_user_missing_and_malformed_are_401() {
        let cases = [
            ("wrong password", basic("ops:s3cret-pasS")),
            ("password prefix", basic("ops:s3cret")),
            ("password extended", basic("ops:s3cret-pass2")),
            ("wrong user", basic("opz:s3cret-pass")),
            ("empty", basic(":")),
            ("no colon", basic("opss3cret-pass")),
            ("missing header", HeaderMap::new()),
            (
                "malformed base64",
                with_authorization("Basic %%%not-base64%%%"),
            ),
            (
                "other scheme",
                with_authorization("Bearer b3BzOnMzY3JldC1wYXNz"),
            ),
            (
                "over-long header",
                with_authorization(&format!("Basic {}", "A".repeat(MAX_AUTH_HEADER_LEN))),
            ),
        ];
        for (what, headers) in cases {
            let Some(response) = rejection(&headers, USER, PASS) else {
                panic!("{what} was accepted");
            };
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
            // OpenWhisk's `DefaultInvokerServer` challenge.
            assert_eq!(
                response.headers()[WWW_AUTHENTICATE],
                "Basic realm=\"invoker\", charset=UTF-8",
                "{what}"
            );
        }
    }

    #[test]
    fn test_defaults_are_openwhisks_and_only_the_default_password_warns() {
        // OpenWhisk's `whisk.invoker.{username,password}` in ansible's `group_vars/all`.
        assert_eq!(DEFAULT_USERNAME, "invoker.user");
        assert_eq!(DEFAULT_PASSWORD, "invoker.pass");
        assert!(is_default_password("invoker.pass"));
        assert!(!is_default_password("invoker.pass "));
        assert!(!is_default_password(PASS));
    }
}
