//! Chapter 3: a mount namespace, a private mount tree, and a fresh /proc.
//!
//! A new mount namespace starts as a copy of the host's mount table. Two steps
//! make it the container's own: first make every mount in it private, so that
//! nothing mounted inside propagates back to the host; then mount a new proc
//! filesystem on /proc, which shows the processes of the container's PID
//! namespace only.

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use workshop::error::HintExt;

// ANCHOR: private
/// `mount --make-rprivate /`: cut every mount in this namespace off from its
/// peers. Without it, on a host where / is shared (systemd makes it so), the
/// copies in a new mount namespace stay peers of the host's mounts, and a
/// mount made inside appears on the host too.
pub fn make_mounts_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("failed to make / private: mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE)")
    .hint("this needs CAP_SYS_ADMIN in a mount namespace of our own (clone with CLONE_NEWNS)")
}
// ANCHOR_END: private

// ANCHOR: proc
/// `mount -t proc proc /proc`: a proc filesystem for the PID namespace this
/// process is in. Its /proc/1 is the container's PID 1, and `ps` sees only
/// the container's processes.
pub fn mount_proc() -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>)
        .context("failed to mount proc on /proc")
        .hint("mount proc from a process inside the new PID and mount namespaces (the clone child), not from the host")
}
// ANCHOR_END: proc

/// The propagation of the mount at `mount_point`, from `/proc/self/mountinfo`:
/// `shared:1`, `master:3`, or `private` when it has no optional fields.
pub fn propagation_of(mountinfo: &str, mount_point: &str) -> Option<String> {
    // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    // The last line for a mount point wins: it is the mount on top.
    mountinfo.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(4) != Some(&mount_point) {
            return None;
        }
        let dash = fields.iter().position(|f| *f == "-")?;
        let optional = &fields[6..dash];
        Some(if optional.is_empty() {
            "private".to_string()
        } else {
            optional.join(" ")
        })
    })
}

/// Propagation of `/` in this process's mount namespace.
pub fn root_propagation() -> Result<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context("failed to read /proc/self/mountinfo")?;
    propagation_of(&mountinfo, "/").context("no mount for / in /proc/self/mountinfo")
}

/// The host's mount table (`/proc/self/mountinfo`, what a demo reads first),
/// to compare at the end with [`say_host_mounts_unchanged`].
pub fn host_mounts() -> Result<String> {
    std::fs::read_to_string("/proc/self/mountinfo").context("failed to read /proc/self/mountinfo")
}

/// A demo's last step: the host's mount table is byte for byte what it was
/// (`before`, from [`host_mounts`]) when the demo began.
pub fn say_host_mounts_unchanged(before: &str, say: &workshop::Narrator) -> Result<()> {
    say.step("the host is as it was")?;
    let now = host_mounts()?;
    if now == before {
        say.ok(&format!(
            "the host's /proc/self/mountinfo is byte-identical ({} mounts)",
            now.lines().count()
        ));
    } else {
        say.warn(
            "the host's mount table changed during the demo (another program mounted something?)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime shared:12 - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 0:35 / /tmp rw master:7 - tmpfs tmpfs rw
";

    #[test]
    fn reads_propagation() {
        assert_eq!(propagation_of(MOUNTINFO, "/").as_deref(), Some("shared:1"));
        assert_eq!(
            propagation_of(MOUNTINFO, "/tmp").as_deref(),
            Some("master:7")
        );
        let private = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
        assert_eq!(propagation_of(private, "/").as_deref(), Some("private"));
        assert_eq!(propagation_of(MOUNTINFO, "/nope"), None);
    }
}
