//! What the REST layer needs from the rest of the executor: the action documents, the activation
//! records and the activation processor. [`Backend`] is that boundary; [`super::local::LocalBackend`]
//! implements it over the embedded store and the shared activation processor.

use async_trait::async_trait;
use factory::Code;

use crate::document::ActionDocument;
use crate::message::ActivationMessage;
use crate::record::WhiskActivation;

/// A store or processor failure the REST layer answers with a 500 or 409.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The document changed since it was read (a concurrent update won).
    #[error("document update conflict")]
    Conflict,
    /// The store failed; the text is logged, not shown to the caller.
    #[error("store failure: {0}")]
    Store(String),
}

/// Which activations a list returns, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationFilter {
    /// The namespace whose activations are listed.
    pub namespace: String,
    /// Only activations of this action name (`name` or `pkg/name`).
    pub name: Option<String>,
    /// Only activations that started at or after this epoch millisecond.
    pub since: Option<u64>,
    /// Only activations that started at or before this epoch millisecond.
    pub upto: Option<u64>,
    /// Entries skipped.
    pub skip: usize,
    /// Most entries returned.
    pub limit: usize,
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
        filter: &ActivationFilter,
    ) -> Result<Vec<WhiskActivation>, BackendError>;
}
