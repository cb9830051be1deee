//! The entity store (action documents) and the activation store, over CouchDB ([`couchdb`]) or a local
//! directory ([`local`]), behind two traits so the Kafka invoker and the standalone server take
//! `Arc<dyn EntityStore>` / `Arc<dyn ActivationStore>` without knowing which.
//!
//! [`ActionLoader`] is what the invoker calls per activation: it fetches the document (cache by
//! (id, revision) when a revision is given, retry latest on a revision mismatch), the code, resolves
//! the kind, re-checks limits against the namespace's and classifies every failure into OpenWhisk's
//! [`FallbackReason`] (spec 3.1). [`should_store`] is the store-level decision of spec 7.5.

pub mod couchdb;
pub mod local;
pub mod write_behind;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use factory::{Code, Limits, Status};
use serde::{Deserialize, Serialize};

use crate::action::ExecutableAction;
use crate::document::{
    ActionDocument, AttachmentLocation, CodeSource, DocumentError, KindResolver, code_from_bytes,
    decode_inline,
};
use crate::message::{ActivationMessage, UserLimits};
use crate::record::{FallbackReason, WhiskActivation};

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

    /// The blocked namespaces (spec 6.8): the row keys of the subjects view
    /// `namespaceThrottlings/blockedNamespaces`.
    async fn blocked_namespaces(&self) -> Result<BTreeSet<String>, StoreError>;
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
// Store levels (spec 7.5)

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

// ------------------------------------------------------------------------------------------------
// Limit ranges

/// The system's allowed ranges of action limits (`whisk.time-limit`, `whisk.memory`,
/// `whisk.log-limit`, `whisk.concurrency-limit`), which a namespace's own limits override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitRanges {
    /// Smallest timeout, ms. Default 100.
    pub min_timeout_ms: u64,
    /// Largest timeout, ms. Default 300000.
    pub max_timeout_ms: u64,
    /// Smallest memory, MB. Default 128.
    pub min_memory_mb: u64,
    /// Largest memory, MB. Default 512.
    pub max_memory_mb: u64,
    /// Smallest log limit, MB. Default 0.
    pub min_logs_mb: u64,
    /// Largest log limit, MB. Default 10.
    pub max_logs_mb: u64,
    /// Smallest concurrency. Default 1.
    pub min_concurrency: u64,
    /// Largest concurrency. Default 1.
    pub max_concurrency: u64,
}

impl Default for LimitRanges {
    fn default() -> Self {
        Self {
            min_timeout_ms: factory::limits::MIN_TIMEOUT_MS,
            max_timeout_ms: factory::limits::MAX_TIMEOUT_MS,
            min_memory_mb: u64::from(factory::limits::MIN_MEMORY_MB),
            max_memory_mb: u64::from(factory::limits::MAX_MEMORY_MB),
            min_logs_mb: 0,
            max_logs_mb: u64::from(factory::limits::MAX_LOGS_MB),
            min_concurrency: 1,
            max_concurrency: 1,
        }
    }
}

/// One action limit, as OpenWhisk's threshold messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// `timeout`, in milliseconds (the message says `duration`).
    Timeout,
    /// `memory`, in MB.
    Memory,
    /// `logs`, in MB (the message says `log`, OpenWhisk's `LogLimit.logLimitFieldName`).
    Logs,
    /// `concurrency`, activations per container.
    Concurrency,
}

impl LimitRanges {
    /// Checks `limits` against the namespace's limits, each falling back to the system range
    /// (`ActionLimits.checkLimits`). The error is the message recorded as an application error.
    pub fn check(&self, limits: &Limits, user: &UserLimits) -> Result<(), String> {
        let (min, max) = self.range(LimitKind::Timeout);
        Self::within(
            LimitKind::Timeout,
            i64::try_from(limits.timeout).unwrap_or(i64::MAX),
            user.min_action_timeout.unwrap_or(min),
            user.max_action_timeout.unwrap_or(max),
        )?;
        let (min, max) = self.range(LimitKind::Memory);
        Self::within(
            LimitKind::Memory,
            i64::from(limits.memory),
            user.min_action_memory.unwrap_or(min),
            user.max_action_memory.unwrap_or(max),
        )?;
        let (min, max) = self.range(LimitKind::Logs);
        Self::within(
            LimitKind::Logs,
            i64::from(limits.logs),
            user.min_action_logs.unwrap_or(min),
            user.max_action_logs.unwrap_or(max),
        )?;
        let (min, max) = self.range(LimitKind::Concurrency);
        Self::within(
            LimitKind::Concurrency,
            i64::from(limits.concurrency),
            user.min_action_concurrency.unwrap_or(min),
            user.max_action_concurrency.unwrap_or(max),
        )
    }

    /// The system range `(min, max)` of one limit.
    pub fn range(&self, kind: LimitKind) -> (u64, u64) {
        match kind {
            LimitKind::Timeout => (self.min_timeout_ms, self.max_timeout_ms),
            LimitKind::Memory => (self.min_memory_mb, self.max_memory_mb),
            LimitKind::Logs => (self.min_logs_mb, self.max_logs_mb),
            LimitKind::Concurrency => (self.min_concurrency, self.max_concurrency),
        }
    }

    /// Checks one limit's `value` against `min..=max` with OpenWhisk's message
    /// (`Messages.sizeBelowAllowedThreshold` and friends): the one source of these texts, for the
    /// invoker's records and the standalone server's PUT alike. Signed, because a PUT may ask for
    /// a negative value and is answered with the same message.
    pub fn within(kind: LimitKind, value: i64, min: u64, max: u64) -> Result<(), String> {
        let (what, unit) = match kind {
            LimitKind::Timeout => ("duration", " milliseconds"),
            LimitKind::Memory => ("memory", " MB"),
            LimitKind::Logs => ("log", " MB"),
            LimitKind::Concurrency => ("concurrency", ""),
        };
        let wide = i128::from(value);
        if wide < i128::from(min) {
            Err(format!(
                "{what} {value}{unit} below allowed threshold of {min}{unit}"
            ))
        } else if wide > i128::from(max) {
            Err(format!(
                "{what} {value}{unit} exceeds allowed threshold of {max}{unit}"
            ))
        } else {
            Ok(())
        }
    }
}

// ------------------------------------------------------------------------------------------------
// ActionLoader

/// Default number of executable actions the loader keeps (each holds its code).
pub const DEFAULT_ACTION_CACHE_ENTRIES: usize = 1024;

/// A small bounded cache keyed by (document id, revision), evicting the oldest insert.
#[derive(Debug)]
struct ActionCache {
    capacity: usize,
    entries: HashMap<(String, String), Arc<ExecutableAction>>,
    order: VecDeque<(String, String)>,
}

impl ActionCache {
    fn get(&self, key: &(String, String)) -> Option<Arc<ExecutableAction>> {
        self.entries.get(key).cloned()
    }

    fn insert(&mut self, key: (String, String), action: Arc<ExecutableAction>) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.insert(key.clone(), action).is_none() {
            self.order.push_back(key);
        }
        while self.entries.len() > self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
    }
}

/// Whether a load was served by the [`ActionLoader`]'s cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    /// Served from the cache.
    Hit,
    /// Read from the store: not cached yet, or no revision given (which bypasses the cache).
    Miss,
}

impl CacheLookup {
    /// The metric label (`hit`, `miss`).
    pub fn as_str(self) -> &'static str {
        match self {
            CacheLookup::Hit => "hit",
            CacheLookup::Miss => "miss",
        }
    }
}

/// Turns an [`ActivationMessage`] into a runnable [`ExecutableAction`] as `InvokerReactive` does,
/// or into the [`FallbackReason`] the fallback record carries.
pub struct ActionLoader {
    store: Arc<dyn EntityStore>,
    resolver: Arc<dyn KindResolver>,
    ranges: LimitRanges,
    cache: Mutex<ActionCache>,
}

impl ActionLoader {
    /// A loader over `store`, resolving kinds with `resolver`, checking limits against `ranges`,
    /// caching up to `cache_entries` actions.
    pub fn new(
        store: Arc<dyn EntityStore>,
        resolver: Arc<dyn KindResolver>,
        ranges: LimitRanges,
        cache_entries: usize,
    ) -> Self {
        Self {
            store,
            resolver,
            ranges,
            cache: Mutex::new(ActionCache {
                capacity: cache_entries,
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The entity store behind the loader.
    pub fn store(&self) -> &Arc<dyn EntityStore> {
        &self.store
    }

    /// Fetches, checks and classifies the action of `message` (spec 3.1 steps 3-5).
    pub async fn load(
        &self,
        message: &ActivationMessage,
    ) -> Result<Arc<ExecutableAction>, FallbackReason> {
        self.load_with_lookup(message).await.0
    }

    /// [`ActionLoader::load`], also saying whether the document came from the cache.
    pub async fn load_with_lookup(
        &self,
        message: &ActivationMessage,
    ) -> (Result<Arc<ExecutableAction>, FallbackReason>, CacheLookup) {
        let id = message.action_doc_id();
        let (loaded, lookup) = self.fetch(&id, message.revision.as_deref()).await;
        (self.check(message, &id, loaded), lookup)
    }

    fn check(
        &self,
        message: &ActivationMessage,
        id: &str,
        loaded: Result<Arc<ExecutableAction>, StoreError>,
    ) -> Result<Arc<ExecutableAction>, FallbackReason> {
        let action = loaded.map_err(|error| {
            let reason = classify(&error);
            tracing::warn!(
                activation_id = %message.activation_id,
                action = %id,
                %error,
                "action fetch failed"
            );
            reason
        })?;
        if !action.executable {
            tracing::warn!(
                activation_id = %message.activation_id,
                action = %id,
                "non-executable action reached the invoker"
            );
            return Err(FallbackReason::FetchFailed);
        }
        self.ranges
            .check(&action.limits, &message.user.limits)
            .map_err(FallbackReason::LimitViolation)?;
        Ok(action)
    }

    /// Fetches document `id` at `revision` (cache used only when a revision is given; on a revision
    /// mismatch, once more without revision) with its code.
    pub async fn load_document(
        &self,
        id: &str,
        revision: Option<&str>,
    ) -> Result<Arc<ExecutableAction>, StoreError> {
        self.fetch(id, revision).await.0
    }

    async fn fetch(
        &self,
        id: &str,
        revision: Option<&str>,
    ) -> (Result<Arc<ExecutableAction>, StoreError>, CacheLookup) {
        if let Some(revision) = revision {
            let key = (id.to_string(), revision.to_string());
            let cached = self
                .cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(&key);
            if let Some(action) = cached {
                return (Ok(action), CacheLookup::Hit);
            }
        }
        (self.fetch_from_store(id, revision).await, CacheLookup::Miss)
    }

    async fn fetch_from_store(
        &self,
        id: &str,
        revision: Option<&str>,
    ) -> Result<Arc<ExecutableAction>, StoreError> {
        let document = match self.store.get_action(id, revision).await {
            Err(StoreError::RevisionMismatch { .. }) => self.store.get_action(id, None).await?,
            other => other?,
        };
        let rev = document.rev.clone();
        let code = self.fetch_code(id, &document).await?;
        let action = Arc::new(document.into_executable(code, self.resolver.as_ref())?);
        if let Some(rev) = rev {
            self.cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert((id.to_string(), rev), action.clone());
        }
        Ok(action)
    }

    /// The code of `document` (id `id`): decoded inline code, or its attachment read from the
    /// store; `None` for an action without code. The standalone server's reads use it too.
    pub async fn fetch_code(
        &self,
        id: &str,
        document: &ActionDocument,
    ) -> Result<Option<Code>, StoreError> {
        let Some((source, binary)) = document.exec.code() else {
            return Ok(None);
        };
        let code = match source {
            CodeSource::Inline(text) => decode_inline(text, binary)?,
            CodeSource::Attachment(reference) => match reference.location()? {
                AttachmentLocation::Inline(bytes) => code_from_bytes(bytes, binary)?,
                AttachmentLocation::Document(name) => {
                    let bytes = self
                        .store
                        .get_attachment(id, &name, document.rev.as_deref())
                        .await?;
                    code_from_bytes(bytes, binary)?
                }
            },
        };
        Ok(Some(code))
    }
}

/// The fallback reason of a fetch failure (spec 3.1 step 7).
pub fn classify(error: &StoreError) -> FallbackReason {
    match error {
        StoreError::NotFound => FallbackReason::NotFound,
        StoreError::Document(DocumentError::Attachment(_)) => FallbackReason::FetchFailed,
        StoreError::Document(_) | StoreError::Json(_) => FallbackReason::Incompatible,
        _ => FallbackReason::FetchFailed,
    }
}

/// Epoch ms now (for `updated`).
pub(crate) fn now_millis() -> u64 {
    crate::record::epoch_millis(SystemTime::now())
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
        assert!(should_store(
            &none,
            false,
            true,
            Status::Success,
            always,
            hard
        ));
        assert!(!should_store(
            &none,
            false,
            false,
            Status::Success,
            always,
            hard
        ));
        assert!(!should_store(
            &none,
            false,
            false,
            Status::ApplicationError,
            always,
            hard
        ));
        assert!(should_store(
            &none,
            false,
            false,
            Status::DeveloperError,
            always,
            hard
        ));
        assert!(should_store(
            &none,
            false,
            true,
            Status::ApplicationError,
            failures,
            always
        ));
        assert!(!should_store(
            &none,
            false,
            true,
            Status::Success,
            failures,
            always
        ));
        assert!(should_store(
            &none,
            true,
            true,
            Status::Success,
            failures,
            failures
        ));
        let off = UserLimits {
            store_activations: Some(false),
            ..UserLimits::default()
        };
        assert!(!should_store(
            &off,
            true,
            true,
            Status::WhiskError,
            always,
            always
        ));
        assert_eq!(
            StoreLevel::parse("STORE_FAILURES"),
            Some(StoreLevel::Failures)
        );
    }

    #[test]
    fn test_limit_ranges_obeyed_and_violated() {
        let ranges = LimitRanges::default();
        let none = UserLimits::default();
        assert!(ranges.check(&Limits::default(), &none).is_ok());
        let too_long = Limits {
            timeout: 300_001,
            ..Limits::default()
        };
        assert_eq!(
            ranges.check(&too_long, &none).unwrap_err(),
            "duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds"
        );
        let big = Limits {
            memory: 1024,
            ..Limits::default()
        };
        assert_eq!(
            ranges.check(&big, &none).unwrap_err(),
            "memory 1024 MB exceeds allowed threshold of 512 MB"
        );
        let namespace = UserLimits {
            max_action_memory: Some(2048),
            min_action_timeout: Some(1000),
            ..UserLimits::default()
        };
        assert!(ranges.check(&big, &namespace).is_ok());
        let short = Limits {
            timeout: 500,
            ..Limits::default()
        };
        assert_eq!(
            ranges.check(&short, &namespace).unwrap_err(),
            "duration 500 milliseconds below allowed threshold of 1000 milliseconds"
        );
        let concurrent = Limits {
            concurrency: 2,
            ..Limits::default()
        };
        assert_eq!(
            ranges.check(&concurrent, &none).unwrap_err(),
            "concurrency 2 exceeds allowed threshold of 1"
        );
        let chatty = Limits {
            logs: 11,
            ..Limits::default()
        };
        assert_eq!(
            ranges.check(&chatty, &none).unwrap_err(),
            "log 11 MB exceeds allowed threshold of 10 MB"
        );
    }
}
