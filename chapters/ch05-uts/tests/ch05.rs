//! Chapter 5, checked against the kernel: the container's hostname from
//! inside, the host's from outside, and bad names refused before anything
//! is created.

use std::time::Duration;
use workshop_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch05-uts");
const LIMIT: Duration = Duration::from_secs(60);

workshop_testkit::contract! {
    bin: BIN,
    setup: workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs"),
    network: host,
    demo: [],
    fault_matrix: [],
    bad_input: [
        ("--hostname", ""),
        ("--hostname", "bad_name"),
        ("--hostname", "-x"),
        ("--hostname", "x-"),
        ("--hostname", "a..b"),
        ("--hostname", "sp ace"),
        (
            "--hostname",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
        ("--rootfs", "/nonexistent/rootfs"),
        ("--rootfs", "/"),
    ],
    without_root: ["--", "true"],
    container_pid: [],
}

fn ch05(args: &[&str]) -> std::process::Output {
    require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    run(chapter(BIN).args(args), LIMIT)
}

#[test]
fn the_container_has_its_own_name_and_the_host_keeps_its_own() {
    let host = HostSnapshot::take();
    let out = ch05(&["--hostname", "box1", "--", "hostname"]);
    assert_eq!(stdout_of(&out), "box1\n", "{}", stderr_of(&out));
    // uname(2) reads the same UTS namespace.
    let out = ch05(&["--quiet", "--hostname", "box2.example", "--", "uname", "-n"]);
    assert_eq!(stdout_of(&out), "box2.example\n");
    host.assert_unchanged("ch05 --hostname");
}

#[test]
fn the_default_name_is_workshop() {
    let out = ch05(&["--quiet", "cat", "/proc/sys/kernel/hostname"]);
    assert_eq!(stdout_of(&out), "workshop\n");
}
/// The `uts:[N]` inodes on the demo's "container" lines, in order.
fn container_uts_inodes(narration: &str) -> Vec<u64> {
    narration
        .lines()
        .filter(|l| l.trim_start().starts_with("container"))
        .filter_map(|l| {
            let rest = &l[l.find("uts:[")? + "uts:[".len()..];
            rest[..rest.find(']')?].parse().ok()
        })
        .collect()
}

/// Chapter 5's motivation, shown before the fix: a container without a UTS
/// namespace is in the host's (same inode) and may call sethostname() there;
/// the real container's namespace is another one. The demo sets the host's
/// name back to itself only, so the host keeps its name.
#[test]
fn the_demo_shows_the_host_s_uts_namespace_shared_then_a_new_one() {
    use std::os::unix::fs::MetadataExt;
    let host_uts = std::fs::metadata("/proc/self/ns/uts")
        .expect("stat /proc/self/ns/uts")
        .ino();
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = ch05(&[]);
    let narration = stderr_of(&out);
    assert!(out.status.success(), "{narration}");
    let seen = container_uts_inodes(&narration);
    assert_eq!(
        seen.len(),
        2,
        "want two container lines naming a uts:[inode] (without, then with CLONE_NEWUTS), got {seen:?}:\n{narration}"
    );
    assert_eq!(
        seen[0], host_uts,
        "the container without CLONE_NEWUTS should be in the host's UTS namespace:\n{narration}"
    );
    assert_ne!(
        seen[1], host_uts,
        "the real container should have a UTS namespace of its own:\n{narration}"
    );
    assert!(
        narration.contains(&format!("uts:[{host_uts}]")),
        "the demo should show the host's own uts:[{host_uts}] beside it:\n{narration}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name,
        "the host's hostname changed"
    );
}
