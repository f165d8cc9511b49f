//! Chapter 12 exercises: what stands between a container's root and the host.
//!
//! Check your work with `cargo test -p exercises ch12`. Each check runs its
//! probe, a throwaway process: its capabilities are dropped there, and its
//! mounts are made in a mount namespace of its own, private, gone with it.

use anyhow::Result;
use caps::Capability;
use std::path::Path;

/// Exercise 12.1: keep these capabilities, and lose every other, from all five sets.
///
/// Root's power is cut in pieces, and a process holds them in five sets
/// (`grep Cap /proc/self/status` shows them as masks):
///
/// - the bounding set: the most any later exec could ever give back. Drop
///   every capability not in `keep` from it FIRST: dropping needs
///   CAP_SETPCAP in the effective set, which you are about to lose;
/// - the ambient set: what survives an exec as a normal user: clear it all;
/// - then inheritable, effective and permitted, each cut to what it holds
///   that is in `keep`, in that order: the kernel refuses a permitted set
///   without a capability the effective set still holds (EPERM).
///
/// Forget the bounding set, and root gets everything back at its next exec.
///
/// The check, as root in its probe, calls your function with a few
/// capabilities to keep (CAP_SETPCAP not among them), then reads CapBnd,
/// CapEff, CapPrm, CapInh and CapAmb of the probe, and of a program it
/// runs after (`cat /proc/self/status`): the kept ones, nothing more.
///
/// Hints:
/// - the `caps` crate: `caps::all()` is every capability;
///   `caps::drop(None, CapSet::Bounding, cap)` is PR_CAPBSET_DROP;
///   `caps::clear(None, CapSet::Ambient)`.
/// - `caps::read(None, set)` gives a `CapsHashSet`; keep its intersection
///   with `keep` and write it back with `caps::set(None, set, &wanted)`.
pub fn drop_capabilities(keep: &[Capability]) -> Result<()> {
    // TODO: bounding (drop each not kept), ambient (clear), then inheritable, effective, permitted.
    todo!("exercise 12.1: drop every capability not in keep, bounding set first")
}

/// Exercise 12.2: hide a path as docker does, with a mount over it.
///
/// /proc is the kernel's window on the whole machine, and much of it is
/// not namespaced. Docker hides what would tell the host's secrets
/// (/proc/kcore, /proc/keys, /proc/timer_list, /sys/firmware...):
///
/// - a file: bind-mount `/dev/null` over it: reads are empty;
/// - a directory: mount an empty tmpfs over it, READ-ONLY (`/dev/null` is no
///   directory; the kernel refuses to bind it over one, ENOTDIR), so that
///   nothing can be written there either;
/// - a path that does not exist (not every kernel has every file): do
///   nothing, and return Ok.
///
/// The check calls it, in a private mount namespace of its probe, on files
/// and directories of its own and on paths of /proc, and asks the kernel:
/// is a file now empty? a directory empty, and a write in it EROFS? the
/// paths beside them untouched?
///
/// Hints:
/// - `std::fs::metadata(path)`: `Err` is a missing path; `.is_dir()`.
/// - `nix::mount::mount(Some("/dev/null"), path, None::<&str>,
///   MsFlags::MS_BIND, None::<&str>)`; and `mount(Some("tmpfs"), path,
///   Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0"))`.
pub fn mask_path(path: &Path) -> Result<()> {
    // TODO: missing: Ok; a directory: read-only tmpfs; a file: /dev/null bound over it.
    todo!("exercise 12.2: mask the path with /dev/null or a read-only tmpfs")
}
