//! OpenWhisk's golden fixtures, `executor/tests/fixtures/` (the README there names each file's
//! upstream source and says why the workspace keeps its one copy here).

use std::path::PathBuf;

use serde_json::Value;

/// `executor/tests/fixtures`.
pub fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// The bytes of fixture `relative` (`kafka/ping.json`).
pub fn bytes(relative: &str) -> Vec<u8> {
    let path = dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()))
}

/// Fixture `relative` as JSON.
pub fn json(relative: &str) -> Value {
    serde_json::from_slice(&bytes(relative))
        .unwrap_or_else(|error| panic!("fixture {relative} is not JSON: {error}"))
}

/// A kind resolver over the copied `runtimes-with-wasm.json`, as `ExecManifest` resolves kinds:
/// every listed kind resolves to itself, `<family>:default` to the family's default kind.
pub fn manifest_resolver() -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let manifest = json("runtimes/runtimes-with-wasm.json");
    let mut kinds = std::collections::HashMap::new();
    if let Some(families) = manifest["runtimes"].as_object() {
        for (family, runtimes) in families {
            for runtime in runtimes.as_array().into_iter().flatten() {
                let Some(kind) = runtime["kind"].as_str() else {
                    continue;
                };
                kinds.insert(kind.to_string(), kind.to_string());
                if runtime["default"].as_bool() == Some(true) {
                    kinds.insert(format!("{family}:default"), kind.to_string());
                }
            }
        }
    }
    move |kind: &str| kinds.get(kind).cloned()
}
