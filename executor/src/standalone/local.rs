//! [`LocalBackend`]: the standalone server's [`Backend`] over the executor's own stores (the
//! embedded local-directory store under the data directory) and the activation processor the Kafka
//! invoker uses ([`Processor`], built without acks), so both sources share one activation path.

use std::sync::Arc;

use async_trait::async_trait;
use factory::Code;

use super::backend::{ActivationFilter, Backend, BackendError, StoredAction};
use crate::document::{AttachmentLocation, CodeSource, code_from_bytes, decode_inline};
use crate::invoker::Processor;
use crate::message::ActivationMessage;
use crate::record::WhiskActivation;
use crate::store::{ActivationQuery, ActivationStore, EntityStore, StoreError};

/// The backend of a standalone server: entity and activation stores plus the processor.
pub struct LocalBackend {
    entities: Arc<dyn EntityStore>,
    activations: Arc<dyn ActivationStore>,
    processor: Arc<Processor>,
}

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
        }
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
    async fn get_action(&self, doc_id: &str) -> Result<Option<StoredAction>, BackendError> {
        let document = match self.entities.get_action(doc_id, None).await {
            Ok(document) => document,
            Err(StoreError::NotFound) => return Ok(None),
            Err(error) => return Err(backend_error(error)),
        };
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
        let document = self
            .entities
            .put_action(action.document, code.clone())
            .await
            .map_err(backend_error)?;
        Ok(StoredAction { document, code })
    }

    async fn delete_action(&self, doc_id: &str, rev: Option<&str>) -> Result<(), BackendError> {
        self.entities
            .delete_action(doc_id, rev)
            .await
            .map_err(backend_error)
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
