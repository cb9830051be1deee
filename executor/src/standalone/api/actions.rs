//! The action routes, `/api/v1/namespaces/{ns}/actions[/{name}]`: list, get, create or update
//! (PUT, body read by [`super::action_put`]), delete, and invoke (POST, in [`super::invoke`]); the
//! action as the API shows it (`WhiskAction` JSON) and its list summary.

use std::time::SystemTime;

use base64::Engine as _;
use factory::Code;
use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::State;
use super::action_put::{ActionPut, parse_action_put, replaced, up_patch};
use super::invoke::invoke;
use super::request::{
    Call, EntityRoute, Reply, Routed, entity_route, existing_action, store_error,
};
use super::resolve::ActionPath;
use super::sequences;
use crate::document::{self, ActionDocument, Exec, Parameter};
use crate::record::{Annotations, epoch_millis};
use crate::standalone::backend::StoredAction;
use crate::standalone::http::{ApiError, json_response};
use crate::standalone::validate::{self, ListQuery};

/// Routes `/api/v1/namespaces/{ns}/actions/{rest}` (`rest` = what follows `actions`;
/// `{package}/{name}` is routed to `package_actions` before this).
pub(super) async fn route(routed: &Routed<'_>, ns: &str, rest: &[&str]) -> Reply {
    let (state, call) = (routed.state, routed.call);
    match entity_route(routed, ns, rest)? {
        EntityRoute::List(ns) => list_actions(state, call, &ns).await,
        EntityRoute::Get(action) => get_action(state, call, &action.ns, &action.name).await,
        EntityRoute::Put(action) => put_action(state, call, &action.ns, &action.name).await,
        EntityRoute::Delete(action) => delete_action(state, &action.ns, &action.name).await,
        EntityRoute::Post(action) => {
            invoke(
                state,
                call,
                routed.user,
                &action.ns,
                &action.name,
                routed.tid,
            )
            .await
        }
    }
}

/// The action as the API shows it (`WhiskAction` JSON): code as a string (base64 when binary),
/// or without code (`code=false`, and lists).
fn action_json(action: &StoredAction, with_code: bool) -> Value {
    let doc = &action.document;
    let exec = match &doc.exec {
        Exec::Code {
            kind, binary, main, ..
        } => code_exec(action, with_code, kind, None, *binary, main.as_deref()),
        Exec::Blackbox {
            image,
            binary,
            main,
            ..
        } => code_exec(
            action,
            with_code,
            "blackbox",
            Some(image),
            *binary,
            main.as_deref(),
        ),
        other @ Exec::Sequence { .. } => match serde_json::to_value(other) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
    };
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

/// The `exec` of a code or blackbox action as the API shows it (a blackbox with its `image`): its
/// code only when asked for and stored.
fn code_exec(
    action: &StoredAction,
    with_code: bool,
    kind: &str,
    image: Option<&String>,
    binary: bool,
    main: Option<&str>,
) -> Map<String, Value> {
    let mut exec = Map::new();
    exec.insert("kind".into(), Value::String(kind.to_string()));
    if let Some(image) = image {
        exec.insert("image".into(), Value::String(image.clone()));
    }
    if with_code && let Some(code) = &action.code {
        exec.insert("code".into(), Value::String(code_text(code)));
    }
    exec.insert("binary".into(), Value::Bool(binary));
    if let Some(main) = main {
        exec.insert("main".into(), Value::String(main.to_string()));
    }
    exec
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

async fn list_actions(state: &State, call: &Call, ns: &str) -> Reply {
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

async fn get_action(state: &State, call: &Call, ns: &str, name: &str) -> Reply {
    let with_code = match call.query("code") {
        Some(value) => validate::boolean("code", value)?,
        None => true,
    };
    let action = existing_action(state, ns, name, with_code).await?;
    Ok(json_response(
        StatusCode::OK,
        &action_json(&action, with_code),
    ))
}

async fn delete_action(state: &State, ns: &str, name: &str) -> Reply {
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

async fn put_action(state: &State, call: &Call, ns: &str, name: &str) -> Reply {
    let overwrite = call.flag("overwrite")?;
    let mut put = parse_action_put(&state.kinds, &state.limits, call)?;
    // A sequence's components are stored with `_` resolved (`WhiskActionPut.resolve`), and must
    // be readable by the caller before anything else is looked at.
    let components = match &mut put.exec {
        Some((exec, _)) => match sequences::sequence_components(exec, ns) {
            Some(resolved) => {
                *exec = Exec::Sequence {
                    components: resolved.iter().map(ActionPath::to_string).collect(),
                };
                sequences::entitle(state, ns, &resolved).await?;
                Some(resolved)
            }
            None => None,
        },
        None => None,
    };
    let doc_id = format!("{ns}/{name}");
    let existing = state
        .backend
        .get_action(&doc_id, true)
        .await
        .map_err(store_error)?;
    let existing = replaced(existing, overwrite)?;
    if let Some(components) = &components {
        // The package view puts `.../actions/{pkg}/{name}` here as `{ns}/{name}`; the cycle check
        // needs the real path, which the request's own path gives.
        let package = match call.segments.as_slice() {
            [_, _, _, _, _, package, _] => Some(package.clone()),
            _ => None,
        };
        let sequence = ActionPath {
            namespace: ns.to_string(),
            package,
            name: name.to_string(),
        };
        sequences::check_limits(state, ns, &sequence, components).await?;
    }
    let action = match existing {
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
    // A sequence's only parameter is its components (`makeWhiskAction`).
    document.parameters = match sequence_parameters(&document.exec) {
        Some(parameters) => parameters,
        None => put.parameters.unwrap_or_default(),
    };
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

/// The parameters a sequence is stored with: `_actions`, its components (`makeWhiskAction`).
fn sequence_parameters(exec: &Exec) -> Option<Vec<Parameter>> {
    let Exec::Sequence { components } = exec else {
        return None;
    };
    Some(vec![Parameter::new("_actions", json!(components))])
}

fn update_action(put: ActionPut, old: StoredAction) -> StoredAction {
    let StoredAction {
        mut document,
        code: old_code,
    } = old;
    // A sequence's parameters are its components; parameters do not leak from a sequence to the
    // action that replaces it, nor are they set on a sequence (`updateWhiskAction`).
    let was_sequence = matches!(document.exec, Exec::Sequence { .. });
    let code = match put.exec {
        Some((exec, code)) => {
            document.parameters = match (sequence_parameters(&exec), put.parameters) {
                (Some(parameters), _) => parameters,
                (None, Some(parameters)) => parameters,
                (None, None) if was_sequence => Vec::new(),
                (None, None) => document.parameters,
            };
            document.exec = exec;
            code
        }
        None => {
            if let Some(parameters) = put.parameters.filter(|_| !was_sequence) {
                document.parameters = parameters;
            }
            old_code
        }
    };
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
