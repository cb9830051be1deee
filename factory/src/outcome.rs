//! What one activation produced: the status, the result and everything else an OpenWhisk activation
//! record needs.
//!
//! Both factories return the same [`Outcome`]. Mapping a runtime failure to OpenWhisk's status code and
//! message happens inside the factory that saw it, once, with the texts in [`messages`]. What the
//! factory saw go wrong with the container itself (it refused the activation, or the activation's logs
//! could not be read) travels as a typed [`ContainerFault`], never as a text the caller must match.

use std::time::{Duration, SystemTime};

use serde_json::Value;

/// OpenWhisk's activation status codes (`response.statusCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// 0: the action returned a result.
    Success,
    /// 1: the action returned `{"error": ...}`, or the invoker refused it for a reason that is the
    /// user's (missing action, limits, oversize result).
    ApplicationError,
    /// 2: the action misbehaved (bad output, crash, timeout, memory).
    DeveloperError,
    /// 3: the platform failed; the only status that counts as a system error for the controller.
    WhiskError,
}

impl Status {
    /// The numeric `statusCode`.
    pub fn code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::ApplicationError => 1,
            Status::DeveloperError => 2,
            Status::WhiskError => 3,
        }
    }

    /// The status for a numeric `statusCode`, if it is one of 0..=3.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Status::Success,
            1 => Status::ApplicationError,
            2 => Status::DeveloperError,
            3 => Status::WhiskError,
            _ => return None,
        })
    }

    /// The REST API's `status` text (`toExtendedJson`).
    pub fn as_text(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::ApplicationError => "application error",
            Status::DeveloperError => "action developer error",
            Status::WhiskError => "whisk internal error",
        }
    }

    /// Whether a container that produced this status may be reused: OpenWhisk keeps containers warm
    /// after success and application errors and destroys them after developer and whisk errors.
    pub fn keeps_container(self) -> bool {
        matches!(self, Status::Success | Status::ApplicationError)
    }
}

/// The error texts OpenWhisk uses (`common/.../http/ErrorResponse.scala` `Messages`), so that records
/// written by this invoker read exactly like the Scala invoker's.
pub mod messages {
    /// A container could not be created.
    pub const RESOURCE_ERROR: &str = "Failed to provision resources to run the action.";
    /// The action process died during `/run`.
    pub const ABNORMAL_RUN: &str =
        "The action did not produce a valid response and exited unexpectedly.";
    /// The action process died during `/init`.
    pub const ABNORMAL_INIT: &str = "The action did not initialize and exited unexpectedly.";
    /// The action ran out of memory.
    pub const MEMORY_EXHAUSTED: &str = "The action exhausted its memory and was aborted.";
    /// The action's last output line was not a JSON object or array (docker skeleton and wasm).
    pub const NOT_A_DICTIONARY_OR_ARRAY: &str = "The action did not return a dictionary or array.";
    /// Not an OpenWhisk text: the result of an outcome that must not be recorded because the
    /// container could not take the activation (OpenWhisk's `ContainerHealthError`), seen only if
    /// the caller gives up rescheduling. The signal is [`super::ContainerFault::Refused`], not
    /// this text.
    pub const RESCHEDULE: &str =
        "The action container is not healthy; the activation must be rescheduled.";
    /// Appended to the logs when they were cut at the log limit.
    pub fn truncated_logs(limit_bytes: u64) -> String {
        format!(
            "Logs were truncated because the total bytes size exceeds the limit of {limit_bytes} bytes."
        )
    }
    /// The run exceeded the action's time limit.
    pub fn timed_out(timeout_ms: u64) -> String {
        format!("The action exceeded its time limits of {timeout_ms} milliseconds.")
    }
    /// The init exceeded the action's time limit.
    pub fn init_timed_out(timeout_ms: u64) -> String {
        format!(
            "The action exceeded its time limits of {timeout_ms} milliseconds during initialization."
        )
    }
    /// A response body that is not a JSON object or array.
    pub fn invalid_run_response(body: &str) -> String {
        format!("The action did not produce a valid JSON or JSON Array response: {body}")
    }
    /// A non-200 `/init` whose body carries no `error`.
    pub fn init_failed(body: &str) -> String {
        if body.is_empty() {
            "The action failed during initialization".to_string()
        } else {
            format!("The action failed during initialization: {body}")
        }
    }
    /// A result larger than the payload limit; `truncated` is its first `max` bytes.
    pub fn truncated_response(length: usize, max: usize, truncated: &str) -> String {
        format!(
            "The action produced a response that exceeded the allowed length: {length} > {max} bytes. The truncated response was: {truncated}"
        )
    }
    /// A wasm module that failed validation or compilation.
    pub fn invalid_module(reason: &str) -> String {
        format!("The wasm module is invalid: {reason}.")
    }
    /// A wasm action that ran out of fuel.
    pub fn fuel_exhausted(fuel: u64) -> String {
        format!("The action exhausted its CPU budget of {fuel} fuel units.")
    }
}

/// Something the factory saw go wrong with the container rather than with the activation, which the
/// caller must act on whatever the status says. Set by the factory where the condition arises.
///
/// One optional field rather than two flags: the two are exclusive (a refused activation never ran,
/// so it has no logs to lose), both mean "do not reuse this container", and a match over the variants
/// makes the caller handle each. Typed rather than read from the result text or the last log line, so
/// that the records keep OpenWhisk's exact texts while no caller depends on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerFault {
    /// The container could not take the activation at all: its runtime answered 503 (shutting down),
    /// or it was unreachable right after a resume (OpenWhisk's `ContainerHealthError`). The outcome
    /// must not be recorded: the caller destroys the container and runs the activation on another
    /// one. Any factory may return it from [`crate::Container::init`] or [`crate::Container::run`];
    /// see [`Outcome::reschedule`].
    Refused,
    /// The activation's logs could not be collected (the sentinels did not arrive in time, or reading
    /// failed; OpenWhisk's `isLogCollectingError`). The outcome is recorded as it is, its logs ending
    /// with [`crate::logs::LOG_COLLECTION_ERROR`], but the container must be destroyed even after a
    /// success: its log position is unknown, so the next activation's logs would be wrong.
    LogsLost,
}

/// The outcome of one activation (or of a failed init, which ends its activation).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Status 0-3.
    pub status: Status,
    /// The result: the action's JSON for success, `{"error": ...}` for every failure.
    pub result: Option<Value>,
    /// Length in bytes of the raw response the result came from, when known (`response.size`).
    pub size: Option<usize>,
    /// Formatted log lines (`<time padded to 30> <stream>: <text>`), in order, limit applied.
    pub logs: Vec<String>,
    /// When the run (or the failed init) started.
    pub start: SystemTime,
    /// When the run (or the failed init) ended.
    pub end: SystemTime,
    /// Time spent initialising the container for this activation, when this activation initialised
    /// it (a cold or prewarmed start). Set by the caller that did the init, or by a failed init.
    pub init_time: Option<Duration>,
    /// Whether the time limit was hit (OpenWhisk's `timeout` annotation).
    pub timed_out: bool,
    /// Fuel consumed, when the runtime meters fuel (wasm with fuel on).
    pub fuel: Option<u64>,
    /// What went wrong with the container itself, if anything; `None` leaves the container's fate to
    /// the status ([`Status::keeps_container`]).
    pub fault: Option<ContainerFault>,
}

impl Outcome {
    /// An outcome with `status` and `result` over `[start, end]` and nothing else: no size, logs,
    /// init time, timeout, fuel or fault. Build others from it with struct update syntax
    /// (`Outcome { logs, ..Outcome::new(..) }`), so that a new field needs no change there.
    pub fn new(status: Status, result: Value, start: SystemTime, end: SystemTime) -> Self {
        Self {
            status,
            result: Some(result),
            size: None,
            logs: Vec::new(),
            start,
            end,
            init_time: None,
            timed_out: false,
            fuel: None,
            fault: None,
        }
    }

    /// A failure outcome `{"error": message}` with the given status over `[start, end]`.
    pub fn error(
        status: Status,
        message: impl Into<String>,
        start: SystemTime,
        end: SystemTime,
    ) -> Self {
        Self::new(status, error_result(message.into()), start, end)
    }

    /// A failure that happened at one instant (nothing ran), e.g. a container that could not start.
    pub fn instant_error(status: Status, message: impl Into<String>) -> Self {
        let now = SystemTime::now();
        Self::error(status, message, now, now)
    }

    /// The run's duration, `end - start`.
    pub fn duration(&self) -> Duration {
        self.end.duration_since(self.start).unwrap_or_default()
    }

    /// The outcome of a container that could not take the activation at all (its runtime is
    /// shutting down, or it was unreachable right after a resume): [`ContainerFault::Refused`], a
    /// whisk error whose result is `{"error": messages::RESCHEDULE}` over `[start, end]` (what stands
    /// if the caller gives up rescheduling).
    pub fn reschedule(start: SystemTime, end: SystemTime) -> Self {
        Self {
            fault: Some(ContainerFault::Refused),
            ..Self::error(Status::WhiskError, messages::RESCHEDULE, start, end)
        }
    }

    /// Whether the container refused the activation ([`ContainerFault::Refused`], OpenWhisk's
    /// `ContainerHealthError`): the caller must not record this outcome but destroy the container and
    /// run the activation on another one.
    pub fn needs_reschedule(&self) -> bool {
        self.fault == Some(ContainerFault::Refused)
    }

    /// Whether the activation's logs could not be collected ([`ContainerFault::LogsLost`]): the
    /// outcome is recorded, the container is not reused.
    pub fn logs_lost(&self) -> bool {
        self.fault == Some(ContainerFault::LogsLost)
    }
}

/// `{"error": value}`, the shape of every error result.
pub fn error_result(value: impl Into<Value>) -> Value {
    let mut map = serde_json::Map::with_capacity(1);
    map.insert("error".to_string(), value.into());
    Value::Object(map)
}

/// Classifies a JSON result the way OpenWhisk does for a successful `/run` (HTTP 200): an object with a
/// top-level `error` key is an application error with result `{"error": <value>}`, any other object or
/// an array is a success. Anything else is not a result at all (`None`).
pub fn classify_result(value: Value) -> Option<(Status, Value)> {
    match value {
        Value::Object(mut map) => match map.remove("error") {
            Some(error) => Some((Status::ApplicationError, error_result(error))),
            None => Some((Status::Success, Value::Object(map))),
        },
        Value::Array(_) => Some((Status::Success, value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_classify_result_follows_openwhisk() {
        assert_eq!(
            classify_result(json!({"a": 1})),
            Some((Status::Success, json!({"a": 1})))
        );
        assert_eq!(
            classify_result(json!({"error": "x", "other": 1})),
            Some((Status::ApplicationError, json!({"error": "x"})))
        );
        assert_eq!(
            classify_result(json!([1, 2])),
            Some((Status::Success, json!([1, 2])))
        );
        assert_eq!(classify_result(json!("str")), None);
        assert_eq!(classify_result(json!(5)), None);
    }

    #[test]
    fn test_status_codes_round_trip() {
        for code in 0..4 {
            assert_eq!(u64::from(Status::from_code(code).unwrap().code()), code);
        }
        assert_eq!(Status::from_code(4), None);
        assert!(Status::ApplicationError.keeps_container());
        assert!(!Status::DeveloperError.keeps_container());
    }

    #[test]
    fn test_reschedule_is_the_typed_fault_not_the_text() {
        let now = SystemTime::now();
        let refused = Outcome::reschedule(now, now);
        assert_eq!(refused.fault, Some(ContainerFault::Refused));
        assert!(refused.needs_reschedule());
        assert!(!refused.logs_lost());
        // The record it leaves if rescheduling is given up: OpenWhisk's whisk error shape.
        assert_eq!(refused.status, Status::WhiskError);
        assert_eq!(refused.result, Some(json!({"error": messages::RESCHEDULE})));
        // The same text without the fault is no signal at all.
        assert!(
            !Outcome::error(Status::WhiskError, messages::RESCHEDULE, now, now).needs_reschedule()
        );
        assert!(
            !Outcome::error(Status::WhiskError, messages::RESOURCE_ERROR, now, now)
                .needs_reschedule()
        );
    }

    #[test]
    fn test_new_outcomes_carry_no_fault() {
        let now = SystemTime::now();
        let outcome = Outcome::new(Status::Success, json!({"a": 1}), now, now);
        assert_eq!(outcome.fault, None);
        assert!(!outcome.needs_reschedule());
        assert!(!outcome.logs_lost());
        let lost = Outcome {
            fault: Some(ContainerFault::LogsLost),
            ..outcome
        };
        assert!(lost.logs_lost());
        assert!(!lost.needs_reschedule());
    }
}
