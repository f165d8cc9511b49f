//! Unpack a tar image (an Alpine minirootfs, `docker export` output) into a
//! directory, entry by entry, with every rule written out here rather than
//! left to `tar::Archive::unpack`. The one rule above the others: nothing an
//! archive says ever touches a path outside the destination. Every call that
//! creates or changes something is an `*at` call on a directory fd reached
//! from the destination without following a symlink, and changes an owner
//! or a mode through the fd of what it just created (or with
//! AT_SYMLINK_NOFOLLOW), never through a path the kernel would resolve.
//!
//! - Paths: a leading `/` is dropped (`/etc/passwd` lands at `etc/passwd`)
//!   and `.` components are ignored. An entry with a `..` component anywhere
//!   is skipped with a warning, as GNU tar does: no real image has one, and
//!   `a/../../x` is how an archive climbs out.
//! - Reaching an entry's directory: from an fd of the destination, one
//!   component at a time with openat(O_DIRECTORY|O_NOFOLLOW), creating the
//!   missing ones with mkdirat. A symlink on the way fails that openat (ELOOP
//!   or ENOTDIR) and the entry is skipped with a warning: an archive holding
//!   `evil -> /` and then `evil/etc/passwd` writes nothing, anywhere. (This
//!   walk works on every kernel; openat2's RESOLVE_BENEATH would not create
//!   the missing directories, which we need anyway.)
//! - Creating: files with openat(O_CREAT|O_EXCL|O_NOFOLLOW) after unlinkat of
//!   a file or symlink that was there (the link itself, never its target);
//!   directories with mkdirat; symlinks with symlinkat; hard links with
//!   linkat without AT_SYMLINK_FOLLOW. A directory already there is never
//!   replaced by something else.
//! - Symlinks are created exactly as the archive says, absolute targets
//!   included: they are resolved inside the container, after pivot_root, not
//!   on the host. Nothing ever chmods a symlink.
//! - Hard links: only to a regular file this unpack has already written
//!   inside the destination. A hard link to a symlink, a directory, a device
//!   or a path outside is skipped with a warning. A hard link gets no owner
//!   or mode of its own: it is a second name for the file, which has them.
//! - Character and block devices and FIFOs are skipped (counted, not made:
//!   no mknod from a tar). The container gets its own /dev.
//! - File content: runs of zeros are left as holes (lseek, not write), so a
//!   sparse entry of 2 GB costs the disk only its data. An entry cut short
//!   (a truncated archive) is an error, not a short file.
//! - Owners: set from the archive only when running as root, on the fd just
//!   created (fchown), or with fchownat(AT_SYMLINK_NOFOLLOW) for a symlink.
//!   Modification times are not restored: files get the time of the unpack.
//! - Modes: each file gets the mode the archive gives, with fchmod on its
//!   fd, after fchown (which clears setuid/setgid). Setuid and setgid bits of
//!   files are dropped, and counted, unless the caller asks to keep them
//!   ([`SetuidBits::Keep`], which needs root: unpacked by a user, the file
//!   is that user's). As root, setgid on a directory (files inherit its
//!   group) stays; the sticky bit (/tmp) always does. Directories stay 0755 until the end, so
//!   that a 0555 directory in the image can still be filled; then each gets
//!   its mode with fchmod on an fd opened O_DIRECTORY|O_NOFOLLOW, deepest
//!   first. Not as root, directories stay writable by their owner, who must
//!   be able to delete the tree.
//! - Whiteouts (an image layer's `.wh.NAME` and `.wh..wh..opq`, unpacked
//!   with [`unpack_layer_from`]): the entry must be a regular file whose
//!   NAME is one plain name (not `.`, `..`, nor itself a `.wh.` name); its
//!   directory is reached as any other entry's, and the caller's
//!   [`Whiteouts`] marks it on that directory's fd. Without it they are
//!   plain files, as in a rootfs tarball.

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Whether the setuid and setgid bits of an image's files survive the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetuidBits {
    /// Drop them (the default): a setuid-root program from an image would
    /// otherwise sit on the host where any user can run it.
    #[default]
    Drop,
    /// Keep them, as the image has them (needs root, for the owners).
    Keep,
}

/// How to unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Set owners from the archive (only root can).
    pub owners: bool,
    pub setuid: SetuidBits,
}

impl Options {
    /// Owners from the archive when this process is root.
    pub fn for_this_process(setuid: SetuidBits) -> Options {
        Options {
            owners: nix::unistd::geteuid().is_root(),
            setuid,
        }
    }

    /// Whether setuid/setgid bits of files are kept: only with owners, since
    /// the file of a non-root unpack is owned by whoever unpacks it.
    fn keeps_setuid(&self) -> bool {
        self.owners && self.setuid == SetuidBits::Keep
    }
}

/// What an unpack did, for the caller to report.
#[derive(Debug, Default)]
pub struct Unpacked {
    /// Entries written (files, directories, symlinks, hard links).
    pub written: usize,
    /// Device and FIFO entries left out.
    pub devices: usize,
    /// Files whose setuid/setgid bits were dropped.
    pub setuid_dropped: usize,
    /// Files written with setuid/setgid bits (only with [`SetuidBits::Keep`]).
    pub setuid_kept: usize,
    /// One line per entry refused, saying why.
    pub warnings: Vec<String>,
    /// "gzip" or "uncompressed".
    pub compression: &'static str,
    /// Whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) passed
    /// to the caller's [`Whiteouts`].
    pub whiteouts: usize,
    pub opaque: usize,
}

/// How an image layer's deletions are marked in the unpacked tree (an
/// overlay lower wants a 0/0 character device and an xattr). The unpacker
/// finds the entries and checks them by its rules; this only marks, on the
/// fd of the directory the entry is in.
pub trait Whiteouts {
    /// `.wh.NAME` in `dir`: NAME is deleted from the layers below.
    fn whiteout(&mut self, dir: BorrowedFd<'_>, name: &OsStr) -> Result<()>;
    /// `.wh..wh..opq` in `dir`: the layers below' contents of `dir` are hidden.
    fn opaque(&mut self, dir: BorrowedFd<'_>) -> Result<()>;
}

/// The whiteout prefix of the OCI image spec, and its opaque marker.
pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Unpack the tar or tar.gz file `archive` into `dest` (created if missing).
/// Compression is told from the first bytes, never from the file name.
pub fn unpack(archive: &Path, dest: &Path, options: Options) -> Result<Unpacked> {
    let file = fs::File::open(archive)
        .with_context(|| format!("failed to open the image {}", archive.display()))?;
    let mut reader = BufReader::new(file);
    let magic = reader
        .fill_buf()
        .with_context(|| format!("failed to read {}", archive.display()))?
        .to_vec();
    let result = match compression_of(&magic)? {
        "gzip" => {
            unpack_from(flate2::bufread::MultiGzDecoder::new(reader), dest, options).map(|u| {
                Unpacked {
                    compression: "gzip",
                    ..u
                }
            })
        }
        _ => unpack_from(reader, dest, options),
    };
    result.with_context(|| format!("failed to unpack {}", archive.display()))
}

/// "gzip", "uncompressed", or an error naming a compression we do not read.
pub fn compression_of(magic: &[u8]) -> Result<&'static str> {
    let other = |name: &str, tool: &str| -> Result<&'static str> {
        bail!("the image is compressed with {name}, which is not supported here; decompress it first (`{tool} FILE`), or use a .tar or .tar.gz")
    };
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok("gzip")
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        other("xz", "xz -d")
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        other("zstd", "zstd -d")
    } else if magic.starts_with(b"BZh") {
        other("bzip2", "bzip2 -d")
    } else {
        Ok("uncompressed")
    }
}

/// Unpack a tar stream into `dest` (created if missing).
pub fn unpack_from(reader: impl Read, dest: &Path, options: Options) -> Result<Unpacked> {
    unpack_with(reader, dest, options, None)
}

/// Unpack an image layer's tar stream into `dest`, its whiteout entries
/// marked by `whiteouts` instead of written as files.
pub fn unpack_layer_from(
    reader: impl Read,
    dest: &Path,
    options: Options,
    whiteouts: &mut dyn Whiteouts,
) -> Result<Unpacked> {
    unpack_with(reader, dest, options, Some(whiteouts))
}

fn unpack_with<'a>(
    reader: impl Read,
    dest: &'a Path,
    options: Options,
    whiteouts: Option<&'a mut dyn Whiteouts>,
) -> Result<Unpacked> {
    fs::create_dir_all(dest).with_context(|| format!("failed to create {}", dest.display()))?;
    let root = nix::fcntl::open(dest, DIRECTORY, Mode::empty())
        .with_context(|| format!("failed to open {} (O_DIRECTORY|O_NOFOLLOW)", dest.display()))?;
    let mut unpacker = Unpacker {
        root,
        dest,
        options,
        done: Unpacked {
            compression: "uncompressed",
            ..Unpacked::default()
        },
        dir_modes: Vec::new(),
        files: HashSet::new(),
        buffer: vec![0; COPY_CHUNK],
        whiteouts,
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .context("failed to read the tar archive")?;
    for entry in entries {
        let mut entry =
            entry.context("failed to read a tar entry (is this a .tar or .tar.gz file, whole?)")?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.apply_dir_modes()?;
    Ok(unpacker.done)
}

/// Opening a directory on the way: never through a symlink.
const DIRECTORY: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Read and written in chunks of this size; a chunk of zeros becomes a hole.
const COPY_CHUNK: usize = 64 * 1024;
static ZEROS: [u8; COPY_CHUNK] = [0; COPY_CHUNK];

struct Unpacker<'a> {
    /// The destination, opened O_DIRECTORY|O_NOFOLLOW: every path starts here.
    root: OwnedFd,
    /// Its path, for messages only.
    dest: &'a Path,
    options: Options,
    done: Unpacked,
    /// (path relative to dest, mode) of each directory entry, for the end.
    dir_modes: Vec<(Vec<OsString>, u32)>,
    /// (dev, ino) of each regular file written: what a hard link may name.
    files: HashSet<(u64, u64)>,
    buffer: Vec<u8>,
    /// Set for an image layer: marks its whiteouts.
    whiteouts: Option<&'a mut dyn Whiteouts>,
}

/// Why an entry was not written: a rule refused it (a warning, and the
/// unpack goes on), or a system call failed (the unpack stops).
enum Skip {
    Refused(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Skip {
    fn from(e: anyhow::Error) -> Self {
        Skip::Failed(e)
    }
}

fn refused<T>(why: impl Into<String>) -> Result<T, Skip> {
    Err(Skip::Refused(why.into()))
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let parts = match safe_relative(&bytes_to_path(&raw)) {
            Ok(rel) => parts_of(&rel),
            Err(why) => {
                self.done.warnings.push(format!("skipped {shown}: {why}"));
                return Ok(());
            }
        };
        let Some((name, parents)) = parts.split_last() else {
            return Ok(()); // `./` itself: the destination, which we already made
        };
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        if self.whiteouts.is_some() && name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            let outcome = self.whiteout(parents, name, kind);
            match outcome {
                Ok(()) => {}
                Err(Skip::Refused(why)) => {
                    self.done.warnings.push(format!("skipped {shown}: {why}"))
                }
                Err(Skip::Failed(e)) => return Err(e.context(format!("at the entry {shown}"))),
            }
            return Ok(());
        }
        match kind {
            T::Char | T::Block | T::Fifo => {
                self.done.devices += 1;
                return Ok(());
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => return Ok(()),
            T::Directory | T::Regular | T::Continuous | T::GNUSparse | T::Symlink | T::Link => {}
            other => {
                self.done.warnings.push(format!(
                    "skipped {shown}: entry type {other:?} is not supported"
                ));
                return Ok(());
            }
        }
        let outcome = self.open_dir(parents, true).and_then(|parent| match kind {
            T::Directory => self.make_dir(&parent, name, &parts, entry),
            T::Symlink => self.make_symlink(&parent, name, &parts, entry),
            T::Link => self.make_hard_link(&parent, name, &parts, entry),
            _ => self.write_file(&parent, name, &parts, entry),
        });
        match outcome {
            Ok(()) => self.done.written += 1,
            Err(Skip::Refused(why)) => self.done.warnings.push(format!("skipped {shown}: {why}")),
            Err(Skip::Failed(e)) => return Err(e.context(format!("at the entry {shown}"))),
        }
        Ok(())
    }

    /// A whiteout entry `.wh.NAME` or `.wh..wh..opq` in `parents`: checked,
    /// then marked on its directory's fd by the caller's [`Whiteouts`].
    fn whiteout(
        &mut self,
        parents: &[OsString],
        name: &OsStr,
        kind: tar::EntryType,
    ) -> Result<(), Skip> {
        if kind != tar::EntryType::Regular && kind != tar::EntryType::Continuous {
            return refused(format!(
                "a whiteout must be a regular file, not a {kind:?} entry"
            ));
        }
        let deleted = OsStr::from_bytes(&name.as_bytes()[WHITEOUT_PREFIX.len()..]);
        let opaque = name == OPAQUE_MARKER;
        if !opaque {
            if deleted.is_empty() || deleted == "." || deleted == ".." {
                return refused(format!("a whiteout of {deleted:?} names no file"));
            }
            if deleted.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
                return refused("names starting with `.wh..wh.` are reserved");
            }
        }
        let dir = self.open_dir(parents, true)?;
        let marks = self.whiteouts.as_mut().expect("checked by the caller");
        if opaque {
            marks.opaque(dir.as_fd())?;
            self.done.opaque += 1;
        } else {
            marks.whiteout(dir.as_fd(), deleted)?;
            self.done.whiteouts += 1;
        }
        Ok(())
    }

    /// `parts` under the destination, as a host path for messages.
    fn dest_path(&self, parts: &[OsString]) -> PathBuf {
        parts.iter().fold(self.dest.to_path_buf(), |p, c| p.join(c))
    }

    /// The directory `parts` under the destination, reached one component
    /// at a time with openat(O_DIRECTORY|O_NOFOLLOW), so that a symlink on
    /// the way is refused, never followed. With `create`, missing ones are
    /// made (mode 0755).
    fn open_dir(&self, parts: &[OsString], create: bool) -> Result<OwnedFd, Skip> {
        let mut here = self
            .root
            .try_clone()
            .with_context(|| format!("failed to dup the fd of {}", self.dest.display()))?;
        for (i, part) in parts.iter().enumerate() {
            // For messages only, built when one is: the host path so far, and
            // the same path as the archive names it.
            let host_path = || self.dest_path(&parts[..=i]);
            let in_archive = || PathBuf::from(parts[..=i].join(OsStr::new("/")));
            let failed = |e: Errno, call: &str, how: &str| -> Skip {
                anyhow!(e)
                    .context(format!("failed to {call} {}{how}", host_path().display()))
                    .into()
            };
            let next = match openat(&here, part.as_os_str(), DIRECTORY, Mode::empty()) {
                Err(Errno::ENOENT) if create => {
                    match mkdirat(&here, part.as_os_str(), Mode::from_bits_truncate(0o700)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(failed(e, "mkdirat", "")),
                    }
                    let made = openat(&here, part.as_os_str(), DIRECTORY, Mode::empty())
                        .map_err(|e| failed(e, "openat", ""))?;
                    set_mode(&made, 0o755, &host_path())?;
                    made
                }
                Err(Errno::ENOENT) => {
                    return refused(format!("{} is not unpacked (yet)", in_archive().display()))
                }
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let what = match fstatat(&here, part.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    {
                        Ok(st) if kind_of(&st) == SFlag::S_IFLNK => {
                            "is a symlink, and nothing is written through one"
                        }
                        _ => "is not a directory",
                    };
                    return refused(format!("{} {what}", in_archive().display()));
                }
                Err(e) => return Err(failed(e, "openat", " (O_DIRECTORY|O_NOFOLLOW)")),
                Ok(fd) => fd,
            };
            here = next;
        }
        Ok(here)
    }

    /// Make way for a new non-directory `name` in `parent`: unlinkat what is
    /// there (a file, or a symlink itself, never its target). A directory
    /// stays, and the entry is refused.
    fn clear(&self, parent: &OwnedFd, name: &OsStr, parts: &[OsString]) -> Result<(), Skip> {
        match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR | Errno::EPERM) if self.is_dir_at(parent, name) => {
                refused("a directory is already there")
            }
            Err(e) => Err(anyhow!(e)
                .context(format!(
                    "failed to unlinkat {}",
                    self.dest_path(parts).display()
                ))
                .into()),
        }
    }

    fn is_dir_at(&self, parent: &OwnedFd, name: &OsStr) -> bool {
        fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| kind_of(&st) == SFlag::S_IFDIR)
    }

    fn make_dir<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &OsString,
        parts: &[OsString],
        entry: &tar::Entry<R>,
    ) -> Result<(), Skip> {
        let shown = self.dest_path(parts);
        if !self.is_dir_at(parent, name) {
            self.clear(parent, name, parts)?;
            mkdirat(parent, name.as_os_str(), Mode::from_bits_truncate(0o700))
                .with_context(|| format!("failed to mkdirat {}", shown.display()))?;
        }
        let dir = openat(parent, name.as_os_str(), DIRECTORY, Mode::empty())
            .with_context(|| format!("failed to openat {} (O_DIRECTORY)", shown.display()))?;
        // Writable by us until the end, whatever the archive says.
        set_mode(&dir, 0o755, &shown)?;
        self.set_owner(&dir, entry.header(), &shown)?;
        let mode = mode_of(entry.header());
        let mode = if self.options.owners {
            mode & !0o4000 // setuid means nothing on a directory
        } else {
            (mode & 0o1777) | 0o200
        };
        self.dir_modes.push((parts.to_vec(), mode));
        Ok(())
    }

    fn make_symlink<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &OsString,
        parts: &[OsString],
        entry: &tar::Entry<R>,
    ) -> Result<(), Skip> {
        let target = entry
            .link_name_bytes()
            .map(|t| bytes_to_path(&t))
            .unwrap_or_default();
        if target.as_os_str().is_empty() {
            return refused("a symlink with no target");
        }
        self.clear(parent, name, parts)?;
        let shown = self.dest_path(parts);
        symlinkat(&target, parent, name.as_os_str()).with_context(|| {
            format!(
                "failed to symlinkat {} -> {}",
                shown.display(),
                target.display()
            )
        })?;
        if self.options.owners {
            // The link's own owner: fchownat(AT_SYMLINK_NOFOLLOW) is lchown.
            let (uid, gid) = owner_of(entry.header());
            fchownat(
                parent,
                name.as_os_str(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .with_context(|| {
                format!(
                    "failed to fchownat {} to {uid}:{gid} (AT_SYMLINK_NOFOLLOW)",
                    shown.display()
                )
            })?;
        }
        Ok(())
    }

    fn make_hard_link<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &OsString,
        parts: &[OsString],
        entry: &tar::Entry<R>,
    ) -> Result<(), Skip> {
        let raw = entry.link_name_bytes().unwrap_or_default();
        let target = bytes_to_path(&raw);
        let not_ours = |why: &str| -> Result<(), Skip> {
            refused(format!(
                "a hard link to {} is refused: {why}",
                target.display()
            ))
        };
        let target_parts = match safe_relative(&target) {
            Ok(rel) => parts_of(&rel),
            Err(why) => return not_ours(&why),
        };
        let Some((target_name, target_parents)) = target_parts.split_last() else {
            return not_ours("it names no file");
        };
        let target_dir = match self.open_dir(target_parents, false) {
            Ok(dir) => dir,
            Err(Skip::Refused(why)) => return not_ours(&why),
            Err(failed) => return Err(failed),
        };
        let st = match fstatat(
            &target_dir,
            target_name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return not_ours("it is not unpacked (yet)"),
            Err(e) => {
                return Err(anyhow!(e)
                    .context(format!(
                        "failed to fstatat {}",
                        self.dest_path(&target_parts).display()
                    ))
                    .into())
            }
        };
        match kind_of(&st) {
            SFlag::S_IFREG if self.files.contains(&(st.st_dev, st.st_ino)) => {}
            SFlag::S_IFREG => return not_ours("it is not a file this image wrote"),
            SFlag::S_IFLNK => {
                return not_ours("it is a symlink (a second name for a link that may lead outside)")
            }
            SFlag::S_IFDIR => return not_ours("it is a directory"),
            _ => return not_ours("it is not a regular file"),
        }
        if target_parts == parts {
            return Ok(()); // a link to itself: it is there already
        }
        self.clear(parent, name, parts)?;
        // No AT_SYMLINK_FOLLOW: never resolve anything (and it is a file anyway).
        linkat(
            &target_dir,
            target_name.as_os_str(),
            parent,
            name.as_os_str(),
            AtFlags::empty(),
        )
        .with_context(|| {
            format!(
                "failed to linkat {} to {}",
                self.dest_path(parts).display(),
                self.dest_path(&target_parts).display()
            )
        })?;
        Ok(())
    }

    fn write_file<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &OsString,
        parts: &[OsString],
        entry: &mut tar::Entry<R>,
    ) -> Result<(), Skip> {
        self.clear(parent, name, parts)?;
        let shown = self.dest_path(parts);
        let mut file = crate::create_new_file(parent, Path::new(name)).with_context(|| {
            format!(
                "failed to openat {} (O_CREAT|O_EXCL|O_NOFOLLOW)",
                shown.display()
            )
        })?;
        let size = entry.size();
        let written = copy_keeping_holes(entry, &mut file, &mut self.buffer)
            .with_context(|| format!("failed to write {}", shown.display()))?;
        if written != size {
            return Err(anyhow!(
                "the archive ends {written} bytes into this {size}-byte file: it is truncated"
            )
            .into());
        }
        self.set_owner(&file, entry.header(), &shown)?;
        let mut mode = mode_of(entry.header());
        if mode & 0o6000 != 0 {
            if self.options.keeps_setuid() {
                self.done.setuid_kept += 1;
            } else {
                mode &= !0o6000;
                self.done.setuid_dropped += 1;
            }
        }
        // After fchown, which clears setuid/setgid.
        set_mode(&file, mode, &shown)?;
        let st = fstat(&file).with_context(|| format!("failed to fstat {}", shown.display()))?;
        self.files.insert((st.st_dev, st.st_ino));
        Ok(())
    }

    /// fchown the fd just created to the archive's owner (as root only).
    fn set_owner(
        &self,
        fd: impl std::os::fd::AsFd,
        header: &tar::Header,
        shown: &Path,
    ) -> Result<(), Skip> {
        if self.options.owners {
            let (uid, gid) = owner_of(header);
            fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                .with_context(|| format!("failed to fchown {} to {uid}:{gid}", shown.display()))?;
        }
        Ok(())
    }

    /// Give each directory its mode, deepest first, so that a 0555 parent
    /// does not stop us reaching its children. A directory an entry later
    /// replaced with a file or symlink is left alone: never chmod through it.
    fn apply_dir_modes(&mut self) -> Result<()> {
        let mut dirs = std::mem::take(&mut self.dir_modes);
        dirs.sort_by_key(|(parts, _)| std::cmp::Reverse(parts.len()));
        for (parts, mode) in dirs {
            match self.open_dir(&parts, false) {
                Ok(dir) => set_mode(&dir, mode, &self.dest_path(&parts))?,
                Err(Skip::Refused(_)) => {}
                Err(Skip::Failed(e)) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Copy `from` to `to`, leaving each chunk of zeros as a hole (lseek past
/// it) rather than writing it. Returns the number of bytes copied.
fn copy_keeping_holes(
    from: &mut impl Read,
    to: &mut fs::File,
    buffer: &mut [u8],
) -> std::io::Result<u64> {
    let mut at = 0u64;
    let mut hole_at_end = false;
    loop {
        let n = match from.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // A slice comparison is a memcmp: quick even in a debug build.
        if buffer[..n] == ZEROS[..n] {
            to.seek(SeekFrom::Current(n as i64))?;
            hole_at_end = true;
        } else {
            to.write_all(&buffer[..n])?;
            hole_at_end = false;
        }
        at += n as u64;
    }
    if hole_at_end {
        to.set_len(at)?; // the file ends in a hole: give it its size
    }
    Ok(at)
}

fn set_mode(fd: impl std::os::fd::AsFd, mode: u32, shown: &Path) -> Result<()> {
    fchmod(fd, Mode::from_bits_truncate(mode))
        .with_context(|| format!("failed to fchmod {} to {mode:o}", shown.display()))
}

fn kind_of(st: &nix::sys::stat::FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn mode_of(header: &tar::Header) -> u32 {
    header.mode().unwrap_or(0o644) & 0o7777
}

fn owner_of(header: &tar::Header) -> (u32, u32) {
    (
        header.uid().unwrap_or(0) as u32,
        header.gid().unwrap_or(0) as u32,
    )
}

fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

fn parts_of(rel: &Path) -> Vec<OsString> {
    rel.components()
        .map(|c| c.as_os_str().to_os_string())
        .collect()
}

/// An entry's path made relative and free of `.`; refused if it has `..`.
pub fn safe_relative(path: &Path) -> Result<PathBuf, String> {
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err("the path contains `..`".into()),
        }
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_relative_and_dotdot_is_refused() {
        assert_eq!(
            safe_relative(Path::new("/etc/passwd")).unwrap(),
            Path::new("etc/passwd")
        );
        assert_eq!(
            safe_relative(Path::new("./bin/./sh")).unwrap(),
            Path::new("bin/sh")
        );
        assert_eq!(safe_relative(Path::new("./")).unwrap(), Path::new(""));
        for bad in ["../escape", "/abs/../../escape", "a/../../escape", "a/.."] {
            assert!(safe_relative(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn compression_is_told_by_magic_bytes() {
        assert_eq!(compression_of(&[0x1f, 0x8b, 8, 0]).unwrap(), "gzip");
        assert_eq!(compression_of(b"etc/\0\0\0").unwrap(), "uncompressed");
        let xz = compression_of(&[0xfd, b'7', b'z', b'X', b'Z', 0]).unwrap_err();
        assert!(xz.to_string().contains("xz -d"), "{xz}");
        assert!(compression_of(b"BZh91AY").is_err());
    }

    #[test]
    fn runs_of_zeros_become_holes_and_the_size_is_kept() {
        let dir = workshop_testkit::TempDir::new("holes");
        let path = dir.path().join("sparse");
        let mut file = fs::File::create(&path).unwrap();
        let mut content = vec![0u8; 8 * COPY_CHUNK];
        content[0] = 1;
        let mut buffer = vec![0; COPY_CHUNK];
        let n = copy_keeping_holes(&mut &content[..], &mut file, &mut buffer).unwrap();
        assert_eq!(n, content.len() as u64);
        assert_eq!(fs::read(&path).unwrap(), content);
        use std::os::unix::fs::MetadataExt;
        let used = fs::metadata(&path).unwrap().blocks() * 512;
        assert!(used <= 2 * COPY_CHUNK as u64, "{used} bytes on disk");
    }
}
