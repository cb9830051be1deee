//! An action ready to run: what the entity store makes of an action document, and what the pool needs.

use std::collections::BTreeMap;

use factory::{Code, Limits};

/// An executable action, resolved from its document (code fetched, attachments inlined, kind resolved).
///
/// Cached by the entity store keyed by (document id, revision) and shared as `Arc<ExecutableAction>`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutableAction {
    /// The action's namespace (`ns` or `ns/pkg`), from the document.
    pub namespace: String,
    /// The action's name.
    pub name: String,
    /// The document's `_rev`, when read from a store that has revisions.
    pub revision: Option<String>,
    /// The action's version (`0.0.1`).
    pub version: String,
    /// The resolved exec kind (`nodejs:20`, `wasm:wasip1`, `blackbox`).
    pub kind: String,
    /// The image of a blackbox action.
    pub image: Option<String>,
    /// The code, when the action has code.
    pub code: Option<Code>,
    /// `exec.main`, when set.
    pub main: Option<String>,
    /// The action's limits.
    pub limits: Limits,
    /// Whether the caller's API key is passed to the action (`provide-api-key`, default true).
    pub provide_api_key: bool,
    /// The document's parameters (the controller already merged them into the message content; the
    /// standalone server merges them itself).
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Names of parameters marked `init: true`.
    pub init_parameters: Vec<String>,
    /// The document's annotations, in order.
    pub annotations: Vec<(String, serde_json::Value)>,
    /// Whether the action is a sequence or otherwise not executable by an invoker.
    pub executable: bool,
}

impl ExecutableAction {
    /// The fully qualified name without version: `ns/name` or `ns/pkg/name` (the `path` annotation).
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The name runtimes see in `__OW_ACTION_NAME`: `/ns/name` or `/ns/pkg/name`.
    pub fn action_name(&self) -> String {
        format!("/{}/{}", self.namespace, self.name)
    }

    /// Converts JSON values to the strings OpenWhisk puts in `/init`'s `env`: strings as they are,
    /// `null` as `""`, everything else as compact JSON.
    pub fn env_value(value: &serde_json::Value) -> String {
        match value {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// Splits `content` into the init environment (the names in `init_args`, removed from an object)
    /// and the run parameters, as OpenWhisk's `ContainerProxy` does. Arrays pass through unchanged.
    pub fn split_init_args(
        content: serde_json::Value,
        init_args: &[String],
    ) -> (BTreeMap<String, String>, serde_json::Value) {
        let mut env = BTreeMap::new();
        match content {
            serde_json::Value::Object(mut map) => {
                for name in init_args {
                    if let Some(value) = map.remove(name) {
                        env.insert(name.clone(), Self::env_value(&value));
                    }
                }
                (env, serde_json::Value::Object(map))
            }
            other => (env, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_split_init_args_moves_named_values_to_env() {
        let (env, params) = ExecutableAction::split_init_args(
            json!({"DB_URL": "http://db", "N": 1, "OBJ": {"a": 1}, "q": "x"}),
            &["DB_URL".into(), "N".into(), "OBJ".into(), "MISSING".into()],
        );
        assert_eq!(env["DB_URL"], "http://db");
        assert_eq!(env["N"], "1");
        assert_eq!(env["OBJ"], r#"{"a":1}"#);
        assert_eq!(params, json!({"q": "x"}));
        let (env, params) = ExecutableAction::split_init_args(json!([1]), &["x".into()]);
        assert!(env.is_empty());
        assert_eq!(params, json!([1]));
    }
}
