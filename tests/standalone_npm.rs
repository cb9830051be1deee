//! End to end: the `wasm-invoker standalone` binary driven by the official `openwhisk` npm client, one
//! script of tests/npm per test, each against its own server on an empty data directory:
//!
//! - `standalone.js`: a wasm action from a zip, invoked blocking and non-blocking, its activation,
//!   logs and result, updated and deleted;
//! - `sequences.js`: three wasm actions, a sequence of them, its result and record, and one whose
//!   middle step fails;
//! - `triggers.js`: a trigger fired with two rules (one disabled), the active rule's activation
//!   found with `activations.list`;
//! - `packages.js`: a package with an action, a binding, and another namespace's package, private
//!   then published;
//! - `catalog.js`: the `/whisk.system/utils` catalog read, invoked, bound and used in a sequence.
//!
//! Needs node and npm; installs tests/npm's dependencies (`npm ci`) when node_modules is missing.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Bound of the server's start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The guest key the server accepts by default.
const GUEST_KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// The key of a second namespace, `other`, for the shared-package test.
const OTHER_KEY: &str =
    "0b4e3e8a-2c6d-4b8e-9a51-6f3a7d1c2e90:OtherSecretOtherSecretOtherSecretOtherSecretOtherSecret";

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wasm-invoker standalone --port 0` (with `args`) and returns it with its base URL.
fn start_server(data_dir: &Path, args: &[String]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasm-invoker"))
        .args(["standalone", "--port", "0", "--no-docker", "--data-dir"])
        .arg(data_dir)
        .args(args)
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
fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("npm")
}

/// `npm ci` in tests/npm unless its node_modules is there (once at a time: the tests of this file
/// run in parallel).
fn install_npm_packages() {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
fn run_script(script: &str, url: &str, env: &[(&str, &Path)]) {
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

fn hello_zip(dir: &Path) -> PathBuf {
    let wasm = ow_action::artifacts::wasm_module("hello").expect("the hello example builds");
    let path = dir.join("hello.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file("hello.wasm", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(&std::fs::read(wasm).unwrap()).unwrap();
    zip.finish().unwrap();
    path
}

fn example(name: &str) -> PathBuf {
    ow_action::artifacts::wasm_module(name).expect("the example builds")
}

/// Installs the client, starts a server on an empty data directory and runs `script` against it.
fn drive(script: &str, env: impl FnOnce(&Path) -> Vec<(&'static str, PathBuf)>) {
    drive_with(script, &[], env);
}

/// [`drive`] with extra server arguments.
fn drive_with(
    script: &str,
    args: &[String],
    env: impl FnOnce(&Path) -> Vec<(&'static str, PathBuf)>,
) {
    install_npm_packages();
    let work = tempfile::tempdir().unwrap();
    let env = env(work.path());
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let (server, url) = start_server(&work.path().join("data"), args);
    run_script(script, &url, &env);
    drop(server);
}

#[test]
fn test_openwhisk_npm_client_drives_the_standalone_server() {
    drive("standalone.js", |dir| vec![("HELLO_ZIP", hello_zip(dir))]);
}

#[test]
fn test_openwhisk_npm_client_uses_packages_bindings_and_shared_packages() {
    // The guest's key and a second namespace's (`OW_OTHER_KEY`, a path here only to pass it along).
    let args = [
        "--auth".to_string(),
        format!("{GUEST_KEY}=guest"),
        "--auth".to_string(),
        format!("{OTHER_KEY}=other"),
    ];
    drive_with("packages.js", &args, |_| {
        vec![
            ("HELLO_WASM", example("hello")),
            ("OW_OTHER_KEY", PathBuf::from(OTHER_KEY)),
        ]
    });
}

#[test]
fn test_openwhisk_npm_client_runs_sequences() {
    drive("sequences.js", |_| {
        vec![
            ("ECHO_WASM", example("echo")),
            ("HELLO_WASM", example("hello")),
        ]
    });
}

#[test]
fn test_openwhisk_npm_client_fires_triggers_through_rules() {
    drive("triggers.js", |_| vec![("ECHO_WASM", example("echo"))]);
}

#[test]
fn test_openwhisk_npm_client_uses_the_whisk_system_utils_catalog() {
    drive("catalog.js", |_| Vec::new());
}
