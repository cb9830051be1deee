//! The FPC invoker's etcd registry against a real etcd: the lease and its keep-alive, keys on the
//! lease, their re-creation after an external delete or a revoked lease, dedup, per-key order,
//! shutdown, reads and prefix watches, and an etcd that dies and comes back.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, GetOptions};
use executor::fpc::etcd::{EtcdConfig, PrefixEvent, Registry, keys};
use support::etcd::Etcd;
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(250);

fn lease_key() -> String {
    keys::lease_key("whisk", &keys::instance_path(0, Some("0"), None))
}

fn config(etcd: &Etcd) -> EtcdConfig {
    EtcdConfig {
        endpoints: vec![etcd.endpoint()],
        credentials: None,
        lease_ttl: TTL,
        retry_interval: RETRY,
    }
}

async fn registry(etcd: &Etcd) -> Arc<Registry> {
    Registry::start(config(etcd), lease_key(), CancellationToken::new())
        .await
        .expect("registry starts")
}

/// The value and lease of `key`, if it exists.
async fn read(client: &mut Client, key: &str) -> Option<(String, i64, i64)> {
    let reply = client.get(key, None).await.expect("get");
    reply.kvs().first().map(|kv| {
        (
            kv.value_str().expect("utf-8").to_owned(),
            kv.lease(),
            kv.mod_revision(),
        )
    })
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next prefix event, within 5 s.
async fn next(events: &mut tokio::sync::mpsc::Receiver<PrefixEvent>) -> PrefixEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event in time")
        .expect("watch open")
}

/// Waits until `key` = `value` on the registry's current lease.
async fn on_current_lease(
    etcd: &Etcd,
    registry: &Registry,
    key: &str,
    value: &str,
    within: Duration,
) {
    let client = etcd.client().await;
    eventually(
        within,
        &format!("{key} = {value:?} on the current lease"),
        || {
            let mut client = client.clone();
            let lease = registry.lease_id();
            async move {
                read(&mut client, key)
                    .await
                    .is_some_and(|(v, l, _)| v == value && l == lease)
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_key_holds_the_lease_id_and_the_lease_stays_alive() {
    let etcd = Etcd::start();
    let registry = registry(&etcd).await;
    let mut client = etcd.client().await;
    let lease = registry.lease_id();
    let (value, on, _) = read(&mut client, &lease_key()).await.expect("lease key");
    assert_eq!(value, lease.to_string());
    assert_eq!(on, lease);
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let ttl = client.lease_time_to_live(lease, None).await.expect("ttl");
        assert_eq!(ttl.granted_ttl(), 2, "granted TTL is the configured one");
        assert!(ttl.ttl() > 0, "remaining TTL {} dropped to 0", ttl.ttl());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(registry.lease_id(), lease, "no lease change while healthy");
    registry.shutdown(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn registered_key_is_on_the_lease_and_comes_back_after_an_external_delete() {
    let etcd = Etcd::start();
    let registry = registry(&etcd).await;
    let key = keys::invoker_key("whisk", 0, Some("0"), None);
    registry
        .put(key.clone(), r#"{"status":"up"}"#.to_owned())
        .await;
    on_current_lease(
        &etcd,
        &registry,
        &key,
        r#"{"status":"up"}"#,
        Duration::from_secs(2),
    )
    .await;

    let mut client = etcd.client().await;
    client
        .delete(key.as_str(), None)
        .await
        .expect("external delete");
    // About one retry interval; two plus slack for a loaded machine.
    on_current_lease(&etcd, &registry, &key, r#"{"status":"up"}"#, 4 * RETRY).await;
    registry.shutdown(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_lease_is_replaced_and_every_key_comes_back_on_the_new_one() {
    let etcd = Etcd::start();
    let registry = registry(&etcd).await;
    let health = keys::invoker_key("whisk", 0, Some("0"), None);
    let existing =
        keys::existing_container_key("whisk", "guest", "guest/hello", Some("1-abc"), 0, "c1");
    let warmed =
        keys::warmed_container_key("whisk", "guest", "guest/hello", Some("1-abc"), 0, "c2");
    registry.put(health.clone(), "h".to_owned()).await;
    registry.put(existing.clone(), String::new()).await;
    registry.put(warmed.clone(), String::new()).await;
    for key in [&health, &existing, &warmed] {
        on_current_lease(
            &etcd,
            &registry,
            key,
            if *key == health { "h" } else { "" },
            Duration::from_secs(2),
        )
        .await;
    }

    let old = registry.lease_id();
    let mut client = etcd.client().await;
    client.lease_revoke(old).await.expect("external revoke");
    eventually(Duration::from_secs(5), "a new lease", || {
        let registry = Arc::clone(&registry);
        async move { registry.lease_id() != old }
    })
    .await;
    let new = registry.lease_id();
    on_current_lease(
        &etcd,
        &registry,
        &lease_key(),
        &new.to_string(),
        Duration::from_secs(3),
    )
    .await;
    on_current_lease(&etcd, &registry, &health, "h", Duration::from_secs(3)).await;
    on_current_lease(&etcd, &registry, &existing, "", Duration::from_secs(3)).await;
    on_current_lease(&etcd, &registry, &warmed, "", Duration::from_secs(3)).await;
    let ttl = client.lease_time_to_live(new, None).await.expect("ttl");
    assert_eq!(ttl.granted_ttl(), 2);
    registry.shutdown(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_lease_key_brings_a_new_lease() {
    let etcd = Etcd::start();
    let registry = registry(&etcd).await;
    let health = keys::invoker_key("whisk", 0, None, None);
    registry.put(health.clone(), "h".to_owned()).await;
    on_current_lease(&etcd, &registry, &health, "h", Duration::from_secs(2)).await;
    let old = registry.lease_id();
    let mut client = etcd.client().await;
    client
        .delete(lease_key(), None)
        .await
        .expect("delete lease key");
    eventually(Duration::from_secs(5), "a new lease", || {
        let registry = Arc::clone(&registry);
        async move { registry.lease_id() != old }
    })
    .await;
    let new = registry.lease_id();
    on_current_lease(
        &etcd,
        &registry,
        &lease_key(),
        &new.to_string(),
        Duration::from_secs(3),
    )
    .await;
    on_current_lease(&etcd, &registry, &health, "h", Duration::from_secs(3)).await;
    // The old lease was revoked, not left to expire.
    let old_ttl = client.lease_time_to_live(old, None).await.expect("ttl");
    assert!(
        old_ttl.ttl() <= 0,
        "old lease still alive: {}",
        old_ttl.ttl()
    );
    registry.shutdown(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_key_is_gone_and_not_restored() {
    let etcd = Etcd::start();
    let registry = registry(&etcd).await;
    let key = keys::warmed_container_key("whisk", "guest", "guest/a", None, 0, "c");
    registry.put(key.clone(), String::new()).await;
    on_current_lease(&etcd, &registry, &key, "", Duration::from_secs(2)).await;
    registry.delete(&key).await;
    let mut client = etcd.client().await;
    eventually(Duration::from_secs(2), "key deleted", || {
        let mut client = client.clone();
        let key = key.clone();
        async move { read(&mut client, &key).await.is_none() }
    })
    .await;
    tokio::time::sleep(4 * RETRY).await;
    assert!(
        read(&mut client, &key).await.is_none(),
        "unregistered key came back"
    );
    registry.shutdown(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_value_twice_is_written_once() {
    let etcd = Etcd::start();
    let registry = registry(&etcd).await;
    let key = keys::invoker_key("whisk", 1, None, None);
    registry.put(key.clone(), "v1".to_owned()).await;
    on_current_lease(&etcd, &registry, &key, "v1", Duration::from_secs(2)).await;
    let mut client = etcd.client().await;
    let (_, _, first) = read(&mut client, &key).await.expect("key");
    registry.put(key.clone(), "v1".to_owned()).await;
    tokio::time::sleep(2 * RETRY).await;
    let (_, _, second) = read(&mut client, &key).await.expect("key");
    assert_eq!(first, second, "an unchanged value was written again");
    registry.put(key.clone(), "v2".to_owned()).await;
    on_current_lease(&etcd, &registry, &key, "v2", Duration::from_secs(2)).await;
    registry.shutdown(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_operation_on_a_key_wins() {
    let etcd = Etcd::start();
    let registry = registry(&etcd).await;
    let mut client = etcd.client().await;
    for round in 0..20 {
        let key = format!("whisk/order/{round}");
        registry.put(key.clone(), "a".to_owned()).await;
        registry.delete(&key).await;
        registry.put(key.clone(), "b".to_owned()).await;
        let gone = format!("whisk/order/gone/{round}");
        registry.put(gone.clone(), "a".to_owned()).await;
        registry.put(gone.clone(), "b".to_owned()).await;
        registry.delete(&gone).await;
    }
    for round in 0..20 {
        let key = format!("whisk/order/{round}");
        on_current_lease(&etcd, &registry, &key, "b", Duration::from_secs(3)).await;
    }
    tokio::time::sleep(2 * RETRY).await;
    let gone = client
        .get(
            "whisk/order/gone/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .expect("count");
    assert_eq!(gone.count(), 0);
    registry.shutdown(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_with_revoke_removes_every_key_at_once() {
    let etcd = Etcd::start();
    let registry = registry(&etcd).await;
    let keys = [
        "whisk/invokers/0",
        "whisk/warmed/a/b/c/null/invoker/0/container/x",
    ];
    for key in keys {
        registry.put(key.to_owned(), "v".to_owned()).await;
        on_current_lease(&etcd, &registry, key, "v", Duration::from_secs(2)).await;
    }
    registry.shutdown(true).await;
    let mut client = etcd.client().await;
    for key in keys.into_iter().chain([lease_key().as_str()]) {
        assert!(
            read(&mut client, key).await.is_none(),
            "{key} outlived the revoke"
        );
    }
    // Nothing is restored or written after the shutdown.
    registry.put("whisk/after".to_owned(), "v".to_owned()).await;
    tokio::time::sleep(2 * RETRY).await;
    assert!(read(&mut client, "whisk/after").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_counts_and_prefix_watches() {
    let etcd = Etcd::start();
    let registry = registry(&etcd).await;
    let mut client = etcd.client().await;
    let scheduler = keys::scheduler_prefix("whisk");
    client
        .put("whisk/scheduler/0", "s0", None)
        .await
        .expect("put");
    client.put("whisk/other", "x", None).await.expect("put");
    let prefix = keys::container_prefix(
        keys::ContainerKind::InProgress,
        "whisk",
        "guest",
        "guest/a",
        Some("1-a"),
    );
    for id in 0..3 {
        client
            .put(format!("{prefix}scheduler/0/creationId/{id}"), "", None)
            .await
            .expect("put");
    }
    client
        .put("whisk/in-progress/guest/guest/a/1-ab/x", "", None)
        .await
        .expect("put");

    assert_eq!(
        registry.get("whisk/scheduler/0").await.expect("get"),
        Some("s0".to_owned())
    );
    assert_eq!(registry.get("whisk/nothing").await.expect("get"), None);
    assert_eq!(
        registry.get_prefix(&scheduler).await.expect("prefix"),
        vec![("whisk/scheduler/0".to_owned(), "s0".to_owned())]
    );
    assert_eq!(registry.count_prefix(&prefix).await.expect("count"), 3);

    let mut events = registry.watch_prefix(scheduler);
    assert_eq!(
        next(&mut events).await,
        PrefixEvent::Put {
            key: "whisk/scheduler/0".to_owned(),
            value: "s0".to_owned()
        }
    );
    client
        .put("whisk/scheduler/1", "s1", None)
        .await
        .expect("put");
    client.put("whisk/unrelated", "u", None).await.expect("put");
    client
        .delete("whisk/scheduler/0", None)
        .await
        .expect("delete");
    assert_eq!(
        next(&mut events).await,
        PrefixEvent::Put {
            key: "whisk/scheduler/1".to_owned(),
            value: "s1".to_owned()
        }
    );
    assert_eq!(
        next(&mut events).await,
        PrefixEvent::Delete {
            key: "whisk/scheduler/0".to_owned()
        }
    );
    registry.shutdown(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_etcd_fails_calls_quickly_and_keys_return_after_its_restart() {
    let mut etcd = Etcd::start();
    let registry = registry(&etcd).await;
    let health = keys::invoker_key("whisk", 0, Some("0"), None);
    registry.put(health.clone(), "h".to_owned()).await;
    on_current_lease(&etcd, &registry, &health, "h", Duration::from_secs(2)).await;
    let mut events = registry.watch_prefix("whisk/scheduler".to_owned());

    etcd.kill();
    let bound = Duration::from_secs(10);
    let outcome = tokio::time::timeout(bound, async {
        registry.put(health.clone(), "h2".to_owned()).await;
        registry.put("whisk/new".to_owned(), "n".to_owned()).await;
        registry.delete("whisk/never").await;
        let get = registry.get(&health).await;
        let prefix = registry.get_prefix("whisk/").await;
        let count = registry.count_prefix("whisk/").await;
        (get, prefix, count)
    })
    .await
    .expect("calls against a dead etcd return in bounded time");
    let (get, prefix, count) = outcome;
    assert!(get.is_err() && prefix.is_err() && count.is_err());
    assert!(
        get.expect_err("error")
            .to_string()
            .contains("etcd get failed")
    );
    // Past the TTL with etcd down: the background tasks keep retrying without panicking.
    tokio::time::sleep(TTL + Duration::from_secs(1)).await;
    let _ = registry.lease_id();

    etcd.restart();
    eventually(
        Duration::from_secs(20),
        "lease key back on the current lease",
        || {
            let registry = Arc::clone(&registry);
            let endpoint = etcd.endpoint();
            async move {
                let Ok(mut client) = Client::connect([endpoint], None).await else {
                    return false;
                };
                let lease = registry.lease_id();
                read(&mut client, &lease_key())
                    .await
                    .is_some_and(|(value, on, _)| on == lease && value == lease.to_string())
            }
        },
    )
    .await;
    on_current_lease(&etcd, &registry, &health, "h2", Duration::from_secs(5)).await;
    on_current_lease(&etcd, &registry, "whisk/new", "n", Duration::from_secs(5)).await;
    // The prefix watch resumes too.
    let mut client = etcd.client().await;
    client
        .put("whisk/scheduler/9", "s9", None)
        .await
        .expect("put");
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("the prefix watch resumed")
        .expect("watch open");
    assert_eq!(
        event,
        PrefixEvent::Put {
            key: "whisk/scheduler/9".to_owned(),
            value: "s9".to_owned()
        }
    );
    registry.shutdown(true).await;
}
