//! The package routes, `/api/v1/namespaces/{ns}/packages[/{name}]`: list, get (with the package's
//! actions; a binding merged with the package it binds), create or update (PUT, with bindings),
//! and delete, with the controller's entitlement rules for packages of other namespaces (a
//! published package may be read and bound by anyone; anything else of another namespace is 403,
//! whether or not it exists, so that its existence does not leak).

use std::time::SystemTime;

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::State;
use super::action_put::{into_parameters, parse_action_put, replaced, up_patch};
use super::listing::{self, Listed};
use super::request::{Call, Reply, Routed, method_not_allowed, only, store_error};
use super::triggers::document::{Typed, delete_document, put_typed, read_typed};
use crate::document::{self, Parameter};
use crate::record::epoch_millis;
use crate::standalone::http::{ApiError, json_object_body, json_response, messages};
use crate::standalone::validate;

/// The `entityType` of package documents.
pub(super) const PACKAGE_ENTITY_TYPE: &str = "package";
/// Package names the controller refuses (`Packages.RESERVED_NAMES`).
const RESERVED_NAMES: &[&str] = &["default"];
/// The annotation the controller sets on a binding (`WhiskPackage.bindingFieldName`).
const BINDING_ANNOTATION: &str = "binding";

/// The controller's texts for packages (`Messages`).
mod text {
    pub(super) const BINDING_DOES_NOT_EXIST: &str =
        "Binding references a package that does not exist.";
    pub(super) const PACKAGE_CANNOT_BECOME_BINDING: &str =
        "Resource is a package and cannot be converted into a binding.";
    pub(super) const BINDING_CANNOT_REFERENCE_BINDING: &str =
        "Cannot bind to another package binding.";
    pub(super) const REQUESTED_BINDING_IS_NOT_VALID: &str =
        "Cannot bind to a resource that is not a package.";

    pub(super) fn package_name_is_reserved(name: &str) -> String {
        format!("Package name '{name}' is reserved.")
    }

    pub(super) fn circular_reference(name: &str) -> String {
        format!("Package binding '{name}' contains a circular reference.")
    }

    pub(super) fn package_not_empty(count: usize) -> String {
        let noun = if count == 1 { "entity" } else { "entities" };
        format!(
            "Package not empty (contains {count} {noun}). Set force param or delete package contents."
        )
    }
}

/// What a binding refers to: the bound package's namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Binding {
    pub(super) namespace: String,
    pub(super) name: String,
}

impl Binding {
    pub(super) fn doc_id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A package document as stored (`WhiskPackage` with `_id`, `_rev` and `entityType`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PackageDocument {
    #[serde(rename = "_rev", default, skip_serializing_if = "Option::is_none")]
    pub(super) rev: Option<String>,
    #[serde(rename = "entityType")]
    entity_type: String,
    pub(super) namespace: String,
    pub(super) name: String,
    /// `{}` for a package, `{"namespace","name"}` for a binding.
    #[serde(with = "binding_field")]
    pub(super) binding: Option<Binding>,
    #[serde(default)]
    pub(super) parameters: Vec<Parameter>,
    pub(super) version: String,
    #[serde(default)]
    pub(super) publish: bool,
    #[serde(default)]
    pub(super) annotations: Vec<Parameter>,
    #[serde(default)]
    pub(super) updated: u64,
}

/// `Binding.optionalBindingSerializer`: an absent binding is the empty object.
mod binding_field {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    use super::Binding;

    pub(super) fn serialize<S: Serializer>(
        binding: &Option<Binding>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match binding {
            Some(binding) => binding.serialize(serializer),
            None => serde_json::Map::new().serialize(serializer),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Binding>, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match value {
            Value::Object(map) if map.is_empty() => Ok(None),
            Value::Null => Ok(None),
            other => serde_json::from_value(other)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl PackageDocument {
    pub(super) fn doc_id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The package as the API shows it (`WhiskPackage.serdes`).
    fn to_json(&self) -> Value {
        json!({
            "namespace": self.namespace,
            "name": self.name,
            "binding": self.binding.as_ref().map_or_else(|| json!({}), |b| json!(b)),
            "parameters": self.parameters,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "updated": self.updated,
        })
    }
}

impl Listed for PackageDocument {
    const COLLECTION: &'static str = "packages";
    const ENTITY_TYPE: &'static str = PACKAGE_ENTITY_TYPE;

    fn order(&self) -> (u64, &str) {
        (self.updated, &self.name)
    }

    /// The list entry (`summaryAsJson`): no parameters, `binding` false for a package.
    fn summary(&self) -> Value {
        let mut summary = listing::summary_fields(self);
        let binding = self
            .binding
            .as_ref()
            .map_or(Value::Bool(false), |b| json!(b));
        summary.insert("binding".into(), binding);
        Value::Object(summary)
    }
}

/// What a package's document id holds.
pub(super) enum Lookup {
    /// Nothing.
    Missing,
    /// An entity of another collection (an action).
    Other,
    /// A package or binding (boxed: the other variants are empty).
    Package(Box<PackageDocument>),
}

/// Reads the document `doc_id` as a package.
pub(super) async fn lookup(state: &State, doc_id: &str) -> Result<Lookup, ApiError> {
    match read_typed(state, doc_id, PACKAGE_ENTITY_TYPE).await? {
        Typed::Missing => Ok(Lookup::Missing),
        Typed::Other => Ok(Lookup::Other),
        Typed::Corrupt => Err(ApiError::internal()),
        Typed::Found(package) => Ok(Lookup::Package(Box::new(package))),
    }
}

/// The package `doc_id`: `Ok(None)` when missing, 409 (`conformanceMessage`) when the name is
/// taken by an entity of another collection.
pub(super) async fn read_package(
    state: &State,
    doc_id: &str,
) -> Result<Option<PackageDocument>, ApiError> {
    match lookup(state, doc_id).await? {
        Lookup::Missing => Ok(None),
        Lookup::Other => Err(ApiError::new(StatusCode::CONFLICT, messages::CONFORMANCE)),
        Lookup::Package(package) => Ok(Some(*package)),
    }
}

/// Routes `/api/v1/namespaces/{ns}/packages/{rest}` (`rest` = what follows `packages`).
pub(super) async fn route(routed: &Routed<'_>, ns: &str, rest: &[&str]) -> Reply {
    let (state, call, user) = (routed.state, routed.call, routed.user);
    let own = user.namespace.name.as_str();
    match rest {
        [] => {
            let ns = validate::namespace(ns, own)?;
            only(&call.method, &["GET"])?;
            list_packages(state, call, &ns, ns == own).await
        }
        [name] => {
            let ns = validate::namespace(ns, own)?;
            let name = validate::entity_name(name)?;
            let forbidden = || {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    messages::not_authorized(&format!("{ns}/{name}")),
                )
            };
            match call.method.as_str() {
                "GET" => get_package(state, own, &ns, &name).await,
                "PUT" if ns == own => put_package(state, call, own, &ns, &name).await,
                "DELETE" if ns == own => delete_package(state, call, &ns, &name).await,
                "PUT" | "DELETE" => Err(forbidden()),
                _ => Err(method_not_allowed(&["GET", "PUT", "DELETE"])),
            }
        }
        _ => Err(ApiError::route_not_found()),
    }
}

/// Another namespace's listing is its published packages, bindings left out (the
/// `packages-public` view).
async fn list_packages(state: &State, call: &Call, ns: &str, owner: bool) -> Reply {
    let visible = |p: &PackageDocument| owner || (p.publish && p.binding.is_none());
    listing::list_where(state, call, ns, visible).await
}

/// Why a READ of a package is refused (`PackageCollection.checkPackageReadPermission`).
enum ReadDenied {
    /// The caller's own package does not exist.
    Missing,
    /// The caller's own name is an entity of another collection.
    NotAPackage,
    /// Not the caller's, or not published, or a binding of another namespace.
    Forbidden,
    /// A binding that refers to itself.
    Circular(String),
    /// The store failed.
    Failed(ApiError),
}

/// May `own` read the package `ns/name`? A package must be the caller's or published; a binding
/// must be the caller's and bind a package the caller may read. Missing or foreign entities of
/// another namespace are [`ReadDenied::Forbidden`], never "missing".
async fn check_read(
    state: &State,
    own: &str,
    ns: &str,
    name: &str,
) -> Result<PackageDocument, ReadDenied> {
    let owner = ns == own;
    let doc_id = format!("{ns}/{name}");
    let package = match lookup(state, &doc_id).await.map_err(ReadDenied::Failed)? {
        Lookup::Package(package) => *package,
        Lookup::Missing if owner => return Err(ReadDenied::Missing),
        Lookup::Other if owner => return Err(ReadDenied::NotAPackage),
        Lookup::Missing | Lookup::Other => return Err(ReadDenied::Forbidden),
    };
    match &package.binding {
        None if package.publish || owner => Ok(package),
        None => Err(ReadDenied::Forbidden),
        Some(binding) if owner => {
            if binding.doc_id() == doc_id {
                return Err(ReadDenied::Circular(doc_id));
            }
            Box::pin(check_read(state, own, &binding.namespace, &binding.name)).await?;
            Ok(package)
        }
        Some(_) => Err(ReadDenied::Forbidden),
    }
}

/// The READ entitlement on the package `ns/name` with the controller's answers: 404 for the
/// caller's missing package, 409 for a name of another collection, 403 (naming the package) for
/// what the caller may not read, 422 for a binding of itself. Sequence components in packages are
/// checked with it too.
pub(super) async fn readable_package(
    state: &State,
    own: &str,
    ns: &str,
    name: &str,
) -> Result<PackageDocument, ApiError> {
    match check_read(state, own, ns, name).await {
        Ok(package) => Ok(package),
        Err(ReadDenied::Missing) => Err(ApiError::not_found()),
        Err(ReadDenied::NotAPackage) => {
            Err(ApiError::new(StatusCode::CONFLICT, messages::CONFORMANCE))
        }
        Err(ReadDenied::Forbidden) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            messages::not_authorized(&format!("{ns}/{name}")),
        )),
        Err(ReadDenied::Circular(id)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            text::circular_reference(&id),
        )),
        Err(ReadDenied::Failed(error)) => Err(error),
    }
}

async fn get_package(state: &State, own: &str, ns: &str, name: &str) -> Reply {
    let package = readable_package(state, own, ns, name).await?;
    // A binding shows itself with the bound package's parameters under its own, and the bound
    // package's actions (`mergePackageWithBinding`).
    let (shown, contents) = match &package.binding {
        Some(binding) => {
            let provider = read_package(state, &binding.doc_id())
                .await?
                .ok_or_else(ApiError::not_found)?;
            let mut shown = package.clone();
            shown.parameters = merge(&provider.parameters, &package.parameters);
            (shown, provider.doc_id())
        }
        None => {
            let contents = package.doc_id();
            (package, contents)
        }
    };
    let actions = state
        .backend
        .list_actions(&contents, 0, usize::MAX)
        .await
        .map_err(store_error)?;
    let (feeds, actions): (Vec<_>, Vec<_>) = actions
        .iter()
        .map(|a| {
            let entry = json!({
                "name": a.name,
                "version": a.version,
                "annotations": a.annotations.to_value(),
            });
            (a.annotations.get("feed").is_some(), entry)
        })
        .partition(|(feed, _)| *feed);
    let mut body = shown.to_json();
    if let Value::Object(map) = &mut body {
        let entries =
            |list: Vec<(bool, Value)>| Value::Array(list.into_iter().map(|e| e.1).collect());
        map.insert("actions".into(), entries(actions));
        map.insert("feeds".into(), entries(feeds));
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// `base ++ over`: the keys of `over` replace those of `base`, in place; new keys follow.
pub(super) fn merge(base: &[Parameter], over: &[Parameter]) -> Vec<Parameter> {
    let mut merged: Vec<Parameter> = base
        .iter()
        .filter(|p| !over.iter().any(|o| o.key == p.key))
        .cloned()
        .collect();
    merged.extend(over.iter().cloned());
    merged
}

/// Reads a PUT's `binding`: absent, null or `{}` is none; `_` as its namespace is the caller's.
fn parse_binding(body: &Map<String, Value>, own: &str) -> Result<Option<Binding>, ApiError> {
    let malformed = || {
        ApiError::bad_request(messages::malformed_content(
            "binding must be an object with 'namespace' and 'name'",
        ))
    };
    match body.get("binding") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) if map.is_empty() => Ok(None),
        Some(Value::Object(map)) => {
            let field = |key: &str| match map.get(key) {
                Some(Value::String(text)) => Ok(text.clone()),
                _ => Err(malformed()),
            };
            let (namespace, name) = (field("namespace")?, field("name")?);
            let namespace = validate::namespace(&namespace, own)?;
            let name = validate::entity_name(&name)?;
            Ok(Some(Binding { namespace, name }))
        }
        Some(_) => Err(malformed()),
    }
}

/// The entitlement check on a binding's package at PUT, with `rewriteEntitlementFailure`'s
/// answers, then `checkBinding` (a binding cannot bind a binding).
async fn check_binding(state: &State, own: &str, binding: &Binding) -> Result<(), ApiError> {
    match check_read(state, own, &binding.namespace, &binding.name).await {
        Ok(provider) if provider.binding.is_some() => Err(ApiError::bad_request(
            text::BINDING_CANNOT_REFERENCE_BINDING,
        )),
        Ok(_) => Ok(()),
        Err(ReadDenied::Missing) => Err(ApiError::bad_request(text::BINDING_DOES_NOT_EXIST)),
        Err(ReadDenied::NotAPackage) => Err(ApiError::new(
            StatusCode::CONFLICT,
            text::REQUESTED_BINDING_IS_NOT_VALID,
        )),
        Err(ReadDenied::Forbidden) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            messages::not_authorized(&binding.doc_id()),
        )),
        Err(ReadDenied::Circular(id)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            text::circular_reference(&id),
        )),
        Err(ReadDenied::Failed(error)) => Err(error),
    }
}

/// The annotations a PUT asked for, any `binding` among them replaced by the controller's own.
fn with_binding_annotation(
    annotations: Vec<Parameter>,
    binding: Option<&Binding>,
) -> Vec<Parameter> {
    let mut annotations: Vec<Parameter> = annotations
        .into_iter()
        .filter(|a| a.key != BINDING_ANNOTATION)
        .collect();
    if let Some(binding) = binding {
        annotations.push(Parameter::new(BINDING_ANNOTATION, json!(binding)));
    }
    annotations
}

async fn put_package(state: &State, call: &Call, own: &str, ns: &str, name: &str) -> Reply {
    let overwrite = call.flag("overwrite")?;
    if RESERVED_NAMES.contains(&name) {
        return Err(ApiError::bad_request(text::package_name_is_reserved(name)));
    }
    // The fields a package shares with an action (parameters, annotations, version, publish) are
    // read, checked and sized as for an action.
    let put = parse_action_put(&state.kinds, &state.limits, call)?;
    let body = json_object_body(&call.headers, &call.body)?.unwrap_or_default();
    let binding = parse_binding(&body, own)?;
    if let Some(binding) = &binding {
        check_binding(state, own, binding).await?;
    }
    let doc_id = format!("{ns}/{name}");
    let existing = read_package(state, &doc_id).await?;
    let annotations = put.annotations.map(into_parameters);
    let package = match replaced(existing, overwrite)? {
        Some(old) => {
            if binding.is_some() && old.binding.is_none() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    text::PACKAGE_CANNOT_BECOME_BINDING,
                ));
            }
            let binding = binding.or(old.binding);
            PackageDocument {
                rev: old.rev,
                entity_type: PACKAGE_ENTITY_TYPE.into(),
                namespace: old.namespace,
                name: old.name,
                parameters: put.parameters.unwrap_or(old.parameters),
                version: put.version.unwrap_or_else(|| up_patch(&old.version)),
                publish: put.publish.unwrap_or(old.publish),
                annotations: with_binding_annotation(
                    annotations.unwrap_or(old.annotations),
                    binding.as_ref(),
                ),
                binding,
                updated: epoch_millis(SystemTime::now()),
            }
        }
        None => PackageDocument {
            rev: None,
            entity_type: PACKAGE_ENTITY_TYPE.into(),
            namespace: ns.to_string(),
            name: name.to_string(),
            parameters: put.parameters.unwrap_or_default(),
            version: put
                .version
                .unwrap_or_else(|| document::DEFAULT_VERSION.to_string()),
            publish: put.publish.unwrap_or(false),
            annotations: with_binding_annotation(annotations.unwrap_or_default(), binding.as_ref()),
            binding,
            updated: epoch_millis(SystemTime::now()),
        },
    };
    let stored = put_typed(state, &doc_id, &package).await?;
    Ok(json_response(StatusCode::OK, &stored.to_json()))
}

async fn delete_package(state: &State, call: &Call, ns: &str, name: &str) -> Reply {
    let force = call.flag("force")?;
    let doc_id = format!("{ns}/{name}");
    let package = read_package(state, &doc_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    // A binding holds nothing; a package may go only once empty, or with its actions when forced.
    if package.binding.is_none() {
        let actions = state
            .backend
            .list_actions(&doc_id, 0, usize::MAX)
            .await
            .map_err(store_error)?;
        if !actions.is_empty() && !force {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                text::package_not_empty(actions.len()),
            ));
        }
        for action in &actions {
            state
                .backend
                .delete_action(&action.doc_id(), action.rev.as_deref())
                .await
                .map_err(store_error)?;
        }
    }
    delete_document(state, &doc_id, package.rev.as_deref()).await?;
    Ok(json_response(StatusCode::OK, &package.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_binding_parameters_override_the_packages() {
        let base = vec![Parameter::new("a", json!(1)), Parameter::new("b", json!(2))];
        let over = vec![Parameter::new("b", json!(3)), Parameter::new("c", json!(4))];
        let merged = merge(&base, &over);
        let keys: Vec<(&str, &Value)> = merged.iter().map(|p| (p.key.as_str(), &p.value)).collect();
        assert_eq!(
            keys,
            vec![("a", &json!(1)), ("b", &json!(3)), ("c", &json!(4))]
        );
    }

    #[test]
    fn test_absent_binding_is_the_empty_object() {
        let doc = PackageDocument {
            rev: None,
            entity_type: PACKAGE_ENTITY_TYPE.into(),
            namespace: "guest".into(),
            name: "p".into(),
            binding: None,
            parameters: Vec::new(),
            version: "0.0.1".into(),
            publish: false,
            annotations: Vec::new(),
            updated: 0,
        };
        let value = serde_json::to_value(&doc).unwrap();
        assert_eq!(value["binding"], json!({}));
        let back: PackageDocument = serde_json::from_value(value).unwrap();
        assert_eq!(back.binding, None);
        assert_eq!(doc.summary()["binding"], json!(false));
    }
}
