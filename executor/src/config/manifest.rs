//! Reading a runtimes manifest (OpenWhisk's `runtimes.json`), one way for every subcommand.

use std::path::{Path, PathBuf};

use factory::docker::Manifest;
use factory::docker::manifest::{MANIFEST_ENV, ManifestError};

/// Where a runtimes manifest (OpenWhisk's `runtimes.json`) comes from: the one way every
/// subcommand reads it (the invoker from its configuration, `run` and `standalone` from `--manifest`
/// or `RUNTIMES_MANIFEST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// The manifest's JSON text (`RUNTIMES_MANIFEST`).
    Text(String),
    /// A file holding it.
    File(PathBuf),
}

impl ManifestSource {
    /// `file` when given, else the non-empty `RUNTIMES_MANIFEST` of this process, else none.
    pub fn file_or_env(file: Option<&Path>) -> Option<Self> {
        match file {
            Some(path) => Some(Self::File(path.to_path_buf())),
            None => std::env::var(MANIFEST_ENV)
                .ok()
                .filter(|text| !text.is_empty())
                .map(Self::Text),
        }
    }

    /// Reads (off the reactor, the file bounded in size) and parses the manifest.
    pub async fn load(self) -> Result<Manifest, ManifestError> {
        match self {
            Self::Text(text) => Manifest::from_json(&text),
            Self::File(path) => {
                let shown = path.display().to_string();
                tokio::task::spawn_blocking(move || Manifest::from_file(&path))
                    .await
                    .unwrap_or_else(|error| {
                        Err(ManifestError::Read {
                            path: shown,
                            reason: error.to_string(),
                        })
                    })
            }
        }
    }
}
