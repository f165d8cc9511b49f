//! Chapter 3 exercises, solved.

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use std::path::Path;

/// Exercise 3.1: make every mount in this mount namespace private.
pub fn make_mounts_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("failed to make / private")
}

/// Exercise 3.2: mount a proc filesystem on /proc.
pub fn mount_proc() -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>)
        .context("failed to mount proc on /proc")
}

/// Exercise 3.3: a private /tmp for the container.
pub fn mount_tmpfs(at: &Path, size_mib: u64) -> Result<()> {
    let data = format!("size={size_mib}m");
    mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(data.as_str()),
    )
    .with_context(|| format!("failed to mount a tmpfs on {}", at.display()))
}

/// Exercise 3.4: a read-only view of a directory.
pub fn bind_read_only(source: &Path, target: &Path) -> Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "failed to bind {} on {}",
            source.display(),
            target.display()
        )
    })?;
    // MS_RDONLY was ignored by the bind itself: remount this one mount.
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .with_context(|| format!("failed to make {} read-only", target.display()))
}
