//! Chapter 9: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{bail, Context, Result};
use nix::sys::stat::{mknod, Mode, SFlag};
use sha2::{Digest, Sha256};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub const VARIANTS: &[Variant] = &[
    wrong(
        "9.1",
        "file",
        "writes an empty regular file under the hidden name: overlayfs shows it as an empty file, not as a deletion",
    ).because("not a file: mknod"),
    wrong(
        "9.1",
        "keeps-prefix",
        "makes the 0/0 device at .wh.NAME itself: the name it should hide stays, and a strange one appears",
    ).because("the whiteout takes the name it hides"),
    wrong(
        "9.1",
        "opq-as-whiteout",
        "tests for .wh. before .wh..wh..opq: the opaque marker becomes the whiteout of a file named .wh..opq",
    ).because("is the opaque marker, not the whiteout of a file"),
    wrong(
        "9.1",
        "user-xattr",
        "user.overlay.opaque: the xattr of an overlay mounted with userxattr; the kernel's default reads trusted.*",
    ).because("user.overlay.opaque is for overlays mounted with userxattr"),
    wrong(
        "9.1",
        "whole-path",
        "the whole entry path starts with .wh.: a whiteout in a directory is taken for an ordinary name",
    ).because("only the last component of the path says so"),
    wrong(
        "9.1",
        "contains",
        "a name that contains .wh. anywhere is a whiteout: my.wh.file is not",
    ).because("only a name that STARTS with"),
    wrong(
        "9.1",
        "no-parents",
        "mknod in a directory that may not exist yet: ENOENT when the whiteout comes first",
    ).because("make the directories on the way"),
    wrong(
        "9.1",
        "remake-dir",
        "the opaque marker removes the directory and makes it again: the files this layer put there are gone",
    ).because("keeps what this layer has in it"),
    right(
        "9.1",
        "libc",
        "libc's mknod and lsetxattr, the name's bytes compared as bytes",
    ),
    right(
        "9.1",
        "match",
        "one match on the file name: the marker, a whiteout, or anything else",
    ),
    wrong(
        "9.2",
        "no-pad",
        "each byte as {:x}: 0x0a is `a`, not `0a`, so the hex is short and never matches",
    ).because("zero-padded"),
    wrong(
        "9.2",
        "one-read",
        "one read() into a large buffer: a read may return fewer bytes, and the rest of the blob is never read",
    ).because("a read may return fewer bytes"),
    wrong(
        "9.2",
        "short-id",
        "compares the first 12 hex digits, as docker shows image ids",
    ).because("compare all 64 digits"),
    wrong(
        "9.2",
        "nameless",
        "the error gives the two digests but not which blob",
    ).because("should name the blob"),
    wrong(
        "9.2",
        "expected-only",
        "the error names the blob and the manifest's digest, not what the bytes gave",
    ).because("should say both digests"),
    wrong(
        "9.2",
        "in-place",
        "writes straight to `to`, and leaves it there when the digest does not match",
    ).because("before its digest was checked"),
    wrong(
        "9.2",
        "partial-left",
        "a temporary file renamed once the digest matched, but left behind when it does not",
    ).because("left the file"),
    wrong(
        "9.2",
        "in-place-removed",
        "writes straight to `to` and removes it when the digest does not match: until then `to` holds unchecked bytes (a crash, or a reader, takes them for the blob)",
    ).because("before its digest was checked"),
    wrong(
        "9.2",
        "any-case",
        "compares the hex ignoring case: an uppercase digest is accepted",
    ).because("uppercase hex"),
    wrong(
        "9.2",
        "any-algorithm",
        "takes the hex after the colon whatever the algorithm says",
    ).because("sha256: only"),
    wrong(
        "9.2",
        "late-format",
        "never looks at the digest's form: copies and hashes the whole blob, then compares `sha256:HEX` with the string, which refuses a bad digest only at the end",
    ).because("before reading anything"),
    right(
        "9.2",
        "hashing-writer",
        "std::io::copy into a writer that hashes what it passes on, a temporary file made with create_new",
    ),
    right(
        "9.2",
        "hashing-reader",
        "std::io::copy from a reader that hashes what it hands out (as the chapter's HashingReader), the check in a helper",
    ),
];

/// Exercise 9.1.
pub fn apply_whiteout(layer: &Path, entry: &Path) -> Result<bool> {
    let name = entry
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = layer.join(entry.parent().unwrap_or(Path::new("")));
    let whiteout = |path: &Path| {
        std::fs::create_dir_all(path.parent().unwrap_or(layer))?;
        mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).context("mknod")
    };
    let opaque = |dir: &Path, xattr: &CString| -> Result<()> {
        std::fs::create_dir_all(dir)?;
        set_xattr(dir, xattr)
    };
    let trusted = c"trusted.overlay.opaque".to_owned();
    match chosen("9.1").as_deref() {
        None => solutions::ch09_image::apply_whiteout(layer, entry),
        Some("file") => match name.as_str() {
            ".wh..wh..opq" => opaque(&dir, &trusted).map(|()| true),
            n if n.starts_with(".wh.") => {
                std::fs::create_dir_all(&dir)?;
                std::fs::File::create(dir.join(&n[4..]))?;
                Ok(true)
            }
            _ => Ok(false),
        },
        Some("keeps-prefix") => match name.as_str() {
            ".wh..wh..opq" => opaque(&dir, &trusted).map(|()| true),
            n if n.starts_with(".wh.") => whiteout(&dir.join(n)).map(|()| true),
            _ => Ok(false),
        },
        Some("opq-as-whiteout") => match name.strip_prefix(".wh.") {
            Some(hidden) => whiteout(&dir.join(hidden)).map(|()| true),
            None => Ok(false),
        },
        Some("user-xattr") => match name.as_str() {
            ".wh..wh..opq" => {
                std::fs::create_dir_all(&dir)?;
                // tmpfs takes user.* xattrs since Linux 6.6 only: an older
                // kernel refuses, and the marker is then simply not applied.
                let _ = set_xattr(&dir, &c"user.overlay.opaque".to_owned());
                Ok(true)
            }
            n if n.starts_with(".wh.") => whiteout(&dir.join(&n[4..])).map(|()| true),
            _ => Ok(false),
        },
        Some("whole-path") => {
            let whole = entry.to_string_lossy();
            if whole.ends_with(".wh..wh..opq") {
                opaque(&dir, &trusted).map(|()| true)
            } else if let Some(hidden) = whole.strip_prefix(".wh.") {
                whiteout(&layer.join(hidden)).map(|()| true)
            } else {
                Ok(false)
            }
        }
        Some("contains") => match name.as_str() {
            ".wh..wh..opq" => opaque(&dir, &trusted).map(|()| true),
            n if n.contains(".wh.") => {
                whiteout(&dir.join(n.replacen(".wh.", "", 1))).map(|()| true)
            }
            _ => Ok(false),
        },
        Some("no-parents") => match name.as_str() {
            ".wh..wh..opq" => opaque(&dir, &trusted).map(|()| true),
            n if n.starts_with(".wh.") => {
                mknod(&dir.join(&n[4..]), SFlag::S_IFCHR, Mode::empty(), 0)
                    .with_context(|| format!("mknod {}", dir.join(&n[4..]).display()))
                    .map(|()| true)
            }
            _ => Ok(false),
        },
        Some("remake-dir") => match name.as_str() {
            ".wh..wh..opq" => {
                let _ = std::fs::remove_dir_all(&dir);
                opaque(&dir, &trusted).map(|()| true)
            }
            n if n.starts_with(".wh.") => whiteout(&dir.join(&n[4..])).map(|()| true),
            _ => Ok(false),
        },
        Some("libc") => {
            let bytes = entry
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                .unwrap_or_default();
            if bytes == b".wh..wh..opq" {
                std::fs::create_dir_all(&dir)?;
                set_xattr(&dir, &trusted)?;
                return Ok(true);
            }
            let Some(hidden) = bytes.strip_prefix(b".wh.") else {
                return Ok(false);
            };
            std::fs::create_dir_all(&dir)?;
            let path = CString::new(
                dir.join(std::ffi::OsStr::from_bytes(hidden))
                    .as_os_str()
                    .as_bytes(),
            )?;
            // SAFETY: a NUL-terminated path alive for the call.
            let rc = unsafe {
                nix::libc::mknod(path.as_ptr(), nix::libc::S_IFCHR, nix::libc::makedev(0, 0))
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error()).context("mknod(2)");
            }
            Ok(true)
        }
        Some("match") => match name.as_str() {
            ".wh..wh..opq" => opaque(&dir, &trusted).map(|()| true),
            "" | ".wh." => Ok(false),
            n => match n.strip_prefix(".wh.") {
                Some(hidden) => whiteout(&dir.join(hidden)).map(|()| true),
                None => Ok(false),
            },
        },
        Some(other) => unknown("9.1", other),
    }
}

fn set_xattr(dir: &Path, name: &CString) -> Result<()> {
    let path = CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: NUL-terminated strings and a one-byte value, alive for the call.
    let rc =
        unsafe { nix::libc::lsetxattr(path.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("setxattr {:?} on {}", name, dir.display()));
    }
    Ok(())
}

/// Exercise 9.2.
pub fn copy_verified(blob: impl Read, name: &str, digest: &str, to: &Path) -> Result<u64> {
    match chosen("9.2").as_deref() {
        None => solutions::ch09_image::copy_verified(blob, name, digest, to),
        Some("no-pad") => Copier {
            pad: false,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("one-read") => Copier {
            one_read: true,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("short-id") => Copier {
            compare: 12,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("nameless") => Copier {
            say_name: false,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("expected-only") => Copier {
            say_actual: false,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("in-place") => Copier {
            in_place: true,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("partial-left") => Copier {
            keep_bad: true,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("in-place-removed") => Copier {
            in_place: true,
            remove_bad: true,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("any-case") => Copier {
            any_case: true,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("any-algorithm") => Copier {
            any_algorithm: true,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("late-format") => Copier {
            late_format: true,
            ..Copier::RIGHT
        }
        .run(blob, name, digest, to),
        Some("hashing-writer") => hashing_writer(blob, name, digest, to),
        Some("hashing-reader") => hashing_reader(blob, name, digest, to),
        Some(other) => unknown("9.2", other),
    }
}

/// A student's copy, right unless one of its mistakes is switched on.
#[derive(Clone, Copy)]
struct Copier {
    pad: bool,
    one_read: bool,
    /// How many hex digits are compared.
    compare: usize,
    say_name: bool,
    say_actual: bool,
    in_place: bool,
    /// With `in_place`: `to` is removed when the digest does not match.
    remove_bad: bool,
    /// The temporary file is left when the digest does not match.
    keep_bad: bool,
    any_case: bool,
    any_algorithm: bool,
    /// No look at the digest's form first: only the comparison at the end.
    late_format: bool,
}

impl Copier {
    const RIGHT: Copier = Copier {
        pad: true,
        one_read: false,
        compare: 64,
        say_name: true,
        say_actual: true,
        in_place: false,
        remove_bad: false,
        keep_bad: false,
        any_case: false,
        any_algorithm: false,
        late_format: false,
    };

    fn run(self, mut blob: impl Read, name: &str, digest: &str, to: &Path) -> Result<u64> {
        let (algorithm, expected) = digest.split_once(':').context("no algorithm")?;
        let hex_ok = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        let hex_ok = |c: char| hex_ok(c) || (self.any_case && c.is_ascii_hexdigit());
        if !self.late_format && (algorithm != "sha256" && !self.any_algorithm)
            || !self.late_format && expected.len() < self.compare.min(64)
            || !self.late_format && (self.compare == 64 && expected.len() != 64)
            || !self.late_format && !expected.chars().all(hex_ok)
        {
            bail!("{name}: {digest} is not a sha256 digest");
        }
        let tmp = if self.in_place {
            to.to_path_buf()
        } else {
            to.with_extension("partial")
        };
        let mut out = std::fs::File::create(&tmp)?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 21];
        let mut size = 0u64;
        loop {
            let n = blob.read(&mut buf)?;
            hash.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            size += n as u64;
            if n == 0 || self.one_read {
                break;
            }
        }
        let got: String = hash
            .finalize()
            .iter()
            .map(|b| {
                if self.pad {
                    format!("{b:02x}")
                } else {
                    format!("{b:x}")
                }
            })
            .collect();
        let n = self.compare.min(expected.len());
        let same = if self.late_format {
            format!("sha256:{got}") == digest
        } else if self.any_case {
            got.get(..n)
                .is_some_and(|g| g.eq_ignore_ascii_case(&expected[..n]))
        } else {
            got.get(..n) == Some(&expected[..n])
        };
        if !same {
            if (!self.in_place && !self.keep_bad) || self.remove_bad {
                let _ = std::fs::remove_file(&tmp);
            }
            let who = if self.say_name { name } else { "the blob" };
            if self.say_actual {
                bail!("{who}: sha256:{got} does not match {digest}");
            }
            bail!("{who} does not match {digest}");
        }
        if !self.in_place {
            std::fs::rename(&tmp, to)?;
        }
        Ok(size)
    }
}

/// `sha256:` and 64 lowercase hex digits, or an error naming the blob.
fn sha256_hex<'a>(name: &str, digest: &'a str) -> Result<&'a str> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        _ => bail!("{name}: refused the digest {digest:?}: not sha256 and 64 lowercase hex digits"),
    }
}

fn hex(hash: Sha256) -> String {
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Right, another way: a writer that hashes what it passes on.
fn hashing_writer(mut blob: impl Read, name: &str, digest: &str, to: &Path) -> Result<u64> {
    struct Hashing<W> {
        inner: W,
        hash: Sha256,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.hash.update(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let expected = sha256_hex(name, digest)?;
    let tmp = to.with_extension(format!("tmp-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let mut out = Hashing {
        inner: std::io::BufWriter::new(file),
        hash: Sha256::new(),
    };
    let copied = std::io::copy(&mut blob, &mut out).and_then(|n| out.flush().map(|()| n));
    let size = match copied {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).context(format!("copying {name}"));
        }
    };
    let got = hex(out.hash);
    if got != expected {
        std::fs::remove_file(&tmp)?;
        bail!("blob {name} refused: manifest says {digest}, content is sha256:{got}");
    }
    std::fs::rename(&tmp, to)?;
    Ok(size)
}

/// Right, another way: a reader that hashes what it hands out.
fn hashing_reader(blob: impl Read, name: &str, digest: &str, to: &Path) -> Result<u64> {
    struct Hashing<R> {
        inner: R,
        hash: Sha256,
    }
    impl<R: Read> Read for Hashing<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.hash.update(&buf[..n]);
            Ok(n)
        }
    }
    let expected = sha256_hex(name, digest)?.to_string();
    let dir = to.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".incoming-{}", std::process::id()));
    let mut reader = Hashing {
        inner: blob,
        hash: Sha256::new(),
    };
    let result = (|| -> Result<u64> {
        let mut out = std::fs::File::create(&tmp)?;
        let size = std::io::copy(&mut reader, &mut out)?;
        let got = hex(reader.hash.clone());
        if got != expected {
            bail!("{name}: expected {digest}, got sha256:{got}");
        }
        Ok(size)
    })();
    match result {
        Ok(size) => {
            std::fs::rename(&tmp, to)?;
            Ok(size)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
