//! An error raised inside the container, before its command runs, keeps its
//! `hint:` line: the child prints it as the tool's own report would.

use std::time::Duration;
use workshop_testkit::{chapter, exit_code, require_root, run, stderr_of, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ch04-rootfs");

#[test]
fn an_error_in_the_container_keeps_its_hint() {
    require_root();
    let default = workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    // A rootfs that passes the tool's own checks (a /bin/sh, and a /dev that
    // resolves to a directory inside it) but whose /dev the child cannot
    // mount on: an absolute symlink, which the tool resolves inside the
    // rootfs, as the container will see it, while the mount in the child,
    // before pivot_root, follows it on the host's side, where nothing has
    // that name. populate_dev fails in the child, with a hint.
    let rootfs = TempDir::new("dev-elsewhere");
    let elsewhere = format!("workshop-no-such-dir-{}", std::process::id());
    assert!(!std::path::Path::new("/").join(&elsewhere).exists());
    std::fs::create_dir(rootfs.path().join(&elsewhere)).unwrap();
    std::os::unix::fs::symlink(format!("/{elsewhere}"), rootfs.path().join("dev")).unwrap();
    std::fs::create_dir(rootfs.path().join("proc")).unwrap();
    std::fs::create_dir(rootfs.path().join("bin")).unwrap();
    std::fs::copy(
        default.join("bin/busybox"),
        rootfs.path().join("bin/busybox"),
    )
    .unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.path().join("bin/sh")).unwrap();

    let out = run(
        chapter(BIN).args(["--rootfs", rootfs.path().to_str().unwrap(), "--", "true"]),
        Duration::from_secs(60),
    );
    let err = stderr_of(&out);
    assert_eq!(exit_code(out.status), 1, "{err}");
    let error = err
        .lines()
        .position(|l| l.starts_with("error: failed to mount a tmpfs on ") && l.contains("/dev"))
        .unwrap_or_else(|| panic!("no error about /dev:\n{err}"));
    assert_eq!(
        err.lines().nth(error + 1),
        Some("hint: the rootfs needs an empty /dev directory"),
        "the line after the error:\n{err}"
    );
}
