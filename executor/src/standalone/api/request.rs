//! What every route shares about a request: the request as the handlers see it ([`Call`], body
//! read; [`Routed`] once authenticated), path decoding, the method and namespace checks (the routes
//! of a collection of the caller's own entities in [`entity_route`]), reading an action that must
//! exist, and how a backend failure is answered.

use bytes::Bytes;
use hyper::{Method, Response, StatusCode};

use super::State;
use crate::message::Identity;
use crate::standalone::backend::{BackendError, StoredAction};
use crate::standalone::http::{ApiError, ResponseBody, messages};
use crate::standalone::validate;

/// The parts of a request the handlers use, body read.
pub(super) struct Call {
    pub(super) method: Method,
    pub(super) headers: hyper::HeaderMap,
    pub(super) segments: Vec<String>,
    pub(super) raw_query: String,
    pub(super) query: Vec<(String, String)>,
    pub(super) body: Bytes,
}

impl Call {
    pub(super) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn flag(&self, name: &str) -> Result<bool, ApiError> {
        self.query(name)
            .map(|v| validate::boolean(name, v))
            .transpose()
            .map(|v| v.unwrap_or(false))
    }
}

/// Percent-decoded path segments, without empty ones from a trailing slash.
pub(super) fn split_path(path: &str) -> Result<Vec<String>, ApiError> {
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

/// What a route answers: a response, or the error OpenWhisk answers with.
pub(super) type Reply = Result<Response<ResponseBody>, ApiError>;

/// An authenticated request of the REST API as the collection routes take it: the state it is
/// served with, the request as read, the caller and the transaction id.
#[derive(Clone, Copy)]
pub(super) struct Routed<'a> {
    pub(super) state: &'a State,
    pub(super) call: &'a Call,
    pub(super) user: &'a Identity,
    pub(super) tid: &'a str,
}

/// One entity of the caller's own namespace, as its route names it (`_` resolved).
pub(super) struct EntityName {
    pub(super) ns: String,
    pub(super) name: String,
    /// Its document id, `{ns}/{name}`.
    pub(super) doc_id: String,
}

/// Where a request on a collection of the caller's own entities (actions, triggers, rules) goes:
/// the list, or one entity by method.
pub(super) enum EntityRoute {
    /// `GET .../{collection}`, with the namespace resolved.
    List(String),
    Get(EntityName),
    Put(EntityName),
    Delete(EntityName),
    Post(EntityName),
}

/// The methods an entity of [`entity_route`] answers.
const ENTITY_METHODS: &[&str] = &["GET", "PUT", "DELETE", "POST"];

/// Routes `.../{collection}/{rest}` of a collection of the caller's own entities, with the
/// controller's refusals in its order: the list is the caller's own namespace, GET only; an entity
/// is checked by [`own_entity`], then its method; deeper paths are no route.
pub(super) fn entity_route(
    routed: &Routed<'_>,
    segment: &str,
    rest: &[&str],
) -> Result<EntityRoute, ApiError> {
    match rest {
        [] => own_list(routed, segment).map(EntityRoute::List),
        [name] => {
            let (ns, name) = own_entity(routed.user, segment, name)?;
            let doc_id = format!("{ns}/{name}");
            let entity = EntityName { ns, name, doc_id };
            match routed.call.method.as_str() {
                "GET" => Ok(EntityRoute::Get(entity)),
                "PUT" => Ok(EntityRoute::Put(entity)),
                "DELETE" => Ok(EntityRoute::Delete(entity)),
                "POST" => Ok(EntityRoute::Post(entity)),
                _ => Err(method_not_allowed(ENTITY_METHODS)),
            }
        }
        _ => Err(ApiError::route_not_found()),
    }
}

/// The list route of a collection, `{ns}/{collection}`: the caller's own namespace (checked
/// first), GET only. Returns the namespace with `_` resolved.
pub(super) fn own_list(routed: &Routed<'_>, segment: &str) -> Result<String, ApiError> {
    let ns = own_namespace(routed.user, segment, None)?;
    only(&routed.call.method, &["GET"])?;
    Ok(ns)
}

pub(super) fn only(method: &Method, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&method.as_str()) {
        Ok(())
    } else {
        Err(method_not_allowed(allowed))
    }
}

pub(super) fn method_not_allowed(allowed: &[&str]) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        messages::method_not_allowed(allowed),
    )
}

/// Resolves `_` and checks the caller owns the namespace (403 otherwise, as the controller's
/// entitlement check answers for another namespace's private entities).
pub(super) fn own_namespace(
    user: &Identity,
    segment: &str,
    entity: Option<&str>,
) -> Result<String, ApiError> {
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

/// The `{ns}/{name}` of an entity route: the namespace checked, then the name, then the caller's
/// ownership of the namespace (the controller's order of refusals). Returns `(ns, name)` with `_`
/// resolved.
pub(super) fn own_entity(
    user: &Identity,
    segment: &str,
    name: &str,
) -> Result<(String, String), ApiError> {
    validate::namespace(segment, &user.namespace.name)?;
    let name = validate::entity_name(name)?;
    let ns = own_namespace(user, segment, Some(&name))?;
    Ok((ns, name))
}

/// A backend failure as the controller answers it: 409 for a lost update race, else a logged 500.
/// The action `{ns}/{name}` (with its code when `with_code`), or OpenWhisk's 404 when there is none.
pub(super) async fn existing_action(
    state: &State,
    ns: &str,
    name: &str,
    with_code: bool,
) -> Result<StoredAction, ApiError> {
    state
        .backend
        .get_action(&format!("{ns}/{name}"), with_code)
        .await
        .map_err(store_error)?
        .ok_or_else(ApiError::not_found)
}

pub(super) fn store_error(error: BackendError) -> ApiError {
    match error {
        BackendError::Conflict => ApiError::new(StatusCode::CONFLICT, messages::CONFLICT),
        BackendError::OtherCollection => ApiError::new(StatusCode::CONFLICT, messages::CONFORMANCE),
        BackendError::Store(reason) => {
            tracing::error!(%reason, "store failure");
            ApiError::internal()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_paths_are_percent_decoded() {
        assert_eq!(
            split_path("/api/v1/namespaces/_/actions/a%20b/").unwrap(),
            vec!["api", "v1", "namespaces", "_", "actions", "a b"]
        );
    }
}
