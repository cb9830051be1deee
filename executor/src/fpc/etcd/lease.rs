//! The lease task of [`Registry`] (OpenWhisk's `LeaseKeepAliveService`): a keep-alive every
//! [`EtcdConfig::keep_alive_period`](super::EtcdConfig::keep_alive_period); on a failed keep-alive
//! or the deletion of the lease key, a best-effort revoke of the old lease and a new grant,
//! retried every retry interval until etcd grants one.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::ops;
use super::registry::Registry;

impl Registry {
    /// Keeps `lease` alive, replacing it whenever it is lost, until the registry stops. `lost`
    /// carries the ids of leases whose lease key was deleted.
    pub(super) async fn lease_loop(
        self: Arc<Self>,
        mut lease: i64,
        mut lost: mpsc::UnboundedReceiver<i64>,
    ) {
        loop {
            let reason = tokio::select! {
                () = self.cancel.cancelled() => return,
                reason = self.keep_alive(lease, &mut lost) => reason,
            };
            tracing::warn!(lease, %reason, "etcd lease lost; granting a new one");
            // Best effort: if the old lease still lives, its keys would otherwise linger (and
            // shadow the re-created ones' lease) until its TTL runs out.
            if let Err(error) = ops::revoke(&self.client, lease).await {
                tracing::debug!(lease, %error, "cannot revoke the lost etcd lease");
            }
            lease = loop {
                let granted = tokio::select! {
                    () = self.cancel.cancelled() => return,
                    granted = ops::grant(&self.client, self.config.ttl_seconds()) => granted,
                };
                match granted {
                    Ok(lease) => break lease,
                    Err(error) => {
                        tracing::warn!(%error, "cannot grant an etcd lease; retrying");
                        tokio::select! {
                            () = self.cancel.cancelled() => return,
                            () = tokio::time::sleep(self.retry_interval()) => {}
                        }
                    }
                }
            };
            tracing::info!(
                lease,
                "new etcd lease granted; re-registering every key on it"
            );
            self.adopt_lease(lease);
        }
    }

    /// Sends keep-alives for `lease` until one fails or the lease key is reported deleted;
    /// returns why.
    async fn keep_alive(&self, lease: i64, lost: &mut mpsc::UnboundedReceiver<i64>) -> String {
        let mut client = self.client.clone();
        let (mut keeper, mut replies) =
            match ops::timed("lease keep-alive", client.lease_keep_alive(lease)).await {
                Ok(pair) => pair,
                Err(error) => return error.to_string(),
            };
        // A reply later than the TTL would come after the lease may have expired anyway.
        let reply_timeout = self.config.lease_ttl.max(self.config.keep_alive_period());
        let mut ticks = tokio::time::interval(self.config.keep_alive_period());
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                id = lost.recv() => match id {
                    Some(id) if id == lease => return "its lease key was deleted".to_owned(),
                    Some(_) => continue,
                    None => return "the delete watch stopped".to_owned(),
                },
            }
            if let Err(error) = keeper.keep_alive().await {
                return format!("keep-alive not sent: {error}");
            }
            match tokio::time::timeout(reply_timeout, replies.message()).await {
                Ok(Ok(Some(reply))) if reply.ttl() > 0 => {}
                Ok(Ok(Some(_))) => return "lease not found".to_owned(),
                Ok(Ok(None)) => return "keep-alive stream ended".to_owned(),
                Ok(Err(error)) => return format!("keep-alive failed: {error}"),
                Err(_) => return format!("no keep-alive reply within {reply_timeout:?}"),
            }
        }
    }
}
