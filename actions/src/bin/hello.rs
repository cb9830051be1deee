//! `hello`: greets someone.
//!
//! Params: `name` (string, default `"stranger"`).
//! Result: `{"greeting": "Hello, <name>!"}`; an application error
//! `{"error": "The parameter \"name\" must be a string."}` when `name` is not a string.
//! Logs: one stdout line, `greeting <name>`.

use ow_action::serde_json::{Value, json};

fn main() {
    ow_action::run(|params: Value| {
        let name = match params.get("name") {
            None => "stranger",
            Some(Value::String(name)) => name.as_str(),
            Some(_) => return Err("The parameter \"name\" must be a string."),
        };
        ow_action::log!("greeting {name}");
        Ok(json!({ "greeting": format!("Hello, {name}!") }))
    });
}
