//! End to end: sequences of wasm actions on the `wasm-invoker standalone` binary, driven by the
//! official `openwhisk` npm client (tests/npm/sequences.js): three actions, a sequence of them,
//! its result and record, and one whose middle step fails.
//!
//! Needs node and npm; installs tests/npm's dependencies (`npm ci`) when node_modules is missing.

#[path = "support/standalone_npm.rs"]
mod standalone_npm;

use standalone_npm::{install_npm_packages, run_script, start_server};

#[test]
fn test_openwhisk_npm_client_runs_sequences() {
    install_npm_packages();
    let work = tempfile::tempdir().unwrap();
    let echo = ow_action::artifacts::wasm_module("echo").expect("the echo example builds");
    let hello = ow_action::artifacts::wasm_module("hello").expect("the hello example builds");
    let (server, url) = start_server(&work.path().join("data"));
    run_script(
        "sequences.js",
        &url,
        &[
            ("ECHO_WASM", echo.as_path()),
            ("HELLO_WASM", hello.as_path()),
        ],
    );
    drop(server);
}
