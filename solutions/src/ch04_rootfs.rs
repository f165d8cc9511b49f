//! Chapter 4 exercises, solved.

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, mkdir, pivot_root};
use std::path::Path;

/// Exercise 4.1: make `new_root` the root of this mount namespace.
pub fn pivot_into(new_root: &Path) -> Result<()> {
    mount(
        Some(new_root),
        new_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("failed to bind-mount the new root onto itself")?;
    chdir(new_root).context("failed to chdir to the new root")?;
    pivot_root(".", ".").context("failed to pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).context("failed to detach the old root")?;
    chdir("/").context("failed to chdir to /")
}

/// Exercise 4.2: break out of a chroot (to see why chroot is not a jail).
pub fn break_out_of_chroot() -> Result<()> {
    mkdir("/.solution-breakout", Mode::from_bits_truncate(0o700)).context("failed to mkdir")?;
    chroot("/.solution-breakout").context("failed to chroot into the new directory")?;
    std::fs::remove_dir(".solution-breakout").context("failed to remove the directory")?;
    for _ in 0..256 {
        chdir("..").context("failed to chdir ..")?;
    }
    chroot(".").context("failed to chroot(\".\")")
}

/// Exercise 4.3: mask a file of /proc with /dev/null.
pub fn mask_path(path: &Path) -> Result<()> {
    mount(
        Some("/dev/null"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("failed to mask {} with /dev/null", path.display()))
}
