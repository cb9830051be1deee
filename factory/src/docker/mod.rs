//! The Docker factory: every kind of the runtimes manifest (and `blackbox`) in OpenWhisk's runtime
//! images, through the Docker Engine API (bollard; `DOCKER_HOST` or the local socket), created the way
//! OpenWhisk's `DockerContainerFactory` creates them (protocol reference, section 11).
//!
//! - [`DockerFactory::connect`] / [`DockerFactory::new`] build it from a [`DockerConfig`] and a
//!   [`Manifest`] ([`Manifest::from_file`], [`Manifest::from_json`], [`Manifest::from_env`]).
//! - Containers are named `{prefix}_{n}_{namespace}_{action}` / `{prefix}_{n}_prewarm_{kind}` and
//!   labelled [`INSTANCE_LABEL`]`=<prefix>`; [`Factory::cleanup`] removes exactly those.
//! - [`DockerContainer`] speaks `/init` and `/run` (bodies in [`wire`]) over a new HTTP connection
//!   each ([`client`]), reads each activation's logs from the container's json-file when
//!   [`DockerConfig::log_files_dir`] holds it ([`log_file`], woken by inotify) or else through the API
//!   ([`logs`]), and detects OOM kills.
//! - A container that must not take the activation after all (HTTP 503, or unreachable right after a
//!   resume) answers an outcome with [`crate::ContainerFault::Refused`]: the pool re-queues the
//!   activation instead of recording it (OpenWhisk's `ContainerHealthError`). Logs that could not be
//!   collected set [`crate::ContainerFault::LogsLost`]: the activation is recorded, the container is
//!   not reused.
//! - While the daemon is down, [`Factory::create`] fails at once with [`FactoryError::Unavailable`]
//!   (a whisk error) and [`Factory::health`] is unhealthy; the next call after the daemon returns
//!   reconnects.

pub mod client;
pub mod config;
mod container;
pub mod engine;
pub mod error;
pub mod log_file;
pub mod logs;
pub mod manifest;
mod watch;
pub mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, PortBinding, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
};
use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::Semaphore;

use crate::container::{Container, ContainerSpec, Factory, Health, Purpose, StemCell};
use crate::error::FactoryError;

pub use config::DockerConfig;
pub use container::DockerContainer;
pub use engine::Engine;
pub use error::DockerError;
pub use manifest::{BLACKBOX_KIND, Manifest, ManifestError};

use engine::EngineError;
use log_file::LogFile;
use watch::Watcher;

/// The label that marks a container as this invoker's; its value is the name prefix.
pub const INSTANCE_LABEL: &str = "wasm-invoker.instance";
/// The label holding the container's kind.
pub const KIND_LABEL: &str = "wasm-invoker.kind";
/// The port every OpenWhisk runtime listens on.
pub const RUNTIME_PORT: u16 = 8080;
/// Bound of create + start + inspect (OpenWhisk's `docker run` timeout, 1 minute).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound of an image pull (10 minutes).
const PULL_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound of the startup/shutdown cleanup (OpenWhisk waits at most 30 s).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of a health ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// OpenWhisk's process-wide container counter (names are `{prefix}_{n}_...`, n from 1).
static CONTAINER_COUNT: AtomicU64 = AtomicU64::new(1);

/// Keeps letters, digits and `_` (`ContainerProxy.containerName`; ASCII only, as docker names must be).
fn name_part(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The name of a new container: `{prefix}_{n}_{namespace}_{action}` or `{prefix}_{n}_prewarm_{kind}`.
pub fn container_name(prefix: &str, purpose: &Purpose, kind: &str) -> String {
    let n = CONTAINER_COUNT.fetch_add(1, Ordering::Relaxed);
    let (a, b) = match purpose {
        Purpose::Cold { namespace, action } => (name_part(namespace), name_part(action)),
        Purpose::Prewarm => ("prewarm".to_string(), name_part(kind)),
    };
    format!("{prefix}_{n}_{a}_{b}")
}

/// Where an image comes from and what to do when it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlan {
    /// The image reference to run.
    pub image: String,
    /// Whether to pull it first (blackbox images that are not native).
    pub pull: bool,
    /// Whether a failed pull fails the start (tag `latest` or none).
    pub pull_must_succeed: bool,
    /// Whether the runtime writes sentinels after each activation.
    pub sentinelled: bool,
    /// Whether failures are the user's (blackbox) rather than the platform's.
    pub blackbox: bool,
}

/// A pull under way, awaited by every creation that needs its image: `Ok(pulled)`, or `Err(reason)` when
/// the daemon is away.
type PullInFlight = Shared<BoxFuture<'static, Result<bool, String>>>;

/// The Docker factory. Cheap to share (`Arc`); all state is behind it.
pub struct DockerFactory {
    config: DockerConfig,
    manifest: Manifest,
    engine: Arc<Engine>,
    creations: Option<Semaphore>,
    pulls: Mutex<HashMap<String, PullInFlight>>,
    /// Wakes the json-file log readers; made on the first creation (it needs the tokio runtime), none
    /// when inotify is not available (the readers poll).
    watcher: OnceLock<Option<Arc<Watcher>>>,
}

impl std::fmt::Debug for DockerFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerFactory")
            .field("config", &self.config)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl DockerFactory {
    /// A factory that connects to the daemon on first use (and reconnects after the daemon was away).
    pub fn new(config: DockerConfig, manifest: Manifest) -> Arc<Self> {
        let engine = Arc::new(Engine::new(config.host.clone()));
        let creations = (config.parallel_runs > 0).then(|| Semaphore::new(config.parallel_runs));
        Arc::new(Self {
            config,
            manifest,
            engine,
            creations,
            pulls: Mutex::new(HashMap::new()),
            watcher: OnceLock::new(),
        })
    }

    /// A factory whose daemon answered: fails with [`DockerError::Connect`] when it does not.
    pub async fn connect(
        config: DockerConfig,
        manifest: Manifest,
    ) -> Result<Arc<Self>, DockerError> {
        let factory = Self::new(config, manifest);
        factory
            .engine
            .docker()
            .await
            .map_err(|e| DockerError::Connect {
                host: factory.engine.host().to_string(),
                reason: e.to_string(),
            })?;
        Ok(factory)
    }

    /// The configuration.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Decides the image of `spec` and its pull policy (protocol reference, section 11.2).
    pub fn plan(&self, spec: &ContainerSpec) -> Result<ImagePlan, FactoryError> {
        if spec.kind == BLACKBOX_KIND {
            let Some(image) = spec.image.as_deref().filter(|i| !i.is_empty()) else {
                return Err(FactoryError::Provision {
                    reason: "a blackbox action without an image".into(),
                });
            };
            let image = match self
                .config
                .user_images_registry
                .as_deref()
                .filter(|r| !r.is_empty())
            {
                Some(registry) if !manifest::has_registry(image) => {
                    format!("{}/{image}", registry.trim_end_matches('/'))
                }
                _ => image.to_string(),
            };
            let native = self
                .manifest
                .is_native_blackbox(&image, self.config.runtimes_registry.as_deref());
            let tag = manifest::image_tag(&image);
            return Ok(ImagePlan {
                pull: !native,
                pull_must_succeed: matches!(tag, None | Some("latest")),
                sentinelled: native,
                blackbox: true,
                image,
            });
        }
        let runtime =
            self.manifest
                .runtime(&spec.kind)
                .ok_or_else(|| FactoryError::UnsupportedKind {
                    factory: "docker",
                    kind: spec.kind.clone(),
                })?;
        Ok(ImagePlan {
            image: runtime
                .image
                .resolve(self.config.runtimes_registry.as_deref()),
            pull: false,
            pull_must_succeed: false,
            sentinelled: runtime.sentinelled_logs,
            blackbox: false,
        })
    }

    fn unavailable(&self, error: impl std::fmt::Display) -> FactoryError {
        FactoryError::Unavailable {
            factory: "docker",
            reason: error.to_string(),
        }
    }

    /// Pulls `image`; `Ok(false)` when the pull failed (the caller decides whether that matters).
    /// Concurrent pulls of the same image share one pull, as OpenWhisk coalesces them.
    async fn pull(&self, image: &str) -> Result<bool, FactoryError> {
        let shared = {
            let mut pulls = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
            pulls
                .entry(image.to_string())
                .or_insert_with(|| {
                    pull_image(self.engine.clone(), image.to_string())
                        .boxed()
                        .shared()
                })
                .clone()
        };
        let result = shared.clone().await;
        {
            let mut pulls = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
            if pulls
                .get(image)
                .is_some_and(|current| current.ptr_eq(&shared))
            {
                pulls.remove(image);
            }
        }
        result.map_err(|reason| self.unavailable(reason))
    }

    fn create_body(&self, spec: &ContainerSpec, plan: &ImagePlan) -> ContainerCreateBody {
        let memory = i64::from(spec.memory_mb) * crate::limits::BYTES_PER_MB as i64;
        let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let port_bindings = self.config.publish_on_loopback.then(|| {
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new()),
            };
            HashMap::from([(format!("{RUNTIME_PORT}/tcp"), Some(vec![binding]))])
        });
        let host_config = HostConfig {
            cpu_shares: Some(self.config.cpu_shares(spec.memory_mb)),
            nano_cpus: self.config.nano_cpus(spec.memory_mb),
            memory: Some(memory),
            // Same as memory: no swap.
            memory_swap: Some(memory),
            network_mode: Some(self.config.network.clone()),
            dns: non_empty(&self.config.dns_servers),
            dns_search: non_empty(&self.config.dns_search),
            dns_options: non_empty(&self.config.dns_options),
            cap_drop: Some(vec!["NET_RAW".into(), "NET_ADMIN".into()]),
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nofile".into()),
                soft: Some(1024),
                hard: Some(1024),
            }]),
            pids_limit: Some(1024),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: None,
            }),
            port_bindings,
            ..HostConfig::default()
        };
        let labels = HashMap::from([
            (INSTANCE_LABEL.to_string(), self.config.name_prefix.clone()),
            (KIND_LABEL.to_string(), spec.kind.clone()),
        ]);
        ContainerCreateBody {
            image: Some(plan.image.clone()),
            env: Some(self.config.container_env()),
            labels: Some(labels),
            exposed_ports: self
                .config
                .publish_on_loopback
                .then(|| vec![format!("{RUNTIME_PORT}/tcp")]),
            host_config: Some(host_config),
            ..ContainerCreateBody::default()
        }
    }

    /// Creates, starts and locates the container; removes it again when a later step fails.
    async fn run_container(
        &self,
        spec: &ContainerSpec,
        plan: &ImagePlan,
        pull_failed: bool,
    ) -> Result<DockerContainer, FactoryError> {
        let name = container_name(&self.config.name_prefix, &spec.purpose, &spec.kind);
        let body = self.create_body(spec, plan);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self
            .engine
            .call(RUN_TIMEOUT, |docker| async move {
                docker.create_container(Some(options), body).await
            })
            .await;
        let id = match created {
            Ok(created) => created.id,
            Err(EngineError::Unavailable(reason)) => return Err(self.unavailable(reason)),
            Err(EngineError::Api {
                status: 404,
                message,
            }) => {
                if plan.blackbox && pull_failed {
                    return Err(pull_error(&plan.image));
                }
                tracing::error!(
                    image = %plan.image,
                    kind = %spec.kind,
                    "the runtime image {} is not on this host (managed images are never pulled): {message}",
                    plan.image
                );
                return Err(FactoryError::Provision {
                    reason: format!("image {} is missing: {message}", plan.image),
                });
            }
            Err(e) => {
                return Err(FactoryError::Provision {
                    reason: format!("creating a container of {}: {e}", plan.image),
                });
            }
        };
        let owned = id.clone();
        let started = self
            .engine
            .call(RUN_TIMEOUT, |docker| async move {
                docker.start_container(&owned, None).await
            })
            .await;
        if let Err(e) = started {
            let _ = container::remove(&self.engine, &id).await;
            return Err(match e {
                EngineError::Unavailable(reason) => self.unavailable(reason),
                EngineError::Api { message, .. }
                    if message.contains("executable file not found") =>
                {
                    FactoryError::BlackboxStart {
                        message: format!("executable file not found in image {}", plan.image),
                    }
                }
                e => FactoryError::Provision {
                    reason: format!("starting {name}: {e}"),
                },
            });
        }
        match self.locate(&id).await {
            Ok((address, log_driver)) => {
                let log_file = self.open_log_file(&id, log_driver.as_deref());
                Ok(DockerContainer::new(
                    id,
                    name,
                    plan.image.clone(),
                    address,
                    plan.sentinelled,
                    self.config.max_result_bytes,
                    self.config.publish_on_loopback,
                    self.engine.clone(),
                    log_file,
                ))
            }
            Err(e) => {
                let _ = container::remove(&self.engine, &id).await;
                Err(e)
            }
        }
    }

    /// The container's json-file log, when the config reads log files, the container logs to a
    /// json-file and its file can be opened here; otherwise its logs are read through the API.
    fn open_log_file(&self, id: &str, log_driver: Option<&str>) -> Option<LogFile> {
        let dir = self.config.log_files_dir()?;
        if log_driver != Some("json-file") {
            tracing::debug!(
                id,
                ?log_driver,
                "not a json-file log: logs are read through the API"
            );
            return None;
        }
        let watcher = self
            .watcher
            .get_or_init(|| match Watcher::start() {
                Ok(watcher) => Some(Arc::new(watcher)),
                Err(e) => {
                    tracing::info!(error = %e, "no inotify: container log files are polled");
                    None
                }
            })
            .clone();
        match LogFile::open(&dir, id, watcher) {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::debug!(id, error = %e, "cannot open the log file: logs are read through the API");
                None
            }
        }
    }

    /// The runtime's address: the IP on the configured network (or the published loopback port), and
    /// the container's log driver.
    async fn locate(&self, id: &str) -> Result<(SocketAddr, Option<String>), FactoryError> {
        let owned = id.to_string();
        let info = self
            .engine
            .call(RUN_TIMEOUT, |docker| async move {
                docker.inspect_container(&owned, None).await
            })
            .await
            .map_err(|e| match e {
                EngineError::Unavailable(reason) => self.unavailable(reason),
                e => FactoryError::Provision {
                    reason: format!("inspecting {id}: {e}"),
                },
            })?;
        let log_driver = info
            .host_config
            .and_then(|h| h.log_config)
            .and_then(|l| l.typ);
        let settings = info.network_settings.unwrap_or_default();
        let address = if self.config.publish_on_loopback {
            let port = settings
                .ports
                .as_ref()
                .and_then(|ports| ports.get(&format!("{RUNTIME_PORT}/tcp")))
                .and_then(|bindings| bindings.as_ref())
                .and_then(|bindings| {
                    bindings
                        .iter()
                        .find_map(|b| b.host_port.as_deref()?.parse::<u16>().ok())
                });
            port.map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
                .ok_or_else(|| FactoryError::Provision {
                    reason: format!("{id} has no published port {RUNTIME_PORT}"),
                })?
        } else {
            self.bridge_address(id, &settings)?
        };
        Ok((address, log_driver))
    }

    /// The runtime's address on the configured network.
    fn bridge_address(
        &self,
        id: &str,
        settings: &bollard::models::NetworkSettings,
    ) -> Result<SocketAddr, FactoryError> {
        let ip = settings
            .networks
            .as_ref()
            .and_then(|networks| networks.get(&self.config.network))
            .and_then(|endpoint| endpoint.ip_address.as_deref())
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        ip.map(|ip| SocketAddr::new(ip, RUNTIME_PORT))
            .ok_or_else(|| FactoryError::Provision {
                reason: format!("{id} has no IP address on network {}", self.config.network),
            })
    }

    /// Containers of this invoker (label and name prefix both match): `(id, paused)`.
    async fn own_containers(&self) -> Result<Vec<(String, bool)>, FactoryError> {
        let prefix = self.config.name_prefix.clone();
        let filters = HashMap::from([
            ("label", vec![format!("{INSTANCE_LABEL}={prefix}")]),
            ("name", vec![format!("{prefix}_")]),
        ]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let listed = self
            .engine
            .call(RUN_TIMEOUT, |docker| async move {
                docker.list_containers(Some(options)).await
            })
            .await
            .map_err(|e| match e {
                EngineError::Unavailable(reason) => self.unavailable(reason),
                e => FactoryError::Provision {
                    reason: format!("listing containers: {e}"),
                },
            })?;
        let wanted = format!("/{prefix}_");
        Ok(listed
            .into_iter()
            .filter(|c| {
                c.labels.as_ref().and_then(|l| l.get(INSTANCE_LABEL)) == Some(&prefix)
                    && c.names.iter().flatten().any(|n| n.starts_with(&wanted))
            })
            .filter_map(|c| {
                let paused = matches!(
                    c.state,
                    Some(bollard::models::ContainerSummaryStateEnum::PAUSED)
                );
                c.id.map(|id| (id, paused))
            })
            .collect())
    }
}

/// One pull of `image`: `Ok(false)` when the registry refused or did not answer in time, `Err` when
/// the daemon is away.
async fn pull_image(engine: Arc<Engine>, image: String) -> Result<bool, String> {
    let docker = engine.docker().await.map_err(|e| e.to_string())?;
    let (from_image, tag) = match manifest::image_tag(&image) {
        Some(tag) => (
            image[..image.len() - tag.len() - 1].to_string(),
            tag.to_string(),
        ),
        None => (image.clone(), "latest".to_string()),
    };
    let options = CreateImageOptionsBuilder::new()
        .from_image(&from_image)
        .tag(&tag)
        .build();
    let pulled = tokio::time::timeout(PULL_TIMEOUT, async {
        let mut progress = docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            step?;
        }
        Ok::<(), bollard::errors::Error>(())
    })
    .await;
    match pulled {
        Ok(Ok(())) => Ok(true),
        Ok(Err(e)) => match engine.classify(e) {
            EngineError::Unavailable(reason) => Err(reason),
            api => {
                tracing::warn!(image, error = %api, "image pull failed");
                Ok(false)
            }
        },
        Err(_) => {
            tracing::warn!(image, "image pull timed out");
            Ok(false)
        }
    }
}

fn pull_error(image: &str) -> FactoryError {
    FactoryError::BlackboxStart {
        message: format!("Failed to pull container image '{image}'."),
    }
}

#[async_trait]
impl Factory for DockerFactory {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn supports(&self, kind: &str) -> bool {
        self.manifest.supports(kind)
    }

    fn stem_cells(&self) -> Vec<StemCell> {
        self.manifest.stem_cells()
    }

    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, FactoryError> {
        let plan = self.plan(&spec)?;
        // Fail fast while the daemon is away; this also reconnects when it is back.
        self.engine
            .docker()
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut pull_failed = false;
        if plan.pull && !self.pull(&plan.image).await? {
            if plan.pull_must_succeed {
                return Err(pull_error(&plan.image));
            }
            pull_failed = true;
        }
        let _permit = match &self.creations {
            Some(semaphore) => Some(semaphore.acquire().await.map_err(|e| self.unavailable(e))?),
            None => None,
        };
        let container = self.run_container(&spec, &plan, pull_failed).await?;
        tracing::debug!(id = container.id(), name = container.name(), image = %plan.image, "container started");
        Ok(Arc::new(container))
    }

    async fn health(&self) -> Health {
        let pinged = self
            .engine
            .call(PING_TIMEOUT, |docker| async move { docker.ping().await })
            .await;
        match pinged {
            Ok(_) => Health::Healthy,
            Err(e) => Health::Unhealthy(e.to_string()),
        }
    }

    async fn cleanup(&self) -> Result<(), FactoryError> {
        let work = async {
            let leftovers = self.own_containers().await?;
            for (id, paused) in leftovers {
                if paused {
                    let owned = id.clone();
                    let _ = self
                        .engine
                        .call(Duration::from_secs(10), |docker| async move {
                            docker.unpause_container(&owned).await
                        })
                        .await;
                }
                if let Err(e) = container::remove(&self.engine, &id).await {
                    tracing::warn!(id, error = %e, "cannot remove a leftover container");
                }
            }
            Ok(())
        };
        tokio::time::timeout(CLEANUP_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| {
                Err(FactoryError::Operation {
                    operation: "cleanup",
                    id: String::new(),
                    reason: "timed out".into(),
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factory(manifest: &str, config: DockerConfig) -> Arc<DockerFactory> {
        DockerFactory::new(config, Manifest::from_json(manifest).unwrap())
    }

    const MANIFEST: &str = r#"{"runtimes":{"nodejs":[{"kind":"nodejs:20","default":true,"image":{"prefix":"openwhisk","name":"action-nodejs-v20","tag":"nightly"}}]},
        "blackboxes":[{"prefix":"openwhisk","name":"dockerskeleton","tag":"nightly"}]}"#;

    fn spec(kind: &str, image: Option<&str>) -> ContainerSpec {
        ContainerSpec {
            kind: kind.into(),
            image: image.map(Into::into),
            memory_mb: 256,
            purpose: Purpose::Prewarm,
        }
    }

    #[test]
    fn test_names_follow_openwhisk() {
        let cold = Purpose::Cold {
            namespace: "guest@x.org".into(),
            action: "hello-world".into(),
        };
        let name = container_name("wsk00", &cold, "nodejs:20");
        let parts: Vec<_> = name.splitn(3, '_').collect();
        assert_eq!(parts[0], "wsk00");
        assert!(parts[1].parse::<u64>().unwrap() >= 1);
        assert_eq!(parts[2], "guestxorg_helloworld");
        assert!(
            container_name("wsk00", &Purpose::Prewarm, "nodejs:20").ends_with("_prewarm_nodejs20")
        );
    }

    #[test]
    fn test_image_plans_follow_the_pull_rules() {
        let f = factory(MANIFEST, DockerConfig::default());
        let managed = f.plan(&spec("nodejs:default", None)).unwrap();
        assert_eq!(managed.image, "openwhisk/action-nodejs-v20:nightly");
        assert!(!managed.pull && managed.sentinelled && !managed.blackbox);
        let native = f
            .plan(&spec("blackbox", Some("openwhisk/dockerskeleton:nightly")))
            .unwrap();
        assert!(!native.pull && native.sentinelled);
        let latest = f.plan(&spec("blackbox", Some("me/action"))).unwrap();
        assert!(latest.pull && latest.pull_must_succeed && !latest.sentinelled);
        let tagged = f.plan(&spec("blackbox", Some("me/action:1.2"))).unwrap();
        assert!(tagged.pull && !tagged.pull_must_succeed);
        assert!(matches!(
            f.plan(&spec("python:3.11", None)),
            Err(FactoryError::UnsupportedKind { .. })
        ));
        assert!(f.supports("blackbox") && f.supports("nodejs:20") && !f.supports("wasm:wasip1"));
        let registry = factory(
            MANIFEST,
            DockerConfig {
                user_images_registry: Some("reg.local:5000/".into()),
                ..DockerConfig::default()
            },
        );
        assert_eq!(
            registry
                .plan(&spec("blackbox", Some("me/a:1")))
                .unwrap()
                .image,
            "reg.local:5000/me/a:1"
        );
        assert_eq!(
            registry
                .plan(&spec("blackbox", Some("docker.io/me/a")))
                .unwrap()
                .image,
            "docker.io/me/a"
        );
    }

    #[test]
    fn test_create_body_matches_docker_run() {
        let f = factory(
            MANIFEST,
            DockerConfig {
                api_host: "https://h:443".into(),
                dns_servers: vec!["1.1.1.1".into()],
                ..DockerConfig::default()
            },
        );
        let s = spec("nodejs:20", None);
        let body = f.create_body(&s, &f.plan(&s).unwrap());
        let host = body.host_config.unwrap();
        assert_eq!(host.memory, Some(256 * 1024 * 1024));
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(host.cpu_shares, Some(128));
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        assert_eq!(
            host.cap_drop,
            Some(vec!["NET_RAW".to_string(), "NET_ADMIN".to_string()])
        );
        assert_eq!(host.pids_limit, Some(1024));
        assert_eq!(host.dns, Some(vec!["1.1.1.1".to_string()]));
        assert_eq!(host.dns_search, None);
        assert_eq!(
            body.env,
            Some(vec!["__OW_API_HOST=https://h:443".to_string()])
        );
        assert_eq!(body.labels.unwrap()[INSTANCE_LABEL], "wsk0");
    }
}
