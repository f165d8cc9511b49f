//! Chapter 9 exercises: images.
//!
//! Check your work with `cargo test -p exercises ch09`.

use anyhow::Result;
use std::io::Read;
use std::path::Path;

/// Exercise 9.1: an OCI whiteout, made an overlay whiteout.
///
/// A layer tar says "deleted" in the OCI's words, an overlay lower in the
/// kernel's (chapter 8). `entry` is the path of one entry of a layer tar
/// (relative, without `..`: the unpacker has checked it), and `layer` the
/// directory the layer is unpacked into:
///
/// - `DIR/.wh.NAME` deletes `DIR/NAME` of the layers below: make
///   `layer/DIR/NAME` a character device numbered 0/0 (an overlay whiteout);
/// - `DIR/.wh..wh..opq` makes `DIR` opaque (what the layers below hold in it
///   is hidden): set the xattr `trusted.overlay.opaque` to `y` on
///   `layer/DIR`;
/// - any other name is an ordinary entry: do nothing here (the caller
///   unpacks it as it is).
///
/// Make the directories on the way (`DIR` may come later in the tar, or
/// earlier: it may exist already, with files in it). Return whether the
/// entry was a whiteout or an opaque marker (`true`: applied, the caller
/// writes nothing of it) or ordinary (`false`).
///
/// The check calls it on a tmpfs of its own, with the entries of a layer
/// that deletes files at the top and deep down, makes directories opaque,
/// and has ordinary names that only look like whiteouts, and reads back
/// what your function made.
///
/// Hints:
/// - only the last component of `entry` says whiteout: `Path::file_name`.
/// - `nix::sys::stat::mknod(path, SFlag::S_IFCHR, Mode::empty(), 0)`.
/// - `nix::libc::lsetxattr(path, c"trusted.overlay.opaque".as_ptr(), ...)`
///   with the value `b"y"` (writing `trusted.*` needs root).
pub fn apply_whiteout(layer: &Path, entry: &Path) -> Result<bool> {
    // TODO: .wh..wh..opq, then .wh.NAME, else false.
    todo!("exercise 9.1: turn an OCI whiteout into an overlay whiteout")
}

/// Exercise 9.2: copy a blob, verified against its digest on the way.
///
/// `blob` yields the bytes of the blob `name` (its path in the archive, for
/// messages), whose digest the manifest says is `digest`: `sha256:` and 64
/// lowercase hex digits. Copy it to the file `to`, hashing as you copy:
/// a blob can be large, and a stream cannot be read twice. Return its size.
///
/// - a digest that is not `sha256:` and 64 lowercase hex digits: refuse it
///   (an error) before anything is written;
/// - the bytes do not hash to `digest`: an error that names the blob and
///   both digests (the expected one and what the bytes gave), and no file at
///   `to` (nor any temporary one beside it);
/// - the bytes match: `to` holds them, and nothing else is left beside it;
///   `to` appears only then (never while the blob is still being read).
///
/// Hints:
/// - `sha2::Sha256::new()`, `.update(&bytes)` for each piece read,
///   `.finalize()`; the hex of each byte is `format!("{b:02x}")`.
/// - a read may return fewer bytes than asked for: loop until it returns 0
///   (or wrap the writer and let `std::io::copy` loop).
/// - write a temporary file beside `to`, and rename it to `to` only once the
///   digest matched; remove it otherwise.
pub fn copy_verified(blob: impl Read, name: &str, digest: &str, to: &Path) -> Result<u64> {
    // TODO: check the digest's form, copy while hashing, compare, rename.
    todo!("exercise 9.2: copy the blob and verify its sha256 on the way")
}
