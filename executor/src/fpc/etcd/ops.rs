//! The etcd calls the registry makes, each bounded in time and mapped to [`EtcdError`].

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions, PutOptions};

use super::config::EtcdConfig;
use super::error::EtcdError;

/// The longest any single unary etcd call may take: a dead or partitioned server makes calls fail
/// after this instead of hanging the invoker.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one etcd call within [`OP_TIMEOUT`].
pub(crate) async fn timed<T>(
    operation: &'static str,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, EtcdError> {
    match tokio::time::timeout(OP_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(EtcdError::Client { operation, source }),
        Err(_) => Err(EtcdError::Timeout {
            operation,
            timeout: OP_TIMEOUT,
        }),
    }
}

/// A client for the configured endpoints. The channel connects lazily, so this succeeds even when
/// etcd is down; the first call then fails.
pub(crate) async fn connect(config: &EtcdConfig) -> Result<Client, EtcdError> {
    if config.endpoints.is_empty() {
        return Err(EtcdError::NoEndpoint);
    }
    // HTTP/2 pings notice a half-open connection under a long-lived watch stream.
    let mut options = ConnectOptions::new()
        .with_connect_timeout(OP_TIMEOUT)
        .with_keep_alive(Duration::from_secs(5), OP_TIMEOUT)
        .with_keep_alive_while_idle(true);
    if let Some((user, password)) = &config.credentials {
        options = options.with_user(user.clone(), password.clone());
    }
    timed("connect", Client::connect(&config.endpoints, Some(options))).await
}

/// Grants a lease of `ttl` seconds and returns its id.
pub(crate) async fn grant(client: &Client, ttl: i64) -> Result<i64, EtcdError> {
    let mut client = client.clone();
    let reply = timed("lease grant", client.lease_grant(ttl, None)).await?;
    if reply.ttl() <= 0 {
        return Err(EtcdError::Unexpected {
            operation: "lease grant",
            detail: format!("granted TTL {} ({})", reply.ttl(), reply.error()),
        });
    }
    Ok(reply.id())
}

/// Revokes a lease, deleting every key attached to it.
pub(crate) async fn revoke(client: &Client, lease: i64) -> Result<(), EtcdError> {
    let mut client = client.clone();
    timed("lease revoke", client.lease_revoke(lease)).await?;
    Ok(())
}

/// Puts `key` = `value` attached to `lease`; returns the revision of the write (0 if the reply has
/// no header, which only makes a later failover check more eager).
pub(crate) async fn put(
    client: &Client,
    key: &str,
    value: &str,
    lease: i64,
) -> Result<i64, EtcdError> {
    let mut client = client.clone();
    let reply = timed(
        "put",
        client.put(key, value, Some(PutOptions::new().with_lease(lease))),
    )
    .await?;
    Ok(reply.header().map_or(0, |header| header.revision()))
}

/// Deletes `key`.
pub(crate) async fn delete(client: &Client, key: &str) -> Result<(), EtcdError> {
    let mut client = client.clone();
    timed("delete", client.delete(key, None)).await?;
    Ok(())
}

/// The key-value pairs under `prefix` (or of exactly `prefix` when `exact`), as text, with the
/// store revision they were read at.
pub(crate) async fn get(
    client: &Client,
    key: &str,
    prefix: bool,
) -> Result<(Vec<(String, String)>, i64), EtcdError> {
    let mut client = client.clone();
    let options = prefix.then(|| GetOptions::new().with_prefix());
    let reply = timed("get", client.get(key, options)).await?;
    let revision = reply.header().map_or(0, |header| header.revision());
    let pairs = reply
        .kvs()
        .iter()
        .map(|kv| Ok((text(kv.key())?, text(kv.value())?)))
        .collect::<Result<Vec<_>, EtcdError>>()?;
    Ok((pairs, revision))
}

/// How many keys start with `prefix` (a count-only range).
pub(crate) async fn count(client: &Client, prefix: &str) -> Result<u64, EtcdError> {
    let mut client = client.clone();
    let options = GetOptions::new().with_prefix().with_count_only();
    let reply = timed("count", client.get(prefix, Some(options))).await?;
    u64::try_from(reply.count()).map_err(|_| EtcdError::Unexpected {
        operation: "count",
        detail: format!("negative count {}", reply.count()),
    })
}

/// Bytes from etcd as text.
pub(crate) fn text(bytes: &[u8]) -> Result<String, EtcdError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| EtcdError::NotUtf8(String::from_utf8_lossy(bytes).into_owned()))
}
