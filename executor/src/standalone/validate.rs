//! Request validation with OpenWhisk's ranges and error texts: entity names, namespaces, activation
//! ids, action limits, entity sizes and the list query parameters.

use factory::Limits;
use factory::limits::{
    DEFAULT_CONCURRENCY, DEFAULT_LOGS_MB, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS,
};
use hyper::StatusCode;
use serde_json::{Map, Value};

use super::http::{ApiError, messages};
use crate::limits::{LimitKind, LimitRanges};
use crate::store::{DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT};

/// Longest entity name or namespace (`EntityName.ENTITY_NAME_MAX_LENGTH`).
pub const MAX_NAME_LEN: usize = 256;
/// Largest action code (`whisk.exec-size-limit = 48 m`): bounds what one PUT stores.
pub const MAX_EXEC_BYTES: u64 = 48 * 1024 * 1024;
/// Largest parameters or annotations of an action (`whisk.parameter-size-limit = 1 m`).
pub const MAX_PARAMETER_BYTES: u64 = 1024 * 1024;
/// Largest invoke payload (`whisk.activation.payload.max = 1 m`), also the web action body limit.
pub const MAX_PAYLOAD_BYTES: u64 = crate::config::DEFAULT_PAYLOAD_MAX.as_bytes();

/// Checks an entity name against OpenWhisk's pattern
/// `\A([\w]|[\w][\w@ .&-]{0,254}[\w@.&-])\z` (ASCII word characters).
pub fn is_entity_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let middle = |b: u8| word(b) || matches!(b, b'@' | b' ' | b'.' | b'&' | b'-');
    let last = |b: u8| word(b) || matches!(b, b'@' | b'.' | b'&' | b'-');
    match bytes {
        [] => false,
        [only] => word(*only),
        [first, inner @ .., end] => {
            bytes.len() <= MAX_NAME_LEN
                && word(*first)
                && inner.iter().all(|b| middle(*b))
                && last(*end)
        }
    }
}

/// An entity name from a path segment; 400 with `entityNameTooLong`/`entityNameIllegal` otherwise.
pub fn entity_name(segment: &str) -> Result<String, ApiError> {
    if is_entity_name(segment) {
        return Ok(segment.to_string());
    }
    if segment.chars().count() > MAX_NAME_LEN {
        // (sic) OpenWhisk's field name for path segments.
        return Err(ApiError::bad_request(format!(
            "Name segement longer than allowed: {} > {MAX_NAME_LEN}.",
            segment.chars().count()
        )));
    }
    Err(ApiError::bad_request(messages::ENTITY_NAME_ILLEGAL))
}

/// The namespace a path segment names: `_` is the caller's own.
pub fn namespace(segment: &str, own: &str) -> Result<String, ApiError> {
    if segment == "_" {
        return Ok(own.to_string());
    }
    if is_entity_name(segment) {
        return Ok(segment.to_string());
    }
    if segment.chars().count() > MAX_NAME_LEN {
        return Err(ApiError::bad_request(format!(
            "Namespace longer than allowed: {} > {MAX_NAME_LEN}.",
            segment.chars().count()
        )));
    }
    Err(ApiError::bad_request(messages::NAMESPACE_ILLEGAL))
}

/// An activation id from a path segment: exactly 32 hex characters (`ActivationId.parse`).
pub fn activation_id(segment: &str) -> Result<String, ApiError> {
    let length = segment.chars().count();
    if length != 32 {
        return Err(ApiError::bad_request(format!(
            "Activation id length is {length} but must be 32."
        )));
    }
    if !segment.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(messages::ACTIVATION_ID_ILLEGAL));
    }
    Ok(segment.to_ascii_lowercase())
}

/// The limits of a PUT: each field optional (`ActionLimitsOption`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsPut {
    /// Milliseconds.
    pub timeout: Option<u64>,
    /// MB.
    pub memory: Option<u32>,
    /// MB.
    pub logs: Option<u32>,
    /// Activations per container.
    pub concurrency: Option<u32>,
}

impl LimitsPut {
    /// Reads and range-checks a `limits` object against `ranges` (the system ranges: a PUT is not
    /// checked against the caller's namespace limits, as in the controller): malformed values are a
    /// 400 "request content was malformed", values out of range a 400 with OpenWhisk's threshold
    /// messages ([`LimitRanges::within`], the invoker's), checked in the controller's order
    /// (memory, timeout, logs, concurrency).
    pub fn parse(value: &Value, ranges: &LimitRanges) -> Result<Self, ApiError> {
        let Value::Object(map) = value else {
            return Err(ApiError::bad_request(messages::malformed_content(
                "no valid json object passed",
            )));
        };
        let timeout = whole(map, "timeout", "time limit")?;
        let memory = whole(map, "memory", "memory limit")?;
        let logs = whole(map, "logs", "log limit")?;
        let concurrency = whole(map, "concurrency", "intra concurrency limit")?;
        for (kind, value) in [
            (LimitKind::Memory, memory),
            (LimitKind::Timeout, timeout),
            (LimitKind::Logs, logs),
            (LimitKind::Concurrency, concurrency),
        ] {
            if let Some(value) = value {
                let (min, max) = ranges.range(kind);
                LimitRanges::within(kind, value, min, max).map_err(ApiError::bad_request)?;
            }
        }
        // In range, so not negative; a configured range wider than the field saturates.
        let narrow = |value: Option<i64>| value.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        Ok(Self {
            timeout: timeout.map(|v| u64::try_from(v).unwrap_or(0)),
            memory: narrow(memory),
            logs: narrow(logs),
            concurrency: narrow(concurrency),
        })
    }

    /// The limits of a new action: given values over the system defaults.
    pub fn create(self) -> Limits {
        Limits {
            timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT_MS),
            memory: self.memory.unwrap_or(DEFAULT_MEMORY_MB),
            logs: self.logs.unwrap_or(DEFAULT_LOGS_MB),
            concurrency: self.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        }
    }

    /// The limits of an updated action: given values over the old ones.
    pub fn update(self, old: Limits) -> Limits {
        Limits {
            timeout: self.timeout.unwrap_or(old.timeout),
            memory: self.memory.unwrap_or(old.memory),
            logs: self.logs.unwrap_or(old.logs),
            concurrency: self.concurrency.unwrap_or(old.concurrency),
        }
    }
}

/// A whole-number limit field, or `None` when absent.
fn whole(map: &Map<String, Value>, key: &str, what: &str) -> Result<Option<i64>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(value) = number.as_i64() {
                Ok(Some(value))
            } else if let Some(value) = number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
            {
                Ok(Some(value as i64))
            } else if number.as_f64().is_some_and(|f| f.fract() != 0.0) {
                Err(ApiError::bad_request(messages::malformed_content(
                    &format!("{what} must be whole number"),
                )))
            } else {
                Err(ApiError::bad_request(messages::malformed_content(
                    &format!("{what} malformed"),
                )))
            }
        }
        Some(_) => Err(ApiError::bad_request(messages::malformed_content(
            &format!("{what} malformed"),
        ))),
    }
}

/// The size OpenWhisk counts for parameters or annotations (`Parameters.size`): key bytes plus the
/// compact JSON of each value.
pub fn parameters_size(pairs: &[(String, Value)]) -> u64 {
    pairs
        .iter()
        .map(|(key, value)| (key.len() + value.to_string().len()) as u64)
        .sum()
}

/// Checks a parameter-like field against the parameter size limit (413 `entityTooBig`).
pub fn check_parameters_size(field: &str, pairs: &[(String, Value)]) -> Result<(), ApiError> {
    let size = parameters_size(pairs);
    if size > MAX_PARAMETER_BYTES {
        return Err(ApiError::too_big(field, size, MAX_PARAMETER_BYTES));
    }
    Ok(())
}

/// Checks an invoke payload against the payload limit (413 `Request larger than allowed`).
pub fn check_payload_size(length: u64) -> Result<(), ApiError> {
    if length > MAX_PAYLOAD_BYTES {
        return Err(ApiError::too_big("Request", length, MAX_PAYLOAD_BYTES));
    }
    Ok(())
}

/// The query of a list request, validated (`RestApiCommons.ListLimit`/`ListSkip`, activation filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Entries to skip.
    pub skip: usize,
    /// Most entries to return.
    pub limit: usize,
    /// Only count (`count=true`).
    pub count: bool,
    /// Full documents instead of summaries (activations).
    pub docs: bool,
    /// Only activations of this action (`name` or `package/name`).
    pub name: Option<String>,
    /// Only activations started at or after this epoch millisecond.
    pub since: Option<u64>,
    /// Only activations started at or before this epoch millisecond.
    pub upto: Option<u64>,
}

impl ListQuery {
    /// Reads the list parameters of `collection` (`actions`, `activations`) from a query.
    pub fn parse(query: &[(String, String)], collection: &str) -> Result<Self, ApiError> {
        let mut list = ListQuery {
            limit: DEFAULT_LIST_LIMIT,
            ..Default::default()
        };
        for (key, value) in query {
            match key.as_str() {
                "limit" => {
                    list.limit = match value.trim().parse::<i64>() {
                        Ok(0) => MAX_LIST_LIMIT,
                        Ok(n) if n > 0 && n <= MAX_LIST_LIMIT as i64 => n as usize,
                        Ok(n) => {
                            return Err(malformed_query(
                                key,
                                &format!(
                                    "The value '{n}' is not in the range of 0 to {MAX_LIST_LIMIT} for {collection}."
                                ),
                            ));
                        }
                        Err(_) => {
                            return Err(malformed_query(
                                key,
                                &format!("The value '{value}' is not an integer for {collection}."),
                            ));
                        }
                    }
                }
                "skip" => {
                    list.skip = match value.trim().parse::<i64>() {
                        Ok(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                        Ok(n) => {
                            return Err(malformed_query(
                                key,
                                &format!(
                                    "The value '{n}' is not greater than or equal to 0 for {collection}."
                                ),
                            ));
                        }
                        Err(_) => {
                            return Err(malformed_query(
                                key,
                                &format!("The value '{value}' is not an integer for {collection}."),
                            ));
                        }
                    }
                }
                "count" => list.count = boolean(key, value)?,
                "docs" if collection == "activations" => list.docs = boolean(key, value)?,
                "name" if collection == "activations" => {
                    let trimmed = value.trim();
                    if trimmed.is_empty() {
                        list.name = None;
                    } else {
                        let segments: Vec<&str> = trimmed.trim_matches('/').split('/').collect();
                        if segments.len() > 2 || !segments.iter().all(|s| is_entity_name(s)) {
                            return Err(malformed_query(
                                key,
                                &format!(
                                    "Parameter may be a 'simple' name or 'package-name/simple' name: {value}"
                                ),
                            ));
                        }
                        list.name = Some(segments.join("/"));
                    }
                }
                "since" | "upto" if collection == "activations" => {
                    let millis = value.trim().parse::<u64>().map_err(|_| {
                        malformed_query(
                            key,
                            &format!("Parameter is not a valid value for epoch seconds: {value}"),
                        )
                    })?;
                    if key == "since" {
                        list.since = Some(millis);
                    } else {
                        list.upto = Some(millis);
                    }
                }
                _ => {}
            }
        }
        if list.count && list.docs {
            return Err(ApiError::bad_request(messages::DOCS_NOT_ALLOWED_WITH_COUNT));
        }
        Ok(list)
    }
}

fn malformed_query(name: &str, reason: &str) -> ApiError {
    ApiError::bad_request(messages::malformed_query(name, reason))
}

/// A boolean query parameter as Pekko reads it.
pub fn boolean(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            messages::malformed_query(name, &format!("'{value}' is not a valid Boolean value")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_entity_names_follow_openwhisks_pattern() {
        for good in [
            "a",
            "hello",
            "hello world",
            "a.b-c&d@e",
            "_x",
            &"a".repeat(256),
        ] {
            assert!(is_entity_name(good), "{good}");
        }
        for bad in ["", " a", "a ", "-a", "a/b", "a%", "é", &"a".repeat(257)] {
            assert!(!is_entity_name(bad), "{bad}");
        }
        assert_eq!(
            entity_name(&"a".repeat(300)).unwrap_err().message,
            "Name segement longer than allowed: 300 > 256."
        );
        assert_eq!(namespace("_", "guest").unwrap(), "guest");
    }

    #[test]
    fn test_activation_ids_are_32_hex() {
        assert_eq!(
            activation_id("abc").unwrap_err().message,
            "Activation id length is 3 but must be 32."
        );
        assert_eq!(
            activation_id(&"g".repeat(32)).unwrap_err().message,
            messages::ACTIVATION_ID_ILLEGAL
        );
        assert!(activation_id(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn test_limits_obeyed_and_violated() {
        let ranges = LimitRanges::default();
        let ok = LimitsPut::parse(
            &json!({"timeout": 100, "memory": 512, "logs": 0, "concurrency": 1}),
            &ranges,
        )
        .unwrap();
        assert_eq!(
            ok.create(),
            Limits {
                timeout: 100,
                memory: 512,
                logs: 0,
                concurrency: 1
            }
        );
        let ok = LimitsPut::parse(
            &json!({"timeout": 300000, "memory": 128, "logs": 10}),
            &ranges,
        )
        .unwrap();
        assert_eq!(ok.create().timeout, 300_000);
        let cases = [
            (
                json!({"memory": 513}),
                "memory 513 MB exceeds allowed threshold of 512 MB",
            ),
            (
                json!({"memory": 127}),
                "memory 127 MB below allowed threshold of 128 MB",
            ),
            (
                json!({"timeout": 99}),
                "duration 99 milliseconds below allowed threshold of 100 milliseconds",
            ),
            (
                json!({"timeout": 300001}),
                "duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds",
            ),
            (
                json!({"logs": 11}),
                "log 11 MB exceeds allowed threshold of 10 MB",
            ),
            (
                json!({"concurrency": 2}),
                "concurrency 2 exceeds allowed threshold of 1",
            ),
            (
                json!({"concurrency": 0}),
                "concurrency 0 below allowed threshold of 1",
            ),
            (
                json!({"logs": -1}),
                "log -1 MB below allowed threshold of 0 MB",
            ),
            (
                json!({"memory": 1.5}),
                "The request content was malformed:\nmemory limit must be whole number",
            ),
        ];
        for (limits, message) in cases {
            let error = LimitsPut::parse(&limits, &ranges).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert_eq!(error.message, message);
        }
    }

    #[test]
    fn test_list_query_ranges() {
        let q = |pairs: &[(&str, &str)]| {
            let owned: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            ListQuery::parse(&owned, "activations")
        };
        assert_eq!(q(&[]).unwrap().limit, 30);
        assert_eq!(q(&[("limit", "0")]).unwrap().limit, 200);
        assert_eq!(
            q(&[("limit", "201")]).unwrap_err().message,
            "The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for activations."
        );
        assert_eq!(
            q(&[("skip", "-1")]).unwrap_err().message,
            "The query parameter 'skip' was malformed:\nThe value '-1' is not greater than or equal to 0 for activations."
        );
        assert_eq!(
            q(&[("name", "pkg/hello")]).unwrap().name.as_deref(),
            Some("pkg/hello")
        );
        assert!(q(&[("name", "a/b/c")]).is_err());
        assert_eq!(
            q(&[("since", "12"), ("upto", "40")]).unwrap().upto,
            Some(40)
        );
        assert_eq!(
            q(&[("since", "x")]).unwrap_err().message,
            "The query parameter 'since' was malformed:\nParameter is not a valid value for epoch seconds: x"
        );
        assert_eq!(
            q(&[("count", "true"), ("docs", "true")])
                .unwrap_err()
                .message,
            messages::DOCS_NOT_ALLOWED_WITH_COUNT
        );
    }

    #[test]
    fn test_sizes_obeyed_and_violated() {
        let small = vec![("k".to_string(), json!("v"))];
        assert_eq!(parameters_size(&small), 4);
        assert!(check_parameters_size("parameters", &small).is_ok());
        let big = vec![("k".to_string(), json!("v".repeat(1024 * 1024)))];
        let error = check_parameters_size("parameters", &big).unwrap_err();
        assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            error.message,
            "parameters larger than allowed: 1048579 > 1048576 bytes."
        );
        assert!(check_payload_size(1024 * 1024).is_ok());
        assert_eq!(
            check_payload_size(1024 * 1024 + 1).unwrap_err().message,
            "Request larger than allowed: 1048577 > 1048576 bytes."
        );
    }
}
