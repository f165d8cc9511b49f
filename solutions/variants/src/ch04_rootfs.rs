//! Chapter 4: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, mkdir, pivot_root};
use std::path::Path;

pub const VARIANTS: &[Variant] = &[
    wrong("4.1", "chroot", "chroot alone: this process's / moves, the mount namespace's root stays the host's").because("moves the root of one process"),
    wrong("4.1", "bind-chroot", "bind mount, then chroot: a mount point, but still only this process's root").because("moves the root of one process"),
    wrong("4.1", "no-detach", "pivot_root(\".\", \".\") without umount2: the old root stays stacked on /, the host reachable").because("the old root still lies on top of the rootfs"),
    wrong("4.1", "old-root-left", "pivot_root into new_root/.old-root, detached, but the directory is left in the rootfs").because("left in the rootfs: .old-root"),
    wrong("4.1", "move-chroot", "MS_MOVE onto / and chroot (switch_root's way): the host's root stays mounted under /").because("covers the old root, it does not replace it"),
    wrong("4.1", "no-chdir", "pivot_root(new_root, new_root/.put-old), detached and removed, but no chdir(\"/\"): the working directory stays in the old root, outside the container").because("the working directory was not the new /"),
    right("4.1", "put-old", "pivot_root(new_root, new_root/.put-old), chdir /, detach /.put-old, rmdir it"),
    wrong("4.2", "no-tidy", "escapes, but leaves its directory in the rootfs").because("left in the rootfs: .variant-breakout"),
    wrong("4.2", "leaves-files", "escapes, but leaves its directory in the rootfs with a file in it (not empty: rmdir alone cannot take it)").because("left in the rootfs: .variant-breakout"),
    wrong("4.2", "no-climb", "chroot into a new directory, then chroot(\".\") at once: the working directory is still the rootfs").because("the working directory never left it"),
    wrong("4.2", "chdir-first", "chdir into the new directory before chroot: the working directory is inside the new root, .. stops there").because("the working directory was inside the new root"),
    wrong("4.2", "chroot-dotdot", "chroot(\"..\"): .. of the root is the root itself").because("chroot(\"..\") stop at its root"),
    right("4.2", "fchdir", "keeps a descriptor of the old root, chroot into a new directory, fchdir back, climb until . is .."),
    wrong("4.3", "dev-zero", "bind-mounts /dev/zero: the file is hidden, but reads give endless zeros").because("a device that gives bytes"),
    wrong("4.3", "fixed-path", "masks /proc/timer_list whatever path it is given").because("over that very path"),
    wrong("4.3", "read-only", "bind-mounts the file onto itself read-only: root still reads it").because("read-only stops writes, not reads"),
    wrong("4.3", "tmpfs", "mounts an empty tmpfs over it, as for a directory: a tmpfs cannot go on a file").because("can only be mounted on a directory"),
    right("4.3", "read-only-null", "/dev/null bound, then remounted read-only, nosuid, noexec"),
    right("4.3", "fd-source", "opens /dev/null and binds it through /proc/self/fd/N"),
];

fn bind_onto_itself(new_root: &Path) -> Result<()> {
    mount(
        Some(new_root),
        new_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("failed to bind-mount the new root onto itself")
}

/// Exercise 4.1.
pub fn pivot_into(new_root: &Path) -> Result<()> {
    match chosen("4.1").as_deref() {
        None => solutions::ch04_rootfs::pivot_into(new_root),
        Some("chroot") => {
            chroot(new_root)?;
            Ok(chdir("/")?)
        }
        Some("bind-chroot") => {
            bind_onto_itself(new_root)?;
            chroot(new_root)?;
            Ok(chdir("/")?)
        }
        Some("no-detach") => {
            bind_onto_itself(new_root)?;
            chdir(new_root)?;
            pivot_root(".", ".")?;
            Ok(chdir("/")?)
        }
        Some("old-root-left") => {
            bind_onto_itself(new_root)?;
            let put_old = new_root.join(".old-root");
            std::fs::create_dir_all(&put_old)?;
            pivot_root(new_root, &put_old)?;
            chdir("/")?;
            Ok(umount2("/.old-root", MntFlags::MNT_DETACH)?)
        }
        Some("move-chroot") => {
            bind_onto_itself(new_root)?;
            chdir(new_root)?;
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .context("failed to move the new root onto /")?;
            chroot(".")?;
            Ok(chdir("/")?)
        }
        Some("no-chdir") => {
            bind_onto_itself(new_root)?;
            let put_old = new_root.join(".put-old");
            mkdir(&put_old, Mode::from_bits_truncate(0o700))?;
            pivot_root(new_root, &put_old)?;
            umount2("/.put-old", MntFlags::MNT_DETACH)?;
            Ok(std::fs::remove_dir("/.put-old")?)
        }
        Some("put-old") => {
            bind_onto_itself(new_root)?;
            let put_old = new_root.join(".put-old");
            mkdir(&put_old, Mode::from_bits_truncate(0o700))?;
            pivot_root(new_root, &put_old)?;
            chdir("/")?;
            umount2("/.put-old", MntFlags::MNT_DETACH)?;
            Ok(std::fs::remove_dir("/.put-old")?)
        }
        Some(other) => unknown("4.1", other),
    }
}

/// Exercise 4.2.
pub fn break_out_of_chroot() -> Result<()> {
    let dir = "/.variant-breakout";
    let climb = || -> Result<()> {
        for _ in 0..256 {
            chdir("..")?;
        }
        Ok(())
    };
    match chosen("4.2").as_deref() {
        None => solutions::ch04_rootfs::break_out_of_chroot(),
        Some("no-tidy") => {
            mkdir(dir, Mode::from_bits_truncate(0o700))?;
            chroot(dir)?;
            climb()?;
            Ok(chroot(".")?)
        }
        Some("leaves-files") => {
            mkdir(dir, Mode::from_bits_truncate(0o700))?;
            std::fs::create_dir(format!("{dir}/notes"))?;
            std::fs::write(format!("{dir}/notes/escape.txt"), "was here\n")?;
            chroot(dir)?;
            climb()?;
            Ok(chroot(".")?)
        }
        Some("no-climb") => {
            mkdir(dir, Mode::from_bits_truncate(0o700))?;
            chroot(dir)?;
            std::fs::remove_dir(&dir[1..])?;
            Ok(chroot(".")?)
        }
        Some("chdir-first") => {
            mkdir(dir, Mode::from_bits_truncate(0o700))?;
            chdir(dir)?;
            chroot(dir)?;
            climb()?;
            chroot(".")?;
            // Tidy up from wherever it ended (the directory is its root now).
            let _ = std::fs::remove_dir(dir);
            Ok(())
        }
        Some("chroot-dotdot") => {
            climb()?;
            Ok(chroot("..")?)
        }
        Some("fchdir") => {
            let old = std::fs::File::open("/")?;
            let jail = format!("/.fchdir-{}", std::process::id());
            mkdir(jail.as_str(), Mode::from_bits_truncate(0o700))?;
            chroot(jail.as_str())?;
            nix::unistd::fchdir(&old)?;
            std::fs::remove_dir(&jail[1..])?;
            // Climb until "." and ".." are the same directory: the real top.
            for _ in 0..4096 {
                let (here, up) = (std::fs::metadata(".")?, std::fs::metadata("..")?);
                use std::os::unix::fs::MetadataExt;
                if (here.dev(), here.ino()) == (up.dev(), up.ino()) {
                    break;
                }
                chdir("..")?;
            }
            chroot(".")?;
            Ok(chdir("/")?)
        }
        Some(other) => unknown("4.2", other),
    }
}

/// Exercise 4.3.
pub fn mask_path(path: &Path) -> Result<()> {
    let bind = |from: &str, onto: &Path| {
        mount(
            Some(from),
            onto,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("failed to bind {from} on {}", onto.display()))
    };
    let read_only = |at: &Path, more: MsFlags| {
        mount(
            None::<&str>,
            at,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | more,
            None::<&str>,
        )
        .context("failed to remount read-only")
    };
    match chosen("4.3").as_deref() {
        None => solutions::ch04_rootfs::mask_path(path),
        Some("dev-zero") => bind("/dev/zero", path),
        Some("fixed-path") => bind("/dev/null", Path::new("/proc/timer_list")),
        Some("read-only") => {
            bind(&path.to_string_lossy(), path)?;
            read_only(path, MsFlags::empty())
        }
        Some("tmpfs") => mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0"),
        )
        .with_context(|| format!("failed to mount a tmpfs on {}", path.display())),
        Some("read-only-null") => {
            bind("/dev/null", path)?;
            read_only(path, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC)
        }
        Some("fd-source") => {
            use std::os::fd::AsRawFd;
            let null = std::fs::File::open("/dev/null")?;
            bind(&format!("/proc/self/fd/{}", null.as_raw_fd()), path)
        }
        Some(other) => unknown("4.3", other),
    }
}
