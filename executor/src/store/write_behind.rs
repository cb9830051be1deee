//! [`WriteBehind`]: an activation store in front of another that answers `store` at once and writes
//! behind, so a blocking invoke of the standalone server does not wait for the disk (the controller
//! likewise answers from the ack, not from the database). It sits next to the stores it wraps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::{ActivationQuery, ActivationStore, MAX_LIST_LIMIT, StoreError};
use crate::record::WhiskActivation;

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
            limit: MAX_LIST_LIMIT,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    /// An in-memory activation store whose writes each wait for a permit of `open`.
    struct Gated {
        open: tokio::sync::Semaphore,
        stored: Mutex<Vec<WhiskActivation>>,
    }

    #[async_trait]
    impl ActivationStore for Gated {
        async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError> {
            self.open
                .acquire()
                .await
                .map_err(|e| StoreError::Transport(e.to_string()))?
                .forget();
            self.stored
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(activation.clone());
            Ok(())
        }

        async fn get(&self, _: &str, id: &str) -> Result<WhiskActivation, StoreError> {
            let stored = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
            let found = stored.iter().find(|a| a.activation_id.as_str() == id);
            found.cloned().ok_or(StoreError::NotFound)
        }

        async fn list(&self, query: &ActivationQuery) -> Result<Vec<WhiskActivation>, StoreError> {
            let stored = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
            Ok(query.apply(stored.clone()))
        }
    }

    fn record(id: &str, start: u64) -> WhiskActivation {
        serde_json::from_value(json!({
            "namespace": "guest", "name": "a", "subject": "guest",
            "activationId": id, "start": start, "end": start + 1,
            "response": {"statusCode": 0, "result": {}},
            "logs": [], "version": "0.0.1", "publish": false, "duration": 1,
            "annotations": [{"key": "path", "value": "guest/a"}]
        }))
        .expect("a valid record")
    }

    #[tokio::test]
    async fn test_records_are_served_before_and_after_their_write() {
        let inner = Arc::new(Gated {
            open: tokio::sync::Semaphore::new(0),
            stored: Mutex::default(),
        });
        let records = WriteBehind::new(inner.clone());
        let (old, new) = (record("a1", 1), record("b2", 2));
        inner.open.add_permits(1);
        records.store(&old).await.expect("stored");
        records.flush(Duration::from_secs(5)).await;
        // The inner store is closed now: `store` answers anyway and the record reads back.
        tokio::time::timeout(Duration::from_secs(5), records.store(&new))
            .await
            .expect("store does not wait for the write")
            .expect("stored");
        assert_eq!(records.get("guest", "b2").await.expect("pending").start, 2);
        let query = ActivationQuery {
            namespace: "guest".into(),
            ..ActivationQuery::default()
        };
        let listed: Vec<u64> = records
            .list(&query)
            .await
            .expect("listed")
            .iter()
            .map(|a| a.start)
            .collect();
        assert_eq!(listed, vec![2, 1], "pending and written, newest first");
        inner.open.add_permits(1);
        records.flush(Duration::from_secs(5)).await;
        assert_eq!(inner.get("guest", "b2").await.expect("written").start, 2);
    }
}
