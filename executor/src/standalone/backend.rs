//! What the REST layer needs from the rest of the executor: the action documents, the activation
//! records and the activation processor. [`Backend`] is that boundary (tests may put a fake behind
//! it); [`StoreBackend`] implements it over the executor's own stores and the activation processor
//! the Kafka invoker uses ([`Processor`], built without acks), so both sources share one activation
//! path and one code fetch (the loader's).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use factory::Code;
use serde_json::Value;

use crate::document::ActionDocument;
use crate::message::ActivationMessage;
use crate::processor::Processor;
use crate::record::WhiskActivation;
use crate::store::{ActivationQuery, ActivationStore, EntityStore, StoreError};

/// A store or processor failure the REST layer answers with a 500 or 409.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The document changed since it was read (a concurrent update won).
    #[error("document update conflict")]
    Conflict,
    /// The name belongs to an entity of another collection (an action's name taken by a package).
    #[error("the document is not in this collection")]
    OtherCollection,
    /// The store failed; the text is logged, not shown to the caller.
    #[error("store failure: {0}")]
    Store(String),
}

/// An action document with its code, as the REST API shows it.
#[derive(Debug, Clone)]
pub struct StoredAction {
    /// The document (its `exec` code reference as stored).
    pub document: ActionDocument,
    /// The code, when the action has code.
    pub code: Option<Code>,
}

/// The standalone server's view of the store and the processor.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The action `doc_id` (`ns/name`), with its code when `with_code` (else `code` is `None`), or
    /// `None` when there is no such action.
    async fn get_action(
        &self,
        doc_id: &str,
        with_code: bool,
    ) -> Result<Option<StoredAction>, BackendError>;

    /// Writes an action. `document.rev` is the revision being replaced (`None` to create); a
    /// mismatch is [`BackendError::Conflict`]. Returns the document as stored (new revision).
    async fn put_action(&self, action: StoredAction) -> Result<StoredAction, BackendError>;

    /// Deletes the action at revision `rev`.
    async fn delete_action(&self, doc_id: &str, rev: Option<&str>) -> Result<(), BackendError>;

    /// The actions of a namespace, most recently updated first.
    async fn list_actions(
        &self,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<ActionDocument>, BackendError>;

    /// Runs one activation to its end through the shared processor (fetch, pool, record, store)
    /// and returns its record. Never fails: every failure is a record.
    async fn activate(&self, message: ActivationMessage) -> WhiskActivation;

    /// One activation record of a namespace.
    async fn get_activation(
        &self,
        namespace: &str,
        activation_id: &str,
    ) -> Result<Option<WhiskActivation>, BackendError>;

    /// Activation records, newest first.
    async fn list_activations(
        &self,
        query: &ActivationQuery,
    ) -> Result<Vec<WhiskActivation>, BackendError>;

    /// Stores an activation record no action run produced: a sequence's or a trigger's (the
    /// records of runs are stored by the processor, through [`Backend::activate`]).
    async fn store_activation(&self, record: &WhiskActivation) -> Result<(), BackendError>;

    /// The document `doc_id` of any entity type (packages; an action's document too, so that a
    /// caller can tell a name taken by another collection), `_rev` and `entityType` included, or
    /// `None` when there is no such document.
    async fn get_entity(&self, doc_id: &str) -> Result<Option<Value>, BackendError>;

    /// Writes a non-action document (a package). Its `_rev` is the revision being replaced (none to
    /// create); a mismatch is [`BackendError::Conflict`]. Returns the document as stored.
    async fn put_entity(&self, doc_id: &str, document: Value) -> Result<Value, BackendError>;

    /// Deletes the non-action document `doc_id` at revision `rev`.
    async fn delete_entity(&self, doc_id: &str, rev: Option<&str>) -> Result<(), BackendError>;

    /// The documents of `entity_type` (`package`) whose `namespace` is exactly `namespace`, by id.
    async fn list_entities(
        &self,
        entity_type: &str,
        namespace: &str,
    ) -> Result<Vec<Value>, BackendError>;
}

/// The backend of a standalone server: the shared activation processor and the stores behind it.
pub struct StoreBackend {
    processor: Arc<Processor>,
    /// Documents (without code) by id, for invokes. This server is the store's only writer, so
    /// its own puts and deletes keep the cache exact.
    documents: Mutex<HashMap<String, ActionDocument>>,
}

/// Most documents cached; the cache is emptied when full, so action names a caller invents cannot
/// grow it without bound.
const MAX_CACHED_DOCUMENTS: usize = 1024;

impl std::fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBackend").finish_non_exhaustive()
    }
}

impl StoreBackend {
    /// A backend over the processor's stores: its loader's entity store (and code fetch) and its
    /// activation store.
    pub fn new(processor: Arc<Processor>) -> Self {
        Self {
            processor,
            documents: Mutex::new(HashMap::new()),
        }
    }

    fn entities(&self) -> &Arc<dyn EntityStore> {
        self.processor.loader.store()
    }

    fn activations(&self) -> &Arc<dyn ActivationStore> {
        &self.processor.activations
    }

    /// Why `doc_id` could not be read as an action: [`BackendError::OtherCollection`] when it is
    /// another entity's document (a package, trigger or rule of that name), else `error`.
    async fn not_an_action(&self, doc_id: &str, error: StoreError) -> BackendError {
        if let Ok(document) = self.entities().get_document(doc_id).await
            && let Some(entity_type) = document.get("entityType").and_then(Value::as_str)
            && entity_type != "action"
        {
            return BackendError::OtherCollection;
        }
        backend_error(error)
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
impl Backend for StoreBackend {
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
        let document = match self.entities().get_action(doc_id, None).await {
            Ok(document) => document,
            Err(StoreError::NotFound) => return Ok(None),
            Err(error) => return Err(self.not_an_action(doc_id, error).await),
        };
        self.remember(&document);
        if !with_code {
            return Ok(Some(StoredAction {
                document,
                code: None,
            }));
        }
        let code = self
            .processor
            .loader
            .fetch_code(doc_id, &document)
            .await
            .map_err(backend_error)?;
        Ok(Some(StoredAction { document, code }))
    }

    async fn put_action(&self, action: StoredAction) -> Result<StoredAction, BackendError> {
        let code = action.code.clone();
        let doc_id = action.document.doc_id();
        // Whatever the outcome, the next read goes to the store.
        self.forget(&doc_id);
        let document = self
            .entities()
            .put_action(action.document, code.clone())
            .await
            .map_err(backend_error)?;
        Ok(StoredAction { document, code })
    }

    async fn delete_action(&self, doc_id: &str, rev: Option<&str>) -> Result<(), BackendError> {
        self.forget(doc_id);
        let deleted = self
            .entities()
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
    ) -> Result<Vec<ActionDocument>, BackendError> {
        self.entities()
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
        match self.activations().get(namespace, activation_id).await {
            Ok(activation) => Ok(Some(activation)),
            Err(StoreError::NotFound) => Ok(None),
            Err(error) => Err(backend_error(error)),
        }
    }

    async fn list_activations(
        &self,
        query: &ActivationQuery,
    ) -> Result<Vec<WhiskActivation>, BackendError> {
        self.activations().list(query).await.map_err(backend_error)
    }

    async fn store_activation(&self, record: &WhiskActivation) -> Result<(), BackendError> {
        self.activations()
            .store(record)
            .await
            .map_err(backend_error)
    }

    async fn get_entity(&self, doc_id: &str) -> Result<Option<Value>, BackendError> {
        match self.entities().get_document(doc_id).await {
            Ok(document) => Ok(Some(document)),
            Err(StoreError::NotFound) => Ok(None),
            Err(error) => Err(backend_error(error)),
        }
    }

    async fn put_entity(&self, doc_id: &str, document: Value) -> Result<Value, BackendError> {
        // An action cached under this id (it cannot be one after this write) must not be served.
        self.forget(doc_id);
        self.entities()
            .put_document(doc_id, document)
            .await
            .map_err(backend_error)
    }

    async fn delete_entity(&self, doc_id: &str, rev: Option<&str>) -> Result<(), BackendError> {
        self.forget(doc_id);
        self.entities()
            .delete_document(doc_id, rev)
            .await
            .map_err(backend_error)
    }

    async fn list_entities(
        &self,
        entity_type: &str,
        namespace: &str,
    ) -> Result<Vec<Value>, BackendError> {
        self.entities()
            .list_documents(entity_type, namespace)
            .await
            .map_err(backend_error)
    }
}
