//! Unit tests of the rootfs builder that need no chroot: where the default
//! rootfs is, validation, the tar rules, ensure and its marker, ownership.
//! The end-to-end builds that run a shell inside are in tests/rootfs.rs.

use super::*;
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::sync::atomic::AtomicUsize;
use workshop::error::Hinted;
use workshop_testkit::{Tarball, TempDir};

fn touch(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b"").unwrap();
}

// --- where the default rootfs is ---

#[test]
fn the_target_dir_is_found_from_the_binary() {
    let tmp = TempDir::new("target-dir");
    let target = tmp.path().join("ws/target");
    touch(&target.join("CACHEDIR.TAG"));
    let cwd = tmp.path().join("ws/shared");
    for exe in [
        "debug/ch04-rootfs",
        "debug/deps/rootfs-0123456789abcdef",
        "release/xtask",
        "x86_64-unknown-linux-gnu/release/ch04-rootfs",
        "x86_64-unknown-linux-gnu/debug/deps/workshop-0123",
        "my-profile/ch04-rootfs",
        "debug/examples/demo",
    ] {
        let exe = target.join(exe);
        touch(&exe);
        assert_eq!(
            target_dir_of(&exe, None, &cwd),
            Some(target.clone()),
            "{}",
            exe.display()
        );
    }
}

#[test]
fn without_cachedir_tag_the_dir_above_debug_or_release_is_taken() {
    let tmp = TempDir::new("target-dir-old");
    let target = tmp.path().join("t");
    let exe = target.join("debug/deps/test-abc");
    touch(&exe);
    assert_eq!(target_dir_of(&exe, None, tmp.path()), Some(target.clone()));
    let exe = target.join("release/ch04");
    touch(&exe);
    assert_eq!(target_dir_of(&exe, None, tmp.path()), Some(target));
    let lost = tmp.path().join("elsewhere/bin/ch04");
    touch(&lost);
    assert_eq!(target_dir_of(&lost, None, Path::new("/")), None);
}

#[test]
fn cargo_target_dir_is_honoured() {
    let tmp = TempDir::new("target-env");
    let target = tmp.path().join("ws/target");
    touch(&target.join("CACHEDIR.TAG"));
    let exe = target.join("debug/ch04");
    touch(&exe);
    // Absolute: taken as it is.
    assert_eq!(
        target_dir_of(&exe, Some(Path::new("/srv/build")), tmp.path()),
        Some(PathBuf::from("/srv/build"))
    );
    // Relative to where we run, when the binary is inside it...
    assert_eq!(
        target_dir_of(&exe, Some(Path::new("target")), &tmp.path().join("ws")),
        Some(target.clone())
    );
    // ...and ignored when it is not (tests run from the package's dir).
    assert_eq!(
        target_dir_of(
            &exe,
            Some(Path::new("target")),
            &tmp.path().join("ws/shared")
        ),
        Some(target)
    );
}

#[test]
fn the_default_dir_of_this_test_binary_is_beside_its_debug_dir() {
    let expected = match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => {
            // target/debug/deps/workshop-HASH: three levels up from the binary.
            let exe = std::env::current_exe().unwrap();
            exe.ancestors().nth(3).unwrap().to_path_buf()
        }
    };
    assert_eq!(default_dir().unwrap(), expected.join("rootfs"));
}

// --- validate ---

fn hint_of(err: &anyhow::Error) -> String {
    err.chain()
        .find_map(|e| e.downcast_ref::<Hinted>())
        .map(|h| h.hint.clone())
        .unwrap_or_else(|| panic!("no hint in {err:#}"))
}

fn validation_error(dir: &Path) -> (String, String) {
    let err = validate(dir).expect_err("validate should fail");
    (format!("{err:#}"), hint_of(&err))
}

#[test]
fn validate_says_what_is_wrong_and_how_to_fix_it() {
    let tmp = TempDir::new("validate");
    let missing = tmp.path().join("missing");
    let (msg, hint) = validation_error(&missing);
    assert_eq!(msg, format!("rootfs {} does not exist", missing.display()));
    assert!(
        hint.contains("cargo xtask rootfs") && hint.contains("--from alpine-minirootfs.tar.gz"),
        "{hint}"
    );

    let file = tmp.path().join("file");
    touch(&file);
    let (msg, _) = validation_error(&file);
    assert_eq!(
        msg,
        format!("rootfs {} is a file, not a directory", file.display())
    );

    let empty = tmp.path().join("empty");
    fs::create_dir_all(empty.join("bin")).unwrap();
    let (msg, _) = validation_error(&empty);
    assert_eq!(msg, format!("rootfs {} has no /bin/sh", empty.display()));
}

#[test]
fn bin_sh_is_resolved_inside_the_rootfs_not_on_the_host() {
    let tmp = TempDir::new("validate-links");
    // bin/sh -> /bin/busybox, and the rootfs has its own /bin/busybox: valid.
    let good = tmp.path().join("good");
    fs::create_dir_all(good.join("bin")).unwrap();
    fs::write(good.join("bin/busybox"), "#!/bin/busybox sh\n").unwrap();
    set_mode(&good.join("bin/busybox"), 0o755).unwrap();
    symlink("/bin/busybox", good.join("bin/sh")).unwrap();
    validate(&good).unwrap();

    // bin/sh -> /usr/bin/dash, which the host has but the rootfs does not.
    let bad = tmp.path().join("bad");
    fs::create_dir_all(bad.join("bin")).unwrap();
    assert!(Path::new("/usr/bin/dash").exists() || Path::new("/bin/sh").exists());
    let host_only = if Path::new("/usr/bin/dash").exists() {
        "/usr/bin/dash"
    } else {
        "/bin/sh"
    };
    symlink(host_only, bad.join("bin/sh")).unwrap();
    let (msg, _) = validation_error(&bad);
    assert!(
        msg.starts_with(&format!("rootfs {} has no /bin/sh", bad.display())),
        "{msg}"
    );
    assert!(msg.contains(host_only), "{msg}");

    // bin/sh -> ../../../../usr/bin/dash climbs no higher than the rootfs.
    let climb = tmp.path().join("climb");
    fs::create_dir_all(climb.join("bin")).unwrap();
    symlink(
        format!("../../../../../..{host_only}"),
        climb.join("bin/sh"),
    )
    .unwrap();
    validation_error(&climb);

    // A merged-/usr style rootfs: bin -> usr/bin, sh -> dash.
    let merged = tmp.path().join("merged");
    fs::create_dir_all(merged.join("usr/bin")).unwrap();
    symlink("usr/bin", merged.join("bin")).unwrap();
    fs::write(merged.join("usr/bin/dash"), "#!/bin/dash\n").unwrap();
    set_mode(&merged.join("usr/bin/dash"), 0o755).unwrap();
    symlink("dash", merged.join("usr/bin/sh")).unwrap();
    validate(&merged).unwrap();

    // Not executable.
    let noexec = tmp.path().join("noexec");
    touch(&noexec.join("bin/sh"));
    let (msg, _) = validation_error(&noexec);
    assert!(msg.contains("not an executable file"), "{msg}");
}

#[test]
fn a_dynamic_sh_without_its_loader_is_invalid() {
    let tmp = TempDir::new("validate-loader");
    let root = tmp.path();
    fs::create_dir(root.join("bin")).unwrap();
    install(root, Path::new("/bin/ls"), Path::new("/bin/sh")).unwrap();
    let (msg, hint) = validation_error(root);
    assert!(msg.contains("not the dynamic loader it needs"), "{msg}");
    assert!(hint.contains("--host-binaries"), "{hint}");
}

#[test]
fn symlink_loops_inside_are_an_error_not_a_hang() {
    let tmp = TempDir::new("validate-loop");
    fs::create_dir(tmp.path().join("bin")).unwrap();
    symlink("/bin/sh", tmp.path().join("bin/sh")).unwrap();
    let err = validate(tmp.path()).unwrap_err();
    assert!(
        format!("{err:#}").contains("too many levels of symlinks"),
        "{err:#}"
    );
}

#[test]
fn resolve_inside_treats_the_rootfs_as_slash() {
    let tmp = TempDir::new("resolve");
    let root = tmp.path();
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    touch(&root.join("usr/lib/libx.so"));
    symlink("/usr/lib", root.join("lib")).unwrap();
    symlink("../../../../usr", root.join("u")).unwrap();
    assert_eq!(
        resolve_inside(root, Path::new("/lib/libx.so")).unwrap(),
        Some(root.join("usr/lib/libx.so"))
    );
    assert_eq!(
        resolve_inside(root, Path::new("/u/lib/../lib/./libx.so")).unwrap(),
        Some(root.join("usr/lib/libx.so"))
    );
    assert_eq!(
        resolve_inside(root, Path::new("/../../etc/passwd")).unwrap(),
        None
    );
    assert_eq!(
        resolve_inside(root, Path::new("/usr/lib/libx.so/x")).unwrap(),
        None
    );
}

// --- host binaries ---

#[test]
fn a_missing_required_program_is_named_with_its_package() {
    let err =
        pick_programs(|name| (name != "ping" && name != "ip").then(|| PathBuf::from("/bin/x")))
            .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("`ip`") && msg.contains("`ping`"), "{msg}");
    let hint = hint_of(&err);
    assert!(
        hint.contains("apt-get install iproute2 iputils-ping"),
        "{hint}"
    );
}

#[test]
fn a_missing_optional_program_is_left_out() {
    let programs = pick_programs(|name| (name != "sort").then(|| PathBuf::from("/bin/x"))).unwrap();
    assert!(programs.iter().all(|(n, _)| *n != "sort"));
    assert!(programs.iter().any(|(n, _)| *n == "sh"));
}

#[test]
fn the_host_list_covers_what_the_chapters_use() {
    for name in [
        "sh", "ls", "ps", "cat", "echo", "grep", "head", "tail", "date", "sleep", "true", "false",
        "hostname", "mount", "umount", "id", "ip", "ping", "env", "uname", "readlink", "stat",
        "wc", "mkdir", "rm", "touch", "ln", "sed", "sort",
    ] {
        assert!(HOST_BINARIES.iter().any(|(n, _, _)| *n == name), "{name}");
    }
}

// --- tar import ---

/// A temp parent with the rootfs target inside it, so that anything an
/// archive writes outside the target shows up in the parent.
struct Sandbox {
    tmp: TempDir,
}

impl Sandbox {
    fn new(what: &str) -> Sandbox {
        Sandbox {
            tmp: TempDir::new(what),
        }
    }
    fn parent(&self) -> &Path {
        self.tmp.path()
    }
    fn target(&self) -> PathBuf {
        self.tmp.path().join("a/b/rootfs")
    }
    /// Every path under the parent that is not under the target.
    fn outside(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(self.parent(), &mut |p, _| {
            if p != self.parent() && !p.starts_with(self.target()) {
                found.push(p.to_path_buf());
            }
            Ok(())
        })
        .unwrap();
        found.sort();
        found
    }
}

fn options(owners: bool) -> unpack::Options {
    unpack::Options {
        owners,
        setuid: SetuidBits::Drop,
    }
}

fn this_process() -> unpack::Options {
    unpack::Options::for_this_process(SetuidBits::Drop)
}

fn normal_image() -> Tarball {
    let mut tar = Tarball::new();
    tar.dir("./", 0o755)
        .dir("./bin/", 0o755)
        .file("./bin/sh", b"#!/bin/sh\n", 0o755)
        .symlink("./bin/ls", "/bin/busybox")
        .symlink("./bin/rel", "sh")
        .dir("etc/", 0o755)
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/ash\n", 0o644)
        .file("/etc/absolute", b"absolute paths land inside\n", 0o600)
        .dir("ro/", 0o555)
        .file("ro/inside", b"in a read-only dir\n", 0o444)
        .hard_link("etc/passwd.link", "etc/passwd")
        .char_device("dev/null")
        .fifo("dev/fifo")
        .file("setuid", b"x", 0o4755);
    tar
}

fn check_normal_image(root: &Path, keep_owner: bool) {
    assert_eq!(fs::read(root.join("bin/sh")).unwrap(), b"#!/bin/sh\n");
    assert_eq!(
        fs::metadata(root.join("bin/sh")).unwrap().mode() & 0o777,
        0o755
    );
    assert_eq!(
        fs::read_link(root.join("bin/ls")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        fs::read_link(root.join("bin/rel")).unwrap(),
        Path::new("sh")
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/ash\n"
    );
    assert_eq!(
        fs::metadata(root.join("etc/absolute")).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::read(root.join("ro/inside")).unwrap(),
        b"in a read-only dir\n"
    );
    let ro = fs::metadata(root.join("ro")).unwrap().mode() & 0o777;
    assert_eq!(ro, if keep_owner { 0o555 } else { 0o755 }, "{ro:o}");
    assert_eq!(
        fs::metadata(root.join("etc/passwd")).unwrap().ino(),
        fs::metadata(root.join("etc/passwd.link")).unwrap().ino()
    );
    assert!(
        fs::symlink_metadata(root.join("dev/null")).is_err(),
        "no mknod from a tar"
    );
    assert!(
        fs::symlink_metadata(root.join("dev/fifo")).is_err(),
        "no fifo from a tar"
    );
    let setuid = fs::metadata(root.join("setuid")).unwrap().mode() & 0o7777;
    assert_eq!(setuid, 0o755, "setuid bits are dropped: {setuid:o}");
}

#[test]
fn a_normal_image_lands_with_its_modes_and_links() {
    for keep_owner in [false, true] {
        if keep_owner && !workshop_testkit::is_root() {
            continue; // lchown to the archive's owners needs root
        }
        let sandbox = Sandbox::new("tar-normal");
        let done = unpack::unpack_from(
            &normal_image().bytes()[..],
            &sandbox.target(),
            options(keep_owner),
        )
        .unwrap();
        check_normal_image(&sandbox.target(), keep_owner);
        assert_eq!(done.devices, 2);
        assert_eq!((done.setuid_dropped, done.setuid_kept), (1, 0));
        assert!(done.warnings.is_empty(), "{:?}", done.warnings);
        assert_eq!(
            sandbox.outside(),
            [sandbox.parent().join("a"), sandbox.parent().join("a/b")]
        );
    }
}

#[test]
fn a_gzipped_image_is_told_by_its_bytes_not_its_name() {
    let sandbox = Sandbox::new("tar-gz");
    // Named .tar, but gzipped: the magic bytes decide.
    let image = sandbox.parent().join("image.tar");
    normal_image().write_to(&image, true);
    let done = unpack::unpack(&image, &sandbox.target(), this_process()).unwrap();
    assert_eq!(done.compression, "gzip");
    check_normal_image(&sandbox.target(), workshop_testkit::is_root());
    // And a plain tar named .tar.gz.
    let sandbox = Sandbox::new("tar-plain");
    let image = sandbox.parent().join("image.tar.gz");
    normal_image().write_to(&image, false);
    assert_eq!(
        unpack::unpack(&image, &sandbox.target(), this_process())
            .unwrap()
            .compression,
        "uncompressed"
    );
}

#[test]
fn dotdot_paths_do_not_land_outside() {
    let sandbox = Sandbox::new("tar-dotdot");
    let mut tar = Tarball::new();
    tar.file("../escape", b"x", 0o644)
        .file("/abs/../../escape2", b"x", 0o644)
        .file("a/../../escape3", b"x", 0o644)
        .file("../../../../../../../../tmp/escape4", b"x", 0o644)
        .dir("../escapedir/", 0o755)
        .file("ok", b"fine", 0o644);
    let done = unpack::unpack_from(&tar.bytes()[..], &sandbox.target(), options(false)).unwrap();
    assert_eq!(done.warnings.len(), 5, "{:?}", done.warnings);
    assert!(
        done.warnings.iter().all(|w| w.contains("`..`")),
        "{:?}",
        done.warnings
    );
    assert_eq!(fs::read(sandbox.target().join("ok")).unwrap(), b"fine");
    for escaped in [
        "a/b/escape",
        "a/b/escape2",
        "a/b/escape3",
        "a/b/escapedir",
        "escape",
    ] {
        assert!(!sandbox.parent().join(escaped).exists(), "{escaped}");
    }
    assert!(!Path::new("/tmp/escape4").exists());
    assert_eq!(
        sandbox.outside(),
        [sandbox.parent().join("a"), sandbox.parent().join("a/b")]
    );
    assert_eq!(
        fs::read_dir(sandbox.target()).unwrap().count(),
        1,
        "only `ok`"
    );
}

#[test]
fn nothing_is_written_through_a_symlink_in_the_archive() {
    for target in ["/", "../../..", "..", "/tmp", "."] {
        let sandbox = Sandbox::new("tar-symlink");
        let host_victim = sandbox.parent().join("victim");
        fs::write(&host_victim, "untouched").unwrap();
        let mut tar = Tarball::new();
        tar.symlink("evil", target)
            .file("evil/pwned", b"x", 0o644)
            .dir("evil/newdir/", 0o755)
            .file("evil/deeper/pwned", b"x", 0o644)
            .symlink("evil/link", "/etc/passwd")
            .hard_link("evil/hard", "evil/pwned")
            // An entry replacing a symlink with a file replaces the link only.
            .symlink("victim-link", host_victim.to_str().unwrap())
            .file("victim-link", b"overwritten?", 0o644)
            // A hard link to something outside, by an absolute or climbing path.
            .hard_link("hard-abs", host_victim.to_str().unwrap())
            .hard_link("hard-evil", "evil/victim");
        let done =
            unpack::unpack_from(&tar.bytes()[..], &sandbox.target(), options(false)).unwrap();
        assert_eq!(
            fs::read_to_string(&host_victim).unwrap(),
            "untouched",
            "{target}"
        );
        assert_eq!(
            fs::read_link(sandbox.target().join("evil")).unwrap(),
            Path::new(target)
        );
        assert_eq!(
            fs::read(sandbox.target().join("victim-link")).unwrap(),
            b"overwritten?"
        );
        assert!(
            fs::symlink_metadata(sandbox.target().join("hard-abs")).is_err(),
            "{target}"
        );
        assert!(
            fs::symlink_metadata(sandbox.target().join("hard-evil")).is_err(),
            "{target}"
        );
        for host in ["/pwned", "/newdir", "/deeper", "/tmp/pwned", "/tmp/newdir"] {
            assert!(!Path::new(host).exists(), "{target}: {host}");
        }
        assert_eq!(
            sandbox.outside(),
            [
                sandbox.parent().join("a"),
                sandbox.parent().join("a/b"),
                host_victim.clone()
            ],
            "{target}: {:?}",
            done.warnings
        );
        assert!(
            done.warnings
                .iter()
                .filter(|w| w.contains("is a symlink"))
                .count()
                >= 4,
            "{target}: {:?}",
            done.warnings
        );
    }
}

#[test]
fn a_file_that_is_not_a_tar_says_so() {
    let sandbox = Sandbox::new("tar-junk");
    let image = sandbox.parent().join("junk.tar");
    fs::write(&image, vec![b'x'; 2000]).unwrap();
    let err = unpack::unpack(&image, &sandbox.target(), this_process()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("failed to unpack") && msg.contains(".tar or .tar.gz"),
        "{msg}"
    );
}

#[test]
fn a_tar_source_gets_the_skeleton_without_losing_its_own_files() {
    let tmp = TempDir::new("tar-build");
    let image = tmp.path().join("image.tar");
    normal_image().write_to(&image, false);
    let dir = tmp.path().join("rootfs");
    build(&dir, &Source::Tar(image, SetuidBits::Drop)).unwrap();
    validate(&dir).unwrap();
    assert!(is_built(&dir));
    // The image's passwd wins; the skeleton fills in what it lacks.
    assert!(fs::read_to_string(dir.join("etc/passwd"))
        .unwrap()
        .contains("/bin/ash"));
    assert_eq!(
        fs::read_to_string(dir.join("etc/group")).unwrap(),
        "root:x:0:\n"
    );
    assert_eq!(
        fs::metadata(dir.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    for d in ["proc", "sys", "dev", "root"] {
        assert!(dir.join(d).is_dir(), "{d}");
    }
}

#[test]
fn an_image_without_sh_is_refused_and_leaves_nothing() {
    let tmp = TempDir::new("tar-nosh");
    let image = tmp.path().join("image.tar");
    Tarball::new()
        .file("etc/os-release", b"x\n", 0o644)
        .write_to(&image, false);
    let dir = tmp.path().join("rootfs");
    let err = build(&dir, &Source::Tar(image, SetuidBits::Drop)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!("rootfs {} has no /bin/sh", dir.display())),
        "{msg}"
    );
    assert!(!dir.exists());
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("building"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

// --- setuid bits of an image ---

fn setuid_image(dir: &Path) -> PathBuf {
    let image = dir.join("setuid.tar");
    Tarball::new()
        .file("bin/sh", b"#!/bin/sh\n", 0o755)
        .file("bin/su", b"\x7fELF", 0o4755)
        .file("usr/bin/wall", b"\x7fELF", 0o2755)
        .write_to(&image, false);
    image
}

#[test]
fn an_import_drops_setuid_bits_and_says_how_many() {
    let tmp = TempDir::new("setuid-drop");
    let dir = tmp.path().join("rootfs");
    let mut said = Vec::new();
    let source = Source::Tar(setuid_image(tmp.path()), SetuidBits::Drop);
    build_with(&dir, &source, &mut |line| said.push(line.to_string())).unwrap();
    assert_eq!(
        fs::metadata(dir.join("bin/su")).unwrap().mode() & 0o7777,
        0o755
    );
    assert_eq!(
        fs::metadata(dir.join("usr/bin/wall")).unwrap().mode() & 0o7777,
        0o755
    );
    assert!(
        said.iter().any(|l| l.starts_with(
            "dropped the setuid/setgid bits of 2 files (`cargo xtask rootfs --from FILE --keep-setuid` keeps them)"
        )),
        "{said:#?}"
    );
}

#[test]
fn keeping_setuid_needs_a_directory_above_closed_to_others() {
    workshop_testkit::require_root();
    let tmp = TempDir::new("setuid-keep");
    let dir = tmp.path().join("rootfs");
    let source = Source::Tar(setuid_image(tmp.path()), SetuidBits::Keep);
    let under_sudo = sudo_owner().is_some();
    // TempDir is 0755 under /tmp (1777) under / (0755): everyone gets through.
    let err = build(&dir, &source).unwrap_err();
    let (msg, hint) = (format!("{err:#}"), hint_of(&err));
    if under_sudo {
        assert!(msg.contains("does not work under sudo"), "{msg}");
        return; // the hand-back chown would clear the bits: refused, as checked
    }
    assert!(msg.contains("where any user can run them"), "{msg}");
    assert!(
        hint.contains(&format!("chmod 700 {}", tmp.path().display())),
        "{hint}"
    );
    assert!(!dir.exists(), "nothing is unpacked when it is refused");
    // Closed to group and others: the bits are kept, and it says so.
    set_mode(tmp.path(), 0o700).unwrap();
    let mut said = Vec::new();
    build_with(&dir, &source, &mut |line| said.push(line.to_string())).unwrap();
    assert_eq!(
        fs::metadata(dir.join("bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        fs::metadata(dir.join("usr/bin/wall")).unwrap().mode() & 0o7777,
        0o2755
    );
    // The rootfs itself stays 0755: it is `/` inside, where other users need it.
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o755);
    assert!(
        said.iter()
            .any(|l| l == "kept the setuid/setgid bits of 2 files"),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|l| l.starts_with(&format!(
            "keeping setuid/setgid bits: {} (mode 700)",
            tmp.path().display()
        ))),
        "{said:#?}"
    );
}

// --- ensure and the marker ---

fn tiny_image(dir: &Path) -> Source {
    let image = dir.join("tiny.tar");
    Tarball::new()
        .file("bin/sh", b"#!/bin/sh\n", 0o755)
        .write_to(&image, false);
    Source::Tar(image, SetuidBits::Drop)
}

#[test]
fn ensure_builds_once_then_reuses_without_a_word() {
    let tmp = TempDir::new("ensure-reuse");
    let source = tiny_image(tmp.path());
    let dir = tmp.path().join("rootfs");
    let mut said = Vec::new();
    ensure(&dir, &source, |line| said.push(line.to_string())).unwrap();
    assert_eq!(said.len(), 1);
    assert!(
        said[0].starts_with(&format!("building a root filesystem in {}", dir.display())),
        "{}",
        said[0]
    );
    assert!(
        said[0].contains("`cargo xtask rootfs --rebuild` redoes it"),
        "{}",
        said[0]
    );
    assert!(is_built(&dir));
    let marker = fs::metadata(dir.join(MARKER)).unwrap().modified().unwrap();
    ensure(&dir, &source, |line| panic!("announced a reuse: {line}")).unwrap();
    assert_eq!(
        fs::metadata(dir.join(MARKER)).unwrap().modified().unwrap(),
        marker
    );
}

#[test]
fn ensure_rebuilds_a_half_built_dir_and_reclaims_leftovers() {
    let tmp = TempDir::new("ensure-half");
    let source = tiny_image(tmp.path());
    let dir = tmp.path().join("rootfs");
    // A killed run of an older builder: files, no marker.
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::write(dir.join("bin/half"), "x").unwrap();
    // A killed run of this one: its temp dir, named after a dead process.
    let stale = beside(&dir, "building.2147483646.0");
    fs::create_dir_all(stale.join("ro")).unwrap();
    set_mode(&stale.join("ro"), 0o555).unwrap();
    let mut announced = 0;
    ensure(&dir, &source, |_| announced += 1).unwrap();
    assert_eq!(announced, 1);
    assert!(is_built(&dir));
    assert!(
        !dir.join("bin/half").exists(),
        "the half-built tree was replaced"
    );
    assert!(!stale.exists(), "the dead build's temp dir was removed");
}

#[test]
fn build_replaces_a_complete_rootfs() {
    let tmp = TempDir::new("rebuild");
    let source = tiny_image(tmp.path());
    let dir = tmp.path().join("rootfs");
    build(&dir, &source).unwrap();
    fs::write(dir.join("old"), "x").unwrap();
    build(&dir, &source).unwrap();
    assert!(is_built(&dir) && !dir.join("old").exists());
    let names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, [".rootfs.lock", "rootfs", "tiny.tar"]);
}

#[test]
fn concurrent_ensures_end_with_one_good_rootfs() {
    let tmp = TempDir::new("ensure-race");
    let source = tiny_image(tmp.path());
    let dir = tmp.path().join("rootfs");
    let announced = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                ensure(&dir, &source, |_| {
                    announced.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
                validate(&dir).unwrap();
            });
        }
    });
    assert_eq!(
        announced.load(Ordering::SeqCst),
        1,
        "one builds, the others wait and reuse"
    );
    assert!(is_built(&dir));
    let extra: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("building") || n.contains(".old."))
        .collect();
    assert!(extra.is_empty(), "{extra:?}");
}

#[test]
fn the_loser_of_a_race_keeps_the_winners_rootfs() {
    // As if the lock did not hold (a filesystem without flock): the second
    // finisher finds a complete rootfs in place and discards its own copy.
    let tmp = TempDir::new("ensure-loser");
    let source = tiny_image(tmp.path());
    let dir = tmp.path().join("rootfs");
    build(&dir, &source).unwrap();
    fs::write(dir.join("winner"), "x").unwrap();
    let ours = beside(&dir, "building.1.0");
    populate(&ours, &dir, &source, &mut |_| {}).unwrap();
    put_in_place(&ours, &dir, Replace::IfNotBuilt, &mut |_| {}).unwrap();
    assert!(dir.join("winner").exists() && !ours.exists());
    // While a forced build replaces it.
    populate(&ours, &dir, &source, &mut |_| {}).unwrap();
    put_in_place(&ours, &dir, Replace::Always, &mut |_| {}).unwrap();
    assert!(!dir.join("winner").exists() && !ours.exists() && is_built(&dir));
}

#[test]
fn something_in_the_way_is_not_replaced() {
    let tmp = TempDir::new("in-the-way");
    let dir = tmp.path().join("rootfs");
    fs::write(&dir, "a file").unwrap();
    let err = build(&dir, &tiny_image(tmp.path())).unwrap_err();
    assert!(format!("{err:#}").contains("is in the way"), "{err:#}");
    assert_eq!(fs::read_to_string(&dir).unwrap(), "a file");
}

// --- ownership ---

#[test]
fn the_sudo_user_is_read_from_the_environment() {
    let s = |v: &str| Some(v.to_string());
    assert_eq!(owner_from(s("1000"), s("1000")), Some((1000, 1000)));
    assert_eq!(owner_from(s("1000"), None), None);
    assert_eq!(
        owner_from(s("0"), s("0")),
        None,
        "sudo from root: nothing to hand back"
    );
    assert_eq!(owner_from(s("x"), s("1")), None);
}

#[test]
fn hand_back_chowns_links_not_their_targets() {
    workshop_testkit::require_root();
    let tmp = TempDir::new("hand-back");
    let root = tmp.path().join("rootfs");
    fs::create_dir_all(root.join("ro/sub")).unwrap();
    fs::write(root.join("ro/sub/file"), "x").unwrap();
    let host_file = tmp.path().join("host-file");
    fs::write(&host_file, "host").unwrap();
    symlink(&host_file, root.join("link-out")).unwrap();
    set_mode(&root.join("ro"), 0o555).unwrap();
    hand_back(&root, 65534, 65533).unwrap();
    walk(&root, &mut |p, m| {
        assert_eq!((m.uid(), m.gid()), (65534, 65533), "{}", p.display());
        Ok(())
    })
    .unwrap();
    let host = fs::metadata(&host_file).unwrap();
    assert_eq!(
        (host.uid(), host.gid()),
        (0, 0),
        "the link's target is not ours to chown"
    );
    assert_eq!(fs::metadata(root.join("ro")).unwrap().mode() & 0o777, 0o755);
}

#[test]
fn stats_count_files_links_dirs_and_bytes() {
    let tmp = TempDir::new("stats");
    let root = tmp.path();
    fs::write(root.join("a"), [0u8; 1000]).unwrap();
    fs::hard_link(root.join("a"), root.join("a2")).unwrap();
    fs::create_dir(root.join("d")).unwrap();
    symlink("a", root.join("l")).unwrap();
    let stats = stats(root).unwrap();
    assert_eq!(
        stats,
        Stats {
            files: 2,
            dirs: 2,
            symlinks: 1,
            bytes: 1000
        }
    );
    assert_eq!(
        stats.to_string(),
        "0.0 MiB in 2 files, 1 symlinks, 2 directories"
    );
}

/// Records each whiteout as the path of its directory (read back from the
/// fd through /proc) and the name.
#[derive(Default)]
struct Marks(Vec<String>);

impl unpack::Whiteouts for Marks {
    fn whiteout(&mut self, dir: std::os::fd::BorrowedFd<'_>, name: &std::ffi::OsStr) -> Result<()> {
        let dir = fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
        self.0
            .push(format!("{} -{}", dir.display(), name.to_string_lossy()));
        Ok(())
    }
    fn opaque(&mut self, dir: std::os::fd::BorrowedFd<'_>) -> Result<()> {
        let dir = fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
        self.0.push(format!("{} opaque", dir.display()));
        Ok(())
    }
}

#[test]
fn whiteouts_reach_the_hook_on_their_directory_and_bad_ones_are_refused() {
    let sandbox = Sandbox::new("tar-whiteouts");
    let mut tar = Tarball::new();
    tar.dir("etc/", 0o755)
        .file("etc/.wh.motd", b"", 0o644)
        .file("./var/cache/.wh..wh..opq", b"", 0o644)
        .file(".wh.gone", b"", 0o644)
        // Refused: no name, a climbing name, a reserved one, not a file,
        // through a symlink, and a path with `..`.
        .file(".wh.", b"", 0o644)
        .file(".wh...", b"", 0o644)
        .file(".wh..wh.x", b"", 0o644)
        .symlink(".wh.link", "/etc")
        .dir("etc/.wh..wh..opq/", 0o755)
        .symlink("evil", "/")
        .file("evil/.wh.passwd", b"", 0o644)
        .file("evil/.wh..wh..opq", b"", 0o644)
        .file("../.wh.x", b"", 0o644);
    let mut marks = Marks::default();
    let target = sandbox.target();
    let done =
        unpack::unpack_layer_from(&tar.bytes()[..], &target, options(false), &mut marks).unwrap();
    let t = target.display();
    assert_eq!(
        marks.0,
        [
            format!("{t}/etc -motd"),
            format!("{t}/var/cache opaque"),
            format!("{t} -gone"),
        ]
    );
    assert_eq!((done.whiteouts, done.opaque), (1 + 1, 1));
    assert_eq!(done.warnings.len(), 8, "{:#?}", done.warnings);
    for (warning, why) in done.warnings.iter().zip([
        "names no file",
        "names no file",
        "reserved",
        "regular file",
        "regular file",
        "is a symlink",
        "is a symlink",
        "`..`",
    ]) {
        assert!(warning.contains(why), "{warning:?} should say {why:?}");
    }
    // No whiteout entry lands as a file; the rest of the layer does.
    let mut names = Vec::new();
    walk(&target, &mut |p, _| {
        names.push(p.strip_prefix(&target).unwrap().display().to_string());
        Ok(())
    })
    .unwrap();
    names.sort();
    assert_eq!(names, ["", "etc", "evil", "var", "var/cache"]);
}

#[test]
fn without_the_hook_whiteout_names_are_plain_files() {
    let sandbox = Sandbox::new("tar-no-whiteouts");
    let mut tar = Tarball::new();
    tar.file(".wh.gone", b"x", 0o644);
    let done = unpack::unpack_from(&tar.bytes()[..], &sandbox.target(), options(false)).unwrap();
    assert_eq!(done.whiteouts, 0);
    assert!(sandbox.target().join(".wh.gone").is_file());
}
