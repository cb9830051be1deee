//! Wake-ups for the json-file log reader ([`super::log_file`]): one inotify instance per factory, a
//! watch per container log file, and a task that turns each change into a [`Notify`] permit for the
//! container that waits on it.
//!
//! Why: the sentinels usually reach the file a fraction of a millisecond after the runtime answered,
//! and a timer can only wait whole milliseconds; an inotify wake-up comes as soon as docker wrote them.
//! Why one instance per factory: the kernel allows each user 128 inotify instances by default but
//! thousands of watches. Without inotify (not permitted, limit reached, watcher gone) the reader
//! polls the file instead, so every wait is also bounded by a timeout.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::io::Errno;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// The changes that wake a reader: data written, and the file renamed (rotated) or removed.
fn watched() -> WatchFlags {
    WatchFlags::MODIFY | WatchFlags::MOVE_SELF | WatchFlags::DELETE_SELF | WatchFlags::ATTRIB
}

/// One inotify instance and who waits on which of its watches.
#[derive(Debug)]
pub struct Watcher {
    fd: Arc<AsyncFd<OwnedFd>>,
    waiters: Arc<Mutex<HashMap<i32, Arc<Notify>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A watch on one file: [`Watch::changed`] completes after the file changed. Removed when dropped.
#[derive(Debug)]
pub struct Watch {
    wd: i32,
    notify: Arc<Notify>,
    fd: Weak<AsyncFd<OwnedFd>>,
    waiters: Weak<Mutex<HashMap<i32, Arc<Notify>>>>,
}

impl Watcher {
    /// A watcher whose events are read by a task on the current tokio runtime (which must have IO
    /// enabled). The task ends when the watcher is dropped.
    pub fn start() -> std::io::Result<Self> {
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
        #[expect(
            unsafe_code,
            reason = "tokio's registration of a raw fd with its reactor"
        )]
        // SAFETY: the AsyncFd owns the OwnedFd: nothing else closes or replaces the descriptor while it
        // is registered, and it is deregistered before being closed (AsyncFd's drop).
        let fd = Arc::new(unsafe { AsyncFd::register(fd)? });
        let waiters: Arc<Mutex<HashMap<i32, Arc<Notify>>>> = Arc::default();
        let task = tokio::spawn(dispatch(fd.clone(), waiters.clone()));
        Ok(Self { fd, waiters, task })
    }

    /// Watches `path` (the watch follows the file, not the name).
    pub fn watch(&self, path: &Path) -> std::io::Result<Watch> {
        let wd = inotify::add_watch(self.fd.get_ref(), path, watched())?;
        let notify = Arc::new(Notify::new());
        lock(&self.waiters).insert(wd, notify.clone());
        Ok(Watch {
            wd,
            notify,
            fd: Arc::downgrade(&self.fd),
            waiters: Arc::downgrade(&self.waiters),
        })
    }
}

impl Watch {
    /// Completes once the file changed since the last call returned (a change before this call counts).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(waiters) = self.waiters.upgrade() {
            lock(&waiters).remove(&self.wd);
        }
        if let Some(fd) = self.fd.upgrade() {
            // Fails when the file is gone, which removed the watch already.
            let _ = inotify::remove_watch(fd.get_ref(), self.wd);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the instance's events and wakes the watch of each, until the watcher is dropped (which aborts
/// this task).
async fn dispatch(fd: Arc<AsyncFd<OwnedFd>>, waiters: Arc<Mutex<HashMap<i32, Arc<Notify>>>>) {
    let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
    loop {
        let Ok(mut guard) = fd.readable().await else {
            return;
        };
        let mut woken = Vec::new();
        let read = guard.try_io(|inner| {
            let mut reader = inotify::Reader::new(inner.get_ref(), &mut buffer);
            loop {
                match reader.next() {
                    Ok(event) => woken.push(event.wd()),
                    Err(Errno::AGAIN) if !woken.is_empty() => return Ok(()),
                    Err(e) => return Err(std::io::Error::from(e)),
                }
            }
        });
        match read {
            // Spurious readiness: cleared, wait again.
            Err(_would_block) => continue,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading inotify events failed; log reads poll instead");
                return;
            }
            Ok(Ok(())) => {}
        }
        let waiters = lock(&waiters);
        woken.dedup();
        for wd in woken {
            if let Some(notify) = waiters.get(&wd) {
                notify.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    #[tokio::test]
    async fn test_a_write_wakes_the_watch_of_its_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut file_a = std::fs::File::create(&a).unwrap();
        std::fs::File::create(&b).unwrap();
        let watcher = Watcher::start().unwrap();
        let (watch_a, watch_b) = (watcher.watch(&a).unwrap(), watcher.watch(&b).unwrap());
        file_a.write_all(b"line\n").unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch_a.changed())
            .await
            .expect("woken by the write");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), watch_b.changed())
                .await
                .is_err()
        );
    }
}
