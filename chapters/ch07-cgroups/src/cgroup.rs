//! Cgroups: one handle over v2 (unified) and v1 (legacy, or hybrid with
//! cgroup2 at /sys/fs/cgroup/unified), picked by statfs as runc and youki do.
//!
//! The file logic takes the cgroup's directory as a parameter ([`v2`], [`v1`])
//! so that it is unit-tested in a temp dir; [`Cgroup`] puts it to work on the
//! real hierarchy. Where the workshop's cgroups go:
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

pub const ROOT: &str = "/sys/fs/cgroup";

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

/// `--cpus 0.2` as the kernel takes it: 20000 µs of CPU time per 100000 µs period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

impl CpuQuota {
    pub const PERIOD_US: u64 = 100_000;

    pub fn from_cpus(cpus: f64) -> CpuQuota {
        CpuQuota {
            quota_us: (cpus * Self::PERIOD_US as f64).round() as u64,
            period_us: Self::PERIOD_US,
        }
    }

    pub fn share(&self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }
}

/// The limits of one container; `None` leaves that controller alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub cpu: Option<CpuQuota>,
    pub pids: Option<u64>,
    pub memory: Option<u64>,
}

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
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

/// cgroup v2 files.
pub mod v2 {
    use super::*;

    // ANCHOR: v2_limits
    /// `cpu.max` = "QUOTA PERIOD"; `pids.max`; `memory.max`, and no swap.
    pub fn set_limits(dir: &Path, limits: &Limits) -> Result<()> {
        if let Some(cpu) = limits.cpu {
            write(
                dir,
                "cpu.max",
                &format!("{} {}", cpu.quota_us, cpu.period_us),
            )?;
        }
        if let Some(pids) = limits.pids {
            write(dir, "pids.max", &pids.to_string())?;
        }
        if let Some(bytes) = limits.memory {
            write(dir, "memory.max", &bytes.to_string())?;
            if dir.join("memory.swap.max").exists() {
                write(dir, "memory.swap.max", "0")?; // the limit is on memory, not memory + swap
            }
        }
        Ok(())
    }
    // ANCHOR_END: v2_limits

    /// Let child cgroups use these controllers: `+cpu +pids +memory` in cgroup.subtree_control.
    pub fn enable_controllers(dir: &Path, controllers: &[&str]) -> Result<()> {
        let wanted: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
        write(dir, "cgroup.subtree_control", &wanted.join(" "))
    }

    /// CPU time used by the cgroup: `usage_usec` in cpu.stat.
    pub fn cpu_usage(dir: &Path) -> Result<Duration> {
        let stat = read(dir, "cpu.stat")?;
        keyed(&stat, "usage_usec")
            .map(Duration::from_micros)
            .context("no usage_usec in cpu.stat")
    }

    /// How often the OOM killer struck in the cgroup: `oom_kill` in memory.events.
    pub fn oom_kills(dir: &Path) -> Result<u64> {
        Ok(keyed(&read(dir, "memory.events")?, "oom_kill").unwrap_or(0))
    }
}

/// cgroup v1 files: the same limits under their v1 names.
pub mod v1 {
    use super::*;

    // ANCHOR: v1_limits
    /// Each limit in its controller's own hierarchy: `cpu.cfs_period_us` and
    /// `cpu.cfs_quota_us`; `pids.max`; `memory.limit_in_bytes` (and memsw, so
    /// that swap does not stretch it).
    pub fn set_cpu(dir: &Path, cpu: CpuQuota) -> Result<()> {
        write(dir, "cpu.cfs_period_us", &cpu.period_us.to_string())?;
        write(dir, "cpu.cfs_quota_us", &cpu.quota_us.to_string())
    }

    pub fn set_pids(dir: &Path, pids: u64) -> Result<()> {
        write(dir, "pids.max", &pids.to_string())
    }

    pub fn set_memory(dir: &Path, bytes: u64) -> Result<()> {
        write(dir, "memory.limit_in_bytes", &bytes.to_string())?;
        if dir.join("memory.memsw.limit_in_bytes").exists() {
            write(dir, "memory.memsw.limit_in_bytes", &bytes.to_string())?;
        }
        Ok(())
    }
    // ANCHOR_END: v1_limits

    /// CPU time used: `cpuacct.usage`, in nanoseconds.
    pub fn cpu_usage(cpuacct_dir: &Path) -> Result<Duration> {
        let text = read(cpuacct_dir, "cpuacct.usage")?;
        Ok(Duration::from_nanos(
            text.trim()
                .parse()
                .context("cpuacct.usage is not a number")?,
        ))
    }

    /// `oom_kill N` in memory.oom_control.
    pub fn oom_kills(dir: &Path) -> Result<u64> {
        Ok(keyed(&read(dir, "memory.oom_control")?, "oom_kill").unwrap_or(0))
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
}

/// The controllers a set of limits needs, by their names in the kernel.
fn controllers_for(limits: &Limits) -> Vec<&'static str> {
    let mut names = vec!["cpu"]; // always: its usage counter measures the container
    if limits.pids.is_some() {
        names.push("pids");
    }
    if limits.memory.is_some() {
        names.push("memory");
    }
    names
}

/// One container's cgroup: a directory on v2, one per controller on v1.
#[derive(Debug)]
pub struct Cgroup {
    pub version: Version,
    /// (controller, directory) pairs; on v2 every controller shares one directory.
    dirs: Vec<(&'static str, PathBuf)>,
    removed: bool,
}

impl Cgroup {
    /// Check the controllers exist, create the cgroup, and write the limits.
    /// Nothing is created if a controller is missing.
    pub fn create(limits: &Limits) -> Result<Cgroup> {
        let version = detect()?;
        let id = std::process::id();
        let wanted = controllers_for(limits);
        let mut cgroup = Cgroup {
            version,
            dirs: Vec::new(),
            removed: false,
        };
        match version {
            Version::V2 => {
                let root = Path::new(ROOT);
                let offered = read(root, "cgroup.controllers")?;
                let enabled = read(root, "cgroup.subtree_control")?;
                for c in &wanted {
                    if !offered.split_whitespace().any(|o| o == *c) {
                        return Err(missing_controller(c, version));
                    }
                    if !enabled.split_whitespace().any(|o| o == *c) {
                        return Err(hinted(
                            format!("the {c} controller is not enabled in {ROOT}/cgroup.subtree_control"),
                            format!("enable it for child cgroups: `echo +{c} > {ROOT}/cgroup.subtree_control` (systemd does this at boot)"),
                        ));
                    }
                }
                let parent = root.join("workshop");
                make_dir(&parent)?;
                v2::enable_controllers(&parent, &wanted)?;
                let dir = parent.join(id.to_string());
                make_new_dir(&dir)?;
                cgroup.dirs = wanted.iter().map(|c| (*c, dir.clone())).collect();
                v2::set_limits(&dir, limits)?;
            }
            Version::V1 => {
                let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
                let own = std::fs::read_to_string("/proc/self/cgroup")?;
                let mut homes = Vec::new();
                for c in wanted.iter().copied().chain(["cpuacct"]) {
                    let home = v1::home(c, &mountinfo, &own)
                        .ok_or_else(|| missing_controller(c, version))?;
                    homes.push((c, home.join(format!("workshop-{id}"))));
                }
                for (c, dir) in homes {
                    // cpu and cpuacct may share a hierarchy (cpu,cpuacct): one directory then.
                    if !cgroup.dirs.iter().any(|(_, d)| *d == dir) {
                        make_new_dir(&dir)?;
                    }
                    cgroup.dirs.push((c, dir));
                }
                if let Some(cpu) = limits.cpu {
                    v1::set_cpu(cgroup.dir("cpu")?, cpu)?;
                }
                if let Some(pids) = limits.pids {
                    v1::set_pids(cgroup.dir("pids")?, pids)?;
                }
                if let Some(bytes) = limits.memory {
                    v1::set_memory(cgroup.dir("memory")?, bytes)?;
                }
            }
        }
        Ok(cgroup)
    }

    /// The directory of this cgroup in `controller`'s hierarchy (one directory on v2).
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

    /// The directory holding `file` (e.g. "pids.max"), for showing it.
    pub fn file(&self, controller: &str, file: &str) -> Result<PathBuf> {
        Ok(self.dir(controller)?.join(file))
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
            let path = dir.join("tasks");
            let file = std::fs::OpenOptions::new() // O_CLOEXEC, as std opens every file
                .write(true)
                .open(&path)
                .with_context(|| format!("failed to open {}", path.display()))?;
            files.push((path, file));
        }
        Ok(Tasks { files })
    }
    // ANCHOR_END: join

    /// The cgroup's directory, opened for clone3()'s CLONE_INTO_CGROUP (v2).
    pub fn open_dir(&self) -> Result<std::os::fd::OwnedFd> {
        let dir = self.dir("cpu")?;
        let file = std::fs::File::open(dir)
            .with_context(|| format!("failed to open {}", dir.display()))?;
        Ok(file.into())
    }

    /// CPU time the cgroup has used so far.
    pub fn cpu_usage(&self) -> Result<Duration> {
        match self.version {
            Version::V2 => v2::cpu_usage(self.dir("cpu")?),
            Version::V1 => v1::cpu_usage(self.dir("cpuacct")?),
        }
    }

    /// How many processes the OOM killer has killed in the cgroup.
    pub fn oom_kills(&self) -> Result<u64> {
        match self.version {
            Version::V2 => v2::oom_kills(self.dir("memory")?),
            Version::V1 => v1::oom_kills(self.dir("memory")?),
        }
    }

    /// Remove the directories. The last processes of a container may take a
    /// moment to leave after it is reaped (EBUSY): retry for up to two seconds.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        for dir in self.paths() {
            remove_dir_patiently(&dir)?;
        }
        if self.version == Version::V2 {
            // The shared parent goes too when no other container uses it.
            let _ = std::fs::remove_dir(Path::new(ROOT).join("workshop"));
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

/// A container's own cgroup: it must not exist yet (one that does belongs to
/// another container of this tool, whose limits it would share).
fn make_new_dir(dir: &Path) -> Result<()> {
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

fn remove_dir_patiently(dir: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if start.elapsed() < Duration::from_secs(2) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).with_context(|| format!("failed to rmdir {}", dir.display())),
        }
    }
}

fn missing_controller(controller: &str, version: Version) -> anyhow::Error {
    let (what, hint) = match version {
        Version::V2 => (
            format!("this kernel offers no {controller} controller in {ROOT}/cgroup.controllers"),
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
        Version::V2 => {
            let path = cgroups
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .context("no cgroup v2 line")?;
            Ok(Path::new(ROOT).join(path.trim_start_matches('/')))
        }
        Version::V1 => {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
            v1::home(controller, &mountinfo, &cgroups)
                .with_context(|| format!("no {controller} hierarchy"))
        }
    }
}

/// Every workshop cgroup directory on the machine (for the host snapshot, and
/// for [`reclaim_stale`]): v2 the workshop parent and what is in it; v1
/// `workshop-*` beneath this process's cgroup in each hierarchy.
pub fn workshop_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    match detect() {
        Ok(Version::V2) => {
            let parent = Path::new(ROOT).join("workshop");
            if parent.exists() {
                out.push(parent.clone());
                if let Ok(entries) = std::fs::read_dir(&parent) {
                    out.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
                }
            }
        }
        Ok(Version::V1) => {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            for c in ["cpu", "cpuacct", "pids", "memory"] {
                let Some(home) = v1::home(c, &mountinfo, &own) else {
                    continue;
                };
                let Ok(entries) = std::fs::read_dir(&home) else {
                    continue;
                };
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with("workshop-")
                        && !out.contains(&e.path())
                    {
                        out.push(e.path());
                    }
                }
            }
        }
        Err(_) => {}
    }
    out.sort();
    out
}

/// Remove the empty workshop cgroups of runs that are gone (SIGKILLed tools).
/// Returns what it removed. A cgroup that still holds processes is left alone.
pub fn reclaim_stale() -> Result<Vec<PathBuf>> {
    let version = detect()?;
    // The run a directory belongs to: `workshop-PID` on v1, `workshop/PID` on
    // v2 (the v2 parent itself belongs to none).
    let owner = |dir: &Path| -> Option<u32> {
        let name = dir.file_name()?.to_str()?;
        match version {
            Version::V1 => name.strip_prefix("workshop-")?.parse().ok(),
            Version::V2 => name.parse().ok(),
        }
    };
    // A cgroup named after this very process is an earlier run's (its PID was
    // reused): this run has not made its own yet, and must make it new.
    let gone = |pid: u32| pid == std::process::id() || !Path::new(&format!("/proc/{pid}")).exists();
    let removed: Vec<PathBuf> = workshop_dirs()
        .into_iter()
        .filter(|d| owner(d).is_some_and(gone))
        .filter(|d| std::fs::remove_dir(d).is_ok())
        .collect();
    // v2: the shared parent goes too once no container uses it (it fails,
    // harmlessly, while one does).
    let parent = Path::new(ROOT).join("workshop");
    if version == Version::V2 && !removed.is_empty() && std::fs::remove_dir(&parent).is_ok() {
        return Ok(removed.into_iter().chain([parent]).collect());
    }
    Ok(removed)
}

/// Parse a size the way docker does: `64M`, `512k`, `1G`, `1048576` (bytes);
/// `b`, `k`, `m`, `g` in either case, with an optional `B` or `iB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[digits.len()..];
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 64M, 512k or 1G"))?;
    let multiplier: u64 = match unit
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(format!("{unit:?} in {text:?} is not a unit: use k, m or g")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cgroup-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn v2_limits_in_their_files() {
        let dir = temp_dir("v2");
        std::fs::write(dir.join("memory.swap.max"), "max").unwrap();
        let limits = Limits {
            cpu: Some(CpuQuota::from_cpus(0.2)),
            pids: Some(20),
            memory: Some(64 << 20),
        };
        v2::set_limits(&dir, &limits).unwrap();
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
        assert_eq!(v2::cpu_usage(&dir).unwrap(), Duration::from_millis(1500));
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(v2::oom_kills(&dir).unwrap(), 1);
        v2::enable_controllers(&dir, &["cpu", "pids"]).unwrap();
        assert_eq!(read("cgroup.subtree_control"), "+cpu +pids");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn v1_limits_in_their_files() {
        let dir = temp_dir("v1");
        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
        v1::set_cpu(&dir, CpuQuota::from_cpus(0.2)).unwrap();
        v1::set_pids(&dir, 20).unwrap();
        v1::set_memory(&dir, 32 << 20).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("cpu.cfs_quota_us"), "20000");
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(read("pids.max"), "20");
        assert_eq!(read("memory.limit_in_bytes"), "33554432");
        assert_eq!(read("memory.memsw.limit_in_bytes"), "33554432");
        std::fs::write(dir.join("cpuacct.usage"), "2500000000\n").unwrap();
        assert_eq!(v1::cpu_usage(&dir).unwrap(), Duration::from_millis(2500));
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        assert_eq!(v1::oom_kills(&dir).unwrap(), 3);
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
            v1::home("memory", mountinfo, cgroups).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/43c0")
        );
        assert_eq!(
            v1::home("cpu", mountinfo, cgroups).unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice")
        );
        assert_eq!(
            v1::home("cpuacct", mountinfo, cgroups).unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice")
        );
        assert_eq!(
            v1::home("pids", mountinfo, cgroups).unwrap(),
            Path::new("/sys/fs/cgroup/pids")
        );
        assert_eq!(v1::home("blkio", mountinfo, cgroups), None);
        // A mount whose root is not / (inside a container): strip the root.
        let nested = "40 25 0:26 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            v1::home("memory", nested, "4:memory:/docker/abc\n").unwrap(),
            Path::new("/sys/fs/cgroup/memory")
        );
    }

    #[test]
    fn sizes_and_quotas() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        for bad in ["", "M", "12X", "-5M", "1.5G", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            CpuQuota::from_cpus(0.2),
            CpuQuota {
                quota_us: 20000,
                period_us: 100000
            }
        );
        assert_eq!(CpuQuota::from_cpus(1.5).quota_us, 150000);
    }
}
