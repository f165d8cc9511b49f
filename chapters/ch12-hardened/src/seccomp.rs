//! A seccomp filter: a small BPF program the kernel runs on every system
//! call the container makes, before the call itself, and which may refuse
//! it. In the spirit of docker's default profile: the calls that reach
//! into what the kernel does not put in a namespace (its modules, its
//! keyrings, its clock, its log, reboot, kexec), and the ones that undo
//! the container (mounts, new namespaces, file handles), return EPERM;
//! every other call goes through.
//!
//! The BPF is compiled by `seccompiler` (Firecracker's, pure Rust): we say
//! which calls, with which arguments, and which answer.

use anyhow::{anyhow, Context, Result};
use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

// ANCHOR: refused
/// The calls refused outright with EPERM, each with the reason.
pub const REFUSED: &[(i64, &str, &str)] = &[
    // Undo the container: its mounts, its root, its namespaces.
    (
        libc::SYS_mount,
        "mount",
        "mount over the container's masks, or a host filesystem",
    ),
    (
        libc::SYS_umount2,
        "umount2",
        "unmount a mask and see what it hid",
    ),
    (libc::SYS_pivot_root, "pivot_root", "change the root again"),
    (
        libc::SYS_open_tree,
        "open_tree",
        "the new mount API, a second door to the same",
    ),
    (libc::SYS_move_mount, "move_mount", "the new mount API"),
    (libc::SYS_fsopen, "fsopen", "the new mount API"),
    (libc::SYS_fsmount, "fsmount", "the new mount API"),
    (libc::SYS_fsconfig, "fsconfig", "the new mount API"),
    (libc::SYS_fspick, "fspick", "the new mount API"),
    (
        libc::SYS_mount_setattr,
        "mount_setattr",
        "make a read-only mount writable",
    ),
    (
        libc::SYS_unshare,
        "unshare",
        "new namespaces: a user namespace gives back every capability",
    ),
    (libc::SYS_setns, "setns", "join another namespace"),
    // Files by handle: no path, so no root or mount namespace stops it (shocker).
    (
        libc::SYS_open_by_handle_at,
        "open_by_handle_at",
        "open a host file by its inode number",
    ),
    // What the kernel keeps once, for everyone.
    (libc::SYS_init_module, "init_module", "load a kernel module"),
    (
        libc::SYS_finit_module,
        "finit_module",
        "load a kernel module",
    ),
    (
        libc::SYS_delete_module,
        "delete_module",
        "unload a kernel module",
    ),
    (libc::SYS_kexec_load, "kexec_load", "boot another kernel"),
    (
        libc::SYS_kexec_file_load,
        "kexec_file_load",
        "boot another kernel",
    ),
    (libc::SYS_reboot, "reboot", "reboot the host"),
    (
        libc::SYS_keyctl,
        "keyctl",
        "the kernel's keyrings are not namespaced",
    ),
    (
        libc::SYS_add_key,
        "add_key",
        "the kernel's keyrings are not namespaced",
    ),
    (
        libc::SYS_request_key,
        "request_key",
        "the kernel's keyrings are not namespaced",
    ),
    (
        libc::SYS_settimeofday,
        "settimeofday",
        "the clock is the host's",
    ),
    (
        libc::SYS_clock_settime,
        "clock_settime",
        "the clock is the host's",
    ),
    (
        libc::SYS_clock_adjtime,
        "clock_adjtime",
        "the clock is the host's",
    ),
    (libc::SYS_adjtimex, "adjtimex", "the clock is the host's"),
    (libc::SYS_syslog, "syslog", "the kernel's log is the host's"),
    (libc::SYS_swapon, "swapon", "the host's swap"),
    (libc::SYS_swapoff, "swapoff", "the host's swap"),
    (libc::SYS_acct, "acct", "process accounting is the host's"),
    (libc::SYS_quotactl, "quotactl", "disk quotas are the host's"),
    (libc::SYS_bpf, "bpf", "BPF programs in the kernel"),
    (
        libc::SYS_perf_event_open,
        "perf_event_open",
        "watch the host's processes and kernel",
    ),
    (
        libc::SYS_userfaultfd,
        "userfaultfd",
        "a tool of many kernel exploits",
    ),
    (
        libc::SYS_io_uring_setup,
        "io_uring_setup",
        "a second way into the kernel, past this filter",
    ),
    (libc::SYS_vhangup, "vhangup", "hang up the host's terminal"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_iopl, "iopl", "raw I/O ports"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_ioperm, "ioperm", "raw I/O ports"),
];
// ANCHOR_END: refused

/// The namespaces a `clone()` may not ask for (its first argument, the
/// flags): unshare() is refused above, and this is the other way in.
pub const NAMESPACE_FLAGS: &[(u64, &str)] = &[
    (libc::CLONE_NEWNS as u64, "CLONE_NEWNS"),
    (libc::CLONE_NEWUTS as u64, "CLONE_NEWUTS"),
    (libc::CLONE_NEWIPC as u64, "CLONE_NEWIPC"),
    (libc::CLONE_NEWUSER as u64, "CLONE_NEWUSER"),
    (libc::CLONE_NEWPID as u64, "CLONE_NEWPID"),
    (libc::CLONE_NEWNET as u64, "CLONE_NEWNET"),
    (libc::CLONE_NEWCGROUP as u64, "CLONE_NEWCGROUP"),
];

fn arch() -> Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| anyhow!("no seccomp filter for this architecture: {e}"))
}

// ANCHOR: filters
/// The filters: one that answers EPERM to [`REFUSED`] and to a clone()
/// with a namespace flag, and one that answers ENOSYS to clone3(), whose
/// flags sit in memory, where a seccomp filter cannot read them: "no such
/// call" makes glibc (and chapter 7's own clone3) fall back to clone(),
/// whose flags the first filter sees. Everything else: allowed.
pub fn filters() -> Result<Vec<BpfProgram>> {
    let mut refused: BTreeMap<i64, Vec<SeccompRule>> =
        REFUSED.iter().map(|(nr, _, _)| (*nr, Vec::new())).collect(); // no rule: always
    let with_namespace_flag = NAMESPACE_FLAGS
        .iter()
        .map(|(flag, _)| {
            // (flags & FLAG) == FLAG; the rules of one call are or'ed.
            let condition = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::MaskedEq(*flag),
                *flag,
            )?;
            SeccompRule::new(vec![condition])
        })
        .collect::<Result<Vec<_>, _>>()?;
    refused.insert(libc::SYS_clone, with_namespace_flag);
    let eperm = SeccompFilter::new(
        refused,
        SeccompAction::Allow,                     // what does not match
        SeccompAction::Errno(libc::EPERM as u32), // what does
        arch()?,
    )?;
    let no_clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch()?,
    )?;
    Ok(vec![eperm.try_into()?, no_clone3.try_into()?])
}
// ANCHOR_END: filters

// ANCHOR: load
/// Load the filters into this process, for good: every child and every
/// exec keeps them. The kernel takes a filter from a process without
/// CAP_SYS_ADMIN only once it has given up gaining privileges
/// (no_new_privs), so that a setuid program cannot be run under a filter
/// that makes it misbehave.
pub fn load() -> Result<()> {
    nix::sys::prctl::set_no_new_privs().context("failed to prctl(PR_SET_NO_NEW_PRIVS, 1)")?;
    for filter in filters()? {
        seccompiler::apply_filter(&filter)
            .context("failed to load a seccomp filter (seccomp(SECCOMP_SET_MODE_FILTER))")?;
    }
    Ok(())
}
// ANCHOR_END: load

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_and_refuse_what_the_list_says() {
        let filters = filters().unwrap();
        assert_eq!(filters.len(), 2);
        assert!(
            filters[0].len() > REFUSED.len(),
            "at least one instruction per refused call"
        );
        let names: Vec<&str> = REFUSED.iter().map(|(_, n, _)| *n).collect();
        for must in [
            "mount",
            "open_by_handle_at",
            "unshare",
            "keyctl",
            "init_module",
            "kexec_load",
        ] {
            assert!(names.contains(&must), "{must}");
        }
        let mut numbers: Vec<i64> = REFUSED.iter().map(|(nr, _, _)| *nr).collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), REFUSED.len(), "a call listed twice");
    }
}
