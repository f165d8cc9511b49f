//! Chapter 3: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::Path;

pub const VARIANTS: &[Variant] = &[
    wrong(
        "3.1",
        "slave",
        "MS_SLAVE|MS_REC: nothing propagates back to the host, but the host's new mounts still arrive",
    ).because("MS_SLAVE stops sending mounts"),
    wrong(
        "3.1",
        "unbindable",
        "MS_UNBINDABLE|MS_REC: private, and more, but no longer a mount that can be bind-mounted",
    ).because("no one can bind-mount those mounts"),
    wrong("3.1", "top-only", "MS_PRIVATE without MS_REC: only / itself, not the mounts under it").because("MS_PRIVATE alone changes one mount"),
    wrong(
        "3.1",
        "each-mount",
        "each mount point of /proc/self/mountinfo made private by its path: a mount hidden under another at the same path stays shared",
    ).because("some mounts became private and some did not"),
    wrong(
        "3.1",
        "unshare",
        "unshare(CLONE_NEWNS): moves the caller into a new mount namespace whose mounts are still peers of the old one's, shared",
    ).because("moved the caller into a new mount namespace"),
    right(
        "3.1",
        "libc",
        "the same mount(2) call through libc, flags spelled as numbers' names there",
    ),
    wrong("3.2", "bind-host", "bind-mounts the host's /proc: a view of the host's PID namespace, not the container's").because("the host's view of the processes"),
    wrong("3.2", "nosuid-only", "a fresh proc with MS_NOSUID alone: devices and exec are still allowed there").because("pass MS_NOSUID | MS_NODEV | MS_NOEXEC"),
    wrong("3.2", "no-flags", "a fresh proc, but without MS_NOSUID|MS_NODEV|MS_NOEXEC: nothing forbids exec, devices or set-uid there").because("pass MS_NOSUID | MS_NODEV | MS_NOEXEC"),
    wrong("3.2", "elsewhere", "mounts a fresh proc on /mnt instead of on /proc: /proc is still the host's view").because("was the new one mounted elsewhere?"),
    right("3.2", "detach-first", "detaches the host's /proc first (umount2 MNT_DETACH), then mounts a fresh one: no stacked mount"),
    right("3.2", "libc", "the same mount(2) call through libc"),
    wrong("3.3", "hint-size", "always size=16m, the hint's example, whatever size_mib says").because("always 16 MiB, whatever size_mib says"),
    wrong("3.3", "no-unit", "size={size_mib} with no suffix: bytes, not MiB (the kernel rounds it up to one page)").because("read a size with no suffix as bytes"),
    wrong("3.3", "megabytes", "size_mib * 1_000_000 bytes: decimal megabytes, not MiB").because("decimal megabytes"),
    wrong("3.3", "subdir", "mkdir at/tmp and mounts there: the tmpfs is not at `at`, and the directory lands on the host").because("mount the tmpfs on `at`, not below it"),
    right("3.3", "kib", "the size in KiB: size={size_mib * 1024}k"),
    right("3.3", "bytes", "the size in bytes, no suffix: size={size_mib << 20}, and mode=1777 as /tmp has"),
    wrong("3.4", "one-call", "MS_BIND|MS_RDONLY in one call: the kernel ignores MS_RDONLY for a new bind mount").because("the kernel ignores MS_RDONLY in the call that makes a bind mount"),
    wrong("3.4", "superblock", "bind, then MS_REMOUNT|MS_RDONLY without MS_BIND: the whole filesystem goes read-only, source too").because("a remount without MS_BIND changes the filesystem"),
    wrong("3.4", "remount-source", "bind, then the read-only remount aimed at source instead of target").because("aim the read-only remount"),
    wrong("3.4", "copy", "copies the files and chmods them 0444: root writes anyway, and it is not the same directory").because("a bind mount, not a copy"),
    right("3.4", "libc", "the same two mount(2) calls through libc"),
    right("3.4", "keep-flags", "the remount keeps the flags the mount had (statvfs), as it must in a user namespace, and adds nosuid"),
];

/// Exercise 3.1.
pub fn make_mounts_private() -> Result<()> {
    match chosen("3.1").as_deref() {
        None => solutions::ch03_mount::make_mounts_private(),
        Some("slave") => propagation("/", MsFlags::MS_REC | MsFlags::MS_SLAVE),
        Some("unbindable") => propagation("/", MsFlags::MS_REC | MsFlags::MS_UNBINDABLE),
        Some("unshare") => Ok(nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .context("failed to unshare(CLONE_NEWNS)")?),
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
    let manners = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match chosen("3.2").as_deref() {
        None => solutions::ch03_mount::mount_proc(),
        Some("bind-host") => mount(
            Some("/proc"),
            "/proc",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .context("failed to bind /proc"),
        Some("nosuid-only") => mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID,
            None::<&str>,
        )
        .context("failed to mount proc"),
        Some("no-flags") => mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::empty(),
            None::<&str>,
        )
        .context("failed to mount proc"),
        Some("elsewhere") => mount(Some("proc"), "/mnt", Some("proc"), manners, None::<&str>)
            .context("failed to mount proc"),
        Some("detach-first") => {
            umount2("/proc", MntFlags::MNT_DETACH).context("failed to detach /proc")?;
            mount(Some("proc"), "/proc", Some("proc"), manners, None::<&str>)
                .context("failed to mount proc")
        }
        Some("libc") => {
            use nix::libc;
            // SAFETY: C string literals and a null pointer, as mount(2) takes them.
            let rc = unsafe {
                libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error()).context("mount(proc)");
            }
            Ok(())
        }
        Some(other) => unknown("3.2", other),
    }
}

/// Exercise 3.3.
pub fn mount_tmpfs(at: &Path, size_mib: u64) -> Result<()> {
    let tmpfs = |at: &Path, data: &str| {
        mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(data),
        )
        .with_context(|| format!("failed to mount a tmpfs on {}", at.display()))
    };
    match chosen("3.3").as_deref() {
        None => solutions::ch03_mount::mount_tmpfs(at, size_mib),
        Some("hint-size") => tmpfs(at, "size=16m"),
        Some("no-unit") => tmpfs(at, &format!("size={size_mib}")),
        Some("megabytes") => tmpfs(at, &format!("size={}", size_mib * 1_000_000)),
        Some("subdir") => {
            let inner = at.join("tmp");
            std::fs::create_dir_all(&inner)?;
            tmpfs(&inner, &format!("size={size_mib}m"))
        }
        Some("kib") => tmpfs(at, &format!("size={}k", size_mib * 1024)),
        Some("bytes") => tmpfs(at, &format!("size={},mode=1777", size_mib << 20)),
        Some(other) => unknown("3.3", other),
    }
}

/// Exercise 3.4.
pub fn bind_read_only(source: &Path, target: &Path) -> Result<()> {
    let bind = |flags: MsFlags| {
        mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND | flags,
            None::<&str>,
        )
        .context("failed to bind")
    };
    let remount = |at: &Path, flags: MsFlags| {
        mount(
            None::<&str>,
            at,
            None::<&str>,
            MsFlags::MS_REMOUNT | flags,
            None::<&str>,
        )
        .context("failed to remount")
    };
    match chosen("3.4").as_deref() {
        None => solutions::ch03_mount::bind_read_only(source, target),
        Some("one-call") => bind(MsFlags::MS_RDONLY),
        Some("superblock") => {
            bind(MsFlags::empty())?;
            remount(target, MsFlags::MS_RDONLY)
        }
        Some("remount-source") => {
            bind(MsFlags::empty())?;
            remount(source, MsFlags::MS_BIND | MsFlags::MS_RDONLY)
        }
        Some("copy") => {
            use std::os::unix::fs::PermissionsExt;
            for entry in std::fs::read_dir(source)? {
                let entry = entry?;
                let copy = target.join(entry.file_name());
                std::fs::copy(entry.path(), &copy)?;
                std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o444))?;
            }
            std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o555))?;
            Ok(())
        }
        Some("libc") => {
            use nix::libc;
            use std::os::unix::ffi::OsStrExt;
            let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes());
            let (src, dst) = (c(source)?, c(target)?);
            for (from, flags) in [
                (src.as_ptr(), libc::MS_BIND),
                (
                    std::ptr::null(),
                    libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                ),
            ] {
                // SAFETY: NUL-terminated strings that outlive the call, or null.
                let rc = unsafe {
                    libc::mount(
                        from,
                        dst.as_ptr(),
                        std::ptr::null(),
                        flags,
                        std::ptr::null(),
                    )
                };
                if rc != 0 {
                    return Err(std::io::Error::last_os_error()).context("mount(2)");
                }
            }
            Ok(())
        }
        Some("keep-flags") => {
            use nix::sys::statvfs::{statvfs, FsFlags};
            bind(MsFlags::empty())?;
            let had = statvfs(target)?.flags();
            let mut flags = MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
            for (st, ms) in [
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if had.contains(st) {
                    flags |= ms;
                }
            }
            remount(target, flags)
        }
        Some(other) => unknown("3.4", other),
    }
}

fn propagation(point: &str, flags: MsFlags) -> Result<()> {
    mount(None::<&str>, point, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("failed to change the propagation of {point}"))
}
