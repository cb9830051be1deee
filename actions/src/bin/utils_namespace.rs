//! `utils_namespace`: the catalog's `/whisk.system/utils/namespace` ("Returns namespace for the
//! authorization key used to invoke this action").
//!
//! Params: none. Result: `{"namespace": "<the invoker's namespace>"}` (`__OW_NAMESPACE`, the
//! namespace of the key that invoked it, not the package's), as `namespace.js`; `{}` when the
//! variable is not set. Logs: none.

use ow_action::serde_json::{Map, Value};

fn main() {
    ow_action::run(|_params| {
        let mut result = Map::new();
        if let Ok(namespace) = std::env::var("__OW_NAMESPACE") {
            result.insert("namespace".to_string(), Value::String(namespace));
        }
        Ok::<_, String>(Value::Object(result))
    });
}
