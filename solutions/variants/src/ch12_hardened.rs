//! Chapter 12: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use nix::mount::{mount, MsFlags};
use std::path::Path;

pub const VARIANTS: &[Variant] = &[
    wrong(
        "12.1",
        "no-bounding",
        "the bounding set left whole: the process looks tame, and root gets every capability back at its next exec",
    ).because("the bounding set"),
    wrong(
        "12.1",
        "bounding-last",
        "inheritable, effective, permitted, then the bounding set: dropping from it needs CAP_SETPCAP, gone by then (EPERM)",
    ).because("bounding set first"),
    wrong(
        "12.1",
        "permitted-first",
        "permitted before effective: the kernel refuses a permitted set without a capability still effective (EPERM)",
    ).because("effective before permitted"),
    wrong(
        "12.1",
        "no-ambient",
        "the ambient set left as it was: a kept capability raised there survives every exec, even as a normal user",
    ).because("the ambient set"),
    wrong(
        "12.1",
        "no-inheritable",
        "the inheritable set left as it was: root's next exec takes all of it into its permitted set",
    ).because("the inheritable set"),
    wrong(
        "12.1",
        "effective-only",
        "only the effective set cut: the permitted set keeps everything, and any program may raise it back",
    ).because("the permitted set"),
    wrong(
        "12.1",
        "nothing-kept",
        "every set cleared, keep ignored: a container's root that cannot chown nor kill",
    ).because("to be kept"),
    right(
        "12.1",
        "prctl",
        "prctl(PR_CAPBSET_DROP) and PR_CAP_AMBIENT_CLEAR_ALL by hand, then the caps crate",
    ),
    right(
        "12.1",
        "inheritable-last",
        "effective, permitted, then inheritable: the inheritable set may shrink at any time",
    ),
    wrong(
        "12.2",
        "rw-tmpfs",
        "a tmpfs over a directory, but writable: the container may fill it, and hide things there",
    ).because("to be read-only"),
    wrong(
        "12.2",
        "null-over-dir",
        "/dev/null bound over every path: the kernel refuses it over a directory (ENOTDIR)",
    ).because("/dev/null is no directory"),
    wrong(
        "12.2",
        "tmpfs-over-file",
        "a tmpfs over every path: the kernel refuses it over a file (ENOTDIR)",
    ).because("binding /dev/null over it"),
    wrong(
        "12.2",
        "missing-error",
        "an error for a path that does not exist: a kernel without /proc/timer_stats stops the container",
    ).because("does not exist is skipped"),
    wrong(
        "12.2",
        "truncate",
        "empties the file itself (truncate) instead of a mount over it: the host's file is changed",
    ).because("itself was changed"),
    right(
        "12.2",
        "chapter",
        "the chapter's ch12_hardened::paths::mask",
    ),
    right(
        "12.2",
        "remount-ro",
        "a writable tmpfs, then a remount of it MS_REMOUNT | MS_RDONLY",
    ),
];

fn cut(set: CapSet, keep: &CapsHashSet) -> Result<()> {
    let now = caps::read(None, set).with_context(|| format!("read {set:?}"))?;
    let wanted: CapsHashSet = now.intersection(keep).copied().collect();
    caps::set(None, set, &wanted).with_context(|| format!("failed to capset() the {set:?} set"))
}

fn drop_bounding(keep: &CapsHashSet) -> Result<()> {
    for cap in caps::all().difference(keep) {
        caps::drop(None, CapSet::Bounding, *cap)
            .with_context(|| format!("failed to drop {cap} from the Bounding set"))?;
    }
    Ok(())
}

/// Exercise 12.1.
pub fn drop_capabilities(keep: &[Capability]) -> Result<()> {
    let Some(choice) = chosen("12.1") else {
        return solutions::ch12_hardened::drop_capabilities(keep);
    };
    let keep: CapsHashSet = keep.iter().copied().collect();
    let ambient = || caps::clear(None, CapSet::Ambient).context("clear the ambient set");
    use CapSet::{Effective, Inheritable, Permitted};
    match choice.as_str() {
        "no-bounding" => {
            ambient()?;
            [Inheritable, Effective, Permitted]
                .into_iter()
                .try_for_each(|s| cut(s, &keep))
        }
        "bounding-last" => {
            ambient()?;
            [Inheritable, Effective, Permitted]
                .into_iter()
                .try_for_each(|s| cut(s, &keep))?;
            drop_bounding(&keep)
        }
        "permitted-first" => {
            drop_bounding(&keep)?;
            ambient()?;
            [Inheritable, Permitted, Effective]
                .into_iter()
                .try_for_each(|s| cut(s, &keep))
        }
        "no-ambient" => {
            drop_bounding(&keep)?;
            [Inheritable, Effective, Permitted]
                .into_iter()
                .try_for_each(|s| cut(s, &keep))
        }
        "no-inheritable" => {
            drop_bounding(&keep)?;
            ambient()?;
            [Effective, Permitted]
                .into_iter()
                .try_for_each(|s| cut(s, &keep))
        }
        "effective-only" => {
            drop_bounding(&keep)?;
            ambient()?;
            [Inheritable, Effective]
                .into_iter()
                .try_for_each(|s| cut(s, &keep))
        }
        "nothing-kept" => {
            let none = CapsHashSet::new();
            drop_bounding(&none)?;
            ambient()?;
            [Inheritable, Effective, Permitted]
                .into_iter()
                .try_for_each(|s| cut(s, &none))
        }
        "prctl" => {
            use nix::libc;
            for cap in caps::all().difference(&keep) {
                // SAFETY: prctl with integer arguments only.
                if unsafe {
                    libc::prctl(libc::PR_CAPBSET_DROP, cap.index() as libc::c_ulong, 0, 0, 0)
                } != 0
                {
                    return Err(std::io::Error::last_os_error())
                        .with_context(|| format!("PR_CAPBSET_DROP {cap}"));
                }
            }
            // SAFETY: as above.
            let cleared = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                    0,
                    0,
                    0,
                )
            };
            if cleared != 0 {
                return Err(std::io::Error::last_os_error()).context("PR_CAP_AMBIENT_CLEAR_ALL");
            }
            [Inheritable, Effective, Permitted]
                .into_iter()
                .try_for_each(|s| cut(s, &keep))
        }
        "inheritable-last" => {
            drop_bounding(&keep)?;
            ambient()?;
            [Effective, Permitted, Inheritable]
                .into_iter()
                .try_for_each(|s| cut(s, &keep))
        }
        other => unknown("12.1", other),
    }
}

fn tmpfs(path: &Path, flags: MsFlags) -> Result<()> {
    mount(Some("tmpfs"), path, Some("tmpfs"), flags, Some("size=0"))
        .with_context(|| format!("failed to mount a tmpfs on {}", path.display()))
}

fn null_over(path: &Path) -> Result<()> {
    mount(
        Some("/dev/null"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("failed to bind /dev/null over {}", path.display()))
}

/// Exercise 12.2.
pub fn mask_path(path: &Path) -> Result<()> {
    let Some(choice) = chosen("12.2") else {
        return solutions::ch12_hardened::mask_path(path);
    };
    let meta = std::fs::metadata(path);
    if choice == "missing-error" {
        meta.with_context(|| format!("failed to look at {}", path.display()))?;
        return solutions::ch12_hardened::mask_path(path);
    }
    let Ok(meta) = meta else {
        return Ok(());
    };
    match (choice.as_str(), meta.is_dir()) {
        ("rw-tmpfs", true) => tmpfs(path, MsFlags::empty()),
        ("null-over-dir", _) => null_over(path),
        ("tmpfs-over-file", _) => tmpfs(path, MsFlags::MS_RDONLY),
        ("truncate", false) => {
            std::fs::write(path, "").with_context(|| format!("failed to empty {}", path.display()))
        }
        ("rw-tmpfs" | "truncate", _) => solutions::ch12_hardened::mask_path(path),
        ("chapter", _) => ch12_hardened::paths::mask(&path.to_string_lossy()),
        ("remount-ro", true) => {
            tmpfs(path, MsFlags::empty())?;
            mount(
                None::<&str>,
                path,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                Some("size=0"),
            )
            .with_context(|| format!("failed to remount {} read-only", path.display()))
        }
        ("remount-ro", false) => null_over(path),
        (other, _) => unknown("12.2", other),
    }
}
