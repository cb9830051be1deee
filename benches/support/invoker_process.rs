//! An invoker process started by a bench (`benches/kafka.rs`, `benches/fpc.rs`): its config file,
//! its command line and environment, its log, and the guard that stops it when dropped (SIGTERM,
//! then SIGKILL if it has not exited after [`STOP_POLLS`] × [`STOP_POLL`]).
//!
//! Needs the bench to include the test support's port picker as `mod ports`
//! (`executor/tests/support/ports.rs`).

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use executor::store::couchdb::CouchDbConfig;

/// How often a stopping invoker is checked for its exit, and how many times before it is killed:
/// 10 s, time for it to drain and commit after SIGTERM.
const STOP_POLL: Duration = Duration::from_millis(50);
const STOP_POLLS: usize = 200;
/// Warning and error lines shown when a phase goes wrong: enough to see the cause, not a flood.
const WARNING_LINES: usize = 40;

/// A running invoker (or a stand-in for one), stopped when dropped.
pub struct Invoker(Child);

impl Invoker {
    /// Starts `command` with no stdin and its output to invoker `id`'s log in `dir`; `what` names
    /// it in the panic when it cannot start.
    pub fn spawn(mut command: Command, dir: &Path, id: u32, what: &str) -> Self {
        let log = File::create(log_path(dir, id)).expect("log");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect(what);
        Self(child)
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Invoker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..STOP_POLLS {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(STOP_POLL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes invoker `id`'s config into `dir` and returns its path: the broker at `kafka`, an admin
/// port from the test support's picker, `user_memory_mb` of user memory and `pool_extra` (whole
/// lines) in `[pool]`, the store `couch`.
pub fn write_config(
    dir: &Path,
    id: u32,
    kafka: &str,
    couch: &CouchDbConfig,
    user_memory_mb: usize,
    pool_extra: &str,
) -> PathBuf {
    let config = dir.join(format!("invoker{id}.toml"));
    std::fs::write(
        &config,
        format!(
            "[kafka]\nhosts = \"{kafka}\"\n\n[http]\nport = {}\n\n[pool]\nuser_memory = \"{user_memory_mb} MB\"\n{pool_extra}\n[couchdb]\nprotocol = \"http\"\nhost = \"127.0.0.1\"\nport = {}\nusername = \"{}\"\npassword = \"{}\"\nentity_db = \"{}\"\nactivation_db = \"{}\"\nauth_db = \"{}\"\n",
            admin_port(),
            couch.port,
            couch.username,
            couch.password,
            couch.entity_db,
            couch.activation_db,
            couch.auth_db
        ),
    )
    .expect("config");
    config
}

/// A port for an invoker's admin server, from the test support's picker (outside the ephemeral
/// range, so no client socket takes it before the invoker binds it).
fn admin_port() -> u16 {
    crate::ports::free_port(std::net::Ipv4Addr::LOCALHOST)
}

/// The command that runs `binary` as invoker `id` with `config`: warnings only in its log, the
/// consumer's `fetch.wait.max.ms` at `fetch_wait_ms`, and none of the environment that would
/// override the config file.
pub fn command(binary: impl AsRef<OsStr>, id: u32, config: &Path, fetch_wait_ms: u32) -> Command {
    let mut command = Command::new(binary);
    command
        .args([
            "invoker",
            "--id",
            &id.to_string(),
            "--unique-name",
            &id.to_string(),
            "--config",
        ])
        .arg(config)
        .env("RUST_LOG", "warn")
        .env(
            "CONFIG_whisk_kafka_consumer_fetchMaxWaitMs",
            fetch_wait_ms.to_string(),
        )
        .env_remove("KAFKA_HOSTS")
        .env_remove("PORT")
        .env_remove("RUNTIMES_MANIFEST");
    command
}

fn log_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("invoker{id}.log"))
}

/// Prints the first warnings and errors of invoker `id`'s log in `dir` to stderr.
pub fn print_warnings(dir: &Path, id: u32) {
    let log = std::fs::read_to_string(log_path(dir, id)).unwrap_or_default();
    for line in log
        .lines()
        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
        .take(WARNING_LINES)
    {
        eprintln!("invoker{id}: {line}");
    }
}
