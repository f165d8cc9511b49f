//! Checks for chapter 3: `cargo test -p exercises ch03`.

use super::probe;

#[test]
fn ex3_1_no_mount_stays_shared() {
    let report = probe("ch03-private", "3.1", "ch03_mount.rs");
    assert!(
        report.number("shared_before") > 0,
        "the probe should have made the mounts shared first"
    );
    // Every mount whose propagation field is not empty, as the kernel lists it.
    let mut left: Vec<&str> = report
        .values
        .iter()
        .filter(|(k, _)| k.starts_with("not_private_"))
        .map(|(_, v)| v.as_str())
        .collect();
    left.sort();
    let received = report.number("received_from_host");
    let idea = if report.get("caller_namespace_changed") == "true" {
        "make_mounts_private() moved the caller into a new mount namespace \
         (unshare(CLONE_NEWNS)): /proc/self/ns/mnt is another inode. The copy's \
         mounts are still peers of the old namespace's, shared, so the host's \
         new mounts still arrive. The caller already has its own namespace: \
         change how its mounts propagate, mount(None, \"/\", None, \
         MS_REC | MS_PRIVATE, None)"
    } else if report.number("master_after") > 0 {
        "MS_SLAVE stops sending mounts to the host, but the host's new mounts \
         still arrive in the container: make them private (MS_PRIVATE)"
    } else if report.number("unbindable_after") > 0 {
        "MS_UNBINDABLE is private and more: no one can bind-mount those mounts \
         any more (chapter 4 bind-mounts the rootfs onto itself): make them \
         private (MS_PRIVATE)"
    } else if !left.is_empty()
        && !left.iter().any(|m| m.starts_with("/ is"))
        && (left.len() as u64) + 1 < report.number("mounts_after")
    {
        "some mounts became private and some did not: the ones left are mounts \
         hidden under another at the same path, which a call on that path does \
         not reach. MS_REC | MS_PRIVATE on / reaches every mount below it, the \
         hidden ones too"
    } else {
        "some mounts are still shared: MS_PRIVATE alone changes one mount; \
         MS_REC makes it reach every mount below / (even mounts hidden under \
         another at the same path)"
    };
    let shown: Vec<&str> = left.iter().take(5).cloned().collect();
    assert!(
        left.is_empty() && received == 0,
        "\n\n{} of {} mounts are not private after make_mounts_private(); the \
         kernel lists, among them:\n  {}\nA tmpfs the stand-in host mounted \
         afterwards on its /tmp {} in the container.\n{idea}\n",
        left.len(),
        report.number("mounts_after"),
        shown.join("\n  "),
        if received > 0 {
            "arrived"
        } else {
            "did not arrive"
        },
    );
    assert_eq!(
        report.number("mounts_after"),
        report.number("mounts_before"),
        "make_mounts_private() should change how mounts propagate, not which \
         mounts there are"
    );
}

#[test]
fn ex3_2_proc_shows_only_the_container() {
    let report = probe("ch03-proc", "3.2", "ch03_mount.rs");
    assert_eq!(
        report.get("proc_fstype"),
        "proc",
        "the mount at /proc should be a proc filesystem"
    );
    assert_eq!(
        report.get("self"),
        "1",
        "\n\n/proc/self is PID {}, not 1: the /proc the kernel reaches is the \
         host's view of the processes (the old /proc, or a bind mount of it; \
         was the new one mounted elsewhere?); mount a new proc filesystem on \
         /proc: it shows the PID namespace of whoever mounts it\n",
        report.get("self")
    );
    assert_eq!(
        report.number("processes"),
        1,
        "/proc should list only the container's one process"
    );
    let options = report.get("proc_options");
    let missing: Vec<&str> = ["nosuid", "nodev", "noexec"]
        .into_iter()
        .filter(|o| !options.split(',').any(|have| have == *o))
        .collect();
    assert!(
        missing.is_empty(),
        "\n\nthe kernel mounted /proc with the options `{options}`: missing \
         {missing:?}; pass MS_NOSUID | MS_NODEV | MS_NOEXEC so that nothing in \
         /proc can be run, opened as a device or gain privileges\n"
    );
}

#[test]
fn ex3_3_a_private_tmpfs() {
    let report = probe("ch03-tmpfs", "3.3", "ch03_mount.rs");
    for size in [16u64, 3, 129] {
        let fstype = report.get(&format!("fstype_{size}"));
        assert_eq!(
            fstype, "tmpfs",
            "\n\nafter mount_tmpfs(at, {size}) the kernel lists {fstype} mounted at \
             `at` itself: mount the tmpfs on `at`, not below it or elsewhere\n"
        );
        let bytes = report.number(&format!("size_bytes_{size}"));
        let page = 4096;
        let hint = if bytes == 16 * 1024 * 1024 {
            "always 16 MiB, whatever size_mib says: "
        } else if bytes < size * 1024 {
            "the kernel read a size with no suffix as bytes (rounded up to a page): "
        } else if bytes == (size * 1_000_000).div_ceil(page) * page {
            "that is size_mib × 1,000,000 bytes, decimal megabytes, where a MiB is 1024 × 1024: "
        } else {
            ""
        };
        assert_eq!(
            bytes,
            size * 1024 * 1024,
            "\n\nmount_tmpfs(at, {size}) made a tmpfs of {bytes} bytes ({:.2} MiB), \
             not {size} MiB = {} bytes: {hint}build the size from size_mib, with the \
             suffix `m` (binary MiB; no suffix means bytes, `k` KiB)\n",
            bytes as f64 / (1024.0 * 1024.0),
            size * 1024 * 1024
        );
    }
    assert_eq!(
        report.number("host_entries"),
        0,
        "\n\nthe files written in the container appear on the host ({}): the \
         tmpfs must be mounted on `at` itself, in the container's namespace\n",
        report.get("host_entry_names")
    );
    assert_eq!(
        report.get("left_behind"),
        "false",
        "the probe's directory is left"
    );
}

#[test]
fn ex3_4_a_read_only_bind_mount() {
    let report = probe("ch03-ro-bind", "3.4", "ch03_mount.rs");
    if let Some(error) = report.values.get("error") {
        let idea = if report.get("source_mounted") == "false" && error.contains("EINVAL") {
            "the kernel refuses (EINVAL) a remount of a path that is not a mount \
             point: source is a plain directory; the first call made target a \
             mount, so aim the read-only remount (MS_REMOUNT | MS_BIND | \
             MS_RDONLY) at target"
        } else {
            "two calls: MS_BIND from source onto target, then MS_REMOUNT | MS_BIND \
             | MS_RDONLY on target"
        };
        panic!("\n\nbind_read_only(source, target) failed: {error}\n{idea}\n");
    }
    assert_eq!(
        report.get("same_directory"),
        "true",
        "target should be the same directory as source (same device and inode): \
         a bind mount, not a copy"
    );
    assert_eq!(
        report.get("target_reads"),
        "true",
        "target should show source's file"
    );
    assert_eq!(
        report.get("target_mounted"),
        "true",
        "target should be a mount point"
    );
    let options = report.get("target_options");
    let target_write = report.get("target_write");
    assert!(
        options.split(',').next() == Some("ro") && target_write == "EROFS",
        "\n\nthe mount at target has the options `{options}` and a write through \
         it gave {target_write}: the kernel ignores MS_RDONLY in the call that \
         makes a bind mount; make it read-only with a second call, MS_REMOUNT | \
         MS_BIND | MS_RDONLY on target\n"
    );
    let source_write = report.get("source_write");
    assert_eq!(
        source_write, "ok",
        "\n\na write to source gave {source_write}: the whole filesystem went \
         read-only, not only the mount at target (a remount without MS_BIND \
         changes the filesystem, every mount of it; or the remount was aimed \
         at source)\n"
    );
    assert_eq!(
        report.number("host_entries"),
        0,
        "nothing should reach the host"
    );
    assert_eq!(
        report.get("left_behind"),
        "false",
        "the probe's directory is left"
    );
}
