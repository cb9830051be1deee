//! CouchDB action documents (`WhiskAction`, docs/protocol.md §7): read in every shape OpenWhisk has
//! written, written in the shape the current controller writes, and turned into an
//! [`ExecutableAction`].
//!
//! Kind resolution (`nodejs:default` → `nodejs:20`, unknown kinds rejected) needs the runtimes
//! manifest, which this module does not own: callers pass a [`KindResolver`]. `wasm:wasip1` (and
//! `wasm:default`) resolve without one.

use base64::Engine as _;
use factory::wasm::WASM_WASIP1_KIND;
use factory::{Code, Limits};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::action::ExecutableAction;
use crate::record::Annotations;

/// The version of a new entity (`SemVer` default).
pub const DEFAULT_VERSION: &str = "0.0.1";
/// `whisk.db.max-inline-size`: code smaller than this is inlined into a `mem:` attachment name,
/// larger code becomes a real attachment.
pub const MAX_INLINE_SIZE: usize = 16 * 1024;
/// `entityType` of action documents.
pub const ACTION_ENTITY_TYPE: &str = "action";
/// Content type of text code attachments.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
/// Content type of binary code attachments.
pub const BINARY_CONTENT_TYPE: &str = "application/octet-stream";

/// A document that cannot be an action, or code that cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON, or not an action document's shape.
    #[error("malformed action document: {0}")]
    Json(#[from] serde_json::Error),
    /// `entityType` is present and not `action`.
    #[error("document is a {0:?}, not an action")]
    WrongType(String),
    /// The kind is not in the runtimes manifest.
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    /// A code attachment reference that cannot be used.
    #[error("bad code attachment: {0}")]
    Attachment(String),
    /// Text code that is not UTF-8.
    #[error("code is not UTF-8 text")]
    NotUtf8,
}

// ------------------------------------------------------------------------------------------------
// Kinds

/// Resolves an exec kind as OpenWhisk's `ExecManifest` does: the kind itself when the manifest has
/// it, the family default for `<family>:default`, `None` for unknown kinds.
pub trait KindResolver: Send + Sync {
    /// The resolved kind, or `None` when unknown.
    fn resolve(&self, kind: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String> + Send + Sync> KindResolver for F {
    fn resolve(&self, kind: &str) -> Option<String> {
        self(kind)
    }
}

/// The runtimes manifest resolves its kinds and `<family>:default` (`ExecManifest`).
impl KindResolver for factory::docker::Manifest {
    fn resolve(&self, kind: &str) -> Option<String> {
        self.runtime(kind).map(|runtime| runtime.kind.clone())
    }
}

/// A resolver knowing only the kinds this crate knows itself (`wasm:wasip1`, `wasm:default`); for a
/// node without the runtimes manifest.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinKinds;

impl KindResolver for BuiltinKinds {
    fn resolve(&self, kind: &str) -> Option<String> {
        match kind {
            WASM_WASIP1_KIND | "wasm:default" => Some(WASM_WASIP1_KIND.to_string()),
            _ => None,
        }
    }
}

/// Resolves `kind` (lowercased and trimmed first): `blackbox`, `sequence` and the wasm kinds
/// directly, everything else through `resolver`.
pub fn resolve_kind(kind: &str, resolver: &dyn KindResolver) -> Option<String> {
    let kind = kind.trim().to_ascii_lowercase();
    match kind.as_str() {
        "blackbox" | "sequence" => Some(kind),
        _ => BuiltinKinds
            .resolve(&kind)
            .or_else(|| resolver.resolve(&kind)),
    }
}

// ------------------------------------------------------------------------------------------------
// Code

/// Whether a code string is base64 by OpenWhisk's rule (`Exec.scala`): non-empty after trimming,
/// length a multiple of 4, and matching
/// `^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$`.
pub fn is_base64(code: &str) -> bool {
    let trimmed = code.trim();
    // The regex is applied to the untrimmed code, so surrounding whitespace fails it.
    if trimmed.is_empty() || !code.len().is_multiple_of(4) || trimmed.len() != code.len() {
        return false;
    }
    let bytes = code.as_bytes();
    let body = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let (head, tail) = bytes.split_at(bytes.len() - 4);
    let tail_ok = match tail {
        [a, b, b'=', b'='] => body(*a) && body(*b),
        [a, b, c, b'='] => body(*a) && body(*b) && body(*c),
        [a, b, c, d] => body(*a) && body(*b) && body(*c) && body(*d),
        _ => false,
    };
    tail_ok && head.iter().all(|c| body(*c))
}

/// Code from stored bytes: raw bytes when `binary`, else UTF-8 text.
pub fn code_from_bytes(bytes: Vec<u8>, binary: bool) -> Result<Code, DocumentError> {
    if binary {
        Ok(Code::Binary(bytes.into()))
    } else {
        String::from_utf8(bytes)
            .map(Code::Text)
            .map_err(|_| DocumentError::NotUtf8)
    }
}

/// A reference to code stored as an attachment (`{"attachmentName", "attachmentType", "length"?,
/// "digest"?}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentRef {
    /// `mem:<base64url>`, `couch:<uuid>`, or a legacy relative name such as `codefile`.
    pub attachment_name: String,
    /// The content type.
    pub attachment_type: String,
    /// Bytes, when recorded (`mem:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// `sha256-<hex>`, when recorded (`mem:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Where an attachment's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentLocation {
    /// Inlined in the name (`mem:`), already decoded.
    Inline(Vec<u8>),
    /// A CouchDB attachment of the same document with this name (`couch:<uuid>` → `<uuid>`, or a
    /// legacy relative name).
    Document(String),
}

impl AttachmentRef {
    /// Where the bytes are. Other schemes (`s3:`...) belong to external attachment stores, which this
    /// invoker does not have.
    pub fn location(&self) -> Result<AttachmentLocation, DocumentError> {
        let name = &self.attachment_name;
        if let Some(encoded) = name.strip_prefix("mem:") {
            let bytes = base64::engine::general_purpose::URL_SAFE
                .decode(encoded)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
                .map_err(|error| DocumentError::Attachment(format!("mem: attachment: {error}")))?;
            Ok(AttachmentLocation::Inline(bytes))
        } else if let Some(uuid) = name.strip_prefix("couch:") {
            if uuid.is_empty() {
                return Err(DocumentError::Attachment(
                    "empty couch: attachment name".into(),
                ));
            }
            Ok(AttachmentLocation::Document(uuid.to_string()))
        } else if !name.is_empty() && !name.contains(':') {
            Ok(AttachmentLocation::Document(name.clone()))
        } else {
            Err(DocumentError::Attachment(format!(
                "unsupported attachment {name:?}"
            )))
        }
    }
}

/// An action's code as the document holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSource {
    /// A string in the document.
    Inline(String),
    /// An attachment.
    Attachment(AttachmentRef),
}

/// How code is to be stored by a writer: inline in a `mem:` name, or as a real attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreparedCode {
    /// Small code: the reference carries the bytes.
    Mem(AttachmentRef),
    /// Large code: the document references `couch:<uuid>` and the bytes go to attachment `<uuid>`.
    Attachment {
        /// The reference for the document.
        reference: AttachmentRef,
        /// The attachment's name on the document (`<uuid>`).
        name: String,
        /// The content.
        bytes: Vec<u8>,
    },
}

/// Prepares `code` for writing as the controller does (`WhiskAction.put`): text as
/// `text/plain; charset=UTF-8`, binary as raw `application/octet-stream`; below
/// [`MAX_INLINE_SIZE`] inlined as `mem:` (URL-safe base64 with padding, with `length` and a
/// `sha256-` digest), else `couch:<uuid>`.
pub fn prepare_code(code: &Code) -> PreparedCode {
    let (bytes, content_type) = match code {
        Code::Text(text) => (text.as_bytes().to_vec(), TEXT_CONTENT_TYPE),
        Code::Binary(bytes) => (bytes.to_vec(), BINARY_CONTENT_TYPE),
    };
    if bytes.len() < MAX_INLINE_SIZE {
        PreparedCode::Mem(AttachmentRef {
            attachment_name: format!(
                "mem:{}",
                base64::engine::general_purpose::URL_SAFE.encode(&bytes)
            ),
            attachment_type: content_type.to_string(),
            length: Some(bytes.len() as u64),
            digest: Some(format!(
                "sha256-{}",
                hex::encode(sha2::Sha256::digest(&bytes))
            )),
        })
    } else {
        let name = uuid::Uuid::new_v4().to_string();
        PreparedCode::Attachment {
            reference: AttachmentRef {
                attachment_name: format!("couch:{name}"),
                attachment_type: content_type.to_string(),
                length: None,
                digest: None,
            },
            name,
            bytes,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Exec

/// `exec` (`Exec.scala`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exec {
    /// A managed runtime with code (the kind as written, resolved on conversion).
    Code {
        /// The kind, lowercased and trimmed.
        kind: String,
        /// The code.
        code: CodeSource,
        /// Whether the code is binary (recomputed for inline strings).
        binary: bool,
        /// The entry point.
        main: Option<String>,
    },
    /// A Docker image, maybe with code.
    Blackbox {
        /// The image.
        image: String,
        /// The code, when not empty.
        code: Option<CodeSource>,
        /// Whether the code is binary.
        binary: bool,
        /// The entry point.
        main: Option<String>,
    },
    /// A sequence; never run by an invoker.
    Sequence {
        /// The component actions (`/ns/pkg/name`).
        components: Vec<String>,
    },
}

impl Exec {
    /// A managed-runtime exec with code stored as `code` says.
    pub fn with_code(
        kind: impl Into<String>,
        code: CodeSource,
        binary: bool,
        main: Option<String>,
    ) -> Self {
        Exec::Code {
            kind: kind.into(),
            code,
            binary,
            main,
        }
    }

    /// The kind as written.
    pub fn kind(&self) -> &str {
        match self {
            Exec::Code { kind, .. } => kind,
            Exec::Blackbox { .. } => "blackbox",
            Exec::Sequence { .. } => "sequence",
        }
    }

    /// The code and its binary flag, when there is code.
    pub fn code(&self) -> Option<(&CodeSource, bool)> {
        match self {
            Exec::Code { code, binary, .. } => Some((code, *binary)),
            Exec::Blackbox {
                code: Some(code),
                binary,
                ..
            } => Some((code, *binary)),
            _ => None,
        }
    }
}

fn read_code_field(value: Option<&Value>) -> Result<Option<CodeSource>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(CodeSource::Inline(text.clone()))),
        Some(object @ Value::Object(_)) => serde_json::from_value(object.clone())
            .map(|reference| Some(CodeSource::Attachment(reference)))
            .map_err(|error| format!("exec.code: {error}")),
        Some(other) => Err(format!(
            "exec.code must be a string or an object, not {other}"
        )),
    }
}

fn read_optional_string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("exec.{key} must be a string, not {other}")),
    }
}

fn binary_of(code: &CodeSource, map: &Map<String, Value>) -> bool {
    match code {
        // The stored flag of inline code is ignored: OpenWhisk recomputes it.
        CodeSource::Inline(text) => is_base64(text),
        CodeSource::Attachment(_) => map.get("binary").and_then(Value::as_bool).unwrap_or(false),
    }
}

impl<'de> Deserialize<'de> for Exec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let kind = map
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| D::Error::custom("exec.kind is missing"))?
            .trim()
            .to_ascii_lowercase();
        let main = read_optional_string(&map, "main").map_err(D::Error::custom)?;
        match kind.as_str() {
            "sequence" => {
                let components = map
                    .get("components")
                    .cloned()
                    .ok_or_else(|| D::Error::custom("exec.components is missing"))?;
                let components: Vec<String> =
                    serde_json::from_value(components).map_err(D::Error::custom)?;
                Ok(Exec::Sequence { components })
            }
            "blackbox" => {
                let image = map
                    .get("image")
                    .and_then(Value::as_str)
                    .ok_or_else(|| D::Error::custom("exec.image is missing"))?
                    .to_string();
                let code = read_code_field(map.get("code")).map_err(D::Error::custom)?;
                // Blank code means no code.
                let code = code.filter(|code| match code {
                    CodeSource::Inline(text) => !text.trim().is_empty(),
                    CodeSource::Attachment(_) => true,
                });
                let binary = code.as_ref().is_some_and(|code| binary_of(code, &map));
                Ok(Exec::Blackbox {
                    image,
                    code,
                    binary,
                    main,
                })
            }
            _ => {
                // Legacy Java documents hold the jar under "jar".
                let code = read_code_field(map.get("code").or_else(|| map.get("jar")))
                    .map_err(D::Error::custom)?
                    .ok_or_else(|| {
                        D::Error::custom(format!("exec.code is missing for kind {kind}"))
                    })?;
                let binary = binary_of(&code, &map);
                Ok(Exec::Code {
                    kind,
                    code,
                    binary,
                    main,
                })
            }
        }
    }
}

impl Serialize for Exec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = Map::new();
        let code_value = |code: &CodeSource| match code {
            CodeSource::Inline(text) => Value::String(text.clone()),
            CodeSource::Attachment(reference) => {
                serde_json::to_value(reference).expect("attachment references serialize")
            }
        };
        match self {
            Exec::Code {
                kind,
                code,
                binary,
                main,
            } => {
                map.insert("kind".into(), Value::String(kind.clone()));
                map.insert("code".into(), code_value(code));
                map.insert("binary".into(), Value::Bool(*binary));
                if let Some(main) = main {
                    map.insert("main".into(), Value::String(main.clone()));
                }
            }
            Exec::Blackbox {
                image,
                code,
                binary,
                main,
            } => {
                map.insert("kind".into(), Value::String("blackbox".into()));
                map.insert("image".into(), Value::String(image.clone()));
                if let Some(code) = code {
                    map.insert("code".into(), code_value(code));
                }
                map.insert("binary".into(), Value::Bool(*binary));
                if let Some(main) = main {
                    map.insert("main".into(), Value::String(main.clone()));
                }
            }
            Exec::Sequence { components } => {
                map.insert("kind".into(), Value::String("sequence".into()));
                map.insert(
                    "components".into(),
                    Value::Array(components.iter().cloned().map(Value::String).collect()),
                );
            }
        }
        map.serialize(serializer)
    }
}

// ------------------------------------------------------------------------------------------------
// Parameters and the document

/// One action parameter (`{"key","value","init"?,"encryption"?}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// The name.
    pub key: String,
    /// The value.
    #[serde(default)]
    pub value: Value,
    /// Passed only at `/init`, as environment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// `aes-128` / `aes-256` when the value is ciphertext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
}

impl Parameter {
    /// A plain parameter.
    pub fn new(key: impl Into<String>, value: Value) -> Self {
        Self {
            key: key.into(),
            value,
            init: false,
            encryption: None,
        }
    }
}

/// An action document as stored in the entities database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionDocument {
    /// `namespace[/package]/name`.
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The revision.
    #[serde(rename = "_rev", default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
    /// `"action"`; checked when present.
    #[serde(
        rename = "entityType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entity_type: Option<String>,
    /// `ns` or `ns/pkg`.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// How to run it.
    pub exec: Exec,
    /// Default parameters.
    pub parameters: Vec<Parameter>,
    /// Limits (`logs` and `concurrency` defaulted when missing).
    pub limits: Limits,
    /// SemVer.
    pub version: String,
    /// Shared publicly.
    pub publish: bool,
    /// Annotations.
    pub annotations: Annotations,
    /// Epoch ms of the last update.
    pub updated: u64,
    /// CouchDB attachment stubs.
    #[serde(
        rename = "_attachments",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub attachments: Option<Map<String, Value>>,
}

impl ActionDocument {
    /// A new document (no revision yet), `updated` = now, entity type `action`, id from the names.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, exec: Exec) -> Self {
        let namespace = namespace.into();
        let name = name.into();
        Self {
            id: Some(format!("{namespace}/{name}")),
            rev: None,
            entity_type: Some(ACTION_ENTITY_TYPE.to_string()),
            namespace,
            name,
            exec,
            parameters: Vec::new(),
            limits: Limits::default(),
            version: DEFAULT_VERSION.to_string(),
            publish: false,
            annotations: Annotations::new(),
            updated: crate::record::epoch_millis(std::time::SystemTime::now()),
            attachments: None,
        }
    }

    /// Reads a document, checking `entityType`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DocumentError> {
        Self::from_value(serde_json::from_slice(bytes)?)
    }

    /// Reads a document from a JSON value, checking `entityType`.
    pub fn from_value(value: Value) -> Result<Self, DocumentError> {
        if let Some(kind) = value.get("entityType").and_then(Value::as_str)
            && kind != ACTION_ENTITY_TYPE
        {
            return Err(DocumentError::WrongType(kind.to_string()));
        }
        Ok(serde_json::from_value(value)?)
    }

    /// The document id: `_id`, or `namespace/name`.
    pub fn doc_id(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("{}/{}", self.namespace, self.name))
    }

    /// Whether the caller's API key is passed (`provide-api-key` absent or truthy).
    pub fn provide_api_key(&self) -> bool {
        self.annotations.is_truthy("provide-api-key", true)
    }

    /// Turns the document and its fetched code into an executable action. `code` is `None` for
    /// actions without code (blackbox without code, sequences). Sequences come back with
    /// `executable: false`.
    pub fn into_executable(
        self,
        code: Option<Code>,
        resolver: &dyn KindResolver,
    ) -> Result<ExecutableAction, DocumentError> {
        let (kind, image, main, executable) = match &self.exec {
            Exec::Code { kind, main, .. } => (
                resolve_kind(kind, resolver)
                    .ok_or_else(|| DocumentError::UnknownKind(kind.clone()))?,
                None,
                main.clone(),
                true,
            ),
            Exec::Blackbox { image, main, .. } => (
                "blackbox".to_string(),
                Some(image.clone()),
                main.clone(),
                true,
            ),
            Exec::Sequence { .. } => ("sequence".to_string(), None, None, false),
        };
        let parameters = self
            .parameters
            .iter()
            .map(|parameter| (parameter.key.clone(), parameter.value.clone()))
            .collect();
        let init_parameters = self
            .parameters
            .iter()
            .filter(|parameter| parameter.init)
            .map(|parameter| parameter.key.clone())
            .collect();
        let provide_api_key = self.provide_api_key();
        Ok(ExecutableAction {
            namespace: self.namespace,
            name: self.name,
            revision: self.rev,
            version: self.version,
            kind,
            image,
            code,
            main,
            limits: self.limits,
            provide_api_key,
            parameters,
            init_parameters,
            annotations: self.annotations.0,
            executable,
        })
    }
}

/// Decodes inline (string) code: base64 bytes when `binary`, text otherwise.
pub fn decode_inline(text: &str, binary: bool) -> Result<Code, DocumentError> {
    if binary {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(|bytes| Code::Binary(bytes.into()))
            .map_err(|error| DocumentError::Attachment(format!("inline base64 code: {error}")))
    } else {
        Ok(Code::Text(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_base64_rule() {
        assert!(is_base64("UEsDBA=="));
        assert!(is_base64("abcd"));
        assert!(is_base64("ab+/cd=="));
        assert!(!is_base64("function main(p){return p}"));
        assert!(!is_base64(""));
        assert!(!is_base64("    "));
        assert!(!is_base64("abc"));
        assert!(!is_base64("a=bc"));
        assert!(!is_base64(" abcd "));
        assert!(!is_base64("ab-_"));
    }

    #[test]
    fn test_inline_binary_flag_is_recomputed() {
        let exec: Exec = serde_json::from_value(
            json!({"kind": "NodeJS:20 ", "code": "UEsDBA==", "binary": false}),
        )
        .unwrap();
        assert_eq!(exec.kind(), "nodejs:20");
        assert!(exec.code().unwrap().1);
        let exec: Exec =
            serde_json::from_value(json!({"kind": "nodejs:20", "code": "x => x", "binary": true}))
                .unwrap();
        assert!(!exec.code().unwrap().1);
        let exec: Exec =
            serde_json::from_value(json!({"kind": "java:8", "jar": "UEsDBA==", "main": "Hello"}))
                .unwrap();
        assert!(matches!(exec, Exec::Code { binary: true, .. }));
    }

    #[test]
    fn test_blackbox_blank_code_is_none() {
        let exec: Exec = serde_json::from_value(
            json!({"kind": "blackbox", "image": "a/b:1", "code": "  ", "binary": false}),
        )
        .unwrap();
        assert!(exec.code().is_none());
        assert!(serde_json::from_value::<Exec>(json!({"kind": "blackbox"})).is_err());
        assert!(serde_json::from_value::<Exec>(json!({"kind": "nodejs:20"})).is_err());
    }

    #[test]
    fn test_mem_attachment_round_trip() {
        let code = Code::Text("function main(p){return p}".into());
        let PreparedCode::Mem(reference) = prepare_code(&code) else {
            panic!("small code is inlined");
        };
        assert_eq!(
            reference.attachment_name,
            "mem:ZnVuY3Rpb24gbWFpbihwKXtyZXR1cm4gcH0="
        );
        assert_eq!(reference.length, Some(26));
        assert_eq!(
            reference.digest.as_deref(),
            Some("sha256-508c2bdd32dea2344c7f2becaae5fa311b8a02e003b08a92e96e004e6999f890")
        );
        assert_eq!(
            reference.location().unwrap(),
            AttachmentLocation::Inline(b"function main(p){return p}".to_vec())
        );
        let large = Code::Binary(vec![0u8; MAX_INLINE_SIZE].into());
        let PreparedCode::Attachment {
            reference,
            name,
            bytes,
        } = prepare_code(&large)
        else {
            panic!("large code is attached");
        };
        assert_eq!(reference.attachment_name, format!("couch:{name}"));
        assert_eq!(reference.attachment_type, BINARY_CONTENT_TYPE);
        assert_eq!(bytes.len(), MAX_INLINE_SIZE);
    }

    #[test]
    fn test_attachment_locations() {
        let at = |name: &str| AttachmentRef {
            attachment_name: name.into(),
            attachment_type: TEXT_CONTENT_TYPE.into(),
            length: None,
            digest: None,
        };
        assert_eq!(
            at("couch:abc").location().unwrap(),
            AttachmentLocation::Document("abc".into())
        );
        assert_eq!(
            at("jarfile").location().unwrap(),
            AttachmentLocation::Document("jarfile".into())
        );
        assert!(at("s3:x").location().is_err());
        assert!(at("mem:!!").location().is_err());
    }

    #[test]
    fn test_kind_resolution() {
        let manifest = |kind: &str| match kind {
            "nodejs:20" => Some("nodejs:20".to_string()),
            "nodejs:default" => Some("nodejs:20".to_string()),
            _ => None,
        };
        assert_eq!(
            resolve_kind("nodejs:default", &manifest).unwrap(),
            "nodejs:20"
        );
        assert_eq!(
            resolve_kind("wasm:wasip1", &BuiltinKinds).unwrap(),
            WASM_WASIP1_KIND
        );
        assert_eq!(
            resolve_kind("wasm:default", &manifest).unwrap(),
            WASM_WASIP1_KIND
        );
        assert!(resolve_kind("cobol:1", &manifest).is_none());
    }

    #[test]
    fn test_provide_api_key_truthiness() {
        let with = |value: Value| {
            let mut document = ActionDocument::new(
                "guest",
                "a",
                Exec::with_code("nodejs:20", CodeSource::Inline("x".into()), false, None),
            );
            document.annotations.set("provide-api-key", value);
            document.provide_api_key()
        };
        assert!(!with(json!(false)));
        assert!(!with(json!(0)));
        assert!(!with(json!("")));
        assert!(!with(Value::Null));
        assert!(with(json!(true)));
        assert!(with(json!(1)));
        assert!(with(json!("false")));
        let bare = ActionDocument::new(
            "guest",
            "a",
            Exec::with_code("nodejs:20", CodeSource::Inline("x".into()), false, None),
        );
        assert!(bare.provide_api_key());
    }

    #[test]
    fn test_limits_default_logs_and_concurrency() {
        let mut value = serde_json::to_value(ActionDocument::new(
            "guest",
            "a",
            Exec::with_code("nodejs:20", CodeSource::Inline("x".into()), false, None),
        ))
        .unwrap();
        value["limits"] = json!({"timeout": 1000, "memory": 128});
        let document = ActionDocument::from_value(value).unwrap();
        assert_eq!(document.limits.logs, 10);
        assert_eq!(document.limits.concurrency, 1);
    }

    #[test]
    fn test_wrong_entity_type() {
        let error = ActionDocument::from_value(json!({"entityType": "trigger"})).unwrap_err();
        assert!(matches!(error, DocumentError::WrongType(_)));
    }
}
