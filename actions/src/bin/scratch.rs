//! `scratch`: writes a file under `/tmp` and reads it back, for the scratch directory option.
//!
//! Params: `text` (string, default `"scratch"`).
//! Result: `{"wrote": true, "read": <text read back>}`; an application error `{"error": ...}`
//! when `/tmp` is unavailable (the default sandbox has no filesystem), or when the file already
//! exists, which would mean the scratch directory is not fresh for each activation.
//!
//! On wasm the file is left behind (the invoker deletes the directory); natively, where `/tmp` is
//! shared, it is removed so the next run starts clean.

use std::fs::{self, OpenOptions};
use std::io::Write;

use ow_action::serde_json::{Value, json};

/// The file written and read back.
const PATH: &str = "/tmp/ow-action-scratch.txt";

fn main() {
    ow_action::run(|params: Value| {
        let text = match params.get("text") {
            None => "scratch",
            Some(Value::String(text)) => text.as_str(),
            Some(_) => return Err("The parameter \"text\" must be a string.".to_owned()),
        };
        let unavailable = |e: std::io::Error| format!("/tmp is unavailable: {PATH}: {e}");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(PATH)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    format!("{PATH} already exists: the scratch directory is not fresh")
                }
                _ => unavailable(e),
            })?;
        file.write_all(text.as_bytes()).map_err(unavailable)?;
        drop(file);
        let read = fs::read_to_string(PATH).map_err(unavailable);
        if cfg!(not(target_family = "wasm")) {
            let _ = fs::remove_file(PATH);
        }
        Ok(json!({ "wrote": true, "read": read? }))
    });
}
