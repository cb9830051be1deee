//! Generates the scheduler's gRPC `ActivationService` (client for the invoker, server for the tests'
//! fake scheduler) from `proto/activation.proto`. Needs `protoc` (Debian: `protobuf-compiler`), as
//! the etcd client's own build does.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/activation.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/activation.proto"], &["proto"])?;
    Ok(())
}
