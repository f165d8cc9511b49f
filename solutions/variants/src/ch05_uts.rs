//! Chapter 5: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use nix::unistd::Pid;

pub const VARIANTS: &[Variant] = &[
    wrong(
        "5.1",
        "max-63",
        "`name.len() >= 64` refused: the limit is 64 bytes (HOST_NAME_MAX), a 64-byte name is good",
    ).because("may have 64 bytes"),
    wrong(
        "5.1",
        "letter-first",
        "a label must start with a letter (RFC 952): RFC 1123 allows a digit first, `1box`",
    ).because("may start with a digit"),
    wrong(
        "5.1",
        "lowercase-only",
        "only lowercase letters and digits: hostnames are case-insensitive, `Box1` is good",
    ).because("hostnames are case-insensitive"),
    wrong(
        "5.1",
        "whole-name-hyphens",
        "the hyphen rule checked on the whole name, not on each label: `a-.b` passes",
    ).because("each label, not only the whole name"),
    wrong(
        "5.1",
        "unicode-alphanumeric",
        "`char::is_alphanumeric` instead of `is_ascii_alphanumeric`: `é` is a letter, not ASCII",
    ).because("letters are ASCII only"),
    wrong(
        "5.1",
        "dns-253",
        "253 bytes as the limit, DNS's for a whole name: the kernel keeps a hostname of 64 bytes at most (HOST_NAME_MAX)",
    ).because("253 is DNS's limit"),
    right(
        "5.1",
        "bytes",
        "the same rules on bytes: `split(|&b| b == b'.')` and `u8::is_ascii_alphanumeric`",
    ),
    wrong(
        "5.2",
        "parent-sets",
        "sethostname in the parent, then clone: the child gets the name, and so does the caller's (the host's) namespace",
    ).because("sethostname ran in the caller's UTS namespace"),
    wrong(
        "5.2",
        "no-newuts",
        "sethostname in a child cloned without CLONE_NEWUTS: it renames the namespace it shares with the host",
    ).because("the child is in the caller's UTS namespace"),
    wrong(
        "5.2",
        "unshare-parent",
        "unshare(CLONE_NEWUTS) in the parent: the caller moves into the container's namespace and takes its name",
    ).because("your code moved the caller"),
    wrong(
        "5.2",
        "validate-in-child",
        "the name validated in the child: a child is started (and fails) for a bad name",
    ).because("the name was checked in the child"),
    wrong(
        "5.2",
        "no-validation",
        "no validation: the kernel takes `bad_name!` as a hostname, any bytes up to 64",
    ).because("the kernel takes any bytes as a hostname"),
    right(
        "5.2",
        "unshare-in-child",
        "a plain clone, then unshare(CLONE_NEWUTS) in the child before sethostname",
    ),
    right(
        "5.2",
        "proc-sys",
        "the child writes /proc/sys/kernel/hostname, which is per UTS namespace",
    ),
    wrong(
        "5.3",
        "sethostname",
        "sethostname instead of setdomainname: the hostname changes, the domain name stays `(none)`",
    ).because("sethostname(2) the hostname"),
    wrong(
        "5.3",
        "with-nul",
        "the length of the C string with its NUL: 65 for a 64-byte name, which the kernel refuses",
    ).because("the length without a NUL"),
    wrong(
        "5.3",
        "kernel-decides",
        "no check of its own: the kernel refuses 65 bytes, but takes an empty name",
    ).because("the kernel takes an empty one"),
    wrong(
        "5.3",
        "truncate",
        "a long name cut to 64 bytes instead of refused: the container gets a name nobody asked for",
    ).because("refused, not cut short"),
    wrong(
        "5.3",
        "own-namespace",
        "unshare(CLONE_NEWUTS) first: the caller leaves the container's namespace for a new one",
    ).because("moved the caller into a new UTS namespace"),
    right(
        "5.3",
        "proc-sys",
        "the name written to /proc/sys/kernel/domainname, which is per UTS namespace",
    ),
];

/// Exercise 5.1.
pub fn validate_hostname(name: &str) -> Result<(), String> {
    let labels = |max: usize, first_ok: fn(char) -> bool, ok: fn(char) -> bool| {
        if name.is_empty() || name.len() > max {
            return Err(format!("a hostname has 1 to {max} bytes"));
        }
        for label in name.split('.') {
            if label.is_empty()
                || label.len() > 63
                || !label.chars().all(|c| ok(c) || c == '-')
                || !label.chars().next().is_some_and(first_ok)
                || label.ends_with('-')
            {
                return Err(format!("bad label {label:?}"));
            }
        }
        Ok(())
    };
    let not_hyphen = |c: char| c != '-';
    match chosen("5.1").as_deref() {
        None => solutions::ch05_uts::validate_hostname(name),
        Some("max-63") => labels(63, not_hyphen, |c| c.is_ascii_alphanumeric()),
        Some("letter-first") => labels(
            64,
            |c| c.is_ascii_alphabetic(),
            |c| c.is_ascii_alphanumeric(),
        ),
        Some("lowercase-only") => labels(64, not_hyphen, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit()
        }),
        Some("unicode-alphanumeric") => labels(64, not_hyphen, char::is_alphanumeric),
        Some("whole-name-hyphens") => {
            if name.is_empty() || name.len() > 64 {
                return Err("a hostname has 1 to 64 bytes".into());
            }
            if name.starts_with('-') || name.ends_with('-') {
                return Err("a hostname cannot start or end with a hyphen".into());
            }
            for label in name.split('.') {
                let ok = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                if label.is_empty() || label.len() > 63 || !ok {
                    return Err(format!("bad label {label:?}"));
                }
            }
            Ok(())
        }
        Some("dns-253") => {
            if name.is_empty() || name.len() > 253 {
                return Err("length".into());
            }
            for label in name.split('.') {
                if label.is_empty() || label.len() > 63 {
                    return Err(format!("label {label:?}"));
                }
                if label.starts_with('-') || label.ends_with('-') {
                    return Err("hyphen".into());
                }
                if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err("char".into());
                }
            }
            Ok(())
        }
        Some("bytes") => {
            let bytes = name.as_bytes();
            if !(1..=64).contains(&bytes.len()) {
                return Err(format!("{} bytes: a hostname has 1 to 64", bytes.len()));
            }
            for label in bytes.split(|&b| b == b'.') {
                let good = (1..=63).contains(&label.len())
                    && label
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                    && label.first() != Some(&b'-')
                    && label.last() != Some(&b'-');
                if !good {
                    return Err(format!("bad label {:?}", String::from_utf8_lossy(label)));
                }
            }
            Ok(())
        }
        Some(other) => unknown("5.1", other),
    }
}

/// Exercise 5.2.
pub fn spawn_with_hostname(hostname: &str, argv: &[String]) -> Result<Pid> {
    let valid = || solutions::ch05_uts::validate_hostname(hostname).map_err(anyhow::Error::msg);
    match chosen("5.2").as_deref() {
        None => solutions::ch05_uts::spawn_with_hostname(hostname, argv),
        Some("parent-sets") => {
            valid()?;
            nix::unistd::sethostname(hostname)?;
            ch01_clone::clone_child(CloneFlags::CLONE_NEWUTS, || workshop::process::exec(argv))
        }
        Some("no-newuts") => {
            valid()?;
            ch01_clone::clone_child(CloneFlags::empty(), || {
                nix::unistd::sethostname(hostname)?;
                workshop::process::exec(argv)
            })
        }
        Some("unshare-parent") => {
            valid()?;
            nix::sched::unshare(CloneFlags::CLONE_NEWUTS)?;
            nix::unistd::sethostname(hostname)?;
            ch01_clone::clone_child(CloneFlags::empty(), || workshop::process::exec(argv))
        }
        Some("validate-in-child") => ch01_clone::clone_child(CloneFlags::CLONE_NEWUTS, || {
            valid()?;
            nix::unistd::sethostname(hostname)?;
            workshop::process::exec(argv)
        }),
        Some("no-validation") => ch01_clone::clone_child(CloneFlags::CLONE_NEWUTS, || {
            nix::unistd::sethostname(hostname)?;
            workshop::process::exec(argv)
        }),
        Some("unshare-in-child") => {
            valid()?;
            ch01_clone::clone_child(CloneFlags::empty(), || {
                nix::sched::unshare(CloneFlags::CLONE_NEWUTS)?;
                nix::unistd::sethostname(hostname)?;
                workshop::process::exec(argv)
            })
        }
        Some("proc-sys") => {
            valid()?;
            ch01_clone::clone_child(CloneFlags::CLONE_NEWUTS, || {
                std::fs::write("/proc/sys/kernel/hostname", hostname)
                    .context("failed to write /proc/sys/kernel/hostname")?;
                workshop::process::exec(argv)
            })
        }
        Some(other) => unknown("5.2", other),
    }
}

/// Exercise 5.3.
pub fn set_domainname(name: &str) -> Result<()> {
    let set = |bytes: &[u8]| -> Result<()> {
        // SAFETY: a pointer and a length within a live slice.
        let rc = unsafe { nix::libc::setdomainname(bytes.as_ptr().cast(), bytes.len()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("failed to setdomainname");
        }
        Ok(())
    };
    let check = || -> Result<()> {
        if name.is_empty() || name.len() > 64 {
            anyhow::bail!("a domain name has 1 to 64 bytes, not {}", name.len());
        }
        Ok(())
    };
    match chosen("5.3").as_deref() {
        None => solutions::ch05_uts::set_domainname(name),
        Some("sethostname") => {
            check()?;
            Ok(nix::unistd::sethostname(name)?)
        }
        Some("with-nul") => {
            check()?;
            let c = std::ffi::CString::new(name)?;
            set(c.as_bytes_with_nul())
        }
        Some("kernel-decides") => set(name.as_bytes()),
        Some("truncate") => {
            anyhow::ensure!(!name.is_empty(), "an empty domain name");
            set(&name.as_bytes()[..name.len().min(64)])
        }
        Some("own-namespace") => {
            check()?;
            nix::sched::unshare(CloneFlags::CLONE_NEWUTS)?;
            set(name.as_bytes())
        }
        Some("proc-sys") => {
            check()?;
            std::fs::write("/proc/sys/kernel/domainname", name)
                .context("failed to write /proc/sys/kernel/domainname")
        }
        Some(other) => unknown("5.3", other),
    }
}
