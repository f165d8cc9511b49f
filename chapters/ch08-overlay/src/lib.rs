//! Chapter 8: layers. Namespaces decide what a container sees, cgroups how
//! much it uses; layers decide what it is made of. The container's root is
//! an overlay mount (docker's overlay2 storage driver): read-only lower
//! layers (the rootfs is the base one), stacked under an upper directory of
//! the container's own (`diff`), which takes every write, and a `work`
//! directory the kernel needs on the same filesystem as the upper. The
//! merged view is mounted on `merged`, and the container pivots into that
//! instead of into the rootfs: the rootfs is never written, so any number of
//! containers can share it.
//!
//! This lib holds the three steps: [`Layers::create`] lays out a container's
//! directories, [`mount_overlay`] mounts them, and [`diff`] reads the upper
//! back as `docker diff` does (A added, C changed, D deleted); and the run of
//! chapter 7's container over layers ([`run_over_layers`]), which chapter 9
//! calls with an image's layers.

use anyhow::{bail, Context, Result};
use ch05_uts::{set_hostname, HostnameOption};
use ch06_net::netlink::Netlink;
use ch06_net::{Network, NetworkOptions, Wiring};
use ch07_cgroups::{start_limited, LimitOptions};
use nix::libc;
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::{major, minor};
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use workshop::error::HintExt;
use workshop::process::wait_for;
use workshop::Narrator;

/// Where the directories of each run's layers are made: one directory per
/// run, named after the tool's PID.
pub const RUNS_DIR: &str = "/tmp/workshop-overlay";

/// The xattr overlayfs sets on a directory of the upper that hides the
/// lowers' contents of that directory (an "opaque" directory): made when a
/// directory that exists in a lower is removed and made again.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

// ANCHOR: layers
/// One container's layer directories, as docker's overlay2 lays them out:
/// `diff` (the upper: every write of the container lands here), `work`
/// (overlayfs's scratch space, on the same filesystem as the upper) and
/// `merged` (where the overlay is mounted). Removed when dropped, unless
/// kept.
#[derive(Debug)]
pub struct Layers {
    /// The run's own directory, holding the three below.
    pub dir: PathBuf,
    /// The read-only lower layers, the top one first, the base rootfs last.
    pub lowers: Vec<PathBuf>,
    /// The upper layer: what the container added, changed or deleted.
    pub upper: PathBuf,
    /// overlayfs's work directory.
    pub work: PathBuf,
    /// The mount point of the merged view.
    pub merged: PathBuf,
    keep: bool,
    /// The directory of every run's directory (RUNS_DIR), removed with the
    /// last run's, so that the host keeps no trace of the runs.
    runs_dir: Option<PathBuf>,
}

impl Layers {
    /// Make `dir` and its `diff`, `work` and `merged` for a container over
    /// `lowers` (the top one first). `keep`: leave them when dropped.
    pub fn create(dir: &Path, lowers: Vec<PathBuf>, keep: bool) -> Result<Layers> {
        if lowers.is_empty() {
            bail!("an overlay needs at least one lower layer");
        }
        // A new directory, never an old one: a kept run whose PID came round
        // again must not lend this run its upper. Its parent may go between
        // the two calls (the last run before us removing it): make it again.
        for attempt in 1.. {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("failed to create {}", parent.display()))?;
            }
            match std::fs::create_dir(dir) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 10 => continue,
                made => made
                    .with_context(|| format!("failed to create {}", dir.display()))
                    .hint("a run's layers are left there (--keep): look, then remove them")?,
            }
            break;
        }
        // Made only now: from here on, dropping it removes the directory.
        let layers = Layers {
            dir: dir.to_path_buf(),
            lowers,
            upper: dir.join("diff"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            keep,
            runs_dir: None,
        };
        for d in [&layers.upper, &layers.work, &layers.merged] {
            std::fs::create_dir_all(d)
                .with_context(|| format!("failed to create {}", d.display()))?;
        }
        Ok(layers)
    }

    /// The layers of this run: under [`RUNS_DIR`], named after our PID.
    pub fn for_this_run(lowers: Vec<PathBuf>, keep: bool) -> Result<Layers> {
        Layers::in_runs_dir(Path::new(RUNS_DIR), lowers, keep)
    }

    /// The layers of this run in `runs_dir`, named after our PID; `runs_dir`
    /// goes with the last run that used it.
    pub fn in_runs_dir(runs_dir: &Path, lowers: Vec<PathBuf>, keep: bool) -> Result<Layers> {
        let mut layers =
            Layers::create(&runs_dir.join(std::process::id().to_string()), lowers, keep)?;
        layers.runs_dir = Some(runs_dir.to_path_buf());
        Ok(layers)
    }

    /// Whether the directories stay after the run (`--keep`).
    pub fn kept(&self) -> bool {
        self.keep
    }
}

/// The file that marks a run's directory as kept (`--keep`): the stale
/// reclaim leaves such a directory alone.
pub const KEPT_MARK: &str = "kept";

impl Drop for Layers {
    fn drop(&mut self) {
        if self.keep {
            let _ = std::fs::write(self.dir.join(KEPT_MARK), "");
        } else {
            // The overlay itself was mounted in the container's mount
            // namespace, and went with it: only directories are left.
            // The overlay leaves work/work mode 000: nothing to its owner
            // without CAP_DAC_OVERRIDE (a user namespace's root, chapter
            // 11). Opened first, remove_tree's first try is its only one.
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(
                self.work.join("work"),
                std::fs::Permissions::from_mode(0o700),
            );
            let _ = workshop_rootfs::remove_tree(&self.dir);
            if let Some(runs_dir) = &self.runs_dir {
                // Only when empty: another run's directory keeps it.
                let _ = std::fs::remove_dir(runs_dir);
            }
        }
    }
}
// ANCHOR_END: layers

/// Remove the layer directories of runs that were killed (SIGKILL: they
/// could not clean up): a directory under [`RUNS_DIR`] named after a PID
/// that no longer runs, not kept. Returns what it removed.
pub fn reclaim_stale() -> Result<Vec<PathBuf>> {
    reclaim_stale_in(Path::new(RUNS_DIR))
}

/// [`reclaim_stale`] in another runs directory (chapter 11 keeps a
/// student's runs in one of their own).
pub fn reclaim_stale_in(runs_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return Ok(removed); // no run yet
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() || dir.join(KEPT_MARK).exists() {
            continue;
        }
        // Gone already (another tool's run reclaimed it first) is fine.
        // remove_tree, not remove_dir_all: a run in a user namespace
        // (chapter 11) leaves a work/work of mode 000 that only root reads.
        if dir.exists() {
            workshop_rootfs::remove_tree(&dir)?;
            removed.push(dir);
        }
    }
    Ok(removed)
}

/// Before a run: remove what runs killed with SIGKILL left behind (they
/// could not clean up), saying what: chapter 7's cgroups, this chapter's
/// layer directories, chapter 6's veth pairs.
pub fn reclaim_what_killed_runs_left(nl: &mut Netlink, say: &Narrator) -> Result<()> {
    for stale in ch07_cgroups::cgroup::reclaim_stale()? {
        say.note(&format!(
            "removed {}, a cgroup left by a run that was killed",
            stale.display()
        ));
    }
    for stale in reclaim_stale()? {
        say.note(&format!(
            "removed {}, the layers of a run that was killed",
            stale.display()
        ));
    }
    for stale in ch06_net::reclaim_stale(nl)? {
        say.note(&format!(
            "removed {stale}, the veth pair of a run that has ended"
        ));
    }
    Ok(())
}

/// `--layer DIR`: an existing directory whose path the overlay options can
/// hold (no ',', ':' or backslash), made absolute.
pub fn parse_layer(text: &str) -> Result<PathBuf, String> {
    let path = std::fs::canonicalize(text).map_err(|e| format!("{text}: {e}"))?;
    if !path.is_dir() {
        return Err(format!("{text} is not a directory"));
    }
    overlay_options(
        std::slice::from_ref(&path),
        Path::new("/u"),
        Path::new("/w"),
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}

// ANCHOR: options
/// The overlay's mount options. In `lowerdir=a:b:c` the FIRST is the top:
/// a name in `a` hides the same name in `b` and `c`, as a later `COPY` in a
/// Dockerfile hides an earlier one; the base rootfs therefore comes last.
pub fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    for path in lowers.iter().map(PathBuf::as_path).chain([upper, work]) {
        let text = path.to_string_lossy();
        // The kernel splits the options at ',' and lowerdir at ':'.
        if text.contains([',', ':']) || text.contains('\\') {
            bail!(
                "{} cannot be an overlay layer: its path holds ',', ':' or '\\'",
                path.display()
            );
        }
    }
    let lowerdir: Vec<_> = lowers.iter().map(|l| l.to_string_lossy()).collect();
    Ok(format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        upper.display(),
        work.display()
    ))
}
// ANCHOR_END: options

/// An upper removed at exit need not reach the disk: `volatile` (Linux
/// 5.10) skips the sync of the upper's filesystem when the overlay goes,
/// most of what an overlay costs on a disk. A kept upper is synced.
pub const VOLATILE: &str = ",volatile";

// ANCHOR: mount_overlay
/// Mount the overlay of `layers` on its `merged`: what the container will
/// pivot into. Call it in the container's own mount namespace (private
/// mounts, chapter 3), so that it goes when the container does.
pub fn mount_overlay(layers: &Layers) -> Result<()> {
    mount_overlay_with(layers, "")
}

/// [`mount_overlay`], with more options after ours (`,userxattr` in a
/// user namespace: chapter 11).
pub fn mount_overlay_with(layers: &Layers, more: &str) -> Result<()> {
    let mut options = overlay_options(&layers.lowers, &layers.upper, &layers.work)?;
    if !layers.kept() {
        options.push_str(VOLATILE);
    }
    options.push_str(more);
    mount(
        Some("overlay"),
        &layers.merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .with_context(|| {
        format!(
            "failed to mount overlay on {} ({options})",
            layers.merged.display()
        )
    })
}
// ANCHOR_END: mount_overlay

// ANCHOR: enter_layers
/// In the container (its own mount namespace): mount the overlay on
/// `merged`, then pivot into that, as chapter 4 pivoted into the rootfs.
pub fn enter_layers(layers: &Layers) -> Result<()> {
    ch03_mount::make_mounts_private()?; // the overlay stays in this namespace
    mount_overlay(layers)?;
    ch04_rootfs::enter_rootfs(&layers.merged)
}
// ANCHOR_END: enter_layers

/// Chapters 1 to 7: every namespace so far (this chapter adds none).
pub const FLAGS: CloneFlags = CloneFlags::CLONE_NEWPID
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWNET);

/// What a run over layers takes from the command line, but the network:
/// chapter 7's limits, chapter 5's hostname, and this chapter's `--keep`.
#[derive(clap::Args, Debug, Clone)]
pub struct ContainerOptions {
    /// Keep the container's upper (its `diff`) after it exits, and say where
    #[arg(long)]
    pub keep: bool,

    #[command(flatten)]
    pub limits: LimitOptions,

    #[command(flatten)]
    pub hostname: HostnameOption,
}

/// A run over layers with chapter 6's network (`--network veth|none`,
/// `--ip`). A later chapter flattens it into its own command line to keep
/// every option; chapter 10 takes [`ContainerOptions`] and a network of its
/// own.
#[derive(clap::Args, Debug, Clone)]
pub struct RunOptions {
    #[command(flatten)]
    pub container: ContainerOptions,

    #[command(flatten)]
    pub network: NetworkOptions,
}

/// Chapter 7's container over layers, wired with chapter 6's veth (or lo
/// only): [`run_over_layers_with`] and a [`Wiring`].
pub fn run_over_layers(
    options: &RunOptions,
    lowers: Vec<PathBuf>,
    nl: &mut Netlink,
    say: &Narrator,
    start: impl FnOnce() -> Result<Infallible>,
) -> Result<i32> {
    let mut wiring = Wiring::new(&options.network)?;
    run_over_layers_with(&options.container, &mut wiring, lowers, nl, say, start)
}

// ANCHOR: run
/// Chapter 7's container (its cgroup, network and hostname) whose root is
/// an overlay of `lowers` (the top first) and an upper of its own; `start`
/// runs in it after the pivot (chapter 8 execs the command; chapter 9 first
/// sets the image's user, environment and working directory). `network`
/// wires it: chapter 6's veth, or chapter 10's bridge. Returns the
/// container's exit code, once its layers are gone (unless `--keep`).
pub fn run_over_layers_with(
    options: &ContainerOptions,
    network: &mut dyn Network,
    lowers: Vec<PathBuf>,
    nl: &mut Netlink,
    say: &Narrator,
    start: impl FnOnce() -> Result<Infallible>,
) -> Result<i32> {
    let layers = Layers::for_this_run(lowers, options.keep)?;
    let (cgroup, pid) = start_limited(FLAGS, &options.limits.limits(), || {
        network.inside()?; // chapter 6: lo up; with a cable, wait for it, then eth0
        set_hostname(&options.hostname.name)?; // chapter 5
        enter_layers(&layers)?; // this chapter, instead of enter_rootfs(&root)
        network.in_root()?; // chapter 10: the bridge's /etc/hosts
        start()
    })?;
    network.connect(nl, pid)?; // chapter 6: the cable laid, the addresses sent
    say.container_started(pid);
    let exit = wait_for(pid)?;
    // chapter 7: the OOM killer named, with the --memory it was given
    ch07_cgroups::warn_if_oom_killed(cgroup.as_ref(), exit, options.limits.memory.as_ref(), say);
    if layers.kept() {
        say.note(&format!(
            "kept: the container's upper is {}",
            layers.upper.display()
        ));
    }
    Ok(exit.code()) // `layers` is dropped: its directories go, unless kept
}
// ANCHOR_END: run

/// What a container did to one path, as `docker diff` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A: not in the lowers, there now.
    Added,
    /// C: in the lowers, and the upper holds a new version (or, for a
    /// directory, something beneath it changed).
    Changed,
    /// D: in the lowers, gone now.
    Deleted,
}

/// One line of the diff: a kind and a path inside the container (`/etc/x`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: PathBuf,
    pub kind: Kind,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = match self.kind {
            Kind::Added => 'A',
            Kind::Changed => 'C',
            Kind::Deleted => 'D',
        };
        write!(f, "{letter} {}", self.path.display())
    }
}

// ANCHOR: whiteout
/// A whiteout: how an upper (or a lower made from one) says "deleted". The
/// file is a character device with device number 0/0, under the deleted name.
pub fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && major(meta.rdev()) == 0 && minor(meta.rdev()) == 0
}

/// An opaque directory: the xattr `trusted.overlay.opaque` is `y`, and the
/// lowers' contents of this directory are hidden (it was removed and made
/// again). Reading `trusted.*` needs CAP_SYS_ADMIN.
pub fn is_opaque(dir: &Path) -> bool {
    let (Ok(path), Ok(name)) = (
        CString::new(dir.as_os_str().as_bytes()),
        CString::new(OPAQUE_XATTR),
    ) else {
        return false;
    };
    let mut value = [0u8; 8];
    // SAFETY: both strings are NUL-terminated and live for the call; the
    // kernel writes at most value.len() bytes into value.
    let len = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    len == 1 && value[0] == b'y'
}
// ANCHOR_END: whiteout

/// Whether `rel` (a path relative to the root) is visible in the stack of
/// `lowers` (the top one first), as overlayfs looks it up: the first layer
/// that has the name wins; a whiteout on the way hides it and everything
/// beneath; an opaque directory on the way hides the layers below it.
pub fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    let parts: Vec<Component> = rel.components().collect();
    for layer in lowers {
        let mut path = layer.clone();
        let mut opaque_above = false;
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                break; // not in this layer: look in the next, unless hidden
            };
            if is_whiteout(&meta) {
                return false;
            }
            if i + 1 == parts.len() {
                return true;
            }
            if !meta.is_dir() {
                return false; // a file here hides the whole directory below
            }
            opaque_above |= is_opaque(&path);
        }
        if opaque_above {
            return false;
        }
    }
    false
}

/// The names directory `rel` holds in the lowers' merged view.
fn names_in_lowers(lowers: &[PathBuf], rel: &Path) -> BTreeSet<std::ffi::OsString> {
    lowers
        .iter()
        .filter_map(|layer| std::fs::read_dir(layer.join(rel)).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.file_name()))
        .filter(|name| in_lowers(lowers, &rel.join(name)))
        .collect()
}

// ANCHOR: diff
/// What a container changed, read from its upper alone (`docker diff`):
/// a whiteout is a D; a name the lowers have is a C; any other name is an A.
/// Beneath an opaque directory the lowers are hidden: every name they hold
/// there that the upper has not is a D too. Sorted by path.
pub fn diff(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    walk(upper, Path::new(""), lowers, false, &mut changes)?;
    changes.sort();
    Ok(changes)
}

/// One directory of the upper, `rel` beneath it; `hidden`: the lowers'
/// contents here are hidden by an opaque directory at or above it.
fn walk(
    upper: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    hidden: bool,
    changes: &mut Vec<Change>,
) -> Result<()> {
    let dir = upper.join(rel);
    let mut names = BTreeSet::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("failed to read {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("failed to read {}", dir.display()))?;
        let name = entry.file_name();
        let rel = rel.join(&name);
        names.insert(name);
        let path = upper.join(&rel);
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("failed to stat {}", path.display()))?;
        let before = in_lowers(lowers, &rel);
        let shown = Path::new("/").join(&rel);
        if is_whiteout(&meta) {
            if before && !hidden {
                changes.push(Change {
                    path: shown,
                    kind: Kind::Deleted,
                });
            }
            continue;
        }
        changes.push(Change {
            path: shown,
            kind: if before { Kind::Changed } else { Kind::Added },
        });
        if meta.is_dir() {
            let hidden = hidden || is_opaque(&path);
            walk(upper, &rel, lowers, hidden, changes)?;
        }
    }
    if hidden {
        for gone in names_in_lowers(lowers, rel)
            .into_iter()
            .filter(|n| !names.contains(n))
        {
            changes.push(Change {
                path: Path::new("/").join(rel).join(gone),
                kind: Kind::Deleted,
            });
        }
    }
    Ok(())
}
// ANCHOR_END: diff

#[cfg(test)]
mod tests;
