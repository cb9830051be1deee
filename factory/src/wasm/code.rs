//! From an action's code to the bytes of one WASI preview 1 command module, refusing everything
//! else with a reason the action's author can act on.
//!
//! Accepted (the wasm action contract, `actions/README.md`: kind and code): the raw module (`\0asm`), or a zip archive holding
//! exactly one `*.wasm` file, or several with `exec.main` naming one. Refused at init, as a
//! developer error `The wasm module is invalid: <reason>.`: text, a component, precompiled native
//! code (never accepted from users: it would run unchecked), a truncated or invalid module, a module
//! importing from anything but `wasi_snapshot_preview1`, one that is not a command (`_start`,
//! `memory`).
//!
//! [`extract`] and [`check_header`] run before compilation; [`check_interface`] after it, on the
//! compiled module's imports and exports.

use std::borrow::Cow;
use std::io::{Cursor, Read};

use thiserror::Error;
use wasmtime::{Engine, ExternType, Module, Precompiled};

use crate::container::Code;
use crate::outcome::messages;

/// Largest module accepted, raw or unpacked from a zip, in bytes (OpenWhisk's own code limit is
/// 48 MB). Threat: a zip bomb, or a module so large that compiling it starves the host.
pub const MAX_MODULE_BYTES: u64 = 128 * 1024 * 1024;

/// Most entries a zip may list. Threat: a central directory of millions of tiny entries, each
/// parsed and kept in memory by the zip reader.
pub const MAX_ZIP_ENTRIES: usize = 10_000;

/// The one module WASI preview 1 commands import from.
pub const WASI_P1_MODULE: &str = "wasi_snapshot_preview1";

/// The magic bytes of every WebAssembly binary.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// The version field of a core module.
const CORE_MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
/// The version field (version 0x0d, layer 1) of a component.
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
/// A zip's local file header, and its end-of-central-directory record (all an empty zip has).
const ZIP_MAGICS: [&[u8; 4]; 2] = [b"PK\x03\x04", b"PK\x05\x06"];

/// Why the code is not a runnable module. The `Display` text is the `<reason>` of
/// [`messages::invalid_module`], so it has no final period.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodeError {
    /// The action has no code at all.
    #[error("the action has no code")]
    Missing,
    /// The code is text (source or WAT), not a binary.
    #[error(
        "the code is text, not a binary module (build the action for wasm32-wasip1 and send the .wasm file or a zip of it)"
    )]
    Text,
    /// The bytes are neither a module nor a zip.
    #[error("the code is neither a wasm module (\\0asm) nor a zip archive")]
    NotWasm,
    /// Precompiled native code (`.cwasm`).
    #[error("precompiled native code is not accepted; send the .wasm module")]
    Precompiled,
    /// A component rather than a core module.
    #[error(
        "it is a WebAssembly component; only core modules (WASI preview 1 commands, wasm32-wasip1) are supported"
    )]
    Component,
    /// The module ends before its version field.
    #[error("the module is truncated")]
    Truncated,
    /// An unknown binary version.
    #[error("unsupported binary version {0:02x?}")]
    UnsupportedVersion([u8; 4]),
    /// The module (raw or unpacked) exceeds [`MAX_MODULE_BYTES`].
    #[error("the module is larger than {MAX_MODULE_BYTES} bytes")]
    TooLarge,
    /// The zip cannot be read.
    #[error("the zip archive cannot be read: {0}")]
    Zip(String),
    /// The zip lists more than [`MAX_ZIP_ENTRIES`] entries.
    #[error("the zip archive has more than {MAX_ZIP_ENTRIES} entries")]
    TooManyEntries,
    /// The zip holds no `.wasm` file.
    #[error("the zip archive holds no .wasm file")]
    NoModuleInZip,
    /// The zip holds several `.wasm` files and no `main`.
    #[error("the zip archive holds several .wasm files ({candidates}); set main to the one to run")]
    AmbiguousZip {
        /// The `.wasm` entries found.
        candidates: String,
    },
    /// The zip holds several `.wasm` files and `main` names none (or more than one) of them.
    #[error(
        "the zip archive holds several .wasm files ({candidates}) and main \"{main}\" names none of them"
    )]
    MainNotInZip {
        /// The `.wasm` entries found.
        candidates: String,
        /// The `exec.main` given.
        main: String,
    },
    /// wasmtime could not validate or compile the module.
    #[error("{0}")]
    Compile(String),
    /// The module imports from something other than `wasi_snapshot_preview1`.
    #[error("it imports {module}::{name}, but only {WASI_P1_MODULE} functions are available")]
    ForeignImport {
        /// The import's module.
        module: String,
        /// The import's name.
        name: String,
    },
    /// The module does not export `_start` as a function without parameters or results.
    #[error(
        "it does not export a _start function taking and returning nothing (is it a WASI command?)"
    )]
    NoStart,
    /// The module does not export its memory as `memory`.
    #[error("it does not export its memory as \"memory\"")]
    NoMemory,
    /// A `wasi_snapshot_preview1` import that does not exist or has the wrong type.
    #[error("{0}")]
    Link(String),
}

impl CodeError {
    /// The developer-error message the user sees.
    pub fn message(&self) -> String {
        messages::invalid_module(self.to_string().trim_end_matches('.'))
    }
}

/// Finds the module bytes in `code`: the code itself when it is a module, the chosen `*.wasm` entry
/// of a zip otherwise. Checks only the container format; see [`check_header`] for the module.
pub fn extract<'a>(code: Option<&'a Code>, main: Option<&str>) -> Result<Cow<'a, [u8]>, CodeError> {
    let bytes: &[u8] = match code {
        None => return Err(CodeError::Missing),
        Some(Code::Text(_)) => return Err(CodeError::Text),
        Some(Code::Binary(bytes)) => bytes,
    };
    if ZIP_MAGICS.iter().any(|magic| bytes.starts_with(*magic)) {
        return unzip(bytes, main).map(Cow::Owned);
    }
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_MODULE_BYTES {
        return Err(CodeError::TooLarge);
    }
    Ok(Cow::Borrowed(bytes))
}

/// The chosen `.wasm` entry of a zip.
fn unzip(bytes: &[u8], main: Option<&str>) -> Result<Vec<u8>, CodeError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|error| CodeError::Zip(error.to_string()))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(CodeError::TooManyEntries);
    }
    let candidates: Vec<String> = archive
        .file_names()
        .filter(|name| !name.ends_with('/') && name.ends_with(".wasm"))
        .map(str::to_string)
        .collect();
    let chosen = match candidates.as_slice() {
        [] => return Err(CodeError::NoModuleInZip),
        // With one module, `main` is not needed (and is often OpenWhisk's default, "main").
        [only] => only.clone(),
        several => {
            let candidates = several.join(", ");
            let Some(main) = main else {
                return Err(CodeError::AmbiguousZip { candidates });
            };
            let named: Vec<&String> = several
                .iter()
                .filter(|name| names_entry(main, name))
                .collect();
            match named.as_slice() {
                [one] => (*one).clone(),
                _ => {
                    return Err(CodeError::MainNotInZip {
                        candidates,
                        main: main.to_string(),
                    });
                }
            }
        }
    };
    let entry = archive
        .by_name(&chosen)
        .map_err(|error| CodeError::Zip(error.to_string()))?;
    // The declared size is the archive's claim; the read is bounded whatever it says.
    let mut module =
        Vec::with_capacity(usize::try_from(entry.size().min(MAX_MODULE_BYTES)).unwrap_or(0));
    entry
        .take(MAX_MODULE_BYTES + 1)
        .read_to_end(&mut module)
        .map_err(|error| CodeError::Zip(format!("{chosen}: {error}")))?;
    if u64::try_from(module.len()).unwrap_or(u64::MAX) > MAX_MODULE_BYTES {
        return Err(CodeError::TooLarge);
    }
    Ok(module)
}

/// Whether `main` names the zip entry `name`: the full path, the file name, or the file name
/// without `.wasm`.
fn names_entry(main: &str, name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    main == name || main == file || Some(main) == file.strip_suffix(".wasm")
}

/// Checks that `bytes` are a core wasm module before compiling them: refuses precompiled code,
/// text, components and anything without the wasm header.
pub fn check_header(bytes: &[u8]) -> Result<(), CodeError> {
    if let Some(Precompiled::Module | Precompiled::Component) = Engine::detect_precompiled(bytes) {
        return Err(CodeError::Precompiled);
    }
    if !bytes.starts_with(WASM_MAGIC) {
        if WASM_MAGIC.starts_with(bytes) && !bytes.is_empty() {
            return Err(CodeError::Truncated);
        }
        return Err(if std::str::from_utf8(bytes).is_ok() {
            CodeError::Text
        } else {
            CodeError::NotWasm
        });
    }
    let Some(version) = bytes.get(4..8) else {
        return Err(CodeError::Truncated);
    };
    let version: [u8; 4] = version.try_into().expect("the range has four bytes");
    match version {
        CORE_MODULE_VERSION => Ok(()),
        COMPONENT_VERSION => Err(CodeError::Component),
        other => Err(CodeError::UnsupportedVersion(other)),
    }
}

/// Checks a compiled module's interface: a WASI preview 1 command importing only from
/// `wasi_snapshot_preview1`, exporting `_start: [] -> []` and its `memory`.
pub fn check_interface(module: &Module) -> Result<(), CodeError> {
    if let Some(import) = module
        .imports()
        .find(|import| import.module() != WASI_P1_MODULE)
    {
        return Err(CodeError::ForeignImport {
            module: import.module().to_string(),
            name: import.name().to_string(),
        });
    }
    match module.get_export("_start") {
        Some(ExternType::Func(func)) if func.params().len() == 0 && func.results().len() == 0 => {}
        _ => return Err(CodeError::NoStart),
    }
    match module.get_export("memory") {
        Some(ExternType::Memory(_)) => Ok(()),
        _ => Err(CodeError::NoMemory),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

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

    fn binary(bytes: Vec<u8>) -> Code {
        Code::Binary(Arc::from(bytes))
    }

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn test_raw_module_is_taken_as_it_is() {
        let code = binary(MODULE.to_vec());
        assert_eq!(extract(Some(&code), None).unwrap().as_ref(), MODULE);
        check_header(MODULE).unwrap();
    }

    #[test]
    fn test_zip_with_one_module_ignores_main() {
        let code = binary(zip_of(&[("README", b"hi"), ("bin/app.wasm", MODULE)]));
        assert_eq!(extract(Some(&code), Some("main")).unwrap().as_ref(), MODULE);
    }

    #[test]
    fn test_zip_with_several_modules_needs_main() {
        let other = b"\0asm\x01\0\0\0\0";
        let code = binary(zip_of(&[("a.wasm", MODULE), ("b.wasm", other)]));
        assert_eq!(extract(Some(&code), Some("b")).unwrap().as_ref(), other);
        assert_eq!(
            extract(Some(&code), Some("a.wasm")).unwrap().as_ref(),
            MODULE
        );
        assert_eq!(
            extract(Some(&code), None).unwrap_err().message(),
            "The wasm module is invalid: the zip archive holds several .wasm files (a.wasm, b.wasm); set main to the one to run."
        );
        assert_eq!(
            extract(Some(&code), Some("c")).unwrap_err().message(),
            "The wasm module is invalid: the zip archive holds several .wasm files (a.wasm, b.wasm) and main \"c\" names none of them."
        );
    }

    #[test]
    fn test_headers_are_sorted_by_what_they_are() {
        assert_eq!(check_header(b"(module)"), Err(CodeError::Text));
        assert_eq!(check_header(b"\0as"), Err(CodeError::Truncated));
        assert_eq!(check_header(b"\0asm\x01"), Err(CodeError::Truncated));
        assert_eq!(
            check_header(b"\0asm\x0d\0\x01\0"),
            Err(CodeError::Component)
        );
        assert_eq!(check_header(&[0xff, 0xfe, 0x00]), Err(CodeError::NotWasm));
        assert_eq!(
            check_header(b"\0asm\x02\0\0\0"),
            Err(CodeError::UnsupportedVersion([2, 0, 0, 0]))
        );
    }

    #[test]
    fn test_text_and_missing_code_are_refused() {
        assert_eq!(
            extract(Some(&Code::Text("fn main() {}".into())), None),
            Err(CodeError::Text)
        );
        assert_eq!(extract(None, None), Err(CodeError::Missing));
        assert_eq!(
            CodeError::Missing.message(),
            "The wasm module is invalid: the action has no code."
        );
    }
}
