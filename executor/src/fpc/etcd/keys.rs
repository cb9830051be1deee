//! The etcd key formats of OpenWhisk's `EtcdKV` (`core/.../etcd/EtcdUtils.scala`), as pure functions.
//!
//! Readers elsewhere split these keys on `/` and pick segments by position (the scheduler's
//! `ContainerManager`, `MemoryQueue`, `InvokerKeys.getInstanceId`), so every byte matters, including
//! two upstream asymmetries kept on purpose: `invoker{N}` in existing-container keys but `invoker/{N}`
//! in warmed-container keys, and a missing revision printed as the literal `null`.
//!
//! `fqn_doc_id` is always an action's fully qualified name without version and without a leading
//! slash (`guest/hello`, `guest/pkg/hello`); `inv_ns` is the invocation namespace (the caller's).

/// The literal upstream prints for an absent revision (Scala's `s"$rev"` of a `null`).
const NULL_REVISION: &str = "null";

/// The `invoker{N}[/{uniqueName}[/{displayedName}]]` path that names an invoker instance in its
/// lease key. A displayed name without a unique name is dropped, as upstream does.
pub fn instance_path(id: u32, unique_name: Option<&str>, displayed_name: Option<&str>) -> String {
    format!("invoker{id}{}", name_suffix(unique_name, displayed_name))
}

/// `{cluster}/instance/{instance_path}/lease`: the invoker's own lease key (value: the lease id in
/// decimal), built from [`instance_path`].
pub fn lease_key(cluster: &str, instance_path: &str) -> String {
    format!("{cluster}/instance/{instance_path}/lease")
}

/// `{cluster}/invokers/{N}[/{uniqueName}[/{displayedName}]]`: the invoker's health key, whose value
/// is the `InvokerResourceMessage` JSON. A displayed name without a unique name is dropped.
pub fn invoker_key(
    cluster: &str,
    id: u32,
    unique_name: Option<&str>,
    displayed_name: Option<&str>,
) -> String {
    format!(
        "{cluster}/invokers/{id}{}",
        name_suffix(unique_name, displayed_name)
    )
}

/// `{cluster}/namespace/{invNs}/{fqn}/{rev}/invoker{N}/container/{containerId}`: an existing
/// (created, not paused) container of invoker `N`. The scheduler's `MemoryQueue` takes the last
/// segment as the container id, so `container_id` must not contain `/`.
pub fn existing_container_key(
    cluster: &str,
    inv_ns: &str,
    fqn_doc_id: &str,
    rev: Option<&str>,
    invoker: u32,
    container_id: &str,
) -> String {
    format!(
        "{}invoker{invoker}/container/{container_id}",
        container_prefix(ContainerKind::Namespace, cluster, inv_ns, fqn_doc_id, rev)
    )
}

/// `{cluster}/warmed/{invNs}/{fqn}/{rev}/invoker/{N}/container/{containerId}`: a paused (warmed)
/// container of invoker `N`. Note `invoker/{N}`, not `invoker{N}`: the scheduler reads `N` as the
/// third segment from the end.
pub fn warmed_container_key(
    cluster: &str,
    inv_ns: &str,
    fqn_doc_id: &str,
    rev: Option<&str>,
    invoker: u32,
    container_id: &str,
) -> String {
    format!(
        "{}invoker/{invoker}/container/{container_id}",
        container_prefix(ContainerKind::Warmed, cluster, inv_ns, fqn_doc_id, rev)
    )
}

/// The three container key families an invoker counts per action (upstream's `containerPrefix`
/// types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// `namespace`: existing containers (written by invokers).
    Namespace,
    /// `in-progress`: containers being created (written by schedulers).
    InProgress,
    /// `warmed`: paused containers (written by invokers).
    Warmed,
}

impl ContainerKind {
    /// The key segment of this kind.
    pub fn segment(self) -> &'static str {
        match self {
            Self::Namespace => "namespace",
            Self::InProgress => "in-progress",
            Self::Warmed => "warmed",
        }
    }
}

/// `{cluster}/{kind}/{invNs}/{fqn}/{rev}/`, with the trailing slash (so that revision `1-a` does
/// not also count `1-ab`): the prefix counted when a paused container times out.
pub fn container_prefix(
    kind: ContainerKind,
    cluster: &str,
    inv_ns: &str,
    fqn_doc_id: &str,
    rev: Option<&str>,
) -> String {
    format!(
        "{cluster}/{}/{inv_ns}/{fqn_doc_id}/{}/",
        kind.segment(),
        rev.unwrap_or(NULL_REVISION)
    )
}

/// `{cluster}/scheduler`: the prefix of the schedulers' `SchedulerStates` keys, read and watched
/// for the warm-up. Upstream watches it without a trailing slash; so does this.
pub fn scheduler_prefix(cluster: &str) -> String {
    format!("{cluster}/scheduler")
}

/// `{cluster}/queue/{invNs}/{fqn}/leader`: the endpoints of the scheduler leading an action's queue.
pub fn queue_leader_key(cluster: &str, inv_ns: &str, fqn_doc_id: &str) -> String {
    format!("{cluster}/queue/{inv_ns}/{fqn_doc_id}/leader")
}

/// `/{u}[/{d}]`, or nothing without a unique name.
fn name_suffix(unique_name: Option<&str>, displayed_name: Option<&str>) -> String {
    match (unique_name, displayed_name) {
        (Some(unique), Some(displayed)) => format!("/{unique}/{displayed}"),
        (Some(unique), None) => format!("/{unique}"),
        (None, _) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_paths_and_lease_keys() {
        assert_eq!(instance_path(0, None, None), "invoker0");
        assert_eq!(instance_path(3, Some("3"), None), "invoker3/3");
        assert_eq!(instance_path(3, Some("u"), Some("d")), "invoker3/u/d");
        assert_eq!(instance_path(3, None, Some("d")), "invoker3");
        assert_eq!(
            lease_key("whisk", &instance_path(0, Some("0"), None)),
            "whisk/instance/invoker0/0/lease"
        );
    }

    #[test]
    fn invoker_keys_as_etcd_kv_tests() {
        assert_eq!(invoker_key("whisk", 0, None, None), "whisk/invokers/0");
        assert_eq!(
            invoker_key("whisk", 0, Some("0"), None),
            "whisk/invokers/0/0"
        );
        assert_eq!(
            invoker_key("whisk", 1, Some("u"), Some("d")),
            "whisk/invokers/1/u/d"
        );
        assert_eq!(invoker_key("whisk", 1, None, Some("d")), "whisk/invokers/1");
    }

    #[test]
    fn existing_and_warmed_container_keys_differ_in_the_invoker_segment() {
        assert_eq!(
            existing_container_key("whisk", "guest", "guest/hello", Some("1-abc"), 0, "3f9a"),
            "whisk/namespace/guest/guest/hello/1-abc/invoker0/container/3f9a"
        );
        assert_eq!(
            warmed_container_key("whisk", "guest", "guest/hello", Some("1-abc"), 0, "3f9a"),
            "whisk/warmed/guest/guest/hello/1-abc/invoker/0/container/3f9a"
        );
        let warmed = warmed_container_key("whisk", "ns", "whisk.system/utils/echo", None, 12, "c");
        assert_eq!(
            warmed,
            "whisk/warmed/ns/whisk.system/utils/echo/null/invoker/12/container/c"
        );
        // The scheduler takes the third segment from the end as the invoker id.
        let segments: Vec<&str> = warmed.split('/').collect();
        assert_eq!(segments[segments.len() - 3], "12");
    }

    #[test]
    fn container_keys_sit_under_their_prefix() {
        let key = existing_container_key("whisk", "guest", "guest/hello", None, 0, "c1");
        let prefix = container_prefix(
            ContainerKind::Namespace,
            "whisk",
            "guest",
            "guest/hello",
            None,
        );
        assert_eq!(prefix, "whisk/namespace/guest/guest/hello/null/");
        assert!(key.starts_with(&prefix));
        let rest: Vec<&str> = key[prefix.len() - "null/".len()..].split('/').collect();
        assert_eq!(rest, ["null", "invoker0", "container", "c1"]);
        assert_eq!(
            container_prefix(
                ContainerKind::InProgress,
                "whisk",
                "guest",
                "guest/p/a",
                Some("2-x")
            ),
            "whisk/in-progress/guest/guest/p/a/2-x/"
        );
        assert_eq!(
            container_prefix(ContainerKind::Warmed, "c", "n", "n/a", Some("1")),
            "c/warmed/n/n/a/1/"
        );
    }

    #[test]
    fn scheduler_and_queue_keys() {
        assert_eq!(scheduler_prefix("whisk"), "whisk/scheduler");
        assert_eq!(
            queue_leader_key("whisk", "guest", "guest/hello"),
            "whisk/queue/guest/guest/hello/leader"
        );
    }
}
