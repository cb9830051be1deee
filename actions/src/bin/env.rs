//! `env`: returns its environment, for checking `__OW_` variables and init parameters.
//!
//! Params: ignored.
//! Result: an object with one string member per environment variable (names and values that are
//! not UTF-8 are converted lossily).

use ow_action::serde_json::{Map, Value};

fn main() {
    ow_action::run(|_params: Value| -> Result<Value, Value> {
        let vars: Map<String, Value> = std::env::vars_os()
            .map(|(name, value)| {
                (
                    name.to_string_lossy().into_owned(),
                    Value::String(value.to_string_lossy().into_owned()),
                )
            })
            .collect();
        Ok(Value::Object(vars))
    });
}
