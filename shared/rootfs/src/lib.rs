//! Root filesystems for the containers, built from what the host already has:
//! nothing is ever downloaded.
//!
//! - [`Source::Busybox`]: a busybox binary as /bin/busybox and a /bin/APPLET
//!   symlink for each applet (a static busybox makes a ~2 MB rootfs);
//! - [`Source::HostBinaries`]: the host's own sh, ls, ps, ip, ping... each
//!   copied with the shared libraries it loads, read from its ELF headers
//!   (see [`elf`]), never by running `ldd`;
//! - [`Source::Tar`]: a real image (Alpine minirootfs, `docker export`),
//!   unpacked entry by entry with the safety rules of [`unpack`]; the
//!   setuid/setgid bits of its files are dropped unless asked for
//!   ([`SetuidBits::Keep`], see [`check_setuid_is_safe`]).
//!
//! Every build goes into a temporary directory beside its target, gets a
//! marker file once it is complete, and is then renamed into place, under a
//! lock. A run killed halfway leaves only a `.NAME.building.PID.N` directory,
//! which the next build removes. When running under sudo the finished tree
//! is handed back to the user who ran sudo, so `cargo clean` still works.

pub mod elf;
pub mod unpack;

pub use unpack::SetuidBits;

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use std::fmt;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use workshop::error::hinted;

/// Where a root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Copy this busybox binary (with its shared libraries if it is dynamic)
    /// to /bin/busybox and make a `/bin/<applet>` symlink for every applet
    /// `busybox --list` names.
    Busybox(PathBuf),
    /// The host's own binaries, each copied with every shared library it loads.
    HostBinaries,
    /// Unpack a tar or tar.gz image (Alpine minirootfs, `docker export` output),
    /// dropping or keeping the setuid/setgid bits of its files.
    Tar(PathBuf, SetuidBits),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Busybox(path) => write!(f, "busybox ({})", path.display()),
            Source::HostBinaries => f.write_str("the host's binaries"),
            Source::Tar(path, SetuidBits::Drop) => write!(f, "the image {}", path.display()),
            Source::Tar(path, SetuidBits::Keep) => write!(
                f,
                "the image {} (keeping its setuid/setgid bits)",
                path.display()
            ),
        }
    }
}

/// The file a complete build leaves at the top of the rootfs. A directory
/// without it (a run killed halfway, an empty dir) is not a built rootfs.
pub const MARKER: &str = ".workshop-rootfs";

/// How to make a rootfs, said in every error about one.
pub const HINT: &str = "build one with `cargo xtask rootfs`, or import an image with `cargo xtask rootfs --from alpine-minirootfs.tar.gz`; any directory with /bin/sh works as --rootfs PATH";

/// The programs a rootfs built from the host's binaries gets: (name, the
/// Debian package that has it, whether the chapters need it).
pub const HOST_BINARIES: &[(&str, &str, bool)] = &[
    ("sh", "dash", true),
    ("ls", "coreutils", true),
    ("ps", "procps", true),
    ("cat", "coreutils", true),
    ("echo", "coreutils", true),
    ("grep", "grep", true),
    ("head", "coreutils", true),
    ("tail", "coreutils", true),
    ("date", "coreutils", true),
    ("sleep", "coreutils", true),
    ("true", "coreutils", true),
    ("hostname", "hostname", true),
    ("mount", "mount", true),
    ("id", "coreutils", true),
    ("ip", "iproute2", true),
    ("ping", "iputils-ping", true),
    ("false", "coreutils", false),
    ("umount", "mount", false),
    ("env", "coreutils", false),
    ("uname", "coreutils", false),
    ("readlink", "coreutils", false),
    ("stat", "coreutils", false),
    ("wc", "coreutils", false),
    ("mkdir", "coreutils", false),
    ("rm", "coreutils", false),
    ("touch", "coreutils", false),
    ("ln", "coreutils", false),
    ("sed", "sed", false),
    ("sort", "coreutils", false),
    // Handy in the later chapters: a CPU hog, memory, signals, limits.
    ("cp", "coreutils", false),
    ("mv", "coreutils", false),
    ("chmod", "coreutils", false),
    ("kill", "procps", false),
    ("yes", "coreutils", false),
    ("dd", "coreutils", false),
    ("free", "procps", false),
    ("nproc", "coreutils", false),
    ("tr", "coreutils", false),
    ("cut", "coreutils", false),
    ("seq", "coreutils", false),
];

/// Where host programs are looked up, like a root shell's PATH.
pub use workshop_host::PATH_DIRS;

/// The default rootfs: `<target dir>/rootfs`, where the target dir is found
/// from [`std::env::current_exe`] (target/debug/ch04-rootfs -> target/), so
/// that every chapter, the tests and `cargo xtask rootfs` agree on it.
///
/// The rule: CARGO_TARGET_DIR when it is set (a relative one only when the
/// running binary is inside it, since tests run from their package's
/// directory); otherwise the nearest directory above the binary that holds
/// `CACHEDIR.TAG`, which cargo writes at the top of every target dir (this
/// covers `target/debug/deps/` test binaries, `target/<triple>/release/`,
/// examples and custom profiles); failing that, the nearest one with a
/// `debug` or `release` child.
pub fn default_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to find this program (current_exe)")?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let env = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty());
    match target_dir_of(&exe, env.as_deref().map(Path::new), &cwd) {
        Some(target) => Ok(target.join("rootfs")),
        None => Err(hinted(
            format!(
                "cannot tell cargo's target directory from where this program is ({})",
                exe.display()
            ),
            "run it through cargo (`cargo run -p ...`), set CARGO_TARGET_DIR, or pass --rootfs PATH",
        )),
    }
}

/// The target directory that holds `exe` (see [`default_dir`] for the rule).
pub fn target_dir_of(exe: &Path, cargo_target_dir: Option<&Path>, cwd: &Path) -> Option<PathBuf> {
    if let Some(env) = cargo_target_dir {
        if env.is_absolute() {
            return Some(env.to_path_buf());
        }
        let env = elf::normalize(&cwd.join(env));
        if exe.starts_with(&env) {
            return Some(env);
        }
    }
    let above = || exe.ancestors().skip(1);
    above()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .or_else(|| above().find(|dir| dir.join("debug").is_dir() || dir.join("release").is_dir()))
        .map(Path::to_path_buf)
}

/// The source used when none is asked for: `Busybox("/bin/busybox")` when
/// that file exists (busybox-static on Debian), else `HostBinaries`.
pub fn default_source() -> Source {
    let busybox = Path::new("/bin/busybox");
    if busybox.is_file() {
        Source::Busybox(busybox.to_path_buf())
    } else {
        Source::HostBinaries
    }
}

/// Build the default rootfs (from [`default_source`]) if it is not there
/// yet, and return its directory. "There" means a complete build: one that
/// left the [`MARKER`] file; a half-built directory is rebuilt.
///
/// `announce` is called with one line before building ("building a root
/// filesystem in target/rootfs from busybox (/bin/busybox) (once; `cargo
/// xtask rootfs --rebuild` redoes it)") and never when the rootfs is reused.
/// Safe when several processes call it at once: builds are serialised by a
/// lock beside the directory, each goes into a temporary directory that is
/// renamed into place, and a late finisher discards its copy.
pub fn ensure_default(announce: impl FnOnce(&str)) -> Result<PathBuf> {
    let dir = default_dir()?;
    ensure(&dir, &default_source(), announce)?;
    Ok(dir)
}

/// [`ensure_default`] for any directory and source: build `dir` from
/// `source` unless a complete rootfs is already there.
pub fn ensure(dir: &Path, source: &Source, announce: impl FnOnce(&str)) -> Result<()> {
    if is_built(dir) {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| p.is_dir());
    if let Some(parent) =
        parent.filter(|p| nix::unistd::access(*p, nix::unistd::AccessFlags::W_OK).is_err())
    {
        // A student running chapter 11 as themselves, in a target/ that
        // root's first build made: the rootfs cannot be built here by them.
        return Err(hinted(
            format!(
                "no root filesystem in {} yet, and {} is not yours to write",
                shown(dir).display(),
                shown(parent).display()
            ),
            "build it once with the rights that directory wants: `cargo xtask rootfs` as its owner \
             (or `sudo chown -R $(id -u) target` first), or pass --rootfs PATH",
        ));
    }
    let _lock = lock_beside(dir)?;
    // Another process may have finished while we waited for the lock.
    if is_built(dir) {
        return Ok(());
    }
    announce(&format!(
        "building a root filesystem in {} from {source} (once; `cargo xtask rootfs --rebuild` redoes it)",
        shown(dir).display()
    ));
    build_locked(dir, source, &mut warnings_to_stderr, Replace::IfNotBuilt)
}

/// Whether `dir` holds a complete build (it has the marker file).
pub fn is_built(dir: &Path) -> bool {
    fs::symlink_metadata(dir.join(MARKER)).is_ok_and(|m| m.is_file())
}

/// Build a rootfs at `dir` from `source`, replacing what is there (the new
/// tree is swapped in atomically with renameat2(RENAME_EXCHANGE), then the
/// old one is removed). Warnings (image entries skipped) go to stderr.
pub fn build(dir: &Path, source: &Source) -> Result<()> {
    build_with(dir, source, &mut warnings_to_stderr)
}

/// The progress of a build nobody watches: only its warnings, on stderr.
fn warnings_to_stderr(line: &str) {
    if line.starts_with("warning:") {
        eprintln!("{line}");
    }
}

/// [`build`], telling `progress` one line per step (for `cargo xtask rootfs`).
pub fn build_with(dir: &Path, source: &Source, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let _lock = lock_beside(dir)?;
    build_locked(dir, source, progress, Replace::Always)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Replace {
    Always,
    /// Keep a complete rootfs that appeared meanwhile: ours is discarded.
    IfNotBuilt,
}

static BUILDS: AtomicUsize = AtomicUsize::new(0);

fn build_locked(
    dir: &Path,
    source: &Source,
    progress: &mut dyn FnMut(&str),
    replace: Replace,
) -> Result<()> {
    if fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(hinted(
            format!("{} is in the way: it is not a directory", dir.display()),
            "move it away, or choose another directory",
        ));
    }
    reclaim_leftovers(dir);
    let n = BUILDS.fetch_add(1, Ordering::Relaxed);
    let tmp = beside(dir, &format!("building.{}.{n}", std::process::id()));
    let built = populate(&tmp, dir, source, progress);
    if let Err(e) = built {
        let _ = remove_tree(&tmp);
        return Err(e);
    }
    put_in_place(&tmp, dir, replace, progress)
}

/// Build the whole tree at `tmp` (which will become `dir`).
fn populate(tmp: &Path, dir: &Path, source: &Source, progress: &mut dyn FnMut(&str)) -> Result<()> {
    fs::create_dir(tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
    set_mode(tmp, 0o755)?;
    match source {
        Source::Busybox(busybox) => from_busybox(tmp, busybox, progress)?,
        Source::HostBinaries => from_host_binaries(tmp, progress)?,
        Source::Tar(image, setuid) => from_tar(tmp, dir, image, *setuid, progress)?,
    }
    progress("writing /etc (passwd, group, hosts, resolv.conf) and the mount points /proc /sys /dev /tmp");
    write_skeleton(tmp)?;
    check(tmp, dir).with_context(|| format!("{source} does not make a usable root filesystem"))?;
    write_new(
        &tmp.join(MARKER),
        format!("a root filesystem built by the Container Workshop from {source}\n").as_bytes(),
        0o644,
    )?;
    if let Some((uid, gid)) = sudo_owner() {
        progress(&format!(
            "handing the tree back to uid {uid} gid {gid} (the user who ran sudo)"
        ));
        hand_back(tmp, uid, gid)?;
    }
    Ok(())
}

/// Rename the finished `tmp` to `dir`, swapping out what was there.
fn put_in_place(
    tmp: &Path,
    dir: &Path,
    replace: Replace,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    // rename(2) of a directory replaces a missing or empty one, atomically.
    match fs::rename(tmp, dir) {
        Ok(()) => return Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(nix::libc::ENOTEMPTY) | Some(nix::libc::EEXIST)
            ) => {}
        Err(e) => {
            let _ = remove_tree(tmp);
            return Err(e).with_context(|| {
                format!("failed to rename {} to {}", tmp.display(), dir.display())
            });
        }
    }
    if replace == Replace::IfNotBuilt && is_built(dir) {
        // Someone else's complete build got there first: keep theirs.
        return remove_tree(tmp);
    }
    let old = exchange(tmp, dir)?;
    if let Err(e) = remove_tree(&old) {
        progress(&format!(
            "warning: could not remove the previous rootfs, now at {}: {e:#}",
            old.display()
        ));
    }
    Ok(())
}

/// Swap `new` into `dir`; returns where the old tree now is.
fn exchange(new: &Path, dir: &Path) -> Result<PathBuf> {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    match renameat2(AT_FDCWD, new, AT_FDCWD, dir, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => Ok(new.to_path_buf()),
        // A filesystem without RENAME_EXCHANGE: two renames, with a short gap.
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
            let n = BUILDS.fetch_add(1, Ordering::Relaxed);
            let old = beside(dir, &format!("old.{}.{n}", std::process::id()));
            fs::rename(dir, &old).with_context(|| {
                format!("failed to rename {} to {}", dir.display(), old.display())
            })?;
            fs::rename(new, dir).with_context(|| {
                format!("failed to rename {} to {}", new.display(), dir.display())
            })?;
            Ok(old)
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "failed to renameat2 {} {} (RENAME_EXCHANGE)",
                new.display(),
                dir.display()
            )
        }),
    }
}

/// `.NAME.TAG` beside `dir`.
fn beside(dir: &Path, tag: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.{tag}"))
}

/// Remove what killed builds of `dir` left beside it (their process is gone).
fn reclaim_leftovers(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let name = name.to_string_lossy();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file
            .strip_prefix(&format!(".{name}.building."))
            .or_else(|| file.strip_prefix(&format!(".{name}.old.")))
        else {
            continue;
        };
        let pid = rest.split('.').next().and_then(|p| p.parse::<i32>().ok());
        let alive = pid.is_some_and(|pid| {
            pid == std::process::id() as i32
                || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                    != Err(nix::errno::Errno::ESRCH)
        });
        if !alive {
            let _ = remove_tree(&entry.path());
        }
    }
}

/// Take the lock that serialises builds of `dir` (`.NAME.lock` beside it).
/// It is released when the returned guard drops, or when the process dies.
fn lock_beside(dir: &Path) -> Result<Flock<fs::File>> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
    let path = beside(dir, "lock");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        // Someone else's lock file (root's, say): reading is enough for flock.
        .or_else(|_| fs::File::open(&path))
        .with_context(|| format!("failed to open the lock file {}", path.display()))?;
    if let Some((uid, gid)) = sudo_owner() {
        let _ = std::os::unix::fs::fchown(&file, Some(uid), Some(gid));
    }
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("failed to flock {}", path.display()))
}

fn from_busybox(root: &Path, busybox: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    if !busybox.is_file() {
        return Err(hinted(
            format!("{} does not exist", busybox.display()),
            "install a static busybox (`apt-get install busybox-static`), or use --host-binaries",
        ));
    }
    let elf = elf::read(busybox)?;
    let linkage = match &elf {
        Some(e) if e.is_static() => "static",
        Some(_) => "dynamic",
        None => "not ELF",
    };
    progress(&format!(
        "copying {} ({linkage}) to /bin/busybox",
        busybox.display()
    ));
    install(root, busybox, Path::new("/bin/busybox"))?;
    let libs = elf::Search::host().libraries_of(busybox, Path::new("/bin/busybox"))?;
    if !libs.is_empty() {
        progress(&format!(
            "copying the {} shared libraries it loads",
            libs.len()
        ));
        place_all(root, &libs)?;
    }
    let out = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .with_context(|| format!("failed to run {} --list", busybox.display()))?;
    if !out.status.success() {
        bail!(
            "{} --list failed ({}): {}",
            busybox.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/') && *a != "busybox" && *a != "." && *a != "..")
        .map(str::to_owned)
        .collect();
    progress(&format!(
        "linking {} applets: /bin/APPLET -> busybox",
        applets.len()
    ));
    for applet in &applets {
        let link = root.join("bin").join(applet);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("busybox", &link)
                .with_context(|| format!("failed to symlink {} -> busybox", link.display()))?;
        }
    }
    Ok(())
}

/// Where `name` is on the host, through [`PATH_DIRS`]: an executable file
/// (host symlinks followed, so /bin/sh finds dash).
pub use workshop_host::find_program as find_host_program;

/// The programs of [`HOST_BINARIES`] that `find` finds, or an error naming
/// every required one it does not, with the packages that have them.
fn pick_programs(find: impl Fn(&str) -> Option<PathBuf>) -> Result<Vec<(&'static str, PathBuf)>> {
    let mut programs = Vec::new();
    let mut missing = Vec::new();
    for &(name, package, required) in HOST_BINARIES {
        match find(name) {
            Some(path) => programs.push((name, path)),
            None if required => missing.push((name, package)),
            None => {}
        }
    }
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|(n, _)| format!("`{n}`")).collect();
        let mut packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
        packages.dedup();
        return Err(hinted(
            format!(
                "the host has no {}, which the rootfs needs (looked in {})",
                names.join(", "),
                PATH_DIRS.join(" ")
            ),
            format!(
                "install {} (`apt-get install {}`), or build from busybox instead: `apt-get install busybox-static`, then `cargo xtask rootfs --rebuild`",
                packages.join(" "),
                packages.join(" ")
            ),
        ));
    }
    Ok(programs)
}

fn from_host_binaries(root: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let programs = pick_programs(find_host_program)?;
    let names: Vec<&str> = programs.iter().map(|(n, _)| *n).collect();
    progress(&format!(
        "copying {} programs from the host: {}",
        programs.len(),
        names.join(" ")
    ));
    let search = elf::Search::host();
    let mut libs: Vec<elf::Placement> = Vec::new();
    for (name, host) in &programs {
        let inside = Path::new("/bin").join(name);
        install(root, host, &inside)?;
        for lib in search.libraries_of(host, &inside)? {
            if !libs.contains(&lib) {
                libs.push(lib);
            }
        }
    }
    let loaders: Vec<String> = programs
        .iter()
        .filter_map(|(_, host)| elf::read(host).ok().flatten()?.interpreter)
        .map(|i| i.display().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    progress(&format!(
        "copying the {} shared libraries they load (from their ELF headers), with the dynamic loader {}",
        libs.len(),
        if loaders.is_empty() { "(none)".to_string() } else { loaders.join(" ") }
    ));
    place_all(root, &libs)
}

fn from_tar(
    root: &Path,
    dir: &Path,
    image: &Path,
    setuid: SetuidBits,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    if setuid == SetuidBits::Keep {
        let closed = check_setuid_is_safe(dir)?;
        progress(&format!(
            "keeping setuid/setgid bits: {} (mode {:o}) keeps other users away from them",
            closed.display(),
            fs::metadata(&closed)
                .map(|m| m.mode() & 0o7777)
                .unwrap_or(0)
        ));
    }
    progress(&format!("unpacking {}", image.display()));
    let done = unpack::unpack(image, root, unpack::Options::for_this_process(setuid))?;
    progress(&format!(
        "unpacked {} entries ({}){}",
        done.written,
        done.compression,
        if done.devices > 0 {
            format!(
                "; left out {} device/fifo entries (the container gets its own /dev)",
                done.devices
            )
        } else {
            String::new()
        }
    ));
    if done.setuid_dropped > 0 {
        progress(&format!(
            "dropped the setuid/setgid bits of {} (`cargo xtask rootfs --from FILE --keep-setuid` keeps them)",
            files(done.setuid_dropped)
        ));
    }
    if done.setuid_kept > 0 {
        progress(&format!(
            "kept the setuid/setgid bits of {}",
            files(done.setuid_kept)
        ));
    }
    const SHOWN: usize = 10;
    for warning in done.warnings.iter().take(SHOWN) {
        progress(&format!("warning: {warning}"));
    }
    if done.warnings.len() > SHOWN {
        progress(&format!(
            "warning: ... and {} more entries skipped",
            done.warnings.len() - SHOWN
        ));
    }
    Ok(())
}

/// "1 file", "3 files".
fn files(n: usize) -> String {
    format!("{n} file{}", if n == 1 { "" } else { "s" })
}

/// Whether the setuid/setgid bits of an image may be kept in a rootfs at
/// `dir`; returns the directory that keeps other users out. Inside, the
/// rootfs is `/`, so it cannot itself be 0700 (no user but root could then
/// run anything in the container, which is what setuid programs are for):
/// a directory above it must be closed to group and others (`chmod 700
/// target`). Only root can keep them (a user's unpack owns every file), and
/// not under sudo, whose hand-back chown clears them.
pub fn check_setuid_is_safe(dir: &Path) -> Result<PathBuf> {
    if !nix::unistd::geteuid().is_root() {
        return Err(hinted(
            "--keep-setuid needs root: a user's unpack owns every file, so its setuid bits would be the user's own",
            "leave --keep-setuid out, or run as root",
        ));
    }
    if sudo_owner().is_some() {
        return Err(hinted(
            "--keep-setuid does not work under sudo: the rootfs is handed back to the user who ran sudo, and that chown clears setuid/setgid bits",
            "run it from a root shell instead, or leave --keep-setuid out",
        ));
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = fs::canonicalize(parent)
        .with_context(|| format!("failed to find the directory above {}", dir.display()))?;
    for above in parent.ancestors() {
        let meta =
            fs::metadata(above).with_context(|| format!("failed to stat {}", above.display()))?;
        if meta.mode() & 0o011 == 0 {
            return Ok(above.to_path_buf());
        }
    }
    Err(hinted(
        format!(
            "--keep-setuid would leave setuid programs where any user can run them: every directory above {} lets other users through",
            dir.display()
        ),
        format!(
            "close the directory that holds it to other users first (`chmod 700 {}`), or leave --keep-setuid out",
            shown(&parent).display()
        ),
    ))
}

/// Put what [`elf::Search::libraries_of`] listed into the rootfs at `root`.
pub fn place_all(root: &Path, placements: &[elf::Placement]) -> Result<()> {
    for p in placements {
        match p {
            elf::Placement::Copy { from, to } => install(root, from, to)?,
            elf::Placement::Link { at, target } => {
                let link = inside(root, at);
                make_dirs_inside(root, at.parent().unwrap_or(Path::new("/")))?;
                if fs::symlink_metadata(&link).is_err() {
                    std::os::unix::fs::symlink(target, &link).with_context(|| {
                        format!(
                            "failed to symlink {} -> {}",
                            link.display(),
                            target.display()
                        )
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// `path` (absolute, as the container will see it) under `root`.
fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Create `dir` (absolute, as the container sees it) as real directories
/// under `root`, even where the host has symlinks (merged /usr: /lib ->
/// usr/lib). Refuses to go through a symlink inside `root`.
fn make_dirs_inside(root: &Path, dir: &Path) -> Result<()> {
    let mut here = root.to_path_buf();
    for c in dir.components() {
        let Component::Normal(part) = c else { continue };
        here.push(part);
        match fs::symlink_metadata(&here) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{} is in the way: it is not a directory", here.display()),
            Err(_) => {
                fs::create_dir(&here)
                    .with_context(|| format!("failed to create {}", here.display()))?;
                set_mode(&here, 0o755)?;
            }
        }
    }
    Ok(())
}

/// Put the host program `from` at `to` (absolute, as the container will see
/// it) under `root`, with every shared library it loads. Returns how many
/// files and links that added besides the program.
pub fn install_program(root: &Path, from: &Path, to: &Path) -> Result<usize> {
    install(root, from, to)?;
    let libs = elf::Search::host().libraries_of(from, to)?;
    place_all(root, &libs)?;
    Ok(libs.len())
}

/// Copy the host file `from` (its content, following host symlinks) to
/// `to` (absolute, as the container will see it) under `root`, with its
/// permission bits but not setuid/setgid: the copy belongs to whoever builds.
pub fn install(root: &Path, from: &Path, to: &Path) -> Result<()> {
    let dest = inside(root, to);
    make_dirs_inside(root, to.parent().unwrap_or(Path::new("/")))?;
    let copy = || -> std::io::Result<()> {
        let mut src = fs::File::open(from)?;
        let mode = src.metadata()?.mode() & 0o1777;
        if fs::symlink_metadata(&dest).is_ok() {
            fs::remove_file(&dest)?;
        }
        let mut out = create_new_file(nix::fcntl::AT_FDCWD, &dest)?;
        std::io::copy(&mut src, &mut out)?;
        out.set_permissions(fs::Permissions::from_mode(mode))
    };
    copy().with_context(|| format!("failed to copy {} to {}", from.display(), dest.display()))
}

/// The files every rootfs has, made only where the source did not bring its
/// own (an image keeps its /etc/passwd).
fn write_skeleton(root: &Path) -> Result<()> {
    for (dir, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("proc", 0o755),
        ("sys", 0o755),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
    ] {
        let path = root.join(dir);
        if fs::symlink_metadata(&path).is_err() {
            fs::create_dir(&path)
                .with_context(|| format!("failed to create {}", path.display()))?;
            set_mode(&path, mode)?;
        }
    }
    if !fs::symlink_metadata(root.join("etc")).is_ok_and(|m| m.is_dir()) {
        return Ok(()); // an image whose /etc is a link: leave it as it is
    }
    for (file, content) in [
        ("passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("group", "root:x:0:\n"),
        (
            "hosts",
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        ),
        ("resolv.conf", ""),
        (
            "nsswitch.conf",
            "passwd: files\ngroup: files\nhosts: files\n",
        ),
    ] {
        let path = root.join("etc").join(file);
        if fs::symlink_metadata(&path).is_err() {
            write_new(&path, content.as_bytes(), 0o644)?;
        }
    }
    Ok(())
}

/// Create a new file (never through a symlink) with `content` and `mode`.
fn write_new(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let mut file = create_new_file(nix::fcntl::AT_FDCWD, path)?;
        std::io::Write::write_all(&mut file, content)?;
        file.set_permissions(fs::Permissions::from_mode(mode))
    };
    write().with_context(|| format!("failed to write {}", path.display()))
}

/// Create `name` in the directory `dir` for writing, as a new file that
/// only its owner can read until the caller sets its mode: never through a
/// symlink (O_NOFOLLOW) and never over a file that is there (O_EXCL). The
/// builder and the image unpacker both create their files here.
pub(crate) fn create_new_file(dir: impl AsFd, name: &Path) -> nix::Result<fs::File> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(dir, name, flags, Mode::from_bits_truncate(0o600))?;
    Ok(fs::File::from(fd))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to chmod {mode:o} {}", path.display()))
}

/// Check that `dir` can be a container's root: it exists, is a directory,
/// and has an executable /bin/sh, following symlinks *inside* the rootfs
/// (bin/sh -> /bin/busybox is resolved relative to `dir`, never against the
/// host's /). When /bin/sh is a dynamic ELF binary, the dynamic loader it
/// names must be in the rootfs too: without it exec fails with a baffling
/// ENOENT.
///
/// Errors are [`hinted`]: "rootfs /x does not exist", "rootfs /x is a file,
/// not a directory", "rootfs /x has no /bin/sh", with a hint saying how to
/// build or import one.
pub fn validate(dir: &Path) -> Result<()> {
    check(dir, dir)
}

/// [`validate`] `dir`, naming it `shown` in messages (a build checks its
/// temporary directory under the final name).
fn check(dir: &Path, shown: &Path) -> Result<()> {
    let shown = shown.display();
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(hinted(format!("rootfs {shown} does not exist"), HINT))
        }
        Err(e) => return Err(hinted(format!("rootfs {shown} cannot be read: {e}"), HINT)),
        Ok(m) if m.is_file() => {
            return Err(hinted(
                format!("rootfs {shown} is a file, not a directory"),
                HINT,
            ))
        }
        Ok(m) if !m.is_dir() => {
            return Err(hinted(format!("rootfs {shown} is not a directory"), HINT))
        }
        Ok(_) => {}
    }
    let Some(sh) = resolve_inside(dir, Path::new("/bin/sh"))? else {
        let why = match fs::read_link(dir.join("bin/sh")) {
            Ok(target) => format!(
                " (its /bin/sh is a symlink to {}, which is not in the rootfs)",
                target.display()
            ),
            Err(_) => String::new(),
        };
        return Err(hinted(format!("rootfs {shown} has no /bin/sh{why}"), HINT));
    };
    let meta = fs::metadata(&sh).with_context(|| format!("failed to stat {}", sh.display()))?;
    if !meta.is_file() || meta.mode() & 0o111 == 0 {
        return Err(hinted(
            format!("rootfs {shown} has a /bin/sh that is not an executable file"),
            HINT,
        ));
    }
    // An ELF file that does not parse is left for exec to judge.
    if let Ok(Some(interp)) = elf::interpreter(&sh) {
        if resolve_inside(dir, &interp)?.is_none() {
            return Err(hinted(
                format!(
                    "rootfs {shown} has /bin/sh, but not the dynamic loader it needs ({})",
                    interp.display()
                ),
                "copy programs with the libraries they load: `cargo xtask rootfs --host-binaries` does that",
            ));
        }
    }
    Ok(())
}

/// Resolve `path` as a process chrooted into `root` would: symlinks are
/// followed inside `root` (an absolute target starts again at `root`, `..`
/// stops at it), never on the host. Returns the host path of what it names,
/// or None if something on the way is missing.
pub fn resolve_inside(root: &Path, path: &Path) -> Result<Option<PathBuf>> {
    let mut todo: Vec<std::ffi::OsString> = components_of(path);
    todo.reverse();
    let mut at = PathBuf::new(); // relative to root, no symlinks in it
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&part);
        let meta = match fs::symlink_metadata(root.join(&next)) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        };
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                bail!(
                    "too many levels of symlinks resolving {} in {}",
                    path.display(),
                    root.display()
                );
            }
            let target = fs::read_link(root.join(&next))
                .with_context(|| format!("failed to readlink {}", root.join(&next).display()))?;
            if target.is_absolute() {
                at.clear();
            }
            let mut more = components_of(&target);
            more.reverse();
            todo.extend(more);
        } else {
            if !todo.is_empty() && !meta.is_dir() {
                return Ok(None);
            }
            at = next;
        }
    }
    Ok(Some(root.join(at)))
}

/// `a/./b/../c` as ["a", "b", "..", "c"]; the root and `.` are dropped.
fn components_of(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// The user who ran sudo, when we are root because of it: (SUDO_UID, SUDO_GID).
pub fn sudo_owner() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    owner_from(
        std::env::var("SUDO_UID").ok(),
        std::env::var("SUDO_GID").ok(),
    )
}

fn owner_from(uid: Option<String>, gid: Option<String>) -> Option<(u32, u32)> {
    let uid: u32 = uid?.trim().parse().ok()?;
    let gid: u32 = gid?.trim().parse().ok()?;
    (uid != 0).then_some((uid, gid))
}

/// Give the tree at `root` to `uid`:`gid` (lchown: links themselves, never
/// their targets), with every directory writable by its owner so that they
/// can delete it (`cargo clean`).
pub fn hand_back(root: &Path, uid: u32, gid: u32) -> Result<()> {
    walk(root, &mut |path, meta| {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .with_context(|| format!("failed to lchown {} to {uid}:{gid}", path.display()))?;
        if meta.is_dir() && meta.mode() & 0o700 != 0o700 {
            set_mode(path, (meta.mode() & 0o7777) | 0o700)?;
        }
        Ok(())
    })
}

/// Call `visit` on `root` and everything under it, never following symlinks.
pub fn walk(root: &Path, visit: &mut dyn FnMut(&Path, &fs::Metadata) -> Result<()>) -> Result<()> {
    let meta =
        fs::symlink_metadata(root).with_context(|| format!("failed to stat {}", root.display()))?;
    visit(root, &meta)?;
    if meta.is_dir() {
        let entries =
            fs::read_dir(root).with_context(|| format!("failed to read {}", root.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("failed to read {}", root.display()))?;
            walk(&entry.path(), visit)?;
        }
    }
    Ok(())
}

/// Remove a tree, even one with read-only directories in it (an image's
/// 0555 /proc). Nothing there is fine; symlinks are removed, not followed.
pub fn remove_tree(path: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    let _ = walk(path, &mut |p, m| {
        if m.is_dir() {
            let _ = fs::set_permissions(p, fs::Permissions::from_mode((m.mode() & 0o7777) | 0o700));
        }
        Ok(())
    });
    fs::remove_dir_all(path).with_context(|| format!("failed to remove {}", path.display()))
}

/// What a rootfs holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Bytes in regular files (apparent size; hard links counted once).
    pub bytes: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.1} MiB in {} files, {} symlinks, {} directories",
            self.bytes as f64 / (1024.0 * 1024.0),
            self.files,
            self.symlinks,
            self.dirs
        )
    }
}

/// Count what is in `dir`.
pub fn stats(dir: &Path) -> Result<Stats> {
    let mut stats = Stats::default();
    let mut inodes = std::collections::HashSet::new();
    walk(dir, &mut |_, meta| {
        if meta.is_dir() {
            stats.dirs += 1;
        } else if meta.file_type().is_symlink() {
            stats.symlinks += 1;
        } else {
            stats.files += 1;
            if inodes.insert((meta.dev(), meta.ino())) {
                stats.bytes += meta.len();
            }
        }
        Ok(())
    })?;
    Ok(stats)
}

/// `path` relative to the current directory when it is under it
/// (`target/rootfs`), else as it is.
pub fn shown(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
}

#[cfg(test)]
mod tests;
