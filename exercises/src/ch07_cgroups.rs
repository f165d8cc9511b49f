//! Chapter 7 exercises: cgroup limits.
//!
//! Check your work with `cargo test -p exercises ch07`.

use anyhow::Result;
use std::path::Path;

/// Exercise 7.1: write a CPU limit, in v2's words and in v1's.
///
/// `cpus` is a share of one CPU (0.2 = 20%), over a period of 100000 µs.
/// - `v2 == true`: write `cpu.max` in `dir`: "QUOTA PERIOD", e.g. "20000 100000".
/// - `v2 == false`: write `cpu.cfs_period_us` ("100000") and then
///   `cpu.cfs_quota_us` ("20000") in `dir`.
///
/// The check calls it on a temporary directory and reads the files back: the
/// file logic is the same whether `dir` is in /sys/fs/cgroup or not.
///
/// Hints:
/// - quota = (cpus × 100000) rounded to a whole number of µs.
/// - `std::fs::write(dir.join("cpu.max"), format!(...))`.
pub fn write_cpu_limit(dir: &Path, cpus: f64, v2: bool) -> Result<()> {
    // TODO: compute the quota, then write the files of the right version.
    todo!("exercise 7.1: write cpu.max (v2) or cpu.cfs_period_us + cpu.cfs_quota_us (v1)")
}

/// Exercise 7.2: limit the tasks of a cgroup and put a process in it.
///
/// `dir` is an existing cgroup directory of the pids controller (v2 or v1:
/// the files are named the same). Write `max` into `pids.max`, then move
/// process `pid` into the cgroup. The check forks from that process and
/// counts how many forks the kernel allows.
///
/// Hints:
/// - `pids.max` takes a number; `cgroup.procs` takes a PID.
/// - set the limit before you attach: the process may fork at once.
pub fn limit_tasks(dir: &Path, max: u64, pid: nix::unistd::Pid) -> Result<()> {
    // TODO: write pids.max, then cgroup.procs.
    todo!("exercise 7.2: set pids.max and attach the process")
}
