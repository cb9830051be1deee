//! Loading an action: [`ActionLoader`] turns an activation message into a runnable
//! [`ExecutableAction`] as OpenWhisk's `InvokerReactive` does, or into the [`FallbackReason`] the
//! fallback record carries (docs/protocol.md §3).
//!
//! It fetches the document (from a small cache keyed by (id, revision) when the message names a
//! revision; on a revision mismatch, once more without one), then the code (inline, `mem:`
//! attachment name, or a real attachment), resolves the kind, and checks the limits against the
//! namespace's and the system's ([`LimitRanges`]). [`classify`] maps a store failure to its
//! fallback reason.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use factory::Code;

use crate::action::ExecutableAction;
use crate::document::{
    ActionDocument, AttachmentLocation, CodeSource, DocumentError, KindResolver, code_from_bytes,
    decode_inline,
};
use crate::limits::LimitRanges;
use crate::message::ActivationMessage;
use crate::record::FallbackReason;
use crate::store::{EntityStore, StoreError};

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

/// The fallback reason of a fetch failure (docs/protocol.md §3 step 7).
pub fn classify(error: &StoreError) -> FallbackReason {
    match error {
        StoreError::NotFound => FallbackReason::NotFound,
        StoreError::Document(DocumentError::Attachment(_)) => FallbackReason::FetchFailed,
        StoreError::Document(_) | StoreError::Json(_) => FallbackReason::Incompatible,
        _ => FallbackReason::FetchFailed,
    }
}
