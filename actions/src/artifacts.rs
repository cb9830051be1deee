//! Host-side helpers for the tests and benches of other crates: build the example actions and
//! return the paths of the results. Compiled only for non-wasm targets.
//!
//! * [`wasm_module`]: `<name>.wasm`, built for `wasm32-wasip1` (for the wasm factory).
//! * [`native_binary`]: `<name>`, built as a fully static `x86_64-unknown-linux-gnu` executable
//!   (for `FROM scratch` Docker images running the same action natively).
//! * [`all_examples`]: every example's name.
//!
//! Each kind is built once per process, on first use, by a nested
//! `cargo build -p wasm-invoker-actions --bins --release --target <target>` with its own target
//! directory, `<workspace>/target/actions`, so it never waits for the lock the outer `cargo test`
//! or `cargo bench` holds on `<workspace>/target`. Concurrent processes share that directory and
//! take turns on its lock; cargo rebuilds only what changed.
//!
//! Not part of the SDK: actions have no use for it.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every example action, one `src/bin/<name>.rs` each (a test checks the two lists agree).
const EXAMPLES: &[&str] = &[
    "bigout",
    "echo",
    "env",
    "escape",
    "exit",
    "flood",
    "garbage",
    "hello",
    "hog",
    "logs",
    "panic",
    "prime",
    "scratch",
    "sleep",
    "spin",
    "visits",
    // The catalog's `/whisk.system/utils` actions (the executor embeds their wasm builds).
    "utils_cat",
    "utils_date",
    "utils_echo",
    "utils_head",
    "utils_namespace",
    "utils_sort",
    "utils_split",
];

/// The target wasm modules are built for.
const WASM_TARGET: &str = "wasm32-wasip1";
/// The target native binaries are built for.
const NATIVE_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Names of every example action, sorted; each is valid for [`wasm_module`] and
/// [`native_binary`].
pub fn all_examples() -> &'static [&'static str] {
    EXAMPLES
}

/// Path of the example action `name` compiled to a `wasm32-wasip1` module (`<name>.wasm`).
///
/// The first call in a process builds all examples (in release mode, minutes on a cold cache);
/// later calls return at once. Callers on other threads wait for the build.
///
/// # Errors
///
/// `NotFound` when `name` is not an example (see [`all_examples`]) or the build produced no such
/// file; `Other` when cargo could not be started or the build failed (its stderr is in the
/// message). A failed build is not retried within the process.
pub fn wasm_module(name: &str) -> io::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| build(WASM_TARGET, None));
    artifact(dir, name, ".wasm")
}

/// Path of the example action `name` compiled natively as a fully static
/// `x86_64-unknown-linux-gnu` executable (`RUSTFLAGS=-C target-feature=+crt-static`), which runs
/// in a `FROM scratch` image with the docker-skeleton contract.
///
/// Built once per process like [`wasm_module`]; the first call also checks that the executable
/// needs no dynamic loader.
///
/// # Errors
///
/// As for [`wasm_module`], plus `Other` when the executable turns out to be dynamically linked.
pub fn native_binary(name: &str) -> io::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let dir = build(NATIVE_TARGET, Some("-C target-feature=+crt-static"))?;
        // One binary stands for all: they are built with the same flags in the same invocation.
        let probe = dir.join(EXAMPLES[0]);
        match elf_needs_interpreter(&probe) {
            Ok(false) => Ok(dir),
            Ok(true) => Err(format!(
                "{} is dynamically linked although it was built with +crt-static",
                probe.display()
            )),
            Err(e) => Err(format!("could not inspect {}: {e}", probe.display())),
        }
    });
    artifact(dir, name, "")
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// Builds every example for `target` and returns the directory holding the results.
fn build(target: &str, rustflags: Option<&str>) -> Result<PathBuf, String> {
    let root = workspace_root();
    let target_dir = root.join("target").join("actions");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "-p",
            "wasm-invoker-actions",
            "--bins",
            "--release",
            "--target",
            target,
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags meant for the outer build (coverage, sanitizers, target-cpu=native) must not leak
        // into the actions; CARGO_ENCODED_RUSTFLAGS would take precedence over RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    match rustflags {
        Some(flags) => command.env("RUSTFLAGS", flags),
        None => command.env_remove("RUSTFLAGS"),
    };
    let output = command.output().map_err(|e| {
        format!(
            "could not run {} to build the example actions: {e}",
            cargo.to_string_lossy()
        )
    })?;
    if !output.status.success() {
        return Err(format!(
            "building the example actions for {target} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir.join(target).join("release"))
}

/// Resolves `<dir>/<name><suffix>` for a successful build, or repeats why the build failed.
fn artifact(dir: &Result<PathBuf, String>, name: &str, suffix: &str) -> io::Result<PathBuf> {
    let dir = dir.as_ref().map_err(|e| io::Error::other(e.clone()))?;
    if !EXAMPLES.contains(&name) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{name:?} is not an example action; the examples are {EXAMPLES:?}"),
        ));
    }
    let path = dir.join(format!("{name}{suffix}"));
    if !path.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the build succeeded but left no {}", path.display()),
        ));
    }
    Ok(path)
}

/// Whether the ELF executable at `path` asks for a dynamic loader (has a `PT_INTERP` program
/// header). A static or static-pie executable does not, so it runs in an empty image.
fn elf_needs_interpreter(path: &Path) -> io::Result<bool> {
    /// Program header type of the loader request.
    const PT_INTERP: u32 = 3;
    let bytes = std::fs::read(path)?;
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a 64-bit little-endian ELF file: {what}"),
        )
    };
    if bytes.len() < 64 || bytes[..4] != *b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err(invalid("bad header"));
    }
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let phoff = u64_at(0x20)
        .and_then(|o| usize::try_from(o).ok())
        .ok_or_else(|| invalid("e_phoff"))?;
    let phentsize = usize::from(u16_at(0x36).ok_or_else(|| invalid("e_phentsize"))?);
    let phnum = usize::from(u16_at(0x38).ok_or_else(|| invalid("e_phnum"))?);
    for i in 0..phnum {
        let at = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or_else(|| invalid("program header offset"))?;
        if u32_at(at).ok_or_else(|| invalid("program header"))? == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_executable_needs_an_interpreter() {
        // This test binary is linked the default way: dynamically, against glibc.
        let this = std::env::current_exe().expect("the test binary has a path");
        assert!(elf_needs_interpreter(&this).expect("the test binary is ELF"));
    }

    #[test]
    fn static_executable_needs_no_interpreter() {
        let hello = native_binary("hello").expect("building hello");
        assert!(!elf_needs_interpreter(&hello).expect("hello is ELF"));
    }

    #[test]
    fn non_elf_is_invalid_data() {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let err = elf_needs_interpreter(&manifest).expect_err("Cargo.toml is not ELF");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
