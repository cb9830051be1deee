//! Build steps of the executor:
//!
//! * the scheduler's gRPC `ActivationService` (client for the invoker, server for the tests' fake
//!   scheduler) from `proto/activation.proto`. Needs `protoc` (Debian: `protobuf-compiler`), as
//!   the etcd client's own build does;
//! * the standalone server's catalog (`/whisk.system/utils`): the `utils_*` actions of the
//!   `actions/` crate built for `wasm32-wasip1` and left in `$OUT_DIR/catalog/` for
//!   `include_bytes!` (`src/standalone/catalog.rs`). Needs the `wasm32-wasip1` target.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The catalog's actions: the `actions/` crate's binaries built into the server.
const CATALOG_BINS: &[&str] = &[
    "utils_cat",
    "utils_date",
    "utils_echo",
    "utils_head",
    "utils_namespace",
    "utils_sort",
    "utils_split",
];

/// The target the catalog's actions are built for.
const WASM_TARGET: &str = "wasm32-wasip1";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/activation.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/activation.proto"], &["proto"])?;
    // Printed as is: cargo shows a returned error's `Debug`, which would escape the nested
    // build's output onto one line.
    if let Err(message) = build_catalog() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
    Ok(())
}

/// Builds the catalog's actions with a nested `cargo build --release --target wasm32-wasip1` and
/// copies the modules to `$OUT_DIR/catalog/<bin>.wasm`.
///
/// The nested cargo has its own target directory, `<workspace>/target/catalog`: the outer build
/// holds the lock of its own target directory for as long as it runs, so a nested build there
/// would wait for it forever. Sharing one directory across the outer builds' profiles (dev, test,
/// clippy, release) keeps the nested build incremental: unchanged sources rebuild nothing. It
/// builds only the `actions/` crate (no build script), so it cannot recurse into this one.
fn build_catalog() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or_else(|| "the executor crate has no parent directory".to_string())?
        .to_path_buf();
    let actions = root.join("actions");
    // The SDK, the utilities and the shared conversions (`src/bin/utils/`), and their dependencies.
    for path in [
        actions.join("src"),
        actions.join("Cargo.toml"),
        root.join("Cargo.lock"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    check_wasm_target(Path::new(&rustc))?;

    let target_dir = root.join("target").join("catalog");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(&root)
        .args([
            "build",
            "-p",
            "wasm-invoker-actions",
            "--release",
            "--target",
        ])
        .arg(WASM_TARGET)
        .env("CARGO_TARGET_DIR", &target_dir)
        // The outer build's flags (coverage, sanitizers, target-cpu=native) are not for wasm, and
        // clippy's wrapper would lint the actions a second time.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS");
    for bin in CATALOG_BINS {
        command.args(["--bin", bin]);
    }
    let output = command.output().map_err(|e| {
        format!(
            "could not run {} to build the catalog's wasm actions: {e}",
            cargo.to_string_lossy()
        )
    })?;
    if !output.status.success() {
        return Err(format!(
            "building the catalog's wasm actions ({}) failed ({}):\n{}",
            CATALOG_BINS.join(", "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }

    let built = target_dir.join(WASM_TARGET).join("release");
    let out = PathBuf::from(env("OUT_DIR")?).join("catalog");
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("could not create {}: {e}", out.display()))?;
    for bin in CATALOG_BINS {
        let from = built.join(format!("{bin}.wasm"));
        std::fs::copy(&from, out.join(format!("{bin}.wasm")))
            .map_err(|e| format!("the catalog build left no {}: {e}", from.display()))?;
    }
    Ok(())
}

/// Fails with the fix when the toolchain has no standard library for `wasm32-wasip1`.
fn check_wasm_target(rustc: &Path) -> Result<(), String> {
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("could not run {} --print sysroot: {e}", rustc.display()))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let std_dir = sysroot.join("lib").join("rustlib").join(WASM_TARGET);
    if !std_dir.is_dir() {
        return Err(format!(
            "the standalone server embeds its catalog actions built for {WASM_TARGET}, but this \
             toolchain has no {WASM_TARGET} target ({} is missing); install it with \
             `rustup target add {WASM_TARGET}`",
            std_dir.display()
        ));
    }
    Ok(())
}

/// The variable `name` cargo sets for build scripts.
fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|e| format!("{name}: {e}"))
}
