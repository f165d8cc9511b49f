//! Hostile archives against the image unpacker (`cargo xtask rootfs --from`).
//! Each test builds a crafted tar, unpacks it into `HOST/a/b/rootfs` and
//! proves that nothing outside changed: a sentinel file and a sentinel
//! directory beside it (in the test's own temp dir, never /tmp's real files)
//! keep their content, mode, owner and times, and no new path appears
//! outside. Every archive is unpacked three ways: as a user would (no
//! owners), as root (owners from the archive), and as root keeping setuid.
//! (Root first: the reported exploit needed the owners-from-the-archive path.)
//!
//! Run: `cargo test -p workshop-rootfs --test hostile_archives`

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use workshop_rootfs::unpack::{self, Options, SetuidBits, Unpacked};
use workshop_rootfs::walk;
use workshop_testkit::{require_root, Tarball, TempDir};

/// The three ways an archive is unpacked in every test.
const WAYS: [Options; 3] = [
    Options {
        owners: true,
        setuid: SetuidBits::Drop,
    },
    Options {
        owners: true,
        setuid: SetuidBits::Keep,
    },
    Options {
        owners: false,
        setuid: SetuidBits::Drop,
    },
];

/// A stand-in for the host: a temp dir with a sentinel file and a sentinel
/// directory (owned by 65534, unusual modes), and the rootfs deep inside it.
struct Host {
    tmp: TempDir,
}

/// What is recorded of each path outside the rootfs.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    path: PathBuf,
    /// Type and permission bits, in octal ("100640").
    mode: String,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    content: Option<String>,
    link: Option<PathBuf>,
}

impl Host {
    fn new(what: &str) -> Host {
        require_root();
        let host = Host {
            tmp: TempDir::new(what),
        };
        let file = host.sentinel();
        fs::write(&file, "the host's own file\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        let dir = host.sentinel_dir();
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("inside"), "in the host's directory\n").unwrap();
        fs::set_permissions(dir.join("inside"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1750)).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        fs::create_dir_all(host.dest().parent().unwrap()).unwrap();
        host
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn sentinel(&self) -> PathBuf {
        self.path().join("sentinel")
    }

    fn sentinel_dir(&self) -> PathBuf {
        self.path().join("sentinel-dir")
    }

    /// The absolute path of `p`, as an archive would name it.
    fn abs(&self, p: &Path) -> String {
        p.to_str().unwrap().to_string()
    }

    fn dest(&self) -> PathBuf {
        self.path().join("a/b/rootfs")
    }

    /// Everything outside the rootfs, with content, mode, owner and times.
    fn outside(&self) -> Vec<Seen> {
        let mut seen = Vec::new();
        let dest = self.dest();
        walk(self.path(), &mut |p, m| {
            if p.starts_with(&dest) {
                return Ok(());
            }
            seen.push(Seen {
                path: p.to_path_buf(),
                mode: format!("{:o}", m.mode()),
                uid: m.uid(),
                gid: m.gid(),
                mtime: (m.mtime(), m.mtime_nsec()),
                content: m
                    .is_file()
                    .then(|| String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned()),
                link: fs::read_link(p).ok(),
            });
            Ok(())
        })
        .unwrap();
        seen
    }

    /// Unpack `archive` each of the three ways into a fresh rootfs, check
    /// that the outside did not change, and hand each result to `check`.
    fn unpack_each_way(
        &self,
        archive: &[u8],
        check: impl Fn(Options, &Path, anyhow::Result<Unpacked>),
    ) {
        for options in WAYS {
            self.fresh_dest();
            let before = self.outside();
            let done = unpack::unpack_from(archive, &self.dest(), options);
            let after = self.outside();
            assert_eq!(
                self.sentinel_state(&after),
                self.sentinel_state(&before),
                "{options:?}: the sentinels outside changed"
            );
            assert_eq!(after, before, "{options:?}: something outside changed");
            check(options, &self.dest(), done);
        }
    }

    /// An empty rootfs directory, made before the outside is recorded: its
    /// parent's mtime changes when it is made, and that is not the archive.
    fn fresh_dest(&self) -> PathBuf {
        let _ = workshop_rootfs::remove_tree(&self.dest());
        fs::create_dir(self.dest()).unwrap();
        self.dest()
    }

    /// The sentinels alone, for a short message when they change.
    fn sentinel_state<'a>(&self, seen: &'a [Seen]) -> Vec<&'a Seen> {
        seen.iter()
            .filter(|s| {
                s.path.starts_with(self.sentinel()) || s.path.starts_with(self.sentinel_dir())
            })
            .collect()
    }
}

fn warnings_of(done: &Unpacked) -> String {
    done.warnings.join("\n")
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

#[test]
fn traversal_with_dotdot_lands_nowhere() {
    let host = Host::new("hostile-dotdot");
    let mut tar = Tarball::new();
    tar.file("../x", b"x", 0o644)
        .file("a/../../x", b"x", 0o644)
        .file("../../sentinel", b"overwritten", 0o777)
        .file("../../../sentinel", b"overwritten", 0o777)
        .file("../../sentinel-dir/inside", b"overwritten", 0o777)
        .dir("../../sentinel-dir/", 0o777)
        .dir("../newdir/", 0o755)
        .symlink("../link", "/")
        .hard_link("../../hard", "etc/x")
        .file("./ok/../../../../x", b"x", 0o644)
        .file("ok", b"fine", 0o644);
    host.unpack_each_way(&tar.bytes(), |options, dest, done| {
        let done = done.unwrap();
        assert_eq!(fs::read(dest.join("ok")).unwrap(), b"fine");
        assert_eq!(
            done.warnings.len(),
            10,
            "{options:?}: {}",
            warnings_of(&done)
        );
        assert!(
            done.warnings.iter().all(|w| w.contains("`..`")),
            "{}",
            warnings_of(&done)
        );
        assert_eq!(fs::read_dir(dest).unwrap().count(), 1, "only `ok` inside");
    });
}

#[test]
fn absolute_paths_land_inside() {
    let host = Host::new("hostile-abs");
    let sentinel = host.abs(&host.sentinel());
    let dir = host.abs(&host.sentinel_dir());
    let mut tar = Tarball::new();
    tar.file(&sentinel, b"overwritten", 0o4777)
        .dir(&format!("{dir}/"), 0o777)
        .file(&format!("{dir}/inside"), b"overwritten", 0o777)
        .file("/etc/passwd", b"root::0:0::/:/bin/sh\n", 0o644);
    host.unpack_each_way(&tar.bytes(), |options, dest, done| {
        let done = done.unwrap();
        assert!(done.warnings.is_empty(), "{}", warnings_of(&done));
        let inside = |p: &str| dest.join(p.trim_start_matches('/'));
        assert_eq!(fs::read(inside(&sentinel)).unwrap(), b"overwritten");
        let want = if options.owners && options.setuid == SetuidBits::Keep {
            0o4777
        } else {
            0o777
        };
        assert_eq!(mode_of(&inside(&sentinel)), want, "{options:?}");
        assert_eq!(
            fs::read(inside(&format!("{dir}/inside"))).unwrap(),
            b"overwritten"
        );
        assert!(inside("/etc/passwd").is_file());
    });
}

/// A symlink to the host, then entries that would write through it.
#[test]
fn nothing_is_written_or_chmodded_through_a_symlink() {
    let host = Host::new("hostile-through");
    let sentinel = host.abs(&host.sentinel());
    let dir = host.abs(&host.sentinel_dir());
    let mut tar = Tarball::new();
    tar
        // The same name as a file: the link is replaced, not followed.
        .symlink("s", &sentinel)
        .file("s", b"replaced the link", 0o4777)
        // Through a directory link: refused.
        .symlink("d", &dir)
        .file("d/inside", b"overwritten", 0o777)
        .file("d/new", b"x", 0o644)
        .dir("d/newdir/", 0o777)
        .symlink("d/link", "/")
        .raw("d/inside", tar::EntryType::Link, 0o777, "s", b"")
        // The same through a relative link that climbs out.
        .symlink("up", "../../../sentinel-dir")
        .file("up/inside", b"overwritten", 0o777)
        // A directory entry where a link to a host dir is: the link goes.
        .symlink("d2", &dir)
        .dir("d2/", 0o700)
        // A link to a host dir named as a parent, several levels down.
        .symlink("x", &dir)
        .file("x/y/z", b"x", 0o644);
    host.unpack_each_way(&tar.bytes(), |options, dest, done| {
        let done = done.unwrap();
        let w = warnings_of(&done);
        assert_eq!(
            fs::read(dest.join("s")).unwrap(),
            b"replaced the link",
            "{options:?}"
        );
        assert!(fs::symlink_metadata(dest.join("d2")).unwrap().is_dir());
        assert_eq!(
            mode_of(&dest.join("d2")),
            0o700 | if options.owners { 0 } else { 0o200 }
        );
        for refused in [
            "d/inside",
            "d/new",
            "d/newdir",
            "d/link",
            "up/inside",
            "x/y/z",
        ] {
            assert!(w.contains(&format!("skipped {refused}")), "{refused}: {w}");
        }
        assert_eq!(
            w.matches("is a symlink, and nothing is written through one")
                .count(),
            7,
            "{w}"
        );
    });
}

/// The reported exploit: a hard link to a symlink, whose mode was then set
/// through the link (4777 on a host file, 0777 on a host directory).
#[test]
fn a_hard_link_to_a_symlink_never_changes_the_host() {
    let host = Host::new("hostile-hardlink-symlink");
    let mut tar = Tarball::new();
    tar.symlink("s", &host.abs(&host.sentinel()))
        .raw("h", tar::EntryType::Link, 0o4777, "s", b"")
        .symlink("evil", &host.abs(&host.sentinel_dir()))
        .raw("h2", tar::EntryType::Link, 0o777, "evil", b"")
        .symlink("rel", "../../../sentinel")
        .raw("h3", tar::EntryType::Link, 0o6777, "./rel", b"");
    host.unpack_each_way(&tar.bytes(), |_, dest, done| {
        let done = done.unwrap();
        let w = warnings_of(&done);
        for h in ["h", "h2", "h3"] {
            assert!(!exists(&dest.join(h)), "{h} was made: {w}");
        }
        assert_eq!(w.matches("it is a symlink").count(), 3, "{w}");
    });
}

#[test]
fn a_hard_link_to_a_host_path_or_a_directory_is_refused() {
    let host = Host::new("hostile-hardlink-host");
    // A file already in the destination that this unpack did not write
    // (a second name for the sentinel): not something a hard link may name.
    let planted = host.dest().join("planted");
    let mut tar = Tarball::new();
    tar.raw(
        "abs",
        tar::EntryType::Link,
        0o4777,
        &host.abs(&host.sentinel()),
        b"",
    )
    .raw("climb", tar::EntryType::Link, 0o4777, "../../sentinel", b"")
    .raw("dir", tar::EntryType::Link, 0o777, "etc", b"")
    .raw("missing", tar::EntryType::Link, 0o777, "nowhere", b"")
    .raw("planted-link", tar::EntryType::Link, 0o777, "planted", b"")
    .raw("empty", tar::EntryType::Link, 0o777, "", b"")
    .dir("etc/", 0o755)
    .raw("dir-late", tar::EntryType::Link, 0o777, "etc", b"")
    .file("etc/real", b"real", 0o644)
    .raw("real-link", tar::EntryType::Link, 0o4777, "etc/real", b"");
    let archive = tar.bytes();
    for options in WAYS {
        host.fresh_dest();
        fs::hard_link(host.sentinel(), &planted).unwrap();
        let before = host.outside();
        let done = unpack::unpack_from(&archive[..], &host.dest(), options).unwrap();
        assert_eq!(
            host.outside(),
            before,
            "{options:?}: something outside changed"
        );
        let w = warnings_of(&done);
        for refused in [
            "abs",
            "climb",
            "dir",
            "missing",
            "planted-link",
            "empty",
            "dir-late",
        ] {
            assert!(!exists(&host.dest().join(refused)), "{refused}: {w}");
            assert!(w.contains(&format!("skipped {refused}:")), "{refused}: {w}");
        }
        // A hard link to a file of the image is fine, and takes no mode of its own.
        let real = host.dest().join("etc/real");
        assert_eq!(
            fs::metadata(host.dest().join("real-link")).unwrap().ino(),
            fs::metadata(&real).unwrap().ino()
        );
        assert_eq!(mode_of(&real), 0o644);
        assert_eq!(mode_of(&host.sentinel()), 0o640);
    }
}

#[test]
fn devices_and_fifos_are_never_made() {
    let host = Host::new("hostile-devices");
    let mut tar = Tarball::new();
    tar.char_device("dev/null")
        .block_device("dev/sda")
        .fifo("fifo")
        .raw("dev/mem", tar::EntryType::Char, 0o4777, "", b"")
        .raw(
            &host.abs(&host.sentinel()),
            tar::EntryType::Fifo,
            0o777,
            "",
            b"",
        );
    host.unpack_each_way(&tar.bytes(), |_, dest, done| {
        let done = done.unwrap();
        assert_eq!(done.devices, 5);
        assert_eq!(done.written, 0);
        for p in ["dev/null", "dev/sda", "fifo", "dev/mem"] {
            assert!(!exists(&dest.join(p)), "{p}");
        }
    });
}

#[test]
fn setuid_and_setgid_bits_are_dropped_unless_kept_by_root() {
    let host = Host::new("hostile-setuid");
    let mut tar = Tarball::new();
    tar.dir("bin/", 0o755)
        .file("bin/su", b"\x7fELF", 0o4755)
        .file("bin/wall", b"\x7fELF", 0o2755)
        .file("bin/both", b"\x7fELF", 0o6777)
        .file("bin/plain", b"\x7fELF", 0o755)
        .raw("bin/su-link", tar::EntryType::Link, 0o4755, "bin/su", b"")
        .dir("shared/", 0o2775)
        .dir("tmp/", 0o1777);
    host.unpack_each_way(&tar.bytes(), |options, dest, done| {
        let done = done.unwrap();
        let keep = options.owners && options.setuid == SetuidBits::Keep;
        let modes: Vec<u32> = ["bin/su", "bin/wall", "bin/both", "bin/plain", "bin/su-link"]
            .iter()
            .map(|p| mode_of(&dest.join(p)))
            .collect();
        if keep {
            assert_eq!(
                modes,
                [0o4755, 0o2755, 0o6777, 0o755, 0o4755],
                "{options:?}"
            );
            assert_eq!((done.setuid_dropped, done.setuid_kept), (0, 3));
        } else {
            assert_eq!(modes, [0o755, 0o755, 0o777, 0o755, 0o755], "{options:?}");
            assert_eq!((done.setuid_dropped, done.setuid_kept), (3, 0));
        }
        // A setgid directory (inherit the group) and /tmp's sticky bit stay.
        let shared = if options.owners { 0o2775 } else { 0o775 };
        assert_eq!(mode_of(&dest.join("shared")), shared, "{options:?}");
        assert_eq!(mode_of(&dest.join("tmp")), 0o1777, "{options:?}");
    });
}

/// A 2 GiB sparse entry: the archive holds 1 KiB of data; the file on disk
/// must keep its holes (measured: blocks allocated) and take little time.
#[test]
fn a_2gb_sparse_entry_costs_its_data_not_2gb() {
    const SIZE: u64 = 2 << 30;
    let host = Host::new("hostile-sparse");
    let mut tar = Tarball::new();
    tar.sparse(
        "big",
        SIZE,
        &[(0, &[b'a'; 512][..]), (SIZE - 512, &[b'z'; 512][..])],
    );
    let archive = tar.bytes();
    assert!(
        archive.len() < 8192,
        "the archive is small: {}",
        archive.len()
    );
    host.unpack_each_way(&archive, |options, dest, done| {
        let done = done.unwrap();
        assert!(done.warnings.is_empty(), "{}", warnings_of(&done));
        let big = dest.join("big");
        let meta = fs::metadata(&big).unwrap();
        assert_eq!(meta.len(), SIZE);
        let on_disk = meta.blocks() * 512;
        eprintln!("{options:?}: 2 GiB sparse entry: {on_disk} bytes on disk");
        assert!(
            on_disk <= 1 << 20,
            "{on_disk} bytes on disk for 1 KiB of data"
        );
        use std::io::{Read, Seek, SeekFrom};
        let mut file = fs::File::open(&big).unwrap();
        let mut end = [0u8; 513];
        file.seek(SeekFrom::Start(SIZE - 513)).unwrap();
        file.read_exact(&mut end).unwrap();
        assert_eq!(end[0], 0);
        assert!(end[1..].iter().all(|b| *b == b'z'));
    });
    // Timed once, on its own: measured about 1.5 s in a debug build.
    let dest = host.fresh_dest();
    let start = Instant::now();
    unpack::unpack_from(&archive[..], &dest, WAYS[0]).unwrap();
    let took = start.elapsed();
    eprintln!("2 GiB sparse entry unpacked in {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// 100,000 entries in 100 directories: bounded time. The time is measured
/// against what this filesystem needs to create 10,000 empty files with
/// plain open(O_CREAT) calls, times ten: creating files is most of the cost
/// (this machine's ext4 took 25 to 45 s for 100,000, Python or Rust alike),
/// and a fixed limit would fail on a slow disk or a loaded machine. What
/// the check catches is work that grows faster than the entries do.
#[test]
fn a_hundred_thousand_entries_unpack_in_bounded_time() {
    let host = Host::new("hostile-many");
    let mut tar = Tarball::new();
    for d in 0..100 {
        tar.dir(&format!("d{d}/"), 0o755);
        for f in 0..1000 {
            tar.file(&format!("d{d}/f{f}"), b"", 0o644);
        }
    }
    let archive = tar.bytes();
    let baseline = time_to_create_files(&host.path().join("baseline"), 10, 1000) * 10;
    host.fresh_dest();
    let before = host.outside();
    let start = Instant::now();
    let done = unpack::unpack_from(&archive[..], &host.dest(), WAYS[0]).unwrap();
    let took = start.elapsed();
    eprintln!(
        "100,000 entries unpacked in {took:?}; creating as many empty files takes about {baseline:?} here"
    );
    assert_eq!(host.outside(), before);
    assert_eq!(done.written, 100_100, "{}", warnings_of(&done));
    assert!(host.dest().join("d99/f999").is_file());
    let limit = baseline * 4 + Duration::from_secs(10);
    assert!(took < limit, "took {took:?}, want under {limit:?}");
}

/// How long creating `dirs` x `files` empty files takes on this filesystem.
fn time_to_create_files(at: &Path, dirs: usize, files: usize) -> Duration {
    let start = Instant::now();
    for d in 0..dirs {
        let dir = at.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            fs::File::create_new(dir.join(format!("f{f}"))).unwrap();
        }
    }
    let took = start.elapsed();
    workshop_rootfs::remove_tree(at).unwrap();
    took
}

/// A tar with a 10 KiB file and a second entry after it.
fn two_files() -> Vec<u8> {
    let mut tar = Tarball::new();
    tar.file("first", &[b'x'; 10 * 1024], 0o644)
        .file("second", b"2", 0o644);
    tar.bytes()
}

#[test]
fn a_truncated_archive_is_a_clear_error() {
    let host = Host::new("hostile-truncated");
    let whole = two_files();
    // Cut in the middle of the first file's data, then in the second header.
    for (cut, says) in [
        (512 + 5000, "truncated"),
        (512 + 10 * 1024 + 100, "failed to read"),
    ] {
        host.unpack_each_way(&whole[..cut], |options, _, done| {
            let err = format!("{:#}", done.expect_err("a truncated archive must fail"));
            assert!(err.contains(says), "{options:?} cut at {cut}: {err}");
        });
    }
    // A gzipped archive cut short.
    let mut tar = Tarball::new();
    tar.file("first", &[b'x'; 10 * 1024], 0o644);
    let gz = tar.gzipped();
    let image = host.path().join("cut.tar.gz");
    fs::write(&image, &gz[..gz.len() / 2]).unwrap();
    host.fresh_dest();
    let before = host.outside();
    let err = unpack::unpack(&image, &host.dest(), WAYS[0]).unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("failed to unpack") && err.contains("cut.tar.gz"),
        "{err}"
    );
    assert_eq!(host.outside(), before);
}

#[test]
fn a_corrupt_archive_is_a_clear_error() {
    let host = Host::new("hostile-corrupt");
    let mut bad_sum = two_files();
    // The second header's name: its checksum no longer matches.
    bad_sum[512 + 10 * 1024] ^= 0x55;
    host.unpack_each_way(&bad_sum, |options, _, done| {
        let err = format!("{:#}", done.expect_err("a corrupt archive must fail"));
        assert!(err.contains("checksum"), "{options:?}: {err}");
        assert!(err.contains("is this a .tar or .tar.gz file"), "{err}");
    });
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8 + 1).collect();
    host.unpack_each_way(&junk, |options, _, done| {
        let err = format!("{:#}", done.expect_err("junk must fail"));
        assert!(
            err.contains("failed to read a tar entry"),
            "{options:?}: {err}"
        );
    });
}
