//! Checks for chapter 4: `cargo test -p exercises ch04`.

use super::probe;

/// The rootfs must hold nothing the code under test made (the probe removed
/// it again if it was a directory, with what it held).
fn nothing_left(report: &super::Report, what: &str) {
    let left = report.get("left_names");
    assert_eq!(
        report.number("left_in_rootfs"),
        0,
        "\n\n{what} left in the rootfs: {left} ({}); remove what you made\n",
        match report.number("still_left_in_rootfs") {
            0 => "the probe removed it again".to_string(),
            n => format!("the probe removed its directories again; {n} still there"),
        }
    );
}

#[test]
fn ex4_1_pivot_into_makes_the_rootfs_the_root_and_detaches_the_host() {
    let report = probe("ch04-pivot", "4.1", "ch04_rootfs.rs");
    assert_eq!(
        report.get("root_is_rootfs"),
        "true",
        "/ should be the rootfs (same device and inode)"
    );
    let cwd = report.get("cwd");
    assert_eq!(
        report.get("cwd_is_root"),
        "true",
        "\n\nafter pivot_into() returned, the working directory was not the new / \
         (the kernel gave it as {cwd}{}): pivot_root moves the roots, not the \
         working directory of the caller; it still lay in the old root, outside \
         the container, and `cd ..` from it climbs to the host's files (the \
         host's /etc/hostname readable from inside). chdir(\"/\") right after \
         pivot_root\n",
        if report.get("cwd_in_host") == "true" {
            ", the directory the caller was in on the host"
        } else {
            ""
        }
    );
    let mounts = report.number("mounts");
    if report.get("namespace_root_is_rootfs") != "true" {
        let found = if report.get("namespace_root_is_host") == "true" {
            "the host's /"
        } else {
            "not the rootfs"
        };
        // The working directory is / in the container, yet it is (or its ..
        // is) the host's: the old root lies on top of the rootfs at /.
        let idea = if report.get("cwd_in_host") == "true" {
            "from / in the container, .. is the host's /, so the old root still \
             lies on top of the rootfs: pivot_root(\".\", \".\") stacks the old \
             root on top of the new one at /, until umount2(\".\", MNT_DETACH) \
             takes it off"
        } else {
            "chroot (even after a bind mount) moves the root of one process, not \
             the namespace's; pivot_root moves the namespace's root"
        };
        panic!(
            "\n\nthis process sees the rootfs at /, but a process entering the \
             mount namespace (nsenter, docker exec) finds {found} there, and \
             {mounts} mounts: {idea}\n"
        );
    }
    assert_eq!(
        report.get("escape_stays_in_rootfs"),
        "true",
        "\n\nthe chroot escape of exercise 4.2, run in the container, climbs out \
         of the rootfs{}: pivot_root, then detach the old root\n",
        if report.get("escape_reaches_host") == "true" {
            " to the host's /"
        } else {
            ""
        }
    );
    assert_eq!(
        report.get("beneath_is_host"),
        "false",
        "\n\nthe host's / is still mounted beneath the rootfs: when the check \
         lifted the rootfs off / (umount2 MNT_DETACH, {}), a process entering \
         the namespace found the host's / there. A mount moved onto / (MS_MOVE, \
         as switch_root does) covers the old root, it does not replace it: \
         pivot_root, then detach the old root\n",
        report.get("lifted")
    );
    let at_root = report.number("mounts_at_root");
    let others = report.get("other_mounts");
    assert!(
        at_root == 1 && others.is_empty(),
        "\n\nthe namespace still holds {mounts} mounts, {at_root} at / (the rootfs \
         should be alone there) and elsewhere: {others}: the old root is still \
         mounted; detach it (umount2 with MNT_DETACH)\n"
    );
    nothing_left(&report, "pivot_into()");
    assert_eq!(
        report.get("listing"),
        report.get("rootfs_listing"),
        "ls -a / should list the rootfs, and only what it held"
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
    let ended = if report.get("root_is_rootfs") == "true" {
        "/ is still the rootfs: the working directory never left it, and inside \
         a chroot both chdir(\"..\") and chroot(\"..\") stop at its root. \
         First chroot into a new directory, so that the working directory lies \
         outside the root"
    } else {
        "/ is a directory below the rootfs: the working directory was inside \
         the new root when chroot ran, so .. stopped there. Do not chdir into \
         the new directory: chroot into it with the working directory left \
         outside"
    };
    assert_eq!(
        report.get("escaped"),
        "true",
        "\n\nafter break_out_of_chroot(), / is not the host's real / (another \
         device or inode): {ended}, then climb with chdir(\"..\") until the \
         real top, then chroot(\".\")\n"
    );
    nothing_left(&report, "break_out_of_chroot()");
}

#[test]
fn ex4_3_proc_files_masked_with_dev_null() {
    let report = probe("ch04-mask", "4.3", "ch04_rootfs.rs");
    if let Some(error) = report.values.get("error") {
        let path = report.get("path_0");
        let idea = if report.get("is_file") == "true" && error.contains("ENOTDIR") {
            format!(
                "{path} is a file, and a filesystem (a tmpfs, say) can only be \
                 mounted on a directory: the kernel says ENOTDIR. A file is masked \
                 by another file: bind-mount /dev/null over it (MS_BIND)"
            )
        } else {
            "mask the file with a bind mount of /dev/null over that very path \
             (MS_BIND), then, if you like, remount it read-only"
                .to_string()
        };
        panic!("\n\nmask_path({path:?}) failed: {error}\n{idea}\n");
    }
    for i in 0..2 {
        let path = report.get(&format!("path_{i}"));
        let kind = report.get(&format!("kind_{i}"));
        let read = report.get(&format!("read_bytes_{i}"));
        assert_eq!(
            report.get(&format!("mounted_{i}")),
            "true",
            "\n\n{path} is not a mount point in the container: mask it with a \
             bind mount over that very path\n"
        );
        let idea = if kind == "regular file" {
            ": the mount over it shows the file itself, and read-only stops \
             writes, not reads"
        } else if kind.starts_with("character device") && read != "0" {
            ": a device that gives bytes hides the file, but a read still finds \
             bytes (/dev/zero, 1:5, gives zeros without end)"
        } else {
            ""
        };
        assert!(
            report.get(&format!("is_dev_null_{i}")) == "true" && read == "0",
            "\n\nin the container {path} is a {kind}, and a read gave {read} \
             bytes{idea}: it should be /dev/null (character device 1:3, empty): \
             bind-mount /dev/null over it\n"
        );
        assert_eq!(
            report.get(&format!("host_masked_{i}")),
            "false",
            "the host's {path} must stay as it was"
        );
    }
}
