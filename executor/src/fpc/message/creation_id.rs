//! The id of one container-creation job (`CreationId.scala`): made by the scheduler, echoed in the
//! ack, kept across reschedules.
//!
//! OpenWhisk reads it from a string or from a JSON number's decimal text, and requires exactly 32
//! lowercase hex characters either way. A 32-digit number does not fit serde_json's numbers (it
//! would become an inexact float), so [`quote_numeric_creation_id`] turns a numeric top-level
//! `creationId` into a string in the message text before it is parsed.

use std::borrow::Cow;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Length of a creation id: a UUID's 32 hex digits without dashes.
const CREATION_ID_LEN: usize = 32;

/// The key of the creation id in creation messages and acks.
pub(super) const CREATION_ID_KEY: &str = "creationId";

/// A creation job's id: exactly 32 characters of `[0-9a-f]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CreationId(String);

impl CreationId {
    /// A fresh random id (UUID v4 without dashes), as the scheduler makes them.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// An id from text, checked as OpenWhisk does: exactly 32 characters of `[0-9a-f]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() == CREATION_ID_LEN
            && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(text.to_string()))
        } else {
            Err(format!(
                "invalid creation id {:?}: expected {CREATION_ID_LEN} characters of [0-9a-f]",
                text.chars().take(64).collect::<String>()
            ))
        }
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CreationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CreationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => CreationId::parse(&text).map_err(D::Error::custom),
            // Only integers serde_json holds exactly; longer ones are quoted before parsing.
            Value::Number(number) if number.is_u64() => {
                CreationId::parse(&number.to_string()).map_err(D::Error::custom)
            }
            other => Err(D::Error::custom(format!(
                "creation id must be a string or a whole number, not {other}"
            ))),
        }
    }
}

/// The message text with a top-level `"creationId": <number>` rewritten as
/// `"creationId": "<number>"`, so the number's exact digits reach [`CreationId::parse`]. Anything
/// else (no such key, a string value, text that is not a JSON object) comes back unchanged, for the
/// JSON parser to accept or reject.
pub(super) fn quote_numeric_creation_id(text: &str) -> Cow<'_, str> {
    match numeric_creation_id_span(text.as_bytes()) {
        Some((start, end)) => {
            let mut quoted = String::with_capacity(text.len() + 2);
            // Both ends are at ASCII bytes, so on character boundaries.
            quoted.push_str(&text[..start]);
            quoted.push('"');
            quoted.push_str(&text[start..end]);
            quoted.push('"');
            quoted.push_str(&text[end..]);
            Cow::Owned(quoted)
        }
        None => Cow::Borrowed(text),
    }
}

/// Where the number token of a top-level `creationId` key is, if the text is an object with one.
/// Walks the top-level members only, skipping nested values; gives up (`None`) on anything
/// unexpected, since the JSON parser reports malformed text better.
fn numeric_creation_id_span(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    loop {
        at = skip_whitespace(bytes, at);
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(bytes, at)?;
        let key = bytes.get(at + 1..key_end - 1)?;
        at = skip_whitespace(bytes, key_end);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at = skip_whitespace(bytes, at + 1);
        let value_end = value_end(bytes, at)?;
        if key == CREATION_ID_KEY.as_bytes() && is_number_token(bytes.get(at..value_end)?) {
            return Some((at, value_end));
        }
        at = skip_whitespace(bytes, value_end);
        match bytes.get(at) {
            Some(b',') => at += 1,
            _ => return None,
        }
    }
}

/// Whether a literal token is made of number characters only (so quoting it cannot turn some other
/// malformed literal into a valid string).
fn is_number_token(token: &[u8]) -> bool {
    matches!(token.first(), Some(b'-' | b'0'..=b'9'))
        && token
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The index just past the closing quote of the string opening at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut at = start + 1;
    loop {
        match bytes.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
}

/// The index just past the value starting at `start`: a string, an object or array (nesting
/// counted, strings skipped), or a literal or number (up to the next delimiter).
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'"' => string_end(bytes, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = start;
            loop {
                match bytes.get(at)? {
                    b'"' => {
                        at = string_end(bytes, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        _ => {
            let mut at = start;
            while matches!(bytes.get(at), Some(b) if !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                at += 1;
            }
            (at > start).then_some(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_creation_id_accepts_only_32_lowercase_hex() {
        let id = CreationId::parse("9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2c").unwrap();
        assert_eq!(id.as_str(), "9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2c");
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            json!("9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2c")
        );
        for bad in [
            "",
            "9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2",
            "9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2c0",
            "9F1C7A2B3D4E4F5A8B6C7D8E9F0A1B2C",
            "9f1c7a2b-3d4e-4f5a-8b6c7d8e9f0a1b",
            "9f1c7a2b3d4e4f5a8b6c7d8e9f0a1bé",
        ] {
            assert!(CreationId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(serde_json::from_value::<CreationId>(json!(12345)).is_err());
        assert!(serde_json::from_value::<CreationId>(json!(1.5)).is_err());
        assert!(serde_json::from_value::<CreationId>(json!(null)).is_err());
        assert!(serde_json::from_value::<CreationId>(json!(["a"])).is_err());
    }

    #[test]
    fn test_generated_ids_are_valid_and_distinct() {
        let a = CreationId::generate();
        let b = CreationId::generate();
        assert_ne!(a, b);
        assert_eq!(CreationId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn test_numeric_creation_id_is_quoted_exactly() {
        let text = r#"{"a":{"creationId":1},"s":"x\"}","creationId" : 12345678901234567890123456789012 ,"z":[1,{"b":2}]}"#;
        assert_eq!(
            quote_numeric_creation_id(text),
            r#"{"a":{"creationId":1},"s":"x\"}","creationId" : "12345678901234567890123456789012" ,"z":[1,{"b":2}]}"#
        );
        let last = r#"{"creationId":-7}"#;
        assert_eq!(quote_numeric_creation_id(last), r#"{"creationId":"-7"}"#);
    }

    #[test]
    fn test_other_texts_are_left_alone() {
        for text in [
            r#"{"creationId":"9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2c"}"#,
            r#"{"nested":{"creationId":12}}"#,
            r#"{"creationId""#,
            r#"{"creationId":"#,
            r#"{"a":"unterminated"#,
            r#"{"a":[[[}"#,
            r#"{"a":1 "creationId":2}"#,
            r#"{"creationId":9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2c}"#,
            r#"{"creationId":true}"#,
            "[1,2]",
            "",
            "{",
            "\"\\",
        ] {
            assert_eq!(quote_numeric_creation_id(text), text, "{text:?}");
        }
    }
}
