//! The names a message uses for what it is about: the activation's id (`ActivationId.scala`) and the
//! action's fully qualified name (`FullyQualifiedEntityName.scala`), which is also its document id.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Longest activation id accepted; real ones are 32 hex characters.
const MAX_ACTIVATION_ID_LEN: usize = 32;

/// An activation id: 32 lowercase hex characters normally; read also from a JSON number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ActivationId(String);

impl ActivationId {
    /// A fresh random id (UUID v4 without dashes).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// An id from text, checked: 1 to 32 hex digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.is_empty()
            && text.len() <= MAX_ACTIVATION_ID_LEN
            && text.chars().all(|c| c.is_ascii_hexdigit())
        {
            Ok(Self(text.to_string()))
        } else {
            Err(format!(
                "invalid activation id {:?}",
                text.chars().take(64).collect::<String>()
            ))
        }
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ActivationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => ActivationId::parse(&text).map_err(D::Error::custom),
            Value::Number(number) if number.is_u64() => {
                ActivationId::parse(&number.to_string()).map_err(D::Error::custom)
            }
            other => Err(D::Error::custom(format!(
                "activation id must be a string or a number, not {other}"
            ))),
        }
    }
}

/// `FullyQualifiedEntityName`: where the action document lives, its version and the binding it was
/// invoked through. Written as an object; read also from a plain `"ns/pkg/name"` string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FullyQualifiedEntityName {
    /// `ns` or `ns/pkg`.
    pub path: String,
    /// The entity name.
    pub name: String,
    /// The version (`0.0.1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The binding the user invoked through (`guest/mybinding`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
}

impl FullyQualifiedEntityName {
    /// The document id: `path/name`. Also the `path` annotation.
    pub fn doc_id(&self) -> String {
        format!("{}/{}", self.path, self.name)
    }

    /// The namespace alone (the first path segment).
    pub fn namespace(&self) -> &str {
        self.path.split('/').next().unwrap_or(&self.path)
    }

    fn from_text(text: &str) -> Result<Self, String> {
        let text = text.trim_start_matches('/');
        match text.rsplit_once('/') {
            Some((path, name)) if !path.is_empty() && !name.is_empty() => Ok(Self {
                path: path.to_string(),
                name: name.to_string(),
                version: None,
                binding: None,
            }),
            _ => Err(format!("invalid entity name {text:?}")),
        }
    }
}

impl<'de> Deserialize<'de> for FullyQualifiedEntityName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            path: String,
            name: String,
            #[serde(default)]
            version: Option<String>,
            #[serde(default)]
            binding: Option<String>,
        }
        // The object or the `path/name` text, told apart by the JSON's own type: no buffering of
        // the value first, as `#[serde(untagged)]` would do for every message.
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = FullyQualifiedEntityName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an entity name: {\"path\",\"name\"} or \"path/name\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                FullyQualifiedEntityName::from_text(text).map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let wire = Wire::deserialize(MapAccessDeserializer::new(map))?;
                if wire.path.is_empty() || wire.name.is_empty() {
                    return Err(A::Error::custom("entity path and name must not be empty"));
                }
                Ok(FullyQualifiedEntityName {
                    path: wire.path,
                    name: wire.name,
                    version: wire.version,
                    binding: wire.binding,
                })
            }
        }
        deserializer.deserialize_any(Either)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_entity_name_string_form_and_activation_id_number() {
        let name: FullyQualifiedEntityName = serde_json::from_value(json!("ns/pkg/a")).unwrap();
        assert_eq!(name.path, "ns/pkg");
        assert_eq!(name.name, "a");
        assert!(serde_json::from_value::<FullyQualifiedEntityName>(json!("a")).is_err());
        let id: ActivationId = serde_json::from_value(json!(12345)).unwrap();
        assert_eq!(id.as_str(), "12345");
        assert!(serde_json::from_value::<ActivationId>(json!("not-hex!")).is_err());
    }
}
