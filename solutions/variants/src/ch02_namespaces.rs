//! Chapter 2: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;
use std::fs::File;
use std::os::unix::fs::MetadataExt;

pub const VARIANTS: &[Variant] = &[
    wrong(
        "2.1",
        "symlink-metadata",
        "symlink_metadata (lstat): the inode of the /proc link itself, not of the namespace it points to",
    ).because("the inode of the symbolic link itself"),
    wrong(
        "2.1",
        "self-not-pid",
        "/proc/self/ns/KIND whatever the PID: the caller's namespace, not the process asked about",
    ).because("use the PID you were given, not self"),
    wrong("2.1", "dev-not-ino", ".dev() for .ino(): every namespace lives on the same nsfs device").because("that is a device number (.dev())"),
    wrong(
        "2.1",
        "unwrap",
        "unwrap() on the stat: a missing process panics instead of being an error",
    ).because("panicked (called `Result::unwrap()`"),
    right(
        "2.1",
        "readlink",
        "read_link, then parse the number out of `uts:[4026531838]`",
    ),
    wrong(
        "2.2",
        "fixed-list",
        "joins uts, ipc and net whatever `kinds` says: the example in the doc, not the argument",
    ).because("the doc's example, not the argument"),
    wrong(
        "2.2",
        "first-only",
        "setns() for kinds[0] only: one namespace joined, the others asked for not",
    ).because("setns() into each kind you were asked for"),
    wrong(
        "2.2",
        "open-as-you-go",
        "opens each file just before its setns(): after joining mnt, /proc is the container's and the target's host PID is not in it",
    ).because("open every /proc/TARGET/ns/KIND file before the first setns()"),
    wrong(
        "2.2",
        "self-target",
        "opens /proc/self/ns/KIND: setns() into the namespaces it is already in, a no-op",
    ).because("is still in its own namespaces"),
    wrong(
        "2.2",
        "all-classic",
        "joins every classic kind but user (mnt, uts, ipc, net, pid, cgroup): more than asked for",
    ).because("join only the kinds in `kinds`"),
    right(
        "2.2",
        "pidfd",
        "pidfd_open(target), then one setns(pidfd, flags of every kind asked for): all at once (Linux 5.8)",
    ),
    right(
        "2.2",
        "empty-flag",
        "setns(file, CloneFlags::empty()): the kernel takes the kind from the file",
    ),
    wrong(
        "2.3",
        "fixed-kinds",
        "the seven classic kinds written out: misses pid_for_children, time, time_for_children",
    ).because("more than the classic seven"),
    wrong(
        "2.3",
        "lstat",
        "compares the links' own inodes (symlink_metadata): each process's links are its own files, nothing is ever shared",
    ).because("nothing shared at all"),
    wrong(
        "2.3",
        "a-with-a",
        "stats /proc/A/ns/KIND twice: every namespace looks shared",
    ).because("every kind came back shared"),
    wrong(
        "2.3",
        "differing",
        "returns the kinds whose inodes differ: the question turned around",
    ).because("the question turned around"),
    wrong(
        "2.3",
        "missing-is-empty",
        "a stat that fails counts as not shared: a missing process gives Ok(vec![]), not an error",
    ).because("for a process that does not exist: that is an error"),
    right(
        "2.3",
        "link-text",
        "compares the link texts (`net:[4026531840]`): equal exactly when the namespaces are",
    ),
];

fn ns_path(pid: Pid, kind: &str) -> String {
    format!("/proc/{pid}/ns/{kind}")
}

/// Exercise 2.1.
pub fn namespace_inode(pid: Pid, kind: &str) -> Result<u64> {
    let path = ns_path(pid, kind);
    match chosen("2.1").as_deref() {
        None => solutions::ch02_namespaces::namespace_inode(pid, kind),
        Some("symlink-metadata") => Ok(std::fs::symlink_metadata(&path)?.ino()),
        Some("self-not-pid") => Ok(std::fs::metadata(format!("/proc/self/ns/{kind}"))?.ino()),
        Some("dev-not-ino") => Ok(std::fs::metadata(&path)?.dev()),
        Some("unwrap") => Ok(std::fs::metadata(&path).unwrap().ino()),
        Some("readlink") => {
            let link = std::fs::read_link(&path).with_context(|| format!("readlink {path}"))?;
            let link = link.to_string_lossy();
            let number = link
                .split_once(":[")
                .and_then(|(_, n)| n.strip_suffix(']'))
                .with_context(|| format!("{path} -> {link}: not KIND:[NUMBER]"))?;
            number.parse().with_context(|| format!("{path} -> {link}"))
        }
        Some(other) => unknown("2.1", other),
    }
}

/// Exercise 2.2.
pub fn join(target: Pid, kinds: &[&str]) -> Result<()> {
    let flag = |kind: &str| ch02_namespaces::kind(kind).map_or(CloneFlags::empty(), |k| k.flag);
    let open = |pid: Pid, kind: &str| {
        File::open(ns_path(pid, kind))
            .with_context(|| format!("failed to open {}", ns_path(pid, kind)))
    };
    let join_all = |pid: Pid, kinds: &[&str]| -> Result<()> {
        let files = kinds
            .iter()
            .map(|k| open(pid, k))
            .collect::<Result<Vec<_>>>()?;
        for (kind, file) in kinds.iter().zip(&files) {
            setns(file, flag(kind)).with_context(|| format!("setns {kind}"))?;
        }
        Ok(())
    };
    match chosen("2.2").as_deref() {
        None => solutions::ch02_namespaces::join(target, kinds),
        Some("fixed-list") => join_all(target, &["uts", "ipc", "net"]),
        Some("first-only") => join_all(target, &kinds[..1.min(kinds.len())]),
        Some("open-as-you-go") => {
            for kind in kinds {
                setns(open(target, kind)?, flag(kind)).with_context(|| format!("setns {kind}"))?;
            }
            Ok(())
        }
        Some("self-target") => join_all(Pid::this(), kinds),
        Some("all-classic") => join_all(target, &["mnt", "uts", "ipc", "net", "pid", "cgroup"]),
        Some("pidfd") => {
            use nix::libc;
            use std::os::fd::{FromRawFd, OwnedFd};
            // SAFETY: pidfd_open takes a PID and flags, and returns a new fd.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, target.as_raw(), 0) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error()).context("pidfd_open");
            }
            // SAFETY: a new fd, ours alone.
            let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            let flags = kinds
                .iter()
                .map(|k| {
                    ch02_namespaces::kind(k)
                        .map(|k| k.flag)
                        .with_context(|| format!("no kind {k}"))
                })
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .fold(CloneFlags::empty(), |all, f| all | f);
            if flags.is_empty() {
                return Ok(());
            }
            setns(pidfd, flags).context("setns(pidfd)")
        }
        Some("empty-flag") => {
            let files = kinds
                .iter()
                .map(|k| open(target, k))
                .collect::<Result<Vec<_>>>()?;
            for file in &files {
                setns(file, CloneFlags::empty()).context("setns")?;
            }
            Ok(())
        }
        Some(other) => unknown("2.2", other),
    }
}

/// Exercise 2.3.
pub fn shared_namespaces(a: Pid, b: Pid) -> Result<Vec<String>> {
    let stat = |pid: Pid, kind: &str| -> Result<(u64, u64)> {
        let m = std::fs::metadata(ns_path(pid, kind)).with_context(|| ns_path(pid, kind))?;
        Ok((m.dev(), m.ino()))
    };
    let listed = |pid: Pid| -> Result<Vec<String>> {
        let mut kinds = std::fs::read_dir(format!("/proc/{pid}/ns"))?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>>>()?;
        kinds.sort();
        Ok(kinds)
    };
    let keep = |kinds: Vec<String>, same: &dyn Fn(&str) -> Result<bool>| -> Result<Vec<String>> {
        let mut out = Vec::new();
        for kind in kinds {
            if same(&kind)? {
                out.push(kind);
            }
        }
        Ok(out)
    };
    match chosen("2.3").as_deref() {
        None => solutions::ch02_namespaces::shared_namespaces(a, b),
        Some("fixed-kinds") => {
            let mut classic: Vec<String> = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
                .map(String::from)
                .to_vec();
            classic.sort();
            keep(classic, &|k| Ok(stat(a, k)? == stat(b, k)?))
        }
        Some("lstat") => keep(listed(a)?, &|k| {
            let (x, y) = (
                std::fs::symlink_metadata(ns_path(a, k))?,
                std::fs::symlink_metadata(ns_path(b, k))?,
            );
            Ok(x.ino() == y.ino())
        }),
        Some("a-with-a") => keep(listed(a)?, &|k| Ok(stat(a, k)? == stat(a, k)?)),
        Some("differing") => keep(listed(a)?, &|k| Ok(stat(a, k)? != stat(b, k)?)),
        Some("missing-is-empty") => keep(listed(a)?, &|k| {
            Ok(matches!((stat(a, k), stat(b, k)), (Ok(x), Ok(y)) if x == y))
        }),
        Some("link-text") => keep(listed(a)?, &|k| {
            Ok(std::fs::read_link(ns_path(a, k))? == std::fs::read_link(ns_path(b, k))?)
        }),
        Some(other) => unknown("2.3", other),
    }
}
