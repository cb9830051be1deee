//! Actions inside packages, `/api/v1/namespaces/{ns}/actions/{pkg}/{name}`: create, update, read,
//! delete and invoke, through the package itself or through a binding of it.
//!
//! The action routes of [`super::actions`] do the work on the document `ns/pkg/name` (its
//! `namespace` is `ns/pkg`); this module decides what the package allows first, as the controller
//! does: the package must exist, a binding holds no actions of its own (PUT and DELETE refused),
//! another namespace's package may only be read and invoked when it is published. Reads and
//! invokes see the action resolved through the package: a binding's actions are its package's, and
//! the parameters are merged package < binding < action (< payload, at invoke).

use std::sync::Arc;

use async_trait::async_trait;
use hyper::StatusCode;
use serde_json::Value;

use super::State;
use super::actions;
use super::invoke::invoke_in_package;
use super::packages::{Lookup, lookup, merge};
use super::request::{Reply, Routed, method_not_allowed};
use super::resolve::resolve_binding;
use crate::document::{ActionDocument, Parameter};
use crate::message::ActivationMessage;
use crate::record::WhiskActivation;
use crate::standalone::backend::{Backend, BackendError, StoredAction};
use crate::standalone::http::{ApiError, messages};
use crate::standalone::validate;
use crate::store::ActivationQuery;

/// The controller's text for PUT and DELETE through a binding (`Messages.notAllowedOnBinding`).
const NOT_ALLOWED_ON_BINDING: &str = "Operation not permitted on package binding.";

/// Routes `.../actions/{pkg}/{name}`.
pub(super) async fn route(routed: &Routed<'_>, ns: &str, package: &str, name: &str) -> Reply {
    let (state, call, user) = (routed.state, routed.call, routed.user);
    let own = user.namespace.name.as_str();
    let ns = validate::namespace(ns, own)?;
    let package = validate::entity_name(package)?;
    let name = validate::entity_name(name)?;
    let method = call.method.as_str();
    if !matches!(method, "GET" | "PUT" | "DELETE" | "POST") {
        return Err(method_not_allowed(&["GET", "PUT", "DELETE", "POST"]));
    }
    let owner = ns == own;
    let forbidden = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            messages::not_authorized(&format!("{ns}/{package}/{name}")),
        )
    };
    if !owner && matches!(method, "PUT" | "DELETE") {
        return Err(forbidden());
    }
    let package_id = format!("{ns}/{package}");
    // Another namespace's missing, private or binding package is 403, so as not to tell them apart.
    let found = match lookup(state, &package_id).await? {
        Lookup::Package(found) => found,
        Lookup::Missing | Lookup::Other if !owner => return Err(forbidden()),
        Lookup::Missing | Lookup::Other => return Err(ApiError::not_found()),
    };
    if !owner && (found.binding.is_some() || !found.publish) {
        return Err(forbidden());
    }
    let writes = matches!(method, "PUT" | "DELETE");
    if writes && found.binding.is_some() {
        return Err(ApiError::bad_request(NOT_ALLOWED_ON_BINDING));
    }
    // Resolve a binding to its package (which, as it was bound, is the caller's or published).
    let resolved = resolve_binding(state, *found)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if resolved.binding.is_some() && resolved.package.namespace != own && !resolved.package.publish
    {
        return Err(forbidden());
    }
    // An invoke runs the action as a sequence component of this name would run.
    if method == "POST" {
        return invoke_in_package(state, call, user, &resolved, &name, routed.tid).await;
    }
    let contents = resolved.package.doc_id();
    let parameters = resolved.parameters;
    // The action routes do the work on `{own}/{name}`, which the view maps into the package.
    let view = Arc::new(PackageView {
        inner: Arc::clone(&state.backend),
        asked: format!("{own}/{name}"),
        package: contents.clone(),
        resolved: format!("{contents}/{name}"),
        // Writes keep the action's own parameters; reads see the merged ones.
        parameters: (!writes).then_some(parameters),
    });
    let scoped = State {
        backend: view,
        ..state.clone()
    };
    let routed = Routed {
        state: &scoped,
        ..*routed
    };
    actions::route(&routed, "_", &[&name]).await
}

/// The backend as the action routes see it for one action in a package: the action they ask for
/// (`{own}/{name}`) is the one in the resolved package (a binding's is its package's), written
/// there with the package's path as its `namespace`; reads see the package's (and binding's)
/// parameters under the action's own. Invokes do not come here: they run the resolved action
/// through [`invoke_in_package`]. Everything else is the real backend's.
struct PackageView {
    inner: Arc<dyn Backend>,
    asked: String,
    package: String,
    resolved: String,
    parameters: Option<Vec<Parameter>>,
}

#[async_trait]
impl Backend for PackageView {
    async fn get_action(
        &self,
        doc_id: &str,
        with_code: bool,
    ) -> Result<Option<StoredAction>, BackendError> {
        if doc_id != self.asked {
            return self.inner.get_action(doc_id, with_code).await;
        }
        let found = self.inner.get_action(&self.resolved, with_code).await?;
        Ok(found.map(|mut action| {
            if let Some(parameters) = &self.parameters {
                action.document.parameters = merge(parameters, &action.document.parameters);
            }
            action
        }))
    }

    async fn put_action(&self, mut action: StoredAction) -> Result<StoredAction, BackendError> {
        if action.document.doc_id() == self.asked {
            action.document.namespace = self.package.clone();
            // A new document's `_id` was set from its namespace before the view moved it.
            action.document.id = Some(self.resolved.clone());
        }
        self.inner.put_action(action).await
    }

    async fn delete_action(&self, doc_id: &str, rev: Option<&str>) -> Result<(), BackendError> {
        let doc_id = if doc_id == self.asked {
            self.resolved.as_str()
        } else {
            doc_id
        };
        self.inner.delete_action(doc_id, rev).await
    }

    async fn list_actions(
        &self,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<ActionDocument>, BackendError> {
        self.inner.list_actions(namespace, skip, limit).await
    }

    async fn activate(&self, message: ActivationMessage) -> WhiskActivation {
        self.inner.activate(message).await
    }

    async fn store_activation(&self, record: &WhiskActivation) -> Result<(), BackendError> {
        self.inner.store_activation(record).await
    }

    async fn get_activation(
        &self,
        namespace: &str,
        activation_id: &str,
    ) -> Result<Option<WhiskActivation>, BackendError> {
        self.inner.get_activation(namespace, activation_id).await
    }

    async fn list_activations(
        &self,
        query: &ActivationQuery,
    ) -> Result<Vec<WhiskActivation>, BackendError> {
        self.inner.list_activations(query).await
    }

    async fn get_entity(&self, doc_id: &str) -> Result<Option<Value>, BackendError> {
        self.inner.get_entity(doc_id).await
    }

    async fn put_entity(&self, doc_id: &str, document: Value) -> Result<Value, BackendError> {
        self.inner.put_entity(doc_id, document).await
    }

    async fn delete_entity(&self, doc_id: &str, rev: Option<&str>) -> Result<(), BackendError> {
        self.inner.delete_entity(doc_id, rev).await
    }

    async fn list_entities(
        &self,
        entity_type: &str,
        namespace: &str,
    ) -> Result<Vec<Value>, BackendError> {
        self.inner.list_entities(entity_type, namespace).await
    }
}
