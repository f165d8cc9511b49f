//! The /proc and /sys a container sees: docker's masked and read-only
//! paths. /proc is the kernel's window on everything, and much of it is not
//! namespaced: what would tell or change the host is hidden (a file under
//! /dev/null, a directory under an empty read-only tmpfs) or made read-only.

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use std::path::Path;

// ANCHOR: lists
/// Hidden: what reads the host's memory, keys, timers and hardware.
pub const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore", // the host's physical memory, as an ELF core file
    "/proc/keys",  // the kernel's keys, all of them
    "/proc/latency_stats",
    "/proc/timer_list", // every timer of the host, with the tasks that set them
    "/proc/timer_stats",
    "/proc/sched_debug", // the scheduler's view of every host process
    "/proc/scsi",
    "/sys/firmware",                 // the machine's firmware tables
    "/sys/devices/virtual/powercap", // energy counters (a side channel)
];

/// Read-only: what would change the host's kernel if written.
pub const READ_ONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",           // sysctls: most are the host's, not the container's
    "/proc/sysrq-trigger", // the magic SysRq keys: reboot, crash, kill all
];
// ANCHOR_END: lists

// ANCHOR: sysfs
/// /sys, read-only: sysfs shows the network devices of the container's
/// namespace, and everything else of the host, which is not for writing.
pub fn mount_sysfs_read_only() -> Result<()> {
    if !Path::new("/sys").is_dir() {
        return Ok(()); // a rootfs without /sys: nothing to mount on
    }
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match mount(Some("sysfs"), "/sys", Some("sysfs"), flags, None::<&str>) {
        // In a user namespace (--rootless) the kernel mounts a sysfs only
        // where one is already fully visible in the mount namespace
        // (mount_too_revealing), and after the pivot none is: /sys stays
        // an empty read-only directory instead, as masked as the rest.
        Err(nix::errno::Errno::EPERM) => {
            mount(Some("tmpfs"), "/sys", Some("tmpfs"), flags, Some("size=0")).context(
                "failed to mount an empty read-only tmpfs on /sys (sysfs was refused: EPERM)",
            )
        }
        other => other.context("failed to mount sysfs on /sys read-only"),
    }
}
// ANCHOR_END: sysfs

// ANCHOR: mask
/// Hide `path`: a file under /dev/null (reads are empty, writes vanish), a
/// directory under an empty read-only tmpfs. A path this kernel does not
/// have is skipped.
pub fn mask(path: &str) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0"),
        )
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    }
    .with_context(|| format!("failed to mask {path}"))
}

/// Make `path` read-only: bind it onto itself (a mount of its own), then
/// remount that bind read-only. The rest of /proc stays writable.
pub fn make_read_only(path: &str) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("failed to bind {path} onto itself"))?;
    // With the flags /proc was mounted with: a remount sets them all anew,
    // and in a user namespace may not drop one it did not set itself.
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("failed to remount {path} read-only"))
}
// ANCHOR_END: mask

/// Everything of this file, in order: /sys, then the masks, then the
/// read-only paths. In the container, after the pivot (its /proc is its own).
pub fn protect_proc_and_sys() -> Result<()> {
    mount_sysfs_read_only()?;
    for path in MASKED {
        mask(path)?;
    }
    for path in READ_ONLY {
        make_read_only(path)?;
    }
    Ok(())
}
