//! Configuration of the Docker factory: how containers are created (OpenWhisk's
//! `whisk.container-factory.container-args`, `whisk.docker.*`, the invoker's user memory) and where the
//! daemon is.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where OpenWhisk's deployment mounts the Docker root's `containers/` directory in the invoker.
pub const OPENWHISK_CONTAINERS_DIR: &str = "/containers";
/// The Docker root's `containers/` directory on a default install.
pub const DOCKER_CONTAINERS_DIR: &str = "/var/lib/docker/containers";

/// How the Docker factory reaches the daemon and creates containers. Every field has a default
/// (`DockerConfig::default()`), so a config file names only what differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// The daemon's address: `unix:///path/docker.sock`, `tcp://host:port` or `http://host:port`.
    /// Default: none, meaning `DOCKER_HOST` when set, else `unix:///var/run/docker.sock`.
    pub host: Option<String>,
    /// Container name prefix, OpenWhisk's `"wsk" + uniqueName + instance` (see
    /// [`DockerConfig::name_prefix_for`]); also the value of the ownership label, so cleanup removes only
    /// this invoker's containers. Default `wsk0`.
    pub name_prefix: String,
    /// The invoker's user memory in MB, from which CPU shares are derived
    /// (`whisk.container-pool.user-memory`). Default 2048.
    pub user_memory_mb: u64,
    /// CPUs shared by all action containers (`whisk.container-pool.user-cpus`); when set, each
    /// container gets `--cpus` in proportion to its memory. Default none (no CPU limit).
    pub user_cpus: Option<f64>,
    /// The Docker network containers join (`container-args.network`). Default `bridge`.
    pub network: String,
    /// The value of `__OW_API_HOST` in every container (`<proto>://<host>:<port>`). Default empty.
    pub api_host: String,
    /// Extra environment for every container, `KEY=VALUE` (a bare `KEY` becomes `KEY=`). Default none.
    pub extra_env: Vec<String>,
    /// DNS servers for containers (`--dns`). Default none (docker's own).
    pub dns_servers: Vec<String>,
    /// DNS search domains (`--dns-search`). Default none.
    pub dns_search: Vec<String>,
    /// DNS options (`--dns-option`). Default none.
    pub dns_options: Vec<String>,
    /// Registry for manifest images that name none (`runtimes-registry.url`). Default none.
    pub runtimes_registry: Option<String>,
    /// Registry for blackbox images that name none (`user-images-registry.url`). Default none.
    pub user_images_registry: Option<String>,
    /// Most container creations at once (`whisk.docker.client.parallel-runs`); 0 means no limit.
    /// Default 10.
    pub parallel_runs: usize,
    /// Largest `/run` response read, in bytes (`whisk.activation.payload.max`); longer ones are cut and
    /// reported as truncated. Default 1048576 (1 MiB).
    pub max_result_bytes: usize,
    /// Publish each container's port 8080 on an ephemeral 127.0.0.1 port and talk to that instead of
    /// the container's IP on `network`, for hosts that cannot reach the bridge network. Default false.
    pub publish_on_loopback: bool,
    /// Read each activation's logs straight from the container's json-file log
    /// (`<containers_dir>/<id>/<id>-json.log`), as OpenWhisk's invoker does, instead of through the
    /// Engine API's `logs` endpoint: a warm run then costs about the runtime's own answer instead of
    /// several API round trips. A container whose log file cannot be opened (remote daemon, directory
    /// not mounted or not readable, another log driver) uses the API. Default true.
    pub log_files: bool,
    /// The Docker root's `containers/` directory as this process sees it. Default none: `/containers`
    /// when that is a directory (where OpenWhisk's deployment mounts it), else
    /// `/var/lib/docker/containers`.
    pub containers_dir: Option<PathBuf>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            host: None,
            name_prefix: "wsk0".to_string(),
            user_memory_mb: 2048,
            user_cpus: None,
            network: "bridge".to_string(),
            api_host: String::new(),
            extra_env: Vec::new(),
            dns_servers: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            runtimes_registry: None,
            user_images_registry: None,
            parallel_runs: 10,
            max_result_bytes: crate::limits::DEFAULT_MAX_RESULT_BYTES,
            publish_on_loopback: false,
            log_files: true,
            containers_dir: None,
        }
    }
}

impl DockerConfig {
    /// OpenWhisk's container name prefix for an invoker: `"wsk" + uniqueName + instance`, filtered to
    /// letters, digits, `_`, `.` and `-` (`ContainerFactory.containerNamePrefix`).
    pub fn name_prefix_for(instance: u32, unique_name: Option<&str>) -> String {
        format!("wsk{}{instance}", unique_name.unwrap_or(""))
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            .collect()
    }

    /// CPU shares of a container of `memory_mb` (`ContainerFactory.cpuShare`):
    /// `max(1024 / floor(user memory / container memory), 2)`.
    pub fn cpu_shares(&self, memory_mb: u32) -> i64 {
        let containers = (self.user_memory_mb / u64::from(memory_mb.max(1))).max(1);
        (1024 / containers as i64).max(2)
    }

    /// `--cpus` of a container of `memory_mb` when `user_cpus` is set (`ContainerFactory.cpuLimit`):
    /// `max(round5(user cpus / floor(user memory / container memory)), 0.01)`, as nano CPUs.
    pub fn nano_cpus(&self, memory_mb: u32) -> Option<i64> {
        let cpus = self.user_cpus?;
        let containers = (self.user_memory_mb / u64::from(memory_mb.max(1))).max(1) as f64;
        let share = ((cpus / containers) * 100_000.0).round() / 100_000.0;
        Some((share.max(0.01) * 1e9) as i64)
    }

    /// The directory holding the containers' json-file logs, when [`DockerConfig::log_files`] is on:
    /// [`DockerConfig::containers_dir`], else [`OPENWHISK_CONTAINERS_DIR`] when it is a directory, else
    /// [`DOCKER_CONTAINERS_DIR`].
    pub fn log_files_dir(&self) -> Option<PathBuf> {
        if !self.log_files {
            return None;
        }
        Some(match &self.containers_dir {
            Some(dir) => dir.clone(),
            None if Path::new(OPENWHISK_CONTAINERS_DIR).is_dir() => {
                PathBuf::from(OPENWHISK_CONTAINERS_DIR)
            }
            None => PathBuf::from(DOCKER_CONTAINERS_DIR),
        })
    }

    /// The environment every container starts with: `__OW_API_HOST` then the extra variables.
    pub fn container_env(&self) -> Vec<String> {
        let mut env = vec![format!("__OW_API_HOST={}", self.api_host)];
        env.extend(self.extra_env.iter().map(|e| {
            if e.contains('=') {
                e.clone()
            } else {
                format!("{e}=")
            }
        }));
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_defaults_and_unknown_fields() {
        let config: DockerConfig = serde_json::from_str(r#"{"network":"wsk"}"#).unwrap();
        assert_eq!(config.network, "wsk");
        assert_eq!(config.name_prefix, "wsk0");
        assert_eq!(config.parallel_runs, 10);
        assert!(serde_json::from_str::<DockerConfig>(r#"{"netwrk":"x"}"#).is_err());
        let dir: DockerConfig = serde_json::from_str(r#"{"containers_dir":"/mnt/c"}"#).unwrap();
        assert_eq!(dir.log_files_dir(), Some(PathBuf::from("/mnt/c")));
        let off: DockerConfig = serde_json::from_str(r#"{"log_files":false}"#).unwrap();
        assert_eq!(off.log_files_dir(), None);
        assert!(config.log_files_dir().is_some());
    }

    #[test]
    fn test_cpu_shares_follow_openwhisk() {
        let config = DockerConfig::default();
        assert_eq!(config.cpu_shares(256), 128);
        assert_eq!(config.cpu_shares(128), 64);
        assert_eq!(config.cpu_shares(2048), 1024);
        assert_eq!(config.cpu_shares(4096), 1024);
        let tiny = DockerConfig {
            user_memory_mb: 1024 * 1024,
            ..DockerConfig::default()
        };
        assert_eq!(tiny.cpu_shares(128), 2);
        let cpus = DockerConfig {
            user_cpus: Some(2.0),
            ..DockerConfig::default()
        };
        assert_eq!(cpus.nano_cpus(256), Some(250_000_000));
        assert_eq!(config.nano_cpus(256), None);
    }

    #[test]
    fn test_prefix_and_env() {
        assert_eq!(DockerConfig::name_prefix_for(0, Some("0")), "wsk00");
        assert_eq!(DockerConfig::name_prefix_for(3, None), "wsk3");
        assert_eq!(DockerConfig::name_prefix_for(1, Some("a b/c")), "wskabc1");
        let config = DockerConfig {
            api_host: "https://api:443".into(),
            extra_env: vec!["A=1".into(), "B".into()],
            ..DockerConfig::default()
        };
        assert_eq!(
            config.container_env(),
            vec!["__OW_API_HOST=https://api:443", "A=1", "B="]
        );
    }
}
