//! The latencies of a load phase of the Kafka-path benches (`benches/kafka.rs`, `benches/fpc.rs`):
//! each activation's, from its send until its slot-freeing ack, their percentiles, and the series
//! the summary (`benches/support/results.rs`) keeps of them.
//!
//! Needs the bench to include `benches/support/results.rs` as `mod results`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use executor::message::AcknowledgementMessage;

/// The latency of the activation a record of `completed0` (`payload`) answers: `Some` when it is
/// the slot-freeing ack of an activation in `outstanding` (activation id to send time), which it
/// then removes from there.
pub fn ack_latency(payload: &[u8], outstanding: &mut HashMap<String, Instant>) -> Option<Duration> {
    let ack = AcknowledgementMessage::parse(payload).ok()?;
    if !ack.frees_slot() {
        return None;
    }
    let sent = outstanding.remove(&ack.activation_id().to_string())?;
    Some(sent.elapsed())
}

/// The `p` quantile (0 to 1, nearest rank) of `sorted`, in ms; NaN when it is empty.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// The samples of one phase (`outstanding` messages at a time) as `latency_metric`, and its rate
/// and percentiles as points against the load, for the summary; `name` names the case.
pub fn record(
    series: &mut Vec<crate::results::Series>,
    latency_metric: &str,
    name: &str,
    outstanding: usize,
    latencies: &[Duration],
    wall: Duration,
) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    series.push(crate::results::Series::samples(
        latency_metric,
        &format!("{name}, {outstanding} outstanding"),
        "ms",
        sorted.iter().map(|d| d.as_secs_f64() * 1000.0).collect(),
    ));
    let rate = sorted.len() as f64 / wall.as_secs_f64();
    series.push(crate::results::Series::points(
        "throughput",
        name,
        "activations/s",
        "concurrent activations",
        vec![(outstanding as f64, rate)],
    ));
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        series.push(crate::results::Series::points(
            "e2e_latency",
            &format!("{name}, {label}"),
            "ms",
            "load (activations/s)",
            vec![(rate, percentile(&sorted, p))],
        ));
    }
}
