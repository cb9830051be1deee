//! Prefix watches ([`Registry::watch_prefix`](super::Registry::watch_prefix)), used for the
//! schedulers' keys during the warm-up.

use std::time::Duration;

use etcd_client::{Client, EventType, WatchOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ops;

/// A change under a watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixEvent {
    /// `key` was written (or existed when the watch started) with `value`.
    Put {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// `key` was deleted.
    Delete {
        /// The key.
        key: String,
    },
}

/// Reads `prefix`, sends its keys as puts, then follows its changes, resuming after the last
/// revision seen when the watch breaks (re-reading the prefix if that history was compacted).
/// Returns when `events` is closed or `cancel` fires.
pub(super) async fn watch_prefix(
    client: Client,
    prefix: String,
    retry_interval: Duration,
    cancel: CancellationToken,
    events: mpsc::Sender<PrefixEvent>,
) {
    let follow = async {
        // The revision to resume from; None: (re-)read the prefix first.
        let mut next: Option<i64> = None;
        loop {
            if let Err(error) = follow_once(&client, &prefix, &mut next, &events).await {
                if events.is_closed() {
                    return;
                }
                tracing::debug!(%prefix, %error, "etcd prefix watch interrupted; resuming");
            }
            if events.is_closed() {
                return;
            }
            tokio::time::sleep(retry_interval).await;
        }
    };
    tokio::select! {
        () = cancel.cancelled() => {}
        () = follow => {}
    }
}

/// One read-and-watch attempt; returns when the watch breaks.
async fn follow_once(
    client: &Client,
    prefix: &str,
    next: &mut Option<i64>,
    events: &mpsc::Sender<PrefixEvent>,
) -> Result<(), String> {
    let start = match *next {
        Some(revision) => revision,
        None => {
            let (pairs, revision) = ops::get(client, prefix, true)
                .await
                .map_err(|error| error.to_string())?;
            for (key, value) in pairs {
                send(events, PrefixEvent::Put { key, value }).await?;
            }
            *next = Some(revision + 1);
            revision + 1
        }
    };
    let options = WatchOptions::new().with_prefix().with_start_revision(start);
    let mut client = client.clone();
    let mut stream = ops::timed("watch", client.watch(prefix, Some(options)))
        .await
        .map_err(|error| error.to_string())?;
    loop {
        let reply = stream
            .message()
            .await
            .map_err(|error| error.to_string())?
            .ok_or("watch ended")?;
        if reply.compact_revision() > 0 {
            *next = None;
            return Err(format!("compacted at {}", reply.compact_revision()));
        }
        if reply.canceled() {
            return Err(format!("watch canceled: {}", reply.cancel_reason()));
        }
        for event in reply.events() {
            let Some(kv) = event.kv() else { continue };
            *next = Some(kv.mod_revision() + 1);
            let Ok(key) = ops::text(kv.key()) else {
                continue;
            };
            let event = if event.event_type() == EventType::Delete {
                PrefixEvent::Delete { key }
            } else {
                let Ok(value) = ops::text(kv.value()) else {
                    continue;
                };
                PrefixEvent::Put { key, value }
            };
            send(events, event).await?;
        }
    }
}

async fn send(events: &mpsc::Sender<PrefixEvent>, event: PrefixEvent) -> Result<(), String> {
    events
        .send(event)
        .await
        .map_err(|_| "receiver dropped".to_owned())
}
