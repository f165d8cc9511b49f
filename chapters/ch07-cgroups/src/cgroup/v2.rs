//! cgroup v2 (unified): one tree at /sys/fs/cgroup, every controller in it.
//! The workshop's cgroups are `/sys/fs/cgroup/workshop/PID`, under one
//! workshop parent whose `cgroup.subtree_control` enables cpu, pids and
//! memory for them.

use super::{
    controllers_for, keyed, make_dir, make_new_dir, missing_controller, read, remove_dir_patiently,
    write, CpuQuota, Limits, Version, PIDS_MAX, ROOT,
};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use workshop::error::hinted;

// ANCHOR: v2_limits
pub const CPU_MAX: &str = "cpu.max";
pub const MEMORY_MAX: &str = "memory.max";
pub const MEMORY_SWAP_MAX: &str = "memory.swap.max";

/// `cpu.max` = "QUOTA PERIOD"; `pids.max`; `memory.max`, and no swap.
pub fn set_limits(dir: &Path, limits: &Limits) -> Result<()> {
    if let Some(cpu) = limits.cpu {
        write(dir, CPU_MAX, &cpu_max(cpu))?;
    }
    if let Some(pids) = limits.pids {
        write(dir, PIDS_MAX, &pids.to_string())?;
    }
    if let Some(memory) = limits.memory {
        write(dir, MEMORY_MAX, &memory.bytes().to_string())?;
        if dir.join(MEMORY_SWAP_MAX).exists() {
            write(dir, MEMORY_SWAP_MAX, "0")?; // the limit is on memory, not memory + swap
        }
    }
    Ok(())
}

/// What `cpu.max` holds for a quota: "20000 100000".
pub fn cpu_max(cpu: CpuQuota) -> String {
    format!("{} {}", cpu.quota_us(), cpu.period_us())
}
// ANCHOR_END: v2_limits

pub const CPU_STAT: &str = "cpu.stat";
pub const MEMORY_EVENTS: &str = "memory.events";
/// The controllers a cgroup offers its children.
pub const CONTROLLERS: &str = "cgroup.controllers";
/// The controllers a cgroup enables for its children.
pub const SUBTREE_CONTROL: &str = "cgroup.subtree_control";
/// The workshop's parent, beneath [`ROOT`]; each container's cgroup is named
/// after the PID of its tool, beneath it.
pub const PARENT: &str = "workshop";

/// `/sys/fs/cgroup/workshop`: the parent of every workshop cgroup.
pub fn parent() -> PathBuf {
    Path::new(ROOT).join(PARENT)
}

/// Let child cgroups use these controllers: `+cpu +pids +memory` in cgroup.subtree_control.
pub fn enable_controllers(dir: &Path, controllers: &[&str]) -> Result<()> {
    let wanted: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    write(dir, SUBTREE_CONTROL, &wanted.join(" "))
}

/// CPU time used by the cgroup: `usage_usec` in cpu.stat.
pub fn cpu_usage(dir: &Path) -> Result<Duration> {
    let stat = read(dir, CPU_STAT)?;
    keyed(&stat, "usage_usec")
        .map(Duration::from_micros)
        .with_context(|| format!("no usage_usec in {CPU_STAT}"))
}

/// How often the OOM killer struck in the cgroup: `oom_kill` in memory.events.
pub fn oom_kills(dir: &Path) -> Result<u64> {
    Ok(keyed(&read(dir, MEMORY_EVENTS)?, "oom_kill").unwrap_or(0))
}

/// One container's cgroup on v2: one directory, every controller in it.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    /// The controllers enabled for it, by their names in the kernel.
    controllers: Vec<&'static str>,
    removed: bool,
}

impl Cgroup {
    /// Check the controllers are offered and enabled, create the workshop
    /// parent and the cgroup beneath it, and write the limits. Nothing is
    /// left if any of it fails (the parent stays only while another
    /// container uses it).
    pub fn create(limits: &Limits) -> Result<Cgroup> {
        let made = Cgroup::create_beneath(&parent(), limits);
        if made.is_err() {
            let _ = std::fs::remove_dir(parent()); // fails, harmlessly, while in use
        }
        made
    }

    fn create_beneath(parent: &Path, limits: &Limits) -> Result<Cgroup> {
        let root = Path::new(ROOT);
        let wanted = controllers_for(limits);
        let offered = read(root, CONTROLLERS)?;
        let enabled = read(root, SUBTREE_CONTROL)?;
        for c in &wanted {
            if !offered.split_whitespace().any(|o| o == *c) {
                return Err(missing_controller(c, Version::V2));
            }
            if !enabled.split_whitespace().any(|o| o == *c) {
                return Err(hinted(
                    format!("the {c} controller is not enabled in {ROOT}/{SUBTREE_CONTROL}"),
                    format!("enable it for child cgroups: `echo +{c} > {ROOT}/{SUBTREE_CONTROL}` (systemd does this at boot)"),
                ));
            }
        }
        let dir = parent.join(std::process::id().to_string());
        // The parent is shared, and the last run to end removes it: it can go
        // between our mkdir of it and of our cgroup in it (ENOENT), or while
        // we write its cgroup.subtree_control (ENODEV: a cgroup being
        // removed). Make it again, a few times; a parent that keeps
        // vanishing is an error.
        let mut vanished = 0;
        loop {
            make_dir(parent)?;
            match enable_controllers(parent, &wanted).and_then(|()| make_new_dir(&dir)) {
                Ok(()) => break,
                Err(e) if vanished < 5 && is_gone(&e) => vanished += 1,
                Err(e) => return Err(e),
            }
        }
        let cgroup = Cgroup {
            dir,
            controllers: wanted,
            removed: false,
        }; // from here on, removed when dropped
        set_limits(&cgroup.dir, limits)?;
        Ok(cgroup)
    }

    /// The cgroup's directory, if `controller` is enabled in it.
    pub fn dir(&self, controller: &str) -> Result<&Path> {
        if self.controllers.contains(&controller) {
            Ok(&self.dir)
        } else {
            Err(anyhow::anyhow!("no {controller} cgroup"))
        }
    }

    pub fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    /// The cgroup's directory, opened for clone3()'s CLONE_INTO_CGROUP.
    pub fn open_dir(&self) -> Result<std::os::fd::OwnedFd> {
        let file = std::fs::File::open(&self.dir)
            .with_context(|| format!("failed to open {}", self.dir.display()))?;
        Ok(file.into())
    }

    /// Remove the directory, and the workshop parent when no other container
    /// uses it.
    fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        remove_dir_patiently(&self.dir)?;
        let _ = std::fs::remove_dir(parent()); // fails, harmlessly, while in use
        self.removed = true;
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Whether an error is, at its root, ENOENT (a directory that is gone) or
/// ENODEV (a file of a cgroup that is being removed).
fn is_gone(err: &anyhow::Error) -> bool {
    err.root_cause()
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| {
            e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ENODEV)
        })
}

/// The workshop parent and the cgroups in it.
pub fn workshop_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let parent = parent();
    if parent.exists() {
        out.push(parent.clone());
        if let Ok(entries) = std::fs::read_dir(&parent) {
            out.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
    }
    out
}

/// The directory of the cgroup a process is in, from its /proc/PID/cgroup
/// (`0::/workshop/123`).
pub fn dir_in(proc_pid_cgroup: &str) -> Result<PathBuf> {
    let path = proc_pid_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .context("no cgroup v2 line")?;
    Ok(Path::new(ROOT).join(path.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_dir;
    use super::super::MemoryLimit;
    use super::*;

    #[test]
    fn v2_limits_in_their_files() {
        let dir = temp_dir("v2");
        std::fs::write(dir.join("memory.swap.max"), "max").unwrap();
        let limits = Limits {
            cpu: Some(CpuQuota::percent(20)),
            pids: Some(20),
            memory: Some(MemoryLimit::mib(64)),
        };
        set_limits(&dir, &limits).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("cpu.max"), "20000 100000");
        assert_eq!(read("pids.max"), "20");
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("memory.swap.max"), "0");
        std::fs::write(
            dir.join("cpu.stat"),
            "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
        )
        .unwrap();
        assert_eq!(cpu_usage(&dir).unwrap(), Duration::from_millis(1500));
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(oom_kills(&dir).unwrap(), 1);
        enable_controllers(&dir, &["cpu", "pids"]).unwrap();
        assert_eq!(read("cgroup.subtree_control"), "+cpu +pids");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn v2_dir_from_proc_pid_cgroup() {
        assert_eq!(
            dir_in("0::/workshop/123\n").unwrap(),
            Path::new("/sys/fs/cgroup/workshop/123")
        );
        assert!(dir_in("4:memory:/x\n").is_err());
    }
}
