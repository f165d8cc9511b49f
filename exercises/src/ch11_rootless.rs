//! Chapter 11 exercises: a user namespace, as a normal user.
//!
//! Check your work with `cargo test -p exercises ch11`. The first check runs
//! its probe as an unprivileged user (uid 65534): the kernel's rules for
//! writing a map are the rules for a process without capabilities, and
//! root would get away with mistakes a student's own account would not.

use anyhow::Result;
use nix::unistd::Pid;
use std::path::Path;

/// Exercise 11.1: map your own uid and gid as root in a child's new user namespace.
///
/// The child (`pid`) was just cloned with `CLONE_NEWUSER` and waits at a
/// gate. In its namespace no id is mapped yet: it is nobody. From outside,
/// as the process that made it, write the three files the kernel reads:
///
/// - `/proc/PID/setgroups`: `deny`, FIRST. An unprivileged writer may write
///   `gid_map` only once setgroups() is denied in there (or a group it is in
///   could be dropped, to get past a "not this group" permission);
/// - `/proc/PID/uid_map`: one line `inside outside count`: `0 UID 1`, uid
///   0 inside is `uid` outside, one id;
/// - `/proc/PID/gid_map`: `0 GID 1`, with the gid.
///
/// Without capabilities the kernel takes one line of one id, your own, and
/// nothing else: not a range, not another id.
///
/// The check starts a child in a new user namespace as uid 65534, calls your
/// function, and asks the kernel: the child's uid_map, gid_map and setgroups,
/// and its ids inside (`id -u`, `id -g`: 0 and 0).
///
/// Hints:
/// - `std::fs::write(format!("/proc/{pid}/setgroups"), "deny")`; each file
///   is written once, in one write.
/// - an error says the file and the line: `.with_context(|| ...)`; EPERM
///   from the kernel means a line it does not allow you, or the order.
pub fn write_id_maps(pid: Pid, uid: u32, gid: u32) -> Result<()> {
    // TODO: setgroups "deny", then uid_map "0 UID 1", then gid_map "0 GID 1".
    todo!("exercise 11.1: write setgroups, uid_map and gid_map of the child")
}

/// Exercise 11.2: is this cgroup delegated to this user?
///
/// A normal user may make cgroups (and move processes between them) only
/// beneath a cgroup that root delegated to them, as systemd's
/// `Delegate=yes` does: it chowns the cgroup's directory and the files that
/// move processes and enable controllers to the user. Return true when
/// `dir`, `dir/cgroup.procs` and `dir/cgroup.subtree_control` all belong to
/// `uid` (the uid you are given, not the one you run as); false otherwise,
/// a missing file included.
///
/// The check makes cgroup-like directories with each file chown'd or not,
/// and asks your function about each, for the owner and for another user.
///
/// Hints:
/// - `std::fs::metadata(path)` and `std::os::unix::fs::MetadataExt::uid()`;
///   an `Err` (no such file) is "not delegated".
/// - the names: `ch07_cgroups::cgroup::CGROUP_PROCS` is "cgroup.procs";
///   "cgroup.subtree_control" is the other.
pub fn delegated_to(dir: &Path, uid: u32) -> bool {
    // TODO: the dir, cgroup.procs and cgroup.subtree_control, each owned by uid.
    todo!("exercise 11.2: decide by the owners of the dir and its two files")
}
