//! A real Kafka-protocol broker for tests: Tansu (`tansu broker`, in-memory storage) on a free
//! 127.0.0.1 port, ready when it answers a metadata request, killed when dropped.
//!
//! The binary is `$TANSU`, else `tansu` on `PATH`, else `~/.cargo/bin/tansu`. A missing binary fails
//! the test (it is never skipped): install it with
//! `cargo install tansu --version 0.6.0 --locked --features dynostore` (about 9 minutes), or run
//! `scripts/test`, which does.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

// Each support file includes the one port picker itself, so that it works wherever it is included
// (test crates, benches); the copies share their reservations machine-wide (see ports.rs).
#[allow(
    clippy::duplicate_mod,
    reason = "one picker, included by each support file that starts a server"
)]
#[path = "ports.rs"]
mod ports;

/// How long the broker may take to answer its first metadata request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Tansu broker.
#[derive(Debug)]
pub struct Tansu {
    child: Child,
    host: Ipv4Addr,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return PathBuf::from(path);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("tansu");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let candidate = home.join(".cargo/bin/tansu");
    if candidate.is_file() {
        return candidate;
    }
    panic!(
        "the Tansu broker is needed by this test and was not found ($TANSU, PATH, ~/.cargo/bin). \
         Install it with `cargo install tansu --version 0.6.0 --locked --features dynostore` \
         (about 9 minutes) or run scripts/test"
    );
}

impl Tansu {
    /// Starts a broker and waits until it answers.
    pub fn start() -> Self {
        Self::start_at(ports::free_port(Ipv4Addr::LOCALHOST), None)
    }

    /// Starts a broker on `port` that tells clients (in its metadata) to connect to
    /// `127.0.0.1:<advertised>` instead (a proxy in front of it, already forwarding to `port`);
    /// `None`: its own port.
    pub fn start_at(port: u16, advertised: Option<u16>) -> Self {
        Self::start_with(Ipv4Addr::LOCALHOST, port, advertised)
    }

    /// Starts a broker listening on `host` (the gateway address of a Docker network a test created,
    /// so that its containers reach it) on a free port, advertising that address.
    #[allow(
        dead_code,
        reason = "used by the tests whose invokers run in containers"
    )]
    pub fn start_on(host: Ipv4Addr) -> Self {
        Self::start_with(host, ports::free_port(host), None)
    }

    /// Starts the broker on `port` (from [`ports::free_port`], which no client socket takes before
    /// the broker binds it) and waits until it answers; panics (failing the test) with its log when
    /// it exits first.
    fn start_with(host: Ipv4Addr, port: u16, advertised: Option<u16>) -> Self {
        let binary = binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("tansu.log");
        let url = format!("tcp://{host}:{port}");
        let advertised_url = format!("tcp://{host}:{}", advertised.unwrap_or(port));
        let out = std::fs::File::create(&log).expect("tansu log file");
        let err = out.try_clone().expect("tansu log file");
        let child = Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised_url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let mut tansu = Self {
            child,
            host,
            port,
            log,
            _dir: dir,
        };
        tansu.wait_ready();
        tansu
    }

    /// Waits until the broker answers; panics with its log when it exited first or does not answer.
    fn wait_ready(&mut self) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("log_level", "0")
            .create()
            .expect("metadata client");
        let start = Instant::now();
        while start.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tansu exited at start ({status}):\n{}", self.log());
            }
            if consumer
                .fetch_metadata(None, Duration::from_millis(500))
                .is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "tansu did not answer within {READY_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// The broker's process id (to stop and continue it).
    #[allow(
        dead_code,
        reason = "used by the fault-injection cases (tests/faults.rs)"
    )]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The broker's own port.
    #[allow(
        dead_code,
        reason = "used by the fault-injection cases (tests/faults.rs)"
    )]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `<host>:<port>` (`127.0.0.1:<port>` unless started with [`Tansu::start_on`]).
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// What the broker wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Creates topics (1 partition), as the controller does for `completed{C}` and `health`.
    pub async fn create_topics(&self, names: &[&str]) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .expect("admin client");
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|name| {
                NewTopic::new(name, 1, TopicReplication::Fixed(1))
                    .set("max.message.bytes", "1054644")
            })
            .collect();
        let results = admin
            .create_topics(topics.iter(), &AdminOptions::new())
            .await
            .expect("create topics");
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => panic!("cannot create topic {name}: {code}"),
            }
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
