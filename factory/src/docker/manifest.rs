//! OpenWhisk's runtimes manifest (`runtimes.json`, `RUNTIMES_MANIFEST`): which image runs each kind,
//! which blackbox images are local ("native"), whose logs end with sentinels, and the stem cells to
//! prewarm. Parsed and validated as `ExecManifest.scala` does (protocol reference, section 13).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::container::{ReactivePrewarm, StemCell};

/// The kind of blackbox actions (their image comes from the action, not from the manifest).
pub const BLACKBOX_KIND: &str = "blackbox";
/// The environment variable OpenWhisk passes the manifest text in.
pub const MANIFEST_ENV: &str = "RUNTIMES_MANIFEST";
/// Largest manifest file read. Threat: a mistaken path (a device, a huge file) exhausting memory.
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// A manifest that cannot be read or breaks OpenWhisk's rules.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the runtimes manifest {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// `RUNTIMES_MANIFEST` is not set.
    #[error("{MANIFEST_ENV} is not set")]
    NotSet,
    /// Not JSON of the manifest's shape.
    #[error("the runtimes manifest is not valid: {0}")]
    Parse(String),
    /// JSON of the right shape that breaks a rule (a missing default, a bad stem cell, ...).
    #[error("the runtimes manifest is not valid: {0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
struct RawManifest {
    #[serde(default)]
    runtimes: BTreeMap<String, Vec<RawRuntime>>,
    #[serde(default)]
    blackboxes: Vec<RawImage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRuntime {
    kind: String,
    #[serde(default)]
    default: Option<bool>,
    image: RawImage,
    #[serde(default)]
    deprecated: Option<bool>,
    #[serde(default)]
    sentinelled_logs: Option<bool>,
    #[serde(default)]
    stem_cells: Option<Vec<RawStemCell>>,
}

#[derive(Debug, Deserialize)]
struct RawImage {
    name: String,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    registry: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStemCell {
    #[serde(default)]
    initial_count: Option<i64>,
    /// The legacy name of `initialCount`.
    #[serde(default)]
    count: Option<i64>,
    memory: Option<String>,
    #[serde(default)]
    reactive: Option<RawReactive>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReactive {
    min_count: i64,
    max_count: i64,
    ttl: String,
    threshold: i64,
    increment: i64,
}

/// An image of the manifest: `[registry/][prefix/]name[:tag]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// The registry, when the entry names one (`registry`).
    pub registry: Option<String>,
    /// The repository prefix (`openwhisk`).
    pub prefix: Option<String>,
    /// The image name (`action-nodejs-v20`).
    pub name: String,
    /// The tag (`nightly`); none means docker's `latest`.
    pub tag: Option<String>,
}

impl ImageName {
    /// The image reference, with `default_registry` when the entry names none
    /// (`ExecManifest.ImageName.resolveImageName`; a trailing `/` is added to the registry).
    pub fn resolve(&self, default_registry: Option<&str>) -> String {
        let mut image = String::new();
        if let Some(registry) = self
            .registry
            .as_deref()
            .or(default_registry)
            .filter(|r| !r.is_empty())
        {
            image.push_str(registry);
            if !registry.ends_with('/') {
                image.push('/');
            }
        }
        if let Some(prefix) = self.prefix.as_deref().filter(|p| !p.is_empty()) {
            image.push_str(prefix);
            image.push('/');
        }
        image.push_str(&self.name);
        if let Some(tag) = self.tag.as_deref().filter(|t| !t.is_empty()) {
            image.push(':');
            image.push_str(tag);
        }
        image
    }

    fn from_raw(raw: RawImage) -> Self {
        Self {
            registry: raw.registry,
            prefix: raw.prefix,
            name: raw.name,
            tag: raw.tag,
        }
    }
}

/// One managed kind of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// The kind (`nodejs:20`).
    pub kind: String,
    /// Its family (`nodejs`).
    pub family: String,
    /// Whether `<family>:default` means this kind.
    pub default: bool,
    /// The image.
    pub image: ImageName,
    /// Whether the kind is deprecated (existing actions still run).
    pub deprecated: bool,
    /// Whether its runtime ends each activation's logs with the sentinels (default true).
    pub sentinelled_logs: bool,
    /// Prewarm configuration.
    pub stem_cells: Vec<StemCell>,
}

/// A parsed, validated runtimes manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    runtimes: BTreeMap<String, Runtime>,
    defaults: BTreeMap<String, String>,
    blackboxes: Vec<ImageName>,
}

impl Manifest {
    /// Parses manifest JSON text.
    pub fn from_json(text: &str) -> Result<Self, ManifestError> {
        let raw: RawManifest =
            serde_json::from_str(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
        Self::from_raw(raw)
    }

    /// Reads and parses a manifest file.
    pub fn from_file(path: &Path) -> Result<Self, ManifestError> {
        let read_error = |reason: String| ManifestError::Read {
            path: path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| read_error(e.to_string()))?;
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(read_error(format!(
                "larger than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
        Self::from_json(&text)
    }

    /// Parses the manifest in `RUNTIMES_MANIFEST`, as every OpenWhisk component does.
    pub fn from_env() -> Result<Self, ManifestError> {
        let text = std::env::var(MANIFEST_ENV).map_err(|_| ManifestError::NotSet)?;
        Self::from_json(&text)
    }

    fn from_raw(raw: RawManifest) -> Result<Self, ManifestError> {
        let mut runtimes = BTreeMap::new();
        let mut defaults = BTreeMap::new();
        for (family, kinds) in raw.runtimes {
            if kinds.is_empty() {
                return Err(ManifestError::Invalid(format!(
                    "family '{family}' has no kinds"
                )));
            }
            let single = kinds.len() == 1;
            let mut family_defaults = Vec::new();
            for raw_runtime in kinds {
                let kind = raw_runtime.kind;
                if kind.is_empty() || kind == BLACKBOX_KIND {
                    return Err(ManifestError::Invalid(format!(
                        "family '{family}' has a bad kind '{kind}'"
                    )));
                }
                if raw_runtime.image.name.is_empty() {
                    return Err(ManifestError::Invalid(format!(
                        "kind '{kind}' has no image name"
                    )));
                }
                let default = raw_runtime.default.unwrap_or(false);
                if default || single {
                    family_defaults.push(kind.clone());
                }
                let stem_cells = raw_runtime
                    .stem_cells
                    .unwrap_or_default()
                    .into_iter()
                    .map(|cell| stem_cell(&kind, cell))
                    .collect::<Result<Vec<_>, _>>()?;
                let runtime = Runtime {
                    kind: kind.clone(),
                    family: family.clone(),
                    default,
                    image: ImageName::from_raw(raw_runtime.image),
                    deprecated: raw_runtime.deprecated.unwrap_or(false),
                    sentinelled_logs: raw_runtime.sentinelled_logs.unwrap_or(true),
                    stem_cells,
                };
                if runtimes.insert(kind.clone(), runtime).is_some() {
                    return Err(ManifestError::Invalid(format!(
                        "kind '{kind}' appears twice"
                    )));
                }
            }
            match family_defaults.as_slice() {
                [one] => {
                    defaults.insert(family.clone(), one.clone());
                }
                [] => {
                    return Err(ManifestError::Invalid(format!(
                        "family '{family}' has no default kind"
                    )));
                }
                _ => {
                    return Err(ManifestError::Invalid(format!(
                        "family '{family}' has more than one default kind"
                    )));
                }
            }
        }
        let blackboxes = raw
            .blackboxes
            .into_iter()
            .map(ImageName::from_raw)
            .collect();
        Ok(Self {
            runtimes,
            defaults,
            blackboxes,
        })
    }

    /// The managed runtime of `kind`, resolving `<family>:default`.
    pub fn runtime(&self, kind: &str) -> Option<&Runtime> {
        if let Some(family) = kind.strip_suffix(":default")
            && let Some(default) = self.defaults.get(family)
        {
            return self.runtimes.get(default);
        }
        self.runtimes.get(kind)
    }

    /// Whether actions of `kind` can run: a manifest kind, `<family>:default`, or `blackbox`.
    pub fn supports(&self, kind: &str) -> bool {
        kind == BLACKBOX_KIND || self.runtime(kind).is_some()
    }

    /// The image of a managed `kind` (`None` for unknown kinds and `blackbox`), with
    /// `default_registry` for entries that name no registry.
    pub fn image_for(&self, kind: &str, default_registry: Option<&str>) -> Option<String> {
        self.runtime(kind)
            .map(|runtime| runtime.image.resolve(default_registry))
    }

    /// All managed runtimes, by kind.
    pub fn runtimes(&self) -> impl Iterator<Item = &Runtime> {
        self.runtimes.values()
    }

    /// The blackbox images treated as native: never pulled, sentinelled logs.
    pub fn blackboxes(&self) -> &[ImageName] {
        &self.blackboxes
    }

    /// Whether a blackbox `image` (a resolved reference) is one of the manifest's native blackboxes,
    /// each resolved with `default_registry`.
    pub fn is_native_blackbox(&self, image: &str, default_registry: Option<&str>) -> bool {
        let wanted = with_tag(image);
        self.blackboxes
            .iter()
            .any(|b| with_tag(&b.resolve(default_registry)) == wanted)
    }

    /// Every stem cell of every kind.
    pub fn stem_cells(&self) -> Vec<StemCell> {
        self.runtimes
            .values()
            .flat_map(|r| r.stem_cells.iter().cloned())
            .collect()
    }
}

/// `image` with docker's implicit `:latest` made explicit, for comparisons.
fn with_tag(image: &str) -> String {
    if image_tag(image).is_some() {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// The tag of an image reference (`None` when it has none), by the docker reference grammar: the tag
/// follows the last `:` of the last path component, before any `@digest`.
pub fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, tag)| tag)
}

/// Whether a reference names a registry (its first component has a `.` or `:`, or is `localhost`).
pub fn has_registry(image: &str) -> bool {
    match image.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

fn stem_cell(kind: &str, raw: RawStemCell) -> Result<StemCell, ManifestError> {
    let invalid = |what: String| ManifestError::Invalid(format!("stem cell of '{kind}': {what}"));
    let count = raw
        .initial_count
        .or(raw.count)
        .ok_or_else(|| invalid("initialCount is required".into()))?;
    if count <= 0 {
        return Err(invalid(format!(
            "initialCount must be positive, not {count}"
        )));
    }
    let memory = raw
        .memory
        .ok_or_else(|| invalid("memory is required".into()))?;
    let memory_mb = parse_byte_size_mb(&memory).map_err(invalid)?;
    let reactive = match raw.reactive {
        None => None,
        Some(r) => {
            if !(0 <= r.min_count && r.min_count <= r.max_count) {
                return Err(invalid(format!(
                    "reactive needs 0 <= minCount <= maxCount, got {} and {}",
                    r.min_count, r.max_count
                )));
            }
            if r.max_count <= 0 {
                return Err(invalid("reactive maxCount must be positive".into()));
            }
            let ttl = parse_duration(&r.ttl).map_err(invalid)?;
            if ttl.is_zero() {
                return Err(invalid("reactive ttl must be positive".into()));
            }
            if r.threshold <= 0 {
                return Err(invalid("reactive threshold must be positive".into()));
            }
            if !(0 < r.increment && r.increment <= r.max_count) {
                return Err(invalid(format!(
                    "reactive needs 0 < increment <= maxCount, got {} and {}",
                    r.increment, r.max_count
                )));
            }
            Some(ReactivePrewarm {
                min_count: to_u32(r.min_count).map_err(invalid)?,
                max_count: to_u32(r.max_count).map_err(invalid)?,
                ttl,
                threshold: to_u32(r.threshold).map_err(invalid)?,
                increment: to_u32(r.increment).map_err(invalid)?,
            })
        }
    };
    Ok(StemCell {
        kind: kind.to_string(),
        memory_mb,
        initial_count: to_u32(count).map_err(invalid)?,
        reactive,
    })
}

fn to_u32(value: i64) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("{value} is out of range"))
}

/// Parses OpenWhisk's `ByteSize` text (`"256 MB"`, `"1g"`, `"512m"`; units B, K/KB, M/MB, G/GB, any
/// case, optional space) into whole MB (MiB).
pub fn parse_byte_size_mb(text: &str) -> Result<u32, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size"))?;
    let multiplier: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "B" => 1,
        "K" | "KB" => 1024,
        "M" | "MB" => 1024 * 1024,
        "G" | "GB" => 1024 * 1024 * 1024,
        _ => return Err(format!("'{text}' has an unknown size unit")),
    };
    let bytes = number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("'{text}' is too large"))?;
    let mb = bytes / crate::limits::BYTES_PER_MB;
    if mb == 0 {
        return Err(format!("'{text}' is less than 1 MB"));
    }
    u32::try_from(mb).map_err(|_| format!("'{text}' is too large"))
}

/// Parses Scala duration text (`"2 minutes"`, `"30s"`, `"1.5 hours"`, `"500 ms"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix('s')
        .filter(|u| !u.is_empty() && *u != "m" && *u != "n")
        .unwrap_or(&unit);
    let seconds_per_unit = match unit {
        "d" | "day" => 86_400.0,
        "h" | "hr" | "hour" => 3_600.0,
        "m" | "min" | "minute" => 60.0,
        "s" | "sec" | "second" => 1.0,
        "ms" | "milli" | "millisecond" => 1e-3,
        "µ" | "µs" | "micro" | "microsecond" => 1e-6,
        "ns" | "nano" | "nanosecond" => 1e-9,
        _ => return Err(format!("'{text}' has an unknown time unit")),
    };
    Duration::try_from_secs_f64(number * seconds_per_unit)
        .map_err(|_| format!("'{text}' is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtimes manifest from the repository's OpenWhisk fixtures (`executor/tests/fixtures/runtimes`,
    /// the one copy every crate's tests read; see the README there).
    fn fixture(name: &str) -> String {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../executor/tests/fixtures/runtimes"
        ))
        .join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()))
    }

    #[test]
    fn test_shipped_manifest_resolves_kinds_to_images() {
        let manifest = Manifest::from_json(&fixture("runtimes.json")).unwrap();
        assert_eq!(
            manifest.image_for("nodejs:20", None).unwrap(),
            "openwhisk/action-nodejs-v20:nightly"
        );
        assert_eq!(
            manifest.image_for("nodejs:default", None).unwrap(),
            "openwhisk/action-nodejs-v20:nightly"
        );
        assert_eq!(
            manifest.runtime("python:default").unwrap().kind,
            "python:3.10"
        );
        assert_eq!(
            manifest.image_for("java:8", None).unwrap(),
            "openwhisk/java8action:nightly"
        );
        assert_eq!(
            manifest
                .image_for("swift:5.7", Some("registry.local:5000"))
                .unwrap(),
            "registry.local:5000/openwhisk/action-swift-v5.7:nightly"
        );
        assert!(manifest.supports("blackbox"));
        assert!(manifest.supports("rust:1.34"));
        assert!(!manifest.supports("python:3"));
        assert!(!manifest.supports("wasm:wasip1"));
        assert!(manifest.is_native_blackbox("openwhisk/dockerskeleton:nightly", None));
        assert!(!manifest.is_native_blackbox("openwhisk/dockerskeleton", None));
        assert!(manifest.runtimes().all(|r| r.sentinelled_logs));
    }

    #[test]
    fn test_shipped_stem_cells_are_reactive() {
        let manifest = Manifest::from_json(&fixture("runtimes.json")).unwrap();
        let cells = manifest.stem_cells();
        assert_eq!(
            cells,
            vec![StemCell {
                kind: "nodejs:20".into(),
                memory_mb: 256,
                initial_count: 2,
                reactive: Some(ReactivePrewarm {
                    min_count: 1,
                    max_count: 4,
                    ttl: Duration::from_secs(120),
                    threshold: 1,
                    increment: 1
                }),
            }]
        );
    }

    #[test]
    fn test_wasm_manifest_lists_the_wasm_kind() {
        let manifest = Manifest::from_json(&fixture("runtimes-with-wasm.json")).unwrap();
        assert!(manifest.supports("wasm:wasip1"));
        assert_eq!(
            manifest.runtime("wasm:default").unwrap().kind,
            "wasm:wasip1"
        );
    }

    fn with_cell(cell: &str) -> String {
        format!(
            r#"{{"runtimes":{{"n":[{{"kind":"n:1","image":{{"name":"x"}},"stemCells":[{cell}]}}]}}}}"#
        )
    }

    #[test]
    fn test_stem_cell_rules_are_enforced() {
        let ok = r#"{"count":1,"memory":"128 MB","reactive":{"minCount":0,"maxCount":2,"ttl":"30 seconds","threshold":2,"increment":2}}"#;
        let cells = Manifest::from_json(&with_cell(ok)).unwrap().stem_cells();
        assert_eq!(cells[0].initial_count, 1);
        assert_eq!(
            cells[0].reactive.as_ref().unwrap().ttl,
            Duration::from_secs(30)
        );
        for bad in [
            r#"{"initialCount":0,"memory":"128 MB"}"#,
            r#"{"memory":"128 MB"}"#,
            r#"{"initialCount":1}"#,
            r#"{"initialCount":1,"memory":"lots"}"#,
            r#"{"initialCount":1,"memory":"128 MB","reactive":{"minCount":3,"maxCount":2,"ttl":"2 minutes","threshold":1,"increment":1}}"#,
            r#"{"initialCount":1,"memory":"128 MB","reactive":{"minCount":0,"maxCount":0,"ttl":"2 minutes","threshold":1,"increment":1}}"#,
            r#"{"initialCount":1,"memory":"128 MB","reactive":{"minCount":0,"maxCount":2,"ttl":"0 seconds","threshold":1,"increment":1}}"#,
            r#"{"initialCount":1,"memory":"128 MB","reactive":{"minCount":0,"maxCount":2,"ttl":"2 minutes","threshold":0,"increment":1}}"#,
            r#"{"initialCount":1,"memory":"128 MB","reactive":{"minCount":0,"maxCount":2,"ttl":"2 minutes","threshold":1,"increment":3}}"#,
            r#"{"initialCount":1,"memory":"128 MB","reactive":{"minCount":0,"maxCount":2,"ttl":"2 minutes","threshold":1,"increment":0}}"#,
        ] {
            assert!(
                matches!(
                    Manifest::from_json(&with_cell(bad)),
                    Err(ManifestError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn test_families_need_exactly_one_default() {
        let two = r#"{"runtimes":{"n":[{"kind":"n:1","image":{"name":"a"}},{"kind":"n:2","image":{"name":"b"}}]}}"#;
        assert!(matches!(
            Manifest::from_json(two),
            Err(ManifestError::Invalid(_))
        ));
        let single =
            r#"{"runtimes":{"n":[{"kind":"n:1","image":{"name":"a"},"sentinelledLogs":false}]}}"#;
        let manifest = Manifest::from_json(single).unwrap();
        assert_eq!(manifest.image_for("n:default", None).unwrap(), "a");
        assert!(!manifest.runtime("n:1").unwrap().sentinelled_logs);
        assert!(matches!(
            Manifest::from_json("{"),
            Err(ManifestError::Parse(_))
        ));
    }

    #[test]
    fn test_sizes_and_durations_read_like_openwhisk() {
        assert_eq!(parse_byte_size_mb("256 MB"), Ok(256));
        assert_eq!(parse_byte_size_mb("1g"), Ok(1024));
        assert_eq!(parse_byte_size_mb("268435456 B"), Ok(256));
        assert!(parse_byte_size_mb("12 XB").is_err());
        assert_eq!(parse_duration("2 minutes"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1 minute"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500 ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5 hours"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("2 fortnights").is_err());
    }

    #[test]
    fn test_image_references_follow_the_docker_grammar() {
        assert_eq!(image_tag("openwhisk/dockerskeleton"), None);
        assert_eq!(
            image_tag("openwhisk/dockerskeleton:nightly"),
            Some("nightly")
        );
        assert_eq!(image_tag("localhost:5000/x/y"), None);
        assert_eq!(image_tag("localhost:5000/x/y:1.0@sha256:abc"), Some("1.0"));
        assert!(has_registry("localhost:5000/x/y"));
        assert!(has_registry("docker.io/x/y"));
        assert!(!has_registry("openwhisk/x"));
        assert!(!has_registry("x"));
    }
}
