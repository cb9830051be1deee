//! The machine-readable summary of one bench run, `target/bench-results/<suite>.json`: which machine
//! (CPU model, cores, kernel), its load average when the run started and ended, the command, the
//! date, and the measured series (raw samples, or points such as percentiles against a load).
//!
//! Every bench writes its summary through [`Recorder`]; `benches/report.rs` reads them back with
//! [`load`] and turns them into `benches/RESULTS.md` and the plots. One module, included by each
//! bench with `#[path]`, so that writer and reader cannot disagree on the format.

#![allow(
    dead_code,
    reason = "each bench includes this module and uses only part of it"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The machine a suite ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` of the first processor in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// `MemTotal` of `/proc/meminfo`, in MiB.
    pub memory_mib: u64,
}

/// One measured series: raw `samples` (a distribution), or `points` (a value against `x`), or both.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    /// What the report groups and plots it by: `warm_latency`, `cold_start`, `throughput`,
    /// `e2e_latency`, `density_rss`, ...
    pub metric: String,
    /// The legend label, e.g. `wasm echo`.
    pub name: String,
    /// The unit of the samples and of the points' `y`: `ms`, `activations/s`, `MiB`, ...
    pub unit: String,
    /// What the points' `x` is (e.g. `concurrent activations`); empty when there are no points.
    #[serde(default)]
    pub x_label: String,
    /// Raw samples, in `unit`.
    #[serde(default)]
    pub samples: Vec<f64>,
    /// `(x, y)` points, `y` in `unit`.
    #[serde(default)]
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A distribution of raw samples.
    pub fn samples(metric: &str, name: &str, unit: &str, samples: Vec<f64>) -> Self {
        Self {
            metric: metric.into(),
            name: name.into(),
            unit: unit.into(),
            x_label: String::new(),
            samples,
            points: Vec::new(),
        }
    }

    /// A value against `x_label`.
    pub fn points(
        metric: &str,
        name: &str,
        unit: &str,
        x_label: &str,
        points: Vec<(f64, f64)>,
    ) -> Self {
        Self {
            metric: metric.into(),
            name: name.into(),
            unit: unit.into(),
            x_label: x_label.into(),
            samples: Vec::new(),
            points,
        }
    }

    /// The `p`-quantile (0..=1) of the samples, nearest rank; `None` without samples.
    pub fn quantile(&self, p: f64) -> Option<f64> {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        let last = sorted.len().checked_sub(1)?;
        let index = ((last as f64) * p.clamp(0.0, 1.0)).round() as usize;
        sorted.get(index.min(last)).copied()
    }
}

/// The summary file of one suite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The bench target's name (`wasm`, `density`, ...); also the file's stem.
    pub suite: String,
    /// The command that produced it.
    pub command: String,
    /// When the run started, UTC, `YYYY-MM-DD HH:MM:SS`.
    pub date: String,
    /// How long the run took, in seconds.
    pub seconds: f64,
    pub machine: Machine,
    /// 1, 5 and 15-minute load averages when the run started.
    pub load_start: [f64; 3],
    /// The same when it ended.
    pub load_end: [f64; 3],
    pub series: Vec<Series>,
    /// Facts the series do not hold (derived figures, skipped parts and why).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Summary {
    /// One line naming machine, load and command, for under every table and plot.
    pub fn provenance(&self) -> String {
        format!(
            "{} UTC: {} ({} cores, {} MiB, Linux {}), load {:.2}/{:.2}/{:.2} at start and {:.2}/{:.2}/{:.2} at end, `{}`",
            self.date,
            self.machine.cpu_model,
            self.machine.cores,
            self.machine.memory_mib,
            self.machine.kernel,
            self.load_start[0],
            self.load_start[1],
            self.load_start[2],
            self.load_end[0],
            self.load_end[1],
            self.load_end[2],
            self.command,
        )
    }

    /// The series of `metric`, in recorded order.
    pub fn metric<'a>(&'a self, metric: &'a str) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| s.metric == metric)
    }
}

/// Collects one suite's series while it runs and writes its summary at the end.
pub struct Recorder {
    summary: Summary,
    started: std::time::Instant,
    started_at: SystemTime,
}

impl Recorder {
    /// Starts the record of `suite`: machine, date, command and load average now.
    pub fn start(suite: &str) -> Self {
        let started_at = SystemTime::now();
        Self {
            summary: Summary {
                suite: suite.into(),
                command: command(suite),
                date: utc_date(started_at),
                seconds: 0.0,
                machine: machine(),
                load_start: load_average(),
                load_end: [0.0; 3],
                series: Vec::new(),
                notes: Vec::new(),
            },
            started: std::time::Instant::now(),
            started_at,
        }
    }

    /// When the run started: files older than this are not its results.
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// Adds a series; one already recorded under the same metric and name is extended instead, so
    /// that a bench can add the points of a curve as it measures them.
    pub fn push(&mut self, series: Series) {
        let existing = self
            .summary
            .series
            .iter_mut()
            .find(|s| s.metric == series.metric && s.name == series.name);
        match existing {
            Some(existing) => {
                existing.samples.extend(series.samples);
                existing.points.extend(series.points);
            }
            None => self.summary.series.push(series),
        }
    }

    /// Adds a series of durations, as milliseconds.
    pub fn durations(&mut self, metric: &str, name: &str, samples: &[Duration]) {
        let ms = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        self.push(Series::samples(metric, name, "ms", ms));
    }

    /// Adds a note.
    pub fn note(&mut self, note: impl Into<String>) {
        self.summary.notes.push(note.into());
    }

    /// Takes the load average now and writes the summary; returns where. A bench that cannot
    /// write its summary still printed its results, so the error is only reported.
    pub fn finish(mut self) -> Option<PathBuf> {
        self.summary.load_end = load_average();
        self.summary.seconds = self.started.elapsed().as_secs_f64();
        let path = summary_path(&self.summary.suite);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                let json =
                    serde_json::to_vec_pretty(&self.summary).map_err(std::io::Error::other)?;
                std::fs::write(&path, json)
            });
        match written {
            Ok(()) => {
                eprintln!("summary written to {}", path.display());
                Some(path)
            }
            Err(error) => {
                eprintln!("cannot write {}: {error}", path.display());
                None
            }
        }
    }
}

/// Where the summaries go: `target/bench-results` of this workspace (or of `CARGO_TARGET_DIR`).
pub fn results_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench-results")
}

/// The summary file of `suite`.
pub fn summary_path(suite: &str) -> PathBuf {
    results_dir().join(format!("{suite}.json"))
}

/// Why a summary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no summary at {0} (the suite was not run)")]
    Missing(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a bench summary: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Reads the summary of `suite`.
pub fn load(suite: &str) -> Result<Summary, LoadError> {
    let path = summary_path(suite);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::Missing(path));
        }
        Err(source) => return Err(LoadError::Read { path, source }),
    };
    serde_json::from_slice(&bytes).map_err(|source| LoadError::Parse { path, source })
}

/// `cargo bench --bench <suite>` followed by the arguments the bench got (without the `--bench`
/// flag cargo adds).
fn command(suite: &str) -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    let mut command = format!("cargo bench --bench {suite}");
    if !args.is_empty() {
        command.push_str(" -- ");
        command.push_str(&args.join(" "));
    }
    command
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    Machine {
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into()),
        memory_mib: memory_kib / 1024,
    }
}

/// The 1, 5 and 15-minute load averages (zeros where `/proc/loadavg` cannot be read).
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text
        .split_whitespace()
        .map(|field| field.parse::<f64>().unwrap_or(0.0));
    [
        fields.next().unwrap_or(0.0),
        fields.next().unwrap_or(0.0),
        fields.next().unwrap_or(0.0),
    ]
}

/// `time` in UTC as `YYYY-MM-DD HH:MM:SS` (civil-from-days, no time zone database needed).
fn utc_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}
