//! [`Registry`]: the invoker's lease and the keys it keeps alive on it (OpenWhisk's
//! `LeaseKeepAliveService` and `DataManagementService` in one).
//!
//! Three background tasks share one [`State`]:
//!
//! - the lease task (`lease.rs`) keeps the lease alive and replaces it when lost;
//! - the writer brings etcd in line with the wanted value of every key, one operation at a time, so
//!   per-key order holds and a newer put or delete of a key supersedes an older one not yet done;
//! - the delete watcher (one watch of deletions on all keys, as upstream's `WatcherService`) marks a
//!   registered key for re-creation when someone deletes it, and reports the loss of the lease key.
//!
//! A key counts as written only for the lease it was written on: a new lease makes every
//! registered key (the lease key included) due again, which re-puts them all unconditionally on the
//! new lease. Upstream only restores keys its watch saw deleted; re-putting all of them also covers
//! deletions that happened while the watch was down. Re-creation is a plain put rather than
//! upstream's "put if absent" transaction: the registry is the only writer of its keys, and a
//! plain put also moves a key that survived on a dying lease onto the current one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use etcd_client::{Client, EventType, WatchFilterType, WatchOptions};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::EtcdConfig;
use super::error::EtcdError;
use super::ops;
use super::prefix::PrefixEvent;

/// The invoker's lease in etcd and the keys registered on it. See the module documentation of
/// [`crate::fpc::etcd`].
pub struct Registry {
    pub(super) client: Client,
    pub(super) config: EtcdConfig,
    lease_key: String,
    state: Mutex<State>,
    /// Wakes the writer: a key changed or a new lease came.
    wake: Notify,
    /// Stops every background task of this registry (a child of the caller's token).
    pub(super) cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client has no Debug; the lease and the keys are what matter.
        f.debug_struct("Registry")
            .field("endpoints", &self.config.endpoints)
            .field("lease_key", &self.lease_key)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// What the registry wants in etcd and what it knows it wrote.
#[derive(Debug)]
struct State {
    /// The lease keys are written on.
    lease: i64,
    /// Bumped with every new lease: writes of an older epoch are on a dead lease.
    epoch: u64,
    /// Source of [`Entry::generation`].
    next_generation: u64,
    /// Every registered key, and deleted keys until their delete succeeded.
    keys: HashMap<String, Entry>,
    /// Set by [`Registry::shutdown`]; later puts and deletes are ignored.
    shut_down: bool,
}

#[derive(Debug)]
struct Entry {
    wanted: Wanted,
    /// Changes with every put or delete of the key, so that an operation that completes after
    /// being superseded does not count.
    generation: u64,
    written: Option<Written>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Wanted {
    Put(String),
    Delete,
}

/// A successful put of the entry's current generation.
#[derive(Debug, Clone, Copy)]
struct Written {
    generation: u64,
    epoch: u64,
    lease: i64,
    /// The store revision of the put: an older deletion of the key does not undo it.
    revision: i64,
}

/// One operation the writer owes etcd.
#[derive(Debug)]
struct Due {
    key: String,
    wanted: Wanted,
    generation: u64,
}

impl State {
    fn bump(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    fn is_due(&self, entry: &Entry) -> bool {
        match entry.wanted {
            Wanted::Delete => true,
            Wanted::Put(_) => !entry.written.is_some_and(|written| {
                written.generation == entry.generation && written.epoch == self.epoch
            }),
        }
    }
}

impl Registry {
    /// Connects, grants a lease of `config.lease_ttl`, puts `lease_key` = the lease id (decimal) on
    /// it, and starts the background tasks, which run until `cancel` fires or
    /// [`Registry::shutdown`]. Fails when etcd cannot be reached or refuses the lease; after that,
    /// losses are handled in the background and never surface as errors.
    pub async fn start(
        config: EtcdConfig,
        lease_key: String,
        cancel: CancellationToken,
    ) -> Result<Arc<Self>, EtcdError> {
        let client = ops::connect(&config).await?;
        let lease = ops::grant(&client, config.ttl_seconds()).await?;
        let revision = ops::put(&client, &lease_key, &lease.to_string(), lease).await?;
        tracing::info!(lease, key = %lease_key, ttl = config.ttl_seconds(), "etcd lease granted");
        let mut keys = HashMap::new();
        keys.insert(
            lease_key.clone(),
            Entry {
                wanted: Wanted::Put(lease.to_string()),
                generation: 1,
                written: Some(Written {
                    generation: 1,
                    epoch: 0,
                    lease,
                    revision,
                }),
            },
        );
        let registry = Arc::new(Self {
            client,
            config,
            lease_key,
            state: Mutex::new(State {
                lease,
                epoch: 0,
                next_generation: 1,
                keys,
                shut_down: false,
            }),
            wake: Notify::new(),
            cancel: cancel.child_token(),
            tasks: Mutex::new(Vec::new()),
        });
        let (lost_tx, lost_rx) = mpsc::unbounded_channel();
        registry.spawn(Arc::clone(&registry).write_loop());
        registry.spawn(Arc::clone(&registry).delete_watch_loop(revision + 1, lost_tx));
        registry.spawn(Arc::clone(&registry).lease_loop(lease, lost_rx));
        Ok(registry)
    }

    /// The id of the lease keys are currently written on.
    pub fn lease_id(&self) -> i64 {
        self.state().lease
    }

    /// The lease key this registry keeps (value: [`Registry::lease_id`]).
    pub fn lease_key(&self) -> &str {
        &self.lease_key
    }

    /// Registers `key` with `value` on the current lease, re-created if it is lost ("failover").
    ///
    /// Returns at once: the write happens in the background, and is retried every
    /// `retry_interval` until it succeeds or the key is deleted. A put of the value the key
    /// already has (written or pending) does nothing ("update on change"). A later put or delete
    /// of the same key supersedes this one if it is still pending.
    pub async fn put(&self, key: String, value: String) {
        {
            let mut state = self.state();
            if state.shut_down {
                tracing::warn!(%key, "etcd registry shut down: put ignored");
                return;
            }
            let generation = state.bump();
            match state.keys.get_mut(&key) {
                Some(entry) if entry.wanted == Wanted::Put(value.clone()) => return,
                Some(entry) => {
                    entry.wanted = Wanted::Put(value);
                    entry.generation = generation;
                }
                None => {
                    state.keys.insert(
                        key,
                        Entry {
                            wanted: Wanted::Put(value),
                            generation,
                            written: None,
                        },
                    );
                }
            }
        }
        self.wake.notify_one();
    }

    /// Unregisters `key` (it is no longer re-created) and deletes it from etcd.
    ///
    /// Returns at once, like [`Registry::put`]: the delete is retried in the background until it
    /// succeeds or the key is put again.
    pub async fn delete(&self, key: &str) {
        {
            let mut state = self.state();
            if state.shut_down {
                tracing::warn!(%key, "etcd registry shut down: delete ignored");
                return;
            }
            let generation = state.bump();
            let entry = state.keys.entry(key.to_owned()).or_insert(Entry {
                wanted: Wanted::Delete,
                generation,
                written: None,
            });
            entry.wanted = Wanted::Delete;
            entry.generation = generation;
        }
        self.wake.notify_one();
    }

    /// The value of `key`, if it exists.
    pub async fn get(&self, key: &str) -> Result<Option<String>, EtcdError> {
        let (pairs, _) = ops::get(&self.client, key, false).await?;
        Ok(pairs.into_iter().next().map(|(_, value)| value))
    }

    /// Every key starting with `prefix` and its value, in key order.
    pub async fn get_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, EtcdError> {
        Ok(ops::get(&self.client, prefix, true).await?.0)
    }

    /// How many keys start with `prefix`.
    pub async fn count_prefix(&self, prefix: &str) -> Result<u64, EtcdError> {
        ops::count(&self.client, prefix).await
    }

    /// Watches the keys under `prefix`: first every current key as a [`PrefixEvent::Put`], then
    /// each change. The watch resumes where it stopped after an error (re-reading the prefix if
    /// etcd compacted that history away). It ends when the receiver is dropped or the registry
    /// stops.
    pub fn watch_prefix(&self, prefix: String) -> mpsc::Receiver<PrefixEvent> {
        let (tx, rx) = mpsc::channel(256);
        let task = super::prefix::watch_prefix(
            self.client.clone(),
            prefix,
            self.config.retry_interval,
            self.cancel.clone(),
            tx,
        );
        self.spawn(task);
        rx
    }

    /// Stops the background tasks; with `revoke`, also revokes the lease, so that every key on it
    /// vanishes at once (otherwise they vanish when the TTL runs out, as upstream's do on exit).
    /// Pending writes are dropped.
    pub async fn shutdown(&self, revoke: bool) {
        let lease = {
            let mut state = self.state();
            state.shut_down = true;
            state.lease
        };
        self.cancel.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        if revoke {
            match ops::revoke(&self.client, lease).await {
                Ok(()) => tracing::info!(lease, "etcd lease revoked at shutdown"),
                Err(error) => tracing::warn!(lease, %error, "cannot revoke the etcd lease"),
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic (every update is a single assignment).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|task| !task.is_finished());
        tasks.push(handle);
    }

    /// Switches to a new lease: every registered key, the lease key (now holding `lease`) among
    /// them, is due again.
    pub(super) fn adopt_lease(&self, lease: i64) {
        {
            let mut state = self.state();
            state.lease = lease;
            state.epoch += 1;
            let generation = state.bump();
            let entry = state.keys.entry(self.lease_key.clone()).or_insert(Entry {
                wanted: Wanted::Delete,
                generation,
                written: None,
            });
            entry.wanted = Wanted::Put(lease.to_string());
            entry.generation = generation;
        }
        self.wake.notify_one();
    }

    pub(super) fn retry_interval(&self) -> Duration {
        self.config.retry_interval
    }

    /// Makes every registered key due again (the delete watch may have missed deletions).
    fn rewrite_all(&self) {
        {
            let mut state = self.state();
            for entry in state.keys.values_mut() {
                entry.written = None;
            }
        }
        self.wake.notify_one();
    }

    /// The writer: does what is due, then waits for a change (or, after a failure, at most one
    /// retry interval).
    async fn write_loop(self: Arc<Self>) {
        let mut failing = false;
        loop {
            let (due, lease, epoch) = {
                let state = self.state();
                let due: Vec<Due> = state
                    .keys
                    .iter()
                    .filter(|(_, entry)| state.is_due(entry))
                    .map(|(key, entry)| Due {
                        key: key.clone(),
                        wanted: entry.wanted.clone(),
                        generation: entry.generation,
                    })
                    .collect();
                (due, state.lease, state.epoch)
            };
            let mut failed = None;
            for item in due {
                if self.cancel.is_cancelled() {
                    return;
                }
                if let Err(error) = self.write(&item, lease, epoch).await {
                    failed = Some((item.key, error));
                }
            }
            match &failed {
                Some((key, error)) if !failing => {
                    tracing::warn!(%key, %error, "etcd write failed; retrying every {:?}", self.retry_interval());
                }
                Some((key, error)) => tracing::debug!(%key, %error, "etcd write failed again"),
                None if failing => tracing::info!("etcd writes succeed again"),
                None => {}
            }
            failing = failed.is_some();
            let retry = async {
                if failing {
                    tokio::time::sleep(self.retry_interval()).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = retry => {}
            }
        }
    }

    /// Performs one due operation and records its success (unless superseded meanwhile).
    async fn write(&self, item: &Due, lease: i64, epoch: u64) -> Result<(), EtcdError> {
        match &item.wanted {
            Wanted::Put(value) => {
                let revision = ops::put(&self.client, &item.key, value, lease).await?;
                tracing::debug!(key = %item.key, lease, revision, "etcd key written");
                let mut state = self.state();
                let current = state.epoch;
                if let Some(entry) = state.keys.get_mut(&item.key)
                    && entry.generation == item.generation
                    && current == epoch
                {
                    entry.written = Some(Written {
                        generation: item.generation,
                        epoch,
                        lease,
                        revision,
                    });
                }
            }
            Wanted::Delete => {
                ops::delete(&self.client, &item.key).await?;
                tracing::debug!(key = %item.key, "etcd key deleted");
                let mut state = self.state();
                if state
                    .keys
                    .get(&item.key)
                    .is_some_and(|entry| entry.generation == item.generation)
                {
                    state.keys.remove(&item.key);
                }
            }
        }
        Ok(())
    }

    /// Watches deletions of all keys from `start` on, resuming after errors, and hands each to
    /// [`Registry::deleted`].
    async fn delete_watch_loop(self: Arc<Self>, start: i64, lost: mpsc::UnboundedSender<i64>) {
        let mut next = start;
        loop {
            let options = WatchOptions::new()
                .with_all_keys()
                .with_filters([WatchFilterType::NoPut])
                .with_start_revision(next);
            let mut client = self.client.clone();
            let opened = tokio::select! {
                () = self.cancel.cancelled() => return,
                opened = ops::timed("watch", client.watch("", Some(options))) => opened,
            };
            match opened {
                Ok(mut stream) => loop {
                    let message = tokio::select! {
                        () = self.cancel.cancelled() => return,
                        message = stream.message() => message,
                    };
                    match message {
                        Ok(Some(reply)) if reply.compact_revision() > 0 => {
                            tracing::warn!(
                                compacted = reply.compact_revision(),
                                "etcd history compacted under the delete watch; rewriting all keys"
                            );
                            // 0 resumes from "now"; the rewrite covers what was missed.
                            next = 0;
                            self.rewrite_all();
                            break;
                        }
                        Ok(Some(reply)) if reply.canceled() => {
                            tracing::warn!(
                                reason = reply.cancel_reason(),
                                "etcd delete watch canceled"
                            );
                            break;
                        }
                        Ok(Some(reply)) => {
                            for event in reply.events() {
                                let Some(kv) = event.kv() else { continue };
                                if event.event_type() != EventType::Delete {
                                    continue;
                                }
                                next = next.max(kv.mod_revision() + 1);
                                if let Ok(key) = std::str::from_utf8(kv.key()) {
                                    self.deleted(key, kv.mod_revision(), &lost);
                                }
                            }
                        }
                        Ok(None) => {
                            tracing::warn!("etcd delete watch ended");
                            break;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "etcd delete watch failed");
                            break;
                        }
                    }
                },
                Err(error) => tracing::debug!(%error, "cannot open the etcd delete watch"),
            }
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(self.retry_interval()) => {}
            }
        }
    }

    /// `key` was deleted at `revision`: if that undid a current write of a registered key,
    /// re-create it (the lease key: report the lease lost).
    fn deleted(&self, key: &str, revision: i64, lost: &mpsc::UnboundedSender<i64>) {
        let mut state = self.state();
        let epoch = state.epoch;
        let Some(entry) = state.keys.get_mut(key) else {
            return;
        };
        let Some(written) = entry.written else { return };
        if entry.wanted == Wanted::Delete || written.epoch != epoch || written.revision >= revision
        {
            return;
        }
        if key == self.lease_key {
            tracing::warn!(lease = written.lease, "etcd lease key deleted");
            let _ = lost.send(written.lease);
        } else {
            tracing::info!(%key, "registered etcd key deleted; re-creating it");
            entry.written = None;
            drop(state);
            self.wake.notify_one();
        }
    }
}
