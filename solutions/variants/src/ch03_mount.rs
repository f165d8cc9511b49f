//! Chapter 3: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use std::path::Path;

pub const VARIANTS: &[Variant] = &[
    wrong(
        "3.1",
        "slave",
        "MS_SLAVE|MS_REC: nothing propagates back to the host, but the host's new mounts still arrive",
    ),
    wrong(
        "3.1",
        "unbindable",
        "MS_UNBINDABLE|MS_REC: private, and more, but no longer a mount that can be bind-mounted",
    ),
    wrong("3.1", "top-only", "MS_PRIVATE without MS_REC: only / itself, not the mounts under it"),
    wrong(
        "3.1",
        "each-mount",
        "each mount point of /proc/self/mountinfo made private by its path: a mount hidden under another at the same path stays shared",
    ),
    right(
        "3.1",
        "libc",
        "the same mount(2) call through libc, flags spelled as numbers' names there",
    ),
];

/// Exercise 3.1.
pub fn make_mounts_private() -> Result<()> {
    match chosen("3.1").as_deref() {
        None => solutions::ch03_mount::make_mounts_private(),
        Some("slave") => propagation("/", MsFlags::MS_REC | MsFlags::MS_SLAVE),
        Some("unbindable") => propagation("/", MsFlags::MS_REC | MsFlags::MS_UNBINDABLE),
        Some("top-only") => propagation("/", MsFlags::MS_PRIVATE),
        Some("each-mount") => {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
                .context("failed to read /proc/self/mountinfo")?;
            for line in mountinfo.lines() {
                // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
                if let Some(point) = line.split(' ').nth(4) {
                    propagation(&point.replace("\\040", " "), MsFlags::MS_PRIVATE)?;
                }
            }
            Ok(())
        }
        Some("libc") => {
            use nix::libc;
            // SAFETY: a C string literal and null pointers, as mount(2) takes them.
            let rc = unsafe {
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error()).context("mount(/, MS_REC|MS_PRIVATE)");
            }
            Ok(())
        }
        Some(other) => unknown("3.1", other),
    }
}

/// Exercise 3.2.
pub fn mount_proc() -> Result<()> {
    match chosen("3.2").as_deref() {
        None => solutions::ch03_mount::mount_proc(),
        Some(other) => unknown("3.2", other),
    }
}

/// Exercise 3.3.
pub fn mount_tmpfs(at: &Path, size_mib: u64) -> Result<()> {
    match chosen("3.3").as_deref() {
        None => solutions::ch03_mount::mount_tmpfs(at, size_mib),
        Some(other) => unknown("3.3", other),
    }
}

fn propagation(point: &str, flags: MsFlags) -> Result<()> {
    mount(None::<&str>, point, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("failed to change the propagation of {point}"))
}
