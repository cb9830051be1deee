//! Sequences (`exec.kind: sequence`), as the controller runs them (`SequenceActions.scala`) and
//! checks them on PUT (`Actions.scala`).
//!
//! A sequence never reaches an invoker: the controller runs its components one after the other,
//! blocking, each component's result the next one's input, and stops at the first result with an
//! `error` field. Here each component is resolved as a direct invoke of its name would be
//! ([`super::resolve`]) and handed to the backend's `activate`, the same call a direct invoke
//! makes, so a step costs its activation and nothing more. The sequence's own record (`logs` the
//! component activation ids, `response` the last one's, `duration` their sum) is stored when the
//! last component ends. A component that is itself a sequence runs nested, within one count of
//! atomic actions (`actionSequenceMaxLimit`) for the topmost sequence.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use factory::{Limits, Status};
use hyper::StatusCode;
use serde_json::{Map, Value};

use super::invoke::{Outcome, activation_message};
use super::resolve::{ActionPath, ResolvedAction, resolve_action, stored_action};
use crate::document::Exec;
use crate::message::{ActivationId, Identity};
use crate::record::{ActivationResponse, Annotations, WhiskActivation, epoch_millis};
use crate::standalone::api::State;
use crate::standalone::api::packages::readable_package;
use crate::standalone::http::{ApiError, messages};

/// Most atomic actions a sequence may run, nested sequences inlined
/// (`limits.actions.sequence.maxLength`, `actionSequenceMaxLimit`, 50 in OpenWhisk's deployments).
pub const ACTION_SEQUENCE_MAX_LIMIT: usize = 50;

/// The controller's texts for sequences (`Messages`).
pub(super) mod text {
    /// `sequenceIsTooLong`.
    pub(super) const TOO_LONG: &str = "Too many actions in the sequence.";
    /// `sequenceNoComponent`.
    pub(super) const NO_COMPONENT: &str = "No component specified for the sequence.";
    /// `sequenceIsCyclic`.
    pub(super) const CYCLIC: &str = "Sequence may not refer to itself.";
    /// `sequenceComponentNotFound`.
    pub(super) const COMPONENT_NOT_FOUND: &str = "Sequence component does not exist.";
    /// `sequenceActivationFailure`.
    pub(super) const FAILED: &str = "Sequence failed.";
}

/// The `exec` of a sequence: its components, namespaces resolved against `own`; `None` for any
/// other exec.
pub(super) fn sequence_components(exec: &Exec, own: &str) -> Option<Vec<ActionPath>> {
    let Exec::Sequence { components } = exec else {
        return None;
    };
    Some(
        components
            .iter()
            .filter_map(|c| ActionPath::parse(c).ok())
            .map(|c| c.resolve_namespace(own))
            .collect(),
    )
}

/// The entitlement check on a sequence's components (`entitleReferencedEntities`): an action of
/// the caller's namespace, or in a package the caller may read (its own, or another namespace's
/// published package). Refusals of other namespaces' entities are gathered into one 403 naming
/// them all, as the controller's `unauthorizedOn` does; the caller's own missing package is 404.
pub(super) async fn entitle(
    state: &State,
    own: &str,
    components: &[ActionPath],
) -> Result<(), ApiError> {
    let mut refused: Vec<String> = Vec::new();
    for component in components {
        let denied = match &component.package {
            None if component.namespace == own => continue,
            None => component.doc_id(),
            Some(package) => {
                match readable_package(state, own, &component.namespace, package).await {
                    Ok(_) => continue,
                    Err(error) if error.status == StatusCode::FORBIDDEN => component.path(),
                    Err(error) => return Err(error),
                }
            }
        };
        if !refused.contains(&denied) {
            refused.push(denied);
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    refused.sort();
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        messages::not_authorized(&refused.join(", ")),
    ))
}

/// The PUT checks of a sequence after the entitlement (`checkSequenceActionLimits`): at most
/// [`ACTION_SEQUENCE_MAX_LIMIT`] components and at least one, each existing, none of them (nested
/// sequences inlined) the sequence itself, and at most [`ACTION_SEQUENCE_MAX_LIMIT`] atomic
/// actions in all. Every refusal is a 400 with the controller's text.
pub(super) async fn check_limits(
    state: &State,
    own: &str,
    sequence: &ActionPath,
    components: &[ActionPath],
) -> Result<(), ApiError> {
    if components.len() > ACTION_SEQUENCE_MAX_LIMIT {
        return Err(ApiError::bad_request(text::TOO_LONG));
    }
    if components.is_empty() {
        return Err(ApiError::bad_request(text::NO_COMPONENT));
    }
    let count = count_atomic_actions(state, own, &sequence.doc_id(), components)
        .await
        .map_err(|refusal| match refusal {
            Refusal::TooLong => ApiError::bad_request(text::TOO_LONG),
            Refusal::Cyclic => ApiError::bad_request(text::CYCLIC),
            Refusal::Missing => ApiError::bad_request(text::COMPONENT_NOT_FOUND),
            Refusal::Failed(error) => error,
        })?;
    if count > ACTION_SEQUENCE_MAX_LIMIT {
        return Err(ApiError::bad_request(text::TOO_LONG));
    }
    Ok(())
}

/// Why `countAtomicActionsAndCheckCycle` refused.
enum Refusal {
    TooLong,
    Cyclic,
    Missing,
    Failed(ApiError),
}

/// The atomic actions of `components`, nested sequences inlined, refusing any that resolves to
/// `sequence` (the document id being created or updated).
async fn count_atomic_actions(
    state: &State,
    own: &str,
    sequence: &str,
    components: &[ActionPath],
) -> Result<usize, Refusal> {
    if components.len() > ACTION_SEQUENCE_MAX_LIMIT {
        return Err(Refusal::TooLong);
    }
    let mut count = 0;
    for component in components {
        let (doc_id, document) = stored_action(state, component)
            .await
            .map_err(Refusal::Failed)?
            .ok_or(Refusal::Missing)?;
        if doc_id == sequence {
            return Err(Refusal::Cyclic);
        }
        count += match sequence_components(&document.exec, own) {
            Some(inner) => Box::pin(count_atomic_actions(state, own, sequence, &inner)).await?,
            None => 1,
        };
    }
    Ok(count)
}

/// Starts a topmost sequence invoked by `user` with `payload`: the components are entitled for
/// activation first (a refusal is the request's 403), then run in a task of their own, so that a
/// blocking caller that stops waiting after `wait` (or a non-blocking one, `wait` = `None`) gets
/// the sequence's activation id while the sequence goes on and is stored.
pub(super) async fn start(
    state: &State,
    user: &Identity,
    sequence: ResolvedAction,
    payload: Option<Map<String, Value>>,
    wait: Option<Duration>,
    tid: &str,
) -> Result<Outcome, ApiError> {
    let accepted = SystemTime::now();
    let own = user.namespace.name.as_str();
    let components = sequence_components(&sequence.document.exec, own).unwrap_or_default();
    entitle(state, own, &components).await?;
    let id = ActivationId::generate();
    let run = Run {
        state: Arc::new(state.clone()),
        user: user.clone(),
        tid: tid.to_string(),
        accepted,
    };
    let input = payload.map(Value::Object);
    let running = id.clone();
    let task = tokio::spawn(async move {
        let (record, _) = run
            .sequence(&sequence, &components, input, running, None, 0)
            .await;
        record
    });
    let Some(wait) = wait else {
        return Ok(Outcome::Running(id));
    };
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(record)) => Ok(Outcome::Done(Box::new(record))),
        Ok(Err(join)) => {
            tracing::error!(error = %join, activation_id = %id, "sequence task failed");
            Ok(Outcome::Running(id))
        }
        Err(_) => Ok(Outcome::Running(id)),
    }
}

/// What every step of one topmost sequence shares.
struct Run {
    state: Arc<State>,
    user: Identity,
    tid: String,
    /// When the invoke was accepted (the sequence's `waitTime` runs from here).
    accepted: SystemTime,
}

/// `SequenceAccounting`: what the components did so far.
struct Accounting {
    /// Atomic actions run since the topmost sequence started.
    count: usize,
    /// The last response (at first the input, boxed as a success).
    response: ActivationResponse,
    /// The component activation ids.
    logs: Vec<String>,
    /// The sum of the components' durations.
    duration: u64,
    /// The largest `limits.memory` of the components.
    max_memory: Option<u64>,
}

impl Accounting {
    /// A component's activation: tallied whatever its outcome; `true` when the sequence goes on
    /// (no `error` field in its result, the count within the limit), as `SequenceAccounting.maybe`.
    fn record(&mut self, mut activation: WhiskActivation, count: usize) -> bool {
        let error = activation
            .response
            .result
            .as_ref()
            .and_then(Value::as_object)
            .is_some_and(|result| result.contains_key("error"));
        let within = count <= ACTION_SEQUENCE_MAX_LIMIT;
        if !within {
            activation.response =
                ActivationResponse::error(Status::ApplicationError, text::TOO_LONG);
        }
        self.count = count;
        self.logs
            .push(activation.activation_id.as_str().to_string());
        self.duration += activation.duration.unwrap_or(0);
        let memory = activation
            .annotations
            .get("limits")
            .and_then(|limits| limits.get("memory"))
            .and_then(Value::as_u64);
        self.max_memory = self.max_memory.max(memory);
        self.response = activation.response;
        within && !error
    }

    /// A component that did not run (`SequenceAccounting.fail`).
    fn fail(&mut self, status: Status, message: &str) {
        self.response = ActivationResponse::error(status, message);
    }
}

impl Run {
    /// Runs `sequence` (`invokeSequence` and `invokeSequenceComponents`): its components in
    /// order, then its record, stored. `cause` is the enclosing sequence's activation id (`None`
    /// for the topmost); `count` the atomic actions run so far. Returns the record and the count.
    async fn sequence(
        &self,
        sequence: &ResolvedAction,
        components: &[ActionPath],
        input: Option<Value>,
        id: ActivationId,
        cause: Option<ActivationId>,
        count: usize,
    ) -> (WhiskActivation, usize) {
        let start = SystemTime::now();
        let mut accounting = Accounting {
            count,
            response: ActivationResponse {
                status: Status::Success,
                result: input,
                size: None,
            },
            logs: Vec::new(),
            duration: 0,
            max_memory: None,
        };
        for component in components {
            if accounting.count >= ACTION_SEQUENCE_MAX_LIMIT {
                accounting.fail(Status::ApplicationError, text::TOO_LONG);
                break;
            }
            let resolved = match resolve_action(&self.state, component).await {
                Ok(Some(resolved)) => resolved,
                Ok(None) => {
                    accounting.fail(Status::ApplicationError, text::COMPONENT_NOT_FOUND);
                    break;
                }
                Err(error) => {
                    tracing::error!(component = %component, error = %error.message, "sequence component unresolved");
                    accounting.fail(Status::WhiskError, text::FAILED);
                    break;
                }
            };
            // Only an object or an array passes on (`invokeNextAction`).
            let input = accounting
                .response
                .result
                .take()
                .filter(|result| result.is_object() || result.is_array());
            let own = self.user.namespace.name.as_str();
            let (activation, count) = match sequence_components(&resolved.document.exec, own) {
                Some(inner) => {
                    let inner_id = ActivationId::generate();
                    Box::pin(self.sequence(
                        &resolved,
                        &inner,
                        input,
                        inner_id,
                        Some(id.clone()),
                        accounting.count,
                    ))
                    .await
                }
                None => (
                    self.component(&resolved, input, &id).await,
                    accounting.count + 1,
                ),
            };
            if !accounting.record(activation, count) {
                break;
            }
        }
        let count = accounting.count;
        let record = self.record(sequence, id, cause, start, accounting);
        if let Err(error) = self.state.backend.store_activation(&record).await {
            tracing::error!(activation_id = %record.activation_id, %error, "sequence record not stored");
        }
        (record, count)
    }

    /// Runs one atomic component, blocking, caused by the sequence `cause`: the message a direct
    /// invoke of its name would send, with `cause` set, straight to the backend.
    async fn component(
        &self,
        action: &ResolvedAction,
        input: Option<Value>,
        cause: &ActivationId,
    ) -> WhiskActivation {
        let (object, array) = match input {
            Some(Value::Object(map)) => (Some(map), None),
            Some(array @ Value::Array(_)) => (None, Some(array)),
            _ => (None, None),
        };
        let mut message = activation_message(&self.user, &action.document, object, true, &self.tid);
        // An array input goes as it is, without the parameters (`invokeSimpleAction`).
        if array.is_some() {
            message.content = array;
        }
        message.action.binding = action.binding.clone();
        message.cause = Some(cause.clone());
        self.state.backend.activate(message).await
    }

    /// The sequence's record (`makeSequenceActivation`).
    fn record(
        &self,
        sequence: &ResolvedAction,
        id: ActivationId,
        cause: Option<ActivationId>,
        start: SystemTime,
        accounting: Accounting,
    ) -> WhiskActivation {
        let document = &sequence.document;
        let topmost = cause.is_none();
        let start_ms = epoch_millis(start);
        let end_ms = epoch_millis(SystemTime::now()).max(start_ms);
        let mut annotations = Annotations::new();
        annotations.set("topmost", topmost);
        annotations.set("path", document.doc_id());
        annotations.set("kind", "sequence");
        if !topmost {
            annotations.set("causedBy", "sequence");
        }
        annotations.set(
            "waitTime",
            epoch_millis(start).saturating_sub(epoch_millis(self.accepted)),
        );
        if let Some(binding) = &sequence.binding {
            annotations.set("binding", binding.clone());
        }
        if let Some(memory) = accounting.max_memory {
            let limits = Limits {
                timeout: document.limits.timeout,
                memory: u32::try_from(memory).unwrap_or(u32::MAX),
                logs: document.limits.logs,
                concurrency: Limits::default().concurrency,
            };
            annotations.set(
                "limits",
                serde_json::to_value(limits).unwrap_or(Value::Null),
            );
        }
        WhiskActivation {
            namespace: self.user.namespace.name.clone(),
            name: document.name.clone(),
            subject: self.user.subject.clone(),
            activation_id: id,
            start: start_ms,
            end: end_ms,
            cause,
            response: accounting.response,
            logs: accounting.logs,
            version: document.version.clone(),
            publish: false,
            annotations,
            duration: Some(accounting.duration),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn activation(result: Value, duration: u64, memory: u64) -> WhiskActivation {
        let mut annotations = Annotations::new();
        annotations.set("limits", json!({"memory": memory}));
        WhiskActivation {
            namespace: "guest".into(),
            name: "a".into(),
            subject: "guest".into(),
            activation_id: ActivationId::generate(),
            start: 0,
            end: duration,
            cause: None,
            response: ActivationResponse {
                status: Status::Success,
                result: Some(result),
                size: None,
            },
            logs: Vec::new(),
            version: "0.0.1".into(),
            publish: false,
            annotations,
            duration: Some(duration),
        }
    }

    fn accounting() -> Accounting {
        Accounting {
            count: 0,
            response: ActivationResponse {
                status: Status::Success,
                result: None,
                size: None,
            },
            logs: Vec::new(),
            duration: 0,
            max_memory: None,
        }
    }

    #[test]
    fn test_components_are_tallied_until_an_error_result() {
        let mut tally = accounting();
        assert!(tally.record(activation(json!({"a": 1}), 3, 128), 1));
        assert!(!tally.record(activation(json!({"error": "no"}), 4, 512), 2));
        assert_eq!(tally.logs.len(), 2);
        assert_eq!(tally.duration, 7);
        assert_eq!(tally.max_memory, Some(512));
        assert_eq!(tally.count, 2);
        assert_eq!(tally.response.result, Some(json!({"error": "no"})));
    }

    #[test]
    fn test_a_component_past_the_limit_ends_the_sequence_too_long() {
        let mut tally = accounting();
        let past = ACTION_SEQUENCE_MAX_LIMIT + 1;
        assert!(!tally.record(activation(json!({"a": 1}), 1, 256), past));
        assert_eq!(tally.response.status, Status::ApplicationError);
        assert_eq!(
            tally.response.result,
            Some(json!({"error": text::TOO_LONG}))
        );
        assert_eq!(tally.logs.len(), 1);
    }
}
