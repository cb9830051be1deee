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
//!
//! Missing or wrong credentials on any other route: 401; valid credentials on an unknown route: 404.
//! [`handle`] is the whole service as a function, so tests call it without a socket.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::metrics::Metrics;
use crate::ping::Pinger;
use crate::pool::Pool;

/// OpenWhisk's default admin user (`whisk.invoker.username`).
pub const DEFAULT_USERNAME: &str = "invoker.user";
/// OpenWhisk's default admin password (`whisk.invoker.password`).
pub const DEFAULT_PASSWORD: &str = "invoker.pass";

/// What the admin routes act on.
#[derive(Debug)]
pub struct Admin {
    /// The health pinger that `/enable` and `/disable` switch.
    pub pinger: Arc<Pinger>,
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
    fn authorized<B>(&self, request: &Request<B>) -> bool {
        let Some(header) = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
        else {
            return false;
        };
        let Some(encoded) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        match decoded.split_once(':') {
            Some((user, pass)) => user == self.username && pass == self.password,
            None => false,
        }
    }
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
    if !admin.authorized(&request) {
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
        return response;
    }
    let name = admin.pinger.instance().to_string();
    match (&method, path.as_str()) {
        (&Method::POST, "/enable") => {
            if admin.pinger.enable().await {
                text(StatusCode::OK, format!("{name} is now enabled."))
            } else {
                text(StatusCode::OK, format!("{name} is already enabled."))
            }
        }
        (&Method::POST, "/disable") => {
            if admin.pinger.disable().await {
                text(StatusCode::OK, format!("{name} is now disabled."))
            } else {
                text(StatusCode::OK, format!("{name} is already disabled."))
            }
        }
        (&Method::GET, "/isEnabled") => {
            json(serde_json::json!({"enabled": admin.pinger.is_enabled()}).to_string())
        }
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

/// Serves `admin` on `listener` until `cancel` fires.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accept failed");
                continue;
            }
        };
        let admin = admin.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(handle(&admin, request).await) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => if let Err(error) = result {
                    debug!(%error, %peer, "admin connection ended with an error");
                },
                () = cancel.cancelled() => {}
            }
        });
    }
}
