//! Chapter 2 exercises: namespaces are files.
//!
//! Check your work with `cargo test -p exercises ch02`.

use anyhow::Result;
use nix::unistd::Pid;

/// Exercise 2.1: which namespace is a process in?
///
/// Return the inode number of `/proc/PID/ns/KIND` (`kind` is a file name in
/// that directory: "mnt", "pid", "net", "ipc", "uts", "user", "cgroup",
/// "time"). Two processes share a namespace exactly when these numbers match.
/// A missing process or an unknown kind is an error, not a panic.
///
/// Hints:
/// - `std::fs::metadata(path)` follows the link; `std::os::unix::fs::MetadataExt`
///   gives you `.ino()`.
/// - Or read the link: `std::fs::read_link` gives `uts:[4026531838]`.
pub fn namespace_inode(pid: Pid, kind: &str) -> Result<u64> {
    // TODO: stat /proc/PID/ns/KIND and return its inode number.
    todo!("exercise 2.1: the inode of /proc/PID/ns/KIND")
}

/// Exercise 2.2: join another process's namespaces, as `nsenter` does.
///
/// Move the calling process into the namespaces of `target` named in `kinds`
/// (e.g. `["uts", "ipc", "net"]`). The check runs this in a fresh child, then
/// reads the child's hostname and namespace files.
///
/// Hints:
/// - open `/proc/TARGET/ns/KIND` (`std::fs::File::open`), then
///   `nix::sched::setns(&file, flag)`.
/// - the flag for each kind: `CloneFlags::CLONE_NEWUTS`, `CLONE_NEWIPC`,
///   `CLONE_NEWNET`, ... (`ch02_namespaces::kind(name)` has the table). With
///   the kind's flag the kernel checks that the file is that kind of
///   namespace; `CloneFlags::empty()` would accept any kind.
/// - open all the files before the first setns().
pub fn join(target: Pid, kinds: &[&str]) -> Result<()> {
    // TODO: open each /proc/TARGET/ns/KIND, then setns() into it.
    todo!("exercise 2.2: setns() into the target's namespaces")
}

/// Exercise 2.3: which namespaces do two processes share?
///
/// Return the names of the entries of `/proc/A/ns` (every one the kernel
/// lists there: "cgroup", ..., "pid_for_children", "time", ...) that are the
/// same namespace for `a` and `b`, sorted by name. A missing process is an
/// error. `lsns` answers the same question for every process at once.
///
/// Hints:
/// - `std::fs::read_dir("/proc/A/ns")` lists the kinds this kernel has; do
///   not write the list yourself.
/// - Two files are the same namespace when `std::fs::metadata` (which follows
///   the link) gives the same `.dev()` and `.ino()`.
pub fn shared_namespaces(a: Pid, b: Pid) -> Result<Vec<String>> {
    // TODO: for each entry of /proc/A/ns, compare it with /proc/B/ns/ENTRY.
    todo!("exercise 2.3: the namespaces two processes share")
}
