//! The local directory store: the same documents as CouchDB, as JSON files, for a node without
//! CouchDB and for the standalone server.
//!
//! Layout under the root directory (names percent-encoded, so `guest/hello` is `guest%2Fhello`;
//! an encoded name too long for one file name is shortened, see [`file_stem`]):
//!
//! ```text
//! entities/<id>.json                   action documents, with `_id` and `_rev` (`N-<32 hex>`)
//! entities/<id>.attachments/<name>     attachments (`couch:<uuid>` code ≥ 16 KiB), raw bytes
//! activations/<namespace>/<id>.json    activation documents (`_id`, `entityType`, `updated`)
//! blocked-namespaces.json              optional JSON array of blocked namespace names
//! ```
//!
//! Every write goes to a temporary file in the same directory and is renamed into place, so a reader
//! never sees half a document; all file I/O runs on the blocking pool. Code is stored as the
//! controller stores it (`mem:` below 16 KiB, else an attachment), so documents can be copied to
//! CouchDB unchanged.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use factory::Code;
use serde_json::Value;
use sha2::Digest as _;

use super::couchdb::prepare_action;
use super::{ActivationQuery, ActivationStore, EntityStore, StoreError};
use crate::document::ActionDocument;
use crate::record::{ActivationDocument, WhiskActivation};

/// Largest file read: documents with inline code up to the 48 MB exec limit, plus room. Bounds what
/// a corrupted file can make us allocate.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most files read by one list request.
pub const MAX_SCAN_FILES: usize = 10_000;

const ENTITIES: &str = "entities";
const ACTIVATIONS: &str = "activations";
const BLOCKED: &str = "blocked-namespaces.json";

/// Longest encoded name used as it is. Longer ones (entity names may have 256 characters, and
/// each byte outside `[A-Za-z0-9_-]` takes three) are shortened by [`file_stem`] so that the name
/// plus `.json` or `.attachments` stays within the usual 255-byte limit of a file name. Names up
/// to this length fitted before shortening existed, so their files keep their names.
const MAX_PLAIN_STEM: usize = 240;
/// How much of a shortened name's encoding is kept before its digest.
const SHORTENED_PREFIX: usize = 160;
/// Separates a shortened name's prefix from its digest; `encode_name` never emits it.
const SHORTENED_MARK: char = '~';

/// The file name stem for `name`: [`encode_name`] when that fits ([`MAX_PLAIN_STEM`]), else its
/// first [`SHORTENED_PREFIX`] bytes, `~` and the SHA-256 of the whole name in hex. The prefix keeps
/// listings by namespace working; the digest keeps distinct names apart.
pub fn file_stem(name: &str) -> String {
    let encoded = encode_name(name);
    if encoded.len() <= MAX_PLAIN_STEM {
        return encoded;
    }
    // The encoding is ASCII, so any byte index is a character boundary.
    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    format!("{}{SHORTENED_MARK}{digest}", &encoded[..SHORTENED_PREFIX])
}

/// Whether the file `name` may hold a document whose id starts with the encoded `prefix`: its name
/// starts with it, or it is a shortened name (whose prefix may have been cut).
fn may_start_with(name: &str, prefix: &str) -> bool {
    name.starts_with(prefix) || name.contains(SHORTENED_MARK)
}

/// Encodes a name into one safe file name: everything but ASCII letters, digits, `-`, `_` and a
/// non-leading `.` becomes `%XX`.
pub fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (index, byte) in name.bytes().enumerate() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_')
            || (byte == b'.' && index > 0);
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn read_limited(path: &Path) -> Result<Vec<u8>, StoreError> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::NotFound);
        }
        Err(error) => return Err(error.into()),
    };
    if metadata.len() > MAX_FILE_BYTES {
        return Err(StoreError::TooLarge {
            what: "stored file",
            limit: MAX_FILE_BYTES as usize,
        });
    }
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound),
        Err(error) => Err(error.into()),
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .ok_or_else(|| StoreError::Config(format!("{} has no parent", path.display())))?;
    fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    Ok(result?)
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
            if files.len() >= MAX_SCAN_FILES {
                break;
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The entity documents whose file may hold an id starting with the encoded `prefix`
/// ([`may_start_with`]), as `read` makes them of the file's bytes; a file that cannot be read, or
/// that `read` refuses, is passed over.
fn entity_documents<T>(
    root: &Path,
    prefix: &str,
    read: impl Fn(&[u8]) -> Option<T>,
) -> Result<impl Iterator<Item = T>, StoreError> {
    Ok(json_files(&root.join(ENTITIES))?
        .into_iter()
        .filter(move |path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| may_start_with(name, prefix))
        })
        .filter_map(move |path| read(&read_limited(&path).ok()?)))
}

/// Both stores over one directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: Arc<PathBuf>,
    // Serialises read-check-write of entity documents, so revisions behave as in CouchDB.
    writes: Arc<tokio::sync::Mutex<()>>,
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: Arc::new(root.into()),
            writes: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entity_path(root: &Path, id: &str) -> PathBuf {
        root.join(ENTITIES).join(format!("{}.json", file_stem(id)))
    }

    fn attachments_dir(root: &Path, id: &str) -> PathBuf {
        root.join(ENTITIES)
            .join(format!("{}.attachments", file_stem(id)))
    }

    fn attachment_path(root: &Path, id: &str, name: &str) -> PathBuf {
        Self::attachments_dir(root, id).join(encode_name(name))
    }

    fn activation_path(root: &Path, namespace: &str, activation_id: &str) -> PathBuf {
        root.join(ACTIVATIONS)
            .join(file_stem(namespace))
            .join(format!("{}.json", file_stem(activation_id)))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Path) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || work(&root))
            .await
            .map_err(|error| StoreError::Transport(format!("file task failed: {error}")))?
    }

    /// Replaces the blocked-namespace list (for operators and tests).
    pub async fn set_blocked_namespaces(&self, names: &BTreeSet<String>) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(names)?;
        self.blocking(move |root| write_atomic(&root.join(BLOCKED), &bytes))
            .await
    }
}

fn next_revision(previous: Option<&str>, content: &[u8]) -> String {
    let generation = previous
        .and_then(|rev| rev.split_once('-'))
        .and_then(|(n, _)| n.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    let mut digest = sha2::Sha256::new();
    digest.update(content);
    digest.update(uuid::Uuid::new_v4().as_bytes());
    format!("{generation}-{}", &hex::encode(digest.finalize())[..32])
}

fn read_document(root: &Path, id: &str) -> Result<Value, StoreError> {
    let bytes = read_limited(&LocalStore::entity_path(root, id))?;
    Ok(serde_json::from_slice(&bytes).map_err(crate::document::DocumentError::from)?)
}

/// Writes `document` as the entity `id`, pretty-printed as every entity file is.
fn write_entity(root: &Path, id: &str, document: &impl serde::Serialize) -> Result<(), StoreError> {
    write_atomic(
        &LocalStore::entity_path(root, id),
        &serde_json::to_vec_pretty(document)?,
    )
}

/// The revision of the stored document `id`; `None` when there is none (or it has no `_rev`).
fn current_revision(root: &Path, id: &str) -> Result<Option<String>, StoreError> {
    match read_document(root, id) {
        Ok(value) => Ok(value
            .get("_rev")
            .and_then(Value::as_str)
            .map(str::to_string)),
        Err(StoreError::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

#[async_trait]
impl EntityStore for LocalStore {
    async fn get_action(
        &self,
        id: &str,
        revision: Option<&str>,
    ) -> Result<ActionDocument, StoreError> {
        let id = id.to_string();
        let value = self.blocking(move |root| read_document(root, &id)).await?;
        super::action_at_revision(value, revision)
    }

    async fn get_attachment(
        &self,
        id: &str,
        name: &str,
        _revision: Option<&str>,
    ) -> Result<Vec<u8>, StoreError> {
        let (id, name) = (id.to_string(), name.to_string());
        self.blocking(move |root| {
            read_limited(&LocalStore::attachment_path(root, &id, &name)).map_err(
                |error| match error {
                    // A missing attachment of a present document is a broken action, not a missing one.
                    StoreError::NotFound => StoreError::Status {
                        status: 404,
                        body: format!("attachment {name} of {id} is missing"),
                    },
                    other => other,
                },
            )
        })
        .await
    }

    async fn put_action(
        &self,
        mut document: ActionDocument,
        code: Option<Code>,
    ) -> Result<ActionDocument, StoreError> {
        let _guard = self.writes.lock().await;
        let (id, upload) = prepare_action(&mut document, code);
        let mut attachments = serde_json::Map::new();
        if let Some((name, bytes, content_type)) = &upload {
            attachments.insert(
                name.clone(),
                serde_json::json!({"content_type": content_type, "length": bytes.len(), "stub": true}),
            );
        }
        document.attachments = (!attachments.is_empty()).then_some(attachments);
        self.blocking(move |root| {
            let current = current_revision(root, &id)?;
            if current != document.rev {
                return Err(StoreError::Conflict);
            }
            let attachments_dir = LocalStore::attachments_dir(root, &id);
            if attachments_dir.exists() {
                fs::remove_dir_all(&attachments_dir)?;
            }
            if let Some((name, bytes, _)) = &upload {
                write_atomic(&LocalStore::attachment_path(root, &id, name), bytes)?;
            }
            let content = serde_json::to_vec(&document)?;
            document.rev = Some(next_revision(current.as_deref(), &content));
            write_entity(root, &id, &document)?;
            Ok(document)
        })
        .await
    }

    async fn delete_action(&self, id: &str, revision: Option<&str>) -> Result<(), StoreError> {
        let _guard = self.writes.lock().await;
        let id = id.to_string();
        let revision = revision.map(str::to_string);
        self.blocking(move |root| {
            let value = read_document(root, &id)?;
            let current = value.get("_rev").and_then(Value::as_str);
            if revision.is_some() && revision.as_deref() != current {
                return Err(StoreError::Conflict);
            }
            fs::remove_file(LocalStore::entity_path(root, &id))?;
            let attachments_dir = LocalStore::attachments_dir(root, &id);
            if attachments_dir.exists() {
                fs::remove_dir_all(attachments_dir)?;
            }
            Ok(())
        })
        .await
    }

    async fn list_actions(
        &self,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<ActionDocument>, StoreError> {
        let prefix = encode_name(&format!("{namespace}/"));
        let namespace = namespace.to_string();
        self.blocking(move |root| {
            let mut documents: Vec<_> =
                entity_documents(root, &prefix, |bytes| ActionDocument::from_json(bytes).ok())?
                    .filter(|document| document.namespace == namespace)
                    .collect();
            documents.sort_by_key(ActionDocument::doc_id);
            Ok(documents.into_iter().skip(skip).take(limit).collect())
        })
        .await
    }

    async fn get_document(&self, id: &str) -> Result<Value, StoreError> {
        let id = id.to_string();
        self.blocking(move |root| read_document(root, &id)).await
    }

    async fn put_document(&self, id: &str, document: Value) -> Result<Value, StoreError> {
        let _guard = self.writes.lock().await;
        let Value::Object(mut document) = document else {
            return Err(StoreError::Config(format!(
                "document {id} is not a JSON object"
            )));
        };
        let id = id.to_string();
        document.insert("_id".into(), Value::String(id.clone()));
        self.blocking(move |root| {
            let current = current_revision(root, &id)?;
            let expected = document
                .get("_rev")
                .and_then(Value::as_str)
                .map(str::to_string);
            if current != expected {
                return Err(StoreError::Conflict);
            }
            let content = serde_json::to_vec(&document)?;
            let revision = next_revision(current.as_deref(), &content);
            document.insert("_rev".into(), Value::String(revision));
            let document = Value::Object(document);
            write_entity(root, &id, &document)?;
            Ok(document)
        })
        .await
    }

    async fn delete_document(&self, id: &str, revision: Option<&str>) -> Result<(), StoreError> {
        // The same file layout: an action's delete also removes a document without attachments.
        self.delete_action(id, revision).await
    }

    async fn list_documents(
        &self,
        entity_type: &str,
        namespace: &str,
    ) -> Result<Vec<Value>, StoreError> {
        let prefix = encode_name(&format!("{namespace}/"));
        let (entity_type, namespace) = (entity_type.to_string(), namespace.to_string());
        self.blocking(move |root| {
            let mut documents: Vec<_> = entity_documents(root, &prefix, |bytes| {
                serde_json::from_slice::<Value>(bytes).ok()
            })?
            .filter(|document| {
                let field = |name: &str| document.get(name).and_then(Value::as_str);
                field("entityType") == Some(entity_type.as_str())
                    && field("namespace") == Some(namespace.as_str())
            })
            .collect();
            documents.sort_by(|a, b| {
                let id = |d: &Value| d.get("_id").and_then(Value::as_str).map(str::to_string);
                id(a).cmp(&id(b))
            });
            Ok(documents)
        })
        .await
    }

    async fn blocked_namespaces(&self) -> Result<BTreeSet<String>, StoreError> {
        self.blocking(|root| match read_limited(&root.join(BLOCKED)) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
            Err(StoreError::NotFound) => Ok(BTreeSet::new()),
            Err(error) => Err(error),
        })
        .await
    }
}

#[async_trait]
impl ActivationStore for LocalStore {
    async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError> {
        let document = activation.to_document(std::time::SystemTime::now());
        let bytes = serde_json::to_vec_pretty(&document)?;
        let path = Self::activation_path(
            &self.root,
            &activation.namespace,
            activation.activation_id.as_str(),
        );
        self.blocking(move |_| write_atomic(&path, &bytes)).await
    }

    async fn get(
        &self,
        namespace: &str,
        activation_id: &str,
    ) -> Result<WhiskActivation, StoreError> {
        let path = Self::activation_path(&self.root, namespace, activation_id);
        self.blocking(move |_| {
            let bytes = read_limited(&path)?;
            let document: ActivationDocument = serde_json::from_slice(&bytes)?;
            Ok(document.activation)
        })
        .await
    }

    async fn list(&self, query: &ActivationQuery) -> Result<Vec<WhiskActivation>, StoreError> {
        let dir = self
            .root
            .join(ACTIVATIONS)
            .join(file_stem(&query.namespace));
        let activations = self
            .blocking(move |_| {
                let mut activations = Vec::new();
                for path in json_files(&dir)? {
                    let Ok(bytes) = read_limited(&path) else {
                        continue;
                    };
                    if let Ok(document) = serde_json::from_slice::<ActivationDocument>(&bytes) {
                        activations.push(document.activation);
                    }
                }
                Ok(activations)
            })
            .await?;
        Ok(query.apply(activations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_encode_to_single_safe_file_names() {
        assert_eq!(encode_name("guest/hello"), "guest%2Fhello");
        assert_eq!(encode_name("whisk.system/x"), "whisk.system%2Fx");
        assert_eq!(encode_name(".."), "%2E.");
        assert_eq!(encode_name("a b"), "a%20b");
    }

    #[test]
    fn test_long_names_get_short_distinct_file_names() {
        let short = format!("guest/{}", "a".repeat(200));
        assert_eq!(file_stem(&short), encode_name(&short));
        let long = format!("guest/{}", "é".repeat(128));
        let other = format!("guest/{}b", "é".repeat(127));
        let (stem, other_stem) = (file_stem(&long), file_stem(&other));
        assert!(stem.len() + ".attachments".len() <= 255, "{}", stem.len());
        assert_ne!(stem, other_stem);
        assert!(may_start_with(&stem, &encode_name("guest/")));
        assert!(!may_start_with(
            &encode_name("other/x"),
            &encode_name("guest/")
        ));
    }

    #[tokio::test]
    async fn test_documents_with_the_longest_names_are_stored_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        // The controller's longest names: 256 characters, here each encoded in 6 bytes or more.
        let namespace = "ü".repeat(128);
        let id = format!("{namespace}/{}", "ö".repeat(128));
        let document = serde_json::json!({
            "entityType": "package", "namespace": namespace, "name": "ö".repeat(128)
        });
        let stored = store.put_document(&id, document).await.unwrap();
        assert_eq!(store.get_document(&id).await.unwrap(), stored);
        let listed = store.list_documents("package", &namespace).await.unwrap();
        assert_eq!(listed, vec![stored.clone()]);
        let rev = stored
            .get("_rev")
            .and_then(Value::as_str)
            .map(str::to_string);
        store.delete_document(&id, rev.as_deref()).await.unwrap();
        assert!(matches!(
            store.get_document(&id).await,
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn test_revisions_count_up() {
        let first = next_revision(None, b"x");
        assert!(first.starts_with("1-"));
        assert_eq!(first.len(), 34);
        assert!(next_revision(Some(&first), b"y").starts_with("2-"));
    }

    #[tokio::test]
    async fn test_documents_of_other_types_are_revisioned_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let package = |namespace: &str| serde_json::json!({"entityType": "package", "namespace": namespace, "name": "p"});
        let created = store
            .put_document("guest/p", package("guest"))
            .await
            .unwrap();
        let rev = created["_rev"].as_str().unwrap().to_string();
        assert!(rev.starts_with("1-"));
        assert_eq!(created["_id"], "guest/p");
        // A create over an existing document, or a stale revision, is a conflict.
        assert!(matches!(
            store.put_document("guest/p", package("guest")).await,
            Err(StoreError::Conflict)
        ));
        let mut update = package("guest");
        update["_rev"] = Value::String(rev.clone());
        let updated = store.put_document("guest/p", update).await.unwrap();
        assert!(updated["_rev"].as_str().unwrap().starts_with("2-"));
        assert_eq!(store.get_document("guest/p").await.unwrap(), updated);
        store
            .put_document("guest/p/q", package("guest/p"))
            .await
            .unwrap();
        let listed = store.list_documents("package", "guest").await.unwrap();
        assert_eq!(listed, vec![updated.clone()]);
        assert!(
            store
                .list_documents("action", "guest")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            store.delete_document("guest/p", Some(&rev)).await,
            Err(StoreError::Conflict)
        ));
        store.delete_document("guest/p", None).await.unwrap();
        assert!(matches!(
            store.get_document("guest/p").await,
            Err(StoreError::NotFound)
        ));
    }
}
