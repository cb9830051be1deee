//! A real `pouchdb-server` for tests: `PouchDb::start()` runs `pouchdb-server --in-memory` on a free
//! 127.0.0.1 port in its own temporary directory (it writes `config.json` and `log.txt` into its
//! working directory), waits until it answers, creates an admin user and kills the server on drop.
//!
//! Notes from using it: an unauthenticated `PUT /<db>` once an admin exists crashes the server
//! (`db.info is not a function`), so create databases with the admin's credentials (e.g.
//! `CouchClient::ensure_db`). `_find` works but cannot `sort` without an index. The binary is
//! `pouchdb-server` on `PATH`, or `$POUCHDB_SERVER`.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use executor::store::couchdb::CouchDbConfig;

/// How long the server may take to answer after start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The admin user created in every server.
pub const ADMIN: &str = "admin";
/// Its password.
pub const PASSWORD: &str = "s3cret-pw";

/// A running pouchdb-server, killed when dropped.
pub struct PouchDb {
    child: Child,
    host: Ipv4Addr,
    port: u16,
    dir: tempfile::TempDir,
}

// Each support file includes the one port picker itself, so that it works wherever it is included
// (test crates, benches); the copies share their reservations machine-wide (see ports.rs).
#[allow(
    clippy::duplicate_mod,
    reason = "one picker, included by each support file that starts a server"
)]
#[path = "ports.rs"]
mod ports;

/// One raw HTTP/1.0 exchange; the whole response text.
fn exchange(host: Ipv4Addr, port: u16, request: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect((host, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

impl PouchDb {
    /// Starts a server and creates the admin user. Panics (failing the test) when the server cannot
    /// be started, with its log.
    pub fn start() -> Self {
        Self::start_on(Ipv4Addr::LOCALHOST)
    }

    /// Starts a server listening on `host` (the gateway address of a Docker network a test created,
    /// so that its containers reach it), as [`PouchDb::start`] does.
    #[allow(
        dead_code,
        reason = "used by the tests whose invokers run in containers"
    )]
    pub fn start_on(host: Ipv4Addr) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = ports::free_port(host);
        let program = std::env::var("POUCHDB_SERVER").unwrap_or_else(|_| "pouchdb-server".into());
        let log = std::fs::File::create(dir.path().join("server.log")).expect("a log file");
        let child = Command::new(&program)
            .args([
                "--in-memory",
                "--port",
                &port.to_string(),
                "--host",
                &host.to_string(),
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {program}: {error}"));
        let mut server = Self {
            child,
            host,
            port,
            dir,
        };
        server.wait_ready();
        let body = format!("\"{PASSWORD}\"");
        let response = exchange(
            host,
            port,
            &format!(
                "PUT /_config/admins/{ADMIN} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
        .expect("creating the admin");
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "creating the admin: {response}"
        );
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pouchdb-server exited with {status}: {}", self.log());
            }
            if let Ok(response) = exchange(self.host, self.port, "GET / HTTP/1.0\r\n\r\n")
                && response.contains(" 200 ")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pouchdb-server did not answer within {START_TIMEOUT:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's process id (to stop and continue it).
    #[allow(
        dead_code,
        reason = "used by the fault-injection cases (tests/faults.rs)"
    )]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://<host>:<port>` (`127.0.0.1` unless started with [`PouchDb::start_on`]).
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// A CouchDB configuration for this server with the admin's credentials and databases named
    /// `<prefix>_whisks`, `<prefix>_activations`, `<prefix>_subjects` (not created).
    pub fn config(&self, prefix: &str) -> CouchDbConfig {
        CouchDbConfig {
            protocol: "http".into(),
            host: self.host.to_string(),
            port: self.port,
            username: ADMIN.into(),
            password: PASSWORD.into(),
            entity_db: format!("{prefix}_whisks"),
            activation_db: format!("{prefix}_activations"),
            auth_db: format!("{prefix}_subjects"),
        }
    }
}

impl Drop for PouchDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
