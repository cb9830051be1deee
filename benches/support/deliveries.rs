//! Messages a bench harness produced without waiting for the broker's answer to each: awaiting every
//! produce before the next would make the harness's own round trips, not the invoker, bound the
//! rate of a large window. The answers are confirmed once the phase is over.

use rdkafka::producer::DeliveryFuture;

/// Waits for the broker's answer to every message in `deliveries` and empties it; a message the
/// broker refused fails the bench.
pub async fn confirm(deliveries: &mut Vec<DeliveryFuture>) {
    for delivery in deliveries.drain(..) {
        delivery
            .await
            .expect("delivery report")
            .map_err(|(error, _)| error)
            .expect("produce");
    }
}
