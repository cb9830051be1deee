//! The optional per-activation scratch `/tmp`: a fresh, empty host directory preopened read-write at
//! `/tmp`, measured while the action runs, deleted when the activation ends.
//!
//! The size cap ([`ScratchConfig::max_bytes`]) counts allocated disk blocks, and the entry cap
//! ([`ScratchConfig::max_entries`]) files and directories. Both are checked by walking the directory
//! (never following symbolic links) every [`CHECK_INTERVAL`] while the activation runs, on tokio's
//! blocking threads ([`ScratchWatcher`]; the guest's epoch callback stops it at its next tick once
//! over), and once after it ends; see
//! [`ScratchConfig::max_bytes`] for what can slip between two checks. The directory is removed with
//! [`tempfile::TempDir`], which does not follow links either, so a link the guest made to elsewhere
//! never leads the host to delete outside it.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use super::config::ScratchConfig;

/// How often a running activation's scratch directory is measured. A walk is file system work (a
/// few microseconds per entry), so it runs on a blocking thread, not on the guest's worker.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// Bytes per block in `st_blocks` (always 512 on Linux, whatever the filesystem's block size).
const STAT_BLOCK_BYTES: u64 = 512;

/// The message of an activation stopped for filling its scratch directory.
pub fn scratch_exhausted(max_bytes: u64, max_entries: u64) -> String {
    format!(
        "The action exceeded its scratch space of {max_bytes} bytes and {max_entries} files in /tmp and was aborted."
    )
}

/// One activation's scratch directory; deleted on drop.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    dir: TempDir,
    max_bytes: u64,
    max_entries: u64,
}

/// What a scratch directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Usage {
    /// Allocated bytes.
    pub(crate) bytes: u64,
    /// Files, directories and links.
    pub(crate) entries: u64,
}

impl ScratchDir {
    /// Creates a fresh, empty directory under the configured parent.
    pub(crate) fn create(config: &ScratchConfig) -> io::Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("wasm-scratch-");
        let dir = match &config.parent_dir {
            Some(parent) => builder.tempdir_in(parent)?,
            None => builder.tempdir()?,
        };
        Ok(Self {
            dir,
            max_bytes: config.max_bytes,
            max_entries: config.max_entries,
        })
    }

    /// The host path to preopen.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the directory is over a cap. Stops counting as soon as it is.
    pub(crate) fn over_cap(&self) -> bool {
        match usage(self.path(), self.max_entries) {
            Ok(usage) => usage.bytes > self.max_bytes || usage.entries > self.max_entries,
            // The directory cannot be measured (the guest removed its own files meanwhile, or
            // made something unreadable): not evidence of excess; the next check or the final
            // one decides.
            Err(_) => false,
        }
    }

    /// The message for this directory's caps.
    pub(crate) fn exhausted_message(&self) -> String {
        scratch_exhausted(self.max_bytes, self.max_entries)
    }
}

/// Measures a running activation's scratch directory every [`CHECK_INTERVAL`] on tokio's blocking
/// threads, and raises a flag once it is over a cap. Stops when dropped.
#[derive(Debug)]
pub(crate) struct ScratchWatcher {
    over: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ScratchWatcher {
    /// Starts watching `dir` on the current tokio runtime.
    pub(crate) fn start(dir: &ScratchDir, config: &ScratchConfig) -> Self {
        let over = Arc::new(AtomicBool::new(false));
        let (path, flag) = (dir.path().to_path_buf(), Arc::clone(&over));
        let (max_bytes, max_entries) = (config.max_bytes, config.max_entries);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECK_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let root: PathBuf = path.clone();
                let measured = tokio::task::spawn_blocking(move || usage(&root, max_entries)).await;
                // An unreadable directory is not evidence of excess (see `over_cap`).
                if let Ok(Ok(usage)) = measured
                    && (usage.bytes > max_bytes || usage.entries > max_entries)
                {
                    flag.store(true, Ordering::Release);
                    return;
                }
            }
        });
        Self { over, task }
    }

    /// The flag raised once the directory is over a cap.
    pub(crate) fn over(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.over)
    }
}

impl Drop for ScratchWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Measures `root` without following symbolic links; stops once more than `max_entries` entries
/// were seen (the caller only needs to know it is over).
pub(crate) fn usage(root: &Path, max_entries: u64) -> io::Result<Usage> {
    let mut total = Usage::default();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let metadata = entry.metadata()?;
            total.entries += 1;
            total.bytes = total
                .bytes
                .saturating_add(metadata.blocks().saturating_mul(STAT_BLOCK_BYTES));
            if total.entries > max_entries {
                return Ok(total);
            }
            // `DirEntry::metadata` does not traverse links, so a link is never descended into.
            if metadata.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_usage_counts_files_in_subdirectories_and_not_through_links() {
        let config = ScratchConfig {
            enabled: true,
            ..ScratchConfig::default()
        };
        let scratch = ScratchDir::create(&config).unwrap();
        let root = scratch.path().to_path_buf();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/data"), vec![1u8; 64 * 1024]).unwrap();
        std::os::unix::fs::symlink("/usr", root.join("link")).unwrap();
        let measured = usage(&root, 100).unwrap();
        assert_eq!(measured.entries, 3);
        assert!(measured.bytes >= 64 * 1024, "{measured:?}");
        assert!(measured.bytes < 1024 * 1024, "{measured:?}");
        assert!(!scratch.over_cap());
        drop(scratch);
        assert!(!root.exists());
        assert!(Path::new("/usr").exists());
    }

    #[test]
    fn test_over_cap_by_bytes_or_entries() {
        let config = ScratchConfig {
            enabled: true,
            max_bytes: 4096,
            max_entries: 2,
            ..ScratchConfig::default()
        };
        let scratch = ScratchDir::create(&config).unwrap();
        std::fs::write(scratch.path().join("a"), vec![1u8; 64 * 1024]).unwrap();
        assert!(scratch.over_cap());
        std::fs::write(scratch.path().join("a"), b"x").unwrap();
        assert!(!scratch.over_cap());
        for name in ["b", "c"] {
            std::fs::write(scratch.path().join(name), b"x").unwrap();
        }
        assert!(scratch.over_cap());
    }
}
