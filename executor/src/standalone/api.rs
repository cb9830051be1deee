//! Routing and handlers of the REST API subset: `/ping`, `/api/v1`, actions, activations and web
//! actions, answering with the controller's paths, status codes and bodies.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use factory::wasm::WASM_WASIP1_KIND;
use factory::{Code, Status};
use hyper::body::Body;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::auth::Subjects;
use super::backend::{ActivationFilter, Backend, BackendError, StoredAction};
use super::http::{
    ACTIVATION_ID_HEADER, ApiError, MAX_REQUEST_BYTES, REQUEST_ID_HEADER, ResponseBody,
    content_length, json_object_body, json_response, messages, read_body, text_response,
    transaction_id,
};
use super::validate::{self, LimitsPut, ListQuery};
use super::web::{self, Extension, WebRequest};
use crate::document::{self, ActionDocument, CodeSource, Exec, KindResolver, Parameter};
use crate::message::{
    ActivationId, ActivationMessage, ControllerInstanceId, FullyQualifiedEntityName, Identity,
    TransactionId,
};
use crate::record::{Annotations, WhiskActivation, epoch_millis, is_truthy};

/// How long a blocking invoke waits before answering 202 with the activation id
/// (`controllerActivationConfig.maxWaitForBlockingActivation`, 60 s).
pub const MAX_BLOCKING_WAIT: Duration = Duration::from_secs(60);
/// The controller instance the standalone server poses as (acks are not sent, but the message
/// carries one like every other).
const CONTROLLER_INSTANCE: &str = "0";

/// The exec kinds the server accepts, with each family's default (`<family>:default`).
#[derive(Debug, Clone, Default)]
pub struct KindSet {
    /// Every accepted kind.
    pub kinds: BTreeSet<String>,
    /// family → its default kind.
    pub defaults: std::collections::BTreeMap<String, String>,
}

impl KindSet {
    /// The kinds of the runtimes manifest (family, kind, is default) plus `wasm:wasip1`.
    pub fn new(manifest: impl IntoIterator<Item = (String, String, bool)>) -> Self {
        let mut set = Self::default();
        for (family, kind, is_default) in manifest {
            if is_default {
                set.defaults.insert(family, kind.clone());
            }
            set.kinds.insert(kind);
        }
        set.kinds.insert(WASM_WASIP1_KIND.to_string());
        set.defaults
            .entry("wasm".into())
            .or_insert_with(|| WASM_WASIP1_KIND.to_string());
        set
    }

    /// `The specified runtime 'x' is not supported by this platform. Valid values are: ...`
    fn invalid_runtime(&self, kind: &str) -> String {
        let mut valid: Vec<&str> = self.kinds.iter().map(String::as_str).collect();
        valid.extend(["sequence", "blackbox"]);
        format!(
            "The specified runtime '{kind}' is not supported by this platform. Valid values are: '{}'.",
            valid.join("', '")
        )
    }
}

impl KindResolver for KindSet {
    fn resolve(&self, kind: &str) -> Option<String> {
        if self.kinds.contains(kind) {
            return Some(kind.to_string());
        }
        let family = kind.strip_suffix(":default")?;
        self.defaults.get(family).cloned()
    }
}

/// Everything a request needs: who may call, which kinds exist, and the backend.
pub struct State {
    /// The accepted API keys.
    pub subjects: Subjects,
    /// The accepted exec kinds.
    pub kinds: KindSet,
    /// Store and processor.
    pub backend: Arc<dyn Backend>,
    /// How long blocking invokes wait before answering 202.
    pub max_blocking_wait: Duration,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

/// Answers one request. Never fails: every error is OpenWhisk's error response. Tests call this
/// directly, without a socket.
pub async fn handle<B>(state: Arc<State>, request: Request<B>) -> Response<ResponseBody>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tid = transaction_id(request.headers());
    let path = request.uri().path();
    let rest_api =
        (path == "/api/v1" || path.starts_with("/api/v1/")) && !path.starts_with("/api/v1/web/");
    let span = tracing::debug_span!(
        "request",
        tid = %tid,
        method = %request.method(),
        path = %request.uri().path()
    );
    let routed = tracing::Instrument::instrument(route(&state, request, &tid), span).await;
    let mut response = match routed {
        Ok(response) => response,
        Err(error) => error.into_response(&tid),
    };
    if let Ok(value) = HeaderValue::from_str(&tid) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if rest_api {
        cors(&mut response, REST_CORS_METHODS, None);
    }
    response
}

/// `Access-Control-Allow-Methods` of the REST API (`CorsSettings.RestAPIs`).
const REST_CORS_METHODS: &str = "GET, DELETE, POST, PUT, HEAD";
/// `Access-Control-Allow-Methods` of web actions (`CorsSettings.WebActions`).
const WEB_CORS_METHODS: &str = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH";
/// `Access-Control-Allow-Headers` unless a preflight asks for others (`CorsSettings.Defaults`).
const CORS_HEADERS: &str =
    "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent";

/// Adds OpenWhisk's CORS headers; `requested` echoes a preflight's `Access-Control-Request-Headers`.
fn cors(
    response: &mut Response<ResponseBody>,
    methods: &'static str,
    requested: Option<&HeaderValue>,
) {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested
            .cloned()
            .unwrap_or(HeaderValue::from_static(CORS_HEADERS)),
    );
}

/// An empty 200 (answer to `OPTIONS`).
fn empty_ok() -> Response<ResponseBody> {
    Response::new(ResponseBody::new(Bytes::new()))
}

/// The parts of a request the handlers use, body read.
struct Call {
    method: Method,
    headers: hyper::HeaderMap,
    segments: Vec<String>,
    raw_query: String,
    query: Vec<(String, String)>,
    body: Bytes,
}

impl Call {
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> Result<bool, ApiError> {
        self.query(name)
            .map(|v| validate::boolean(name, v))
            .transpose()
            .map(|v| v.unwrap_or(false))
    }
}

async fn route<B>(
    state: &State,
    request: Request<B>,
    tid: &str,
) -> Result<Response<ResponseBody>, ApiError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let segments = split_path(parts.uri.path())?;
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let query: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let is_web = segments.get(2).is_some_and(|s| s == "web");
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match seg.as_slice() {
        ["ping"] => {
            only(&parts.method, &["GET"])?;
            return Ok(text_response(StatusCode::OK, "pong"));
        }
        ["api", "v1"] => {
            only(&parts.method, &["GET"])?;
            return Ok(json_response(StatusCode::OK, &api_info()));
        }
        ["api", "v1", "namespaces", ..] if parts.method == Method::OPTIONS => return Ok(empty_ok()),
        ["api", "v1", "namespaces", ..] | ["api", "v1", "web", ..] => {}
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                messages::ROUTE_NOT_FOUND,
            ));
        }
    }
    // Authenticate before reading the body, so an anonymous caller cannot make us buffer one.
    let user = if is_web {
        None
    } else {
        Some(state.subjects.authenticate(&parts.headers)?.clone())
    };
    let declared = content_length(&parts.headers);
    let body = read_body(body, declared, MAX_REQUEST_BYTES).await?;
    let call = Call {
        method: parts.method,
        headers: parts.headers,
        segments,
        raw_query,
        query,
        body,
    };
    let Some(user) = user else {
        return web_action(state, &call, tid).await;
    };
    let seg: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    match &seg[3..] {
        [] => {
            only(&call.method, &["GET"])?;
            Ok(json_response(StatusCode::OK, &json!([user.namespace.name])))
        }
        [ns, "actions"] => {
            let ns = own_namespace(&user, ns, None)?;
            only(&call.method, &["GET"])?;
            list_actions(state, &call, &ns).await
        }
        [ns, "actions", name] => {
            let namespace = validate::namespace(ns, &user.namespace.name)?;
            let name = validate::entity_name(name)?;
            let ns = own_namespace(&user, &namespace, Some(&name))?;
            match call.method.as_str() {
                "GET" => get_action(state, &call, &ns, &name).await,
                "PUT" => put_action(state, &call, &ns, &name).await,
                "DELETE" => delete_action(state, &ns, &name).await,
                "POST" => invoke(state, &call, &user, &ns, &name, tid).await,
                _ => Err(method_not_allowed(&["GET", "PUT", "DELETE", "POST"])),
            }
        }
        [ns, "actions", package, name] => {
            // Packages are not supported: the package lookup fails as for a missing package.
            let namespace = validate::namespace(ns, &user.namespace.name)?;
            validate::entity_name(package)?;
            validate::entity_name(name)?;
            own_namespace(&user, &namespace, Some(&format!("{package}/{name}")))?;
            Err(ApiError::not_found())
        }
        [ns, "activations"] => {
            let ns = own_namespace(&user, ns, None)?;
            only(&call.method, &["GET"])?;
            list_activations(state, &call, &ns).await
        }
        [ns, "activations", id, rest @ ..] => {
            let namespace = validate::namespace(ns, &user.namespace.name)?;
            only(&call.method, &["GET"])?;
            let id = validate::activation_id(id)?;
            let ns = own_namespace(&user, &namespace, Some(&id))?;
            let view = match rest {
                [] => ActivationView::Whole,
                ["logs"] => ActivationView::Logs,
                ["result"] => ActivationView::Result,
                _ => {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        messages::ROUTE_NOT_FOUND,
                    ));
                }
            };
            get_activation(state, &ns, &id, view).await
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            messages::ROUTE_NOT_FOUND,
        )),
    }
}

/// Percent-decoded path segments, without empty ones from a trailing slash.
fn split_path(path: &str) -> Result<Vec<String>, ApiError> {
    let mut segments = Vec::new();
    for raw in path.split('/') {
        if raw.is_empty() {
            continue;
        }
        let decoded: Vec<u8> = percent_decode(raw);
        let text = String::from_utf8(decoded)
            .map_err(|_| ApiError::bad_request(messages::ENTITY_NAME_ILLEGAL))?;
        segments.push(text);
    }
    Ok(segments)
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn only(method: &Method, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&method.as_str()) {
        Ok(())
    } else {
        Err(method_not_allowed(allowed))
    }
}

fn method_not_allowed(allowed: &[&str]) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        messages::method_not_allowed(allowed),
    )
}

/// Resolves `_` and checks the caller owns the namespace (403 otherwise, as the controller's
/// entitlement check answers for another namespace's private entities).
fn own_namespace(user: &Identity, segment: &str, entity: Option<&str>) -> Result<String, ApiError> {
    let ns = validate::namespace(segment, &user.namespace.name)?;
    if ns != user.namespace.name {
        let resource = match entity {
            Some(entity) => format!("{ns}/{entity}"),
            None => ns,
        };
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            messages::not_authorized(&resource),
        ));
    }
    Ok(ns)
}

/// `GET /api/v1`.
fn api_info() -> Value {
    json!({
        "description": "OpenWhisk API",
        "api_version": "1.0.0",
        "api_version_path": "v1",
        "build": env!("CARGO_PKG_VERSION"),
        "buildno": concat!("wasm-invoker-", env!("CARGO_PKG_VERSION")),
        "swagger_paths": {"ui": "/docs", "api-docs": "/api-docs"}
    })
}

fn store_error(error: BackendError) -> ApiError {
    match error {
        BackendError::Conflict => ApiError::new(StatusCode::CONFLICT, messages::CONFLICT),
        BackendError::Store(reason) => {
            tracing::error!(%reason, "store failure");
            ApiError::internal()
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Actions

/// The action as the API shows it (`WhiskAction` JSON): code as a string (base64 when binary),
/// or without code (`code=false`, and lists).
fn action_json(action: &StoredAction, with_code: bool) -> Value {
    let doc = &action.document;
    let mut exec = Map::new();
    match &doc.exec {
        Exec::Code {
            kind, binary, main, ..
        } => {
            exec.insert("kind".into(), Value::String(kind.clone()));
            if with_code && let Some(code) = &action.code {
                exec.insert("code".into(), Value::String(code_text(code)));
            }
            exec.insert("binary".into(), Value::Bool(*binary));
            if let Some(main) = main {
                exec.insert("main".into(), Value::String(main.clone()));
            }
        }
        Exec::Blackbox {
            image,
            binary,
            main,
            ..
        } => {
            exec.insert("kind".into(), Value::String("blackbox".into()));
            exec.insert("image".into(), Value::String(image.clone()));
            if with_code && let Some(code) = &action.code {
                exec.insert("code".into(), Value::String(code_text(code)));
            }
            exec.insert("binary".into(), Value::Bool(*binary));
            if let Some(main) = main {
                exec.insert("main".into(), Value::String(main.clone()));
            }
        }
        other @ Exec::Sequence { .. } => {
            if let Ok(Value::Object(map)) = serde_json::to_value(other) {
                exec = map;
            }
        }
    }
    json!({
        "namespace": doc.namespace,
        "name": doc.name,
        "version": doc.version,
        "publish": doc.publish,
        "exec": exec,
        "annotations": doc.annotations.to_value(),
        "parameters": serde_json::to_value(&doc.parameters).unwrap_or(Value::Array(Vec::new())),
        "limits": serde_json::to_value(doc.limits).unwrap_or(Value::Null),
        "updated": doc.updated,
    })
}

/// The summary a list shows (the `actions` view of the entities database).
fn action_summary(doc: &ActionDocument) -> Value {
    let binary = match &doc.exec {
        Exec::Code { binary, .. } | Exec::Blackbox { binary, .. } => *binary,
        Exec::Sequence { .. } => false,
    };
    json!({
        "namespace": doc.namespace,
        "name": doc.name,
        "version": doc.version,
        "publish": doc.publish,
        "annotations": doc.annotations.to_value(),
        "limits": serde_json::to_value(doc.limits).unwrap_or(Value::Null),
        "exec": {"binary": binary},
        "updated": doc.updated,
    })
}

fn code_text(code: &Code) -> String {
    match code {
        Code::Text(text) => text.clone(),
        Code::Binary(bytes) => base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

async fn list_actions(
    state: &State,
    call: &Call,
    ns: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let query = ListQuery::parse(&call.query, "actions")?;
    // The whole namespace (the local store scans it anyway), most recently updated first, as the
    // entities view orders it; then skip and limit.
    let mut docs = state
        .backend
        .list_actions(ns, 0, usize::MAX)
        .await
        .map_err(store_error)?;
    if query.count {
        return Ok(json_response(
            StatusCode::OK,
            &json!({"actions": docs.len().saturating_sub(query.skip)}),
        ));
    }
    docs.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.name.cmp(&b.name)));
    let list: Vec<Value> = docs
        .iter()
        .skip(query.skip)
        .take(query.limit)
        .map(action_summary)
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(list)))
}

async fn get_action(
    state: &State,
    call: &Call,
    ns: &str,
    name: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let with_code = match call.query("code") {
        Some(value) => validate::boolean("code", value)?,
        None => true,
    };
    let action = state
        .backend
        .get_action(&format!("{ns}/{name}"), with_code)
        .await
        .map_err(store_error)?
        .ok_or_else(ApiError::not_found)?;
    Ok(json_response(
        StatusCode::OK,
        &action_json(&action, with_code),
    ))
}

async fn delete_action(
    state: &State,
    ns: &str,
    name: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let doc_id = format!("{ns}/{name}");
    let action = state
        .backend
        .get_action(&doc_id, true)
        .await
        .map_err(store_error)?
        .ok_or_else(ApiError::not_found)?;
    state
        .backend
        .delete_action(&doc_id, action.document.rev.as_deref())
        .await
        .map_err(store_error)?;
    Ok(json_response(StatusCode::OK, &action_json(&action, true)))
}

/// A PUT body (`WhiskActionPut`): every field optional.
#[derive(Debug, Default)]
struct ActionPut {
    exec: Option<(Exec, Option<Code>)>,
    parameters: Option<Vec<Parameter>>,
    limits: Option<LimitsPut>,
    version: Option<String>,
    publish: Option<bool>,
    annotations: Option<Vec<(String, Value)>>,
    del_annotations: Option<Vec<String>>,
}

fn malformed(reason: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(messages::malformed_content(&reason.to_string()))
}

/// Reads a PUT body in the controller's order: the exec, parameters and annotations and their sizes
/// first (`LimitedWhiskEntityPut`, 413), then the rest, then the limits (400).
fn parse_action_put(kinds: &KindSet, call: &Call) -> Result<ActionPut, ApiError> {
    let Some(body) = json_object_body(&call.headers, &call.body)? else {
        return Err(malformed("Object expected"));
    };
    let mut put = ActionPut::default();
    if let Some(exec) = body.get("exec").filter(|v| !v.is_null()) {
        put.exec = Some(parse_exec(kinds, exec)?);
    }
    if let Some(parameters) = body.get("parameters").filter(|v| !v.is_null()) {
        put.parameters = Some(parse_parameters(parameters)?);
    }
    if let Some(annotations) = body.get("annotations").filter(|v| !v.is_null()) {
        put.annotations = Some(
            parse_parameters(annotations)?
                .into_iter()
                .map(|p| (p.key, p.value))
                .collect(),
        );
    }
    if let Some((exec, _)) = &put.exec {
        let size = exec_size(exec);
        if size > validate::MAX_EXEC_BYTES {
            return Err(ApiError::too_big("exec", size, validate::MAX_EXEC_BYTES));
        }
    }
    if let Some(parameters) = &put.parameters {
        let pairs: Vec<(String, Value)> = parameters
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        validate::check_parameters_size("parameters", &pairs)?;
    }
    if let Some(annotations) = &put.annotations {
        validate::check_parameters_size("annotations", annotations)?;
    }
    if let Some(version) = body.get("version").filter(|v| !v.is_null()) {
        let text = version
            .as_str()
            .ok_or_else(|| malformed("version must be a string"))?;
        put.version =
            Some(semver(text).ok_or_else(|| malformed(format!("bad semantic version: {text}")))?);
    }
    if let Some(publish) = body.get("publish").filter(|v| !v.is_null()) {
        put.publish = Some(
            publish
                .as_bool()
                .ok_or_else(|| malformed("publish must be a boolean"))?,
        );
    }
    if let Some(del) = body.get("delAnnotations").filter(|v| !v.is_null()) {
        let names: Vec<String> = serde_json::from_value(del.clone())
            .map_err(|_| malformed("delAnnotations must be an array of strings"))?;
        put.del_annotations = Some(names);
    }
    if let Some(limits) = body.get("limits").filter(|v| !v.is_null()) {
        put.limits = Some(LimitsPut::parse(limits)?);
    }
    Ok(put)
}

/// `Exec.size`: the code's bytes plus the entry point's (and the image's, for blackbox).
fn exec_size(exec: &Exec) -> u64 {
    let code = |source: &CodeSource| match source {
        CodeSource::Inline(text) => text.len() as u64,
        CodeSource::Attachment(_) => 0,
    };
    match exec {
        Exec::Code {
            code: source, main, ..
        } => code(source) + main.as_ref().map_or(0, |m| m.len() as u64),
        Exec::Blackbox {
            image,
            code: source,
            main,
            ..
        } => {
            image.len() as u64
                + source.as_ref().map_or(0, code)
                + main.as_ref().map_or(0, |m| m.len() as u64)
        }
        Exec::Sequence { components } => components.iter().map(|c| c.len() as u64).sum(),
    }
}

/// Reads a PUT `exec` as `Exec.serdes.read` does; the kind must be one this server runs.
fn parse_exec(kinds: &KindSet, value: &Value) -> Result<(Exec, Option<Code>), ApiError> {
    let Value::Object(map) = value else {
        return Err(malformed("'kind' must be a string defined in 'exec'"));
    };
    let kind = match map.get("kind") {
        Some(Value::String(kind)) => kind.trim().to_ascii_lowercase(),
        _ => return Err(malformed("'kind' must be a string defined in 'exec'")),
    };
    let main = match map.get("main") {
        None | Some(Value::Null) => None,
        Some(Value::String(main)) => Some(main.clone()),
        Some(_) => {
            return Err(malformed(format!(
                "if defined, 'main' be a string in 'exec' for '{kind}' actions"
            )));
        }
    };
    match kind.as_str() {
        "sequence" => Err(ApiError::bad_request(
            "Sequences are not supported by the standalone server.",
        )),
        "blackbox" => {
            let image = match map.get("image") {
                Some(Value::String(image)) if !image.trim().is_empty() => image.trim().to_string(),
                _ => {
                    return Err(malformed(
                        "'image' must be a string defined in 'exec' for 'blackbox' actions",
                    ));
                }
            };
            let code = match map.get("code") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) if text.trim().is_empty() => None,
                Some(Value::String(text)) => Some(text.clone()),
                Some(_) => {
                    return Err(malformed(
                        "'code' must be a string defined in 'exec' for 'blackbox' actions",
                    ));
                }
            };
            let binary = code.as_deref().is_some_and(document::is_base64);
            let decoded = code
                .as_deref()
                .map(|text| inline_code(text, binary))
                .transpose()?;
            Ok((
                Exec::Blackbox {
                    image,
                    code: code.map(CodeSource::Inline),
                    binary,
                    main,
                },
                decoded,
            ))
        }
        _ => {
            let Some(resolved) = kinds.resolve(&kind) else {
                return Err(malformed(kinds.invalid_runtime(&kind)));
            };
            let code = match map.get("code") {
                Some(Value::String(text)) => text.clone(),
                _ => {
                    return Err(malformed(format!(
                        "'code' must be a string or attachment object defined in 'exec' for '{kind}' actions"
                    )));
                }
            };
            let binary = document::is_base64(&code);
            let decoded = inline_code(&code, binary)?;
            Ok((
                Exec::Code {
                    kind: resolved,
                    code: CodeSource::Inline(code),
                    binary,
                    main,
                },
                Some(decoded),
            ))
        }
    }
}

fn inline_code(text: &str, binary: bool) -> Result<Code, ApiError> {
    document::decode_inline(text, binary).map_err(malformed)
}

/// Reads `[{"key","value","init"?}]` (parameters and annotations).
fn parse_parameters(value: &Value) -> Result<Vec<Parameter>, ApiError> {
    let Value::Array(items) = value else {
        return Err(malformed(
            "Expected JsArray as JsArray, but got a different type",
        ));
    };
    let mut out: Vec<Parameter> = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(map) = item else {
            return Err(malformed(
                "parameter must be an object with 'key' and 'value'",
            ));
        };
        let key = match map.get("key") {
            Some(Value::String(key)) if !key.is_empty() => key.clone(),
            _ => return Err(malformed("parameter key must be a non-empty string")),
        };
        let value = map.get("value").cloned().unwrap_or(Value::Null);
        let init = match map.get("init") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(init)) => *init,
            Some(_) => return Err(malformed("parameter init must be a boolean")),
        };
        let mut parameter = Parameter::new(key, value);
        parameter.init = init;
        // A later duplicate key wins, as building OpenWhisk's parameter map does.
        out.retain(|p| p.key != parameter.key);
        out.push(parameter);
    }
    Ok(out)
}

/// A `major.minor.patch` version, normalised.
fn semver(text: &str) -> Option<String> {
    let parts: Vec<u64> = text
        .trim()
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [major] => Some(format!("{major}.0.0")),
        [major, minor] => Some(format!("{major}.{minor}.0")),
        [major, minor, patch] => Some(format!("{major}.{minor}.{patch}")),
        _ => None,
    }
}

/// `version.upPatch`.
fn up_patch(version: &str) -> String {
    match semver(version).as_deref().map(|v| {
        v.split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    }) {
        Some(parts) if parts.len() == 3 => format!("{}.{}.{}", parts[0], parts[1], parts[2] + 1),
        _ => document::DEFAULT_VERSION.to_string(),
    }
}

async fn put_action(
    state: &State,
    call: &Call,
    ns: &str,
    name: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let overwrite = call.flag("overwrite")?;
    let put = parse_action_put(&state.kinds, call)?;
    let doc_id = format!("{ns}/{name}");
    let existing = state
        .backend
        .get_action(&doc_id, true)
        .await
        .map_err(store_error)?;
    let action = match existing {
        Some(_) if !overwrite => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                messages::RESOURCE_EXISTS,
            ));
        }
        Some(old) => update_action(put, old),
        None => create_action(put, ns, name)?,
    };
    let stored = state
        .backend
        .put_action(action)
        .await
        .map_err(store_error)?;
    Ok(json_response(StatusCode::OK, &action_json(&stored, true)))
}

fn create_action(put: ActionPut, ns: &str, name: &str) -> Result<StoredAction, ApiError> {
    let Some((exec, code)) = put.exec else {
        return Err(ApiError::bad_request("exec undefined"));
    };
    let mut document = ActionDocument::new(ns, name, exec);
    document.parameters = put.parameters.unwrap_or_default();
    document.limits = put.limits.unwrap_or_default().create();
    document.version = put
        .version
        .unwrap_or_else(|| document::DEFAULT_VERSION.to_string());
    document.publish = put.publish.unwrap_or(false);
    let mut annotations = Annotations(put.annotations.unwrap_or_default());
    // Added on create only (`amendAnnotations`), so that old actions keep their behaviour.
    if annotations.get("provide-api-key").is_none() {
        annotations.set("provide-api-key", false);
    }
    annotations.set("exec", document.exec.kind().to_string());
    document.annotations = annotations;
    Ok(StoredAction { document, code })
}

fn update_action(put: ActionPut, old: StoredAction) -> StoredAction {
    let StoredAction {
        mut document,
        code: old_code,
    } = old;
    let code = match put.exec {
        Some((exec, code)) => {
            document.exec = exec;
            code
        }
        None => old_code,
    };
    if let Some(parameters) = put.parameters {
        document.parameters = parameters;
    }
    if let Some(limits) = put.limits {
        document.limits = limits.update(document.limits);
    }
    document.version = match put.version {
        Some(version) => version,
        None => up_patch(&document.version),
    };
    if let Some(publish) = put.publish {
        document.publish = publish;
    }
    let mut annotations = document.annotations.clone();
    if let Some(deleted) = &put.del_annotations {
        annotations.0.retain(|(key, _)| !deleted.contains(key));
    }
    for (key, value) in put.annotations.unwrap_or_default() {
        annotations.set(key, value);
    }
    annotations.set("exec", document.exec.kind().to_string());
    document.annotations = annotations;
    document.updated = epoch_millis(SystemTime::now());
    StoredAction { document, code }
}

// ------------------------------------------------------------------------------------------------
// Invoke

/// Builds the activation message the controller would have sent (`invokeSimpleAction`): the action's
/// parameters merged with the payload (payload wins), init parameter names, the caller's identity.
fn activation_message(
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
fn check_final<'a>(
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

async fn invoke(
    state: &State,
    call: &Call,
    user: &Identity,
    ns: &str,
    name: &str,
    tid: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    validate::check_payload_size(content_length(&call.headers).unwrap_or(call.body.len() as u64))?;
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
    let action = state
        .backend
        .get_action(&format!("{ns}/{name}"), false)
        .await
        .map_err(store_error)?
        .ok_or_else(ApiError::not_found)?;
    if let Some(payload) = &payload {
        check_final(&action.document, payload.keys())?;
    }
    let message = activation_message(user, &action.document, payload, blocking, tid);
    let id = message.activation_id.clone();
    tracing::debug!(activation_id = %id, blocking, "invoke");
    if !blocking {
        let backend = Arc::clone(&state.backend);
        tokio::spawn(async move {
            backend.activate(message).await;
        });
        return Ok(accepted(&id));
    }
    match run_blocking(state, message, wait).await {
        Ok(activation) => Ok(blocking_response(&activation, result_only)),
        Err(id) => Ok(accepted(&id)),
    }
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

// ------------------------------------------------------------------------------------------------
// Activations

enum ActivationView {
    Whole,
    Logs,
    Result,
}

/// The summary a list shows without `docs=true` (the `activations` view of the database).
fn activation_summary(activation: &WhiskActivation) -> Value {
    let mut map = Map::new();
    map.insert(
        "namespace".into(),
        Value::String(activation.namespace.clone()),
    );
    map.insert("name".into(), Value::String(activation.name.clone()));
    map.insert("version".into(), Value::String(activation.version.clone()));
    map.insert("publish".into(), Value::Bool(activation.publish));
    map.insert("annotations".into(), activation.annotations.to_value());
    map.insert(
        "activationId".into(),
        Value::String(activation.activation_id.to_string()),
    );
    map.insert("start".into(), Value::from(activation.start));
    if let Some(cause) = &activation.cause {
        map.insert("cause".into(), Value::String(cause.to_string()));
    }
    if activation.end != 0 {
        map.insert("end".into(), Value::from(activation.end));
        map.insert(
            "duration".into(),
            Value::from(
                activation
                    .duration
                    .unwrap_or(activation.end.saturating_sub(activation.start)),
            ),
        );
        map.insert(
            "statusCode".into(),
            Value::from(activation.response.status.code()),
        );
    }
    Value::Object(map)
}

async fn list_activations(
    state: &State,
    call: &Call,
    ns: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let query = ListQuery::parse(&call.query, "activations")?;
    let filter = ActivationFilter {
        namespace: ns.to_string(),
        name: query.name.clone(),
        since: query.since,
        upto: query.upto,
        skip: query.skip,
        limit: if query.count { usize::MAX } else { query.limit },
    };
    let activations = state
        .backend
        .list_activations(&filter)
        .await
        .map_err(store_error)?;
    if query.count {
        return Ok(json_response(
            StatusCode::OK,
            &json!({"activations": activations.len()}),
        ));
    }
    let list: Vec<Value> = activations
        .iter()
        .map(|a| {
            if query.docs {
                a.to_extended_json()
            } else {
                activation_summary(a)
            }
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(list)))
}

async fn get_activation(
    state: &State,
    ns: &str,
    id: &str,
    view: ActivationView,
) -> Result<Response<ResponseBody>, ApiError> {
    let activation = state
        .backend
        .get_activation(ns, id)
        .await
        .map_err(store_error)?
        .ok_or_else(ApiError::not_found)?;
    let body = match view {
        ActivationView::Whole => activation.to_extended_json(),
        ActivationView::Logs => json!({"logs": activation.logs}),
        ActivationView::Result => activation.response.to_extended_json(),
    };
    Ok(json_response(StatusCode::OK, &body))
}

// ------------------------------------------------------------------------------------------------
// Web actions

async fn web_action(
    state: &State,
    call: &Call,
    tid: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let seg: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    // /api/v1/web/{ns}/{package}/{name}[/rest...]
    let [_, _, _, ns, package, name_ext, rest @ ..] = seg.as_slice() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            messages::ROUTE_NOT_FOUND,
        ));
    };
    if !validate::is_entity_name(ns) || !validate::is_entity_name(package) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            messages::ROUTE_NOT_FOUND,
        ));
    }
    let (name, extension) = Extension::split(name_ext);
    if !validate::is_entity_name(name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            messages::ROUTE_NOT_FOUND,
        ));
    }
    // A request with valid credentials is the caller's; invalid or none is anonymous.
    let caller = state.subjects.authenticate(&call.headers).ok().cloned();
    let owner = state
        .subjects
        .by_namespace(ns)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    if *package != "default" {
        return Err(ApiError::not_found());
    }
    let action = state
        .backend
        .get_action(&format!("{ns}/{name}"), false)
        .await
        .map_err(store_error)?
        .ok_or_else(ApiError::not_found)?;
    let annotations = &action.document.annotations;
    if !annotations.get("web-export").is_some_and(is_truthy) {
        return Err(ApiError::not_found());
    }
    validate::check_payload_size(content_length(&call.headers).unwrap_or(call.body.len() as u64))?;
    if let Some(required) = annotations.get("require-whisk-auth") {
        let header = call
            .headers
            .get("x-require-whisk-auth")
            .and_then(|v| v.to_str().ok());
        let allowed = match required {
            Value::String(secret) => header == Some(secret.as_str()),
            Value::Number(secret) => header == Some(secret.to_string().as_str()),
            Value::Bool(true) => caller.is_some(),
            Value::Bool(false) => true,
            _ => false,
        };
        if !allowed {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                messages::AUTH_INVALID,
            ));
        }
    }
    // Unless the action answers OPTIONS itself, the server answers preflights and adds the CORS
    // headers (`web-custom-options`).
    let custom_options = annotations.get("web-custom-options").is_some_and(is_truthy);
    let preflight = call.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS);
    if !custom_options && call.method == Method::OPTIONS {
        let mut response = empty_ok();
        cors(&mut response, WEB_CORS_METHODS, preflight);
        return Ok(response);
    }
    let raw = annotations.get("raw-http").is_some_and(is_truthy);
    let path = if rest.is_empty() {
        String::new()
    } else {
        format!("/{}", rest.join("/"))
    };
    let request = WebRequest {
        method: &call.method,
        headers: &call.headers,
        path: &path,
        raw_query: &call.raw_query,
        query: &call.query,
        body: &call.body,
        user: caller.as_ref().map(|c| c.namespace.name.as_str()),
    };
    let args = web::arguments(&request, raw)?;
    check_final(&action.document, args.keys())?;
    let message = activation_message(&owner, &action.document, Some(args), true, tid);
    let activation = match run_blocking(state, message, state.max_blocking_wait).await {
        Ok(activation) => activation,
        Err(id) => {
            let mut response =
                ApiError::new(StatusCode::ACCEPTED, "Response not yet ready.").into_response(tid);
            if let Ok(value) = HeaderValue::from_str(id.as_str()) {
                response.headers_mut().insert(ACTIVATION_ID_HEADER, value);
            }
            return Ok(response);
        }
    };
    let projected = match activation.response.status {
        Status::Success => activation.response.result.clone(),
        Status::ApplicationError => activation
            .response
            .result
            .as_ref()
            .and_then(|r| r.get("error"))
            .cloned(),
        _ => return Err(ApiError::bad_request(messages::ERROR_PROCESSING_REQUEST)),
    };
    let Some(projected) = projected else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            messages::PROPERTY_NOT_FOUND,
        ));
    };
    let mut response = web::respond(extension, projected)?;
    if let Ok(value) = HeaderValue::from_str(activation.activation_id.as_str()) {
        response.headers_mut().insert(ACTIVATION_ID_HEADER, value);
    }
    if !custom_options {
        cors(&mut response, WEB_CORS_METHODS, preflight);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_kind_set_resolves_defaults_and_wasm() {
        let kinds = KindSet::new([
            ("nodejs".to_string(), "nodejs:20".to_string(), true),
            ("nodejs".to_string(), "nodejs:18".to_string(), false),
        ]);
        assert_eq!(
            kinds.resolve("nodejs:default").as_deref(),
            Some("nodejs:20")
        );
        assert_eq!(kinds.resolve("wasm:wasip1").as_deref(), Some("wasm:wasip1"));
        assert_eq!(
            kinds.resolve("wasm:default").as_deref(),
            Some("wasm:wasip1")
        );
        assert_eq!(kinds.resolve("python:3"), None);
    }

    #[test]
    fn test_versions_bump_patch_on_update() {
        assert_eq!(up_patch("0.0.1"), "0.0.2");
        assert_eq!(semver("1.2").as_deref(), Some("1.2.0"));
        assert_eq!(semver("x"), None);
    }

    #[test]
    fn test_paths_are_percent_decoded() {
        assert_eq!(
            split_path("/api/v1/namespaces/_/actions/a%20b/").unwrap(),
            vec!["api", "v1", "namespaces", "_", "actions", "a b"]
        );
    }
}
