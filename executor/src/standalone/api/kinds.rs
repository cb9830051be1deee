//! [`KindSet`]: the exec kinds the server accepts on PUT and how `<family>:default` resolves, with
//! OpenWhisk's message for a kind it does not run.

use std::collections::{BTreeMap, BTreeSet};

use factory::wasm::WASM_WASIP1_KIND;

use crate::document::KindResolver;

/// The exec kinds the server accepts, with each family's default (`<family>:default`).
#[derive(Debug, Clone, Default)]
pub struct KindSet {
    /// Every accepted kind.
    pub kinds: BTreeSet<String>,
    /// family → its default kind.
    pub defaults: BTreeMap<String, String>,
}

impl KindSet {
    /// The kinds of the runtimes manifest (family, kind, is default) plus `wasm:wasip1`.
    pub fn new(manifest: impl IntoIterator<Item = (String, String, bool)>) -> Self {
        let mut set = Self::default();
        for (family, kind, is_default) in manifest {
            if is_default {
                set.defaults.insert(family, kind.clone());
            }
            set.kinds.insert(kind);
        }
        set.kinds.insert(WASM_WASIP1_KIND.to_string());
        set.defaults
            .entry("wasm".into())
            .or_insert_with(|| WASM_WASIP1_KIND.to_string());
        set
    }

    /// `The specified runtime 'x' is not supported by this platform. Valid values are: ...`
    pub(super) fn invalid_runtime(&self, kind: &str) -> String {
        let mut valid: Vec<&str> = self.kinds.iter().map(String::as_str).collect();
        valid.extend(["sequence", "blackbox"]);
        format!(
            "The specified runtime '{kind}' is not supported by this platform. Valid values are: '{}'.",
            valid.join("', '")
        )
    }
}

impl KindResolver for KindSet {
    fn resolve(&self, kind: &str) -> Option<String> {
        if self.kinds.contains(kind) {
            return Some(kind.to_string());
        }
        let family = kind.strip_suffix(":default")?;
        self.defaults.get(family).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_kind_set_resolves_defaults_and_wasm() {
        let kinds = KindSet::new([
            ("nodejs".to_string(), "nodejs:20".to_string(), true),
            ("nodejs".to_string(), "nodejs:18".to_string(), false),
        ]);
        assert_eq!(
            kinds.resolve("nodejs:default").as_deref(),
            Some("nodejs:20")
        );
        assert_eq!(kinds.resolve("wasm:wasip1").as_deref(), Some("wasm:wasip1"));
        assert_eq!(
            kinds.resolve("wasm:default").as_deref(),
            Some("wasm:wasip1")
        );
        assert_eq!(kinds.resolve("python:3"), None);
    }
}
