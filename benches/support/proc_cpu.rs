//! A process's CPU time as Linux accounts it in `/proc`, for the benches that set an invoker's CPU
//! beside the activations it ran (`benches/kafka.rs`, `benches/fpc.rs`): utime + stime of a
//! process or thread (`/proc/<pid>/stat`), the clock ticks they are counted in (`getconf
//! CLK_TCK`), the context switches of its threads (`/proc/<pid>/task/*/status`), snapshots of all
//! that per thread group, and the table column that shows which threads spent a phase's CPU.
//!
//! One module, included by each bench with `#[path]`, so that the benches count CPU the same way.

#![allow(
    dead_code,
    reason = "benches/fpc.rs uses only the process totals, not the thread groups"
)]

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::process::Command;

/// Clock ticks per second assumed when `getconf CLK_TCK` gives no answer: Linux's `USER_HZ`, the
/// unit of `/proc/<pid>/stat`, is 100 on the common architectures.
pub const ASSUMED_CLOCK_TICKS: f64 = 100.0;

/// Clock ticks per second of `/proc/<pid>/stat` as `getconf CLK_TCK` gives them, if it does.
pub fn getconf_clock_ticks() -> Option<f64> {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|out| out.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
}

/// Clock ticks per second of `/proc/<pid>/stat`: `getconf CLK_TCK`, else the usual 100.
pub fn clock_ticks() -> f64 {
    getconf_clock_ticks().unwrap_or(ASSUMED_CLOCK_TICKS)
}

/// utime + stime in clock ticks from a `/proc/.../stat` file (fields 14 and 15, counted after the
/// parenthesised name, which may hold spaces); `None` when the process or thread is gone.
pub fn stat_ticks(path: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let end = stat.rfind(')')?;
    let fields: Vec<&str> = stat[end + 1..].split_whitespace().collect();
    // After the name, field 3 (state) is at index 0: field n is at index n - 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)?)
}

/// utime + stime of process `pid` (a number, or `self`), in clock ticks; `None` when it is gone.
pub fn process_ticks(pid: impl Display) -> Option<u64> {
    stat_ticks(Path::new(&format!("/proc/{pid}/stat")))
}

/// The voluntary plus involuntary context switches of one thread (`/proc/.../status`).
fn context_switches(status: &Path) -> u64 {
    std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("ctxt_switches:"))
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// CPU ticks of the processes `pids`, whole and per thread group (thread name without its trailing
/// digits and dashes: `rdk:broker`, `tokio-runtime-w`, ...). Threads that ended between two
/// snapshots drop out of the groups, not out of the whole.
#[derive(Default)]
pub struct CpuSnapshot {
    total: u64,
    threads: HashMap<String, u64>,
    /// Context switches (voluntary and not) of the threads alive now: each is a thread going to
    /// sleep or being woken, which the profile shows as the largest cost.
    switches: u64,
}

impl CpuSnapshot {
    pub fn take(pids: &[u32]) -> Self {
        let mut snapshot = Self::default();
        for pid in pids {
            snapshot.total += process_ticks(pid).unwrap_or(0);
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for task in tasks.flatten() {
                let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                let group = name
                    .trim()
                    .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
                    .to_string();
                *snapshot.threads.entry(group).or_default() +=
                    stat_ticks(&task.path().join("stat")).unwrap_or(0);
                snapshot.switches += context_switches(&task.path().join("status"));
            }
        }
        snapshot
    }

    /// Milliseconds of CPU since `before`, whole and per thread group (largest first), and the
    /// context switches since.
    pub fn since(&self, before: &Self, ticks: f64) -> (f64, Vec<(String, f64)>, u64) {
        let ms = |t: u64| t as f64 * 1000.0 / ticks;
        let mut groups: Vec<(String, f64)> = self
            .threads
            .iter()
            .map(|(name, after)| {
                let earlier = before.threads.get(name).copied().unwrap_or(0);
                (name.clone(), ms(after.saturating_sub(earlier)))
            })
            .filter(|(_, ms)| *ms > 0.0)
            .collect();
        groups.sort_by(|a, b| b.1.total_cmp(&a.1));
        (
            ms(self.total.saturating_sub(before.total)),
            groups,
            self.switches.saturating_sub(before.switches),
        )
    }
}

/// The thread groups that spent at least 1 % of a phase's CPU, as `name ms (share)`.
pub fn threads_column(threads: &[(String, f64)]) -> String {
    let total: f64 = threads.iter().map(|(_, ms)| ms).sum();
    threads
        .iter()
        .filter(|(_, ms)| *ms >= total / 100.0)
        .map(|(name, ms)| format!("{name} {ms:.0} ({:.0} %)", ms * 100.0 / total))
        .collect::<Vec<_>>()
        .join(", ")
}
