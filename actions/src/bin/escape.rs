//! `escape`: tries to leave the sandbox, for isolation tests. Do not run it natively on a host you
//! care about: outside wasm nothing stops it writing `/escape.txt`.
//!
//! Params: ignored.
//! Result: `{"attempts": [{"op": "read"|"write"|"list", "path": <path>, "ok": <bool>,
//! "error": <message or null>}, ...], "env": [<names of all environment variables, sorted>]}`.
//! The attempts are: read `/etc/passwd`, read `/proc/self/environ`, list `/`, list `..`, write
//! `/escape.txt`, `../escape.txt` and `/tmp/../escape.txt`. In a correct sandbox every attempt has
//! `"ok": false` and `env` holds only `__OW_*` names and the action's init parameters.

use std::fs;

use ow_action::serde_json::{Value, json};

fn attempt(op: &str, path: &str, outcome: Result<(), std::io::Error>) -> Value {
    let error = outcome.as_ref().err().map(ToString::to_string);
    json!({ "op": op, "path": path, "ok": outcome.is_ok(), "error": error })
}

fn main() {
    ow_action::run(|_params: Value| -> Result<Value, Value> {
        let mut attempts = Vec::new();
        for path in ["/etc/passwd", "/proc/self/environ"] {
            attempts.push(attempt("read", path, fs::read(path).map(drop)));
        }
        for path in ["/", ".."] {
            attempts.push(attempt("list", path, fs::read_dir(path).map(drop)));
        }
        for path in ["/escape.txt", "../escape.txt", "/tmp/../escape.txt"] {
            attempts.push(attempt("write", path, fs::write(path, b"escaped\n")));
        }
        let mut env: Vec<String> = std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        env.sort();
        Ok(json!({ "attempts": attempts, "env": env }))
    });
}
