//! [`LocalBackend`]: the standalone server's [`Backend`] over the executor's own stores (the
//! embedded local-directory store under the data directory) and the activation processor the Kafka
//! invoker uses ([`Processor`], built without acks), so both sources share one activation path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use factory::Code;

use super::backend::{ActivationFilter, Backend, BackendError, StoredAction};
use crate::document::{
    ActionDocument, AttachmentLocation, CodeSource, code_from_bytes, decode_inline,
};
use crate::message::ActivationMessage;
use crate::processor::Processor;
use crate::record::WhiskActivation;
use crate::store::{ActivationQuery, ActivationStore, EntityStore, StoreError};

/// The backend of a standalone server: entity and activation stores plus the processor.
pub struct LocalBackend {
    entities: Arc<dyn EntityStore>,
    activations: Arc<dyn ActivationStore>,
    processor: Arc<Processor>,
    /// Documents (without code) by id, for invokes. This server is the store's only writer, so
    /// its own puts and deletes keep the cache exact.
    documents: Mutex<HashMap<String, ActionDocument>>,
}

/// Most documents cached; the cache is emptied when full, so action names a caller invents cannot
/// grow it without bound.
const MAX_CACHED_DOCUMENTS: usize = 1024;

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend").finish_non_exhaustive()
    }
}

impl LocalBackend {
    /// A backend over these stores and processor (whose loader and activation store should be
    /// these same stores).
    pub fn new(
        entities: Arc<dyn EntityStore>,
        activations: Arc<dyn ActivationStore>,
        processor: Arc<Processor>,
    ) -> Self {
        Self {
            entities,
            activations,
            processor,
            documents: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, doc_id: &str) -> Option<ActionDocument> {
        self.documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(doc_id)
            .cloned()
    }

    fn remember(&self, document: &ActionDocument) {
        let mut documents = self
            .documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if documents.len() >= MAX_CACHED_DOCUMENTS {
            documents.clear();
        }
        documents.insert(document.doc_id(), document.clone());
    }

    fn forget(&self, doc_id: &str) {
        self.documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(doc_id);
    }
}

fn backend_error(error: StoreError) -> BackendError {
    match error {
        StoreError::Conflict | StoreError::RevisionMismatch { .. } => BackendError::Conflict,
        other => BackendError::Store(other.to_string()),
    }
}

#[async_trait]
impl Backend for LocalBackend {
    async fn get_action(
        &self,
        doc_id: &str,
        with_code: bool,
    ) -> Result<Option<StoredAction>, BackendError> {
        if !with_code && let Some(document) = self.cached(doc_id) {
            return Ok(Some(StoredAction {
                document,
                code: None,
            }));
        }
        let document = match self.entities.get_action(doc_id, None).await {
            Ok(document) => document,
            Err(StoreError::NotFound) => return Ok(None),
            Err(error) => return Err(backend_error(error)),
        };
        self.remember(&document);
        if !with_code {
            return Ok(Some(StoredAction {
                document,
                code: None,
            }));
        }
        let code: Option<Code> = match document.exec.code() {
            None => None,
            Some((CodeSource::Inline(text), binary)) => {
                Some(decode_inline(text, binary).map_err(|e| BackendError::Store(e.to_string()))?)
            }
            Some((CodeSource::Attachment(reference), binary)) => {
                let bytes = match reference
                    .location()
                    .map_err(|e| BackendError::Store(e.to_string()))?
                {
                    AttachmentLocation::Inline(bytes) => bytes,
                    AttachmentLocation::Document(name) => self
                        .entities
                        .get_attachment(doc_id, &name, document.rev.as_deref())
                        .await
                        .map_err(backend_error)?,
                };
                Some(
                    code_from_bytes(bytes, binary)
                        .map_err(|e| BackendError::Store(e.to_string()))?,
                )
            }
        };
        Ok(Some(StoredAction { document, code }))
    }

    async fn put_action(&self, action: StoredAction) -> Result<StoredAction, BackendError> {
        let code = action.code.clone();
        let doc_id = action.document.doc_id();
        // Whatever the outcome, the next read goes to the store.
        self.forget(&doc_id);
        let document = self
            .entities
            .put_action(action.document, code.clone())
            .await
            .map_err(backend_error)?;
        Ok(StoredAction { document, code })
    }

    async fn delete_action(&self, doc_id: &str, rev: Option<&str>) -> Result<(), BackendError> {
        self.forget(doc_id);
        let deleted = self
            .entities
            .delete_action(doc_id, rev)
            .await
            .map_err(backend_error);
        self.forget(doc_id);
        deleted
    }

    async fn list_actions(
        &self,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<crate::document::ActionDocument>, BackendError> {
        self.entities
            .list_actions(namespace, skip, limit)
            .await
            .map_err(backend_error)
    }

    async fn activate(&self, message: ActivationMessage) -> WhiskActivation {
        let span = tracing::info_span!("activation", activation_id = %message.activation_id, action = %message.action_doc_id());
        tracing::Instrument::instrument(self.processor.activate(message), span).await
    }

    async fn get_activation(
        &self,
        namespace: &str,
        activation_id: &str,
    ) -> Result<Option<WhiskActivation>, BackendError> {
        match self.activations.get(namespace, activation_id).await {
            Ok(activation) => Ok(Some(activation)),
            Err(StoreError::NotFound) => Ok(None),
            Err(error) => Err(backend_error(error)),
        }
    }

    async fn list_activations(
        &self,
        filter: &ActivationFilter,
    ) -> Result<Vec<WhiskActivation>, BackendError> {
        let query = ActivationQuery {
            namespace: filter.namespace.clone(),
            name: filter.name.clone(),
            skip: filter.skip,
            limit: filter.limit,
            since: filter.since,
            upto: filter.upto,
        };
        self.activations.list(&query).await.map_err(backend_error)
    }
}

/// Most records waiting for their write at once before `store` waits for the disk itself; bounds
/// the memory a burst of activations can hold.
const MAX_PENDING_WRITES: usize = 10_000;

/// An activation store that answers `store` at once and writes behind, so a blocking invoke does
/// not wait for the disk (the controller likewise answers from the ack, not from the database).
/// Records not yet written are served from memory, so a read right after an invoke finds them.
/// [`WriteBehind::flush`] waits for every write; a crash loses at most the writes in flight.
pub struct WriteBehind {
    inner: Arc<dyn ActivationStore>,
    /// (namespace, activation id) → record not yet on disk.
    pending: Arc<Mutex<HashMap<(String, String), WhiskActivation>>>,
    tasks: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehind").finish_non_exhaustive()
    }
}

impl WriteBehind {
    /// Writes behind into `inner`.
    pub fn new(inner: Arc<dyn ActivationStore>) -> Self {
        Self {
            inner,
            pending: Arc::new(Mutex::new(HashMap::new())),
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }

    /// Waits (up to `grace`) until every accepted record is written.
    pub async fn flush(&self, grace: std::time::Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("activation records still being written after the grace period");
        }
        self.tasks.reopen();
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), WhiskActivation>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ActivationStore for WriteBehind {
    async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError> {
        let key = (
            activation.namespace.clone(),
            activation.activation_id.to_string(),
        );
        let queued = {
            let mut pending = self.pending();
            if pending.len() >= MAX_PENDING_WRITES {
                false
            } else {
                pending.insert(key.clone(), activation.clone());
                true
            }
        };
        if !queued {
            return self.inner.store(activation).await;
        }
        let inner = Arc::clone(&self.inner);
        let pending = Arc::clone(&self.pending);
        let activation = activation.clone();
        self.tasks.spawn(async move {
            if let Err(error) = inner.store(&activation).await {
                tracing::warn!(activation_id = %activation.activation_id, %error, "storing the activation record failed");
            }
            pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
        });
        Ok(())
    }

    async fn get(
        &self,
        namespace: &str,
        activation_id: &str,
    ) -> Result<WhiskActivation, StoreError> {
        let key = (namespace.to_string(), activation_id.to_string());
        if let Some(activation) = self.pending().get(&key).cloned() {
            return Ok(activation);
        }
        self.inner.get(namespace, activation_id).await
    }

    async fn list(&self, query: &ActivationQuery) -> Result<Vec<WhiskActivation>, StoreError> {
        let pending: Vec<WhiskActivation> = self
            .pending()
            .values()
            .filter(|activation| query.matches(activation))
            .cloned()
            .collect();
        if pending.is_empty() {
            return self.inner.list(query).await;
        }
        // Merge the newest page of the store with the pending records, then page again. (Exact
        // while `skip + limit` is within one store page, which lists of a busy node are.)
        let head = ActivationQuery {
            skip: 0,
            limit: crate::store::MAX_LIST_LIMIT,
            ..query.clone()
        };
        let mut merged = self.inner.list(&head).await?;
        merged.retain(|stored| {
            !pending
                .iter()
                .any(|p| p.activation_id == stored.activation_id)
        });
        merged.extend(pending);
        Ok(query.apply(merged))
    }
}
