//! Chapter 8 exercises: layers.
//!
//! Check your work with `cargo test -p exercises ch08`. The checks make their
//! layers on a tmpfs of their own, in mount namespaces of their own: nothing
//! of yours is mounted or written on the host.

use anyhow::Result;
use std::path::{Path, PathBuf};

/// Exercise 8.1: mount an overlay of `lowers` on `merged`.
///
/// `lowers` are read-only layers, the TOP one first (its names hide the same
/// names below), the base last; `upper` takes every write; `work` is
/// overlayfs's scratch directory, on the upper's filesystem. All of them
/// exist, empty but for the lowers.
///
/// You are called in the container's new mount namespace, a copy of the
/// host's whose mounts are still *shared* with it (as right after
/// `unshare(CLONE_NEWNS)` on a host that systemd made shared): make them
/// private first, so that the overlay stays in this namespace, then mount.
///
/// The check looks at what the kernel made: the mount at `merged` in
/// /proc/self/mountinfo (type overlay, its lowerdir in your order), a read
/// that reaches the top layer, a write that is copied up into `upper` while
/// the lower keeps its file, a deletion that leaves a whiteout in `upper`,
/// and the host (a stand-in) that never sees the mount.
///
/// Hints:
/// - chapter 3 made the mounts private (your 3.1, or
///   `ch03_mount::make_mounts_private()`).
/// - `mount(Some("overlay"), merged, Some("overlay"), MsFlags::empty(),
///   Some("lowerdir=TOP:...:BASE,upperdir=...,workdir=..."))`.
/// - the kernel splits `lowerdir` at `:`: the first is the top.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, merged: &Path) -> Result<()> {
    // TODO: make the mounts private, then mount("overlay", merged, "overlay", ..., options)
    todo!("exercise 8.1: mount an overlay of lowers, upper and work on merged")
}

/// Exercise 8.2: what a container changed, read from its upper (`docker diff`).
///
/// Return one line per path the upper holds, `"A /path"` (added: the lowers
/// do not have it), `"C /path"` (changed: the lowers have it; for a
/// directory, something beneath it changed) or `"D /path"` (deleted), the
/// path as the container sees it (starting at `/`), sorted by path as
/// `PathBuf`s sort (component by component). `lowers` are the read-only
/// layers, the top one first.
///
/// - a whiteout in the upper (a character device numbered 0/0) is a
///   deletion: `D`;
/// - a directory of the upper with the xattr `trusted.overlay.opaque` = `y`
///   hides everything the lowers hold beneath it (it was removed and made
///   again): each name the lowers have directly in it that the upper has not
///   is a `D` too;
/// - a name is in the lowers when the first lower (top first) that has it
///   holds something other than a whiteout there;
/// - a symbolic link is a path like any other: list it, never follow it.
///
/// The check makes a real overlay, writes, deletes and remakes through it,
/// and compares your lines with the kernel's upper.
///
/// Hints:
/// - `std::fs::symlink_metadata` does not follow a link; `FileTypeExt::
///   is_char_device()` and `MetadataExt::rdev()` (with `nix::sys::stat::
///   major`/`minor`) tell a whiteout.
/// - `nix::libc::lgetxattr` reads an xattr (reading `trusted.*` needs root).
/// - collect `(PathBuf, char)` pairs, sort them, then format the lines.
pub fn diff(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<String>> {
    // TODO: walk the upper; a whiteout is D, a name the lowers have is C, any other is A.
    todo!("exercise 8.2: list A/C/D from the upper")
}
