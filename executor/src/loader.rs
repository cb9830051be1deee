//! Loading an action: [`ActionLoader`] turns an activation message into a runnable
//! [`ExecutableAction`] as OpenWhisk's `InvokerReactive` does, or into the [`FallbackReason`] the
//! fallback record carries (docs/protocol.md §3).
//!
//! It fetches the document (from a cache keyed by (id, revision) when the message names a
//! revision, bounded by bytes, where concurrent misses on one key share one fetch; on a revision
//! mismatch, once more without one), then the code (inline, `mem:`
//! attachment name, or a real attachment), resolves the kind, and checks the limits against the
//! namespace's and the system's ([`LimitRanges`]). [`classify`] maps a store failure to its
//! fallback reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use factory::Code;
use moka::future::Cache;

use crate::action::ExecutableAction;
use crate::bytesize::ByteSize;
use crate::document::{
    ActionDocument, AttachmentLocation, CodeSource, DocumentError, KindResolver, code_from_bytes,
    decode_inline,
};
use crate::limits::LimitRanges;
use crate::message::ActivationMessage;
use crate::record::FallbackReason;
use crate::store::{EntityStore, StoreError};

/// Default size of the loader's cache: its weight is the code of each action (up to 48 MB each)
/// plus [`ENTRY_OVERHEAD_BYTES`], so a few large actions cannot hold gigabytes.
pub const DEFAULT_ACTION_CACHE_BYTES: ByteSize = ByteSize::mb(256);
/// What one cached action weighs besides its code: the document's other fields, roughly.
const ENTRY_OVERHEAD_BYTES: u64 = 4 * 1024;

/// The cache's weight of `action`: its code's bytes plus [`ENTRY_OVERHEAD_BYTES`].
fn weight(action: &ExecutableAction) -> u32 {
    let code = match &action.code {
        Some(Code::Text(text)) => text.len(),
        Some(Code::Binary(bytes)) => bytes.len(),
        None => 0,
    };
    u32::try_from(code as u64 + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
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
    /// (document id, revision) → action.
    cache: Cache<(String, String), Arc<ExecutableAction>>,
    /// Documents read from the store (cache misses that were not shared).
    reads: AtomicU64,
}

impl ActionLoader {
    /// A loader over `store`, resolving kinds with `resolver`, checking limits against `ranges`,
    /// caching up to `cache_size` of actions (0: no cache).
    pub fn new(
        store: Arc<dyn EntityStore>,
        resolver: Arc<dyn KindResolver>,
        ranges: LimitRanges,
        cache_size: ByteSize,
    ) -> Self {
        Self {
            store,
            resolver,
            ranges,
            cache: Cache::builder()
                .max_capacity(cache_size.as_bytes())
                .weigher(|_, action: &Arc<ExecutableAction>| weight(action))
                .build(),
            reads: AtomicU64::new(0),
        }
    }

    /// The bytes the cache holds now (after its pending evictions, which it otherwise runs
    /// lazily).
    pub async fn cache_weight(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.weighted_size()
    }

    /// How many documents were read from the store so far.
    pub fn store_reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The entity store behind the loader.
    pub fn store(&self) -> &Arc<dyn EntityStore> {
        &self.store
    }

    /// Fetches, checks and classifies the action of `message` (docs/protocol.md §3).
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
        let Some(revision) = revision else {
            return (self.fetch_from_store(id, None).await, CacheLookup::Miss);
        };
        let key = (id.to_string(), revision.to_string());
        if let Some(action) = self.cache.get(&key).await {
            return (Ok(action), CacheLookup::Hit);
        }
        // Concurrent misses on one key wait for one fetch. A document read at another revision
        // (the message's is outdated) is cached under the message's key too: the next message
        // naming that revision is served the same way without a second read.
        let fetched = self
            .cache
            .try_get_with(key, self.fetch_from_store(id, Some(revision)))
            .await
            .map_err(|shared: Arc<StoreError>| {
                Arc::try_unwrap(shared).unwrap_or_else(|shared| shared.shared_copy())
            });
        (fetched, CacheLookup::Miss)
    }

    async fn fetch_from_store(
        &self,
        id: &str,
        revision: Option<&str>,
    ) -> Result<Arc<ExecutableAction>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let document = match self.store.get_action(id, revision).await {
            Err(StoreError::RevisionMismatch { .. }) => self.store.get_action(id, None).await?,
            other => other?,
        };
        let code = self.fetch_code(id, &document).await?;
        Ok(Arc::new(
            document.into_executable(code, self.resolver.as_ref())?,
        ))
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

/// The fallback reason of a fetch failure (docs/protocol.md §3 step 7).
pub fn classify(error: &StoreError) -> FallbackReason {
    match error {
        StoreError::NotFound => FallbackReason::NotFound,
        StoreError::Document(DocumentError::Attachment(_)) => FallbackReason::FetchFailed,
        StoreError::Document(_) | StoreError::Json(_) => FallbackReason::Incompatible,
        _ => FallbackReason::FetchFailed,
    }
}
