//! Chapter 4: a root filesystem of the container's own.
//!
//! First the old way, chroot(), which changes what "/" means for one process
//! and can be walked out of by a process that is root. Then the way container
//! runtimes do it: pivot_root(), which swaps the root *mount* of the mount
//! namespace, after which the host's root is detached: no path leads back to
//! it. (A root process can still open host files by file handle, with
//! open_by_handle_at(): the book's page says so, and what closes it.)

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, mkdir, pivot_root};
use std::path::{Path, PathBuf};
use workshop::error::{hinted, HintExt};

/// `--rootfs PATH`: the option every chapter from 4 on takes.
#[derive(clap::Args, Debug, Clone)]
pub struct RootfsOption {
    /// The container's root filesystem: a directory with at least /bin/sh.
    /// Default: target/rootfs, built on first use (see `cargo xtask rootfs`)
    #[arg(long, value_name = "PATH", value_parser = parse_rootfs)]
    pub rootfs: Option<PathBuf>,
}

/// `--rootfs PATH`, as far as it can be judged before anything is created: it
/// must not be the host's own root, however it is spelled (`/`, `/.`, a
/// symlink to it, or a bind mount of it, which is the same directory).
/// pivot_root would refuse `/` itself with a bare EBUSY, and take a bind
/// mount of it, handing the container the whole host. Whether the path
/// exists and holds a /bin/sh, [`RootfsOption::resolve`] says, with a hint.
pub fn parse_rootfs(text: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let path = PathBuf::from(text);
    let (Ok(dir), Ok(host_root)) = (std::fs::metadata(&path), std::fs::metadata("/")) else {
        return Ok(path); // missing or unreadable: resolve() says which
    };
    if (dir.dev(), dir.ino()) == (host_root.dev(), host_root.ino()) {
        let what = match std::fs::canonicalize(&path) {
            Ok(real) if real == Path::new("/") && text == "/" => {
                format!("{text} is the host's own root")
            }
            Ok(real) if real == Path::new("/") => {
                format!("{text} is the host's own root (it leads to /)")
            }
            _ => format!("{text} is the host's own root, bind-mounted (the same directory as /)"),
        };
        return Err(format!(
            "{what}: a container needs a root of its own, e.g. target/rootfs (`cargo xtask rootfs`)"
        ));
    }
    Ok(path)
}

impl RootfsOption {
    /// The rootfs to use, checked, or built on first use. `announce` gets one
    /// line when a build is needed.
    pub fn resolve(&self, announce: impl FnOnce(&str)) -> Result<PathBuf> {
        let dir = match &self.rootfs {
            Some(dir) => {
                // The error names the option and the value the student typed.
                workshop_rootfs::validate(dir)
                    .and_then(|()| mount_points_exist(dir))
                    .with_context(|| format!("--rootfs {:?}", dir.display().to_string()))?;
                dir.clone()
            }
            None => workshop_rootfs::ensure_default(announce)?,
        };
        // pivot_root wants a path with no symlinks and no "..": the real one.
        std::fs::canonicalize(&dir).with_context(|| format!("failed to resolve {}", dir.display()))
    }
}

/// The directories the container's mounts go on: /dev (a tmpfs) and /proc.
/// Without them the mounts fail inside the container with a bare ENOENT, after
/// the namespaces exist; say so before anything is created. Symlinks are
/// followed inside the rootfs, as the container would.
fn mount_points_exist(root: &Path) -> Result<()> {
    for (dir, what) in [
        ("/dev", "a tmpfs with /dev/null and friends"),
        ("/proc", "a fresh proc"),
    ] {
        let found = workshop_rootfs::resolve_inside(root, Path::new(dir))?;
        if !found.is_some_and(|p| p.is_dir()) {
            return Err(hinted(
                format!(
                    "rootfs {} has no {dir} directory (the container mounts {what} there)",
                    root.display()
                ),
                format!("create it: `mkdir {}{dir}`", root.display()),
            ));
        }
    }
    Ok(())
}

// ANCHOR: chroot
/// The old way: make `new_root` this process's "/". Only this process and its
/// children see it; the mount table does not change, and the working
/// directory is left where it was (hence the chdir).
pub fn enter_with_chroot(new_root: &Path) -> Result<()> {
    chroot(new_root).with_context(|| format!("failed to chroot into {}", new_root.display()))?;
    chdir("/").context("failed to chdir to / after chroot")
}
// ANCHOR_END: chroot

// ANCHOR: break_out
/// The classic escape from a chroot, for a process that is root inside it.
/// chroot() changes where "/" is, not where we are; and ".." stops only at
/// our root. So: chroot into a subdirectory while standing outside it, and
/// climb with "..": nothing stops us until the real top of the mount tree.
pub fn break_out_of_chroot() -> Result<()> {
    let dir = format!(
        ".breakout-{}",
        std::process::id() ^ std::time::UNIX_EPOCH.elapsed()?.subsec_nanos()
    );
    mkdir(format!("/{dir}").as_str(), Mode::from_bits_truncate(0o700))
        .with_context(|| format!("failed to mkdir /{dir}"))?;
    chroot(format!("/{dir}").as_str()).with_context(|| format!("failed to chroot into /{dir}"))?;
    // Our working directory is now outside our root: tidy up, then climb.
    std::fs::remove_dir(&dir).with_context(|| format!("failed to remove {dir}"))?;
    for _ in 0..256 {
        chdir("..").context("failed to chdir ..")?;
    }
    chroot(".").context("failed to chroot into where the climb ended")?;
    chdir("/").context("failed to chdir /")
}
// ANCHOR_END: break_out

// ANCHOR: pivot
/// The proper way: make `new_root` the root mount of this mount namespace,
/// then detach the old root so that nothing of the host is reachable.
/// Call it in a new mount namespace whose mounts are private (chapter 3).
pub fn pivot_into(new_root: &Path) -> Result<()> {
    // pivot_root needs the new root to be a mount point: bind it onto itself.
    mount(
        Some(new_root),
        new_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("failed to bind-mount {} onto itself", new_root.display()))?;
    chdir(new_root).with_context(|| format!("failed to chdir to {}", new_root.display()))?;
    // pivot_root(new_root, put_old) moves the old root to put_old. With "."
    // for both, the old root lands on top of the new one, at "/": no directory
    // is needed in the rootfs, which may be read-only or shared by others.
    pivot_root(".", ".").map_err(|errno| pivot_error(new_root, errno))?;
    // Detach the old root, the top mount at "/" now (MNT_DETACH: even while
    // something still uses it). What is left at "/" is the new root alone.
    umount2(".", MntFlags::MNT_DETACH).context("failed to umount2 the old root")?;
    chdir("/").context("failed to chdir to the new /")
}
// ANCHOR_END: pivot

fn pivot_error(new_root: &Path, errno: Errno) -> anyhow::Error {
    let what = format!("failed to pivot_root into {}: {errno}", new_root.display());
    match errno {
        Errno::EINVAL => hinted(
            what,
            "new_root must be a mount point (bind it onto itself first) and no mount involved may be shared: \
             make the mount tree private (mount --make-rprivate /) in the new mount namespace first",
        ),
        Errno::EBUSY => hinted(what, "new_root is on the current root mount: is new_root `/` itself?"),
        Errno::EPERM => hinted(what, "pivot_root needs CAP_SYS_ADMIN in the mount namespace's user namespace"),
        _ => anyhow::Error::new(errno).context(what),
    }
}

// ANCHOR: dev
/// A minimal /dev: a tmpfs with the few device files programs expect
/// (/dev/null above all), bind-mounted from the host's. Call before
/// pivot_into, while the host's /dev is still reachable.
pub fn populate_dev(new_root: &Path) -> Result<()> {
    let dev = new_root.join("dev");
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=64k"),
    )
    .with_context(|| format!("failed to mount a tmpfs on {}", dev.display()))
    .hint("the rootfs needs an empty /dev directory")?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = dev.join(name);
        std::fs::File::create(&target)
            .with_context(|| format!("failed to create {}", target.display()))?;
        let source = Path::new("/dev").join(name);
        mount(
            Some(&source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| {
            format!(
                "failed to bind-mount {} onto {}",
                source.display(),
                target.display()
            )
        })?;
    }
    Ok(())
}
// ANCHOR_END: dev

// ANCHOR: enter_rootfs
/// In a container's first process (new PID and mount namespaces): everything
/// chapters 3 and 4 do to give it its own root, in order.
pub fn enter_rootfs(root: &Path) -> Result<()> {
    ch03_mount::make_mounts_private()?; // first, before any mount
    populate_dev(root)?; // while the host's /dev is reachable
    pivot_into(root)?;
    ch03_mount::mount_proc() // now inside the new root
}
// ANCHOR_END: enter_rootfs

/// Mount a fresh proc at `<root>/proc`, for the chroot variant (pivot_root
/// uses chapter 3's mount_proc, after the pivot).
pub fn mount_proc_at(root: &Path) -> Result<()> {
    let target = root.join("proc");
    mount(
        Some("proc"),
        &target,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .with_context(|| format!("failed to mount proc on {}", target.display()))
}

/// The names in a directory, sorted: what `ls` shows.
pub fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("failed to read {}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}
