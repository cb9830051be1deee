//! Two behaviours of the test broker, Tansu 0.6.0 with its in-memory storage, that a real Kafka broker
//! does not have, each reproduced on its own so that the end-to-end tests and the Kafka bench can
//! be read with them in mind (README, "Known limits"):
//!
//! - a fetch at an offset inside a multi-record batch skips the rest of that batch: the broker
//!   returns only batches whose base offset is at or after the fetch offset;
//! - with two producers writing to one partition at once, a consumer reading while they write can
//!   miss a record: the broker advances the high watermark before it stores the batch, so a fetch
//!   in between sees the next producer's batch and not this one. Read again from offset 0, the
//!   record is there.
//!
//! The batch test asserts what Tansu does: if it fails after a Tansu upgrade, the quirk is gone;
//! update the README's limits and the tests that work around it (`tests/invoker_scale.rs`,
//! `benches/kafka.rs`). The second is a race: it checks that nothing is lost whether or not the race
//! happens, and reports (without failing) a run in which no record was hidden.

#[path = "support/tansu.rs"]
#[allow(
    dead_code,
    reason = "the shared support module has more than these tests use"
)]
mod tansu;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tansu::Tansu;

/// How long one produce or one wait for a record may take before the test fails.
const STEP: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn producer(tansu: &Tansu, linger_ms: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", tansu.bootstrap())
        .set("linger.ms", linger_ms)
        .create()
        .expect("producer")
}

/// A consumer without a group's offsets, reading partition 0 of `topic` from `offset`.
fn reader(tansu: &Tansu, topic: &str, offset: i64) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", tansu.bootstrap())
        .set("group.id", format!("reader-{topic}-{offset}"))
        .set("enable.auto.commit", "false")
        // Tansu holds every fetch for the whole wait: a short one keeps the reader polling.
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    partitions
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("partition");
    consumer.assign(&partitions).expect("assign");
    consumer
}

/// The next record as (offset, payload), or `None` after `limit`.
async fn next(consumer: &StreamConsumer, limit: Duration) -> Option<(i64, String)> {
    match tokio::time::timeout(limit, consumer.recv()).await {
        Ok(Ok(message)) => Some((
            message.offset(),
            String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
        )),
        Ok(Err(error)) => panic!("consume failed: {error}"),
        Err(_) => None,
    }
}

/// Produces `payload` alone and waits for the broker to store it: one record per batch.
async fn produce_one(producer: &FutureProducer, topic: &str, payload: &str) -> i64 {
    let delivery = tokio::time::timeout(
        STEP,
        producer.send(
            FutureRecord::<(), str>::to(topic).payload(payload),
            Duration::from_secs(10),
        ),
    )
    .await
    .expect("a delivery report within the step")
    .map_err(|(error, _)| error)
    .expect("produce");
    delivery.offset
}

#[test]
fn test_a_fetch_inside_a_multi_record_batch_skips_the_rest_of_that_batch() {
    runtime().block_on(async {
        let tansu = Tansu::start();
        tansu.create_topics(&["batched"]).await;
        // Offsets 0..10 in one batch: queued together, sent after the linger.
        let batching = producer(&tansu, "200");
        let deliveries: Vec<_> = (0..10)
            .map(|n| {
                batching
                    .send_result(FutureRecord::<(), str>::to("batched").payload(&format!("r{n}")))
                    .map_err(|(error, _)| error)
                    .expect("queued")
            })
            .collect();
        for delivery in deliveries {
            tokio::time::timeout(STEP, delivery)
                .await
                .expect("a delivery report within the step")
                .expect("not cancelled")
                .map_err(|(error, _)| error)
                .expect("produce");
        }
        // Offsets 10..20 one record per batch.
        let single = producer(&tansu, "0");
        for n in 10..20 {
            assert_eq!(produce_one(&single, "batched", &format!("r{n}")).await, n);
        }

        // From offset 0, everything.
        let all = reader(&tansu, "batched", 0);
        for n in 0..20 {
            let (offset, payload) = next(&all, STEP).await.expect("a record from offset 0");
            assert_eq!((offset, payload), (n, format!("r{n}")));
        }
        // From offset 15, inside the one-record batches: 15 first, as a real Kafka does.
        let late = reader(&tansu, "batched", 15);
        let (offset, payload) = next(&late, STEP).await.expect("a record from offset 15");
        assert_eq!((offset, payload.as_str()), (15, "r15"));
        // From offset 5, inside the first batch: Tansu returns only batches whose base offset is
        // at least 5, so 5..10 never come and the first record is 10 (a real Kafka returns the
        // batch holding 5 and the client drops 0..5). Without the later batches, nothing at all
        // would come: the restarted invoker's symptom.
        let inside = reader(&tansu, "batched", 5);
        let (offset, payload) = next(&inside, STEP).await.expect("a record from offset 5");
        assert_eq!(
            (offset, payload.as_str()),
            (10, "r10"),
            "Tansu returned the batch holding offset 5: the quirk is gone, update the README"
        );
    });
}

/// One round: two producers write `PER_PRODUCER` records each to `topic` while a reader reads it;
/// then `topic` is read again from offset 0. Checks that the second read has every record once and
/// that what the first missed is exactly the offsets it was never given; returns those records.
async fn concurrent_round(tansu: &Tansu, topic: &'static str) -> Vec<(i64, String)> {
    /// Records per producer, each sent alone (its delivery awaited before the next) so that every
    /// record is a batch of its own, as an invoker's acks mostly are.
    const PER_PRODUCER: usize = 3000;
    tansu.create_topics(&[topic]).await;
    let live = reader(tansu, topic, 0);
    let total = 2 * PER_PRODUCER;
    // The live reader: every record it gets while the producers write.
    let reading = tokio::spawn(async move {
        let mut seen: BTreeMap<i64, String> = BTreeMap::new();
        let mut offsets_skipped = 0;
        let mut last = -1;
        while let Some((offset, payload)) = next(&live, Duration::from_secs(10)).await {
            if offset > last + 1 {
                offsets_skipped += offset - last - 1;
            }
            last = last.max(offset);
            seen.insert(offset, payload);
            if last + 1 >= total as i64 && seen.len() + offsets_skipped as usize >= total {
                break;
            }
        }
        (seen, offsets_skipped)
    });
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let producer = producer(tansu, "0");
            tokio::spawn(async move {
                for n in 0..PER_PRODUCER {
                    produce_one(&producer, topic, &format!("{name}{n}")).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("producer task");
    }
    let (seen, offsets_skipped) = reading.await.expect("reader task");

    // Read again from offset 0 once the writing is over: every record, once.
    let again = reader(tansu, topic, 0);
    let mut reread: BTreeMap<i64, String> = BTreeMap::new();
    while reread.len() < total {
        let Some((offset, payload)) = next(&again, STEP).await else {
            break;
        };
        reread.insert(offset, payload);
    }
    let produced: BTreeSet<String> = ["a", "b"]
        .iter()
        .flat_map(|name| (0..PER_PRODUCER).map(move |n| format!("{name}{n}")))
        .collect();
    let reread_payloads: BTreeSet<&String> = reread.values().collect();
    assert_eq!(reread.len(), total, "records read again from offset 0");
    assert_eq!(reread_payloads.len(), total, "each record once");
    assert!(produced.iter().all(|p| reread_payloads.contains(p)));
    for (offset, payload) in &seen {
        assert_eq!(reread.get(offset), Some(payload), "offset {offset}");
    }

    // What the live reader missed is exactly the offsets it was never given.
    let missed: Vec<(i64, String)> = reread
        .into_iter()
        .filter(|(offset, _)| !seen.contains_key(offset))
        .collect();
    assert_eq!(missed.len() as i64, offsets_skipped, "missed {missed:?}");
    eprintln!(
        "{topic}: {total} records from 2 producers; the reader meanwhile got {}, skipped {missed:?}; \
         read again from 0: all {total}",
        seen.len()
    );
    missed
}

#[test]
fn test_two_concurrent_producers_can_hide_a_record_from_a_consumer_reading_meanwhile() {
    /// Rounds until a record is hidden: about two rounds in three hide one on a 2-core machine.
    const ROUNDS: [&str; 10] = [
        "shared0", "shared1", "shared2", "shared3", "shared4", "shared5", "shared6", "shared7",
        "shared8", "shared9",
    ];
    runtime().block_on(async {
        let tansu = Tansu::start();
        for (round, topic) in ROUNDS.into_iter().enumerate() {
            if !concurrent_round(&tansu, topic).await.is_empty() {
                eprintln!("a record hidden in round {}", round + 1);
                return;
            }
        }
        // The race depends on timing: on a loaded machine a run can go without it. What every
        // round checked holds either way (the re-read has every record once, and the reader
        // missed exactly the offsets it skipped), so this is reported, not failed.
        eprintln!(
            "no record hidden in {} rounds this time (a race: about two rounds in three hide one \
             on an idle 2-core machine)",
            ROUNDS.len()
        );
    });
}
