//! The `docker` command line, for the tests that run containers of their own (the invoker image,
//! the cluster's nodes): one command at a time, its stdout or a panic naming it; and the test runtime
//! image those tests run, built when missing.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the helpers"
)]

use std::path::Path;
use std::process::Command;

/// The test runtime image (`factory/proxy`, built by `scripts/build-test-image`).
pub const TEST_RUNTIME_IMAGE: &str = "wasm-invoker/action-proxy:test";

/// One `docker` command; its stdout, or a panic with its stderr.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("docker {args:?}: {error}"));
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// [`docker`] on a blocking thread, so the reactor (and the Kafka clients on it) keep going.
pub async fn docker_async(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&args)
    })
    .await
    .expect("docker task")
}

/// Builds [`TEST_RUNTIME_IMAGE`] with `scripts/build-test-image` when the daemon does not have it
/// (`scripts/test` builds it before the tests; this serves a test run on its own).
pub fn ensure_test_runtime_image() {
    let present = Command::new("docker")
        .args(["image", "inspect", TEST_RUNTIME_IMAGE])
        .output()
        .expect("the docker client runs");
    if present.status.success() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("bash")
        .arg(root.join("scripts/build-test-image"))
        // Its own target directory: the running `cargo test` may hold the shared one's lock.
        .env("CARGO_TARGET_DIR", root.join("target/proxy-image"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("run build-test-image");
    assert!(status.success(), "scripts/build-test-image failed");
}
