//! A real etcd for tests: `etcd` with its data in a temp dir, client and peer URLs on free
//! 127.0.0.1 ports, ready when it answers a status request, killed when dropped.
//!
//! The binary is `$ETCD`, else `/usr/bin/etcd`, else `etcd` on `PATH`. A missing binary fails the
//! test (it is never skipped): install it with `apt-get install etcd-server` (Debian, etcd 3.4).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long etcd may take to answer its first status request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or, after [`Etcd::kill`], stopped) single-member etcd.
#[derive(Debug)]
pub struct Etcd {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ETCD") {
        return PathBuf::from(path);
    }
    let usr_bin = PathBuf::from("/usr/bin/etcd");
    if usr_bin.is_file() {
        return usr_bin;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("etcd");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "etcd is needed by this test and was not found ($ETCD, /usr/bin/etcd, PATH). \
         Install it with `apt-get install etcd-server`"
    );
}

// Each support file includes the one port picker itself, so that it works wherever it is included
// (test crates, benches); the copies share their reservations machine-wide (see ports.rs).
#[allow(
    clippy::duplicate_mod,
    reason = "one picker, included by each support file that starts a server"
)]
#[path = "ports.rs"]
mod ports;

/// A port for etcd: see [`ports::free_port`] for why it is not the kernel's port 0.
fn free_port() -> u16 {
    ports::free_port(Ipv4Addr::LOCALHOST)
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub fn start() -> Self {
        let mut etcd = Self {
            child: None,
            client_port: free_port(),
            peer_port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        etcd.launch();
        etcd
    }

    /// `127.0.0.1:<client port>`, as `whisk.etcd.hosts` takes it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// A client connected to this etcd.
    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.endpoint()], None)
            .await
            .expect("etcd client")
    }

    /// Kills etcd (SIGKILL) and waits for it to exit; its data stays for [`Etcd::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data dir (after [`Etcd::kill`]) and waits until it
    /// answers.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// What etcd wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn launch(&mut self) {
        let binary = binary();
        let client_url = format!("http://127.0.0.1:{}", self.client_port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("etcd log file");
        let err = out.try_clone().expect("etcd log file");
        let data = self.dir.path().join("data");
        let child = Command::new(&binary)
            .arg("--name")
            .arg("default")
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            // Only the flags above configure it, whatever the environment says.
            .env_clear()
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < READY_TIMEOUT {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("etcd exited with {status} at start:\n{}", self.log());
            }
            if self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "etcd did not answer within {READY_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// Whether etcd answers a status request within a second. The probe runs on its own thread
    /// and runtime, so that `start` works from sync code and from inside a test's runtime alike.
    fn answers(&self) -> bool {
        let endpoint = self.endpoint();
        std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return false;
            };
            runtime.block_on(async {
                let probe = async {
                    let mut client = etcd_client::Client::connect([&endpoint], None).await?;
                    client.status().await
                };
                matches!(
                    tokio::time::timeout(Duration::from_secs(1), probe).await,
                    Ok(Ok(_))
                )
            })
        })
        .join()
        .unwrap_or(false)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
