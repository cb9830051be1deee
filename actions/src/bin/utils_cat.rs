//! `utils_cat`: the catalog's `/whisk.system/utils/cat` ("Concatenates input into a string").
//!
//! Params: `lines` (an array of strings or numbers; missing or falsy is `[]`).
//! Result: `{"lines": lines, "payload": <lines joined with "\n">}`, as `cat.js`, elements printed
//! as JavaScript prints them (`4`, `1.5`, `true`, `null` as empty). `lines` of another truthy type
//! is the error `cat.js` throws: `{"error": "An error has occurred: TypeError: lines.join is not a
//! function"}`.
//! Logs: `cat: returning <result as JSON>`.

#[path = "utils/js.rs"]
#[allow(dead_code, reason = "each utility uses part of the shared conversions")]
mod js;

use ow_action::serde_json::{Value, json};

fn main() {
    ow_action::run(|params: Value| {
        let lines = match params.get("lines") {
            Some(Value::Array(lines)) => lines.clone(),
            value if !js::truthy(value) => Vec::new(),
            _ => return Err(js::type_error("lines.join is not a function")),
        };
        let payload = js::join(&lines, "\n");
        let result = json!({"lines": lines, "payload": payload});
        ow_action::log!("cat: returning {result}");
        Ok(result)
    });
}
