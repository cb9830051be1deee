//! The keystore reader and the pinned https server, against keystores made the way OpenWhisk's
//! `genssl.sh` makes them (`executor/tests/fixtures/tls/README.md` says how): X.509 v1 self-signed
//! certificates in PKCS12 files, OpenSSL 3's default protection and the legacy one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use super::client::client_config;
use super::*;
use crate::serve::{ServeLimits, serve_with};

/// The fixtures' password, OpenWhisk's default (`openwhisk`).
const PASSWORD: &str = "openwhisk";
/// Bound on every exchange of these tests.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn keystore(name: &str) -> Keystore {
    let path = fixture(name);
    let bytes = std::fs::read(&path).expect("fixture");
    Keystore::from_pkcs12(&path, &bytes, PASSWORD).expect("fixture keystore")
}

/// The DER of a PEM certificate fixture (one base64 block).
fn pem_der(name: &str) -> Vec<u8> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(fixture(name)).expect("fixture");
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM base64")
}

#[test]
fn test_reads_openssl3_and_legacy_keystores() {
    for name in ["invoker-keystore.p12", "invoker-keystore-legacy.p12"] {
        let store = keystore(name);
        assert_eq!(store.chain.len(), 1, "{name}");
        assert_eq!(
            store.chain[0].as_ref(),
            pem_der("invoker-cert.pem"),
            "{name}"
        );
        assert_eq!(store.certificates, store.chain, "{name}");
        store
            .certified_key(&provider())
            .unwrap_or_else(|error| panic!("{name}: {error}"));
    }
}

#[test]
fn test_bad_keystores_are_refused_with_their_path() {
    let path = fixture("invoker-keystore.p12");
    let bytes = std::fs::read(&path).expect("fixture");
    let error = Keystore::from_pkcs12(&path, &bytes, "not-the-password").expect_err("password");
    assert!(matches!(error, TlsError::WrongPassword { .. }), "{error}");
    assert!(
        error.to_string().contains("invoker-keystore.p12"),
        "{error}"
    );

    let pem = fixture("invoker-cert.pem");
    let error = Keystore::from_pkcs12(&pem, &std::fs::read(&pem).expect("fixture"), PASSWORD)
        .expect_err("a PEM file is no keystore");
    assert!(matches!(error, TlsError::NotPkcs12 { .. }), "{error}");

    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.p12");
    let error = read_bounded(&missing).expect_err("missing");
    assert!(matches!(error, TlsError::Read { .. }), "{error}");
    assert!(error.to_string().contains("missing.p12"), "{error}");

    let huge = dir.path().join("huge.p12");
    std::fs::write(&huge, vec![0u8; MAX_KEYSTORE_BYTES as usize + 1]).expect("write");
    let error = read_bounded(&huge).expect_err("too large");
    assert!(matches!(error, TlsError::TooLarge { .. }), "{error}");
}

#[test]
fn test_a_key_that_is_not_the_certificates_is_refused() {
    let mut store = keystore("invoker-keystore.p12");
    store.key = keystore("other-keystore.p12").key;
    let error = server_config(&store, true).expect_err("mismatch");
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
}

/// An https server of the invoker's keystore on a free port, answering `pong` to anything.
async fn server(client_auth: bool) -> (SocketAddr, CancellationToken) {
    let acceptor = TlsAcceptor::from(Arc::new(
        server_config(&keystore("invoker-keystore.p12"), client_auth).expect("server config"),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let cancel = CancellationToken::new();
    let limits = ServeLimits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(2),
        max_connection_age: None,
    };
    tokio::spawn(serve_with(
        listener,
        limits,
        Some(acceptor),
        |_request| async { Response::new(Full::new(Bytes::from_static(b"pong"))) },
        cancel.clone(),
    ));
    (address, cancel)
}

/// `GET /ping` over TLS with `config`: the whole response, or why there is none.
async fn get(address: SocketAddr, config: rustls::ClientConfig) -> Result<String, String> {
    let exchange = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let name =
            rustls::pki_types::ServerName::try_from("invoker0").map_err(|e| e.to_string())?;
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tls.write_all(b"GET /ping HTTP/1.1\r\nHost: invoker0\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .map_err(|_| "timed out".to_string())?
}

fn answered(result: &Result<String, String>) -> bool {
    matches!(result, Ok(text) if text.starts_with("HTTP/1.1 200") && text.ends_with("pong"))
}

#[tokio::test]
async fn test_the_keystores_own_certificate_is_admitted_over_tls13_and_tls12() {
    let (address, cancel) = server(true).await;
    let own = keystore("invoker-keystore.p12");
    let tls13 = client_config(&own, Some(&own), Some(&[&rustls::version::TLS13])).expect("client");
    let result = get(address, tls13).await;
    assert!(answered(&result), "TLS 1.3: {result:?}");
    let tls12 = client_config(&own, Some(&own), Some(&[&rustls::version::TLS12])).expect("client");
    let result = get(address, tls12).await;
    assert!(answered(&result), "TLS 1.2: {result:?}");
    cancel.cancel();
}

#[tokio::test]
async fn test_no_or_a_foreign_client_certificate_is_refused() {
    let (address, cancel) = server(true).await;
    let own = keystore("invoker-keystore.p12");
    let other = keystore("other-keystore.p12");
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let none = client_config(&own, None, Some(versions)).expect("client");
        let result = get(address, none).await;
        assert!(!answered(&result), "no certificate: {result:?}");
        let foreign = client_config(&own, Some(&other), Some(versions)).expect("client");
        let result = get(address, foreign).await;
        assert!(!answered(&result), "a foreign certificate: {result:?}");
    }
    // The server still serves its own after refusing the others.
    let result = get(
        address,
        client_config(&own, Some(&own), None).expect("client"),
    )
    .await;
    assert!(answered(&result), "{result:?}");
    cancel.cancel();
}

#[tokio::test]
async fn test_without_client_auth_any_client_is_served_but_never_plain_http() {
    let (address, cancel) = server(false).await;
    let own = keystore("invoker-keystore.p12");
    let result = get(address, client_config(&own, None, None).expect("client")).await;
    assert!(answered(&result), "{result:?}");

    // A plain HTTP request gets no HTTP answer: the handshake fails and the connection closes.
    let plain = async {
        let mut tcp = TcpStream::connect(address).await.expect("connect");
        tcp.write_all(b"GET /ping HTTP/1.1\r\nHost: invoker0\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut response = Vec::new();
        let _ = tcp.read_to_end(&mut response).await;
        response
    };
    let response = tokio::time::timeout(EXCHANGE_TIMEOUT, plain)
        .await
        .expect("the server closes a plain-HTTP connection");
    assert!(
        !String::from_utf8_lossy(&response).contains("pong"),
        "plain HTTP was answered: {response:?}"
    );
    cancel.cancel();
}

#[tokio::test]
async fn test_a_client_that_never_says_hello_is_dropped_after_the_header_timeout() {
    let (address, cancel) = server(true).await;
    let mut tcp = TcpStream::connect(address).await.expect("connect");
    let mut buffer = [0u8; 16];
    // The server's handshake bound is 2 s; the read ends (0 bytes or a reset) well within 10 s.
    let read = tokio::time::timeout(EXCHANGE_TIMEOUT, tcp.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "a silent client kept its connection: {read:?}"
    );
    cancel.cancel();
}
