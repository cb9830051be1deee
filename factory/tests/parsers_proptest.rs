//! Property tests of the factory's parsers of outside input: the runtimes manifest (OpenWhisk's
//! `runtimes.json`, and the sizes and durations in it), action artifacts (zip archives and wasm
//! modules: container format, header, compilation by wasmtime, interface check) and what a Docker
//! action runtime answers on `/init` and `/run`. Inputs are arbitrary bytes, arbitrary JSON (keys
//! drawn partly from the manifest's field names) and real inputs damaged: the fixture manifests with
//! fields replaced or removed, a real zip and a real WASI command truncated or with a byte changed.
//! The property: no panic, and every refusal is a typed error with a non-empty text.
//!
//! No `proptest-regressions/` files are written ([`strategies::config`]).

#[path = "../../executor/tests/support/strategies.rs"]
mod strategies;

use std::io::{Cursor, Write as _};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use factory::Code;
use factory::docker::Manifest;
use factory::docker::client::{Answer, CallError, ContainerResponse, map_init, map_run};
use factory::docker::manifest::{parse_byte_size_mb, parse_duration};
use factory::wasm::code::{check_header, extract};
use factory::wasm::{WasmConfig, WasmError, WasmFactory};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::Value;
use strategies::{assert_error_text, bytes, config, damage, damaged, edits, json, mutate, string};

/// Cases of each property (a few milliseconds each in debug; wasm compilation included).
const CASES: u32 = 1000;

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(config(cases));
    if let Err(error) = runner.run(&strategy, test) {
        panic!("{error}");
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../executor/tests/fixtures/runtimes/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|error| panic!("fixture {path}: {error}"))
}

// ------------------------------------------------------------------------------------------------
// The runtimes manifest

#[test]
fn manifest_from_json_never_panics() {
    let texts: Vec<Vec<u8>> = ["runtimes.json", "runtimes-with-wasm.json"]
        .iter()
        .map(|name| fixture(name))
        .collect();
    let values: Vec<Value> = texts
        .iter()
        .map(|text| serde_json::from_slice(text).expect("the fixture is JSON"))
        .collect();
    let strategy = prop_oneof![
        1 => any::<String>(),
        2 => json().prop_map(|value| value.to_string()),
        5 => (prop::sample::select(values), edits()).prop_map(|(v, e)| mutate(&v, &e).to_string()),
        2 => (prop::sample::select(texts), damage())
            .prop_map(|(t, d)| String::from_utf8_lossy(&damaged(&t, &d)).into_owned()),
    ];
    run(CASES, strategy, |text| {
        match Manifest::from_json(&text) {
            Ok(manifest) => {
                let kinds: Vec<String> = manifest.runtimes().map(|r| r.kind.clone()).collect();
                for kind in &kinds {
                    prop_assert!(manifest.supports(kind));
                    let _ = manifest.image_for(kind, Some("registry.example:5000"));
                    let _ = manifest.image_for(kind, None);
                }
                let _ = manifest.stem_cells();
                for image in manifest.blackboxes() {
                    let resolved = image.resolve(None);
                    prop_assert!(manifest.is_native_blackbox(&resolved, None));
                }
            }
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

#[test]
fn manifest_sizes_and_durations_never_panic() {
    let strategy = prop_oneof![
        string(),
        (
            any::<u64>(),
            "[ ]?",
            "(b|B|k|kb|KB|m|M|MB|g|GB|t|ms|s|sec|seconds|min|minutes|h|hours|d|days|x)?"
        )
            .prop_map(|(n, space, unit)| format!("{n}{space}{unit}")),
    ];
    run(CASES, strategy, |text| {
        if let Err(error) = parse_byte_size_mb(&text) {
            prop_assert!(!error.trim().is_empty());
        }
        if let Err(error) = parse_duration(&text) {
            prop_assert!(!error.trim().is_empty());
        }
        Ok(())
    });
}

// ------------------------------------------------------------------------------------------------
// Artifacts: zip and wasm

/// The smallest WASI preview 1 command: `(module (memory (export "memory") 1) (func (export
/// "_start")))`, written out by hand so that the test needs no build.
const COMMAND: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: [] -> []
    0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
    0x05, 0x03, 0x01, 0x00, 0x01, // memory section: one memory, min 1 page
    0x07, 0x13, 0x02, // export section, two exports:
    0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // "_start": function 0
    0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, // "memory": memory 0
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: an empty body
];

/// A zip holding `COMMAND` twice (so `main` matters), a directory and a text file, deflated.
fn zip_of_commands() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer.add_directory("bin/", stored).expect("zip directory");
    writer
        .start_file("bin/main.wasm", deflated)
        .expect("zip entry");
    writer.write_all(COMMAND).expect("zip write");
    writer.start_file("other.wasm", stored).expect("zip entry");
    writer.write_all(COMMAND).expect("zip write");
    writer.start_file("README", deflated).expect("zip entry");
    writer.write_all(b"two modules").expect("zip write");
    writer.finish().expect("zip finishes").into_inner()
}

fn factory() -> WasmFactory {
    WasmFactory::new(WasmConfig {
        pool_instances: 4,
        ..WasmConfig::default()
    })
    .expect("wasmtime starts")
}

#[test]
fn the_fixtures_of_these_properties_are_valid() {
    let factory = factory();
    factory.compile(COMMAND).expect("the command compiles");
    let zip = Code::Binary(Arc::from(zip_of_commands()));
    let module = extract(Some(&zip), Some("main")).expect("the zip has bin/main.wasm");
    assert_eq!(&*module, COMMAND);
    factory
        .load(&zip, Some("other"))
        .expect("the zipped command loads");
}

/// An artifact: arbitrary bytes (alone, or after a zip or wasm header), the real zip or module
/// damaged once or twice.
fn artifacts() -> impl Strategy<Value = Vec<u8>> {
    let reals = vec![zip_of_commands(), COMMAND.to_vec()];
    let prefix = prop::sample::select(vec![
        b"".as_slice(),
        b"PK\x03\x04",
        b"PK\x05\x06",
        b"\0asm\x01\0\0\0",
        b"\0asm\x0d\0\x01\0",
        b"\0asm",
        b"\0as",
    ]);
    prop_oneof![
        2 => (prefix, bytes()).prop_map(|(prefix, rest)| [prefix, rest.as_slice()].concat()),
        3 => (prop::sample::select(reals.clone()), damage(), prop::option::of(damage()))
            .prop_map(|(real, first, second)| {
                let once = damaged(&real, &first);
                second.map_or_else(|| once.clone(), |second| damaged(&once, &second))
            }),
        1 => prop::sample::select(reals),
    ]
}

fn main_names() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        prop::sample::select(vec![
            "main",
            "other",
            "other.wasm",
            "bin/main.wasm",
            "bin/",
            ""
        ])
        .prop_map(str::to_string),
        string(),
    ])
}

#[test]
fn zip_and_header_checks_never_panic() {
    let strategy = (artifacts(), main_names());
    run(CASES, strategy, |(artifact, main)| {
        let code = Code::Binary(Arc::from(artifact));
        match extract(Some(&code), main.as_deref()) {
            Ok(module) => {
                if let Err(error) = check_header(&module) {
                    assert_error_text(&error)?;
                    prop_assert!(!error.message().trim().is_empty());
                }
            }
            Err(error) => {
                assert_error_text(&error)?;
                prop_assert!(!error.message().trim().is_empty());
            }
        }
        Ok(())
    });
}

#[test]
fn wasm_compilation_of_any_bytes_never_panics() {
    let factory = factory();
    let strategy = (artifacts(), main_names());
    run(CASES, strategy, |(artifact, main)| {
        match factory.compile(&artifact) {
            Ok(_) => {}
            Err(error) => assert_error_text(&error)?,
        }
        // The path of an init: the cache, the zip, the header, compilation, the interface.
        match factory.load(&Code::Binary(Arc::from(artifact)), main.as_deref()) {
            Ok(_) => {}
            Err(error @ WasmError::Code(_)) => assert_error_text(&error)?,
            Err(other) => prop_assert!(false, "not a code error: {other:?}"),
        }
        Ok(())
    });
}

#[test]
fn text_code_is_refused_with_a_typed_error() {
    let factory = factory();
    run(CASES, string(), |text| {
        match factory.load(&Code::Text(text), None) {
            Ok(module) => prop_assert!(false, "text loaded as {module:?}"),
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

// ------------------------------------------------------------------------------------------------
// What a Docker action runtime answers

fn answer_is_typed(answer: &Answer) -> Result<(), TestCaseError> {
    match answer {
        Answer::Mapped(mapped) if mapped.status != factory::Status::Success => {
            let error = mapped.result.get("error");
            prop_assert!(
                error.is_some(),
                "a failure without an error field: {mapped:?}"
            );
        }
        Answer::ConnectionFailed(reason) => prop_assert!(!reason.is_empty()),
        _ => {}
    }
    Ok(())
}

#[test]
fn runtime_responses_never_panic() {
    let body = prop_oneof![
        bytes(),
        json().prop_map(|value| value.to_string().into_bytes()),
    ];
    let status = prop_oneof![
        prop::sample::select(vec![200u16, 201, 204, 400, 404, 500, 502, 503]),
        any::<u16>(),
    ];
    let strategy = (status, body, any::<bool>(), any::<usize>(), 0u64..2000);
    run(
        CASES,
        strategy,
        |(status, body, truncated, length, elapsed)| {
            let response = || {
                Ok::<_, CallError>(ContainerResponse {
                    status,
                    length: if truncated { length } else { body.len() },
                    body: Bytes::from(body.clone()),
                    truncated,
                })
            };
            let elapsed = Duration::from_millis(elapsed);
            let timeout = Duration::from_millis(1000);
            answer_is_typed(&map_init(response(), elapsed, timeout))?;
            answer_is_typed(&map_run(response(), elapsed, timeout, 1024 * 1024))?;
            Ok(())
        },
    );
}
