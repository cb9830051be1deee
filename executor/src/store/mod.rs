//! The entity store (action documents) and the activation store, over CouchDB ([`couchdb`]) or a local
//! directory ([`local`]), behind two traits so the Kafka invoker and the standalone server take
//! `Arc<dyn EntityStore>` / `Arc<dyn ActivationStore>` without knowing which.
//!
//! [`open_stores`] opens the pair a configuration names. [`should_store`] is the store-level decision
//! of docs/protocol.md §8. Loading an action from the entity store for an activation is
//! [`crate::loader::ActionLoader`]'s.

pub mod couchdb;
pub mod local;
pub mod record_queue;
pub mod write_behind;

pub use record_queue::{DEFAULT_RECORD_QUEUE_CAPACITY, RecordQueue};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use factory::{Code, Status};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::document::{ActionDocument, DocumentError};
use crate::message::UserLimits;
use crate::record::WhiskActivation;

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The document does not exist.
    #[error("document not found")]
    NotFound,
    /// A write raced another (CouchDB 409, or a stale `_rev`).
    #[error("document update conflict")]
    Conflict,
    /// The document's revision is not the one asked for.
    #[error("revision mismatch: asked for {expected}, found {actual}")]
    RevisionMismatch {
        /// The revision asked for.
        expected: String,
        /// The revision found.
        actual: String,
    },
    /// The document is not a readable action (or activation).
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The store answered with an unexpected status.
    #[error("store answered HTTP {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The store could not be reached or the exchange broke.
    #[error("store request failed: {0}")]
    Transport(String),
    /// A response or file larger than the store accepts.
    #[error("{what} larger than {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// A local file operation failed.
    #[error("file store: {0}")]
    Io(#[from] std::io::Error),
    /// A body that is not the JSON expected.
    #[error("malformed store response: {0}")]
    Json(#[from] serde_json::Error),
    /// Bad store configuration.
    #[error("store configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// An equal error (same variant and text) for one more waiter of a fetch several callers
    /// shared (the action cache hands one failure to each of them).
    pub fn shared_copy(&self) -> Self {
        fn json(error: &serde_json::Error) -> serde_json::Error {
            <serde_json::Error as serde::de::Error>::custom(error)
        }
        match self {
            Self::NotFound => Self::NotFound,
            Self::Conflict => Self::Conflict,
            Self::RevisionMismatch { expected, actual } => Self::RevisionMismatch {
                expected: expected.clone(),
                actual: actual.clone(),
            },
            Self::Document(error) => Self::Document(match error {
                DocumentError::Json(error) => DocumentError::Json(json(error)),
                DocumentError::WrongType(kind) => DocumentError::WrongType(kind.clone()),
                DocumentError::UnknownKind(kind) => DocumentError::UnknownKind(kind.clone()),
                DocumentError::Attachment(text) => DocumentError::Attachment(text.clone()),
                DocumentError::NotUtf8 => DocumentError::NotUtf8,
            }),
            Self::Status { status, body } => Self::Status {
                status: *status,
                body: body.clone(),
            },
            Self::Transport(text) => Self::Transport(text.clone()),
            Self::TooLarge { what, limit } => Self::TooLarge {
                what,
                limit: *limit,
            },
            Self::Io(error) => Self::Io(std::io::Error::new(error.kind(), error.to_string())),
            Self::Json(error) => Self::Json(json(error)),
            Self::Config(text) => Self::Config(text.clone()),
        }
    }

    /// Whether trying again later may succeed: the store was unreachable, timed out or answered
    /// with a server error (5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Io(_) => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Where action documents live: reads for the invoker, writes for the standalone server.
#[async_trait]
pub trait EntityStore: Send + Sync {
    /// The action document `id` (`ns[/pkg]/name`). With `revision`, a different current revision is
    /// [`StoreError::RevisionMismatch`].
    async fn get_action(
        &self,
        id: &str,
        revision: Option<&str>,
    ) -> Result<ActionDocument, StoreError>;

    /// The attachment `name` of document `id` (`couch:<uuid>` → `<uuid>`, or a legacy name).
    async fn get_attachment(
        &self,
        id: &str,
        name: &str,
        revision: Option<&str>,
    ) -> Result<Vec<u8>, StoreError>;

    /// Creates or replaces an action with `code` stored as the controller does (`mem:` below 16 KiB,
    /// else an attachment). `document.rev` must be the current revision to replace one (else
    /// [`StoreError::Conflict`]); `None` creates. Returns the stored document with its new revision.
    async fn put_action(
        &self,
        document: ActionDocument,
        code: Option<Code>,
    ) -> Result<ActionDocument, StoreError>;

    /// Deletes an action (its current revision when `revision` is `None`).
    async fn delete_action(&self, id: &str, revision: Option<&str>) -> Result<(), StoreError>;

    /// The actions whose `namespace` field is exactly `namespace` (`ns` or `ns/pkg`), ordered by id,
    /// after `skip`, at most `limit`.
    async fn list_actions(
        &self,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<ActionDocument>, StoreError>;

    /// The blocked namespaces (docs/protocol.md §7): the row keys of the subjects view
    /// `namespaceThrottlings/blockedNamespaces`.
    async fn blocked_namespaces(&self) -> Result<BTreeSet<String>, StoreError>;

    /// The document `id` of any entity type (a package, for the standalone server) as stored,
    /// `_id` and `_rev` included. Stores that keep only actions answer [`StoreError::Config`].
    async fn get_document(&self, id: &str) -> Result<serde_json::Value, StoreError> {
        Err(unsupported_documents(id))
    }

    /// Creates or replaces the document `id` (a JSON object). Its `_rev` must be the current
    /// revision to replace one (else [`StoreError::Conflict`]); none creates. Returns the document
    /// as stored, with its new `_rev`.
    async fn put_document(
        &self,
        id: &str,
        document: serde_json::Value,
    ) -> Result<serde_json::Value, StoreError> {
        let _ = document;
        Err(unsupported_documents(id))
    }

    /// Deletes the document `id` of any entity type (its current revision when `revision` is
    /// `None`).
    async fn delete_document(&self, id: &str, revision: Option<&str>) -> Result<(), StoreError> {
        let _ = revision;
        Err(unsupported_documents(id))
    }

    /// The documents whose `entityType` is `entity_type` and whose `namespace` field is exactly
    /// `namespace`, ordered by id.
    async fn list_documents(
        &self,
        entity_type: &str,
        namespace: &str,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let _ = entity_type;
        Err(unsupported_documents(namespace))
    }
}

fn unsupported_documents(id: &str) -> StoreError {
    StoreError::Config(format!(
        "this entity store keeps only actions (asked for {id})"
    ))
}

/// The two stores of a node, as [`open_stores`] makes them from the configuration.
#[derive(Clone)]
pub struct Stores {
    /// Action documents (and the blacklist).
    pub entities: Arc<dyn EntityStore>,
    /// Activation records.
    pub activations: Arc<dyn ActivationStore>,
}

/// Reads an action document, checking its `_rev` against the `revision` a message asked for, as
/// OpenWhisk's `StoreUtils.deserialize` does (a mismatch is retried without revision by the loader).
fn action_at_revision(
    value: serde_json::Value,
    revision: Option<&str>,
) -> Result<ActionDocument, StoreError> {
    if let Some(expected) = revision {
        let actual = value
            .get("_rev")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        if actual != expected {
            return Err(StoreError::RevisionMismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    Ok(ActionDocument::from_value(value)?)
}

/// The stores `config` names: CouchDB when `config.couchdb` is set, else the local directory store
/// at `config.local_store.dir`. Must be called inside a tokio runtime (the CouchDB activation store
/// spawns its batcher). Databases are not created: OpenWhisk's deployment creates them.
pub fn open_stores(config: &crate::config::InvokerConfig) -> Result<Stores, StoreError> {
    match &config.couchdb {
        Some(couch) => Ok(Stores {
            entities: Arc::new(couchdb::CouchEntityStore::new(couch)?),
            activations: Arc::new(couchdb::CouchActivationStore::new(couch)?),
        }),
        None => {
            let local = Arc::new(local::LocalStore::new(config.local_store.dir.clone()));
            Ok(Stores {
                entities: local.clone(),
                activations: local,
            })
        }
    }
}

/// A query over stored activations (the standalone server's `GET /activations`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationQuery {
    /// The invoking namespace.
    pub namespace: String,
    /// Only activations whose `name` (or `path` annotation) is this, when set.
    pub name: Option<String>,
    /// Skip this many (after filtering, newest first).
    pub skip: usize,
    /// At most this many; 0 means [`DEFAULT_LIST_LIMIT`].
    pub limit: usize,
    /// Only activations that started at or after this epoch ms.
    pub since: Option<u64>,
    /// Only activations that started at or before this epoch ms.
    pub upto: Option<u64>,
}

/// Default page size of a list (`Collection.DEFAULT_LIST_LIMIT`): activation lists here, and every
/// list of the standalone server's REST API.
pub const DEFAULT_LIST_LIMIT: usize = 30;
/// Largest page size of a list (`Collection.MAX_LIST_LIMIT`, OpenWhisk's `maxActivationLimit`);
/// in the REST API `limit=0` means this many.
pub const MAX_LIST_LIMIT: usize = 200;

impl ActivationQuery {
    /// Whether `activation` passes the filters (not skip/limit).
    pub fn matches(&self, activation: &WhiskActivation) -> bool {
        if activation.namespace != self.namespace {
            return false;
        }
        if let Some(name) = &self.name {
            let path = activation
                .annotations
                .get("path")
                .and_then(serde_json::Value::as_str);
            let short = name.trim_start_matches('/');
            if activation.name != *name && path != Some(short) {
                return false;
            }
        }
        self.since.is_none_or(|since| activation.start >= since)
            && self.upto.is_none_or(|upto| activation.start <= upto)
    }

    /// The effective page size.
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => DEFAULT_LIST_LIMIT,
            limit => limit.min(MAX_LIST_LIMIT),
        }
    }

    /// Filters, sorts newest first, and pages a scan's results.
    pub fn apply(&self, mut activations: Vec<WhiskActivation>) -> Vec<WhiskActivation> {
        activations.retain(|activation| self.matches(activation));
        activations.sort_by(|a, b| {
            b.start
                .cmp(&a.start)
                .then_with(|| b.activation_id.cmp(&a.activation_id))
        });
        activations
            .into_iter()
            .skip(self.skip)
            .take(self.page_size())
            .collect()
    }
}

/// Where activation records go (and, for the standalone server, come back from).
#[async_trait]
pub trait ActivationStore: Send + Sync {
    /// Stores one record as `_id = <namespace>/<activationId>`, `entityType: "activation"`,
    /// `updated` = now. Completes when the record is written (or finally failed).
    async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError>;

    /// Stores several records; one result per record, in order. By default one [`store`] after
    /// the other; a store with a batch write (CouchDB's `_bulk_docs`) overrides it.
    ///
    /// [`store`]: ActivationStore::store
    async fn store_batch(&self, activations: &[WhiskActivation]) -> Vec<Result<(), StoreError>> {
        let mut results = Vec::with_capacity(activations.len());
        for activation in activations {
            results.push(self.store(activation).await);
        }
        results
    }

    /// One record.
    async fn get(
        &self,
        namespace: &str,
        activation_id: &str,
    ) -> Result<WhiskActivation, StoreError>;

    /// Records of a namespace, newest first.
    async fn list(&self, query: &ActivationQuery) -> Result<Vec<WhiskActivation>, StoreError>;
}

// ------------------------------------------------------------------------------------------------
// Store levels (docs/protocol.md §8)

/// `whisk.activation.store-(non-)blocking-result-level`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreLevel {
    /// Store every record (default).
    #[default]
    #[serde(rename = "STORE_ALWAYS")]
    Always,
    /// Store records whose status is not success.
    #[serde(rename = "STORE_FAILURES")]
    Failures,
    /// Store records with status 2 or 3.
    #[serde(rename = "STORE_FAILURES_NOT_APPLICATION_ERRORS")]
    FailuresNotApplicationErrors,
}

impl StoreLevel {
    /// Reads the OpenWhisk name (`STORE_ALWAYS` ...).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "STORE_ALWAYS" => Some(Self::Always),
            "STORE_FAILURES" => Some(Self::Failures),
            "STORE_FAILURES_NOT_APPLICATION_ERRORS" => Some(Self::FailuresNotApplicationErrors),
            _ => None,
        }
    }

    fn admits(self, status: Status) -> bool {
        match self {
            Self::Always => true,
            Self::Failures => status != Status::Success,
            Self::FailuresNotApplicationErrors => {
                matches!(status, Status::DeveloperError | Status::WhiskError)
            }
        }
    }
}

/// Whether to store a record (`ActivationStore.storeAfterCheck`): never when the namespace has
/// `storeActivations: false`; always with extra logging; otherwise per the level for blocking or
/// non-blocking activations.
pub fn should_store(
    user_limits: &UserLimits,
    extra_logging: bool,
    blocking: bool,
    status: Status,
    blocking_level: StoreLevel,
    non_blocking_level: StoreLevel,
) -> bool {
    if user_limits.store_activations == Some(false) {
        return false;
    }
    if extra_logging {
        return true;
    }
    let level = if blocking {
        blocking_level
    } else {
        non_blocking_level
    };
    level.admits(status)
}

/// Epoch ms now (for `updated`).
pub(crate) fn now_millis() -> u64 {
    crate::record::epoch_millis(SystemTime::now())
}

/// Moves what is already queued in `receiver` into `batch`, until it holds `max`: a batch takes
/// what arrived while its first item was awaited, without waiting for more.
pub(crate) fn take_ready<T>(receiver: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize) {
    while batch.len() < max {
        match receiver.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_store_levels() {
        let none = UserLimits::default();
        let (always, failures, hard) = (
            StoreLevel::Always,
            StoreLevel::Failures,
            StoreLevel::FailuresNotApplicationErrors,
        );
        let off = UserLimits {
            store_activations: Some(false),
            ..UserLimits::default()
        };
        // (limits, extra logging, blocking, status, blocking level, non-blocking level, stored)
        #[rustfmt::skip]
        let cases = [
            (&none, false, true, Status::Success, always, hard, true),
            (&none, false, false, Status::Success, always, hard, false),
            (&none, false, false, Status::ApplicationError, always, hard, false),
            (&none, false, false, Status::DeveloperError, always, hard, true),
            (&none, false, true, Status::ApplicationError, failures, always, true),
            (&none, false, true, Status::Success, failures, always, false),
            (&none, true, true, Status::Success, failures, failures, true),
            (&off, true, true, Status::WhiskError, always, always, false),
        ];
        for (limits, extra_logging, blocking, status, blocking_level, non_blocking_level, stored) in
            cases
        {
            assert_eq!(
                should_store(
                    limits,
                    extra_logging,
                    blocking,
                    status,
                    blocking_level,
                    non_blocking_level
                ),
                stored,
                "{status:?}, blocking {blocking}, extra logging {extra_logging}, levels \
                 {blocking_level:?}/{non_blocking_level:?}, store_activations {:?}",
                limits.store_activations
            );
        }
        assert_eq!(
            StoreLevel::parse("STORE_FAILURES"),
            Some(StoreLevel::Failures)
        );
    }
}
