//! How an action name resolves to what runs, shared by direct invokes of actions in packages
//! (`package_actions`) and sequence components ([`super::sequences`]): a name's path
//! (`/ns/[pkg/]name`, [`ActionPath`]), a package through its binding with the parameters merged
//! package < binding (`WhiskPackage.resolveBinding`), and the action under them with its own
//! parameters on top (`WhiskActionMetaData.resolveActionAndMergeParameters`).

use std::fmt;

use serde_json::Value;

use crate::document::{ACTION_ENTITY_TYPE, ActionDocument, Parameter};
use crate::standalone::api::State;
use crate::standalone::api::packages::{Lookup, PackageDocument, lookup, merge};
use crate::standalone::api::request::store_error;
use crate::standalone::http::ApiError;
use crate::standalone::validate;

/// The namespace that stands for the caller's own (`EntityPath.DEFAULT`).
const DEFAULT_NAMESPACE: &str = "_";

/// A fully qualified action name, `/ns/name` or `/ns/pkg/name` (`FullyQualifiedEntityName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ActionPath {
    /// The namespace (`_` until resolved).
    pub(super) namespace: String,
    /// The package, when the action is in one.
    pub(super) package: Option<String>,
    /// The action's name.
    pub(super) name: String,
}

impl ActionPath {
    /// Reads `[/]ns/[pkg/]name` as `EntityPath(...).toFullyQualifiedEntityName` does: empty
    /// segments ignored, every segment an entity name, at least a namespace and a name. `Err` is
    /// the reason (as OpenWhisk words it); a deeper path is refused too (no entity lives there).
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty()).collect();
        if let Some(bad) = parts.iter().find(|p| !validate::is_entity_name(p)) {
            return Err(format!("path contains invalid parts {bad}"));
        }
        match parts.as_slice() {
            [namespace, name] => Ok(Self {
                namespace: namespace.to_string(),
                package: None,
                name: name.to_string(),
            }),
            [namespace, package, name] => Ok(Self {
                namespace: namespace.to_string(),
                package: Some(package.to_string()),
                name: name.to_string(),
            }),
            [] | [_] => Err(format!(
                "requirement failed: {}",
                "The fully qualified name of the entity must contain at least the namespace and the name of the entity."
            )),
            _ => Err("fully qualified name malformed".to_string()),
        }
    }

    /// `_` as the namespace becomes `own` (`EntityPath.resolveNamespace`).
    pub(super) fn resolve_namespace(mut self, own: &str) -> Self {
        if self.namespace == DEFAULT_NAMESPACE {
            self.namespace = own.to_string();
        }
        self
    }

    /// The path without the name: `ns` or `ns/pkg`.
    pub(super) fn path(&self) -> String {
        match &self.package {
            Some(package) => format!("{}/{package}", self.namespace),
            None => self.namespace.clone(),
        }
    }

    /// The document id, `ns/[pkg/]name`.
    pub(super) fn doc_id(&self) -> String {
        format!("{}/{}", self.path(), self.name)
    }
}

/// With the leading slash, as `exec.components` shows it (`qualifiedNameWithLeadingSlash`).
impl fmt::Display for ActionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.doc_id())
    }
}

/// A package as an action's path names it, through its binding when it is one.
#[derive(Debug)]
pub(super) struct ResolvedPackage {
    /// The package that holds the actions (a binding's is the package it binds).
    pub(super) package: PackageDocument,
    /// The package's parameters with the binding's on top.
    pub(super) parameters: Vec<Parameter>,
    /// The binding's document id when the name is a binding (the `binding` annotation of the
    /// activations through it).
    pub(super) binding: Option<String>,
}

/// Resolves a package document through its binding (`WhiskPackage.resolveBinding` with merged
/// parameters). `None` when a binding's package is missing or is not a package.
pub(super) async fn resolve_binding(
    state: &State,
    found: PackageDocument,
) -> Result<Option<ResolvedPackage>, ApiError> {
    let Some(binding) = &found.binding else {
        let parameters = found.parameters.clone();
        return Ok(Some(ResolvedPackage {
            package: found,
            parameters,
            binding: None,
        }));
    };
    match lookup(state, &binding.doc_id()).await? {
        Lookup::Package(bound) if bound.binding.is_none() => {
            let parameters = merge(&bound.parameters, &found.parameters);
            Ok(Some(ResolvedPackage {
                package: *bound,
                parameters,
                binding: Some(found.doc_id()),
            }))
        }
        _ => Ok(None),
    }
}

/// An action as an invoke runs it: its document with the parameters of its package (and binding)
/// under its own, and the binding it was reached through.
#[derive(Debug, Clone)]
pub(super) struct ResolvedAction {
    /// The document (its `namespace` the package that holds it), parameters merged.
    pub(super) document: ActionDocument,
    /// The binding's document id, when reached through one.
    pub(super) binding: Option<String>,
}

/// The action `name` of `package` (already resolved), parameters merged package < binding <
/// action; `None` when there is no such action.
pub(super) async fn action_in(
    state: &State,
    package: &ResolvedPackage,
    name: &str,
) -> Result<Option<ResolvedAction>, ApiError> {
    let doc_id = format!("{}/{name}", package.package.doc_id());
    let found = state
        .backend
        .get_action(&doc_id, false)
        .await
        .map_err(store_error)?;
    Ok(found.map(|action| {
        let mut document = action.document;
        document.parameters = merge(&package.parameters, &document.parameters);
        ResolvedAction {
            document,
            binding: package.binding.clone(),
        }
    }))
}

/// `resolveActionAndMergeParameters`: the action a (namespace-resolved) path names, through its
/// package and binding, parameters merged; `None` when the package, the bound package or the
/// action does not exist. No entitlement is checked here.
pub(super) async fn resolve_action(
    state: &State,
    path: &ActionPath,
) -> Result<Option<ResolvedAction>, ApiError> {
    let Some(package) = &path.package else {
        let found = state
            .backend
            .get_action(&path.doc_id(), false)
            .await
            .map_err(store_error)?;
        return Ok(found.map(|action| ResolvedAction {
            document: action.document,
            binding: None,
        }));
    };
    let found = match lookup(state, &format!("{}/{package}", path.namespace)).await? {
        Lookup::Package(found) => *found,
        Lookup::Missing | Lookup::Other => return Ok(None),
    };
    match resolve_binding(state, found).await? {
        Some(resolved) => action_in(state, &resolved, &path.name).await,
        None => Ok(None),
    }
}

/// The document id the path names once a binding is replaced by its package
/// (`WhiskAction.resolveAction`), and the action document stored there, read from the entity
/// documents (so that a package view of the backend does not redirect it). `None` when the package
/// or the action is missing.
pub(super) async fn stored_action(
    state: &State,
    path: &ActionPath,
) -> Result<Option<(String, ActionDocument)>, ApiError> {
    let doc_id = match &path.package {
        None => path.doc_id(),
        Some(package) => {
            let found = match lookup(state, &format!("{}/{package}", path.namespace)).await? {
                Lookup::Package(found) => *found,
                Lookup::Missing | Lookup::Other => return Ok(None),
            };
            let Some(resolved) = resolve_binding(state, found).await? else {
                return Ok(None);
            };
            format!("{}/{}", resolved.package.doc_id(), path.name)
        }
    };
    let Some(value) = state
        .backend
        .get_entity(&doc_id)
        .await
        .map_err(store_error)?
    else {
        return Ok(None);
    };
    if value.get("entityType").and_then(Value::as_str) != Some(ACTION_ENTITY_TYPE) {
        return Ok(None);
    }
    match ActionDocument::from_value(value) {
        Ok(document) => Ok(Some((doc_id, document))),
        Err(error) => {
            tracing::error!(%doc_id, %error, "unreadable action document");
            Err(ApiError::internal())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_action_paths_parse_with_or_without_package() {
        let plain = ActionPath::parse("/_/echo")
            .unwrap()
            .resolve_namespace("guest");
        assert_eq!(plain.to_string(), "/guest/echo");
        assert_eq!(plain.path(), "guest");
        let packaged = ActionPath::parse("other/utils/hello").unwrap();
        assert_eq!(packaged.package.as_deref(), Some("utils"));
        assert_eq!(packaged.doc_id(), "other/utils/hello");
        assert!(ActionPath::parse("/echo").is_err());
        assert!(ActionPath::parse("/a/b/c/d").is_err());
        assert!(ActionPath::parse("/a/b c!/d").is_err());
    }
}
