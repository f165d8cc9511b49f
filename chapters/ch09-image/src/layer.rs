//! A layer tar to a directory and back. In a layer tar a deletion is a
//! file named `.wh.NAME` and an opaque directory holds `.wh..wh..opq`; in an
//! overlay's layer the same are a 0/0 character device and the xattr
//! `trusted.overlay.opaque=y` (chapter 8).

use crate::digest::{require_sha256, HashingReader};
use crate::store::{Store, StoreLock};
use anyhow::{anyhow, bail, Context, Result};
use ch08_overlay::OPAQUE_XATTR;
use flate2::bufread::MultiGzDecoder;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, makedev, mknodat, Mode, SFlag};
use oci_spec::image::Digest;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
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

/// [`unpack_layer`] from any reader of the layer's bytes.
pub fn unpack_layer_from(
    store: &Store,
    lock: &StoreLock,
    reader: impl Read,
    diff_id: &Digest,
) -> Result<bool> {
    require_sha256(diff_id)?;
    if store.layer_dir(diff_id).is_dir() {
        return Ok(false);
    }
    let mut reader = BufReader::with_capacity(BUFFER, reader);
    let gzip = is_gzip(&mut reader, diff_id)?;
    let made = Unpacking::start(store, lock, diff_id)?;
    let tar = match gzip {
        true => Box::new(MultiGzDecoder::new(reader)) as Box<dyn Read>,
        false => Box::new(reader),
    };
    let actual = made.unpack(tar)?;
    made.finish(&actual)?;
    Ok(true)
}

/// A layer put into the store by [`put_layer`].
#[derive(Debug)]
pub struct PutLayer {
    /// The blob's digest and size (of its bytes as they came: gzip or not).
    pub digest: Digest,
    pub size: u64,
    pub gzip: bool,
    /// Whether it was unpacked now (false: the store had the layer).
    pub unpacked: bool,
}

// ANCHOR: put_layer
/// Store the layer blob `reader` yields and unpack it, in one pass: its
/// bytes are hashed (the blob's digest, checked against `expected` when
/// known), written to the blob, decompressed if gzip (told by its first
/// bytes, never a name), hashed again if they were (the diff-id: the digest
/// of the uncompressed tar; for a tar that is the blob's digest, hashed
/// once) and unpacked, all as they are read. Both go beside their place
/// (`.partial-*`) and are renamed into it once whole and checked, so
/// `layers/HEX` is always a complete layer; a failure leaves nothing.
pub fn put_layer(
    store: &Store,
    lock: &StoreLock,
    reader: impl Read + Send,
    expected: Option<&Digest>,
    diff_id: &Digest,
) -> Result<PutLayer> {
    if let Some(expected) = expected {
        require_sha256(expected)?;
    }
    require_sha256(diff_id)?;
    let blob_tmp = store.root.join(format!(
        "blobs/sha256/.partial-{}-{}",
        std::process::id(),
        crate::store::unique()
    ));
    let result = put_layer_through(store, lock, reader, &blob_tmp, expected, diff_id);
    if result.is_err() {
        let _ = fs::remove_file(&blob_tmp);
    }
    result
}

fn put_layer_through(
    store: &Store,
    lock: &StoreLock,
    reader: impl Read + Send,
    blob_tmp: &Path,
    expected: Option<&Digest>,
    diff_id: &Digest,
) -> Result<PutLayer> {
    // Not fsynced: neither is the unpacked tree (nor what `tar -x` writes);
    // a blob a crash damaged fails its digest when it is read.
    let file = fs::File::create(blob_tmp)
        .with_context(|| format!("failed to create {}", blob_tmp.display()))?;
    let unpacking = match store.layer_dir(diff_id).is_dir() {
        true => None,
        false => Some(Unpacking::start(store, lock, diff_id)?),
    };
    // Two threads: one reads, hashes and writes the blob, the other
    // unpacks what it hands over, so hashing costs the unpack no time.
    let (chunks, from_reader) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let (digest, size, gzip, uncompressed) = std::thread::scope(|scope| {
        let reading = scope.spawn(move || read_hash_and_store(reader, file, chunks));
        let mut tar = Chunks {
            from: from_reader,
            chunk: Vec::new(),
            at: 0,
        };
        let unpacked = (|| -> Result<(bool, Option<Digest>)> {
            let gzip = is_gzip(&mut tar, diff_id)?;
            let gunzip = |tar| MultiGzDecoder::new(tar);
            Ok(match (&unpacking, gzip) {
                (Some(unpacking), true) => (true, Some(unpacking.unpack(gunzip(&mut tar))?)),
                (None, true) => (true, Some(crate::digest::sha256_of(gunzip(&mut tar))?.0)),
                // A tar's diff-id is its blob's digest: hashed once, there.
                (Some(unpacking), false) => {
                    unpacking.unpack_unhashed(&mut tar)?;
                    (false, None)
                }
                (None, false) => (false, None),
            })
        })();
        drop(tar); // the reader goes on alone: the blob's digest needs it all
        let read = reading.join().expect("the reading thread does not panic");
        let (digest, size) = read?;
        // The blob first: a layer whose bytes are not what the manifest
        // names is refused as such, whatever its tar holds (even a tar so
        // damaged that the unpack failed on the way).
        if let Some(expected) = expected.filter(|e| **e != digest) {
            bail!("the blob {expected} does not match its digest: its bytes hash to {digest}");
        }
        let (gzip, uncompressed) = unpacked?;
        Ok((digest, size, gzip, uncompressed))
    })?;
    let actual = uncompressed.unwrap_or_else(|| digest.clone());
    if actual != *diff_id {
        bail!(diff_id_mismatch(diff_id, &actual));
    }
    fs::rename(blob_tmp, store.blob_path(&digest))
        .with_context(|| format!("failed to store the blob {digest}"))?;
    let unpacked = match unpacking {
        Some(unpacking) => {
            unpacking.finish(&actual)?;
            true
        }
        None => false,
    };
    Ok(PutLayer {
        digest,
        size,
        gzip,
        unpacked,
    })
}

/// Read `reader` to its end, hashing it and writing it to `blob`, and hand
/// each chunk on to `chunks` while anyone takes them.
fn read_hash_and_store(
    reader: impl Read,
    blob: fs::File,
    chunks: std::sync::mpsc::SyncSender<Vec<u8>>,
) -> Result<(Digest, u64)> {
    let mut blob = blob; // written a whole chunk at a time: no buffer needed
    let mut hashed = HashingReader::new(reader);
    let mut taken = true;
    loop {
        let mut chunk = vec![0; CHUNK];
        let n = match hashed.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow!(e).context("failed to read the layer")),
        };
        chunk.truncate(n);
        blob.write_all(&chunk).context("failed to write the blob")?;
        taken = taken && chunks.send(chunk).is_ok();
    }
    Ok(hashed.finish())
}

/// Chunks handed over by the reading thread, read as one stream.
struct Chunks {
    from: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl BufRead for Chunks {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.at == self.chunk.len() {
            match self.from.recv() {
                Ok(chunk) => (self.chunk, self.at) = (chunk, 0),
                Err(_) => break, // the reader is done (or failed: it says so)
            }
        }
        Ok(&self.chunk[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.chunk.len());
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

// ANCHOR_END: put_layer

/// Read and written in chunks of this size.
const BUFFER: usize = 256 * 1024;
/// Handed from the reading thread to the unpacking one in chunks of this size.
const CHUNK: usize = 64 * 1024;

/// Whether the layer is gzip (by its first bytes); refuse xz, zstd, bzip2.
fn is_gzip(reader: &mut impl BufRead, diff_id: &Digest) -> Result<bool> {
    let magic = reader.fill_buf().context("failed to read the layer")?;
    let compression = unpack::compression_of(magic)
        .with_context(|| format!("the layer {diff_id} cannot be read"))?;
    Ok(compression == "gzip")
}

fn diff_id_mismatch(diff_id: &Digest, actual: &Digest) -> String {
    format!("the layer {diff_id} does not match its diff-id: its tar hashes to {actual}")
}

/// A layer being unpacked into `layers/.partial-*`: removed when dropped,
/// unless [`Unpacking::finish`] renamed it into place.
struct Unpacking {
    partial: std::path::PathBuf,
    dir: std::path::PathBuf,
    diff_id: Digest,
}

impl Unpacking {
    fn start(store: &Store, _lock: &StoreLock, diff_id: &Digest) -> Result<Unpacking> {
        reclaim_partials(store)?; // a killed import's, since we hold the lock
        let dir = store.layer_dir(diff_id);
        Ok(Unpacking {
            partial: dir.with_file_name(format!(
                ".partial-{}-{}",
                std::process::id(),
                crate::store::unique()
            )),
            dir,
            diff_id: diff_id.clone(),
        })
    }

    /// Unpack the uncompressed `tar`, hashing it; its digest.
    fn unpack(&self, tar: impl Read) -> Result<Digest> {
        let mut hashing = HashingReader::new(tar);
        self.unpack_unhashed(&mut hashing)?;
        Ok(hashing.finish().0)
    }

    /// Unpack the uncompressed `tar` (hashed by the caller), and read it to
    /// its end: the zero blocks and the padding of its last record, which
    /// the unpack leaves, are part of the digest too.
    fn unpack_unhashed(&self, mut tar: impl Read) -> Result<()> {
        let diff_id = &self.diff_id;
        let options = Options::for_this_process(SetuidBits::Drop);
        let done = unpack::unpack_layer_from(
            EndBlocks::new(&mut tar),
            &self.partial,
            options,
            &mut OverlayWhiteouts,
        )
        .with_context(|| format!("failed to unpack the layer {diff_id}"))?;
        std::io::copy(&mut tar, &mut std::io::sink())
            .with_context(|| format!("failed to read the layer {diff_id}"))?;
        if !done.warnings.is_empty() {
            bail!(
                "the layer {diff_id} is refused: {} of its entries break the rules of a safe unpack:\n  {}",
                done.warnings.len(),
                done.warnings.join("\n  ")
            );
        }
        Ok(())
    }

    /// Check the digest of the tar unpacked, and put the layer in place.
    fn finish(self, actual: &Digest) -> Result<()> {
        if *actual != self.diff_id {
            bail!(diff_id_mismatch(&self.diff_id, actual));
        }
        fs::rename(&self.partial, &self.dir).with_context(|| {
            format!(
                "failed to rename {} to {}",
                self.partial.display(),
                self.dir.display()
            )
        })
    }
}

impl Drop for Unpacking {
    fn drop(&mut self) {
        if self.partial.exists() {
            let _ = workshop_rootfs::remove_tree(&self.partial);
        }
    }
}

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
