//! `echo`: returns its params unchanged (object or array), without the SDK.
//!
//! Params: anything. Result: the params themselves, on one line; `{}` when there are none.
//! Logs: none.
//!
//! Deliberately uses only `std`, to show the contract needs no SDK: read `argv[1]` (or stdin when
//! the params were too large for `argv`), print them as the last stdout line. Input that is not
//! JSON is echoed too, and the invoker reports it as a developer error.

use std::io::Read;

fn main() {
    let params = match std::env::args_os().nth(1) {
        Some(arg) => arg.to_string_lossy().into_owned(),
        None => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                println!("{{\"error\":\"echo could not read stdin\"}}");
                eprintln!("echo: could not read stdin: {e}");
                return;
            }
            text
        }
    };
    // A line break in valid JSON can only be whitespace between tokens (strings must escape it),
    // so replacing it with a space keeps the value and makes the result a single line.
    let line = params.trim().replace(['\n', '\r'], " ");
    if line.is_empty() {
        println!("{{}}");
    } else {
        println!("{line}");
    }
}
