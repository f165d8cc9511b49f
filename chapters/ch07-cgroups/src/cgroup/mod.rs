//! Cgroups: one handle over v2 (unified) and v1 (legacy, or hybrid with
//! cgroup2 at /sys/fs/cgroup/unified), picked by statfs as runc and youki do.
//!
//! Each version is a module of its own, speaking its own files ([`v2`],
//! [`v1`]): the file logic takes the cgroup's directory as a parameter so
//! that it is unit-tested in a temp dir, and each file's name is a constant
//! there, spelled once. [`Cgroup`] is the one handle the chapter uses: an
//! enum of the two versions' cgroups, since the set is closed (two
//! versions, known at compile time) and the one thing they do differently,
//! how a container gets in, is the lesson: the chapter matches on it.
//! Where the workshop's cgroups go:
//! - v2: `/sys/fs/cgroup/workshop/PID`, under one workshop parent whose
//!   `cgroup.subtree_control` enables cpu, pids and memory for it;
//! - v1: `<hierarchy>/<this process's own cgroup>/workshop-PID`, beneath the
//!   cgroup the tool already lives in, in each controller's hierarchy.
//!
//! A [`Cgroup`] removes its directories when dropped; [`reclaim_stale`]
//! removes empty ones that a killed run left.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use workshop::error::hinted;

mod limits;
pub mod v1;
pub mod v2;

pub use limits::{parse_pids_limit, parse_size, CpuQuota, Limits, MemoryLimit, MAX_PIDS_LIMIT};

pub const ROOT: &str = "/sys/fs/cgroup";

// The files both versions name alike (in each hierarchy, on v1).
pub const PIDS_MAX: &str = "pids.max";
pub const PIDS_CURRENT: &str = "pids.current";
pub const PIDS_EVENTS: &str = "pids.events";
/// The processes of a cgroup: writing a PID moves that whole process.
pub const CGROUP_PROCS: &str = "cgroup.procs";

/// Which cgroup version runs the controllers on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// cgroup2 mounted at /sys/fs/cgroup: one tree, every controller.
    V2,
    /// cgroup v1: one hierarchy per controller under /sys/fs/cgroup/<name>
    /// (legacy, or hybrid with an empty cgroup2 at /sys/fs/cgroup/unified).
    V1,
}

/// statfs(/sys/fs/cgroup): cgroup2 means v2; a tmpfs holding v1 hierarchies means v1.
pub fn detect() -> Result<Version> {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
    let fs = statfs(ROOT).with_context(|| format!("failed to statfs {ROOT}"))?;
    if fs.filesystem_type() == CGROUP2_SUPER_MAGIC {
        Ok(Version::V2)
    } else if fs.filesystem_type() == TMPFS_MAGIC {
        Ok(Version::V1)
    } else {
        Err(hinted(
            format!("{ROOT} is neither cgroup2 nor a tmpfs of cgroup v1 hierarchies"),
            "mount cgroups: `mount -t cgroup2 none /sys/fs/cgroup` (systemd does this at boot)",
        ))
    }
}

/// Write `value` to a cgroup's `file`, naming both when it fails.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value)
        .with_context(|| format!("failed to write {value:?} to {}", path.display()))
}

fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))
}

/// The value after `key` in a flat-keyed file (`usage_usec 1234`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The controllers a set of limits needs, by their names in the kernel.
pub fn controllers_for(limits: &Limits) -> Vec<&'static str> {
    let mut names = vec!["cpu"]; // always: its usage counter measures the container
    if limits.pids.is_some() {
        names.push("pids");
    }
    if limits.memory.is_some() {
        names.push("memory");
    }
    names
}

/// One container's cgroup, on whichever version this machine runs; its
/// directories are removed when it is dropped.
#[derive(Debug)]
pub enum Cgroup {
    V2(v2::Cgroup),
    V1(v1::Cgroup),
}

impl Cgroup {
    /// Check the controllers exist, create the cgroup, and write the limits.
    /// Nothing is created if a controller is missing.
    pub fn create(limits: &Limits) -> Result<Cgroup> {
        Ok(match detect()? {
            Version::V2 => Cgroup::V2(v2::Cgroup::create(limits)?),
            Version::V1 => Cgroup::V1(v1::Cgroup::create(limits)?),
        })
    }

    /// The directory of this cgroup in `controller`'s hierarchy (one directory on v2).
    pub fn dir(&self, controller: &str) -> Result<&Path> {
        match self {
            Cgroup::V2(c) => c.dir(controller),
            Cgroup::V1(c) => c.dir(controller),
        }
    }

    /// The distinct directories of this cgroup.
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V2(c) => c.paths(),
            Cgroup::V1(c) => c.paths(),
        }
    }

    /// The path of `file` (e.g. "pids.max") in `controller`'s directory, for showing it.
    pub fn file(&self, controller: &str, file: &str) -> Result<PathBuf> {
        Ok(self.dir(controller)?.join(file))
    }

    /// CPU time the cgroup has used so far.
    pub fn cpu_usage(&self) -> Result<Duration> {
        match self {
            Cgroup::V2(c) => v2::cpu_usage(c.dir("cpu")?),
            Cgroup::V1(c) => v1::cpu_usage(c.dir("cpuacct")?),
        }
    }

    /// How many processes the OOM killer has killed in the cgroup.
    pub fn oom_kills(&self) -> Result<u64> {
        match self {
            Cgroup::V2(c) => v2::oom_kills(c.dir("memory")?),
            Cgroup::V1(c) => v1::oom_kills(c.dir("memory")?),
        }
    }
}

/// This process's own /proc/self/FILE (`mountinfo`, `cgroup`).
fn read_proc_self(file: &str) -> Result<String> {
    read(Path::new("/proc/self"), file)
}

/// A container's own cgroup: it must not exist yet (one that does belongs to
/// another container of this tool, whose limits it would share).
pub fn make_new_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir(dir).with_context(|| format!("failed to mkdir {}", dir.display()))
}

/// A directory that may already be there (the workshop's v2 parent).
fn make_dir(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("failed to mkdir {}", dir.display())),
    }
}

/// rmdir a cgroup, retrying for up to two seconds: the last processes of a
/// container may take a moment to leave after it is reaped (EBUSY).
pub fn remove_dir_patiently(dir: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // EBUSY while its last processes leave: try again, for a while.
            Err(_) if start.elapsed() < Duration::from_secs(2) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).with_context(|| format!("failed to rmdir {}", dir.display())),
        }
    }
}

fn missing_controller(controller: &str, version: Version) -> anyhow::Error {
    let (what, hint) = match version {
        Version::V2 => (
            format!("this kernel offers no {controller} controller in {ROOT}/{}", v2::CONTROLLERS),
            "a kernel built with it (CONFIG_CGROUP_SCHED / CONFIG_CGROUP_PIDS / CONFIG_MEMCG), or boot with it enabled",
        ),
        Version::V1 => (
            format!("no cgroup v1 hierarchy is mounted for the {controller} controller"),
            "mount it (`mount -t cgroup -o CONTROLLER cgroup /sys/fs/cgroup/CONTROLLER`), or boot with cgroup v2",
        ),
    };
    hinted(what, hint)
}

/// The directory of process `pid`'s cgroup for `controller`, from
/// /proc/PID/cgroup: what the kernel says, for tests and for showing.
pub fn dir_of(pid: u32, controller: &str) -> Result<PathBuf> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("failed to read /proc/{pid}/cgroup"))?;
    match detect()? {
        Version::V2 => v2::dir_in(&cgroups),
        Version::V1 => v1::home(controller, &read_proc_self("mountinfo")?, &cgroups)
            .with_context(|| format!("no {controller} hierarchy")),
    }
}

/// Every workshop cgroup directory on the machine (for the host snapshot, and
/// for [`reclaim_stale`]): v2 the workshop parent and what is in it; v1
/// `workshop-*` beneath this process's cgroup in each hierarchy.
pub fn workshop_dirs() -> Vec<PathBuf> {
    let mut out = match detect() {
        Ok(Version::V2) => v2::workshop_dirs(),
        Ok(Version::V1) => v1::workshop_dirs(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// The run of the tool a workshop cgroup directory belongs to, by its PID:
/// `.../workshop-PID` on v1, `/sys/fs/cgroup/workshop/PID` on v2; none for
/// v2's shared parent, or for a directory that is not the workshop's.
pub fn run_of(dir: &Path) -> Option<u32> {
    let name = dir.file_name()?.to_str()?;
    if let Some(pid) = name.strip_prefix(v1::PREFIX) {
        return pid.parse().ok();
    }
    if dir.parent() == Some(v2::parent().as_path()) {
        return name.parse().ok();
    }
    None
}

/// Remove the empty workshop cgroups of runs that are gone (SIGKILLed tools).
/// Returns what it removed. A cgroup that still holds processes is left alone.
pub fn reclaim_stale() -> Result<Vec<PathBuf>> {
    let version = detect()?;
    // A cgroup named after this very process is an earlier run's (its PID was
    // reused): this run has not made its own yet, and must make it new.
    let gone = |pid: u32| pid == std::process::id() || !Path::new(&format!("/proc/{pid}")).exists();
    let removed: Vec<PathBuf> = workshop_dirs()
        .into_iter()
        .filter(|d| run_of(d).is_some_and(gone))
        .filter(|d| std::fs::remove_dir(d).is_ok())
        .collect();
    // v2: the shared parent goes too once no container uses it (it fails,
    // harmlessly, while one does).
    let parent = v2::parent();
    if version == Version::V2 && !removed.is_empty() && std::fs::remove_dir(&parent).is_ok() {
        return Ok(removed.into_iter().chain([parent]).collect());
    }
    Ok(removed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh directory to play a cgroup in.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cgroup-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_workshop_cgroup_names_its_run() {
        let run = |d: &str| run_of(Path::new(d));
        assert_eq!(run("/sys/fs/cgroup/pids/user.slice/workshop-99"), Some(99));
        assert_eq!(run("/sys/fs/cgroup/workshop/123"), Some(123));
        assert_eq!(run("/sys/fs/cgroup/workshop"), None);
        assert_eq!(run("/sys/fs/cgroup/pids/123"), None);
        assert_eq!(run("/sys/fs/cgroup/pids/workshop-x"), None);
    }
}
