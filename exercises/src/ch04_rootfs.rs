//! Chapter 4 exercises: a root filesystem of the container's own.
//!
//! Check your work with `cargo test -p exercises ch04`. Each check runs your
//! code in new, private mount and PID namespaces made for it, with the
//! workshop's rootfs (target/rootfs).

use anyhow::Result;
use std::path::Path;

/// Exercise 4.1: make `new_root` the root of this mount namespace.
///
/// After it returns, `/` must be `new_root` for this process *and* for the
/// mount namespace: the check enters the namespace again (setns, as `nsenter`
/// or `docker exec` do), which sets its root to the namespace's root, where
/// it must find the rootfs, alone: the host's root must not be mounted
/// anywhere in the namespace, and the rootfs must hold nothing new (hidden
/// names too). The caller has already made every mount private.
///
/// Hints:
/// - pivot_root needs `new_root` to be a mount point: bind-mount it onto
///   itself first (`MsFlags::MS_BIND | MsFlags::MS_REC`).
/// - `nix::unistd::pivot_root(new_root, put_old)` moves the old root to
///   `put_old`; `chdir(new_root)` then `pivot_root(".", ".")` needs no
///   directory for it (see `man 2 pivot_root`, NOTES).
/// - then `umount2(old root, MntFlags::MNT_DETACH)` and `chdir("/")`.
pub fn pivot_into(new_root: &Path) -> Result<()> {
    // TODO: bind-mount, pivot_root, detach the old root, chdir("/").
    todo!("exercise 4.1: pivot_root into new_root and detach the old root")
}

/// Exercise 4.2: break out of a chroot (to see why chroot is not a jail).
///
/// The check chroots a process into the rootfs, as root, then calls this.
/// Afterwards the process's `/` must be the host's real `/` (same device and
/// inode), and the rootfs must hold nothing new. Never run this outside the
/// check: it is the attack chapter 4 defends against.
///
/// Hints:
/// - chroot() changes where `/` is but not the working directory, and `..`
///   only stops at your root.
/// - make a directory, chroot() into it while your working directory stays
///   where it is (outside your new root), then `chdir("..")` many times,
///   then `chroot(".")`.
/// - tidy up: remove the directory you made.
pub fn break_out_of_chroot() -> Result<()> {
    // TODO: mkdir, chroot into it, climb with "..", chroot(".").
    todo!("exercise 4.2: escape the chroot")
}

/// Exercise 4.3: mask a file of /proc, as runc does for /proc/kcore and
/// friends: bind-mount /dev/null over it.
///
/// Afterwards, in this mount namespace, `path` must be the character device
/// /dev/null (1:3): reading it gives nothing, and what it hid is unreachable
/// by that path. The check calls this in new mount and PID namespaces with a
/// /proc of their own, for two /proc files, then looks at what `stat` and
/// `read` give there, and at the host's /proc afterwards (unchanged).
///
/// Hints:
/// - `mount(Some("/dev/null"), path, None::<&str>, MsFlags::MS_BIND,
///   None::<&str>)`: a bind mount of a file goes onto a file.
/// - removing or chmod-ing a /proc file is not possible, or not yours to do:
///   the host shares those files; a mount in this namespace is seen here only.
pub fn mask_path(path: &Path) -> Result<()> {
    // TODO: bind /dev/null over path.
    todo!("exercise 4.3: bind-mount /dev/null over path")
}
