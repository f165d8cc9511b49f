//! Checks for chapter 2: `cargo test -p exercises ch02`.

use super::probe;
use nix::unistd::Pid;
use std::os::unix::fs::MetadataExt;

/// A process of the check's own in new UTS, IPC and network namespaces, so
/// that some answers must differ from ours; ended and reaped however the
/// check ends.
struct Other(std::process::Child);

impl Other {
    fn start() -> Other {
        workshop_testkit::require_root();
        // unshare execs sleep once they exist.
        let child = std::process::Command::new("unshare")
            .args(["--uts", "--ipc", "--net", "sleep", "10"])
            .spawn()
            .expect("start unshare");
        let other = Other(child);
        let start = std::time::Instant::now();
        while inode(other.pid(), "net").ok() == inode(Pid::this(), "net").ok()
            && start.elapsed().as_secs() < 5
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        other
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.0.id() as i32)
    }
}

impl Drop for Other {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn inode(pid: Pid, kind: &str) -> std::io::Result<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}")).map(|m| m.ino())
}

/// Every entry of /proc/PID/ns, as this kernel has them.
fn kinds(pid: Pid) -> Vec<String> {
    let mut kinds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/ns"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kinds.sort();
    kinds
}

/// Call the code under test; a panic becomes a message for the student.
fn calling<T>(what: &str, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let said = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        if said.contains("not yet implemented") {
            panic!("\n\n{said}\n  write it in exercises/src/ch02_namespaces.rs, then run this check again\n");
        }
        panic!("\n\n{what} panicked ({said}): return an Err instead (`?` with .with_context())\n")
    })
}

#[test]
fn ex2_1_namespace_inode_matches_the_kernels() {
    use crate::under_test::ch02_namespaces::namespace_inode;
    super::own_work("2.1", "ch02_namespaces.rs");
    let other = Other::start();
    let me = Pid::this();
    for pid in [me, other.pid()] {
        for kind in kinds(pid) {
            let expected = inode(pid, &kind).unwrap();
            let call = format!("namespace_inode({pid}, {kind:?})");
            let got = calling(&call, || namespace_inode(pid, &kind))
                .unwrap_or_else(|e| panic!("{call} failed: {e:#}"));
            let path = format!("/proc/{pid}/ns/{kind}");
            let link = std::fs::symlink_metadata(&path).unwrap();
            let why = if got == link.ino() {
                "that is the inode of the symbolic link itself (lstat, symlink_metadata): \
                 follow the link to the namespace (stat, std::fs::metadata)"
                    .to_string()
            } else if pid != me && inode(me, &kind).ok() == Some(got) {
                "that is the check's own namespace: use the PID you were given, not self"
                    .to_string()
            } else if got == link.dev() || got == std::fs::metadata(&path).unwrap().dev() {
                "that is a device number (.dev()), not the inode (.ino())".to_string()
            } else {
                format!(
                    "the kernel's link says {:?}",
                    std::fs::read_link(&path).unwrap()
                )
            };
            assert_eq!(
                got, expected,
                "\n\n{call} returned {got}, the kernel says {expected}: {why}\n"
            );
        }
    }
    assert_ne!(
        namespace_inode(other.pid(), "uts").ok(),
        namespace_inode(me, "uts").ok()
    );
    assert!(
        calling("namespace_inode(PID, \"no-such-kind\")", || {
            namespace_inode(me, "no-such-kind")
        })
        .is_err(),
        "an unknown kind should be an error"
    );
    assert!(
        calling("namespace_inode of a process that does not exist", || {
            namespace_inode(Pid::from_raw(i32::MAX), "uts")
        })
        .is_err(),
        "a missing process should be an error"
    );
}

#[test]
fn ex2_2_join_lands_in_the_containers_namespaces() {
    let report = probe("ch02-join", "2.2", "ch02_namespaces.rs");
    for case in ["a", "b", "c"] {
        let asked: Vec<&str> = report.get(&format!("{case}_asked")).split(',').collect();
        let joined = report.get(&format!("{case}_join"));
        assert_eq!(
            joined,
            "ok",
            "\n\njoin(container, {asked:?}) failed: {joined}\n{}",
            if asked[0] == "mnt" {
                "After setns() into the container's mount namespace, /proc is the \
                 container's, where the container's host PID does not exist: open \
                 every /proc/TARGET/ns/KIND file before the first setns().\n"
            } else {
                ""
            }
        );
        let stayed = |kind: &&str| {
            let key = |what: &str| report.get(&format!("{what}_{kind}"));
            key(&format!("{case}_joined")) == key(&format!("{case}_before"))
                && key(&format!("{case}_before")) != key("container")
        };
        let probed: Vec<&str> = ["uts", "ipc", "net", "mnt"]
            .into_iter()
            .filter(|kind| asked.contains(kind))
            .collect();
        assert!(
            probed.is_empty() || !probed.iter().all(stayed),
            "\n\nafter join(container, {asked:?}), the process is still in its own \
             namespaces, not one of them the container's: a setns() into a namespace the \
             process is already in changes nothing. Open the target's files, \
             /proc/TARGET/ns/KIND, not /proc/self/ns/KIND\n"
        );
        for kind in ["uts", "ipc", "net", "mnt"] {
            let now = report.get(&format!("{case}_joined_{kind}"));
            let before = report.get(&format!("{case}_before_{kind}"));
            let container = report.get(&format!("container_{kind}"));
            if asked.contains(&kind) {
                assert_eq!(
                    now, container,
                    "\n\nafter join(container, {asked:?}), the kernel shows the process in \
                     {kind} namespace {now}, not the container's ({container}): setns() into \
                     each kind you were asked for\n"
                );
            } else {
                let moved = if now == container {
                    "the container's".to_string()
                } else {
                    now.to_string()
                };
                let joined: Vec<&str> = ["uts", "ipc", "net", "mnt"]
                    .into_iter()
                    .filter(|k| {
                        report.get(&format!("{case}_joined_{k}"))
                            == report.get(&format!("container_{k}"))
                    })
                    .collect();
                let hint = if joined == ["uts", "ipc", "net"] {
                    " (it joined uts, ipc and net, the doc's example, not the argument)"
                } else {
                    ""
                };
                assert_eq!(
                    now, before,
                    "\n\nafter join(container, {asked:?}), the process's {kind} namespace was \
                     {moved}, but {kind} was not asked for: join only the kinds in \
                     `kinds`{hint}\n"
                );
            }
        }
    }
    assert_eq!(
        report.get("a_hostname"),
        "joined-by-setns",
        "after joining its UTS namespace, the hostname is the container's"
    );
}

#[test]
fn ex2_3_shared_namespaces_are_the_kernels() {
    use crate::under_test::ch02_namespaces::shared_namespaces;
    super::own_work("2.3", "ch02_namespaces.rs");
    let other = Other::start();
    let me = Pid::this();
    let expect = |a: Pid, b: Pid| -> Vec<String> {
        kinds(a)
            .into_iter()
            .filter(|k| {
                let (x, y) = (
                    std::fs::metadata(format!("/proc/{a}/ns/{k}")).unwrap(),
                    std::fs::metadata(format!("/proc/{b}/ns/{k}")).unwrap(),
                );
                (x.dev(), x.ino()) == (y.dev(), y.ino())
            })
            .collect()
    };
    for (a, b) in [(me, me), (me, other.pid()), (other.pid(), me)] {
        let call = format!("shared_namespaces({a}, {b})");
        let got = calling(&call, || shared_namespaces(a, b))
            .unwrap_or_else(|e| panic!("{call} failed: {e:#}"));
        let expected = expect(a, b);
        let all = kinds(a);
        let missing: Vec<&String> = expected.iter().filter(|k| !got.contains(k)).collect();
        let extra: Vec<&String> = got.iter().filter(|k| !expected.contains(k)).collect();
        let differing: Vec<&String> = all.iter().filter(|k| !expected.contains(k)).collect();
        let why = if got.iter().collect::<Vec<_>>() == differing {
            " (those are the kinds that differ, the question turned around: return the \
             kinds whose namespaces are the same)"
        } else if a != b && got.is_empty() {
            " (nothing shared at all: each process's /proc/PID/ns links are its own files; \
             compare what the links point to, std::fs::metadata, not the links, \
             symlink_metadata)"
        } else if a != b && got == all && !extra.is_empty() {
            " (every kind came back shared, even those the kernel shows differ: compare \
             A's /proc/A/ns/KIND with B's /proc/B/ns/KIND)"
        } else if !missing.is_empty()
            && missing
                .iter()
                .all(|k| !["mnt", "uts", "net"].contains(&k.as_str()))
        {
            " (list the kinds from /proc/A/ns: this kernel has more than the classic seven)"
        } else {
            ""
        };
        assert_eq!(
            got, expected,
            "\n\n{call} returned {got:?}; the kernel shows these of {all:?} shared: \
             {expected:?} (missing {missing:?}, not shared {extra:?}){why}\n"
        );
    }
    let gone = calling("shared_namespaces with a missing process", || {
        shared_namespaces(me, Pid::from_raw(i32::MAX))
    });
    assert!(
        gone.is_err(),
        "\n\nshared_namespaces({me}, {}) returned {gone:?} for a process that does not \
         exist: that is an error, not \"nothing shared\"\n",
        i32::MAX
    );
}
