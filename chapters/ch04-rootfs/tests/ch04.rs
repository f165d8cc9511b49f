//! Chapter 4, checked against the kernel: the container's / is the rootfs,
//! the chroot escape works under chroot and fails under pivot_root, bad
//! --rootfs values are refused before anything is created, and the host's
//! mounts are byte-identical after every run.

use ch04_rootfs::list_dir;
use std::path::{Path, PathBuf};
use std::time::Duration;
use workshop_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch04-rootfs");
const LIMIT: Duration = Duration::from_secs(60);

workshop_testkit::contract! {
    bin: BIN,
    setup: rootfs(),
    network: host,
    demo: [],
    fault_matrix: [],
    bad_input: let (_links, to_root) = link_to_root(); [
        ("--rootfs", ""),
        ("--rootfs", "/nonexistent/rootfs"),
        ("--rootfs", "/etc/hostname"),
        ("--rootfs", "/proc/sys"),
        ("--rootfs", "/"),
        ("--rootfs", "/."),
        ("--rootfs", "/proc/self/root"),
        ("--rootfs", to_root.as_str()),
    ],
    without_root: ["--", "true"],
    container_pid: [],
}

fn ch04(args: &[&str]) -> std::process::Output {
    require_root();
    run(chapter(BIN).args(args), LIMIT)
}

fn rootfs() -> PathBuf {
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs")
}

/// A symlink to the host's `/`, in a temp dir removed with the [`TempDir`].
fn link_to_root() -> (TempDir, String) {
    let links = TempDir::new("ch04-root-link");
    let to_root = links.path().join("root");
    std::os::unix::fs::symlink("/", &to_root).unwrap();
    let to_root = to_root.to_str().unwrap().to_string();
    (links, to_root)
}

fn listing(out: &std::process::Output) -> Vec<String> {
    let mut names: Vec<String> = stdout_of(out)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn ls_shows_the_rootfs_not_the_host() {
    let root = rootfs();
    let before = list_dir(&root).unwrap();
    let host = HostSnapshot::take();
    let out = ch04(&["--quiet", "--", "ls", "/"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(listing(&out), list_dir(&root).unwrap());
    assert_ne!(listing(&out), list_dir(Path::new("/")).unwrap());
    host.assert_unchanged("ch04 -- ls /");
    assert_eq!(
        list_dir(&root).unwrap(),
        before,
        "the run left nothing in the rootfs"
    );
}

#[test]
fn proc_1_is_the_containers_own() {
    rootfs();
    let out = ch04(&["--quiet", "cat", "/proc/1/cmdline"]);
    assert_eq!(
        stdout_of(&out),
        "cat\0/proc/1/cmdline\0",
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn the_chroot_escape_works_under_chroot_and_fails_under_pivot_root() {
    // A rootfs of this test's own: the escape writes into it, and other tests'
    // containers (the demo's escape) write into the shared one meanwhile.
    let copy = rootfs_copy("ch04-escape");
    let root = copy.path();
    let root_option = root.to_str().unwrap();
    // Everything at its top, dot files too (the copy may have caught another
    // run's escape directory in passing): the escape must add nothing.
    let everything = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = everything();
    let host = HostSnapshot::take();
    let escaped = ch04(&[
        "--quiet",
        "--rootfs",
        root_option,
        "--chroot",
        "--break-out",
        "--",
        "ls",
        "/",
    ]);
    assert!(escaped.status.success(), "{}", stderr_of(&escaped));
    assert_eq!(
        listing(&escaped),
        list_dir(Path::new("/")).unwrap(),
        "under chroot, root walks out to the host's /"
    );

    let held = ch04(&[
        "--quiet",
        "--rootfs",
        root_option,
        "--break-out",
        "--",
        "ls",
        "/",
    ]);
    assert!(held.status.success(), "{}", stderr_of(&held));
    assert_eq!(
        listing(&held),
        list_dir(root).unwrap(),
        "after pivot_root the escape lands in the rootfs"
    );
    host.assert_unchanged("ch04 escapes");
    let left: Vec<_> = everything()
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    assert!(
        left.is_empty(),
        "the escape removes its directory: {left:?} left in {}",
        root.display()
    );
}

#[test]
fn bad_rootfs_is_refused_before_anything_is_created() {
    let host = HostSnapshot::take();
    let tmp_dir = TempDir::new("ch04-bad-rootfs"); // removed even when a check fails
    let tmp = tmp_dir.path();
    std::fs::create_dir_all(tmp.join("empty")).unwrap();
    std::fs::write(tmp.join("file"), "not a directory").unwrap();
    // A real rootfs but for one of the directories the container's mounts go on.
    let no_proc = rootfs_copy("ch04-no-proc");
    std::fs::remove_dir(no_proc.path().join("proc")).unwrap();
    let no_dev = rootfs_copy("ch04-no-dev");
    std::fs::remove_dir_all(no_dev.path().join("dev")).unwrap();
    let cases = [
        (tmp.join("missing"), "does not exist"),
        (tmp.join("file"), "not a directory"),
        (tmp.join("empty"), "no /bin/sh"),
        (no_proc.path().to_path_buf(), "no /proc directory"),
        (no_dev.path().to_path_buf(), "no /dev directory"),
    ];
    for (path, says) in &cases {
        let out = ch04(&["--rootfs", path.to_str().unwrap(), "--", "true"]);
        let err = stderr_of(&out);
        assert_eq!(exit_code(out.status), 1, "{err}");
        assert!(
            err.contains("error:") && err.contains(says) && err.contains("hint:"),
            "{path:?}: {err}"
        );
        assert!(
            err.contains(path.to_str().unwrap()),
            "the error names the path: {err}"
        );
    }
    host.assert_unchanged("ch04 bad --rootfs");
}
/// On a host whose mounts are shared (systemd), the bind mounts and the proc
/// mount must still not propagate back. A sandbox mount namespace with shared
/// mounts stands in for such a host.
#[test]
fn on_a_shared_root_nothing_propagates_back() {
    rootfs();
    let dir = std::env::temp_dir().join(format!("ch04-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "cat /proc/self/mountinfo > {d}/before && {BIN} --quiet -- ls / > /dev/null && cat /proc/self/mountinfo > {d}/after",
        d = dir.display()
    );
    let out = run_in_shared_sandbox(&script, LIMIT);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (before, after) = (
        std::fs::read_to_string(dir.join("before")).unwrap(),
        std::fs::read_to_string(dir.join("after")).unwrap(),
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(before.contains(" shared:"));
    assert_eq!(
        before, after,
        "a mount made in the container propagated back to the (sandboxed) host"
    );
}

/// The host's own root, however it is spelled, is refused as bad usage (exit
/// 2, the option named) rather than left to pivot_root's bare EBUSY: `/`, a
/// path that resolves to it, a symlink to it, and (in a mount namespace of
/// the test's own) a bind mount of it, which pivot_root would even accept.
#[test]
fn the_hosts_own_root_is_refused_up_front() {
    let (links, to_root) = link_to_root();
    for value in ["/", "/.", "/proc/self/root", to_root.as_str()] {
        assert_refused_as_usage(BIN, "--rootfs", value);
    }
    let bind = links.path().join("b");
    let script = format!(
        "mkdir {b} && mount --bind / {b} && {BIN} --quiet --rootfs {b} -- true; echo exit=$?",
        b = bind.display()
    );
    let out = run(
        std::process::Command::new("unshare").args(["--mount", "sh", "-c", &script]),
        LIMIT,
    );
    let (said, err) = (stdout_of(&out), stderr_of(&out));
    assert!(said.contains("exit=2"), "a bind mount of /: {said}{err}");
    assert!(
        err.lines().any(|l| l.starts_with("error:")
            && l.contains("--rootfs")
            && l.contains("bind-mounted")),
        "the error names the option and the path: {err}"
    );
}
