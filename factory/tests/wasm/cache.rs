//! The module cache: identical code compiles once; the disk cache survives a restart and only
//! ever loads files it wrote itself.

use std::path::{Path, PathBuf};

use factory::Status;
use factory::wasm::{FuelMode, Source};
use serde_json::json;

use super::*;

fn disk_config(dir: &Path) -> WasmConfig {
    WasmConfig {
        disk_cache_dir: Some(dir.to_path_buf()),
        ..config()
    }
}

fn artifacts(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn test_identical_code_compiles_once_across_actions() {
    let factory = factory_with(config());
    let first = deploy(&factory, "hello").await;
    // Another action (another name, same bytes, this time zipped) shares the compiled module.
    let zip = {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut writer = zip::ZipWriter::new(&mut out);
        writer
            .start_file("greeter.wasm", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut writer, &example("hello")).unwrap();
        writer.finish().unwrap();
        out.into_inner()
    };
    let second = deploy_code(
        &factory,
        "greeter",
        Some(Code::Binary(zip.into())),
        None,
        Default::default(),
        Limits::default(),
    )
    .await
    .unwrap();
    let metrics = factory.metrics().cache;
    assert_eq!(metrics.compiles, 1, "{metrics:?}");
    assert_eq!(metrics.memory_hits, 1, "{metrics:?}");
    assert_eq!(metrics.entries, 1);
    assert!(metrics.bytes > 0);
    assert_eq!(
        first.run(json!({"name": "a"})).await.status,
        Status::Success
    );
    assert_eq!(
        second.run(json!({"name": "b"})).await.status,
        Status::Success
    );
    // Different code is a different entry.
    deploy(&factory, "echo").await;
    assert_eq!(factory.metrics().cache.compiles, 2);
}

#[tokio::test]
async fn test_concurrent_inits_of_the_same_code_compile_once() {
    let factory = factory_with(config());
    let inits = (0..8).map(|_| {
        let factory = factory.clone();
        tokio::spawn(async move { deploy(&factory, "prime").await })
    });
    for init in inits.collect::<Vec<_>>() {
        init.await.unwrap();
    }
    assert_eq!(factory.metrics().cache.compiles, 1);
}

#[tokio::test]
async fn test_memory_cache_is_bounded() {
    // A bound smaller than one module: each new module evicts the previous one.
    let factory = factory_with(WasmConfig {
        cache_max_bytes: 1,
        ..config()
    });
    let hello = deploy(&factory, "hello").await;
    deploy(&factory, "echo").await;
    let metrics = factory.metrics().cache;
    assert_eq!((metrics.entries, metrics.evictions), (1, 1), "{metrics:?}");
    // The evicted module still serves its container, and comes back by compiling again.
    assert_eq!(hello.run(json!({})).await.status, Status::Success);
    deploy(&factory, "hello").await;
    assert_eq!(factory.metrics().cache.compiles, 3);
}

#[tokio::test]
async fn test_disk_cache_survives_a_restart_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let first = factory_with(disk_config(dir.path()));
    let (_, source) = first.load(&example_code("hello"), None).unwrap();
    assert_eq!(source, Source::Compiled);
    assert_eq!(first.metrics().cache.disk_writes, 1);
    assert_eq!(artifacts(dir.path()).len(), 1);
    drop(first);

    let second = factory_with(disk_config(dir.path()));
    let hello = deploy(&second, "hello").await;
    let metrics = second.metrics().cache;
    assert_eq!(
        (metrics.compiles, metrics.disk_hits, metrics.disk_rejected),
        (0, 1, 0),
        "{metrics:?}"
    );
    let outcome = hello.run(json!({"name": "disk"})).await;
    assert_eq!(outcome.result, Some(json!({"greeting": "Hello, disk!"})));

    // A differently configured engine (fuel on) keeps its own artifacts and never loads these.
    let fueled = factory_with(WasmConfig {
        fuel: FuelMode::Fixed(1 << 40),
        ..disk_config(dir.path())
    });
    let (_, source) = fueled.load(&example_code("hello"), None).unwrap();
    assert_eq!(source, Source::Compiled);
    assert_eq!(artifacts(dir.path()).len(), 2);
}

#[tokio::test]
async fn test_tampered_disk_file_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    factory_with(disk_config(dir.path()))
        .load(&example_code("hello"), None)
        .unwrap();
    let [artifact] = artifacts(dir.path()).try_into().unwrap();
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&artifact, &bytes).unwrap();

    let factory = factory_with(disk_config(dir.path()));
    let hello = deploy(&factory, "hello").await;
    let metrics = factory.metrics().cache;
    assert_eq!(
        (metrics.disk_rejected, metrics.disk_hits, metrics.compiles),
        (1, 0, 1),
        "{metrics:?}"
    );
    assert_eq!(hello.run(json!({})).await.status, Status::Success);
    // The file was replaced by a good one, which the next start loads.
    let again = factory_with(disk_config(dir.path()));
    assert_eq!(
        again.load(&example_code("hello"), None).unwrap().1,
        Source::Disk
    );
}

#[tokio::test]
async fn test_foreign_disk_files_are_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let (module, _) = factory_with(disk_config(dir.path()))
        .load(&example_code("echo"), None)
        .unwrap();
    let [artifact] = artifacts(dir.path()).try_into().unwrap();

    // 1. A raw wasmtime artifact of the same module (valid native code, but not written by the
    //    cache) planted under the expected name.
    std::fs::write(&artifact, module.serialize().unwrap()).unwrap();
    let factory = factory_with(disk_config(dir.path()));
    deploy(&factory, "echo").await;
    assert_eq!(factory.metrics().cache.disk_rejected, 1);
    assert_eq!(factory.metrics().cache.disk_hits, 0);

    // 2. A file written by another cache (another key) for the same code.
    let other = tempfile::tempdir().unwrap();
    factory_with(disk_config(other.path()))
        .load(&example_code("echo"), None)
        .unwrap();
    let [foreign] = artifacts(other.path()).try_into().unwrap();
    std::fs::copy(&foreign, &artifact).unwrap();
    let factory = factory_with(disk_config(dir.path()));
    let echo = deploy(&factory, "echo").await;
    let metrics = factory.metrics().cache;
    assert_eq!(
        (metrics.disk_rejected, metrics.disk_hits, metrics.compiles),
        (1, 0, 1),
        "{metrics:?}"
    );
    assert_eq!(
        echo.run(json!({"ok": 1})).await.result,
        Some(json!({"ok": 1}))
    );
}
