//! The disk cache maps its files: a file others could change is never loaded, and a module loaded
//! from a file keeps running the bytes that were checked when the file is replaced.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use factory::Status;
use factory::wasm::Source;
use serde_json::json;

use super::*;

fn disk_config(dir: &Path) -> WasmConfig {
    WasmConfig {
        disk_cache_dir: Some(dir.to_path_buf()),
        ..config()
    }
}

/// The one artifact file of `dir`.
fn artifact(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    let [file] = files.try_into().unwrap();
    file
}

#[tokio::test]
async fn test_a_correctly_tagged_file_others_could_write_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    factory_with(disk_config(dir.path()))
        .load(&example_code("hello"), None)
        .unwrap();
    let path = artifact(dir.path());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622)).unwrap();

    let factory = factory_with(disk_config(dir.path()));
    let hello = deploy(&factory, "hello").await;
    let metrics = factory.metrics().cache;
    assert_eq!(
        (metrics.disk_rejected, metrics.disk_hits, metrics.compiles),
        (1, 0, 1),
        "{metrics:?}"
    );
    assert_eq!(hello.run(json!({})).await.status, Status::Success);
    // Replaced by a private file, which the next start loads.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0);
    let again = factory_with(disk_config(dir.path()));
    assert_eq!(
        again.load(&example_code("hello"), None).unwrap().1,
        Source::Disk
    );
}

#[tokio::test]
async fn test_a_module_loaded_from_disk_survives_its_file_being_replaced() {
    let dir = tempfile::tempdir().unwrap();
    factory_with(disk_config(dir.path()))
        .load(&example_code("hello"), None)
        .unwrap();
    let factory = factory_with(disk_config(dir.path()));
    let hello = deploy(&factory, "hello").await;
    assert_eq!(factory.metrics().cache.disk_hits, 1);

    // Another file renamed over the name (how files are replaced, by the cache or anyone else
    // allowed to write the directory): the mapped module keeps the inode it checked.
    let path = artifact(dir.path());
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, vec![0xCC; 64 * 1024]).unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&garbage, &path).unwrap();
    for name in ["one", "two"] {
        let outcome = hello.run(json!({ "name": name })).await;
        assert_eq!(
            outcome.result,
            Some(json!({ "greeting": format!("Hello, {name}!") })),
            "{outcome:?}"
        );
    }
    // The garbage is never loaded.
    let fresh = factory_with(disk_config(dir.path()));
    assert_eq!(
        fresh.load(&example_code("hello"), None).unwrap().1,
        Source::Compiled
    );
    assert_eq!(fresh.metrics().cache.disk_rejected, 1);
}
