//! cgroup v1 (legacy, or hybrid with an empty cgroup2 at
//! /sys/fs/cgroup/unified): one hierarchy per controller. The workshop's
//! cgroups are `<hierarchy>/<this process's own cgroup>/workshop-PID`,
//! beneath the cgroup the tool already lives in, in each controller's
//! hierarchy.

use super::{
    controllers_for, keyed, make_new_dir, missing_controller, read, remove_dir_patiently, write,
    CpuQuota, Limits, Version, PIDS_MAX,
};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

// ANCHOR: v1_limits
pub const CPU_CFS_PERIOD_US: &str = "cpu.cfs_period_us";
pub const CPU_CFS_QUOTA_US: &str = "cpu.cfs_quota_us";
pub const MEMORY_LIMIT_IN_BYTES: &str = "memory.limit_in_bytes";
pub const MEMORY_MEMSW_LIMIT_IN_BYTES: &str = "memory.memsw.limit_in_bytes";

/// Each limit in its controller's own hierarchy: `cpu.cfs_period_us` and
/// `cpu.cfs_quota_us`; `pids.max`; `memory.limit_in_bytes` (and memsw, so
/// that swap does not stretch it).
pub fn set_cpu(dir: &Path, cpu: CpuQuota) -> Result<()> {
    write(dir, CPU_CFS_PERIOD_US, &cpu.period_us().to_string())?;
    write(dir, CPU_CFS_QUOTA_US, &cpu.quota_us().to_string())
}

pub fn set_pids(dir: &Path, pids: u64) -> Result<()> {
    write(dir, PIDS_MAX, &pids.to_string())
}

pub fn set_memory(dir: &Path, bytes: u64) -> Result<()> {
    write(dir, MEMORY_LIMIT_IN_BYTES, &bytes.to_string())?;
    if dir.join(MEMORY_MEMSW_LIMIT_IN_BYTES).exists() {
        write(dir, MEMORY_MEMSW_LIMIT_IN_BYTES, &bytes.to_string())?;
    }
    Ok(())
}
// ANCHOR_END: v1_limits

pub const CPUACCT_USAGE: &str = "cpuacct.usage";
pub const MEMORY_OOM_CONTROL: &str = "memory.oom_control";
/// The threads of a cgroup: writing a thread's ID (or 0, "me") moves that
/// thread alone.
pub const TASKS: &str = "tasks";
/// Each container's cgroup is `workshop-PID`, PID the tool's.
pub const PREFIX: &str = "workshop-";

/// CPU time used: `cpuacct.usage`, in nanoseconds.
pub fn cpu_usage(cpuacct_dir: &Path) -> Result<Duration> {
    let text = read(cpuacct_dir, CPUACCT_USAGE)?;
    Ok(Duration::from_nanos(text.trim().parse().with_context(
        || format!("{CPUACCT_USAGE} is not a number"),
    )?))
}

/// `oom_kill N` in memory.oom_control.
pub fn oom_kills(dir: &Path) -> Result<u64> {
    Ok(keyed(&read(dir, MEMORY_OOM_CONTROL)?, "oom_kill").unwrap_or(0))
}

/// Where `controller`'s hierarchy is mounted, joined with this process's
/// cgroup in it: the directory the workshop's cgroup goes beneath.
/// `mountinfo` is /proc/self/mountinfo, `cgroups` is /proc/self/cgroup.
pub fn home(controller: &str, mountinfo: &str, cgroups: &str) -> Option<PathBuf> {
    // 4:memory:/process_api/43c0...   (or 3:cpu,cpuacct:/)
    let own = cgroups.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        names.split(',').any(|n| n == controller).then_some(path)
    })?;
    // 30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory
    let (root, mount_point) = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut fields = right.split_whitespace();
        if fields.next()? != "cgroup" {
            return None;
        }
        let options = fields.nth(1)?;
        options.split(',').any(|o| o == controller).then(|| {
            let f: Vec<&str> = left.split_whitespace().collect();
            (f[3].to_string(), f[4].to_string())
        })
    })?;
    let relative = own
        .strip_prefix(root.as_str())
        .unwrap_or(own)
        .trim_start_matches('/');
    Some(Path::new(&mount_point).join(relative))
}

/// One container's cgroup on v1: a directory in each controller's hierarchy.
#[derive(Debug)]
pub struct Cgroup {
    /// (controller, directory) pairs; cpu and cpuacct may share one.
    dirs: Vec<(&'static str, PathBuf)>,
    removed: bool,
}

impl Cgroup {
    /// Find each controller's hierarchy (all of them, before anything is
    /// made), make the cgroup beneath our own in each, and write the limits.
    /// What was made is removed if any of it fails.
    pub fn create(limits: &Limits) -> Result<Cgroup> {
        let mountinfo = super::read_proc_self("mountinfo")?;
        let own = super::read_proc_self("cgroup")?;
        let id = std::process::id();
        let mut homes = Vec::new();
        // cpuacct too: its usage counter measures the container
        for c in controllers_for(limits).into_iter().chain(["cpuacct"]) {
            let home =
                home(c, &mountinfo, &own).ok_or_else(|| missing_controller(c, Version::V1))?;
            homes.push((c, home.join(format!("{PREFIX}{id}"))));
        }
        let mut cgroup = Cgroup {
            dirs: Vec::new(),
            removed: false,
        };
        for (c, dir) in homes {
            // cpu and cpuacct may share a hierarchy (cpu,cpuacct): one directory then.
            if !cgroup.dirs.iter().any(|(_, d)| *d == dir) {
                make_new_dir(&dir)?;
            }
            cgroup.dirs.push((c, dir));
        }
        if let Some(cpu) = limits.cpu {
            set_cpu(cgroup.dir("cpu")?, cpu)?;
        }
        if let Some(pids) = limits.pids {
            set_pids(cgroup.dir("pids")?, pids)?;
        }
        if let Some(memory) = limits.memory {
            set_memory(cgroup.dir("memory")?, memory.bytes())?;
        }
        Ok(cgroup)
    }

    /// The directory of this cgroup in `controller`'s hierarchy.
    pub fn dir(&self, controller: &str) -> Result<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d.as_path())
            .with_context(|| format!("no {controller} cgroup"))
    }

    /// The distinct directories of this cgroup.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for (_, d) in &self.dirs {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }

    // ANCHOR: join
    /// cgroup v1: open `tasks` in each hierarchy, the files through which a
    /// thread moves itself into the cgroup. The tool opens them before the
    /// container exists; the container's first act is [`Tasks::move_self_in`].
    ///
    /// Why the container moves itself rather than being moved: `echo PID >
    /// cgroup.procs` moves a whole process, and to do that safely the kernel
    /// holds off every fork and exit on the machine with a global lock whose
    /// taking waits for an RCU grace period (milliseconds). A thread that
    /// moves only itself needs no such lock. (v2 has no `tasks`: there the
    /// container is started in its cgroup, with clone3() and CLONE_INTO_CGROUP.)
    pub fn open_tasks(&self) -> Result<Tasks> {
        let mut files = Vec::new();
        for dir in self.paths() {
            let path = dir.join(TASKS);
            let file = std::fs::OpenOptions::new() // O_CLOEXEC, as std opens every file
                .write(true)
                .open(&path)
                .with_context(|| format!("failed to open {}", path.display()))?;
            files.push((path, file));
        }
        Ok(Tasks { files })
    }
    // ANCHOR_END: join

    /// Remove the directories. The last processes of a container may take a
    /// moment to leave after it is reaped (EBUSY): each is retried for up to
    /// two seconds.
    fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        for dir in self.paths() {
            remove_dir_patiently(&dir)?;
        }
        self.removed = true;
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// The open `tasks` files of a v1 cgroup: see [`Cgroup::open_tasks`].
#[derive(Debug)]
pub struct Tasks {
    files: Vec<(PathBuf, std::fs::File)>,
}

impl Tasks {
    // ANCHOR: join_self
    /// In the container, before it runs anything: `echo 0 > tasks` in each
    /// hierarchy. `0` means "the thread that writes this", whatever PID
    /// namespace it is in. The container has one thread, so all of it moves,
    /// and every process it starts afterwards is born in the cgroup.
    pub fn move_self_in(&self) -> Result<()> {
        for (path, file) in &self.files {
            nix::unistd::write(file, b"0")
                .with_context(|| format!("failed to write 0 to {}", path.display()))?;
        }
        Ok(())
    }
    // ANCHOR_END: join_self
}

/// `workshop-*` beneath this process's cgroup in each hierarchy.
pub fn workshop_dirs() -> Vec<PathBuf> {
    let mountinfo = super::read_proc_self("mountinfo").unwrap_or_default();
    let own = super::read_proc_self("cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for c in ["cpu", "cpuacct", "pids", "memory"] {
        let Some(home) = home(c, &mountinfo, &own) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(&home) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(PREFIX) && !out.contains(&e.path()) {
                out.push(e.path());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_dir;
    use super::*;

    #[test]
    fn v1_limits_in_their_files() {
        let dir = temp_dir("v1");
        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
        set_cpu(&dir, CpuQuota::percent(20)).unwrap();
        set_pids(&dir, 20).unwrap();
        set_memory(&dir, 32 << 20).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("cpu.cfs_quota_us"), "20000");
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(read("pids.max"), "20");
        assert_eq!(read("memory.limit_in_bytes"), "33554432");
        assert_eq!(read("memory.memsw.limit_in_bytes"), "33554432");
        std::fs::write(dir.join("cpuacct.usage"), "2500000000\n").unwrap();
        assert_eq!(cpu_usage(&dir).unwrap(), Duration::from_millis(2500));
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        assert_eq!(oom_kills(&dir).unwrap(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn v1_home_is_beneath_our_own_cgroup() {
        let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
32 25 0:28 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
33 25 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let cgroups = "5:pids:/\n4:memory:/process_api/43c0\n2:cpu,cpuacct:/user.slice\n0::/\n";
        assert_eq!(
            home("memory", mountinfo, cgroups).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/43c0")
        );
        assert_eq!(
            home("cpu", mountinfo, cgroups).unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice")
        );
        assert_eq!(
            home("cpuacct", mountinfo, cgroups).unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice")
        );
        assert_eq!(
            home("pids", mountinfo, cgroups).unwrap(),
            Path::new("/sys/fs/cgroup/pids")
        );
        assert_eq!(home("blkio", mountinfo, cgroups), None);
        // A mount whose root is not / (inside a container): strip the root.
        let nested = "40 25 0:26 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            home("memory", nested, "4:memory:/docker/abc\n").unwrap(),
            Path::new("/sys/fs/cgroup/memory")
        );
    }
}
