//! End-to-end tests of `wasm-invoker run`: the real binary on real example actions from `actions/`,
//! checking stdout (the result line), stderr (the formatted logs) and the exit status; and the exit
//! status of `invoker` and `standalone` when their configuration or command line is at fault.

#[path = "support/docker_cli.rs"]
mod docker_cli;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn wasm(name: &str) -> PathBuf {
    ow_action::artifacts::wasm_module(name).expect("the example actions build for wasm32-wasip1")
}

fn invoker() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasm-invoker"));
    command
        .env_remove("RUNTIMES_MANIFEST")
        .env("RUST_LOG", "warn");
    command
}

fn run(args: &[&str], file: &Path) -> Output {
    invoker()
        .arg("run")
        .arg(file)
        .args(args)
        .output()
        .expect("wasm-invoker runs")
}

/// The exit code, the result line parsed as JSON and stderr.
fn parts(output: &Output) -> (i32, Value, String) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output.status.code().expect("the process exited");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one result line on stdout, got {stdout:?}; stderr: {stderr}"
    );
    let result = serde_json::from_str(lines[0]).expect("the result line is JSON");
    (code, result, stderr)
}

#[test]
fn test_run_hello_prints_result_and_logs() {
    let (code, result, stderr) = parts(&run(&["-p", "name", "Ada"], &wasm("hello")));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result, json!({"greeting": "Hello, Ada!"}));
    let log = stderr
        .lines()
        .find(|line| line.ends_with("stdout: greeting Ada"))
        .expect("the log line");
    // `<time padded to 30> stdout: ...`: docker's nanosecond RFC 3339 time is exactly 30 columns.
    assert_eq!(log.find(" stdout: "), Some(30), "{log}");
}

#[test]
fn test_run_params_are_json_when_they_parse_else_strings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let param_file = dir.path().join("params.json");
    std::fs::write(&param_file, r#"{"from_file": 1, "n": "overridden"}"#).expect("write params");
    let args = [
        "-p",
        "n",
        "5",
        "-p",
        "s",
        "text",
        "-p",
        "obj",
        r#"{"a":[1,2]}"#,
        "-p",
        "t",
        "true",
        "--param-file",
        param_file.to_str().expect("utf-8 path"),
    ];
    let (code, result, stderr) = parts(&run(&args, &wasm("echo")));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        result,
        json!({"from_file": 1, "n": 5, "s": "text", "obj": {"a": [1, 2]}, "t": true})
    );
}

#[test]
fn test_run_application_error_exits_1() {
    let (code, result, _) = parts(&run(&["-p", "error", "boom"], &wasm("echo")));
    assert_eq!(code, 1);
    assert_eq!(result, json!({"error": "boom"}));
}

#[test]
fn test_run_developer_error_exits_2_with_the_line_in_the_logs() {
    let (code, result, stderr) = parts(&run(&[], &wasm("garbage")));
    assert_eq!(code, 2);
    assert_eq!(
        result,
        json!({"error": "The action did not return a dictionary or array."})
    );
    assert!(stderr.contains("stdout: this is not json"), "{stderr}");
}

#[test]
fn test_run_timeout_obeyed_and_violated() {
    // Both halves leave room for the compile: `run` compiles the module inside the init, which the
    // same limit bounds, and a loaded 2-core machine can take a second to compile even `hello`. So
    // the violated half must be long enough that only the run (which never ends) can exceed it, or
    // it would report the init's timeout instead.
    let (code, result, _) = parts(&run(&["--timeout", "3000"], &wasm("spin")));
    assert_eq!(code, 2);
    assert_eq!(
        result,
        json!({"error": "The action exceeded its time limits of 3000 milliseconds."})
    );
    let (code, _, stderr) = parts(&run(&["--timeout", "5000"], &wasm("hello")));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn test_run_fuel_obeyed_and_violated() {
    let (code, result, _) = parts(&run(
        &["--fuel", "10000", "-p", "n", "100000"],
        &wasm("prime"),
    ));
    assert_eq!(code, 2);
    assert_eq!(
        result,
        json!({"error": "The action exhausted its CPU budget of 10000 fuel units."})
    );
    let (code, result, stderr) = parts(&run(
        &["--fuel", "10000000000", "-p", "n", "1000"],
        &wasm("prime"),
    ));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result, json!({"n": 1000, "primes": 168}));
    let used: u64 = stderr
        .lines()
        .find_map(|line| line.strip_prefix("fuel used: "))
        .expect("fuel reported")
        .parse()
        .expect("a number");
    assert!(used > 0 && used < 10_000_000_000, "{used}");
}

#[test]
fn test_run_memory_limit_violated() {
    let (code, result, _) = parts(&run(&["--memory", "128"], &wasm("hog")));
    assert_eq!(code, 2);
    assert_eq!(
        result,
        json!({"error": "The action exhausted its memory and was aborted."})
    );
}

#[test]
fn test_run_zip_holding_the_module() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zip_path = dir.path().join("hello.zip");
    let file = std::fs::File::create(&zip_path).expect("create zip");
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file("hello.wasm", zip::write::SimpleFileOptions::default())
        .expect("zip entry");
    std::io::copy(
        &mut std::fs::File::open(wasm("hello")).expect("module"),
        &mut zip,
    )
    .expect("copy");
    zip.finish().expect("finish zip");
    let (code, result, stderr) = parts(&run(&["-p", "name", "Zip"], &zip_path));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result, json!({"greeting": "Hello, Zip!"}));
}

#[test]
fn test_run_invalid_module_is_a_developer_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notwasm.wasm");
    std::fs::write(&path, "function main() {}").expect("write");
    let (code, result, _) = parts(&run(&[], &path));
    assert_eq!(code, 2);
    let message = result["error"].as_str().expect("an error message");
    assert!(
        message.starts_with("The wasm module is invalid: "),
        "{message}"
    );
}

#[test]
fn test_run_bad_input_exits_2_without_a_result() {
    let output = run(&[], Path::new("/nonexistent/action.wasm"));
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read the action file"));

    let dir = tempfile::tempdir().expect("tempdir");
    let param_file = dir.path().join("params.json");
    std::fs::write(&param_file, "[1, 2]").expect("write");
    let output = run(
        &["--param-file", param_file.to_str().expect("utf-8")],
        &wasm("echo"),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("must hold a JSON object"));
}

#[test]
fn test_run_docker_kind_needs_a_manifest() {
    let output = run(&["--kind", "nodejs:20"], &wasm("echo"));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs a runtimes manifest"));
}

#[test]
fn test_run_invalid_manifest_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("runtimes.json");
    std::fs::write(&manifest, "{ not json").expect("write");
    let output = run(
        &[
            "--kind",
            "nodejs:20",
            "--manifest",
            manifest.to_str().expect("utf-8"),
        ],
        &wasm("echo"),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the runtimes manifest is not valid"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A configuration the invoker cannot use stops it before it touches Kafka, with exit status 2 and
/// the offending variable named.
#[test]
fn test_invoker_bad_environment_exits_2() {
    let output = invoker()
        .arg("invoker")
        .env("CONFIG_whisk_kafka_consumer_fetchMaxWaitMs", "soon")
        .output()
        .expect("wasm-invoker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: invalid configuration: environment variable CONFIG_whisk_kafka_consumer_fetchMaxWaitMs"),
        "{stderr}"
    );
}

/// A malformed `--auth` is the command line's fault: exit status 2, before anything starts.
#[test]
fn test_standalone_bad_auth_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = invoker()
        .arg("standalone")
        .args(["--port", "0", "--no-docker", "--auth", "no-namespace"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("wasm-invoker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--auth"), "{stderr}");
}

/// The Docker path of `run`: a native example action in the test runtime image built from
/// `factory/proxy` (scripts/build-test-image), run as a native blackbox. Needs a Docker daemon.
#[test]
fn test_run_blackbox_action_in_docker() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let image = docker_cli::TEST_RUNTIME_IMAGE;
    docker_cli::ensure_test_runtime_image();
    let hello = ow_action::artifacts::native_binary("hello").expect("native hello builds");
    let manifest = root.join("factory/tests/docker/runtimes.json");
    let output = run(
        &[
            "--kind",
            "blackbox",
            "--image",
            image,
            "--manifest",
            manifest.to_str().expect("utf-8"),
            "-p",
            "name",
            "Docker",
        ],
        &hello,
    );
    let (code, result, stderr) = parts(&output);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result, json!({"greeting": "Hello, Docker!"}));
    assert!(stderr.contains("stdout: greeting Docker"), "{stderr}");
}
