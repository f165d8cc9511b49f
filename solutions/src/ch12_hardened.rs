//! Chapter 12 exercises, solved.

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use nix::mount::{mount, MsFlags};
use std::path::Path;

/// Exercise 12.1: keep these capabilities, and lose every other, from all five sets.
pub fn drop_capabilities(keep: &[Capability]) -> Result<()> {
    let keep: CapsHashSet = keep.iter().copied().collect();
    // The bounding set first, while CAP_SETPCAP (which dropping needs) is ours.
    for cap in caps::all().difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap).with_context(|| {
            format!("failed to drop {cap} from the bounding set (PR_CAPBSET_DROP)")
        })?;
    }
    caps::clear(None, CapSet::Ambient).context("failed to clear the ambient set")?;
    // Effective before permitted: the kernel takes no effective cap that is not permitted.
    for set in [CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        let now =
            caps::read(None, set).with_context(|| format!("failed to read the {set:?} set"))?;
        let wanted: CapsHashSet = now.intersection(&keep).copied().collect();
        caps::set(None, set, &wanted)
            .with_context(|| format!("failed to capset() the {set:?} set"))?;
    }
    Ok(())
}

/// Exercise 12.2: hide a path as docker does, with a mount over it.
pub fn mask_path(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // this kernel has no such path: nothing to hide
    };
    if meta.is_dir() {
        // Empty and read-only: nothing to read, nothing to write.
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0"),
        )
        .with_context(|| format!("failed to mount a read-only tmpfs on {}", path.display()))
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("failed to bind /dev/null over {}", path.display()))
    }
}
