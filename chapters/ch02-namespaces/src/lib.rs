//! Chapter 2: namespaces are files.
//!
//! Every process has one file per namespace kind under `/proc/PID/ns`. Two
//! processes are in the same namespace exactly when those files have the same
//! inode number. Opening the file gives a handle on the namespace, and
//! `setns()` on that handle moves the caller into it: what `docker exec` and
//! `nsenter` do.

use anyhow::{Context, Result};
use ch01_clone::clone_child;
use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use workshop::error::hinted;
use workshop::process::exec;

/// One kind of namespace: its file name under /proc/PID/ns, its clone flag, and what it isolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub name: &'static str,
    pub flag: CloneFlags,
    pub isolates: &'static str,
}

// ANCHOR: kinds
/// The namespace kinds, as the files in /proc/PID/ns name them. The first seven
/// are the classic ones; `time` came in Linux 5.6.
pub const KINDS: [Kind; 8] = [
    Kind {
        name: "mnt",
        flag: CloneFlags::CLONE_NEWNS,
        isolates: "the mount table",
    },
    Kind {
        name: "pid",
        flag: CloneFlags::CLONE_NEWPID,
        isolates: "process IDs",
    },
    Kind {
        name: "net",
        flag: CloneFlags::CLONE_NEWNET,
        isolates: "network devices, addresses, routes, ports",
    },
    Kind {
        name: "ipc",
        flag: CloneFlags::CLONE_NEWIPC,
        isolates: "System V IPC and POSIX message queues",
    },
    Kind {
        name: "uts",
        flag: CloneFlags::CLONE_NEWUTS,
        isolates: "hostname and domain name",
    },
    Kind {
        name: "user",
        flag: CloneFlags::CLONE_NEWUSER,
        isolates: "user and group IDs, capabilities",
    },
    Kind {
        name: "cgroup",
        flag: CloneFlags::CLONE_NEWCGROUP,
        isolates: "the cgroup tree it sees",
    },
    Kind {
        name: "time",
        flag: CloneFlags::from_bits_retain(0x80),
        isolates: "the boot and monotonic clocks",
    },
];
// ANCHOR_END: kinds

/// The namespaces this chapter's container gets: all but user (chapter 8,
/// rootless) and time (clone() cannot make one; only unshare() can).
pub const CONTAINER_FLAGS: CloneFlags = CloneFlags::CLONE_NEWNS
    .union(CloneFlags::CLONE_NEWPID)
    .union(CloneFlags::CLONE_NEWNET)
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWCGROUP);

pub fn kind(name: &str) -> Option<Kind> {
    KINDS.iter().copied().find(|k| k.name == name)
}

/// `/proc/PID/ns/KIND`, or `/proc/self/ns/KIND` for `None`.
pub fn ns_path(pid: Option<Pid>, kind: &str) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/ns/{kind}"),
        None => format!("/proc/self/ns/{kind}"),
    }
}

// ANCHOR: inode
/// The identity of a namespace: the inode number of its file. `ls -l` shows it
/// in the link text too: `uts -> 'uts:[4026531838]'`.
pub fn namespace_inode(pid: Option<Pid>, kind: &str) -> Result<u64> {
    let path = ns_path(pid, kind);
    let meta = std::fs::metadata(&path).with_context(|| format!("failed to stat {path}"))?;
    Ok(meta.ino())
}
// ANCHOR_END: inode

// ANCHOR: join
/// Move this process into the namespaces of `target` that differ from its own,
/// as `nsenter --target PID --all` does. Returns the kinds it joined.
///
/// The PID namespace is special: setns() puts the caller's future children in
/// it, not the caller. Fork after joining (see [`join_and_spawn`]).
pub fn join_namespaces(target: Pid) -> Result<Vec<&'static str>> {
    // Open every file first: once we are in the target's mount namespace,
    // "/proc/TARGET" may no longer mean the same thing.
    let mut handles = Vec::new();
    for kind in KINDS {
        if namespace_inode(Some(target), kind.name)? == namespace_inode(None, kind.name)? {
            continue; // already there (and setns into our own user namespace is an error)
        }
        let path = ns_path(Some(target), kind.name);
        let file = File::open(&path).with_context(|| format!("failed to open {path}"))?;
        handles.push((kind, file));
    }
    // Join the mount namespace last: it changes our root and working directory.
    handles.sort_by_key(|(kind, _)| kind.name == "mnt");
    for (kind, file) in &handles {
        setns(file, kind.flag).with_context(|| {
            format!("failed to setns into {}", ns_path(Some(target), kind.name))
        })?;
    }
    Ok(handles.iter().map(|(kind, _)| kind.name).collect())
}
// ANCHOR_END: join

/// `docker exec`: join `target`'s namespaces, then start `argv` in a child,
/// which is the first process of ours inside the target's PID namespace.
pub fn join_and_spawn(target: Pid, argv: &[String]) -> Result<Pid> {
    if !std::path::Path::new(&format!("/proc/{target}/ns")).exists() {
        return Err(hinted(
            format!("no process {target}: /proc/{target}/ns does not exist"),
            "give the container's PID as the host sees it (ps -e on the host, or the `host` lines of a demo)",
        ));
    }
    if join_namespaces(target)?.is_empty() {
        return Err(hinted(
            format!("process {target} is in the same namespaces as this tool: there is nothing to join"),
            "give the PID of a container's process (the `host` lines of a demo, or `ps -e` on the host)",
        ));
    }
    clone_child(CloneFlags::empty(), || exec(argv))
}
