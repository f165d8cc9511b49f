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
/// then calls this, then reads /proc/self/mountinfo: no mount may still have
/// a propagation field, neither `shared:N` (sends and receives mounts), nor
/// `master:N` (a slave: still receives the host's), nor `unbindable`.
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
/// and reads the /proc/self link: the container's own view, PID 1. It also
/// reads the mount's options in /proc/self/mountinfo: nosuid, nodev, noexec.
///
/// Hints:
/// - the source and the filesystem type are both "proc".
/// - `MS_NOSUID | MS_NODEV | MS_NOEXEC`: no set-uid program, device file or
///   executable is to be found in /proc, so say so.
pub fn mount_proc() -> Result<()> {
    // TODO: mount("proc", "/proc", "proc", ...)
    todo!("exercise 3.2: mount a fresh proc on /proc")
}

/// Exercise 3.3: a private /tmp for the container.
///
/// Mount a new tmpfs of `size_mib` MiB on the directory `at`. The check calls
/// this in a fresh, private mount namespace for a few sizes (not only the one
/// of the hint), reads each size back in bytes, writes a file into each, and
/// then looks at the same directories from the host: they must still be empty.
///
/// Hints:
/// - the source can be any name ("tmpfs"); the filesystem type is "tmpfs".
/// - the size goes in the data argument: `Some("size=16m")` for 16 MiB (the
///   suffixes k, m, g are binary: KiB, MiB, GiB; no suffix means bytes).
pub fn mount_tmpfs(at: &Path, size_mib: u64) -> Result<()> {
    // TODO: mount("tmpfs", at, "tmpfs", ..., "size=...m")
    todo!("exercise 3.3: mount a tmpfs of size_mib MiB at `at`")
}

/// Exercise 3.4: a read-only view of a directory (as `docker run -v
/// /data:/data:ro` gives).
///
/// Bind-mount the directory `source` on `target`, read-only: through `target`
/// nothing can be written, while `source` itself stays writable. The check
/// runs this in a private mount namespace, on a tmpfs of its own, then looks
/// at what the kernel made: the same directory at both paths, `ro` among the
/// target mount's options, EROFS for a write through `target`, and a write to
/// `source` that still succeeds.
///
/// Hints:
/// - a bind mount is `mount(Some(source), target, None, MS_BIND, None)`.
/// - the kernel ignores `MS_RDONLY` when it makes a bind mount: read-only is a
///   second call that changes the new mount, `MS_REMOUNT | MS_BIND |
///   MS_RDONLY` on `target`.
/// - without `MS_BIND`, a remount changes the filesystem (every mount of it,
///   `source` too), not this one mount.
pub fn bind_read_only(source: &Path, target: &Path) -> Result<()> {
    // TODO: bind source on target, then remount target read-only.
    todo!("exercise 3.4: bind-mount source on target, read-only")
}
