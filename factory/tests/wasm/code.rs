//! The forms of code accepted (raw module, zip) and every kind of code refused at init.

use std::io::{Cursor, Write};
use std::sync::Arc;

use factory::Status;
use factory::wasm::CodeError;
use serde_json::json;

use super::*;

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut out);
    for (name, bytes) in entries {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap();
    out.into_inner()
}

fn binary(bytes: Vec<u8>) -> Option<Code> {
    Some(Code::Binary(Arc::from(bytes)))
}

/// Initialises `code` and expects the developer error `message`.
async fn refused(code: Option<Code>, main: Option<&str>, message: &str) {
    let factory = factory_with(config());
    let outcome = deploy_code(
        &factory,
        "bad",
        code,
        main,
        Default::default(),
        Limits::default(),
    )
    .await
    .err()
    .unwrap_or_else(|| panic!("init should fail with {message}"));
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(error_of(&outcome), message);
    assert!(outcome.init_time.is_some());
    assert!(!outcome.timed_out);
}

#[tokio::test]
async fn test_zip_with_one_module_runs_it() {
    let factory = factory_with(config());
    let code = binary(zip_of(&[
        ("README.md", b"hello"),
        ("hello.wasm", &example("hello")),
    ]));
    let hello = deploy_code(
        &factory,
        "hello",
        code,
        Some("main"),
        Default::default(),
        Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        hello.run(json!({"name": "Zip"})).await.result,
        Some(json!({"greeting": "Hello, Zip!"}))
    );
}

#[tokio::test]
async fn test_zip_with_several_modules_runs_the_one_main_names() {
    let factory = factory_with(config());
    let (hello, echo) = (example("hello"), example("echo"));
    let zip = zip_of(&[("bin/hello.wasm", &hello), ("bin/echo.wasm", &echo)]);
    for (main, expected) in [
        ("echo", json!({"name": "x"})),
        ("bin/hello.wasm", json!({"greeting": "Hello, x!"})),
    ] {
        let action = deploy_code(
            &factory,
            "multi",
            binary(zip.clone()),
            Some(main),
            Default::default(),
            Limits::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            action.run(json!({"name": "x"})).await.result,
            Some(expected),
            "main {main}"
        );
    }
    refused(
        binary(zip.clone()),
        None,
        "The wasm module is invalid: the zip archive holds several .wasm files (bin/hello.wasm, bin/echo.wasm); set main to the one to run.",
    )
    .await;
    refused(
        binary(zip),
        Some("main"),
        "The wasm module is invalid: the zip archive holds several .wasm files (bin/hello.wasm, bin/echo.wasm) and main \"main\" names none of them.",
    )
    .await;
}

#[tokio::test]
async fn test_empty_zip_and_zip_without_module_are_refused() {
    let message = "The wasm module is invalid: the zip archive holds no .wasm file.";
    refused(binary(zip_of(&[])), None, message).await;
    refused(binary(zip_of(&[("hello.txt", b"hi")])), None, message).await;
}

#[tokio::test]
async fn test_text_is_refused() {
    let message = "The wasm module is invalid: the code is text, not a binary module (build the action for wasm32-wasip1 and send the .wasm file or a zip of it).";
    refused(
        Some(Code::Text("fn main() { println!(\"{{}}\"); }".into())),
        None,
        message,
    )
    .await;
    refused(
        binary(b"(module (func (export \"_start\")))".to_vec()),
        None,
        message,
    )
    .await;
    refused(
        None,
        None,
        "The wasm module is invalid: the action has no code.",
    )
    .await;
    refused(
        binary(vec![0xff, 0x00, 0xfe, 0x01]),
        None,
        "The wasm module is invalid: the code is neither a wasm module (\\0asm) nor a zip archive.",
    )
    .await;
}

#[tokio::test]
async fn test_truncated_module_is_refused() {
    let hello = example("hello");
    let factory = factory_with(config());
    let code = binary(hello[..hello.len() / 2].to_vec());
    let outcome = deploy_code(
        &factory,
        "cut",
        code,
        None,
        Default::default(),
        Limits::default(),
    )
    .await
    .err()
    .expect("a truncated module is refused");
    assert_eq!(outcome.status, Status::DeveloperError);
    let message = error_of(&outcome);
    assert!(
        message.starts_with("The wasm module is invalid: "),
        "{message}"
    );
    assert!(
        message.ends_with('.') && !message.ends_with(".."),
        "{message}"
    );
    assert!(
        message.contains("WebAssembly"),
        "wasmtime says what failed: {message}"
    );
    refused(
        binary(hello[..6].to_vec()),
        None,
        "The wasm module is invalid: the module is truncated.",
    )
    .await;
}

#[tokio::test]
async fn test_component_is_refused() {
    // The preamble of a component (version 0x0d, layer 1), as `wasm-tools component new` writes.
    let component = b"\0asm\x0d\x00\x01\x00".to_vec();
    refused(binary(component), None, &CodeError::Component.message()).await;
    assert_eq!(
        CodeError::Component.message(),
        "The wasm module is invalid: it is a WebAssembly component; only core modules (WASI preview 1 commands, wasm32-wasip1) are supported."
    );
}

/// A module that imports `env.f: [] -> []` and exports nothing.
fn module_importing_env() -> Vec<u8> {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    // Type section: one type, a function without params or results.
    bytes.extend_from_slice(&[0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);
    // Import section: one import, module "env", name "f", a function of type 0.
    bytes.extend_from_slice(&[
        0x02, 0x09, 0x01, 0x03, b'e', b'n', b'v', 0x01, b'f', 0x00, 0x00,
    ]);
    bytes
}

#[tokio::test]
async fn test_module_importing_from_another_module_is_refused() {
    refused(
        binary(module_importing_env()),
        None,
        "The wasm module is invalid: it imports env::f, but only wasi_snapshot_preview1 functions are available.",
    )
    .await;
}

#[tokio::test]
async fn test_module_that_is_not_a_command_is_refused() {
    refused(
        binary(b"\0asm\x01\0\0\0".to_vec()),
        None,
        "The wasm module is invalid: it does not export a _start function taking and returning nothing (is it a WASI command?).",
    )
    .await;
}

#[tokio::test]
async fn test_precompiled_code_from_our_own_engine_is_refused() {
    let factory = factory_with(config());
    let (module, _) = factory.load(&example_code("hello"), None).unwrap();
    let cwasm = module.serialize().unwrap();
    let message = "The wasm module is invalid: precompiled native code is not accepted; send the .wasm module.";
    refused(binary(cwasm.clone()), None, message).await;
    // Also inside a zip under a .wasm name.
    refused(binary(zip_of(&[("hello.wasm", &cwasm)])), None, message).await;
}
