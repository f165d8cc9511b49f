//! Chapter 11: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{Context, Result};
use nix::unistd::Pid;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub const VARIANTS: &[Variant] = &[
    wrong(
        "11.1",
        "gid-before-setgroups",
        "uid_map, gid_map, then setgroups deny: an unprivileged writer may not write gid_map while setgroups is allowed (EPERM)",
    ).because("setgroups still says allow"),
    wrong(
        "11.1",
        "no-setgroups",
        "never writes deny to setgroups: as root gid_map is taken anyway, as a normal user it is refused (EPERM)",
    ).because("setgroups still says allow"),
    wrong(
        "11.1",
        "swapped",
        "outside first: `UID 0 1` maps the namespace's uid UID to the host's root, which no normal user may grant",
    ).because("exactly one id, its own"),
    wrong(
        "11.1",
        "range",
        "`0 UID 65536`: a range of 65536 ids, which only newuidmap (setuid root) may write",
    ).because("exactly one id, its own"),
    wrong(
        "11.1",
        "uid-in-gid-map",
        "the uid written to gid_map too: `0 UID 1` is not the writer's gid (EPERM)",
    ).because("not your uid"),
    right(
        "11.1",
        "chapter",
        "the chapter's way: ch11_rootless::idmap::write_maps with one id each, no helpers",
    ),
    right(
        "11.1",
        "gid-then-uid",
        "setgroups deny first, then gid_map before uid_map: the order of the two maps does not matter",
    ),
    wrong(
        "11.2",
        "dir-only",
        "the directory's owner only: cgroup.procs left to root, the user cannot move a process in",
    ).because("cgroup.procs belongs to root"),
    wrong(
        "11.2",
        "no-subtree-control",
        "the directory and cgroup.procs, not cgroup.subtree_control: no controller can be enabled below",
    ).because("cgroup.subtree_control belongs to root"),
    wrong(
        "11.2",
        "files-only",
        "the two files, not the directory: the user cannot make a cgroup (mkdir) in it",
    ).because("the directory belongs to root"),
    wrong(
        "11.2",
        "current-uid",
        "compares the owners with the uid it runs as (getuid), not the one it is given",
    ).because("the uid you are given"),
    wrong(
        "11.2",
        "writable",
        "access(W_OK) instead of the owner: root may write anything, so every cgroup looks delegated",
    ).because("cgroup.procs belongs to root"),
    right(
        "11.2",
        "nix-stat",
        "nix::sys::stat::stat and st_uid, the three paths in a loop",
    ),
    right(
        "11.2",
        "chapter",
        "the chapter's ch11_rootless::cgroup::delegation(V2, dir, uid), which also asks access(W_OK)",
    ),
];

fn write(pid: Pid, file: &str, line: &str) -> Result<()> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, line).with_context(|| format!("failed to write {line:?} to {path}"))
}

/// Exercise 11.1.
pub fn write_id_maps(pid: Pid, uid: u32, gid: u32) -> Result<()> {
    let Some(choice) = chosen("11.1") else {
        return solutions::ch11_rootless::write_id_maps(pid, uid, gid);
    };
    match choice.as_str() {
        "gid-before-setgroups" => {
            write(pid, "uid_map", &format!("0 {uid} 1"))?;
            write(pid, "gid_map", &format!("0 {gid} 1"))?;
            write(pid, "setgroups", "deny")
        }
        "no-setgroups" => {
            write(pid, "uid_map", &format!("0 {uid} 1"))?;
            write(pid, "gid_map", &format!("0 {gid} 1"))
        }
        "swapped" => {
            write(pid, "setgroups", "deny")?;
            write(pid, "uid_map", &format!("{uid} 0 1"))?;
            write(pid, "gid_map", &format!("{gid} 0 1"))
        }
        "range" => {
            write(pid, "setgroups", "deny")?;
            write(pid, "uid_map", &format!("0 {uid} 65536"))?;
            write(pid, "gid_map", &format!("0 {gid} 65536"))
        }
        "uid-in-gid-map" => {
            write(pid, "setgroups", "deny")?;
            write(pid, "uid_map", &format!("0 {uid} 1"))?;
            write(pid, "gid_map", &format!("0 {uid} 1"))
        }
        "chapter" => {
            use ch11_rootless::idmap::{IdRange, Mapping};
            let own = |outside| IdRange {
                inside: 0,
                outside,
                count: 1,
            };
            let mapping = Mapping {
                uids: vec![own(uid)],
                gids: vec![own(gid)],
                helpers: None,
            };
            ch11_rootless::idmap::write_maps(pid, &mapping)
        }
        "gid-then-uid" => {
            write(pid, "setgroups", "deny")?;
            write(pid, "gid_map", &format!("0 {gid} 1"))?;
            write(pid, "uid_map", &format!("0 {uid} 1"))
        }
        other => unknown("11.1", other),
    }
}

/// Exercise 11.2.
pub fn delegated_to(dir: &Path, uid: u32) -> bool {
    let Some(choice) = chosen("11.2") else {
        return solutions::ch11_rootless::delegated_to(dir, uid);
    };
    let owner = |p: &Path| p.metadata().map(|m| m.uid()).ok();
    let procs = dir.join("cgroup.procs");
    let subtree = dir.join("cgroup.subtree_control");
    match choice.as_str() {
        "dir-only" => owner(dir) == Some(uid),
        "no-subtree-control" => owner(dir) == Some(uid) && owner(&procs) == Some(uid),
        "files-only" => owner(&procs) == Some(uid) && owner(&subtree) == Some(uid),
        "current-uid" => {
            let me = nix::unistd::getuid().as_raw();
            [dir, &procs, &subtree].iter().all(|p| owner(p) == Some(me))
        }
        "writable" => [dir, &procs, &subtree]
            .iter()
            .all(|p| nix::unistd::access(*p, nix::unistd::AccessFlags::W_OK).is_ok()),
        "nix-stat" => [dir, &procs, &subtree]
            .iter()
            .all(|p| nix::sys::stat::stat(*p).is_ok_and(|s| s.st_uid == uid)),
        "chapter" => matches!(
            ch11_rootless::cgroup::delegation(ch07_cgroups::cgroup::Version::V2, dir, uid),
            ch11_rootless::cgroup::Delegation::Ours { .. }
        ),
        other => unknown("11.2", other),
    }
}
