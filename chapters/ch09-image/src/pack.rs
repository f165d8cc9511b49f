//! An upper directory (chapter 8's `diff`) to a layer tar: overlay
//! whiteouts (0/0 character devices) become `.wh.NAME` files, an opaque
//! directory gets a `.wh..wh..opq` entry, as the OCI image spec writes them.
//!
//! The tar is reproducible: entries in byte order of their names, every
//! mtime 0 (the epoch), no user or group names, only what the spec needs.
//! The same upper always packs to the same bytes, so the same step makes
//! the same layer digest, and a test can compare digests. (docker keeps the
//! files' mtimes, so its layers differ from build to build; BuildKit's
//! `SOURCE_DATE_EPOCH` does what we do.) Owners, modes (setuid and sticky
//! bits included), symlinks, hard links and FIFOs are kept; sockets are
//! skipped (as docker does); any other device node is refused, and so are
//! extended attributes' contents (none is written: not `security.capability`
//! either).

use anyhow::{bail, Context, Result};
use ch08_overlay::{is_opaque, is_whiteout, OPAQUE_XATTR};
use nix::libc;
use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The prefix of a whiteout's name in a layer tar: `.wh.NAME` deletes NAME.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The entry that makes its directory opaque in a layer tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// The xattrs overlayfs writes on an upper for itself. `redirect` and
/// `metacopy` mean the upper does not hold the whole file or directory
/// (the rest is still in a lower), which a layer cannot say: refused.
const INCOMPLETE_XATTRS: [&str; 2] = ["trusted.overlay.redirect", "trusted.overlay.metacopy"];

// ANCHOR: pack_upper
/// Write the upper `upper` as an uncompressed layer tar to `out`, in a
/// stable order (so the same upper makes the same digest).
pub fn pack_upper(upper: &Path, out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut first_paths = HashMap::new(); // (dev, inode) -> the first path of a hard-linked file
    pack_dir(&mut tar, upper, Path::new(""), &mut first_paths)?;
    tar.into_inner() // the two zero blocks that end a tar
        .and_then(|mut out| out.flush())
        .with_context(|| format!("failed to finish the layer tar of {}", upper.display()))
}

/// The entries of the directory `rel` (relative to `upper`), by name.
fn pack_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    upper: &Path,
    rel: &Path,
    first_paths: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let dir = upper.join(rel);
    let mut names: Vec<OsString> = fs::read_dir(&dir)
        .with_context(|| format!("failed to read {}", dir.display()))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("failed to read {}", dir.display()))?;
    names.sort(); // bytes order: the same upper, the same tar
    for name in names {
        let rel = rel.join(&name);
        let path = upper.join(&rel);
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("failed to stat {}", path.display()))?;
        if name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            bail!(
                "{} cannot go into a layer: a name starting with {WHITEOUT_PREFIX} means a deletion there",
                path.display()
            );
        }
        refuse_incomplete(&path)?;
        let kind = meta.file_type();
        if is_whiteout(&meta) {
            // Deleted: an empty file `.wh.NAME` beside where NAME was.
            let mut header = header_for(&meta, tar::EntryType::Regular);
            header.set_mode(0o600);
            let mut whiteout = OsString::from(WHITEOUT_PREFIX);
            whiteout.push(&name);
            append(tar, &mut header, &rel.with_file_name(whiteout))?;
        } else if kind.is_dir() {
            let mut header = header_for(&meta, tar::EntryType::Directory);
            append(tar, &mut header, &rel)?;
            if is_opaque(&path) {
                // First in its directory: the lowers' contents go before
                // anything of this layer's is put there.
                let mut header = header_for(&meta, tar::EntryType::Regular);
                header.set_mode(meta.mode() & 0o777);
                append(tar, &mut header, &rel.join(OPAQUE_MARKER))?;
            }
            pack_dir(tar, upper, &rel, first_paths)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&path)
                .with_context(|| format!("failed to readlink {}", path.display()))?;
            let mut header = header_for(&meta, tar::EntryType::Symlink);
            tar.append_link(&mut header, &rel, &target)
                .with_context(|| format!("failed to add {} to the layer", path.display()))?;
        } else if kind.is_file() {
            let inode = (meta.dev(), meta.ino());
            if let Some(first) = first_paths.get(&inode).filter(|_| meta.nlink() > 1) {
                let mut header = header_for(&meta, tar::EntryType::Link);
                tar.append_link(&mut header, &rel, first)
                    .with_context(|| format!("failed to add {} to the layer", path.display()))?;
                continue;
            }
            if meta.nlink() > 1 {
                first_paths.insert(inode, rel.clone());
            }
            let mut header = header_for(&meta, tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = fs::File::open(&path)
                .with_context(|| format!("failed to open {}", path.display()))?;
            tar.append_data(&mut header, &rel, file)
                .with_context(|| format!("failed to add {} to the layer", path.display()))?;
        } else if kind.is_fifo() {
            let mut header = header_for(&meta, tar::EntryType::Fifo);
            append(tar, &mut header, &rel)?;
        } else if kind.is_socket() {
            continue; // a socket is a live thing: no layer keeps one (nor does docker's)
        } else {
            bail!(
                "{} is a device node: a layer made here holds none (only whiteouts, the 0/0 character devices)",
                path.display()
            );
        }
    }
    Ok(())
}
// ANCHOR_END: pack_upper

/// A header of `kind` with `meta`'s owner and mode, size 0 and mtime 0.
fn header_for(meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(meta.uid().into());
    header.set_gid(meta.gid().into());
    header.set_mtime(0); // reproducible: see the module's comment
    header.set_size(0);
    header
}

/// Add an entry with no data.
fn append<W: Write>(tar: &mut tar::Builder<W>, header: &mut tar::Header, rel: &Path) -> Result<()> {
    tar.append_data(header, rel, std::io::empty())
        .with_context(|| format!("failed to add {} to the layer", rel.display()))
}

/// Refuse a path overlayfs left incomplete in the upper (redirect_dir or
/// metacopy on): its content is partly in a lower, which a tar cannot say.
fn refuse_incomplete(path: &Path) -> Result<()> {
    for name in INCOMPLETE_XATTRS {
        if xattr(path, name)?.is_some() {
            bail!(
                "{} has {name}: overlayfs left part of it in a lower layer, which a layer tar cannot hold (turn the overlay module's redirect_dir and metacopy off)",
                path.display()
            );
        }
    }
    Ok(())
}

// ANCHOR: settle
/// Make an upper what unpacking its tar ([`pack_upper`]) would make: every
/// mtime 0, sockets gone, and overlayfs's own xattrs (`trusted.overlay.*`,
/// the opaque mark aside) removed. The build keeps an upper as its layer's
/// directory this way, by renaming it into the store, instead of writing
/// the tar and unpacking it again.
pub fn settle_upper(upper: &Path) -> Result<()> {
    let mut dirs = Vec::new();
    workshop_rootfs::walk(upper, &mut |path, meta| {
        if meta.file_type().is_socket() {
            return fs::remove_file(path)
                .with_context(|| format!("failed to remove the socket {}", path.display()));
        }
        for name in xattr_names(path)? {
            let text = name.to_string_lossy();
            if text.starts_with("trusted.overlay.") && text != OPAQUE_XATTR {
                remove_xattr(path, &name)?;
            }
        }
        if meta.is_dir() {
            dirs.push(path.to_path_buf()); // last: each change below touches it
        } else {
            set_mtime_0(path)?;
        }
        Ok(())
    })?;
    for dir in dirs.iter().rev() {
        set_mtime_0(dir)?;
    }
    Ok(())
}
// ANCHOR_END: settle

/// atime and mtime 0, of the link itself, never of its target.
fn set_mtime_0(path: &Path) -> Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let zero = TimeSpec::new(0, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &zero,
        &zero,
        UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("failed to set the mtime of {}", path.display()))
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{} holds a NUL byte", path.display()))
}

/// The value of the xattr `name` of `path` (not following a symlink), if set.
fn xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let (c_path, c_name) = (c_path(path)?, CString::new(name)?);
    let mut value = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated and live for the call; the
    // kernel writes at most value.len() bytes into value.
    let len = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if len < 0 {
        let errno = nix::errno::Errno::last();
        return match errno {
            nix::errno::Errno::ENODATA | nix::errno::Errno::ENOTSUP => Ok(None),
            e => Err(e).with_context(|| format!("failed to read {name} of {}", path.display())),
        };
    }
    value.truncate(len as usize);
    Ok(Some(value))
}

/// The names of `path`'s xattrs (not following a symlink).
fn xattr_names(path: &Path) -> Result<Vec<OsString>> {
    let c_path = c_path(path)?;
    let mut list = vec![0u8; 64 * 1024]; // XATTR_LIST_MAX
                                         // SAFETY: the path is NUL-terminated and lives for the call; the kernel
                                         // writes at most list.len() bytes into list.
    let len = unsafe { libc::llistxattr(c_path.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
    if len < 0 {
        let errno = nix::errno::Errno::last();
        return match errno {
            nix::errno::Errno::ENOTSUP => Ok(Vec::new()),
            e => Err(e).with_context(|| format!("failed to list the xattrs of {}", path.display())),
        };
    }
    list.truncate(len as usize);
    Ok(list
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| OsString::from_vec(n.to_vec()))
        .collect())
}

fn remove_xattr(path: &Path, name: &std::ffi::OsStr) -> Result<()> {
    let (c_path, c_name) = (c_path(path)?, CString::new(name.as_bytes())?);
    // SAFETY: both strings are NUL-terminated and live for the call.
    if unsafe { libc::lremovexattr(c_path.as_ptr(), c_name.as_ptr()) } < 0 {
        return Err(nix::errno::Errno::last()).with_context(|| {
            format!(
                "failed to remove {} of {}",
                name.to_string_lossy(),
                path.display()
            )
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{mknod, Mode, SFlag};
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// A directory under /tmp, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(what: &str) -> Scratch {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "workshop-pack-{what}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = workshop_rootfs::remove_tree(&path);
            fs::create_dir(&path).unwrap();
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = workshop_rootfs::remove_tree(&self.0);
        }
    }

    fn set_xattr(path: &Path, name: &str, value: &[u8]) {
        let (p, n) = (c_path(path).unwrap(), CString::new(name).unwrap());
        // SAFETY: NUL-terminated strings and a buffer of value.len() bytes.
        let rc = unsafe {
            libc::lsetxattr(
                p.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        assert_eq!(rc, 0, "setxattr {name} on {}", path.display());
    }

    /// An upper as overlayfs leaves one: a new file, a changed file in a
    /// copied-up directory, a whiteout, an opaque directory, a symlink, a
    /// hard link, a setuid file owned by someone else.
    fn sample_upper(root: &Path) {
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        mknod(
            &root.join("etc/group"),
            SFlag::S_IFCHR,
            Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .unwrap();
        fs::create_dir(root.join("root")).unwrap();
        set_xattr(&root.join("root"), OPAQUE_XATTR, b"y");
        fs::write(root.join("root/note"), "hi\n").unwrap();
        fs::write(root.join("hello"), "new\n").unwrap();
        fs::hard_link(root.join("hello"), root.join("hello2")).unwrap();
        symlink("../hello", root.join("etc/link")).unwrap();
        fs::write(root.join("suid"), "#!/bin/sh\n").unwrap();
        std::os::unix::fs::lchown(root.join("suid"), Some(1000), Some(100)).unwrap();
        // After the chown, which clears the setuid bit.
        fs::set_permissions(root.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::create_dir(root.join("sticky")).unwrap();
        fs::set_permissions(root.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
        nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
    }

    /// One entry of a tar: (path, type, mode, uid, gid, mtime, size, link).
    type Entry = (String, char, u32, u64, u64, u64, u64, String);

    fn entries(tar: &[u8]) -> Vec<Entry> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let kind = match h.entry_type() {
                    tar::EntryType::Regular => 'f',
                    tar::EntryType::Directory => 'd',
                    tar::EntryType::Symlink => 'l',
                    tar::EntryType::Link => 'h',
                    tar::EntryType::Fifo => 'p',
                    other => panic!("unexpected entry type {other:?}"),
                };
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    kind,
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    h.size().unwrap(),
                    e.link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    fn packed(upper: &Path) -> Vec<u8> {
        let mut tar = Vec::new();
        pack_upper(upper, &mut tar).unwrap();
        tar
    }

    #[test]
    fn an_upper_packs_to_oci_whiteouts_in_byte_order_with_owners_and_modes_kept() {
        let upper = Scratch::new("sample");
        sample_upper(&upper.0);
        let got = entries(&packed(&upper.0));
        let s = String::new;
        let want = vec![
            ("etc".into(), 'd', 0o755, 0, 0, 0, 0, s()),
            ("etc/.wh.group".into(), 'f', 0o600, 0, 0, 0, 0, s()),
            ("etc/link".into(), 'l', 0o777, 0, 0, 0, 0, "../hello".into()),
            ("etc/passwd".into(), 'f', 0o644, 0, 0, 0, 26, s()),
            ("fifo".into(), 'p', 0o640, 0, 0, 0, 0, s()),
            ("hello".into(), 'f', 0o644, 0, 0, 0, 4, s()),
            ("hello2".into(), 'h', 0o644, 0, 0, 0, 0, "hello".into()),
            ("root".into(), 'd', 0o755, 0, 0, 0, 0, s()),
            ("root/.wh..wh..opq".into(), 'f', 0o755, 0, 0, 0, 0, s()),
            ("root/note".into(), 'f', 0o644, 0, 0, 0, 3, s()),
            ("sticky".into(), 'd', 0o1777, 0, 0, 0, 0, s()),
            ("suid".into(), 'f', 0o4755, 1000, 100, 0, 10, s()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn the_same_upper_packs_to_the_same_bytes_whatever_the_mtimes() {
        let upper = Scratch::new("same");
        sample_upper(&upper.0);
        let first = packed(&upper.0);
        set_mtime_0(&upper.0.join("hello")).unwrap();
        fs::write(upper.0.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        assert_eq!(
            first,
            packed(&upper.0),
            "the digest would change from build to build"
        );
        fs::write(upper.0.join("hello"), "changed\n").unwrap();
        assert_ne!(first, packed(&upper.0), "a change of content must show");
    }

    #[test]
    fn long_names_and_long_link_targets_survive() {
        let upper = Scratch::new("long");
        let deep: PathBuf = (0..6).map(|i| format!("{i}{}", "d".repeat(60))).collect();
        fs::create_dir_all(upper.0.join(&deep)).unwrap();
        fs::write(upper.0.join(&deep).join("f"), "x").unwrap();
        let target = "t".repeat(200);
        symlink(&target, upper.0.join("link")).unwrap();
        let got = entries(&packed(&upper.0));
        assert!(got
            .iter()
            .any(|e| e.0 == deep.join("f").to_string_lossy() && e.6 == 1));
        assert!(got.iter().any(|e| e.0 == "link" && e.7 == target));
    }

    #[test]
    fn a_device_node_other_than_a_whiteout_is_refused() {
        let upper = Scratch::new("device");
        mknod(
            &upper.0.join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        let err = pack_upper(&upper.0, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("null is a device node"), "{err}");
    }

    #[test]
    fn a_file_named_like_a_whiteout_is_refused() {
        let upper = Scratch::new("wh-name");
        fs::write(upper.0.join(".wh.sneaky"), "").unwrap();
        let err = pack_upper(&upper.0, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("means a deletion"), "{err}");
    }

    #[test]
    fn an_upper_with_a_redirect_is_refused() {
        let upper = Scratch::new("redirect");
        fs::create_dir(upper.0.join("moved")).unwrap();
        set_xattr(
            &upper.0.join("moved"),
            "trusted.overlay.redirect",
            b"/original",
        );
        let err = pack_upper(&upper.0, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("trusted.overlay.redirect"), "{err}");
    }

    #[test]
    fn a_socket_is_skipped() {
        let upper = Scratch::new("socket");
        let _listener = std::os::unix::net::UnixListener::bind(upper.0.join("sock")).unwrap();
        fs::write(upper.0.join("file"), "").unwrap();
        let names: Vec<String> = entries(&packed(&upper.0))
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, ["file"]);
    }

    #[test]
    fn a_settled_upper_has_mtime_0_and_only_the_opaque_xattr() {
        let upper = Scratch::new("settle");
        sample_upper(&upper.0);
        set_xattr(&upper.0.join("etc"), "trusted.overlay.impure", b"y");
        set_xattr(&upper.0.join("hello"), "trusted.overlay.origin", b"\0abc");
        let _listener = std::os::unix::net::UnixListener::bind(upper.0.join("sock")).unwrap();
        let before = packed(&upper.0);
        settle_upper(&upper.0).unwrap();
        workshop_rootfs::walk(&upper.0, &mut |path, meta| {
            assert_eq!(meta.mtime(), 0, "{}", path.display());
            assert!(!meta.file_type().is_socket(), "{}", path.display());
            let names = xattr_names(path).unwrap();
            let want: Vec<OsString> = if path.ends_with("root") {
                vec![OPAQUE_XATTR.into()]
            } else {
                vec![]
            };
            assert_eq!(names, want, "{}", path.display());
            Ok(())
        })
        .unwrap();
        assert!(is_opaque(&upper.0.join("root")));
        assert_eq!(before, packed(&upper.0), "settling changes no entry");
    }
}
