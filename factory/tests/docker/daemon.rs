//! The Docker daemon for tests, and the test runtime image on it. Shared by the factory's and the
//! pool's Docker tests (`#[path]`-included); both crates sit one level below the workspace root.

use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use tokio::sync::OnceCell;

/// The test runtime image (`factory/proxy`, built by `scripts/build-test-image`).
pub const IMAGE: &str = "wasm-invoker/action-proxy:test";
/// Bound of the daemon's first answer.
const ANSWER_BOUND: Duration = Duration::from_secs(30);
/// Bound of building the test image (it compiles a static proxy; on a loaded 2-core machine this
/// takes minutes). A liveness bound, not a measurement.
const BUILD_BOUND: Duration = Duration::from_secs(30 * 60);

/// The daemon, answering; panics (fails the test) when there is none.
pub async fn daemon() -> Docker {
    let docker =
        Docker::connect_with_defaults().expect("a Docker client (DOCKER_HOST or the local socket)");
    let docker = tokio::time::timeout(ANSWER_BOUND, docker.negotiate_version())
        .await
        .expect("the Docker daemon answers within its bound")
        .expect("these tests need a running Docker daemon; start dockerd (scripts/test does)");
    ensure_image(&docker).await;
    docker
}

/// Builds the test image once per test binary when the daemon does not have it.
async fn ensure_image(docker: &Docker) {
    static BUILT: OnceCell<()> = OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let inspected = tokio::time::timeout(ANSWER_BOUND, docker.inspect_image(IMAGE))
                .await
                .expect("the Docker daemon answers within its bound");
            if inspected.is_ok() {
                return;
            }
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            // Its own target directory: the running `cargo test` may hold the lock of the shared one.
            let build = tokio::process::Command::new("bash")
                .arg(root.join("scripts/build-test-image"))
                .env("CARGO_TARGET_DIR", root.join("target/proxy-image"))
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("CARGO_BUILD_TARGET")
                .kill_on_drop(true)
                .status();
            let status = tokio::time::timeout(BUILD_BOUND, build)
                .await
                .expect("build-test-image ends within its bound")
                .expect("run build-test-image");
            assert!(status.success(), "scripts/build-test-image failed");
        })
        .await;
}
