//! What the npm-client tests share: the `wasm-invoker standalone` binary started on a free port (and
//! killed when the test ends), tests/npm's dependencies installed, and a script of tests/npm run
//! with node against the server.
//!
//! Needs node and npm; installs tests/npm's dependencies (`npm ci`) when node_modules is missing.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Bound of the server's start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The guest key the server accepts by default.
pub const GUEST_KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// Kills the server when the test ends, however it ends.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wasm-invoker standalone --port 0` and returns it with its base URL.
pub fn start_server(data_dir: &Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasm-invoker"))
        .args(["standalone", "--port", "0", "--no-docker", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wasm-invoker binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[server] {line}");
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send(url);
            }
        }
    });
    let server = Server(child);
    let url = rx
        .recv_timeout(START_TIMEOUT)
        .expect("the server says where it listens");
    (server, url)
}

/// tests/npm.
pub fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("npm")
}

/// `npm ci` in tests/npm unless its node_modules is there.
pub fn install_npm_packages() {
    let dir = npm_dir();
    if dir.join("node_modules").join("openwhisk").is_dir() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("npm runs (node and npm are required by this test)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

/// Runs tests/npm/`script` with node against the server at `url` as the guest (`OW_APIHOST`,
/// `OW_API_KEY`, plus `env`), and asserts it passed every step.
pub fn run_script(script: &str, url: &str, env: &[(&str, &Path)]) {
    let output = Command::new("node")
        .arg(npm_dir().join(script))
        .env("OW_APIHOST", url)
        .env("OW_API_KEY", GUEST_KEY)
        .envs(env.iter().copied())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("passed, 0 failed"), "{stdout}");
}
