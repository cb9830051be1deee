//! The optional scratch `/tmp`: off by default; when on, fresh per activation, capped, deleted.

use factory::Status;
use factory::wasm::scratch::scratch_exhausted;
use serde_json::json;

use super::*;

fn scratch_config(parent: &std::path::Path) -> WasmConfig {
    let mut config = config();
    config.scratch.enabled = true;
    config.scratch.parent_dir = Some(parent.to_path_buf());
    config
}

fn entries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[tokio::test]
async fn test_scratch_on_is_fresh_per_activation_and_deleted() {
    let parent = tempfile::tempdir().unwrap();
    let factory = factory_with(scratch_config(parent.path()));
    let scratch = deploy(&factory, "scratch").await;
    // The action fails if its file already exists: the second run proves the directory is fresh.
    for text in ["first", "second"] {
        let outcome = scratch.run(json!({"text": text})).await;
        assert_eq!(outcome.status, Status::Success, "{outcome:?}");
        assert_eq!(outcome.result, Some(json!({"wrote": true, "read": text})));
        assert_eq!(
            entries(parent.path()),
            0,
            "the scratch directory was not deleted"
        );
    }
}

#[tokio::test]
async fn test_scratch_off_means_no_filesystem() {
    let factory = factory_with(config());
    let scratch = deploy(&factory, "scratch").await;
    let outcome = scratch.run(json!({})).await;
    assert_eq!(outcome.status, Status::ApplicationError);
    let error = error_of(&outcome);
    assert!(
        error.starts_with("/tmp is unavailable: /tmp/ow-action-scratch.txt: "),
        "{error}"
    );
}

#[tokio::test]
async fn test_scratch_cap_obeyed_and_violated() {
    let parent = tempfile::tempdir().unwrap();
    let mut config = scratch_config(parent.path());
    config.scratch.max_bytes = 64 * 1024;
    let factory = factory_with(config);
    let scratch = deploy(&factory, "scratch").await;
    let fits = "f".repeat(16 * 1024);
    let outcome = scratch.run(json!({"text": fits})).await;
    assert_eq!(outcome.status, Status::Success);

    let too_big = "b".repeat(1024 * 1024);
    let outcome = scratch.run(json!({"text": too_big})).await;
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(error_of(&outcome), scratch_exhausted(64 * 1024, 4096));
    assert_eq!(entries(parent.path()), 0);
}

#[tokio::test]
async fn test_timeout_still_holds_with_scratch_on() {
    // With a scratch directory the deadline is kept by the per-tick callback that also measures
    // the directory: an infinite loop must still stop at its timeout.
    let parent = tempfile::tempdir().unwrap();
    let factory = factory_with(scratch_config(parent.path()));
    let spin = deploy(&factory, "spin").await;
    let limits = Limits {
        timeout: 300,
        ..Limits::default()
    };
    let outcome = spin.run_with(json!({}), limits).await;
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(
        error_of(&outcome),
        factory::outcome::messages::timed_out(300)
    );
    assert!(outcome.timed_out);
    assert!(outcome.duration() >= std::time::Duration::from_millis(300));
    assert_eq!(entries(parent.path()), 0);
}
