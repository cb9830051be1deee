//! The activation routes, `/api/v1/namespaces/{ns}/activations[/{id}[/logs|/result]]`: lists
//! (filtered with the store's [`ActivationQuery`], summaries or whole records, or a count) and one
//! record or a part of it.

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::State;
use super::request::{Call, Reply, Routed, only, own_list, own_namespace, store_error};
use crate::record::WhiskActivation;
use crate::standalone::http::{ApiError, json_response};
use crate::standalone::validate::{self, ListQuery};
use crate::store::ActivationQuery;

/// Routes `/api/v1/namespaces/{ns}/activations/{rest}` (`rest` = what follows `activations`).
pub(super) async fn route(routed: &Routed<'_>, ns: &str, rest: &[&str]) -> Reply {
    let (state, call, user) = (routed.state, routed.call, routed.user);
    match rest {
        [] => list_activations(state, call, &own_list(routed, ns)?).await,
        [id, part @ ..] => {
            let namespace = validate::namespace(ns, &user.namespace.name)?;
            only(&call.method, &["GET"])?;
            let id = validate::activation_id(id)?;
            let ns = own_namespace(user, &namespace, Some(&id))?;
            let view = match part {
                [] => ActivationView::Whole,
                ["logs"] => ActivationView::Logs,
                ["result"] => ActivationView::Result,
                _ => return Err(ApiError::route_not_found()),
            };
            get_activation(state, &ns, &id, view).await
        }
    }
}

/// Which part of an activation `GET .../activations/{id}[/logs|/result]` returns.
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

async fn list_activations(state: &State, call: &Call, ns: &str) -> Reply {
    let query = ListQuery::parse(&call.query, "activations")?;
    let filter = ActivationQuery {
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

async fn get_activation(state: &State, ns: &str, id: &str, view: ActivationView) -> Reply {
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
