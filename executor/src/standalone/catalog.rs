//! The standalone server's catalog: the public package `/whisk.system/utils`, OpenWhisk's catalog
//! utilities (`apache/openwhisk-catalog`, `packages/utils`) rebuilt as wasm actions, so that
//! `/whisk.system/utils/echo` and its siblings work from every namespace without Docker.
//!
//! The actions are the `utils_*` binaries of the `actions/` crate, built for `wasm32-wasip1` by
//! this crate's build script and embedded with `include_bytes!`. [`install`] writes the package
//! and its actions into the store at start when they are missing or differ from what this binary
//! embeds (code, annotations, kind): a restart of the same binary writes nothing and keeps every
//! revision; a new binary with changed utilities refreshes them in place.
//!
//! Descriptions, parameters and samples are the catalog manifest's (`packages/utils/manifest.yaml`),
//! which is how `wsk package get /whisk.system/utils` shows them on an OpenWhisk deployment.
//! `smash` and `hosturl` are not part of it.

use factory::Code;
use serde_json::{Value, json};

use crate::document::{ActionDocument, CodeSource, Exec};
use crate::record::Annotations;
use crate::standalone::backend::{Backend, BackendError, StoredAction};

/// The namespace holding the catalog (OpenWhisk's system namespace).
pub const CATALOG_NAMESPACE: &str = "whisk.system";
/// The catalog's package.
pub const UTILS_PACKAGE: &str = "utils";
/// The kind of the catalog's actions.
const KIND: &str = "wasm:wasip1";
/// The version of the package and of each action (the manifest's).
const VERSION: &str = "0.0.1";
/// The package's description (the manifest's `annotations.description`).
const PACKAGE_DESCRIPTION: &str = "Building blocks that format and assemble data";

/// One catalog action: its name in the package, its embedded module and its annotations.
struct CatalogAction {
    name: &'static str,
    module: &'static [u8],
    description: &'static str,
    /// The manifest's `parameters` annotation; `None` when the manifest has none.
    parameters: fn() -> Option<Value>,
    /// The manifest's `sampleInput`; `None` when the manifest has none.
    sample_input: fn() -> Option<Value>,
    sample_output: fn() -> Value,
}

/// `include_bytes!` of a catalog module the build script left in `$OUT_DIR/catalog/`.
macro_rules! module {
    ($bin:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/catalog/", $bin, ".wasm"))
    };
}

/// The package's actions, in the manifest's order.
const ACTIONS: &[CatalogAction] = &[
    CatalogAction {
        name: "echo",
        module: module!("utils_echo"),
        description: "Returns the input",
        parameters: || {
            Some(json!([
                {"name": "payload", "required": false, "description": "Any JSON entity"}
            ]))
        },
        sample_input: || Some(json!({"payload": "Five fuzzy felines"})),
        sample_output: || json!({"payload": "Five fuzzy felines"}),
    },
    CatalogAction {
        name: "cat",
        module: module!("utils_cat"),
        description: "Concatenates input into a string",
        parameters: || {
            Some(json!([
                {"name": "lines", "required": true, "type": "array", "description": "An array of strings or numbers"}
            ]))
        },
        sample_input: || Some(json!({"lines": [4, 2, 3]})),
        sample_output: || json!({"lines": [4, 2, 3]}),
    },
    CatalogAction {
        name: "split",
        module: module!("utils_split"),
        description: "Split a string into an array",
        parameters: || {
            Some(json!([
                {"name": "payload", "required": true, "description": "A string"},
                {"name": "separator", "required": false, "description": "The character, or the regular expression, to use for splitting the string"}
            ]))
        },
        sample_input: || Some(json!({"payload": "one,two,three", "separator": ","})),
        sample_output: || json!({"lines": ["one", "two", "three"], "payload": "one,two,three"}),
    },
    CatalogAction {
        name: "sort",
        module: module!("utils_sort"),
        description: "Sorts an array",
        parameters: || {
            Some(json!([
                {"name": "lines", "required": true, "type": "array", "description": "An array of strings"}
            ]))
        },
        sample_input: || Some(json!({"lines": [4, 2, 3]})),
        sample_output: || json!({"lines": [2, 3, 4], "length": 3}),
    },
    CatalogAction {
        name: "head",
        module: module!("utils_head"),
        description: "Extract prefix of an array",
        parameters: || {
            Some(json!([
                {"name": "lines", "required": true, "type": "array", "description": "An array of strings"},
                {"name": "num", "required": false, "type": "integer", "description": "The length of the prefix"}
            ]))
        },
        sample_input: || Some(json!({"lines": [4, 2, 3], "num": 2})),
        sample_output: || json!({"lines": [4, 2], "num": 2}),
    },
    CatalogAction {
        name: "date",
        module: module!("utils_date"),
        description: "Current date and time",
        parameters: || None,
        sample_input: || None,
        sample_output: || json!({"date": "2016-03-22T00:59:55.961Z"}),
    },
    CatalogAction {
        name: "namespace",
        module: module!("utils_namespace"),
        description: "Returns namespace for the authorization key used to invoke this action",
        parameters: || None,
        sample_input: || None,
        sample_output: || json!({"namespace": "guest"}),
    },
];

/// Why the catalog could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The store failed reading or writing one of the catalog's documents.
    #[error("cannot install the catalog entity {doc_id}: {source}")]
    Store {
        /// The document.
        doc_id: String,
        /// Why.
        source: BackendError,
    },
    /// The package's name is taken by a document that is not a package (an action).
    #[error("cannot install the catalog package {0}: the name is taken by another entity")]
    Occupied(String),
}

/// What [`install`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// The documents written (created or refreshed), by id; empty when everything was current.
    pub written: Vec<String>,
}

/// The names of the catalog package's actions, in the manifest's order.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|action| action.name)
}

/// Installs or refreshes `/whisk.system/utils` and its actions in `backend`'s store: writes each
/// document that is missing or differs from this binary's, and leaves the others (and their
/// revisions) alone.
///
/// # Errors
///
/// [`CatalogError`] when the store fails or the package's name is taken by an action.
pub async fn install(backend: &dyn Backend) -> Result<Installed, CatalogError> {
    let mut installed = Installed::default();
    let package_id = format!("{CATALOG_NAMESPACE}/{UTILS_PACKAGE}");
    if install_package(backend, &package_id).await? {
        installed.written.push(package_id.clone());
    }
    for action in ACTIONS {
        let doc_id = format!("{package_id}/{}", action.name);
        if install_action(backend, &package_id, action, &doc_id).await? {
            installed.written.push(doc_id);
        }
    }
    Ok(installed)
}

/// The package document as the package routes store it (`WhiskPackage` with `entityType`).
fn package_document() -> Value {
    json!({
        "entityType": "package",
        "namespace": CATALOG_NAMESPACE,
        "name": UTILS_PACKAGE,
        "binding": {},
        "parameters": [],
        "version": VERSION,
        "publish": true,
        "annotations": [{"key": "description", "value": PACKAGE_DESCRIPTION}],
        "updated": crate::record::epoch_millis(std::time::SystemTime::now()),
    })
}

/// The fields that make a package what the catalog defines (all but `_rev` and `updated`).
const PACKAGE_FIELDS: &[&str] = &[
    "entityType",
    "namespace",
    "name",
    "binding",
    "parameters",
    "version",
    "publish",
    "annotations",
];

/// Writes the package unless the stored one is the same; returns whether it wrote.
async fn install_package(backend: &dyn Backend, package_id: &str) -> Result<bool, CatalogError> {
    let store_error = |source| CatalogError::Store {
        doc_id: package_id.to_string(),
        source,
    };
    let mut wanted = package_document();
    let stored = backend.get_entity(package_id).await.map_err(store_error)?;
    if let Some(stored) = &stored {
        if stored.get("entityType").and_then(Value::as_str) != Some("package") {
            return Err(CatalogError::Occupied(package_id.to_string()));
        }
        if PACKAGE_FIELDS
            .iter()
            .all(|field| stored.get(field) == wanted.get(field))
        {
            return Ok(false);
        }
        if let (Some(rev), Some(fields)) = (stored.get("_rev"), wanted.as_object_mut()) {
            fields.insert("_rev".to_string(), rev.clone());
        }
    }
    backend
        .put_entity(package_id, wanted)
        .await
        .map_err(store_error)?;
    Ok(true)
}

/// The action document the catalog defines for `action` (no revision).
fn action_document(package_id: &str, action: &CatalogAction) -> ActionDocument {
    let exec = Exec::Code {
        kind: KIND.to_string(),
        // The store replaces it with the reference to the code it stores.
        code: CodeSource::Inline(String::new()),
        binary: true,
        main: None,
    };
    let mut document = ActionDocument::new(package_id, action.name, exec);
    document.version = VERSION.to_string();
    let mut annotations = Annotations::new();
    annotations.set("description", action.description);
    if let Some(parameters) = (action.parameters)() {
        annotations.set("parameters", parameters);
    }
    if let Some(input) = (action.sample_input)() {
        annotations.set("sampleInput", input);
    }
    annotations.set("sampleOutput", (action.sample_output)());
    // What the action routes add on create.
    annotations.set("provide-api-key", false);
    annotations.set("exec", KIND);
    document.annotations = annotations;
    document
}

/// Whether the stored action is the one `wanted` describes, its code `module`.
fn is_current(stored: &StoredAction, wanted: &ActionDocument, module: &[u8]) -> bool {
    let document = &stored.document;
    let same_exec = match (&document.exec, &wanted.exec) {
        (
            Exec::Code {
                kind, binary, main, ..
            },
            Exec::Code {
                kind: wanted_kind,
                binary: wanted_binary,
                main: wanted_main,
                ..
            },
        ) => kind == wanted_kind && binary == wanted_binary && main == wanted_main,
        _ => false,
    };
    let same_code = matches!(&stored.code, Some(Code::Binary(bytes)) if **bytes == *module);
    same_exec
        && same_code
        && document.parameters == wanted.parameters
        && document.limits == wanted.limits
        && document.version == wanted.version
        && document.publish == wanted.publish
        && document.annotations == wanted.annotations
}

/// Writes the action unless the stored one is current; returns whether it wrote.
async fn install_action(
    backend: &dyn Backend,
    package_id: &str,
    action: &CatalogAction,
    doc_id: &str,
) -> Result<bool, CatalogError> {
    let store_error = |source| CatalogError::Store {
        doc_id: doc_id.to_string(),
        source,
    };
    let mut wanted = action_document(package_id, action);
    let stored = backend
        .get_action(doc_id, true)
        .await
        .map_err(store_error)?;
    if let Some(stored) = &stored {
        if is_current(stored, &wanted, action.module) {
            return Ok(false);
        }
        wanted.rev = stored.document.rev.clone();
    }
    backend
        .put_action(StoredAction {
            document: wanted,
            code: Some(Code::Binary(action.module.into())),
        })
        .await
        .map_err(store_error)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_action_is_a_wasm_module() {
        for action in ACTIONS {
            assert!(
                action.module.starts_with(b"\0asm\x01\0\0\0"),
                "{} is not a core wasm module",
                action.name
            );
        }
    }

    #[test]
    fn the_catalog_holds_the_seven_utilities_once_each() {
        let mut names: Vec<&str> = action_names().collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["cat", "date", "echo", "head", "namespace", "sort", "split"]
        );
    }

    #[test]
    fn action_documents_carry_the_manifest_annotations() {
        let echo = action_document("whisk.system/utils", &ACTIONS[0]);
        assert_eq!(echo.doc_id(), "whisk.system/utils/echo");
        assert_eq!(
            echo.annotations.get("description"),
            Some(&json!("Returns the input"))
        );
        assert_eq!(echo.annotations.get("exec"), Some(&json!("wasm:wasip1")));
        let date = ACTIONS
            .iter()
            .find(|action| action.name == "date")
            .expect("date is in the catalog");
        let date = action_document("whisk.system/utils", date);
        assert_eq!(date.annotations.get("parameters"), None);
        assert_eq!(date.annotations.get("sampleInput"), None);
    }
}
