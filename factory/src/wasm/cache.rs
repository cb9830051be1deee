//! Compiled modules, shared by every container and activation whose code has the same SHA-256
//! digest: compiled once, then found in memory, or on disk after a restart.
//!
//! **Memory**: a map from digest to the prepared module ([`CompiledModule`]: the `Module` and its
//! `InstancePre`), bounded in bytes of compiled code ([`WasmConfig::cache_max_bytes`](super::WasmConfig::cache_max_bytes)); beyond the
//! bound the least recently used entries are dropped (a linear scan: the cache holds hundreds of
//! entries, not millions). Containers hold their own `Arc`, so eviction never breaks a running
//! action; it only means the next init of that code recompiles (or reloads from disk).
//! Concurrent inits of the same digest wait for one compilation instead of each compiling.
//!
//! **Disk** ([`WasmConfig::disk_cache_dir`](super::WasmConfig::disk_cache_dir)): one file per (digest, engine configuration), named
//! `<digest>-<compatibility>.cwasm`, where the compatibility part is a digest of
//! [`wasmtime::Engine::precompile_compatibility_hash`] (wasmtime version, target, and the engine
//! settings compiled code depends on, fuel metering among them). Loading a compiled artifact runs
//! its native code unchecked, so the cache must only ever load files it wrote itself:
//!
//! - The directory holds a secret key, `cache.key` (32 random bytes, mode 0600, created once).
//! - Each file is `artifact || HMAC-SHA256(key, MAGIC || digest || compatibility || artifact) ||
//!   MAGIC`. The tag and magic come last so that the artifact starts at offset 0 of the file,
//!   where wasmtime expects its ELF image when it maps the file.
//! - Loading ([`DiskCache::load`]) opens the file read-only (no symlink followed), checks with
//!   `fstat` on that open file that it is a regular file owned by this process's user with no
//!   permission bits for group or others, maps it privately and read-only, checks the tag over the
//!   mapping (in constant time), unmaps it, and only then gives the same open file to
//!   `Module::deserialize_open_file`, which maps it again and runs the code from the page cache
//!   without copying it (a load used to read the file into a buffer, copy it out of the header,
//!   and have wasmtime copy it once more into fresh pages: two thirds of a disk load).
//! - A file that fails a check is counted ([`CacheMetrics::disk_rejected`]), ignored and replaced.
//!
//! **Why the mapped bytes are the checked bytes.** A private mapping of a file is not a snapshot on
//! Linux: until a page is written, it shows the file's current contents, so bytes checked through
//! one mapping stay the bytes wasmtime runs only if nobody writes the file's inode in place (a
//! rename over the name does not matter: the open file keeps the old inode, and the cache itself
//! only ever replaces files by rename). Writing or truncating an inode in place needs write
//! permission on it or the right to change its mode: the owner (checked: this process's user) or
//! the superuser, since group and others have no bits (checked on the open file, so the checked
//! and the mapped inode are the same). Both of those can read `cache.key` and make a valid tag for
//! any bytes, so the tag never protected against them; against everyone else the file cannot
//! change between the check and the run. The same holds for the crash a file truncated under a
//! mapping would cause (`SIGBUS`): only those same users can truncate it. The earlier design read
//! the file into memory before checking; it gave no stronger guarantee against those users (they
//! can forge the tag) and cost a read, a copy and wasmtime's copy per load.
//!
//! **Checked once per file, not per load.** The same argument makes a second check of an inode
//! already checked by this process worthless: nobody who cannot forge the tag can have changed it.
//! So the cache remembers the files it has checked by their identity on the open file (device,
//! inode, size, modification and change times; [`FileIdentity`]) and loads a remembered file
//! without hashing it again (the tag was a third of a load). The ownership and mode checks still
//! run on every open file. What the times add is not security but a guard against accidents: an
//! owner's tool writing a file in place changes its change time (which no user can set back), so
//! the file is checked again. A new file (the cache only ever replaces files by rename) is a new
//! inode, and an inode number reused for a later file comes with new times. The set lives in
//! memory only, so every file is checked again after a restart, and is bounded
//! ([`MAX_REMEMBERED_FILES`]): when full it is emptied, which only costs checks.
//!
//! Why a keyed MAC rather than, say, a manifest of plain digests: a manifest would itself be a file
//! in the directory that an attacker able to plant artifacts could rewrite; a tag made with a key
//! they cannot read cannot be forged by writing files. The key file is trusted only if it is a
//! regular file owned by this user and not readable by anyone else, in a directory that is not
//! writable by others; otherwise opening the cache fails (a misconfiguration worth stopping for).
//! Files are written to a temporary file in the same directory and renamed into place, so a reader
//! never sees a partial file; after a crash a leftover temporary file is just garbage, and a
//! renamed file whose data did not reach the disk fails its tag and is recompiled.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hmac::{Hmac, Mac};
use rand::RngCore;
use rustix::fs::{Mode, OFlags};
use rustix::mm::{self, MapFlags, ProtFlags};
use sha2::{Digest as _, Sha256};
use thiserror::Error;
use wasmtime::{Engine, InstancePre, Module};

use super::activation::ActivationState;

/// SHA-256 of a module's bytes: its identity in the cache.
pub type CodeDigest = [u8; 32];

/// Last bytes of every cache file: format and version of this layout (version 1 put the tag
/// first; its files fail the check and are recompiled).
const MAGIC: &[u8; 8] = b"owwasm2\n";
/// Length of the HMAC-SHA256 tag.
const TAG_BYTES: usize = 32;
/// Length of the secret key.
const KEY_BYTES: usize = 32;
/// Name of the key file.
const KEY_FILE: &str = "cache.key";
/// Extension of artifact files.
const ARTIFACT_EXTENSION: &str = "cwasm";
/// Largest cache file read. Threat: a huge file planted in the directory, read whole into memory
/// before its tag can be checked. Compiled code is a few times the module size, and modules are
/// capped at 128 MiB.
pub const MAX_ARTIFACT_BYTES: u64 = 1024 * 1024 * 1024;
/// Most checked files remembered (see the module docs); a few hundred bytes each at most.
const MAX_REMEMBERED_FILES: usize = 16 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// A failure of the disk cache.
#[derive(Debug, Error)]
pub enum CacheError {
    /// The directory or its key file cannot be created or read.
    #[error("disk cache {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The directory or key file could be written or read by someone else.
    #[error("disk cache {path} is not private: {reason}")]
    NotPrivate {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file exists but was not written by this cache (or was damaged).
    #[error("disk cache file {path} failed authentication")]
    Rejected {
        /// The file.
        path: PathBuf,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A module ready to instantiate: compiled, checked and linked.
pub struct CompiledModule {
    digest: CodeDigest,
    pre: InstancePre<ActivationState>,
    code_bytes: usize,
}

impl std::fmt::Debug for CompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModule")
            .field("digest", &hex::encode(self.digest))
            .field("code_bytes", &self.code_bytes)
            .finish_non_exhaustive()
    }
}

impl CompiledModule {
    /// Wraps a linked module.
    pub(crate) fn new(digest: CodeDigest, pre: InstancePre<ActivationState>) -> Self {
        let range = pre.module().image_range();
        let code_bytes = (range.end as usize).saturating_sub(range.start as usize);
        Self {
            digest,
            pre,
            code_bytes,
        }
    }

    /// The SHA-256 of the module bytes.
    pub fn digest(&self) -> &CodeDigest {
        &self.digest
    }

    /// Bytes of compiled code and data this module keeps in memory.
    pub fn code_bytes(&self) -> usize {
        self.code_bytes
    }

    /// The compiled code as wasmtime serializes it (a `.cwasm` artifact of this factory's engine).
    /// The factory itself never accepts such bytes as action code; this exists for tools and for
    /// tests proving it.
    pub fn serialize(&self) -> Result<Vec<u8>, super::WasmError> {
        self.pre
            .module()
            .serialize()
            .map_err(|error| super::WasmError::Serialize {
                reason: super::error::describe(&error),
            })
    }

    /// The linked module, ready to instantiate.
    pub(crate) fn instance_pre(&self) -> &InstancePre<ActivationState> {
        &self.pre
    }
}

/// Where a module came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Found in memory.
    Memory,
    /// Loaded from the disk cache.
    Disk,
    /// Compiled now.
    Compiled,
}

/// Counters and sizes of the cache, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheMetrics {
    /// Lookups answered from memory.
    pub memory_hits: u64,
    /// Lookups answered from disk.
    pub disk_hits: u64,
    /// Modules compiled (lookups that missed both).
    pub compiles: u64,
    /// Artifacts written to disk.
    pub disk_writes: u64,
    /// Disk files that failed authentication and were ignored.
    pub disk_rejected: u64,
    /// Disk reads or writes that failed for other reasons (logged; compilation went on).
    pub disk_errors: u64,
    /// Entries dropped from memory to stay within the byte bound.
    pub evictions: u64,
    /// Entries in memory now.
    pub entries: u64,
    /// Bytes of compiled code in memory now.
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiles: AtomicU64,
    disk_writes: AtomicU64,
    disk_rejected: AtomicU64,
    disk_errors: AtomicU64,
    evictions: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug)]
struct Entry {
    module: Arc<CompiledModule>,
    last_used: u64,
}

#[derive(Debug, Default)]
struct MemoryCache {
    entries: HashMap<CodeDigest, Entry>,
    bytes: u64,
    clock: u64,
}

/// The module cache of one factory.
#[derive(Debug)]
pub(crate) struct ModuleCache {
    max_bytes: u64,
    memory: Mutex<MemoryCache>,
    disk: Option<DiskCache>,
    inflight: Mutex<HashMap<CodeDigest, Arc<Mutex<()>>>>,
    counters: Counters,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing in this module panics while holding a lock; a poisoned one still holds valid data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The SHA-256 of `bytes`.
pub fn digest_of(bytes: &[u8]) -> CodeDigest {
    Sha256::digest(bytes).into()
}

impl ModuleCache {
    /// A cache bounded to `max_bytes` in memory, with a disk cache in `disk_dir` when given.
    pub(crate) fn new(
        max_bytes: u64,
        disk_dir: Option<&Path>,
        compatibility: &[u8; 32],
    ) -> Result<Self, CacheError> {
        let disk = disk_dir
            .map(|dir| DiskCache::open(dir, compatibility))
            .transpose()?;
        Ok(Self {
            max_bytes,
            memory: Mutex::new(MemoryCache::default()),
            disk,
            inflight: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    /// The prepared module for `digest`: from memory, else from disk, else compiled by `compile`
    /// (which also links it). Blocking: call on a blocking thread. Concurrent calls for the same
    /// digest compile once.
    pub(crate) fn get_or_compile<E>(
        &self,
        engine: &Engine,
        digest: CodeDigest,
        compile: impl FnOnce() -> Result<Module, E>,
        prepare: impl Fn(Module) -> Result<CompiledModule, E>,
    ) -> Result<(Arc<CompiledModule>, Source), E> {
        if let Some(module) = self.lookup(&digest) {
            return Ok((module, Source::Memory));
        }
        let gate = Arc::clone(lock(&self.inflight).entry(digest).or_default());
        let _turn = lock(&gate);
        // Whoever held the gate before us may have filled the cache.
        if let Some(module) = self.lookup(&digest) {
            return Ok((module, Source::Memory));
        }
        let outcome = self.load_or_compile(engine, digest, compile, prepare);
        lock(&self.inflight).remove(&digest);
        outcome
    }

    fn load_or_compile<E>(
        &self,
        engine: &Engine,
        digest: CodeDigest,
        compile: impl FnOnce() -> Result<Module, E>,
        prepare: impl Fn(Module) -> Result<CompiledModule, E>,
    ) -> Result<(Arc<CompiledModule>, Source), E> {
        if let Some(module) = self.load_from_disk(engine, &digest) {
            // A module from disk was checked when it was compiled; linking can still fail if it
            // is not what we think, in which case compiling below decides.
            if let Ok(prepared) = prepare(module) {
                bump(&self.counters.disk_hits);
                return Ok((self.insert(prepared), Source::Disk));
            }
        }
        let module = compile()?;
        bump(&self.counters.compiles);
        let prepared = prepare(module)?;
        self.store_to_disk(&prepared);
        Ok((self.insert(prepared), Source::Compiled))
    }

    fn load_from_disk(&self, engine: &Engine, digest: &CodeDigest) -> Option<Module> {
        let disk = self.disk.as_ref()?;
        match disk.load(digest) {
            Ok(None) => None,
            Ok(Some(artifact)) => {
                #[expect(
                    unsafe_code,
                    reason = "loading our own authenticated compiled artifacts"
                )]
                // SAFETY: `artifact` is an open file whose bytes this cache wrote with
                // `Module::serialize`: `DiskCache::load` returns only files whose HMAC tag, made
                // with the secret key only this cache can read, matches, checked over a mapping
                // of this very open file. Wasmtime maps the same open file (not the path, which
                // could be renamed to another file meanwhile); the module docs argue why its
                // contents cannot change afterwards except by users who could forge the tag
                // anyway. The artifact was produced by an engine with the same compatibility hash
                // (part of the file name and of the tag), and wasmtime itself re-checks version
                // and configuration and refuses a mismatch with an error. The tag and magic after
                // the ELF image are bytes wasmtime does not read.
                let loaded = unsafe { Module::deserialize_open_file(engine, artifact.into_file()) };
                match loaded {
                    Ok(module) => Some(module),
                    Err(error) => {
                        bump(&self.counters.disk_errors);
                        tracing::warn!(error = %format!("{error:#}"), "cannot load a cached module");
                        None
                    }
                }
            }
            Err(CacheError::Rejected { path }) => {
                bump(&self.counters.disk_rejected);
                tracing::warn!(path = %path.display(), "ignoring a cache file this cache did not write");
                None
            }
            Err(error) => {
                bump(&self.counters.disk_errors);
                tracing::warn!(%error, "cannot read the disk cache");
                None
            }
        }
    }

    fn store_to_disk(&self, prepared: &CompiledModule) {
        let Some(disk) = &self.disk else { return };
        let stored = prepared
            .pre
            .module()
            .serialize()
            .map_err(|error| format!("{error:#}"))
            .and_then(|artifact| {
                disk.store(&prepared.digest, &artifact)
                    .map_err(|e| e.to_string())
            });
        match stored {
            Ok(()) => bump(&self.counters.disk_writes),
            Err(error) => {
                bump(&self.counters.disk_errors);
                tracing::warn!(%error, "cannot write a module to the disk cache");
            }
        }
    }

    fn lookup(&self, digest: &CodeDigest) -> Option<Arc<CompiledModule>> {
        let mut memory = lock(&self.memory);
        memory.clock += 1;
        let now = memory.clock;
        let entry = memory.entries.get_mut(digest)?;
        entry.last_used = now;
        let module = Arc::clone(&entry.module);
        drop(memory);
        bump(&self.counters.memory_hits);
        Some(module)
    }

    /// Inserts a module and evicts least recently used others beyond the byte bound (never the
    /// one just inserted, so an oversize module still serves the container that asked for it).
    fn insert(&self, prepared: CompiledModule) -> Arc<CompiledModule> {
        let module = Arc::new(prepared);
        let size = module.code_bytes as u64;
        let mut memory = lock(&self.memory);
        memory.clock += 1;
        let now = memory.clock;
        let entry = Entry {
            module: Arc::clone(&module),
            last_used: now,
        };
        if let Some(old) = memory.entries.insert(module.digest, entry) {
            memory.bytes -= old.module.code_bytes as u64;
        }
        memory.bytes += size;
        while memory.bytes > self.max_bytes {
            let oldest = memory
                .entries
                .iter()
                .filter(|(digest, _)| **digest != module.digest)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(digest, _)| *digest);
            let Some(oldest) = oldest else { break };
            if let Some(evicted) = memory.entries.remove(&oldest) {
                memory.bytes -= evicted.module.code_bytes as u64;
                bump(&self.counters.evictions);
            }
        }
        module
    }

    /// Drops every module from memory (the disk cache stays). For benches measuring loads.
    pub(crate) fn clear_memory(&self) {
        let mut memory = lock(&self.memory);
        memory.entries.clear();
        memory.bytes = 0;
    }

    /// Forgets which disk files were authenticated (see [`DiskCache::forget_checked_files`]).
    pub(crate) fn forget_checked_files(&self) {
        if let Some(disk) = &self.disk {
            disk.forget_checked_files();
        }
    }

    /// Current counters and sizes.
    pub(crate) fn metrics(&self) -> CacheMetrics {
        let (entries, bytes) = {
            let memory = lock(&self.memory);
            (memory.entries.len() as u64, memory.bytes)
        };
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheMetrics {
            memory_hits: get(&self.counters.memory_hits),
            disk_hits: get(&self.counters.disk_hits),
            compiles: get(&self.counters.compiles),
            disk_writes: get(&self.counters.disk_writes),
            disk_rejected: get(&self.counters.disk_rejected),
            disk_errors: get(&self.counters.disk_errors),
            evictions: get(&self.counters.evictions),
            entries,
            bytes,
        }
    }
}

/// The on-disk half of the cache. See the module docs for the format and the trust rules.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    key: [u8; KEY_BYTES],
    compatibility: [u8; 32],
    /// The user owning the directory (checked to be this process's user when there is a procfs):
    /// artifact files must be owned by it.
    owner: u32,
    /// The files whose tag this process has checked (see the module docs).
    checked: Mutex<HashSet<FileIdentity>>,
}

/// What identifies one version of one file: its inode, and the size and times any change to its
/// contents or metadata moves (the change time cannot be set by any user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileIdentity {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileIdentity {
    fn of(metadata: &fs::Metadata) -> Self {
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

impl DiskCache {
    /// Opens (creating when missing) the cache in `dir` for an engine with `compatibility`.
    pub(crate) fn open(dir: &Path, compatibility: &[u8; 32]) -> Result<Self, CacheError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir))?;
        let metadata = fs::metadata(dir).map_err(io_error(dir))?;
        check_private(dir, &metadata, 0o022, "is writable by group or others")?;
        let key = load_or_create_key(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            compatibility: *compatibility,
            owner: metadata.uid(),
            checked: Mutex::new(HashSet::new()),
        })
    }

    fn path(&self, digest: &CodeDigest) -> PathBuf {
        let compatibility = hex::encode(&self.compatibility[..16]);
        self.dir.join(format!(
            "{}-{compatibility}.{ARTIFACT_EXTENSION}",
            hex::encode(digest)
        ))
    }

    fn tag(&self, digest: &CodeDigest, artifact: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(MAGIC);
        mac.update(digest);
        mac.update(&self.compatibility);
        mac.update(artifact);
        mac
    }

    /// The artifact stored for `digest`, if there is one and this cache wrote it: the open file,
    /// checked (see the module docs).
    pub(crate) fn load(&self, digest: &CodeDigest) -> Result<Option<VerifiedArtifact>, CacheError> {
        let path = self.path(digest);
        let rejected = || CacheError::Rejected { path: path.clone() };
        // No symlink followed; non-blocking so that a FIFO planted under the name cannot stall
        // the open (it is then refused as not a regular file).
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(&path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => return Err(rejected()),
            Err(error) => return Err(io_error(&path)(error.into())),
        };
        let file = fs::File::from(fd);
        // `fstat` on the open file: the checked inode is the mapped one.
        let metadata = file.metadata().map_err(io_error(&path))?;
        let trailer = (TAG_BYTES + MAGIC.len()) as u64;
        if !metadata.is_file()
            || metadata.uid() != self.owner
            || metadata.mode() & 0o077 != 0
            || metadata.len() < trailer
            || metadata.len() > MAX_ARTIFACT_BYTES
        {
            return Err(rejected());
        }
        let identity = FileIdentity::of(&metadata);
        if lock(&self.checked).contains(&identity) {
            return Ok(Some(VerifiedArtifact {
                file,
                #[cfg(test)]
                rechecked: false,
            }));
        }
        let len = usize::try_from(metadata.len()).map_err(|_| rejected())?;
        let mapping = Mapping::of(&file, len).map_err(|error| io_error(&path)(error.into()))?;
        let artifact_len = len - TAG_BYTES - MAGIC.len();
        let (artifact, trailer) = mapping.bytes().split_at(artifact_len);
        let (tag, magic) = trailer.split_at(TAG_BYTES);
        if magic != MAGIC || self.tag(digest, artifact).verify_slice(tag).is_err() {
            return Err(rejected());
        }
        drop(mapping);
        let mut checked = lock(&self.checked);
        if checked.len() >= MAX_REMEMBERED_FILES {
            checked.clear();
        }
        checked.insert(identity);
        Ok(Some(VerifiedArtifact {
            file,
            #[cfg(test)]
            rechecked: true,
        }))
    }

    /// Forgets every checked file, so each is checked again on its next load (as after a restart).
    pub(crate) fn forget_checked_files(&self) {
        lock(&self.checked).clear();
    }

    /// Stores `artifact` for `digest`, atomically replacing any previous file.
    pub(crate) fn store(&self, digest: &CodeDigest, artifact: &[u8]) -> Result<(), CacheError> {
        let path = self.path(digest);
        let tag = self.tag(digest, artifact).finalize().into_bytes();
        // `NamedTempFile` creates the file with mode 0600 in the same directory, so the rename
        // below is atomic.
        let mut file = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(io_error(&self.dir))?;
        file.write_all(artifact)
            .and_then(|()| file.write_all(&tag))
            .and_then(|()| file.write_all(MAGIC))
            .and_then(|()| file.flush())
            .map_err(io_error(file.path()))?;
        file.persist(&path)
            .map_err(|error| io_error(&path)(error.error))?;
        Ok(())
    }
}

/// A cache file whose tag matched, now or on an earlier load of the same file: the open file (the
/// mapping the tag was checked over is released before wasmtime maps the file).
#[derive(Debug)]
pub(crate) struct VerifiedArtifact {
    file: fs::File,
    /// Whether this load checked the tag (false: the file was checked before, see the module docs).
    #[cfg(test)]
    rechecked: bool,
}

impl VerifiedArtifact {
    /// The artifact's bytes (the file without its tag and magic), read again for a test.
    #[cfg(test)]
    fn bytes(&self) -> Vec<u8> {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        (&self.file)
            .read_to_end(&mut bytes)
            .expect("a cache file reads");
        bytes.truncate(bytes.len() - TAG_BYTES - MAGIC.len());
        bytes
    }

    /// The open file, for wasmtime to map.
    pub(crate) fn into_file(self) -> fs::File {
        self.file
    }
}

/// A private, read-only mapping of a whole file, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps the first `len` bytes (the whole file, `len` > 0) of `file`, privately and read-only,
    /// with its pages populated up front (one call instead of a fault per page).
    fn of(file: &fs::File, len: usize) -> Result<Self, rustix::io::Errno> {
        #[expect(
            unsafe_code,
            reason = "mapping a cache file to check its tag without copying it"
        )]
        // SAFETY: a new mapping at an address the kernel chooses overlaps no Rust object; it is
        // unmapped only by `Drop`, after every borrow of `bytes` has ended.
        let ptr = unsafe {
            mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::PRIVATE | MapFlags::POPULATE,
                file,
                0,
            )?
        };
        let ptr = std::ptr::NonNull::new(ptr.cast::<u8>()).ok_or(rustix::io::Errno::NOMEM)?;
        Ok(Self { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        #[expect(unsafe_code, reason = "viewing the mapping as a slice")]
        // SAFETY: `ptr` is a live read-only mapping of `len` bytes owned by `self`, so valid for
        // reads for `self`'s lifetime and never written through. The file's size was checked on
        // the open file just before mapping; the module docs argue why only users able to forge
        // the tag could truncate it under the mapping.
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr(), self.len)
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        #[expect(unsafe_code, reason = "releasing our own mapping")]
        // SAFETY: `ptr`/`len` are exactly the mapping `of` created, not unmapped before, and no
        // borrow of it outlives `self`.
        let unmapped = unsafe { mm::munmap(self.ptr.as_ptr().cast(), self.len) };
        if let Err(error) = unmapped {
            tracing::warn!(%error, "cannot unmap a disk cache file");
        }
    }
}

/// Refuses a file or directory that is not ours or that `forbidden_mode` bits make accessible to
/// others.
fn check_private(
    path: &Path,
    metadata: &fs::Metadata,
    forbidden_mode: u32,
    what: &str,
) -> Result<(), CacheError> {
    if metadata.permissions().mode() & forbidden_mode != 0 {
        return Err(CacheError::NotPrivate {
            path: path.to_path_buf(),
            reason: what.to_string(),
        });
    }
    // `/proc/self` belongs to the process's effective user; where there is no procfs the
    // permission check above has to do.
    if let Ok(me) = fs::metadata("/proc/self")
        && metadata.uid() != me.uid()
    {
        return Err(CacheError::NotPrivate {
            path: path.to_path_buf(),
            reason: format!(
                "is owned by uid {}, not by this process (uid {})",
                metadata.uid(),
                me.uid()
            ),
        });
    }
    Ok(())
}

/// Reads the cache's key, creating it on first use.
fn load_or_create_key(dir: &Path) -> Result<[u8; KEY_BYTES], CacheError> {
    let path = dir.join(KEY_FILE);
    match fs::symlink_metadata(&path) {
        Ok(metadata) => {
            if !metadata.is_file() {
                return Err(CacheError::NotPrivate {
                    path,
                    reason: "is not a regular file".into(),
                });
            }
            check_private(&path, &metadata, 0o077, "is accessible to group or others")?;
            read_key(&path)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let mut key = [0u8; KEY_BYTES];
            rand::rng().fill_bytes(&mut key);
            let mut file = tempfile::Builder::new()
                .prefix(".tmp-key-")
                .tempfile_in(dir)
                .map_err(io_error(dir))?;
            file.write_all(&key)
                .and_then(|()| file.flush())
                .map_err(io_error(&path))?;
            match file.persist_noclobber(&path) {
                Ok(_) => Ok(key),
                // Another process created it first: use theirs, like every later start will.
                Err(error) if error.error.kind() == io::ErrorKind::AlreadyExists => {
                    load_or_create_key(dir)
                }
                Err(error) => Err(io_error(&path)(error.error)),
            }
        }
        Err(error) => Err(io_error(&path)(error)),
    }
}

fn read_key(path: &Path) -> Result<[u8; KEY_BYTES], CacheError> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| CacheError::NotPrivate {
            path: path.to_path_buf(),
            reason: format!("holds {} bytes, not a {KEY_BYTES}-byte key", bytes.len()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPAT: [u8; 32] = [7; 32];

    #[test]
    fn test_round_trip_and_tampering_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), &COMPAT).unwrap();
        let digest = digest_of(b"module");
        assert!(cache.load(&digest).unwrap().is_none());
        cache.store(&digest, b"artifact bytes").unwrap();
        assert_eq!(
            cache.load(&digest).unwrap().unwrap().bytes(),
            b"artifact bytes"
        );

        // A file with one byte of the artifact flipped (it comes first in the file), put in place
        // by rename as anyone able to plant a file would: a new inode, checked again.
        let path = cache.path(&digest);
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] ^= 1;
        let planted = dir.path().join("planted");
        fs::write(&planted, &bytes).unwrap();
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o600)).unwrap();
        fs::rename(&planted, &path).unwrap();
        assert!(matches!(
            cache.load(&digest),
            Err(CacheError::Rejected { .. })
        ));

        // The same bytes written in place, seen by a cache that has not checked this file (after
        // a restart): rejected.
        fs::write(&path, &bytes).unwrap();
        let restarted = DiskCache::open(dir.path(), &COMPAT).unwrap();
        assert!(matches!(
            restarted.load(&digest),
            Err(CacheError::Rejected { .. })
        ));

        // A file made with another key (another cache) is rejected too.
        let other_dir = tempfile::tempdir().unwrap();
        let other = DiskCache::open(other_dir.path(), &COMPAT).unwrap();
        other.store(&digest, b"artifact bytes").unwrap();
        fs::copy(other.path(&digest), &path).unwrap();
        assert!(matches!(
            cache.load(&digest),
            Err(CacheError::Rejected { .. })
        ));
    }

    #[test]
    fn test_a_file_is_checked_once_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), &COMPAT).unwrap();
        let digest = digest_of(b"module");
        cache.store(&digest, b"artifact bytes").unwrap();
        assert!(cache.load(&digest).unwrap().unwrap().rechecked);
        let again = cache.load(&digest).unwrap().unwrap();
        assert!(
            !again.rechecked,
            "a file already checked is not hashed again"
        );
        assert_eq!(again.bytes(), b"artifact bytes");

        // Stored again (a new file renamed over the name): checked again.
        cache.store(&digest, b"artifact bytes").unwrap();
        assert!(cache.load(&digest).unwrap().unwrap().rechecked);

        // The ownership and mode checks still run on every load of a remembered file.
        let path = cache.path(&digest);
        assert!(!cache.load(&digest).unwrap().unwrap().rechecked);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(rejected(&cache, &digest));

        // A remembered file whose change time moved is checked again. The mode change back is
        // made well past the coarse clock's tick (at most 10 ms) that file times are taken from.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(cache.load(&digest).unwrap().is_some());
        std::thread::sleep(std::time::Duration::from_millis(50));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(cache.load(&digest).unwrap().unwrap().rechecked);
        assert!(!cache.load(&digest).unwrap().unwrap().rechecked);

        // Another cache (a restart) checks every file once more.
        let restarted = DiskCache::open(dir.path(), &COMPAT).unwrap();
        assert!(restarted.load(&digest).unwrap().unwrap().rechecked);
    }

    #[test]
    fn test_the_key_persists_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = DiskCache::open(dir.path(), &COMPAT).unwrap();
        let digest = digest_of(b"m");
        first.store(&digest, b"a").unwrap();
        let second = DiskCache::open(dir.path(), &COMPAT).unwrap();
        assert_eq!(second.load(&digest).unwrap().unwrap().bytes(), b"a");
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another engine configuration does not see the file.
        let other_engine = DiskCache::open(dir.path(), &[8; 32]).unwrap();
        assert!(other_engine.load(&digest).unwrap().is_none());
    }

    #[test]
    fn test_a_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        DiskCache::open(dir.path(), &COMPAT).unwrap();
        let key = dir.path().join(KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            DiskCache::open(dir.path(), &COMPAT),
            Err(CacheError::NotPrivate { .. })
        ));
    }

    fn rejected(cache: &DiskCache, digest: &CodeDigest) -> bool {
        matches!(cache.load(digest), Err(CacheError::Rejected { .. }))
    }

    #[test]
    fn test_the_file_layout_puts_the_artifact_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), &COMPAT).unwrap();
        let digest = digest_of(b"module");
        cache.store(&digest, b"ELF image").unwrap();
        let bytes = fs::read(cache.path(&digest)).unwrap();
        assert_eq!(bytes.len(), 9 + TAG_BYTES + MAGIC.len());
        assert!(bytes.starts_with(b"ELF image"));
        assert!(bytes.ends_with(MAGIC));
        let mode = fs::metadata(cache.path(&digest))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "artifact files are private");
    }

    #[test]
    fn test_files_others_could_write_or_that_are_not_plain_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), &COMPAT).unwrap();
        let digest = digest_of(b"module");
        cache.store(&digest, b"artifact bytes").unwrap();
        let path = cache.path(&digest);

        // A correctly tagged file that group or others could write (or read) is refused: the
        // mapping argument rests on nobody else being able to change it in place.
        for mode in [0o620, 0o604, 0o640] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            assert!(rejected(&cache, &digest), "mode {mode:o}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(cache.load(&digest).unwrap().is_some());

        // A symlink to a correctly tagged file is not followed.
        let real = dir.path().join("elsewhere");
        fs::rename(&path, &real).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        assert!(rejected(&cache, &digest));
        fs::remove_file(&path).unwrap();

        // A FIFO does not stall the load.
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(rejected(&cache, &digest));
        fs::remove_file(&path).unwrap();

        // Files too short to hold a tag, and files of the previous layout (tag first).
        fs::write(&path, &MAGIC[..]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(rejected(&cache, &digest));
        let mut old = b"owwasm1\n".to_vec();
        old.extend_from_slice(
            &cache
                .tag(&digest, b"artifact bytes")
                .finalize()
                .into_bytes(),
        );
        old.extend_from_slice(b"artifact bytes");
        fs::write(&path, &old).unwrap();
        assert!(rejected(&cache, &digest));
    }

    #[test]
    fn test_a_truncated_or_extended_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), &COMPAT).unwrap();
        let digest = digest_of(b"module");
        cache.store(&digest, b"artifact bytes").unwrap();
        let path = cache.path(&digest);
        let good = fs::read(&path).unwrap();

        // Bytes appended after the magic, or removed from the artifact, change what is tagged.
        let mut longer = good[..good.len() - MAGIC.len()].to_vec();
        longer.extend_from_slice(b"x");
        longer.extend_from_slice(MAGIC);
        fs::write(&path, &longer).unwrap();
        assert!(rejected(&cache, &digest));
        fs::write(&path, &good[1..]).unwrap();
        assert!(rejected(&cache, &digest));
        fs::write(&path, &good).unwrap();
        assert_eq!(
            cache.load(&digest).unwrap().unwrap().bytes(),
            b"artifact bytes"
        );
    }
}
