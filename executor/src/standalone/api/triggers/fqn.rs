//! Fully qualified entity names (`FullyQualifiedEntityName`) as rules and triggers refer to
//! actions and triggers: a path (namespace, optionally `/package`) and a name, written as
//! `{"path": ..., "name": ...}` in documents and read from a PUT as that object or as a string
//! (`/ns/name`, `ns/pkg/name`), with `_` as the caller's namespace.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::standalone::validate::is_entity_name;

/// `Messages.malformedFullyQualifiedEntityName`.
const MALFORMED_FQN: &str = "The fully qualified name of the entity must contain at least the namespace and the name of the entity.";

/// A fully qualified entity name: `path` is `ns` or `ns/pkg`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::standalone::api) struct Fqn {
    pub(in crate::standalone::api) path: String,
    pub(in crate::standalone::api) name: String,
}

impl Fqn {
    /// `ns/[pkg/]name`, the document id (`toDocId`, also `asString`).
    pub(in crate::standalone::api) fn doc_id(&self) -> String {
        format!("{}/{}", self.path, self.name)
    }

    /// `/ns/[pkg/]name` (`qualifiedNameWithLeadingSlash`).
    pub(in crate::standalone::api) fn with_leading_slash(&self) -> String {
        format!("/{}", self.doc_id())
    }

    /// The namespace: the path's first segment.
    pub(in crate::standalone::api) fn namespace(&self) -> &str {
        self.path.split('/').next().unwrap_or(&self.path)
    }

    /// The package, when the path has one.
    pub(in crate::standalone::api) fn package(&self) -> Option<&str> {
        self.path.split_once('/').map(|(_, package)| package)
    }

    /// Replaces a `_` namespace with `own` (`resolve`).
    pub(in crate::standalone::api) fn resolve(mut self, own: &str) -> Self {
        if self.namespace() == "_" {
            self.path = match self.package() {
                Some(package) => format!("{own}/{package}"),
                None => own.to_string(),
            };
        }
        self
    }

    /// Reads a name as `FullyQualifiedEntityName.serdes` does: an object `{"path","name"}` or a
    /// string of at least two segments. `Err` holds the deserialization message.
    pub(in crate::standalone::api) fn read(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(text) => {
                let parts = entity_path(text)?;
                match parts.split_last() {
                    Some((name, path)) if !path.is_empty() => Ok(Self {
                        path: path.join("/"),
                        name: name.clone(),
                    }),
                    _ => Err(format!("requirement failed: {MALFORMED_FQN}")),
                }
            }
            Value::Object(map) => {
                let path = match map.get("path") {
                    Some(Value::String(path)) => entity_path(path)
                        .map(|parts| parts.join("/"))
                        .map_err(|_| "namespace malformed".to_string())?,
                    Some(_) => return Err("namespace malformed".into()),
                    None => return Err("Object is missing required member 'path'".into()),
                };
                let name = match map.get("name") {
                    Some(Value::String(name)) if is_entity_name(name) => name.clone(),
                    Some(_) => return Err("entity name malformed".into()),
                    None => return Err("Object is missing required member 'name'".into()),
                };
                Ok(Self { path, name })
            }
            _ => Err("fully qualified name malformed".into()),
        }
    }
}

/// `EntityPath(text)`: the non-empty `/`-separated parts, each an entity name.
fn entity_path(text: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = text
        .split('/')
        .filter(|part| !part.is_empty())
        .map(str::to_string)
        .collect();
    if parts.is_empty() {
        return Err("requirement failed: path undefined".into());
    }
    if !parts.iter().all(|part| is_entity_name(part)) {
        // Scala 2.12's rendering of the parts, as the controller's message shows them.
        return Err(format!(
            "requirement failed: path contains invalid parts WrappedArray({})",
            parts.join(", ")
        ));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_names_read_as_the_controller_reads_them() {
        let fqn = Fqn::read(&json!("/_/pkg/a")).unwrap().resolve("guest");
        assert_eq!(fqn.doc_id(), "guest/pkg/a");
        assert_eq!(fqn.namespace(), "guest");
        assert_eq!(fqn.package(), Some("pkg"));
        assert_eq!(fqn.with_leading_slash(), "/guest/pkg/a");
        let object = Fqn::read(&json!({"path": "_", "name": "t"}))
            .unwrap()
            .resolve("guest");
        assert_eq!(object.doc_id(), "guest/t");
        assert_eq!(
            Fqn::read(&json!("t")).unwrap_err(),
            format!("requirement failed: {MALFORMED_FQN}")
        );
        assert_eq!(
            Fqn::read(&json!(3)).unwrap_err(),
            "fully qualified name malformed"
        );
        assert!(Fqn::read(&json!("/guest/a%b")).is_err());
    }
}
