//! What a node runs the same way whatever protocol it speaks (classic [`super::Invoker::run`] and
//! the scheduler's [`crate::fpc::run`]): the `invoker{N}` topic and the producer, the blacklist and
//! its refresh, the record queue, the ack sender and the activation [`Processor`]; the admin server;
//! the readiness signal; and the common end of a shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::{ACK_FLUSH_GRACE, InvokerError, InvokerParts, RECORD_FLUSH_GRACE};
use crate::ack::AckSender;
use crate::admin::{self, Admin, Switch};
use crate::blacklist::Blacklist;
use crate::fatal::Fatal;
use crate::kafka::{self, Feed, FeedConfig, Producer};
use crate::processor::Processor;
use crate::service;
use crate::store::RecordQueue;

/// The shared parts of a running node.
pub(crate) struct Node {
    /// `{prefix}invoker{N}`.
    pub(crate) topic: String,
    /// The one producer (acks, and pings or creation acks).
    pub(crate) producer: Producer,
    /// Raised by a part the node cannot run without.
    pub(crate) fatal: Fatal,
    /// Activation records, written behind.
    pub(crate) records: Arc<RecordQueue>,
    /// Acks to `completed{C}` (and events).
    pub(crate) acks: AckSender,
    /// The activation path.
    pub(crate) processor: Arc<Processor>,
    /// Background tasks (blacklist refresh, admin server, readiness, and the mode's own).
    pub(crate) tasks: TaskTracker,
    /// Stops the background tasks.
    pub(crate) background: CancellationToken,
}

impl Node {
    /// Ensures the topic, makes the producer, reads the blacklist and starts its refresh, starts
    /// the record queue, and builds the ack sender and the processor.
    pub(crate) async fn start(parts: &InvokerParts) -> Result<Self, InvokerError> {
        let topic = format!("{}invoker{}", parts.topic_prefix, parts.instance.instance);
        kafka::ensure_topic(&parts.kafka_hosts, &topic).await?;
        let producer = Producer::with_linger(&parts.kafka_hosts, parts.producer_linger_ms)?;

        let blacklist = Arc::new(Blacklist::default());
        blacklist.refresh(parts.entities.as_ref()).await;
        let background = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn({
            let blacklist = blacklist.clone();
            let entities = parts.entities.clone();
            let cancel = background.clone();
            let every = parts.blacklist_poll.max(Duration::from_secs(1));
            async move {
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(every) => blacklist.refresh(entities.as_ref()).await,
                    }
                }
            }
        });

        let fatal = Fatal::new();
        let records = Arc::new(RecordQueue::start(
            parts.activations.clone(),
            parts.record_queue_capacity,
            parts.metrics.records.clone(),
        ));
        let acks = AckSender::new(
            producer.clone(),
            parts.topic_prefix.clone(),
            parts.instance.clone(),
            parts.events_topic.clone(),
            parts.metrics.clone(),
            parts.ack_retry_window,
            fatal.clone(),
        );
        let processor = Arc::new(Processor {
            pool: parts.pool.clone(),
            loader: parts.loader.clone(),
            activations: records.clone(),
            acks: Some(acks.clone()),
            metrics: parts.metrics.clone(),
            blacklist,
            blocking_level: parts.store_levels.0,
            non_blocking_level: parts.store_levels.1,
        });
        Ok(Self {
            topic,
            producer,
            fatal,
            records,
            acks,
            processor,
            tasks,
            background,
        })
    }

    /// The feed of `invoker{N}`, holding at most `permits` messages in flight.
    pub(crate) fn feed(&self, parts: &InvokerParts, permits: usize) -> Result<Feed, InvokerError> {
        Ok(Feed::start(
            FeedConfig {
                bootstrap: parts.kafka_hosts.clone(),
                topic: self.topic.clone(),
                permits: Arc::new(Semaphore::new(permits)),
                fetch_wait_max_ms: parts.fetch_wait_max_ms,
            },
            parts.metrics.clone(),
        )?)
    }

    /// Binds the admin port and serves the admin routes with `switch` (over TLS when configured)
    /// until the background tasks stop; returns the bound address.
    pub(crate) async fn serve_admin(
        &self,
        parts: &InvokerParts,
        switch: Arc<dyn Switch>,
    ) -> Result<Option<SocketAddr>, InvokerError> {
        let listener = TcpListener::bind(("0.0.0.0", parts.port))
            .await
            .map_err(|source| InvokerError::Listen {
                port: parts.port,
                source,
            })?;
        let admin = Arc::new(Admin {
            switch,
            metrics: parts.metrics.clone(),
            pool: Some(parts.pool.clone()),
            username: parts.admin_credentials.0.clone(),
            password: parts.admin_credentials.1.clone(),
        });
        let address = listener.local_addr().ok();
        self.tasks.spawn(admin::serve(
            listener,
            admin,
            parts.admin_tls.clone(),
            self.background.clone(),
        ));
        Ok(address)
    }

    /// Tells the service manager the node is ready once `feed` holds its partition.
    pub(crate) fn ready_when_assigned(&self, feed: &Feed) {
        let mut assigned = feed.assigned.clone();
        let cancel = self.background.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                held = assigned.wait_for(|held| *held) => if held.is_ok() { service::ready() },
            }
        });
    }

    /// Delivers the acks and writes the records of the finished activations, each within its grace.
    pub(crate) async fn flush(&self) {
        if !self.acks.flush(ACK_FLUSH_GRACE).await {
            warn!("acks still undelivered after the grace period");
        }
        self.records.flush(RECORD_FLUSH_GRACE).await;
    }

    /// The common last steps: background tasks stopped, the pool shut down, the producer flushed;
    /// then the run's result: `failure` is the fatal condition that stopped it, if any.
    pub(crate) async fn close(
        self,
        parts: &InvokerParts,
        failure: Option<String>,
    ) -> Result<(), InvokerError> {
        self.background.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        parts.pool.shutdown(Duration::from_secs(5)).await;
        self.producer.flush(Duration::from_secs(10));
        match failure {
            None => {
                info!("invoker stopped");
                Ok(())
            }
            Some(reason) => Err(InvokerError::Fatal(reason)),
        }
    }
}
