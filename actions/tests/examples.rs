//! Every example action builds to a WASI preview 1 command module, and the list of examples in
//! `ow_action::artifacts` matches `src/bin/` exactly, so no example can go untested silently.

// Builds and runs artifacts on the host; there is nothing to test from inside wasm.
#![cfg(not(target_family = "wasm"))]

use std::collections::BTreeSet;
use std::path::Path;

use ow_action::artifacts::{all_examples, wasm_module};

#[test]
fn example_list_matches_src_bin() {
    let bin_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("bin");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&bin_dir)
        .expect("src/bin is part of this crate")
        .map(|entry| entry.expect("src/bin is readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| {
            path.file_stem()
                .expect("a .rs file has a stem")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let listed: BTreeSet<String> = all_examples().iter().map(|s| s.to_string()).collect();
    assert_eq!(listed, on_disk, "all_examples() and src/bin/*.rs differ");
    assert_eq!(
        listed.len(),
        all_examples().len(),
        "all_examples() has duplicates"
    );
}

#[test]
fn every_example_is_a_wasip1_command_module() {
    for name in all_examples() {
        let path = wasm_module(name).unwrap_or_else(|e| panic!("building {name}.wasm: {e}"));
        assert_eq!(
            path.file_name().and_then(|f| f.to_str()),
            Some(&*format!("{name}.wasm"))
        );
        let bytes = std::fs::read(&path).expect("the built module is readable");
        assert!(
            bytes.starts_with(b"\0asm\x01\0\0\0"),
            "{name}.wasm is not a core wasm module"
        );
        let module = parse(&bytes);
        assert!(!module.imports.is_empty(), "{name}.wasm imports nothing");
        for import in &module.imports {
            assert_eq!(
                import, "wasi_snapshot_preview1",
                "{name}.wasm imports from {import}"
            );
        }
        for export in ["_start", "memory"] {
            assert!(
                module.exports.iter().any(|e| e == export),
                "{name}.wasm does not export {export}"
            );
        }
    }
}

#[test]
fn unknown_example_is_a_clear_error() {
    let err = wasm_module("no-such-action").expect_err("not an example");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains("\"no-such-action\" is not an example action"),
        "{err}"
    );
}

/// The import module names and export names of a core module.
struct Module {
    imports: Vec<String>,
    exports: Vec<String>,
}

/// Reads just enough of the binary format (import and export sections) to check the contract.
fn parse(bytes: &[u8]) -> Module {
    let mut module = Module {
        imports: Vec::new(),
        exports: Vec::new(),
    };
    let mut r = Reader { bytes, at: 8 };
    while r.at < bytes.len() {
        let id = r.byte();
        let size = r.leb() as usize;
        let end = r.at + size;
        match id {
            2 => {
                for _ in 0..r.leb() {
                    module.imports.push(r.name());
                    r.name();
                    match r.byte() {
                        0 => {
                            r.leb();
                        }
                        1 => {
                            r.byte();
                            r.limits();
                        }
                        2 => r.limits(),
                        3 => {
                            r.byte();
                            r.byte();
                        }
                        kind => panic!("unknown import kind {kind}"),
                    }
                }
            }
            7 => {
                for _ in 0..r.leb() {
                    module.exports.push(r.name());
                    r.byte();
                    r.leb();
                }
            }
            _ => {}
        }
        r.at = end;
    }
    module
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes[self.at];
        self.at += 1;
        b
    }

    fn leb(&mut self) -> u64 {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let b = self.byte();
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }

    fn name(&mut self) -> String {
        let len = self.leb() as usize;
        let name =
            String::from_utf8(self.bytes[self.at..self.at + len].to_vec()).expect("UTF-8 name");
        self.at += len;
        name
    }

    fn limits(&mut self) {
        let flags = self.byte();
        self.leb();
        if flags & 1 != 0 {
            self.leb();
        }
    }
}
