//! Invoking an action (`POST .../actions/[{pkg}/]{name}`): the activation message the controller
//! would have put on `invoker{N}`, the blocking wait with its 202 fallback, and the response bodies
//! and statuses of a finished activation. A sequence is handed to [`sequences`] ([`run`] decides).
//! Web actions run through [`run`] too.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use factory::Status;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use super::State;
use super::request::{Call, Reply, existing_action};
use super::resolve::{ResolvedAction, ResolvedPackage, action_in};
use super::sequences;
use crate::document::{ActionDocument, Exec};
use crate::message::{
    ActivationId, ActivationMessage, ControllerInstanceId, FullyQualifiedEntityName, Identity,
    TransactionId,
};
use crate::record::{WhiskActivation, epoch_millis, is_truthy};
use crate::standalone::http::{
    ACTIVATION_ID_HEADER, ApiError, ResponseBody, content_length, json_object_body, json_response,
    messages,
};
use crate::standalone::validate;

/// How long a blocking invoke waits before answering 202 with the activation id
/// (`controllerActivationConfig.maxWaitForBlockingActivation`, 60 s).
pub const MAX_BLOCKING_WAIT: Duration = Duration::from_secs(60);
/// The controller instance the standalone server poses as (acks are not sent, but the message
/// carries one like every other).
const CONTROLLER_INSTANCE: &str = "0";

/// Builds the activation message the controller would have sent (`invokeSimpleAction`): the action's
/// parameters merged with the payload (payload wins), init parameter names, the caller's identity.
pub(super) fn activation_message(
    user: &Identity,
    action: &ActionDocument,
    payload: Option<Map<String, Value>>,
    blocking: bool,
    tid: &str,
) -> ActivationMessage {
    let mut content: Map<String, Value> = action
        .parameters
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    if let Some(payload) = payload {
        content.extend(payload);
    }
    ActivationMessage {
        transid: TransactionId::new(tid, epoch_millis(SystemTime::now())),
        action: FullyQualifiedEntityName {
            path: action.namespace.clone(),
            name: action.name.clone(),
            version: Some(action.version.clone()),
            binding: None,
        },
        revision: action.rev.clone(),
        user: user.clone(),
        activation_id: ActivationId::generate(),
        root_controller_index: ControllerInstanceId::new(CONTROLLER_INSTANCE)
            .expect("\"0\" is a valid controller instance id"),
        blocking,
        content: Some(Value::Object(content)),
        init_args: action
            .parameters
            .iter()
            .filter(|p| p.init)
            .map(|p| p.key.clone())
            .collect(),
        locked_args: Default::default(),
        cause: None,
        trace_context: None,
    }
}

/// Rejects payload keys that would override a final action's defined parameters.
pub(super) fn check_final<'a>(
    action: &ActionDocument,
    mut keys: impl Iterator<Item = &'a String>,
) -> Result<(), ApiError> {
    let is_final = action.annotations.get("final").is_some_and(is_truthy);
    if !is_final {
        return Ok(());
    }
    let immutable: Vec<&str> = action
        .parameters
        .iter()
        .filter(|p| !p.value.is_null())
        .map(|p| p.key.as_str())
        .collect();
    if keys.any(|key| immutable.contains(&key.as_str())) {
        return Err(ApiError::bad_request(messages::PARAMETERS_NOT_ALLOWED));
    }
    Ok(())
}

/// Runs the activation; `Err(id)` when the wait ran out first (the activation goes on and is stored).
async fn run_blocking(
    state: &State,
    message: ActivationMessage,
    wait: Duration,
) -> Result<WhiskActivation, ActivationId> {
    let id = message.activation_id.clone();
    let backend = Arc::clone(&state.backend);
    let task = tokio::spawn(async move { backend.activate(message).await });
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(activation)) => Ok(activation),
        Ok(Err(join)) => {
            tracing::error!(error = %join, activation_id = %id, "activation task failed");
            Err(id)
        }
        Err(_) => Err(id),
    }
}

/// What an invoke asked for, read in the controller's order (payload size, query, body).
struct InvokeRequest {
    blocking: bool,
    result_only: bool,
    wait: Duration,
    payload: Option<Map<String, Value>>,
}

impl InvokeRequest {
    fn read(state: &State, call: &Call) -> Result<Self, ApiError> {
        validate::check_payload_size(
            content_length(&call.headers).unwrap_or(call.body.len() as u64),
        )?;
        let blocking = call.flag("blocking")?;
        let result_only = call.flag("result")?;
        let wait = match call.query("timeout") {
            Some(text) => text
                .trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| {
                    ApiError::bad_request(messages::malformed_query(
                        "timeout",
                        &format!("'{text}' is not a valid duration"),
                    ))
                })?
                .min(state.max_blocking_wait),
            None => state.max_blocking_wait,
        };
        let payload = json_object_body(&call.headers, &call.body)?;
        Ok(Self {
            blocking,
            result_only,
            wait,
            payload,
        })
    }
}

/// `POST /api/v1/namespaces/{ns}/actions/{name}`: runs the action, blocking or not.
pub(super) async fn invoke(
    state: &State,
    call: &Call,
    user: &Identity,
    ns: &str,
    name: &str,
    tid: &str,
) -> Reply {
    let request = InvokeRequest::read(state, call)?;
    let action = existing_action(state, ns, name, false).await?;
    let action = ResolvedAction {
        document: action.document,
        binding: None,
    };
    respond(state, user, action, request, tid).await
}

/// `POST .../actions/{pkg}/{name}` once the package (or binding) is resolved and entitled: the
/// action with the package's (and binding's) parameters under its own.
pub(super) async fn invoke_in_package(
    state: &State,
    call: &Call,
    user: &Identity,
    package: &ResolvedPackage,
    name: &str,
    tid: &str,
) -> Reply {
    let request = InvokeRequest::read(state, call)?;
    let action = action_in(state, package, name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    respond(state, user, action, request, tid).await
}

async fn respond(
    state: &State,
    user: &Identity,
    action: ResolvedAction,
    request: InvokeRequest,
    tid: &str,
) -> Reply {
    if let Some(payload) = &request.payload {
        check_final(&action.document, payload.keys())?;
    }
    let wait = request.blocking.then_some(request.wait);
    match run(state, user, action, request.payload, wait, tid).await? {
        Outcome::Done(activation) => Ok(blocking_response(&activation, request.result_only)),
        Outcome::Running(id) => Ok(accepted(&id)),
    }
}

/// How far an invoke got when the caller stops waiting.
pub(super) enum Outcome {
    /// The activation ended in time: its record (boxed: the id alone is a tenth of its size).
    Done(Box<WhiskActivation>),
    /// Not waited for (non-blocking) or not ended in time: it goes on under this id.
    Running(ActivationId),
}

/// Runs a resolved action (a sequence runs its components) with `payload` as `user`, waiting up to
/// `wait` for its end (`None`: not at all). The only error is a sequence's component entitlement.
pub(super) async fn run(
    state: &State,
    user: &Identity,
    action: ResolvedAction,
    payload: Option<Map<String, Value>>,
    wait: Option<Duration>,
    tid: &str,
) -> Result<Outcome, ApiError> {
    if matches!(action.document.exec, Exec::Sequence { .. }) {
        return sequences::start(state, user, action, payload, wait, tid).await;
    }
    let mut message = activation_message(user, &action.document, payload, wait.is_some(), tid);
    // An activation through a binding records the binding's path (`binding` annotation).
    message.action.binding = action.binding;
    let id = message.activation_id.clone();
    tracing::debug!(activation_id = %id, blocking = wait.is_some(), "invoke");
    let Some(wait) = wait else {
        let backend = Arc::clone(&state.backend);
        tokio::spawn(async move {
            backend.activate(message).await;
        });
        return Ok(Outcome::Running(id));
    };
    Ok(match run_blocking(state, message, wait).await {
        Ok(activation) => Outcome::Done(Box::new(activation)),
        Err(id) => Outcome::Running(id),
    })
}

fn accepted(id: &ActivationId) -> Response<ResponseBody> {
    let mut response = json_response(StatusCode::ACCEPTED, &json!({"activationId": id.as_str()}));
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(ACTIVATION_ID_HEADER, value);
    }
    response
}

/// 200 for success, 502 for application and developer errors, 500 for whisk errors; the body is
/// the extended activation, or its result with `result=true` (an array result always alone).
fn blocking_response(activation: &WhiskActivation, result_only: bool) -> Response<ResponseBody> {
    let body = match &activation.response.result {
        Some(array @ Value::Array(_)) => array.clone(),
        _ if result_only => activation
            .response
            .result
            .clone()
            .unwrap_or_else(|| json!({})),
        _ => activation.to_extended_json(),
    };
    let status = match activation.response.status {
        Status::Success => StatusCode::OK,
        Status::ApplicationError | Status::DeveloperError => StatusCode::BAD_GATEWAY,
        Status::WhiskError => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = json_response(status, &body);
    if let Ok(value) = HeaderValue::from_str(activation.activation_id.as_str()) {
        response.headers_mut().insert(ACTIVATION_ID_HEADER, value);
    }
    response
}
