//! A rootfs built under sudo is handed back to the user who ran sudo, so that
//! their `cargo clean` (as themselves) still works. Its own test binary: it
//! sets SUDO_UID/SUDO_GID for the whole process.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use workshop_rootfs::{self as rootfs, SetuidBits, Source};
use workshop_testkit::{require_root, Tarball, TempDir};

#[test]
fn a_sudo_build_belongs_to_the_sudo_user() {
    require_root();
    let tmp = TempDir::new("rootfs-sudo");
    // The student's target dir is theirs.
    std::os::unix::fs::chown(tmp.path(), Some(65534), Some(65534)).unwrap();
    let image = tmp.path().join("image.tar");
    let host_file = tmp.path().join("host-file");
    std::fs::write(&host_file, "the host's").unwrap();
    Tarball::new()
        .dir("ro/", 0o555)
        .dir("ro/deeper/", 0o500)
        .file("ro/deeper/file", b"x", 0o400)
        .file("bin/sh", b"#!/bin/sh\n", 0o4755)
        .symlink("bin/out", host_file.to_str().unwrap())
        .write_to(&image, false);

    // As `sudo cargo run` would have it: root, with the student's ids.
    std::env::set_var("SUDO_UID", "65534");
    std::env::set_var("SUDO_GID", "65534");
    let dir = tmp.path().join("rootfs");
    let announced = std::cell::Cell::new(0);
    rootfs::ensure(&dir, &Source::Tar(image, SetuidBits::Drop), |_| {
        announced.set(announced.get() + 1)
    })
    .unwrap();
    std::env::remove_var("SUDO_UID");
    std::env::remove_var("SUDO_GID");
    assert_eq!(announced.get(), 1);

    rootfs::walk(&dir, &mut |p, m| {
        assert_eq!((m.uid(), m.gid()), (65534, 65534), "{}", p.display());
        Ok(())
    })
    .unwrap();
    let lock = std::fs::metadata(tmp.path().join(".rootfs.lock")).unwrap();
    assert_eq!(lock.uid(), 65534, "the lock file is theirs too");
    let host = std::fs::metadata(&host_file).unwrap();
    assert_eq!(host.uid(), 0, "a symlink's target is never chowned");

    // The student removes it all as themselves, as `cargo clean` would.
    let out = Command::new("rm")
        .arg("-rf")
        .arg(&dir)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.exists());
}
