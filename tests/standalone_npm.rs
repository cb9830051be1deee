//! End to end: the `wasm-invoker standalone` binary driven by the official `openwhisk` npm client
//! (tests/npm/standalone.js): create a wasm action from a zip, invoke it blocking and non-blocking,
//! read its activation, logs and result, update and delete it.
//!
//! Needs node and npm; installs tests/npm's dependencies (`npm ci`) when node_modules is missing.

#[path = "support/standalone_npm.rs"]
mod standalone_npm;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use standalone_npm::{install_npm_packages, run_script, start_server};

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

#[test]
fn test_openwhisk_npm_client_drives_the_standalone_server() {
    install_npm_packages();
    let work = tempfile::tempdir().unwrap();
    let zip = hello_zip(work.path());
    let (server, url) = start_server(&work.path().join("data"));
    run_script("standalone.js", &url, &[("HELLO_ZIP", &zip)]);
    drop(server);
}
