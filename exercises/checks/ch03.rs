//! Checks for chapter 3: `cargo test -p exercises ch03`.

use super::probe;

#[test]
fn ex3_1_no_mount_stays_shared() {
    let report = probe("ch03-private", "3.1", "ch03_mount.rs");
    assert!(
        report.number("shared_before") > 0,
        "the probe should have made the mounts shared first"
    );
    assert_eq!(
        report.number("shared_after"),
        0,
        "every mount should be private now:\n{}",
        report.text
    );
}

#[test]
fn ex3_2_proc_shows_only_the_container() {
    let report = probe("ch03-proc", "3.2", "ch03_mount.rs");
    assert_eq!(
        report.get("self"),
        "1",
        "/proc/self should be PID 1, the container's view"
    );
    assert_eq!(
        report.number("processes"),
        1,
        "/proc should list only the container's one process"
    );
}

#[test]
fn ex3_3_a_private_tmpfs() {
    let report = probe("ch03-tmpfs", "3.3", "ch03_mount.rs");
    assert_eq!(
        report.get("tmpfs"),
        "true",
        "the directory should be a tmpfs mount"
    );
    assert_eq!(report.number("size_mib"), 16, "the tmpfs should be 16 MiB");
    assert_eq!(
        report.number("host_entries"),
        0,
        "the file written in the container must not appear on the host"
    );
}
