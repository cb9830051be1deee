//! Prometheus metrics of the invoker, served as text on the admin server's `GET /metrics`.
//!
//! Counters and histograms are updated where things happen (the activation processor, the Kafka
//! feed); pool occupancy is read from [`PoolStats`] at scrape time.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `invoker_activations_total` | counter | `kind`, `status` (0-3) |
//! | `invoker_activation_duration_seconds` | histogram | `kind` (run duration, init included) |
//! | `invoker_activation_wait_seconds` | histogram | - (transid start to init/run start) |
//! | `invoker_activation_init_seconds` | histogram | `kind` |
//! | `invoker_container_starts_total` | counter | `start` (warm, prewarmed, cold, not_started, aborted) |
//! | `invoker_messages_total` | counter | `result` (parsed, malformed) |
//! | `invoker_acks_total` | counter | `ack` (result, completion, combined), `shrunk` |
//! | `invoker_ack_failures_total` | counter | - (acks given up after the retry window) |
//! | `invoker_ack_retries_total` | counter | - (ack deliveries tried again) |
//! | `invoker_producer_recreations_total` | counter | - |
//! | `invoker_consumer_restarts_total` | counter | - (feed without a partition for too long) |
//! | `invoker_activation_panics_total` | counter | - (answered with a whisk error) |
//! | `invoker_activation_records_pending` | gauge | - (queued or being written) |
//! | `invoker_activation_records_{stored,dropped,failed}_total` | counters | - |
//! | `invoker_activation_record_retries_total` | counter | - (batch writes tried again) |
//! | `invoker_entity_cache_total` | counter | `result` (hit, miss) |
//! | `invoker_consumer_lag` | gauge | - (messages on `invoker{N}` not yet taken) |
//! | `invoker_pool_*` | gauges | memory, activations, containers by state, buffer |

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::loader::CacheLookup;
use crate::pool::PoolStats;

/// Labels of activation counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActivationLabels {
    /// The exec kind (`unknown` for fallback activations).
    pub kind: String,
    /// The status code, `0`..`3`.
    pub status: String,
}

/// A label set with one `kind`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The exec kind.
    pub kind: String,
}

/// A label set with one `start`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StartLabels {
    /// How the job got its container.
    pub start: String,
}

/// A label set with one `result`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// The result.
    pub result: String,
}

/// Labels of sent acks.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AckLabels {
    /// `result`, `completion` or `combined`.
    pub ack: String,
    /// `true` when sent with the activation replaced by its id.
    pub shrunk: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The activation record queue's metrics ([`crate::store::RecordQueue`]); clones share the
/// values.
#[derive(Debug, Clone, Default)]
pub struct RecordMetrics {
    /// Records queued or being written.
    pub pending: Gauge<i64, AtomicI64>,
    /// Records written.
    pub stored: Counter,
    /// Records dropped: the queue was full, or the store was still away at shutdown.
    pub dropped: Counter,
    /// Records the store refused for good (not a transient failure).
    pub failed: Counter,
    /// Batch writes tried again after a transient failure.
    pub retries: Counter,
}

/// Every metric of the invoker, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Activations answered, by kind and status.
    pub activations: Family<ActivationLabels, Counter>,
    /// Activation durations (init included), by kind.
    pub duration: HistogramFamily<KindLabels>,
    /// Activation wait times.
    pub wait: Histogram,
    /// Init times of cold and prewarmed starts, by kind.
    pub init: HistogramFamily<KindLabels>,
    /// Container starts by kind of start.
    pub starts: Family<StartLabels, Counter>,
    /// Messages read from `invoker{N}`, parsed or malformed.
    pub messages: Family<ResultLabels, Counter>,
    /// Acks sent.
    pub acks: Family<AckLabels, Counter>,
    /// Acks given up: not delivered within the retry window.
    pub ack_failures: Counter,
    /// Ack deliveries tried again.
    pub ack_retries: Counter,
    /// Kafka producers replaced after a fatal error or a timeout.
    pub producer_recreations: Counter,
    /// Feed consumers replaced after holding no partition for too long.
    pub consumer_restarts: Counter,
    /// Activations whose processing panicked (each answered with a whisk error).
    pub panics: Counter,
    /// The activation record queue.
    pub records: RecordMetrics,
    /// Entity cache lookups, hit or miss.
    pub entity_cache: Family<ResultLabels, Counter>,
    /// Messages on the invoker topic not yet taken by this invoker.
    pub consumer_lag: Gauge<i64, AtomicI64>,
    pool_user_memory: Gauge<i64, AtomicI64>,
    pool_reserved_memory: Gauge<i64, AtomicI64>,
    pool_active: Gauge<i64, AtomicI64>,
    pool_buffered: Gauge<i64, AtomicI64>,
    pool_containers: Family<StateLabels, Gauge<i64, AtomicI64>>,
}

/// A label set with one container `state`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `starting`, `prewarmed`, `warm`, `paused`.
    pub state: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let activations = Family::<ActivationLabels, Counter>::default();
        registry.register(
            "invoker_activations",
            "Activations answered, by kind and status",
            activations.clone(),
        );
        let duration: HistogramFamily<KindLabels> = Family::new_with_constructor(seconds_histogram);
        registry.register(
            "invoker_activation_duration_seconds",
            "Activation duration including init",
            duration.clone(),
        );
        let wait = seconds_histogram();
        registry.register(
            "invoker_activation_wait_seconds",
            "Time from the controller's transaction start to the start of init or run",
            wait.clone(),
        );
        let init: HistogramFamily<KindLabels> = Family::new_with_constructor(seconds_histogram);
        registry.register(
            "invoker_activation_init_seconds",
            "Init time of cold and prewarmed starts",
            init.clone(),
        );
        let starts = Family::<StartLabels, Counter>::default();
        registry.register(
            "invoker_container_starts",
            "How jobs got their container",
            starts.clone(),
        );
        let messages = Family::<ResultLabels, Counter>::default();
        registry.register(
            "invoker_messages",
            "Messages read from the invoker topic",
            messages.clone(),
        );
        let acks = Family::<AckLabels, Counter>::default();
        registry.register("invoker_acks", "Acknowledgements sent", acks.clone());
        let ack_failures = Counter::default();
        registry.register(
            "invoker_ack_failures",
            "Acknowledgements that could not be sent",
            ack_failures.clone(),
        );
        let ack_retries = Counter::default();
        registry.register(
            "invoker_ack_retries",
            "Ack deliveries tried again",
            ack_retries.clone(),
        );
        let producer_recreations = Counter::default();
        registry.register(
            "invoker_producer_recreations",
            "Kafka producers replaced after a fatal error or a timeout",
            producer_recreations.clone(),
        );
        let consumer_restarts = Counter::default();
        registry.register(
            "invoker_consumer_restarts",
            "Feed consumers replaced after holding no partition for too long",
            consumer_restarts.clone(),
        );
        let panics = Counter::default();
        registry.register(
            "invoker_activation_panics",
            "Activations whose processing panicked, answered with a whisk error",
            panics.clone(),
        );
        let records = RecordMetrics::default();
        registry.register(
            "invoker_activation_records_pending",
            "Activation records queued or being written",
            records.pending.clone(),
        );
        registry.register(
            "invoker_activation_records_stored",
            "Activation records written",
            records.stored.clone(),
        );
        registry.register(
            "invoker_activation_records_dropped",
            "Activation records dropped: queue full, or the store still away at shutdown",
            records.dropped.clone(),
        );
        registry.register(
            "invoker_activation_records_failed",
            "Activation records the store refused for good",
            records.failed.clone(),
        );
        registry.register(
            "invoker_activation_record_retries",
            "Activation record batch writes tried again",
            records.retries.clone(),
        );
        let entity_cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "invoker_entity_cache",
            "Action cache lookups",
            entity_cache.clone(),
        );
        let consumer_lag = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "invoker_consumer_lag",
            "Messages on the invoker topic not yet taken",
            consumer_lag.clone(),
        );
        let pool_user_memory = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "invoker_pool_user_memory_megabytes",
            "Pool capacity",
            pool_user_memory.clone(),
        );
        let pool_reserved_memory = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "invoker_pool_reserved_memory_megabytes",
            "Memory reserved by containers and running activations",
            pool_reserved_memory.clone(),
        );
        let pool_active = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "invoker_pool_active_activations",
            "Activations running",
            pool_active.clone(),
        );
        let pool_buffered = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "invoker_pool_buffered_jobs",
            "Jobs waiting for capacity",
            pool_buffered.clone(),
        );
        let pool_containers = Family::<StateLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "invoker_pool_containers",
            "Containers by state",
            pool_containers.clone(),
        );
        Self {
            registry,
            activations,
            duration,
            wait,
            init,
            starts,
            messages,
            acks,
            ack_failures,
            ack_retries,
            producer_recreations,
            consumer_restarts,
            panics,
            records,
            entity_cache,
            consumer_lag,
            pool_user_memory,
            pool_reserved_memory,
            pool_active,
            pool_buffered,
            pool_containers,
        }
    }

    /// Counts one message read from the invoker topic.
    pub fn message(&self, parsed: bool) {
        let result = if parsed { "parsed" } else { "malformed" };
        self.messages
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// How many malformed messages were skipped so far.
    pub fn malformed_messages(&self) -> u64 {
        self.messages
            .get_or_create(&ResultLabels {
                result: "malformed".into(),
            })
            .get()
    }

    /// Counts one answered activation.
    pub fn activation(&self, kind: &str, status: u8) {
        self.activations
            .get_or_create(&ActivationLabels {
                kind: kind.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    /// Counts one action lookup of the entity cache (a load without revision bypasses the cache and
    /// counts as a miss: it reads the store).
    pub fn entity_cache_lookup(&self, lookup: CacheLookup) {
        self.entity_cache
            .get_or_create(&ResultLabels {
                result: lookup.as_str().into(),
            })
            .inc();
    }

    /// Counts one sent ack.
    pub fn ack(&self, ack: &str, shrunk: bool) {
        self.acks
            .get_or_create(&AckLabels {
                ack: ack.to_string(),
                shrunk: shrunk.to_string(),
            })
            .inc();
    }

    /// The Prometheus text of every metric, pool gauges taken from `pool`.
    pub fn render(&self, pool: Option<PoolStats>) -> String {
        if let Some(stats) = pool {
            let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
            self.pool_user_memory.set(gauge(stats.user_memory_mb));
            self.pool_reserved_memory.set(gauge(stats.reserved_mb));
            self.pool_active.set(gauge(stats.active));
            self.pool_buffered.set(gauge(stats.buffered as u64));
            for (state, count) in [
                ("starting", stats.starting),
                ("prewarmed", stats.prewarmed),
                ("warm", stats.warm),
                ("paused", stats.paused),
            ] {
                self.pool_containers
                    .get_or_create(&StateLabels {
                        state: state.into(),
                    })
                    .set(gauge(count as u64));
            }
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_render_shows_counted_activations_and_pool_gauges() {
        let metrics = Metrics::new();
        metrics.activation("wasm:wasip1", 0);
        metrics.activation("wasm:wasip1", 0);
        metrics.message(false);
        metrics.entity_cache_lookup(CacheLookup::Miss);
        metrics.entity_cache_lookup(CacheLookup::Hit);
        metrics.entity_cache_lookup(CacheLookup::Hit);
        let text = metrics.render(Some(PoolStats {
            user_memory_mb: 2048,
            ..PoolStats::default()
        }));
        assert!(
            text.contains(r#"invoker_activations_total{kind="wasm:wasip1",status="0"} 2"#),
            "{text}"
        );
        assert!(
            text.contains("invoker_pool_user_memory_megabytes 2048"),
            "{text}"
        );
        assert_eq!(metrics.malformed_messages(), 1);
        assert!(
            text.contains(r#"invoker_entity_cache_total{result="hit"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"invoker_entity_cache_total{result="miss"} 1"#),
            "{text}"
        );
    }

    /// The Grafana dashboard shipped in `deploy/monitoring/` names only metrics this registry
    /// exposes: a renamed metric fails here instead of leaving an empty panel on an operator's
    /// screen.
    #[test]
    fn test_dashboard_queries_name_exposed_metrics() {
        let dashboard: serde_json::Value = serde_json::from_str(include_str!(
            "../../deploy/monitoring/grafana-dashboard.json"
        ))
        .expect("the dashboard is JSON");
        let text = Metrics::new().render(Some(PoolStats::default()));
        let mut checked = 0;
        let panels = dashboard["panels"].as_array().expect("panels");
        for target in panels
            .iter()
            .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        {
            let expr = target["expr"].as_str().expect("expr");
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("invoker_"))
            {
                let base = ["_total", "_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                assert!(
                    text.contains(&format!("# TYPE {base} ")),
                    "the dashboard queries {name}, which /metrics does not expose"
                );
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} metric references found");
    }
}
