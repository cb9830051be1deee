//! Reading the activation's parameters: `argv[1]` when present, else stdin.

use std::fmt;
use std::io::{self, IsTerminal, Read};

use serde_json::Value;

/// The largest params JSON (in bytes) the invoker passes as `argv[1]`; larger params arrive on
/// stdin only. Stdin always carries them, so [`read_params`] needs no size check; this is here for
/// authors who read `argv` themselves.
pub const MAX_ARGV_PARAMS_BYTES: usize = 131_071;

/// Why the parameters could not be read.
#[derive(Debug)]
pub enum ParamsError {
    /// Stdin could not be read.
    Stdin(io::Error),
    /// `argv[1]` is not valid UTF-8.
    ArgvNotUtf8,
    /// The parameters are not valid JSON; `source` says where they came from.
    Json {
        /// `"argv[1]"` or `"stdin"`.
        source: &'static str,
        /// The parser's complaint.
        error: serde_json::Error,
    },
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdin(e) => write!(
                f,
                "The action could not read its parameters from stdin: {e}."
            ),
            Self::ArgvNotUtf8 => f.write_str("The action's parameters in argv[1] are not UTF-8."),
            Self::Json { source, error } => {
                write!(
                    f,
                    "The action's parameters in {source} are not valid JSON: {error}."
                )
            }
        }
    }
}

impl std::error::Error for ParamsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Stdin(e) => Some(e),
            Self::ArgvNotUtf8 => None,
            Self::Json { error, .. } => Some(error),
        }
    }
}

/// Reads the activation's parameters (normally a JSON object, possibly an array).
///
/// Takes `argv[1]` when it is present, as the invoker and the docker skeleton pass it; otherwise
/// reads stdin to end of file (the invoker always writes the params there, also when they are
/// too large for `argv`). Empty input, or no `argv[1]` and a terminal on stdin (a native binary run
/// by hand), gives `{}`.
///
/// # Errors
///
/// [`ParamsError`] when stdin cannot be read or the input is not UTF-8 or not JSON.
pub fn read_params() -> Result<Value, ParamsError> {
    let (text, source) = match std::env::args_os().nth(1) {
        Some(arg) => (
            arg.into_string().map_err(|_| ParamsError::ArgvNotUtf8)?,
            "argv[1]",
        ),
        None if io::stdin().is_terminal() => (String::new(), "stdin"),
        None => {
            let mut text = String::new();
            io::stdin()
                .lock()
                .read_to_string(&mut text)
                .map_err(ParamsError::Stdin)?;
            (text, "stdin")
        }
    };
    if text.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(&text).map_err(|error| ParamsError::Json { source, error })
}
