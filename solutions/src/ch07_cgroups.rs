//! Chapter 7 exercises, solved.

use anyhow::{Context, Result};
use std::path::Path;

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value)
        .with_context(|| format!("failed to write {value:?} to {}", path.display()))
}

/// Exercise 7.1: write a CPU limit, in v2's words and in v1's.
pub fn write_cpu_limit(dir: &Path, cpus: f64, v2: bool) -> Result<()> {
    let period = 100_000u64;
    let quota = (cpus * period as f64).round() as u64;
    if v2 {
        write(dir, "cpu.max", &format!("{quota} {period}"))
    } else {
        write(dir, "cpu.cfs_period_us", &period.to_string())?;
        write(dir, "cpu.cfs_quota_us", &quota.to_string())
    }
}

/// Exercise 7.2: limit the tasks of a cgroup and put a process in it.
pub fn limit_tasks(dir: &Path, max: u64, pid: nix::unistd::Pid) -> Result<()> {
    write(dir, "pids.max", &max.to_string())?;
    write(dir, "cgroup.procs", &pid.to_string())
}

/// Exercise 7.3: count the forks the pids limit refused.
pub fn refused_forks(dir: &Path) -> Result<u64> {
    let path = dir.join("pids.events");
    let events = std::fs::read_to_string(&path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let count = events
        .lines()
        .find_map(|line| line.strip_prefix("max "))
        .with_context(|| format!("no `max` line in {}: {events:?}", path.display()))?;
    count
        .trim()
        .parse()
        .with_context(|| format!("`max {count}` in {} is not a count", path.display()))
}
