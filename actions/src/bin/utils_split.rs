//! `utils_split`: the catalog's `/whisk.system/utils/split` ("Split a string into an array").
//!
//! Params: `payload` (required; a string, or anything JavaScript's `toString` prints), `separator`
//! (the text to split at; missing or falsy splits lines, at `\n` or `\r\n`).
//! Result: `{"lines": <the pieces>, "payload": payload}`, as `split.js`. A JSON parameter cannot be
//! a regular expression, so a given separator is always split at literally. A missing or `null`
//! `payload` is the error `split.js` throws: `{"error": "An error has occurred: TypeError: Cannot
//! read properties of undefined (reading 'toString')"}` (`null` for `null`).
//! Logs: `split: returning <result as JSON>`.

#[path = "utils/js.rs"]
#[allow(dead_code, reason = "each utility uses part of the shared conversions")]
mod js;

use ow_action::serde_json::{Value, json};

/// `text.split(/\r?\n/)`: at each `\n`, dropping one `\r` right before it.
fn split_lines(text: &str) -> Vec<String> {
    let mut pieces: Vec<String> = text.split('\n').map(str::to_string).collect();
    let last = pieces.len() - 1;
    for piece in &mut pieces[..last] {
        if piece.ends_with('\r') {
            piece.pop();
        }
    }
    pieces
}

fn main() {
    ow_action::run(|params: Value| {
        let payload = match params.get("payload") {
            None => {
                return Err(js::type_error(
                    "Cannot read properties of undefined (reading 'toString')",
                ));
            }
            Some(Value::Null) => {
                return Err(js::type_error(
                    "Cannot read properties of null (reading 'toString')",
                ));
            }
            Some(payload) => payload.clone(),
        };
        let text = js::to_string(&payload);
        let lines: Vec<String> = match params.get("separator") {
            separator if !js::truthy(separator) => split_lines(&text),
            separator => {
                let separator = separator.map(js::to_string).unwrap_or_default();
                if separator.is_empty() {
                    // `"abc".split("")`: one piece per character ([] for "").
                    text.chars().map(String::from).collect()
                } else {
                    text.split(separator.as_str()).map(str::to_string).collect()
                }
            }
        };
        let result = json!({"lines": lines, "payload": payload});
        ow_action::log!("split: returning {result}");
        Ok(result)
    });
}
