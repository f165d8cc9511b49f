//! Capabilities: root's power, cut into pieces. A container keeps the few
//! a program running as root inside may need (docker's default set, less
//! CAP_MKNOD) and loses the rest, from all five sets.

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};

// ANCHOR: default_set
/// What a container's root keeps: docker's default set, but CAP_MKNOD.
/// Docker keeps CAP_MKNOD and relies on its device cgroup to refuse what
/// the nodes lead to; this course has no device cgroup, so the container
/// may make no device node at all.
pub const KEPT: [Capability; 13] = [
    Capability::CAP_CHOWN,            // chown files in the container
    Capability::CAP_DAC_OVERRIDE,     // read and write files whatever their mode
    Capability::CAP_FOWNER,           // chmod others' files
    Capability::CAP_FSETID,           // keep set-user-ID bits on a write
    Capability::CAP_KILL,             // signal processes of other users (in the container)
    Capability::CAP_SETGID,           // become another group (an image's User)
    Capability::CAP_SETUID,           // become another user
    Capability::CAP_SETPCAP,          // drop capabilities from the bounding set
    Capability::CAP_NET_BIND_SERVICE, // listen on ports below 1024
    Capability::CAP_NET_RAW,          // ping (raw sockets)
    Capability::CAP_SYS_CHROOT,       // chroot
    Capability::CAP_SETFCAP,          // set file capabilities
    Capability::CAP_AUDIT_WRITE,      // write to the audit log (login, sshd)
];
// ANCHOR_END: default_set

/// [`KEPT`], as a set.
pub fn kept() -> CapsHashSet {
    KEPT.into_iter().collect()
}

// ANCHOR: drop_capabilities
/// Keep [`KEPT`] and nothing else. The bounding set first (what any later
/// exec could ever get back: dropping from it needs CAP_SETPCAP, which we
/// still have); then the ambient set (what survives an exec as a normal
/// user); then inheritable, effective and permitted, in that order: the
/// kernel takes no effective capability that is not permitted, nor an
/// inheritable one that is neither inheritable nor permitted already.
pub fn drop_capabilities() -> Result<()> {
    let kept = kept();
    for cap in caps::all() {
        if !kept.contains(&cap) {
            // PR_CAPBSET_DROP; EINVAL is a capability this kernel does not have.
            caps::drop(None, CapSet::Bounding, cap)
                .with_context(|| format!("failed to drop {cap} from the bounding set"))?;
        }
    }
    caps::clear(None, CapSet::Ambient).context("failed to clear the ambient set")?;
    for set in [CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        let now =
            caps::read(None, set).with_context(|| format!("failed to read the {set:?} set"))?;
        let wanted: CapsHashSet = now.intersection(&kept).copied().collect();
        caps::set(None, set, &wanted)
            .with_context(|| format!("failed to capset() the {set:?} set"))?;
    }
    Ok(())
}
// ANCHOR_END: drop_capabilities

/// A capability mask (`CapEff` of /proc/PID/status) as names.
pub fn names(mask: u64) -> Vec<String> {
    caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| c.to_string().to_lowercase())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The mask of [`KEPT`].
pub fn kept_mask() -> u64 {
    KEPT.iter().map(|c| c.bitmask()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_dockers_set_but_mknod_and_never_sys_admin() {
        let kept = kept();
        assert_eq!(kept.len(), 13);
        for never in [
            Capability::CAP_SYS_ADMIN,
            Capability::CAP_MKNOD,
            Capability::CAP_DAC_READ_SEARCH,
            Capability::CAP_SYS_MODULE,
            Capability::CAP_SYS_PTRACE,
            Capability::CAP_NET_ADMIN,
            Capability::CAP_SYS_RAWIO,
        ] {
            assert!(!kept.contains(&never), "{never}");
        }
        // docker's CapEff for a root container is 00000000a80425fb; ours lacks MKNOD (bit 27).
        assert_eq!(kept_mask(), 0xa80425fb & !(1 << 27));
        assert_eq!(names(1 << 21), ["cap_sys_admin"]);
    }
}
