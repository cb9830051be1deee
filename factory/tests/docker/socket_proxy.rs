//! A unix socket in front of the Docker daemon that a test can take away and bring back, so that a
//! factory sees the daemon go down and come up without being rebuilt. Shared by the factory's and the
//! pool's Docker tests (`#[path]`-included).

use std::path::{Path, PathBuf};

/// A unix socket in front of the daemon that the test can take away and bring back: the factory sees
/// the daemon go down and come up without being rebuilt.
pub struct SocketProxy {
    path: PathBuf,
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

impl SocketProxy {
    /// Listens on `path` and forwards every connection to `/var/run/docker.sock`.
    pub fn start(path: &Path) -> Self {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path).expect("bind the socket proxy");
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { continue };
                        let mut stopped = stopped.clone();
                        tokio::spawn(async move {
                            let Ok(mut daemon) = tokio::net::UnixStream::connect("/var/run/docker.sock").await else { return };
                            tokio::select! {
                                _ = stopped.changed() => {}
                                _ = tokio::io::copy_bidirectional(&mut client, &mut daemon) => {}
                            }
                        });
                    }
                }
            }
        });
        Self {
            path: path.to_path_buf(),
            stop: Some(stop),
        }
    }

    /// Takes the socket away and cuts the connections through it.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for SocketProxy {
    fn drop(&mut self) {
        self.stop();
    }
}
