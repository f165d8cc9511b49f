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
/// - `cgroup.procs` moves the whole process, every thread of it; v1's
///   `tasks` moves one thread only, and v2 has no `tasks` file at all.
pub fn limit_tasks(dir: &Path, max: u64, pid: nix::unistd::Pid) -> Result<()> {
    // TODO: write pids.max, then cgroup.procs.
    todo!("exercise 7.2: set pids.max and attach the process")
}

/// Exercise 7.3: count the forks the pids limit refused.
///
/// The chapter sets `pids.max` and watches the fork bomb fail; the kernel
/// counts each refusal too, in the cgroup's `pids.events` file, one
/// `KEY VALUE` pair per line:
///
/// ```text
/// max 6
/// ```
///
/// Return that `max` count for the cgroup directory `dir` (v2 or v1's pids
/// hierarchy: the file is the same). The check makes a cgroup, lets a fork
/// bomb hit its limit, and compares your count with the forks that failed.
///
/// Hints:
/// - find the line whose first word is `max`; a file read ends with `\n`.
/// - newer kernels may add other lines (`max.imposed 0`): look for the key,
///   not for the first number in the file.
pub fn refused_forks(dir: &Path) -> Result<u64> {
    // TODO: read pids.events and return the number after `max`.
    todo!("exercise 7.3: read the `max` count of pids.events")
}
