//! `utils_sort`: the catalog's `/whisk.system/utils/sort` ("Sorts an array").
//!
//! Params: `lines` (an array; missing or falsy is `[]`).
//! Result: `{"lines": <sorted>, "length": n}`, sorted as `sort.js`'s `lines.sort()` sorts: stably,
//! by each element's JavaScript string compared in UTF-16 code units, so `[10, 9, 1]` becomes
//! `[1, 10, 9]`; the elements keep their types. `lines` of another truthy type is the error
//! `sort.js` throws: `{"error": "An error has occurred: TypeError: lines.sort is not a function"}`.
//! Logs: `sort input msg: <params as JSON>`, `sort before: <lines>`, `sort after: <lines>`.

#[path = "utils/js.rs"]
#[allow(dead_code, reason = "each utility uses part of the shared conversions")]
mod js;

use ow_action::serde_json::{Value, json};

fn main() {
    ow_action::run(|params: Value| {
        let mut lines = match params.get("lines") {
            Some(Value::Array(lines)) => lines.clone(),
            value if !js::truthy(value) => Vec::new(),
            _ => return Err(js::type_error("lines.sort is not a function")),
        };
        ow_action::log!("sort input msg: {params}");
        ow_action::log!("sort before: {}", js::join(&lines, ","));
        // `sort_by_cached_key` is stable, as `Array.prototype.sort` is since ES2019.
        lines.sort_by_cached_key(|line| js::to_string(line).encode_utf16().collect::<Vec<u16>>());
        ow_action::log!("sort after: {}", js::join(&lines, ","));
        let length = lines.len();
        Ok(json!({"lines": lines, "length": length}))
    });
}
