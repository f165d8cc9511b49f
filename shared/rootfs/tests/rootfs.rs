//! The root filesystems, built for real and entered with chroot(8) in a child
//! process (chroot creates no mount, so nothing is left behind), and built
//! again as an unprivileged user, as `cargo xtask rootfs` runs.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use workshop_rootfs::{self as rootfs, elf, SetuidBits, Source};
use workshop_testkit::{require_root, run, stderr_of, stdout_of, HostSnapshot, Tarball, TempDir};

/// `chroot DIR /bin/sh -c SCRIPT`, with a PATH that exists inside.
fn chroot_sh(dir: &Path, script: &str) -> Output {
    require_root();
    let host = HostSnapshot::take();
    let out = run(
        Command::new("chroot")
            .arg(dir)
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .env("PATH", "/bin:/usr/bin:/sbin:/usr/sbin"),
        Duration::from_secs(20),
    );
    host.assert_unchanged("chroot into a rootfs");
    out
}

/// Every library `binary` (inside `root`) loads, found inside `root` the way
/// its loader will look there: its RUNPATH, then the default directories.
/// Panics naming the first one missing.
fn check_libraries_inside(root: &Path, binary: &str) {
    let mut todo = vec![PathBuf::from(binary)];
    let mut seen = HashSet::new();
    while let Some(inside) = todo.pop() {
        let host = rootfs::resolve_inside(root, &inside)
            .unwrap()
            .unwrap_or_else(|| panic!("{} is not in the rootfs", inside.display()));
        let Some(object) = elf::read(&host).unwrap() else {
            continue;
        };
        if let Some(interp) = &object.interpreter {
            assert!(
                rootfs::resolve_inside(root, interp).unwrap().is_some(),
                "{binary}: its loader {} is not in the rootfs",
                interp.display()
            );
        }
        for soname in &object.needed {
            let dirs = object
                .runpath
                .iter()
                .map(PathBuf::from)
                .chain(elf::default_dirs(object.kind));
            let found = dirs
                .map(|d| d.join(soname))
                .find(|p| {
                    rootfs::resolve_inside(root, p)
                        .unwrap()
                        .is_some_and(|h| elf::kind_of(&h) == Some(object.kind))
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{binary}: {} needs {soname}, which is not in the rootfs",
                        inside.display()
                    )
                });
            if seen.insert(found.clone()) {
                todo.push(found);
            }
        }
    }
}

#[test]
fn host_binaries_run_inside_with_their_libraries() {
    require_root();
    let tmp = TempDir::new("rootfs-host");
    let dir = tmp.path().join("rootfs");
    rootfs::build(&dir, &Source::HostBinaries).unwrap();
    rootfs::validate(&dir).unwrap();
    for binary in [
        "/bin/ls",
        "/bin/ps",
        "/bin/ip",
        "/bin/sh",
        "/bin/ping",
        "/bin/mount",
    ] {
        check_libraries_inside(&dir, binary);
    }
    // Merged /usr on the host is not copied as symlinks: real directories.
    for d in ["lib", "lib64"] {
        if let Ok(meta) = std::fs::symlink_metadata(dir.join(d)) {
            assert!(meta.is_dir(), "{d} is a real directory inside");
        }
    }
    let out = chroot_sh(&dir, "echo ok; ls /bin | wc -l");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = stdout_of(&out);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("ok"), "{stdout}");
    let count: usize = lines.next().unwrap().trim().parse().unwrap();
    assert!(count >= 29, "{count} programs in /bin");
    let out = chroot_sh(
        &dir,
        "cat /etc/passwd; id -u; hostname >/dev/null && echo hostname-ok",
    );
    assert_eq!(
        stdout_of(&out),
        "root:x:0:0:root:/root:/bin/sh\n0\nhostname-ok\n",
        "{}",
        stderr_of(&out)
    );
    let tmp_mode = std::fs::metadata(dir.join("tmp")).unwrap().mode() & 0o7777;
    assert_eq!(tmp_mode, 0o1777);
}

#[test]
fn busybox_applets_are_links_to_it() {
    require_root();
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "/bin/busybox is missing: install busybox-static (`apt-get install busybox-static`)"
    );
    let tmp = TempDir::new("rootfs-busybox");
    let dir = tmp.path().join("rootfs");
    rootfs::build(&dir, &Source::Busybox(busybox.into())).unwrap();
    assert!(dir.join("bin/busybox").is_file());
    assert!(!std::fs::symlink_metadata(dir.join("bin/busybox"))
        .unwrap()
        .is_symlink());
    for applet in ["sh", "ls", "ps", "ip", "ping", "hostname", "mount"] {
        assert_eq!(
            std::fs::read_link(dir.join("bin").join(applet)).unwrap(),
            Path::new("busybox"),
            "{applet}"
        );
    }
    check_libraries_inside(&dir, "/bin/busybox");
    let out = chroot_sh(&dir, "echo ok");
    assert_eq!(stdout_of(&out), "ok\n", "{}", stderr_of(&out));
}

/// A program of our own with RUNPATH `$ORIGIN/../lib`, built with cc: its
/// library is found next to it on the host, and must be found next to it
/// inside too, where the program has moved to /bin.
#[test]
fn origin_relative_libraries_follow_the_program() {
    require_root();
    let tmp = TempDir::new("rootfs-origin");
    let app = tmp.path().join("app");
    std::fs::create_dir_all(app.join("bin")).unwrap();
    std::fs::create_dir_all(app.join("lib")).unwrap();
    std::fs::write(
        tmp.path().join("greet.c"),
        "const char *greeting(void) { return \"hello from $ORIGIN\"; }\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("main.c"),
        "#include <stdio.h>\nconst char *greeting(void);\nint main(void) { puts(greeting()); return 0; }\n",
    )
    .unwrap();
    let cc = |args: &[&str]| {
        let out = Command::new("cc")
            .current_dir(tmp.path())
            .args(args)
            .output()
            .expect("cc is needed to build the test program: install gcc (`apt-get install gcc`)");
        assert!(out.status.success(), "cc {args:?}: {}", stderr_of(&out));
    };
    cc(&["-shared", "-fPIC", "-o", "app/lib/libgreet.so", "greet.c"]);
    cc(&[
        "-o",
        "app/bin/greet",
        "main.c",
        "-Lapp/lib",
        "-lgreet",
        "-Wl,-rpath,$ORIGIN/../lib",
        "-Wl,--enable-new-dtags",
    ]);

    let dir = tmp.path().join("rootfs");
    rootfs::build(&dir, &Source::HostBinaries).unwrap();
    let added =
        rootfs::install_program(&dir, &app.join("bin/greet"), Path::new("/bin/greet")).unwrap();
    assert!(added >= 3, "loader, libc, libgreet: {added}");
    assert!(
        dir.join("lib/libgreet.so").is_file(),
        "$ORIGIN/../lib from /bin is /lib"
    );
    check_libraries_inside(&dir, "/bin/greet");
    let out = chroot_sh(&dir, "greet");
    assert_eq!(
        stdout_of(&out),
        "hello from $ORIGIN\n",
        "{}",
        stderr_of(&out)
    );

    // The same library found through ld.so.conf (a stand-in list here, so
    // that the host's own /etc is never touched): it keeps its host path,
    // and a link from the first default directory lets the loader inside,
    // which has no ld.so.cache, find it.
    cc(&["-o", "app/bin/plain", "main.c", "-Lapp/lib", "-lgreet"]);
    let search = elf::Search {
        ld_so_conf: vec![app.join("lib")],
    };
    let libs = search
        .libraries_of(&app.join("bin/plain"), Path::new("/bin/plain"))
        .unwrap();
    let kind = elf::kind_of(&app.join("bin/plain")).unwrap();
    assert!(
        libs.contains(&elf::Placement::Link {
            at: elf::default_dirs(kind)[0].join("libgreet.so"),
            target: app.join("lib/libgreet.so"),
        }),
        "{libs:?}"
    );
    // A rootfs of its own, without the /lib/libgreet.so placed above.
    let dir = tmp.path().join("rootfs2");
    rootfs::build(&dir, &Source::HostBinaries).unwrap();
    rootfs::install(&dir, &app.join("bin/plain"), Path::new("/bin/plain")).unwrap();
    rootfs::place_all(&dir, &libs).unwrap();
    let host_path = app.join("lib/libgreet.so");
    assert!(dir.join(host_path.strip_prefix("/").unwrap()).is_file());
    assert!(!dir.join("lib/libgreet.so").exists());
    check_libraries_inside(&dir, "/bin/plain");
    let out = chroot_sh(&dir, "plain");
    assert_eq!(
        stdout_of(&out),
        "hello from $ORIGIN\n",
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn the_default_rootfs_is_built_once_then_reused() {
    require_root();
    let dir = rootfs::ensure_default(|line| eprintln!("{line}")).unwrap();
    assert_eq!(dir, rootfs::default_dir().unwrap());
    rootfs::validate(&dir).unwrap();
    let again = rootfs::ensure_default(|line| panic!("announced a reuse: {line}")).unwrap();
    assert_eq!(again, dir);
}

/// What `cargo xtask rootfs` does for a student who is not root: builds from
/// the host's binaries and from an image work, and everything is theirs.
#[test]
fn unprivileged_builds_work() {
    require_root();
    let tmp = TempDir::new("rootfs-nobody");
    std::os::unix::fs::chown(tmp.path(), Some(65534), Some(65534)).unwrap();
    let image = tmp.path().join("image.tar.gz");
    Tarball::new()
        .dir("ro/", 0o555)
        .file("ro/file", b"x", 0o644)
        .file("bin/sh", b"#!/bin/sh\n", 0o4755)
        .char_device("dev/console")
        .write_to(&image, true);
    // A copy of this test binary where nobody can reach it (the checkout may
    // be under a home directory nobody cannot enter).
    let exe = tmp.path().join("rootfs-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let out = run(
        Command::new(&exe)
            .args(["--ignored", "--exact", "build_as_the_caller", "--nocapture"])
            .current_dir(tmp.path())
            .env("WORKSHOP_TEST_DIR", tmp.path())
            .env_remove("SUDO_UID")
            .env_remove("SUDO_GID")
            .uid(65534)
            .gid(65534),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    for name in ["host", "image"] {
        let dir = tmp.path().join(name);
        assert!(rootfs::is_built(&dir), "{name}");
        rootfs::walk(&dir, &mut |p, m| {
            assert_eq!(m.uid(), 65534, "{}", p.display());
            assert_eq!(m.mode() & 0o6000, 0, "no setuid/setgid: {}", p.display());
            Ok(())
        })
        .unwrap();
    }
    assert!(!tmp.path().join("image/dev/console").exists());
}

/// Run by `unprivileged_builds_work` as user nobody; does nothing otherwise.
#[test]
#[ignore = "helper: unprivileged_builds_work runs it as nobody"]
fn build_as_the_caller() {
    let Some(dir) = std::env::var_os("WORKSHOP_TEST_DIR") else {
        eprintln!("nothing to do: unprivileged_builds_work runs this as nobody");
        return;
    };
    let dir = PathBuf::from(dir);
    assert!(!workshop_testkit::is_root(), "meant to run as a user");
    rootfs::build(&dir.join("host"), &Source::HostBinaries).unwrap();
    rootfs::validate(&dir.join("host")).unwrap();
    rootfs::build(
        &dir.join("image"),
        &Source::Tar(dir.join("image.tar.gz"), SetuidBits::Drop),
    )
    .unwrap();
    rootfs::validate(&dir.join("image")).unwrap();
}
