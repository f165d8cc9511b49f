//! Unpack a tar image (an Alpine minirootfs, `docker export` output) into a
//! directory, entry by entry, with every rule written out here rather than
//! left to `tar::Archive::unpack`:
//!
//! - Paths: a leading `/` is dropped (`/etc/passwd` lands at `etc/passwd`)
//!   and `.` components are ignored. An entry with a `..` component anywhere
//!   is skipped with a warning, as GNU tar does: no real image has one, and
//!   `a/../../x` is how an archive climbs out.
//! - Symlinks in the way: nothing is ever written through a symlink. Every
//!   parent directory of an entry is checked with `symlink_metadata`; if one
//!   is a symlink (or a file) the entry is skipped with a warning. So an
//!   archive holding `evil -> /` and then `evil/etc/passwd` writes nothing
//!   outside. Files are created with O_NOFOLLOW|O_EXCL after removing what
//!   was there, so the last component is never followed either.
//! - Symlinks themselves are created exactly as the archive says, absolute
//!   targets included: they are resolved inside the container, after
//!   pivot_root, not on the host.
//! - Hard links: only to an entry already unpacked inside the target, reached
//!   through real directories; anything else is skipped with a warning.
//! - Character and block devices and FIFOs are skipped (counted, not made:
//!   no mknod from a tar). The container gets its own /dev.
//! - Permissions: each file and directory gets the mode the archive gives.
//!   Setuid and setgid bits are kept only when running as root, where the
//!   owner is set from the archive too; otherwise they are stripped, since
//!   the file is owned by whoever unpacks it. (A sudo build later hands the
//!   tree to the student with chown, which clears them as well.)
//!   Directories stay writable by their owner until the end, so that a
//!   0555 directory in the image can still be filled.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// What an unpack did, for the caller to report.
#[derive(Debug, Default)]
pub struct Unpacked {
    /// Entries written (files, directories, symlinks, hard links).
    pub written: usize,
    /// Device and FIFO entries left out.
    pub devices: usize,
    /// One line per entry refused, saying why.
    pub warnings: Vec<String>,
    /// "gzip" or "uncompressed".
    pub compression: &'static str,
}

/// Unpack the tar or tar.gz file `archive` into `dest` (created if missing).
/// Compression is told from the first bytes, never from the file name.
pub fn unpack(archive: &Path, dest: &Path) -> Result<Unpacked> {
    let file = fs::File::open(archive)
        .with_context(|| format!("failed to open the image {}", archive.display()))?;
    let mut reader = BufReader::new(file);
    let magic = reader
        .fill_buf()
        .with_context(|| format!("failed to read {}", archive.display()))?
        .to_vec();
    let keep_owner = nix::unistd::geteuid().is_root();
    let result = match compression_of(&magic)? {
        "gzip" => unpack_from(
            flate2::bufread::MultiGzDecoder::new(reader),
            dest,
            keep_owner,
        )
        .map(|u| Unpacked {
            compression: "gzip",
            ..u
        }),
        _ => unpack_from(reader, dest, keep_owner),
    };
    result.with_context(|| format!("failed to unpack {}", archive.display()))
}

/// "gzip", "uncompressed", or an error naming a compression we do not read.
fn compression_of(magic: &[u8]) -> Result<&'static str> {
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

/// Unpack a tar stream into `dest`. `keep_owner`: set owners from the archive
/// and keep setuid/setgid bits (only meaningful as root).
pub fn unpack_from(reader: impl Read, dest: &Path, keep_owner: bool) -> Result<Unpacked> {
    fs::create_dir_all(dest).with_context(|| format!("failed to create {}", dest.display()))?;
    let mut archive = tar::Archive::new(reader);
    let mut done = Unpacked {
        compression: "uncompressed",
        ..Unpacked::default()
    };
    // Directory modes are applied at the end, once nothing more goes in them.
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    let entries = archive
        .entries()
        .context("failed to read the tar archive")?;
    for entry in entries {
        let mut entry =
            entry.context("failed to read a tar entry (is this a .tar or .tar.gz file?)")?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let rel = match safe_relative(&bytes_to_path(&raw)) {
            Ok(rel) => rel,
            Err(why) => {
                done.warnings.push(format!("skipped {shown}: {why}"));
                continue;
            }
        };
        let kind = entry.header().entry_type();
        if rel.as_os_str().is_empty() {
            // `./` itself: the target directory, which we already made.
            continue;
        }
        use tar::EntryType as T;
        match kind {
            T::Char | T::Block | T::Fifo => {
                done.devices += 1;
                continue;
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            T::Directory | T::Regular | T::Continuous | T::GNUSparse | T::Symlink | T::Link => {}
            other => {
                done.warnings.push(format!(
                    "skipped {shown}: entry type {other:?} is not supported"
                ));
                continue;
            }
        }
        if let Err(why) = make_parents(dest, &rel) {
            done.warnings.push(format!("skipped {shown}: {why}"));
            continue;
        }
        let path = dest.join(&rel);
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mode = if keep_owner { mode } else { mode & 0o1777 };
        let owner = if keep_owner {
            Some((
                header.uid().unwrap_or(0) as u32,
                header.gid().unwrap_or(0) as u32,
            ))
        } else {
            None
        };
        let outcome = match kind {
            T::Directory => make_dir(&path).map(|()| {
                dir_modes.push((path.clone(), mode));
            }),
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| bytes_to_path(&t))
                    .unwrap_or_default();
                make_symlink(&path, &target)
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| bytes_to_path(&t))
                    .unwrap_or_default();
                make_hard_link(dest, &path, &target)
            }
            _ => write_file(&path, &mut entry, mode),
        };
        match outcome {
            Ok(()) => done.written += 1,
            Err(Refused(why)) => {
                done.warnings.push(format!("skipped {shown}: {why}"));
                continue;
            }
        }
        if let Some((uid, gid)) = owner {
            // lchown: for a symlink, its own owner, not its target's.
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .with_context(|| format!("failed to lchown {} to {uid}:{gid}", path.display()))?;
            if kind != T::Symlink && kind != T::Directory {
                // chown clears setuid/setgid: set the mode again after it.
                set_mode(&path, mode)?;
            }
        }
    }
    for (dir, mode) in dir_modes.iter().rev() {
        // A later entry may have replaced the directory; never chmod through a link.
        if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            set_mode(dir, mode | if keep_owner { 0 } else { 0o200 })?;
        }
    }
    Ok(done)
}

/// Why an entry was left out (a warning, not an error).
struct Refused(String);

impl From<std::io::Error> for Refused {
    fn from(e: std::io::Error) -> Self {
        Refused(e.to_string())
    }
}

fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
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

/// Create the parent directories of `rel` under `dest`, refusing to go
/// through anything that is not a real directory (a symlink above all).
fn make_parents(dest: &Path, rel: &Path) -> Result<(), String> {
    let mut here = dest.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for part in &parents[..parents.len().saturating_sub(1)] {
        here.push(part);
        match fs::symlink_metadata(&here) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symlink, and nothing is written through one",
                    here.strip_prefix(dest).unwrap_or(&here).display()
                ))
            }
            Ok(_) => {
                return Err(format!(
                    "{} is not a directory",
                    here.strip_prefix(dest).unwrap_or(&here).display()
                ))
            }
            Err(_) => make_dir(&here).map_err(|Refused(why)| why)?,
        }
    }
    Ok(())
}

/// Check, without creating anything, that `rel` under `dest` is reached
/// through real directories only.
fn through_real_dirs(dest: &Path, rel: &Path) -> bool {
    let mut here = dest.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    parts[..parts.len().saturating_sub(1)].iter().all(|part| {
        here.push(part);
        fs::symlink_metadata(&here).is_ok_and(|m| m.is_dir())
    })
}

/// Make way for a new non-directory at `path`: remove a file or symlink that
/// is there (the link itself, never its target). A directory stays.
fn clear(path: &Path) -> Result<(), Refused> {
    match fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => Err(Refused("a directory is already there".into())),
        Ok(_) => Ok(fs::remove_file(path)?),
    }
}

fn make_dir(path: &Path) -> Result<(), Refused> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    fs::create_dir(path)?;
    // Writable by us until the end, whatever the archive says.
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn make_symlink(path: &Path, target: &Path) -> Result<(), Refused> {
    if target.as_os_str().is_empty() {
        return Err(Refused("a symlink with no target".into()));
    }
    clear(path)?;
    std::os::unix::fs::symlink(target, path)?;
    Ok(())
}

fn make_hard_link(dest: &Path, path: &Path, target: &Path) -> Result<(), Refused> {
    let rel = safe_relative(target).map_err(|why| Refused(format!("hard link target: {why}")))?;
    let source = dest.join(&rel);
    if rel.as_os_str().is_empty() || !through_real_dirs(dest, &rel) {
        return Err(Refused(format!(
            "hard link to {} is not to a file inside the image",
            target.display()
        )));
    }
    match fs::symlink_metadata(&source) {
        Ok(m) if !m.is_dir() => {}
        _ => {
            return Err(Refused(format!(
                "hard link to {}, which is not unpacked (yet)",
                target.display()
            )))
        }
    }
    if source == path {
        return Ok(());
    }
    clear(path)?;
    // linkat without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink.
    fs::hard_link(&source, path)?;
    Ok(())
}

fn write_file(path: &Path, content: &mut impl Read, mode: u32) -> Result<(), Refused> {
    clear(path)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)?;
    std::io::copy(content, &mut file)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to chmod {:o} {}", mode, path.display()))
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
}
