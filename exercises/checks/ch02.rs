//! Checks for chapter 2: `cargo test -p exercises ch02`.

use super::probe;
use nix::unistd::Pid;
use std::os::unix::fs::MetadataExt;

#[test]
fn ex2_1_namespace_inode_matches_the_kernels() {
    use crate::under_test::ch02_namespaces::namespace_inode;
    workshop_testkit::require_root();
    // A process of our own in new UTS, IPC and network namespaces (unshare
    // execs sleep once they exist), so that some answers must differ from ours.
    let mut other = std::process::Command::new("unshare")
        .args(["--uts", "--ipc", "--net", "sleep", "10"])
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(other.id() as i32);
    let inode =
        |pid: Pid, kind: &str| std::fs::metadata(format!("/proc/{pid}/ns/{kind}")).map(|m| m.ino());
    let start = std::time::Instant::now();
    while inode(pid, "net").ok() == inode(Pid::this(), "net").ok() && start.elapsed().as_secs() < 5
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for pid in [Pid::this(), pid] {
        for kind in ["mnt", "pid", "net", "ipc", "uts", "user", "cgroup"] {
            let expected = inode(pid, kind).unwrap();
            let got = namespace_inode(pid, kind)
                .unwrap_or_else(|e| panic!("namespace_inode({pid}, {kind:?}) failed: {e:#}"));
            assert_eq!(got, expected, "namespace_inode({pid}, {kind:?})");
        }
    }
    let _ = other.kill();
    let _ = other.wait();
    assert_ne!(
        namespace_inode(pid, "uts").ok(),
        namespace_inode(Pid::this(), "uts").ok()
    );
    assert!(
        namespace_inode(Pid::this(), "no-such-kind").is_err(),
        "an unknown kind should be an error"
    );
    assert!(
        namespace_inode(Pid::from_raw(i32::MAX), "uts").is_err(),
        "a missing process should be an error"
    );
}

#[test]
fn ex2_2_join_lands_in_the_containers_namespaces() {
    let report = probe("ch02-join", "2.2", "ch02_namespaces.rs");
    assert_eq!(
        report.get("hostname"),
        "joined-by-setns",
        "after joining its UTS namespace, the hostname is the container's"
    );
    for kind in ["uts", "ipc", "net"] {
        assert_eq!(
            report.get(&format!("joined_{kind}")),
            report.get(&format!("container_{kind}")),
            "the joined process should be in the container's {kind} namespace"
        );
    }
    // Only the kinds asked for: the container shares the host's mount namespace.
    assert_eq!(report.get("joined_mnt"), report.get("container_mnt"));
}
