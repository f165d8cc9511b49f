//! Chapter 11 exercises, solved.

use anyhow::{Context, Result};
use nix::unistd::Pid;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Exercise 11.1: map your own uid and gid as root in a child's new user namespace.
pub fn write_id_maps(pid: Pid, uid: u32, gid: u32) -> Result<()> {
    // setgroups first: without `deny` there, an unprivileged writer may not write gid_map.
    for (file, line) in [
        ("setgroups", "deny".to_string()),
        ("uid_map", format!("0 {uid} 1")),
        ("gid_map", format!("0 {gid} 1")),
    ] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, &line)
            .with_context(|| format!("failed to write {line:?} to {path}"))?;
    }
    Ok(())
}

/// Exercise 11.2: is this cgroup delegated to this user?
pub fn delegated_to(dir: &Path, uid: u32) -> bool {
    let owned = |p: &Path| p.metadata().is_ok_and(|m| m.uid() == uid);
    owned(dir)
        && owned(&dir.join(ch07_cgroups::cgroup::CGROUP_PROCS))
        && owned(&dir.join("cgroup.subtree_control"))
}
