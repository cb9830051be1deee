//! `utils_head`: the catalog's `/whisk.system/utils/head` ("Extract prefix of an array").
//!
//! Params: `lines` (an array; missing or falsy is `[]`), `num` (the prefix's length; missing or
//! falsy is 1).
//! Result: `{"lines": lines.slice(0, num), "num": num}`, as `head.js`: `num` is returned as given,
//! read as JavaScript's `slice` reads it (`2.7` is 2, `"2"` is 2, a negative `num` counts from the
//! end); a string `lines` is sliced as a string (in UTF-16 code units). `lines` of another truthy
//! type is the error `head.js` throws: `{"error": "An error has occurred: TypeError: lines.slice is
//! not a function"}`.
//! Logs: `head get first <num> lines of <lines>: <prefix>`.

#[path = "utils/js.rs"]
#[allow(dead_code, reason = "each utility uses part of the shared conversions")]
mod js;

use ow_action::serde_json::{Value, json};

/// Where `slice(0, end)` stops in a sequence of `len` items (ECMA-262 `Array.prototype.slice`).
fn slice_end(end: f64, len: usize) -> usize {
    let end = if end.is_nan() { 0.0 } else { end.trunc() };
    if end < 0.0 {
        let from_end = (len as f64 + end).max(0.0);
        from_end as usize
    } else {
        end.min(len as f64) as usize
    }
}

fn main() {
    ow_action::run(|params: Value| {
        let num = match params.get("num") {
            value if js::truthy(value) => value.cloned().unwrap_or(Value::Null),
            _ => json!(1),
        };
        let end = js::to_number(&num);
        let (lines, head) = match params.get("lines") {
            Some(Value::Array(lines)) => {
                let head = lines[..slice_end(end, lines.len())].to_vec();
                (js::join(lines, ","), Value::Array(head))
            }
            Some(Value::String(text)) => {
                let units: Vec<u16> = text.encode_utf16().collect();
                let head = String::from_utf16_lossy(&units[..slice_end(end, units.len())]);
                (text.clone(), Value::String(head))
            }
            value if !js::truthy(value) => (String::new(), json!([])),
            _ => return Err(js::type_error("lines.slice is not a function")),
        };
        ow_action::log!(
            "head get first {} lines of {lines}: {}",
            js::to_string(&num),
            js::to_string(&head)
        );
        Ok(json!({"lines": head, "num": num}))
    });
}
