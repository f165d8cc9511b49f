//! Chapter 3 exercises: a mount namespace of the container's own.
//!
//! Check your work with `cargo test -p exercises ch03`. Each check runs your
//! code in a new mount namespace made for it, so a mistake cannot reach the
//! host's mounts.

use anyhow::Result;
use std::path::Path;

/// Exercise 3.1: make every mount in this mount namespace private.
///
/// The check makes all mounts *shared* first (as systemd does on most hosts),
/// then calls this, then reads /proc/self/mountinfo: no mount may still say
/// `shared:N`.
///
/// Hints:
/// - `nix::mount::mount(source, target, fstype, flags, data)` with no source,
///   no filesystem type and no data (`None::<&str>`), target "/".
/// - one flag says "private", another says "and every mount below it".
pub fn make_mounts_private() -> Result<()> {
    // TODO: mount(NULL, "/", NULL, ..., NULL)
    todo!("exercise 3.1: make / and every mount below it private")
}

/// Exercise 3.2: mount a proc filesystem on /proc.
///
/// The check calls this in a child that is PID 1 of new PID and mount
/// namespaces (already made private), then counts the processes /proc lists
/// and reads the /proc/self link: the container's own view, PID 1.
///
/// Hints:
/// - the source and the filesystem type are both "proc".
/// - `MS_NOSUID | MS_NODEV | MS_NOEXEC` are good manners for /proc.
pub fn mount_proc() -> Result<()> {
    // TODO: mount("proc", "/proc", "proc", ...)
    todo!("exercise 3.2: mount a fresh proc on /proc")
}

/// Exercise 3.3: a private /tmp for the container.
///
/// Mount a new tmpfs of `size_mib` MiB on the directory `at`. The check calls
/// this in a fresh, private mount namespace, writes a file into it, and then
/// looks at the same directory from the host: it must still be empty.
///
/// Hints:
/// - the source can be any name ("tmpfs"); the filesystem type is "tmpfs".
/// - the size goes in the data argument: `Some("size=16m")`.
pub fn mount_tmpfs(at: &Path, size_mib: u64) -> Result<()> {
    // TODO: mount("tmpfs", at, "tmpfs", ..., "size=...m")
    todo!("exercise 3.3: mount a tmpfs of size_mib MiB at `at`")
}
