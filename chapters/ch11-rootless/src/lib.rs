//! Chapter 11: rootless containers. A user namespace gives the container a
//! root of its own: uid 0 inside, with every capability, over the
//! namespaces it owns, and the student's own uid outside, with none over
//! the host. With it, a normal user makes every namespace of the chapters
//! before, mounts an overlay and pivots into it, with no sudo at all.
//!
//! The maps (who is who) are in `idmap`; cgroups delegated to the user, or
//! none, in `cgroup`; the network without root (pasta, slirp4netns, or `lo`
//! alone) in `net`; the attacks every later container is tried with, in
//! `attack`.

use anyhow::{Context, Result};
use ch01_clone::Gate;
use ch05_uts::{set_hostname, HostnameOption};
use ch07_cgroups::LimitOptions;
use ch08_overlay::Layers;
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};
use std::convert::Infallible;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use workshop::error::{hinted, HintExt};
use workshop::process::wait_for;
use workshop::Narrator;

pub mod attack;
pub mod cgroup;
pub mod idmap;
pub mod net;
pub mod shm;

use idmap::{MapChoice, Mapping};

// ANCHOR: flags
/// Chapter 8's namespaces, and two more: a user namespace, created first
/// by the kernel whatever the order of the flags, which owns all the
/// others; and an IPC namespace (SysV shared memory, semaphores and message
/// queues of its own: the host's are out of sight).
pub const FLAGS: CloneFlags = ch08_overlay::FLAGS
    .union(CloneFlags::CLONE_NEWUSER)
    .union(CloneFlags::CLONE_NEWIPC);
// ANCHOR_END: flags

// ANCHOR: start
/// Start `body` in a new user namespace (and the others of `flags`), as
/// root in there. The child is born as nobody: a new user namespace maps no
/// id until its `uid_map` is written, from outside. So it waits at a gate
/// while the tool writes the maps (and lays the network, which needs them),
/// then makes itself root, and runs `body`. `cgroup`: a delegated cgroup to
/// be born in (chapter 7's clone3), if any.
pub fn start_in_user_namespace(
    flags: CloneFlags,
    mapping: &Mapping,
    cgroup: Option<&cgroup::Delegated>,
    before_the_gate: impl FnOnce(Pid) -> Result<()>,
    body: impl FnOnce() -> Result<Infallible>,
) -> Result<Pid> {
    let mut gate = Gate::new()?;
    let child = || {
        gate.pass()?; // the maps are written
        become_root(mapping)?;
        body()
    };
    let pid = match cgroup {
        Some(delegated) => {
            ch07_cgroups::clone_into_cgroup(flags, delegated.open_dir()?.as_fd(), child)
        }
        None => ch01_clone::clone_child(flags, child),
    }
    .map_err(refused_user_namespace)?;
    // Maps first, then anything that joins the namespace (pasta does).
    let set_up = idmap::write_maps(pid, mapping).and_then(|()| before_the_gate(pid));
    if let Err(e) = set_up {
        ch06_net::stop_waiting_container(pid);
        return Err(e);
    }
    gate.open();
    Ok(pid)
}
// ANCHOR_END: start

// ANCHOR: become_root
/// In the container, once mapped: take uid and gid 0. The kernel already
/// counts us as 0 (the map says the student's id is 0 in here), so this
/// changes only the saved and filesystem ids; with a range of subordinate
/// gids, drop the host's supplementary groups too (they are not mapped,
/// and show as nogroup). With one id mapped, setgroups() is denied.
pub fn become_root(mapping: &Mapping) -> Result<()> {
    if mapping.helpers.is_some() {
        nix::unistd::setgroups(&[]).context("failed to setgroups([]) in the user namespace")?;
    }
    let root_gid = Gid::from_raw(0);
    let root_uid = Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .context("failed to setresgid(0, 0, 0) in the user namespace")?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .context("failed to setresuid(0, 0, 0) in the user namespace")?;
    // A change of ids may clear PR_SET_PDEATHSIG: ask again.
    workshop::process::rearm_parent_death_signal()
}
// ANCHOR_END: become_root

/// The settings that forbid unprivileged user namespaces (with the value
/// that does), and those set so on a machine: `cargo xtask doctor` reads
/// the same list.
pub use workshop_host::{forbidding_settings, FORBIDDING};

/// A clone() of a user namespace refused: say which setting refused it,
/// and the command that shows it.
fn refused_user_namespace(err: anyhow::Error) -> anyhow::Error {
    let errno = err
        .root_cause()
        .downcast_ref::<Errno>()
        .copied()
        .or_else(|| {
            err.downcast_ref::<workshop::error::Hinted>()
                .and_then(|h| errno_in(&h.message))
        });
    if !matches!(errno, Some(Errno::EPERM | Errno::ENOSPC | Errno::EACCES)) {
        return err;
    }
    let settings = forbidding_settings(Path::new("/"));
    let hint = if settings.is_empty() {
        "none of the usual settings forbids it (`sysctl kernel.unprivileged_userns_clone user.max_user_namespaces`); \
         a seccomp filter or a security module (SELinux, AppArmor) may: are you inside a container?"
            .to_string()
    } else {
        let named: Vec<String> = settings
            .iter()
            .map(|(setting, what)| format!("{setting} ({what})"))
            .collect();
        format!(
            "this machine forbids unprivileged user namespaces: {}; see it with `cat {}`, \
             and ask its root to allow them (the book's troubleshooting shows how)",
            named.join("; "),
            settings
                .iter()
                .map(|(s, _)| s.split(' ').next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    hinted(
        format!("the kernel refused a new user namespace: {err:#}"),
        hint,
    )
}

fn errno_in(message: &str) -> Option<Errno> {
    [Errno::EPERM, Errno::ENOSPC, Errno::EACCES]
        .into_iter()
        .find(|e| message.contains(&format!("{e}")))
}

// ANCHOR: enter_layers
/// Chapter 8's `enter_layers`, in a user namespace: the overlay keeps its
/// own notes (opaque directories, redirects) in extended attributes, and
/// the `trusted.*` ones it uses as root are for the host's root alone; in
/// a user namespace it must use `user.overlay.*` (`userxattr`, Linux 5.11).
pub fn enter_layers(layers: &Layers) -> Result<()> {
    ch03_mount::make_mounts_private()?; // first, before any mount
    ch08_overlay::mount_overlay_with(layers, ",userxattr").hint(
        "unprivileged overlay mounts need Linux 5.11 or later, and upper and work on a filesystem \
         that takes user.* xattrs (ext4, xfs, btrfs; tmpfs since 6.6)",
    )?;
    ch04_rootfs::populate_dev(&layers.merged)?; // while the host's /dev is reachable
                                                // Before the pivot, not after as chapter 4 does: in a user namespace
                                                // the kernel mounts a new proc only while a proc it can compare with is
                                                // in sight (one with nothing hidden under other mounts, or the new one
                                                // would reveal what they hide), and the pivot takes the host's away.
    ch04_rootfs::mount_proc_at(&layers.merged)
        .hint("in a user namespace, a new /proc is refused when the /proc you started from has paths hidden under other mounts (as inside a container)")?;
    ch04_rootfs::pivot_into(&layers.merged)
}
// ANCHOR_END: enter_layers

/// Where a rootless run keeps its layers: the student's own runtime
/// directory ($XDG_RUNTIME_DIR, a tmpfs of theirs), else one of theirs in
/// /tmp, made 0700 and checked to be theirs (another user could have made
/// it first, to watch or change what the container writes).
pub fn runs_dir() -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = Uid::current().as_raw();
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.metadata().is_ok_and(|m| m.uid() == uid && m.is_dir()));
    let dir = match base {
        Some(base) => base.join("workshop-rootless"),
        None => PathBuf::from(format!("/tmp/workshop-rootless-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("failed to create {}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(&dir)
        .with_context(|| format!("failed to look at {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(hinted(
            format!(
                "{} is not a directory of yours alone (owner {}, mode {:o})",
                dir.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ),
            "someone else made it: remove it (as root), or set XDG_RUNTIME_DIR to a directory of yours",
        ));
    }
    Ok(dir)
}

/// The run's options, as the command line gives them: chapter 8's
/// (`--keep`, the limits, the hostname), this chapter's `--map` and its
/// network.
#[derive(clap::Args, Debug, Clone)]
pub struct RootlessOptions {
    /// Which of the host's ids the container's users are (see the book)
    #[arg(long, value_enum, default_value_t = MapChoice::Auto)]
    pub map: MapChoice,

    #[command(flatten)]
    pub network: net::NetworkOption,

    /// Keep the container's upper (its `diff`) after it exits, and say where
    #[arg(long, conflicts_with = "read_only")]
    pub keep: bool,

    /// The container's root read-only, as `docker run --read-only`: the
    /// layers alone, no upper (nothing written, nothing to remove)
    #[arg(long)]
    pub read_only: bool,

    #[command(flatten)]
    pub limits: LimitOptions,

    #[command(flatten)]
    pub hostname: HostnameOption,
}

// ANCHOR: run
/// A rootless container: chapter 8's container over `lowers`, in a user
/// namespace of the student's, with chapter 7's limits when a cgroup is
/// delegated to them, and a network without root. `start` runs in it after
/// the pivot. Returns the container's exit code, once its layers are gone.
pub fn run_rootless(
    options: &RootlessOptions,
    lowers: Vec<PathBuf>,
    say: &Narrator,
    start: impl FnOnce() -> Result<Infallible>,
) -> Result<i32> {
    let mapping = idmap::plan_for_me(options.map)?;
    let root = if options.read_only {
        Root::ReadOnly(lowers) // no upper: no runs dir to make
    } else {
        let runs = runs_dir()?;
        for stale in ch08_overlay::reclaim_stale_in(&runs)? {
            say.note(&format!(
                "removed {}, the layers of a run that was killed",
                stale.display()
            ));
        }
        Root::Layers(Layers::in_runs_dir(&runs, lowers, options.keep)?)
    };
    let cgroup = cgroup::for_limits(&options.limits.limits(), say)?;
    let mut network = net::Network::choose(options.network.network)?;
    if let Some(why) = &network.fallback {
        say.note(&format!("network: lo only: {why}"));
    }
    let kind = network.kind();
    let pid = start_in_user_namespace(
        FLAGS,
        &mapping,
        cgroup.as_ref(),
        |pid| network.connect(pid), // pasta or slirp4netns, from outside
        || {
            net::inside(kind)?; // lo up, unless pasta did it
            set_hostname(&options.hostname.name)?; // chapter 5, in our own UTS namespace
            root.enter()?; // chapter 8's overlay, with userxattr (or the layers, read-only)
            workshop::process::container_environment(); // none of the student's
            start()
        },
    )?;
    say.container_started(pid);
    let exit = wait_for(pid)?;
    if let Some(cgroup) = &cgroup {
        cgroup.warn_if_oom_killed(exit, options.limits.memory.as_ref(), say);
    }
    if let Root::Layers(layers) = &root {
        if layers.kept() {
            say.note(&format!(
                "kept: the container's upper is {}",
                layers.upper.display()
            ));
        }
    }
    Ok(exit.code())
}

/// The container's root: chapter 8's layers and an upper of its own, or,
/// with `--read-only`, the lowers alone.
pub enum Root {
    Layers(Layers),
    ReadOnly(Vec<PathBuf>),
}

impl Root {
    /// In the container: mount it, and pivot into it.
    pub fn enter(&self) -> Result<()> {
        match self {
            Root::Layers(layers) => enter_layers(layers),
            Root::ReadOnly(lowers) => enter_read_only(lowers),
        }
    }
}

// ANCHOR: read_only
/// `--read-only`: the lowers as the root, and nothing written. One lower
/// (the rootfs) is bound as it is; more are an overlay with no upper, which
/// the kernel mounts read-only, on the base lower's own directory (the
/// lowers are looked up before the mount covers it). After the pivot, the
/// root is remounted read-only, with the flags it had: in a user
/// namespace, a remount may not clear nosuid, nodev, noexec or the atime
/// flags of a mount that came from the host (they are locked).
pub fn enter_read_only(lowers: &[PathBuf]) -> Result<()> {
    use nix::sys::statvfs::{statvfs, FsFlags};
    ch03_mount::make_mounts_private()?; // first, before any mount
    let base = lowers.last().context("no root to enter")?;
    if lowers.len() > 1 {
        let lowerdir: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
        let options = format!("lowerdir={},userxattr", lowerdir.join(":"));
        mount(
            Some("overlay"),
            base,
            Some("overlay"),
            MsFlags::MS_RDONLY,
            Some(options.as_str()),
        )
        .with_context(|| {
            format!(
                "failed to mount a read-only overlay on {} ({options})",
                base.display()
            )
        })?;
    }
    ch04_rootfs::populate_dev(base)?; // while the host's /dev is reachable
    ch04_rootfs::mount_proc_at(base)?; // before the pivot, as enter_layers
    ch04_rootfs::pivot_into(base)?;
    let had = statvfs("/").context("failed to statvfs /")?.flags();
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    for (st, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
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
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .context("failed to remount / read-only")
}
// ANCHOR_END: read_only
// ANCHOR_END: run
