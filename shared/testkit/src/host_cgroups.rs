//! The workshop's cgroup directories, read from the kernel's own files by the
//! test kit itself: the oracle that proves a run left none behind.
//!
//! It reads no code of chapter 7 on purpose. A test that asked the code under
//! test where its cgroups are would miss a leak wherever that code does not
//! look; this reader looks wider: beneath this process's own cgroup in every
//! mounted hierarchy (v1 and v2, whatever the controllers), and at the top of
//! every cgroup2 mount, for the names the workshop gives its cgroups:
//! `workshop-PID` (a run's own, v1) and `workshop/PID` (v2: a run's own, in
//! the parent all runs share).

use super::Owner;
use std::path::{Path, PathBuf};

/// A run's own cgroup on v1: `workshop-PID`.
const RUN_PREFIX: &str = "workshop-";
/// v2's parent of the runs' cgroups, at the top of the cgroup2 tree.
const SHARED_PARENT: &str = "workshop";

/// Every workshop cgroup directory on this machine, sorted.
pub fn workshop_cgroups() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for mount in cgroup_mounts(&mountinfo) {
        if mount.v2 {
            let parent = mount.point.join(SHARED_PARENT);
            if parent.is_dir() {
                out.push(parent.clone());
                out.extend(subdirs(&parent));
            }
        }
        if let Some(dir) = own_dir(&mount, &own) {
            let ours = subdirs(&dir).into_iter().filter(|d| {
                d.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(RUN_PREFIX))
            });
            out.extend(ours);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whom a directory [`workshop_cgroups`] lists belongs to, by its name alone.
pub fn cgroup_owner(dir: &Path) -> Owner {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some(own) = name(dir) else {
        return Owner::Host;
    };
    if let Some(pid) = own.strip_prefix(RUN_PREFIX).and_then(|p| p.parse().ok()) {
        return Owner::Run(pid);
    }
    if own == SHARED_PARENT {
        return Owner::Shared;
    }
    match (dir.parent().and_then(name), own.parse()) {
        (Some(parent), Ok(pid)) if parent == SHARED_PARENT => Owner::Run(pid),
        _ => Owner::Host,
    }
}

/// One mounted cgroup hierarchy, from a line of /proc/self/mountinfo.
struct Mount {
    point: PathBuf,
    /// The path inside the hierarchy that is mounted there (`/` usually).
    root: String,
    v2: bool,
    /// v1: the super options (`rw,pids`, `rw,cpu,cpuacct`, `rw,name=systemd`).
    options: Vec<String>,
}

// 30 25 0:26 / /sys/fs/cgroup/pids rw,nosuid shared:12 - cgroup cgroup rw,pids
fn cgroup_mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split_whitespace().collect();
            let mut right = right.split_whitespace();
            let v2 = match right.next()? {
                "cgroup" => false,
                "cgroup2" => true,
                _ => return None,
            };
            let options = right.nth(1).unwrap_or("").split(',').map(String::from);
            Some(Mount {
                point: PathBuf::from(left.get(4)?),
                root: left.get(3)?.to_string(),
                v2,
                options: options.collect(),
            })
        })
        .collect()
}

/// This process's cgroup in `mount`'s hierarchy, from /proc/self/cgroup
/// (`0::/user.slice/...` for v2, `4:pids:/user.slice/...` for v1).
fn own_dir(mount: &Mount, own: &str) -> Option<PathBuf> {
    let path = own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let this_one = if mount.v2 {
            controllers.is_empty()
        } else {
            !controllers.is_empty()
                && controllers
                    .split(',')
                    .all(|c| mount.options.iter().any(|o| o == c))
        };
        this_one.then_some(path)
    })?;
    let inside = path.strip_prefix(mount.root.as_str()).unwrap_or(path);
    Some(mount.point.join(inside.trim_start_matches('/')))
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 21 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
30 25 0:27 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
31 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
32 25 0:29 /machine /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
40 21 0:40 / /proc rw - proc proc rw";

    const OWN: &str = "\
6:pids:/user.slice/x
5:cpu,cpuacct:/user.slice/y
4:memory:/machine/api/z
0::/user.slice/session-1.scope";

    #[test]
    fn every_hierarchy_is_found_with_this_processs_own_cgroup() {
        let mounts = cgroup_mounts(HYBRID);
        let dirs: Vec<_> = mounts.iter().filter_map(|m| own_dir(m, OWN)).collect();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/unified/user.slice/session-1.scope",
                "/sys/fs/cgroup/pids/user.slice/x",
                "/sys/fs/cgroup/cpu,cpuacct/user.slice/y",
                "/sys/fs/cgroup/memory/api/z",
            ]
            .map(PathBuf::from)
        );
        assert_eq!(mounts.iter().filter(|m| m.v2).count(), 1);
    }

    #[test]
    fn owners_are_read_from_the_names() {
        let owner = |p: &str| cgroup_owner(Path::new(p));
        assert_eq!(
            owner("/sys/fs/cgroup/pids/user.slice/workshop-99"),
            Owner::Run(99)
        );
        assert_eq!(owner("/sys/fs/cgroup/workshop/123"), Owner::Run(123));
        assert_eq!(owner("/sys/fs/cgroup/workshop"), Owner::Shared);
        assert_eq!(owner("/sys/fs/cgroup/pids/123"), Owner::Host);
        assert_eq!(owner("/sys/fs/cgroup/pids/workshop-x"), Owner::Host);
    }

    #[test]
    fn a_cgroup_made_beneath_our_own_is_seen_and_its_going_too() {
        crate::require_root();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        // A PID that no process has (above the kernel's pid_max limit).
        let dir = cgroup_mounts(&mountinfo)
            .iter()
            .filter_map(|m| own_dir(m, &own))
            .map(|d| d.join(format!("{RUN_PREFIX}4194305")))
            .find(|d| std::fs::create_dir(d).is_ok())
            .expect("no hierarchy lets this process make a cgroup beneath its own");
        let seen = workshop_cgroups();
        std::fs::remove_dir(&dir).unwrap();
        assert!(seen.contains(&dir), "{} not in {seen:?}", dir.display());
        assert_eq!(cgroup_owner(&dir), Owner::Run(4194305));
        assert!(!workshop_cgroups().contains(&dir));
    }
}
