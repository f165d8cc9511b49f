//! Checks for chapter 4: `cargo test -p exercises ch04`.

use super::probe;

#[test]
fn ex4_1_pivot_into_makes_the_rootfs_the_root_and_detaches_the_host() {
    let report = probe("ch04-pivot", "4.1", "ch04_rootfs.rs");
    assert_eq!(
        report.get("root_is_rootfs"),
        "true",
        "/ should be the rootfs (same device and inode)"
    );
    assert_eq!(
        report.get("listing"),
        report.get("rootfs_listing"),
        "ls / should list the rootfs"
    );
    let mounts = report.number("mounts");
    assert!(
        mounts <= 3,
        "only the rootfs and /proc should be mounted, but {mounts} mounts are visible: was the old root detached (umount2 with MNT_DETACH)?\n{}",
        report.text
    );
}

#[test]
fn ex4_2_root_walks_out_of_a_chroot() {
    let report = probe("ch04-breakout", "4.2", "ch04_rootfs.rs");
    assert_eq!(
        report.get("chrooted"),
        "true",
        "the check should start inside the chroot"
    );
    assert_eq!(
        report.get("escaped"),
        "true",
        "after the escape, / should be the host's real /"
    );
    assert_eq!(
        report.number("left_in_rootfs"),
        0,
        "tidy up: remove the directory you made in the rootfs"
    );
}
