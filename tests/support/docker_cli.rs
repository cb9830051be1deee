//! The `docker` command line, for the tests that run containers of their own (the invoker image,
//! the cluster's nodes): one command at a time, its stdout or a panic naming it.

use std::process::Command;

/// One `docker` command; its stdout, or a panic with its stderr.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("docker {args:?}: {error}"));
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// [`docker`] on a blocking thread, so the reactor (and the Kafka clients on it) keep going.
pub async fn docker_async(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&args)
    })
    .await
    .expect("docker task")
}
