//! What the `utils_*` catalog actions share: JavaScript's own conversions of JSON values, so that
//! each utility answers exactly what OpenWhisk's Node.js original (`packages/utils/*.js` of
//! `apache/openwhisk-catalog`) answers for the same parameters.
//!
//! Not an action: cargo builds only `src/bin/*.rs` and `src/bin/*/main.rs`; the utilities include
//! this file with `#[path]`.

use ow_action::serde_json::Value;

/// JavaScript truthiness (`x || default`): `null`, `false`, `0`, `""` are falsy; everything else,
/// `[]` and `{}` included, is truthy. A missing parameter is falsy too.
pub fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// `String(value)`: numbers as JavaScript prints them, arrays joined with `,` (their `null`s
/// empty), objects `[object Object]`.
pub fn to_string(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Array(items) => join(items, ","),
        Value::Object(_) => "[object Object]".to_string(),
    }
}

/// `Array.prototype.join(separator)`: each element as [`to_string`], `null` as the empty string.
pub fn join(items: &[Value], separator: &str) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|item| match item {
            Value::Null => String::new(),
            other => to_string(other),
        })
        .collect();
    parts.join(separator)
}

/// `Number.prototype.toString()`: the shortest digits that read back as `x`, in plain notation
/// from 1e-6 up to 1e21 and in exponent notation (`1e+21`, `1.5e-7`) outside.
pub fn number(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    if x.is_infinite() {
        return format!("{sign}Infinity");
    }
    // Rust's `{:e}` prints the shortest round-trip digits, as JavaScript does: `d.ddde<exp>`.
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    // The decimal point sits after `n` digits (ECMA-262 Number::toString's `n`).
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e_sign = if e >= 0 { "+" } else { "-" };
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        format!("{first}{point}{rest}e{e_sign}{}", e.abs())
    };
    format!("{sign}{body}")
}

/// `Number(value)`: what JavaScript's arithmetic sees in a parameter (`NaN` when nothing).
pub fn to_number(value: &Value) -> f64 {
    match value {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => string_to_number(s),
        Value::Array(items) => string_to_number(&join(items, ",")),
        Value::Object(_) => f64::NAN,
    }
}

/// `Number(text)` for decimal text: blank is 0, `Infinity` is infinite, anything else not a
/// decimal number is `NaN` (Rust's own spellings such as `inf` or `nan` included).
fn string_to_number(text: &str) -> f64 {
    let text = text.trim();
    if text.is_empty() {
        return 0.0;
    }
    let unsigned = text.trim_start_matches(['+', '-']);
    if unsigned == "Infinity" {
        return if text.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    if unsigned
        .chars()
        .any(|c| c.is_alphabetic() && c != 'e' && c != 'E')
    {
        return f64::NAN;
    }
    text.parse().unwrap_or(f64::NAN)
}

/// The `{"error": ...}` text the Node.js runtime answers when the action throws a `TypeError`.
pub fn type_error(message: &str) -> String {
    format!("An error has occurred: TypeError: {message}")
}
