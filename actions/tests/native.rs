//! The example actions built natively (static, for `FROM scratch` images) follow the
//! docker-skeleton contract: params in `argv[1]` (or on stdin), result on the last stdout line.
//!
//! `escape` is not run here: natively nothing stops it writing `/escape.txt` on this host.

// Builds and runs artifacts on the host; there is nothing to test from inside wasm.
#![cfg(not(target_family = "wasm"))]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ow_action::artifacts::native_binary;
use serde_json::{Value, json};

/// Runs example `name` with `argv[1]` = `arg` (if any) and `stdin` on stdin.
fn run(name: &str, arg: Option<&str>, stdin: &str) -> Output {
    run_with(name, arg, stdin, &[])
}

fn run_with(name: &str, arg: Option<&str>, stdin: &str, env: &[(&str, &str)]) -> Output {
    let path = native_binary(name).unwrap_or_else(|e| panic!("building {name}: {e}"));
    let mut command = Command::new(&path);
    if let Some(arg) = arg {
        command.arg(arg);
    }
    let mut child = command
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
    let mut pipe = child.stdin.take().expect("stdin was piped");
    // The action may exit without reading stdin (argv[1] present); a broken pipe is then fine.
    let _ = pipe.write_all(stdin.as_bytes());
    drop(pipe);
    child.wait_with_output().expect("waiting for the action")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// The result: the last stdout line, parsed.
fn result(output: &Output) -> Value {
    let out = stdout(output);
    let last = out.lines().last().unwrap_or_else(|| {
        panic!(
            "no stdout; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line {last:?} is not JSON: {e}"))
}

#[test]
fn binaries_are_static() {
    let path = native_binary("hello").expect("building hello");
    let file = Command::new("file")
        .arg(&path)
        .output()
        .expect("running file(1)");
    let description = String::from_utf8_lossy(&file.stdout);
    assert!(
        description.contains("statically linked") || description.contains("static-pie linked"),
        "{description}"
    );
}

#[test]
fn hello_greets_from_argv_and_logs_first() {
    let output = run("hello", Some(r#"{"name":"Ada"}"#), r#"{"name":"Ada"}"#);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output),
        "greeting Ada\n{\"greeting\":\"Hello, Ada!\"}\n"
    );
}

#[test]
fn hello_reads_stdin_without_argv() {
    // Params too large for argv arrive on stdin only.
    let padding = "p".repeat(ow_action::MAX_ARGV_PARAMS_BYTES + 1);
    let params = json!({ "name": "Grace", "padding": padding }).to_string();
    let output = run("hello", None, &params);
    assert_eq!(result(&output), json!({ "greeting": "Hello, Grace!" }));
}

#[test]
fn hello_defaults_and_rejects_bad_params() {
    let output = run("hello", Some("{}"), "{}");
    assert_eq!(result(&output), json!({ "greeting": "Hello, stranger!" }));
    let output = run("hello", None, "");
    assert_eq!(result(&output), json!({ "greeting": "Hello, stranger!" }));
    let output = run("hello", Some(r#"{"name":42}"#), "");
    assert_eq!(
        result(&output),
        json!({ "error": "The parameter \"name\" must be a string." })
    );
    let output = run("hello", Some("not json"), "");
    let error = result(&output)["error"]
        .as_str()
        .expect("an error message")
        .to_owned();
    assert!(
        error.starts_with("The action's parameters in argv[1] are not valid JSON:"),
        "{error}"
    );
}

#[test]
fn echo_returns_params_on_one_line() {
    let output = run("echo", Some(r#"[1,{"a":"b\nc"}]"#), "");
    assert_eq!(stdout(&output), "[1,{\"a\":\"b\\nc\"}]\n");
    let pretty = "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n";
    let output = run("echo", None, pretty);
    assert_eq!(stdout(&output).lines().count(), 1);
    assert_eq!(result(&output), json!({ "a": [1, 2] }));
    assert_eq!(stdout(&run("echo", None, "")), "{}\n");
}

#[test]
fn prime_counts_primes_below_n() {
    assert_eq!(
        result(&run("prime", Some(r#"{"n":100}"#), "")),
        json!({ "n": 100, "primes": 25 })
    );
    assert_eq!(
        result(&run("prime", Some("{}"), "")),
        json!({ "n": 100000, "primes": 9592 })
    );
    assert_eq!(
        result(&run("prime", Some(r#"{"n":2}"#), "")),
        json!({ "n": 2, "primes": 0 })
    );
    assert_eq!(
        result(&run("prime", Some(r#"{"n":-1}"#), "")),
        json!({ "error": "The parameter \"n\" must be a non-negative integer." })
    );
}

#[test]
fn logs_writes_both_streams_then_the_result() {
    let output = run("logs", Some(r#"{"n":3}"#), "");
    assert_eq!(
        stdout(&output),
        "stdout line 0\nstdout line 1\nstdout line 2\n{\"lines\":3}\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "stderr line 0\nstderr line 1\nstderr line 2\n"
    );
    assert_eq!(result(&run("logs", None, "")), json!({ "lines": 10 }));
}

#[test]
fn bigout_result_has_the_asked_size() {
    let output = run("bigout", Some(r#"{"bytes":5000}"#), "");
    let out = stdout(&output);
    let last = out.lines().last().expect("a result line");
    assert_eq!(last.len(), 5000);
    assert_eq!(
        result(&output)["data"].as_str().map(str::len),
        Some(5000 - 11)
    );
    let output = run("bigout", None, "");
    assert_eq!(stdout(&output).len(), (2 << 20) + 1);
}

#[test]
fn flood_writes_exactly_mb_of_log_then_the_result() {
    let output = run("flood", Some(r#"{"mb":1}"#), "");
    let out = stdout(&output);
    let (logs, last) = out
        .trim_end()
        .rsplit_once('\n')
        .expect("log lines and a result");
    assert_eq!(last, r#"{"done":true}"#);
    assert_eq!(logs.len() + 1 + output.stderr.len(), 1 << 20);
    assert!(
        logs.starts_with("flood stdout line 0 ..."),
        "{}",
        &logs[..40]
    );
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("flood stderr line 1 ..."));
}

#[test]
fn exit_prints_the_result_then_exits_with_code() {
    let output = run("exit", Some(r#"{"code":7}"#), "");
    assert_eq!(output.status.code(), Some(7));
    assert_eq!(stdout(&output), "{\"code\":7}\n");
    // A log line after the result goes to stderr, so it cannot replace the result.
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "exiting with code 7\n"
    );
    let output = run("exit", None, "");
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(result(&output), json!({ "code": 3 }));
}

#[test]
fn garbage_ends_with_a_non_json_line() {
    let output = run("garbage", Some("{}"), "");
    assert_eq!(
        stdout(&output),
        "about to print garbage\nthis is not json\n"
    );
}

#[test]
fn scratch_writes_and_reads_tmp() {
    let output = run("scratch", Some(r#"{"text":"native"}"#), "");
    assert_eq!(result(&output), json!({ "wrote": true, "read": "native" }));
}

#[test]
fn env_returns_exactly_the_environment() {
    let output = run_with(
        "env",
        Some("{}"),
        "",
        &[("__OW_ACTIVATION_ID", "abc"), ("INIT_PARAM", "x")],
    );
    assert_eq!(
        result(&output),
        json!({ "__OW_ACTIVATION_ID": "abc", "INIT_PARAM": "x" })
    );
}

#[test]
fn panic_exits_without_a_result() {
    let output = run("panic", Some(r#"{"message":"boom here"}"#), "");
    assert_eq!(output.status.code(), Some(101));
    assert_eq!(stdout(&output), "");
    assert!(String::from_utf8_lossy(&output.stderr).contains("boom here"));
}

#[test]
fn hog_stops_at_max_mb() {
    let output = run("hog", Some(r#"{"max_mb":8}"#), "");
    assert_eq!(result(&output), json!({ "allocated_mb": 8 }));
}

#[test]
fn spin_keeps_running_until_killed() {
    let path = native_binary("spin").expect("building spin");
    let mut child = Command::new(path)
        .arg("{}")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting spin");
    std::thread::sleep(Duration::from_millis(300));
    let status = child.try_wait().expect("polling spin");
    child.kill().expect("killing spin");
    let _ = child.wait();
    assert_eq!(status, None, "spin exited");
}
