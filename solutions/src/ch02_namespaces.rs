//! Chapter 2 exercises, solved.

use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;
use std::fs::File;
use std::os::unix::fs::MetadataExt;

/// Exercise 2.1: which namespace is a process in?
pub fn namespace_inode(pid: Pid, kind: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/ns/{kind}");
    let meta = std::fs::metadata(&path).with_context(|| format!("failed to stat {path}"))?;
    Ok(meta.ino())
}

/// Exercise 2.2: join another process's namespaces, as `nsenter` does.
pub fn join(target: Pid, kinds: &[&str]) -> Result<()> {
    let files = kinds
        .iter()
        .map(|kind| {
            let path = format!("/proc/{target}/ns/{kind}");
            File::open(&path).with_context(|| format!("failed to open {path}"))
        })
        .collect::<Result<Vec<_>>>()?;
    for (kind, file) in kinds.iter().zip(&files) {
        // With the kind's flag, the kernel checks that the file is that kind.
        let flag = ch02_namespaces::kind(kind).map_or(CloneFlags::empty(), |k| k.flag);
        setns(file, flag)
            .with_context(|| format!("failed to setns into {target}'s {kind} namespace"))?;
    }
    Ok(())
}

/// Exercise 2.3: which namespaces do two processes share?
pub fn shared_namespaces(a: Pid, b: Pid) -> Result<Vec<String>> {
    let identity = |pid: Pid, kind: &str| -> Result<(u64, u64)> {
        let path = format!("/proc/{pid}/ns/{kind}");
        let meta = std::fs::metadata(&path).with_context(|| format!("failed to stat {path}"))?;
        Ok((meta.dev(), meta.ino()))
    };
    let dir = format!("/proc/{a}/ns");
    let mut shared = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("failed to list {dir}"))? {
        let kind = entry?.file_name().to_string_lossy().into_owned();
        if identity(a, &kind)? == identity(b, &kind)? {
            shared.push(kind);
        }
    }
    shared.sort();
    Ok(shared)
}
