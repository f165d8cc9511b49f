//! A writer for the "newc" cpio format, the one the kernel unpacks as an
//! initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Each entry is a 110-byte ASCII header, the path (NUL-terminated), padding
//! to a multiple of 4 bytes, the data, and padding to a multiple of 4 again:
//!
//! ```text
//! magic "070701", then 13 fields of 8 hex digits each:
//! ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
//! ```
//!
//! The archive ends with an entry named `TRAILER!!!`. The kernel does not
//! create missing parent directories, so the writer emits each parent (mode
//! 0755) before the first entry beneath it. Paths are stored without their
//! leading `/`, as the kernel's own `gen_init_cpio` does.

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::io::{self, Read, Write};

pub const MAGIC: &[u8; 6] = b"070701";
pub const HEADER_LEN: usize = 110;
pub const TRAILER: &str = "TRAILER!!!";

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// Streams a newc archive into `out`. Every entry is owned by root.
pub struct Writer<W: Write> {
    out: W,
    /// Bytes written so far, for the padding.
    written: u64,
    next_ino: u32,
    mtime: u32,
    /// Directories already in the archive (without the leading `/`).
    dirs: BTreeSet<String>,
    /// Every path already in the archive, to refuse duplicates.
    paths: BTreeSet<String>,
}

impl<W: Write> Writer<W> {
    /// A writer whose entries all carry `mtime` (seconds since the epoch).
    pub fn new(out: W, mtime: u32) -> Writer<W> {
        Writer {
            out,
            written: 0,
            next_ino: 1,
            mtime,
            dirs: BTreeSet::new(),
            paths: BTreeSet::new(),
        }
    }

    /// A directory, and any missing parent (mode 0755).
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let path = relative(path)?;
        if self.dirs.contains(&path) {
            return Ok(());
        }
        self.parents(&path)?;
        self.entry(
            &path,
            S_IFDIR | (mode & 0o7777),
            2,
            (0, 0),
            &mut io::empty(),
            0,
        )?;
        self.dirs.insert(path);
        Ok(())
    }

    /// A regular file of `size` bytes read from `data`.
    pub fn file(&mut self, path: &str, mode: u32, size: u64, data: &mut dyn Read) -> Result<()> {
        let path = relative(path)?;
        self.parents(&path)?;
        self.entry(&path, S_IFREG | (mode & 0o7777), 1, (0, 0), data, size)
    }

    /// A regular file held in memory.
    pub fn file_bytes(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.file(path, mode, data.len() as u64, &mut &data[..])
    }

    /// A symbolic link to `target` (its data is the target, no NUL).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let path = relative(path)?;
        self.parents(&path)?;
        let bytes = target.as_bytes();
        self.entry(
            &path,
            S_IFLNK | 0o777,
            1,
            (0, 0),
            &mut &bytes[..],
            bytes.len() as u64,
        )
    }

    /// A character device node (`/dev/console` is 5:1).
    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> Result<()> {
        let path = relative(path)?;
        self.parents(&path)?;
        self.entry(
            &path,
            S_IFCHR | (mode & 0o7777),
            1,
            (major, minor),
            &mut io::empty(),
            0,
        )
    }

    /// Write the trailer and hand back the output.
    pub fn finish(mut self) -> Result<W> {
        // As the kernel's gen_init_cpio writes it: all zero but nlink and namesize.
        self.mtime = 0;
        self.header(TRAILER, 0, 0, 1, 0, (0, 0))?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn parents(&mut self, path: &str) -> Result<()> {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash;
            let parent = &path[..end];
            if !self.dirs.contains(parent) {
                self.entry(parent, S_IFDIR | 0o755, 2, (0, 0), &mut io::empty(), 0)?;
                self.dirs.insert(parent.to_string());
            }
            end += 1;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &mut dyn Read,
        size: u64,
    ) -> Result<()> {
        if !self.paths.insert(path.to_string()) {
            bail!("/{path} is in the archive twice");
        }
        let Ok(size32) = u32::try_from(size) else {
            bail!("/{path} is too big for a cpio entry ({size} bytes; the limit is 4 GiB)");
        };
        let ino = self.next_ino;
        self.next_ino += 1;
        self.header(path, ino, mode, nlink, size32, rdev)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)
            .with_context(|| format!("failed to copy /{path} into the archive"))?;
        if copied != size {
            bail!("/{path} changed while it was archived: {copied} bytes, expected {size}");
        }
        self.written += size;
        self.pad()
    }

    fn header(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        size: u32,
        (rdev_major, rdev_minor): (u32, u32),
    ) -> Result<()> {
        let namesize = name.len() as u32 + 1;
        let fields = [
            ino, mode, 0, 0, nlink, self.mtime, size, 0, 0, rdev_major, rdev_minor, namesize, 0,
        ];
        let mut head = Vec::with_capacity(HEADER_LEN + name.len() + 4);
        head.extend_from_slice(MAGIC);
        for field in fields {
            head.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        head.extend_from_slice(name.as_bytes());
        head.push(0);
        self.out.write_all(&head)?;
        self.written += head.len() as u64;
        self.pad()
    }

    /// Zeroes up to the next multiple of 4 bytes.
    fn pad(&mut self) -> Result<()> {
        let pad = (4 - (self.written % 4) as usize) % 4;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.written += pad as u64;
        Ok(())
    }
}

/// `/bin/sh` -> `bin/sh`; refuses what the kernel would not unpack where we mean.
fn relative(path: &str) -> Result<String> {
    let rel = path.trim_start_matches('/').trim_end_matches('/');
    if rel.is_empty()
        || rel.contains('\0')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("not a usable path in an initramfs: {path:?}");
    }
    Ok(rel.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry read back: the 13 header fields, the name and the data.
    #[derive(Debug)]
    struct Entry {
        fields: [u32; 13],
        name: String,
        data: Vec<u8>,
    }

    impl Entry {
        fn mode(&self) -> u32 {
            self.fields[1]
        }
    }

    /// A strict reader written from the spec: checks the magic, the hex
    /// fields, the NUL after the name and that every pad byte is zero.
    fn read_all(mut bytes: &[u8]) -> Vec<Entry> {
        let total = bytes.len();
        let mut entries = Vec::new();
        let pad_to_4 = |b: &mut &[u8], total: usize| {
            let at = total - b.len();
            let pad = (4 - at % 4) % 4;
            assert!(b[..pad].iter().all(|&z| z == 0), "padding is zeroes");
            *b = &b[pad..];
        };
        loop {
            assert_eq!(
                &bytes[..6],
                MAGIC,
                "magic at offset {}",
                total - bytes.len()
            );
            let mut fields = [0u32; 13];
            for (i, f) in fields.iter_mut().enumerate() {
                let hex = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{hex}");
                *f = u32::from_str_radix(hex, 16).unwrap();
            }
            let namesize = fields[11] as usize;
            let name_bytes = &bytes[HEADER_LEN..HEADER_LEN + namesize];
            assert_eq!(name_bytes.last(), Some(&0), "name ends with NUL");
            let name = std::str::from_utf8(&name_bytes[..namesize - 1])
                .unwrap()
                .to_string();
            bytes = &bytes[HEADER_LEN + namesize..];
            pad_to_4(&mut bytes, total);
            let size = fields[6] as usize;
            let data = bytes[..size].to_vec();
            bytes = &bytes[size..];
            pad_to_4(&mut bytes, total);
            let done = name == TRAILER;
            entries.push(Entry { fields, name, data });
            if done {
                assert!(bytes.is_empty(), "nothing after the trailer");
                return entries;
            }
        }
    }

    #[test]
    fn a_file_entry_is_byte_for_byte_the_newc_layout() {
        let mut w = Writer::new(Vec::new(), 0x6553_F100);
        w.file_bytes("/init", 0o755, b"#!/bin/sh\n").unwrap();
        let bytes = w.finish().unwrap();
        let expected_header = concat!(
            "070701",   // magic
            "00000001", // ino
            "000081ED", // mode: S_IFREG | 0755
            "00000000", // uid
            "00000000", // gid
            "00000001", // nlink
            "6553F100", // mtime
            "0000000A", // filesize: 10
            "00000000", // devmajor
            "00000000", // devminor
            "00000000", // rdevmajor
            "00000000", // rdevminor
            "00000005", // namesize: "init" + NUL
            "00000000", // check
        );
        assert_eq!(expected_header.len(), HEADER_LEN);
        let mut expected = expected_header.as_bytes().to_vec();
        expected.extend_from_slice(b"init\0"); // 110 + 5 = 115: pad 1 to 116
        expected.push(0);
        expected.extend_from_slice(b"#!/bin/sh\n"); // 116 + 10 = 126: pad 2 to 128
        expected.extend_from_slice(&[0, 0]);
        assert_eq!(
            String::from_utf8_lossy(&bytes[..expected.len()]),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(&bytes[..expected.len()], &expected[..]);
        // Then the trailer: ino 0, mode 0, nlink 1, namesize 11, and the whole
        // archive is a multiple of 4 bytes.
        let trailer = &bytes[expected.len()..];
        let expected_trailer = concat!(
            "070701",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000001", // nlink
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "0000000B", // namesize: "TRAILER!!!" + NUL
            "00000000",
            "TRAILER!!!\0",
            "\0", // 110 + 11 = 121: pad 3 to 124
            "\0\0",
        );
        assert_eq!(
            String::from_utf8_lossy(trailer),
            expected_trailer,
            "the trailer, then nothing"
        );
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn every_entry_starts_on_a_four_byte_boundary_whatever_the_name_length() {
        let mut w = Writer::new(Vec::new(), 0);
        for (i, name) in ["a", "ab", "abc", "abcd", "abcde"].iter().enumerate() {
            w.file_bytes(name, 0o644, &b"xyz12"[..i]).unwrap();
        }
        let bytes = w.finish().unwrap();
        let entries = read_all(&bytes);
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "ab", "abc", "abcd", "abcde", TRAILER]);
        for (i, e) in entries.iter().take(5).enumerate() {
            assert_eq!(e.data, &b"xyz12"[..i]);
        }
    }

    #[test]
    fn parents_come_first_once_and_paths_lose_their_leading_slash() {
        let mut w = Writer::new(Vec::new(), 0);
        w.file_bytes("/work/t/x/debug/ch01", 0o755, b"elf").unwrap();
        w.file_bytes("/work/t/x/debug/ch03", 0o755, b"elf").unwrap();
        w.dir("/work/t", 0o700).unwrap(); // already there: not repeated
        w.dir("/tmp", 0o1777).unwrap();
        let entries = read_all(&w.finish().unwrap());
        let listing: Vec<_> = entries
            .iter()
            .map(|e| (e.name.as_str(), format!("{:o}", e.mode())))
            .collect();
        assert_eq!(
            listing,
            [
                ("work", "40755".to_string()),
                ("work/t", "40755".into()),
                ("work/t/x", "40755".into()),
                ("work/t/x/debug", "40755".into()),
                ("work/t/x/debug/ch01", "100755".into()),
                ("work/t/x/debug/ch03", "100755".into()),
                ("tmp", "41777".into()),
                (TRAILER, "0".into()),
            ]
        );
        let inos: BTreeSet<u32> = entries.iter().take(7).map(|e| e.fields[0]).collect();
        assert_eq!(inos.len(), 7, "each entry has its own inode number");
    }

    #[test]
    fn symlinks_and_device_nodes() {
        let mut w = Writer::new(Vec::new(), 0);
        w.symlink("/bin/sh", "busybox").unwrap();
        w.char_device("/dev/console", 0o600, 5, 1).unwrap();
        let entries = read_all(&w.finish().unwrap());
        let sh = &entries[1];
        assert_eq!((sh.name.as_str(), sh.mode()), ("bin/sh", 0o120_777));
        assert_eq!(sh.data, b"busybox", "the target, with no NUL");
        let console = &entries[3];
        assert_eq!(console.name, "dev/console");
        assert_eq!(console.mode(), 0o020_600);
        assert_eq!((console.fields[9], console.fields[10]), (5, 1), "rdev 5:1");
        assert_eq!(console.fields[6], 0, "no data");
    }

    #[test]
    fn bad_paths_and_duplicates_are_refused() {
        let mut w = Writer::new(Vec::new(), 0);
        for bad in ["", "/", "a/../b", "a//b", "./a", "a/\0"] {
            assert!(w.file_bytes(bad, 0o644, b"").is_err(), "{bad:?}");
        }
        w.file_bytes("/a", 0o644, b"").unwrap();
        let err = w.file_bytes("a", 0o644, b"").unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn a_short_reader_is_an_error_not_a_corrupt_archive() {
        let mut w = Writer::new(Vec::new(), 0);
        let err = w.file("/x", 0o644, 10, &mut &b"only5"[..]).unwrap_err();
        assert!(err.to_string().contains("changed while"), "{err}");
    }

    /// busybox's own cpio reads the archive back (CI installs busybox-static;
    /// the xtask needs it anyway for the VM).
    #[test]
    fn busybox_cpio_lists_what_was_written() {
        let busybox = std::path::Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "this check reads the archive with busybox cpio: apt-get install busybox-static"
        );
        let mut w = Writer::new(Vec::new(), 0);
        w.file_bytes("/work/deep/file", 0o644, b"hello").unwrap();
        w.symlink("/bin/sh", "busybox").unwrap();
        let bytes = w.finish().unwrap();
        let mut child = std::process::Command::new(busybox)
            .args(["cpio", "-t"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "work\nwork/deep\nwork/deep/file\nbin\nbin/sh\n"
        );
    }
}
