//! A layer tar to a directory and back. In a layer tar a deletion is a
//! file named `.wh.NAME` and an opaque directory holds `.wh..wh..opq`; in an
//! overlay's layer the same are a 0/0 character device and the xattr
//! `trusted.overlay.opaque=y` (chapter 8).

use crate::digest::{require_sha256, HashingReader};
use crate::store::{Store, StoreLock};
use anyhow::{anyhow, bail, Context, Result};
use ch08_overlay::OPAQUE_XATTR;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, makedev, mknodat, Mode, SFlag};
use oci_spec::image::Digest;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use workshop_rootfs::unpack::{self, Options, SetuidBits, Whiteouts};

/// Unpack the layer blob `blob` (a tar, gzip or not) into the store's
/// `layers/HEX` for `diff_id` (the sha256 of the uncompressed tar, checked
/// on the way), unless it is there already. Returns whether it unpacked.
pub fn unpack_layer(
    store: &Store,
    lock: &StoreLock,
    blob: &Path,
    diff_id: &Digest,
) -> Result<bool> {
    if store.layer_dir(diff_id).is_dir() {
        return Ok(false); // renamed into place whole: there means complete
    }
    let file = fs::File::open(blob)
        .with_context(|| format!("failed to open the layer {}", blob.display()))?;
    unpack_layer_from(store, lock, file, diff_id)
}

// ANCHOR: unpack_layer
/// [`unpack_layer`] from any reader of the layer's bytes (a tar, gzip or
/// not, told by its first bytes). The tar is hashed as it is unpacked, so
/// it is read once; it is unpacked beside its place (`layers/.partial-*`)
/// and renamed into it only once whole and checked, so `layers/HEX` is
/// always a complete layer, and a failure leaves nothing.
pub fn unpack_layer_from(
    store: &Store,
    _lock: &StoreLock,
    reader: impl Read,
    diff_id: &Digest,
) -> Result<bool> {
    require_sha256(diff_id)?;
    let dir = store.layer_dir(diff_id);
    if dir.is_dir() {
        return Ok(false);
    }
    reclaim_partials(store)?; // a killed import's, since we hold the lock
    let partial = dir.with_file_name(format!(
        ".partial-{}-{}",
        std::process::id(),
        crate::store::unique()
    ));
    let result = unpack_checked(reader, &partial, diff_id).and_then(|()| {
        fs::rename(&partial, &dir).with_context(|| {
            format!(
                "failed to rename {} to {}",
                partial.display(),
                dir.display()
            )
        })
    });
    if result.is_err() {
        let _ = workshop_rootfs::remove_tree(&partial);
    }
    result.map(|()| true)
}

fn unpack_checked(reader: impl Read, partial: &Path, diff_id: &Digest) -> Result<()> {
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let magic = reader
        .fill_buf()
        .context("failed to read the layer")?
        .to_vec();
    let compression = unpack::compression_of(&magic)
        .with_context(|| format!("the layer {diff_id} cannot be read"))?;
    let tar: Box<dyn Read> = match compression {
        "gzip" => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        _ => Box::new(reader),
    };
    // The diff-id is the digest of the uncompressed tar.
    let mut hashing = HashingReader::new(tar);
    let options = Options::for_this_process(SetuidBits::Drop);
    let done = unpack::unpack_layer_from(
        EndBlocks::new(&mut hashing),
        partial,
        options,
        &mut OverlayWhiteouts,
    )
    .with_context(|| format!("failed to unpack the layer {diff_id}"))?;
    // The tar ends before its file does (the zero blocks, the padding of
    // its last record): they are part of the digest too.
    std::io::copy(&mut hashing, &mut std::io::sink())
        .with_context(|| format!("failed to read the layer {diff_id}"))?;
    let (actual, _) = hashing.finish();
    if actual != *diff_id {
        bail!("the layer {diff_id} does not match its diff-id: its tar hashes to {actual}");
    }
    if !done.warnings.is_empty() {
        bail!(
            "the layer {diff_id} is refused: {} of its entries break the rules of a safe unpack:\n  {}",
            done.warnings.len(),
            done.warnings.join("\n  ")
        );
    }
    Ok(())
}
// ANCHOR_END: unpack_layer

/// A tar stream completed at its end: the padding of its last block and
/// the two zero blocks that end an archive, when the writer left them out
/// (umoci 0.4 does: its layers stop right after the last file's data). No
/// more than that: a stream cut inside a file's data stays cut (and the
/// diff-id, hashed beneath this, is of the real bytes only).
struct EndBlocks<R> {
    inner: R,
    read: u64,
    /// Zeros still to give once `inner` is done (None: not yet done).
    zeros: Option<u64>,
}

impl<R: Read> EndBlocks<R> {
    fn new(inner: R) -> EndBlocks<R> {
        EndBlocks {
            inner,
            read: 0,
            zeros: None,
        }
    }
}

impl<R: Read> Read for EndBlocks<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.zeros.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.zeros = Some((512 - self.read % 512) % 512 + 1024);
        }
        let left = self.zeros.as_mut().expect("set above");
        let n = buf.len().min(*left as usize);
        buf[..n].fill(0);
        *left -= n as u64;
        Ok(n)
    }
}

/// Remove what an unpack killed halfway left in `layers/`.
fn reclaim_partials(store: &Store) -> Result<()> {
    let layers = store.root.join("layers");
    for entry in
        fs::read_dir(&layers).with_context(|| format!("failed to read {}", layers.display()))?
    {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(".partial-") {
            workshop_rootfs::remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

// ANCHOR: whiteouts
/// OCI whiteouts as overlayfs writes them in an upper: `.wh.NAME` becomes
/// a 0/0 character device NAME, `.wh..wh..opq` the xattr
/// `trusted.overlay.opaque=y` on its directory. The unpacker has checked
/// the entry and reached the directory safely; this only marks it.
struct OverlayWhiteouts;

impl Whiteouts for OverlayWhiteouts {
    fn whiteout(&mut self, dir: BorrowedFd<'_>, name: &OsStr) -> Result<()> {
        match mknodat(dir, name, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)) {
            Ok(()) => Ok(()),
            // NAME is in this layer too: a file already hides the one below;
            // a directory must hide the lower one's contents as well.
            Err(Errno::EEXIST) => match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() => {
                    let flags =
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                    let sub = openat(dir, name, flags, Mode::empty())
                        .map_err(|e| anyhow!("failed to open {name:?}: {e}"))?;
                    self.opaque(sub.as_fd())
                }
                _ => Ok(()),
            },
            Err(e) => Err(anyhow!(
                "failed to mknod the whiteout {name:?} (a 0/0 character device): {e}"
            ))
            .context("making a whiteout needs CAP_MKNOD (root)"),
        }
    }

    fn opaque(&mut self, dir: BorrowedFd<'_>) -> Result<()> {
        let name = CString::new(OPAQUE_XATTR).expect("no NUL in the name");
        // SAFETY: a valid fd, a NUL-terminated name and a one-byte value,
        // all alive for the call.
        let answer = unsafe {
            nix::libc::fsetxattr(dir.as_raw_fd(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0)
        };
        if answer != 0 {
            let e = std::io::Error::last_os_error();
            bail!("failed to set {OPAQUE_XATTR}=y on an opaque directory: {e} (trusted.* xattrs need CAP_SYS_ADMIN)");
        }
        Ok(())
    }
}
// ANCHOR_END: whiteouts

#[cfg(test)]
mod tests {
    use super::*;
    use workshop_testkit::Tarball;

    fn unpack_through_end_blocks(bytes: &[u8], dest: &Path) -> Result<unpack::Unpacked> {
        unpack::unpack_from(EndBlocks::new(bytes), dest, Options::default())
    }

    #[test]
    fn a_tar_without_its_end_blocks_is_completed_as_umoci_needs() {
        let dir = workshop_testkit::TempDir::new("ch09-end-blocks");
        let whole = Tarball::new().file("a", b"abc", 0o644).bytes();
        // umoci's layers stop after the last data: 512 (header) + 3 bytes.
        let cut = &whole[..515];
        assert!(
            unpack::unpack_from(cut, &dir.path().join("plain"), Options::default()).is_err(),
            "the tar crate refuses it as it is"
        );
        unpack_through_end_blocks(cut, &dir.path().join("completed")).unwrap();
        assert_eq!(fs::read(dir.path().join("completed/a")).unwrap(), b"abc");
    }

    #[test]
    fn a_tar_cut_inside_a_file_stays_cut() {
        let dir = workshop_testkit::TempDir::new("ch09-end-blocks-cut");
        let whole = Tarball::new().file("a", &[7u8; 4096], 0o644).bytes();
        let e = unpack_through_end_blocks(&whole[..512 + 1000], dir.path()).unwrap_err();
        assert!(format!("{e:#}").contains("truncated"), "{e:#}");
    }
}
