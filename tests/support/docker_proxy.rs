//! A unix socket in front of the Docker daemon (`/var/run/docker.sock`) that a test can cut and
//! restore, so that an invoker started with `DOCKER_HOST=unix://<this socket>` sees its daemon go
//! away and come back on the same address while the machine's real dockerd (which other tests use)
//! keeps running. Cut: the listener is closed and its socket file removed (new connections fail, as
//! when dockerd is gone) and every open connection is closed under the client. Used by
//! `tests/faults_docker.rs`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

/// The daemon's own socket.
pub const DAEMON_SOCKET: &str = "/var/run/docker.sock";

/// A cuttable unix-socket proxy to the Docker daemon. Dropping it cuts it.
#[derive(Debug)]
pub struct DockerProxy {
    path: PathBuf,
    /// The token of the current listening period; cancelled by [`DockerProxy::cut`].
    open: Mutex<CancellationToken>,
}

impl DockerProxy {
    /// Listens on `path` (replacing any file there) and forwards every connection to the daemon.
    /// Must be called inside a tokio runtime.
    pub fn start(path: &Path) -> Self {
        let proxy = Self {
            path: path.to_path_buf(),
            open: Mutex::new(CancellationToken::new()),
        };
        proxy.serve();
        proxy
    }

    /// `unix://<path>`, the value for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn serve(&self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).expect("bind the Docker socket proxy");
        let open = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = open.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                let open = open.clone();
                tokio::spawn(async move {
                    let Ok(mut daemon) = UnixStream::connect(DAEMON_SOCKET).await else {
                        return;
                    };
                    tokio::select! {
                        () = open.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut daemon) => {}
                    }
                    // Both ends are dropped here: the client's connection is gone mid-request.
                });
            }
            // The listener is dropped here.
        });
    }

    /// Refuses new connections (the socket file is gone) and closes the open ones.
    pub fn cut(&self) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cancel();
        let _ = std::fs::remove_file(&self.path);
    }

    /// Listens again on the same path.
    pub fn restore(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = CancellationToken::new();
        self.serve();
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
