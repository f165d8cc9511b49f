//! Chapter 7: cgroups. Namespaces decide what a container can see; control
//! groups decide how much it can use. A cgroup is a directory in a special
//! filesystem: its files hold the limits, writing a PID into `cgroup.procs`
//! puts a process in it, and the kernel counts and enforces from then on.
//!
//! The cgroup handle itself (v2 and v1, created, measured, removed) and the
//! limits, each a type that checks its option, are in `cgroup`; this
//! chapter's lib holds the clone3() that starts a container in its cgroup,
//! `start_limited` (the cgroup, then the container in it: what a later
//! chapter calls to start its own container with every limit of this one),
//! and the three workloads its demo runs inside the container.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use std::convert::Infallible;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::str::FromStr;
use std::time::{Duration, Instant};
use workshop::error::hinted;

pub mod cgroup;

use cgroup::{Cgroup, Limits, CGROUP_PROCS};
use ch01_clone::clone_child;
use std::os::fd::AsFd;

/// clone3()'s argument, `struct clone_args` of <linux/sched.h>: every field
/// is 64 bits wide, on every architecture.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

// The kernel knows the struct's version by its size: 88 bytes has `cgroup`.
const _: () = assert!(std::mem::size_of::<CloneArgs>() == 88);

/// <linux/sched.h>: start the child in the cgroup `clone_args.cgroup` is open on (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

// ANCHOR: clone_into_cgroup
/// Like ch01's `clone_child`, with clone3() and CLONE_INTO_CGROUP: the child
/// is born in the cgroup whose directory `cgroup` is open on (cgroup v2), so
/// nothing ever has to move it there. Returns the child's PID. Like
/// `clone_child`, call it from a process with one thread.
pub fn clone_into_cgroup(
    flags: CloneFlags,
    cgroup: BorrowedFd,
    body: impl FnOnce() -> Result<Infallible>,
) -> Result<Pid> {
    workshop::process::hold_lifeline()?; // as clone_child does: see in_child
    let args = CloneArgs {
        // `as u32` first: CloneFlags are a C int, and a flag in its top bit
        // must not spread into the upper 32 bits, where CLONE_INTO_CGROUP is.
        flags: flags.bits() as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: Signal::SIGCHLD as u64, // clone()'s flags carried it; clone3 has a field
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default() // no stack: the child runs on its copy of ours, as after fork()
    };
    // SAFETY: without CLONE_VM the child gets its own copy of this process's
    // memory, exactly as after fork(); this process has one thread.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match pid {
        0 => {
            let code = workshop::process::in_child(body);
            // SAFETY: ends the child here, as clone()'s callback returning does.
            unsafe { libc::_exit(code as i32) }
        }
        -1 => match Errno::last() {
            // No clone3 (before Linux 5.3, or refused by a seccomp filter, as
            // docker's default one does), or no CLONE_INTO_CGROUP (before
            // 5.7): start it as ch01 does, and its first act is to move itself in.
            Errno::ENOSYS | Errno::E2BIG => {
                let procs = openat(
                    cgroup,
                    CGROUP_PROCS,
                    OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .with_context(|| format!("failed to open the cgroup's {CGROUP_PROCS}"))?;
                ch01_clone::clone_child(flags, || {
                    nix::unistd::write(&procs, b"0").with_context(|| {
                        format!("failed to write 0 to the cgroup's {CGROUP_PROCS}")
                    })?;
                    body()
                })
            }
            errno => Err(clone3_error(flags, errno)),
        },
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}
// ANCHOR_END: clone_into_cgroup

fn clone3_error(flags: CloneFlags, errno: Errno) -> anyhow::Error {
    let what = format!("failed to clone3() into the container's cgroup: {errno}");
    match errno {
        Errno::EBUSY => hinted(
            what,
            "the cgroup enables controllers for cgroups beneath it, so it may hold no process of its own (cgroup v2's \"no internal processes\" rule)",
        ),
        Errno::EACCES => hinted(
            what,
            format!("no write access to the cgroup's {CGROUP_PROCS}: run as root, or in a cgroup delegated to you"),
        ),
        _ => ch01_clone::clone_error(flags, errno).context("clone3() with CLONE_INTO_CGROUP"),
    }
}

/// Chapter 7's options, `--cpus`, `--pids-limit` and `--memory`, as a clap
/// group: a later chapter flattens it into its own command line to keep them.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitOptions {
    /// CPU share, in CPUs: 0.2 is 20% of one CPU (quota 20000 per period 100000)
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<cgroup::CpuQuota>,

    /// The most tasks (processes and threads) the container may have at once
    #[arg(long, value_name = "N", value_parser = cgroup::parse_pids_limit)]
    pub pids_limit: Option<u64>,

    /// The most memory the container may use, e.g. 64M or 1G (no swap beyond it)
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<cgroup::MemoryLimit>,
}

impl LimitOptions {
    /// The limits asked for, as [`start_limited`] takes them.
    pub fn limits(&self) -> Limits {
        Limits {
            cpu: self.cpus,
            pids: self.pids_limit,
            memory: self.memory,
        }
    }
}

// ANCHOR: start_limited
/// The cgroup first (nothing else exists if a controller is missing), then
/// the container, in the cgroup before it runs anything: every process it
/// starts is born in the cgroup too. No limits asked for: no cgroup.
/// `flags` are the namespaces of the chapters so far (a later chapter starts
/// its container with this, and adds its own step).
pub fn start_limited(
    flags: CloneFlags,
    limits: &Limits,
    work: impl FnOnce() -> Result<Infallible>,
) -> Result<(Option<Cgroup>, Pid)> {
    if *limits == Limits::default() {
        return Ok((None, clone_child(flags, work)?));
    }
    let cgroup = Cgroup::create(limits)?;
    let pid = match &cgroup {
        // v2: the container is born in its cgroup.
        Cgroup::V2(unified) => clone_into_cgroup(flags, unified.open_dir()?.as_fd(), work),
        // v1: the container's first act is to move itself in.
        Cgroup::V1(per_controller) => {
            let tasks = per_controller.open_tasks()?;
            clone_child(flags, || {
                tasks.move_self_in()?;
                work()
            })
        }
    }
    .with_context(|| {
        format!(
            "failed to start the container in {}",
            cgroup.paths()[0].display()
        )
    })?;
    Ok((Some(cgroup), pid))
}
// ANCHOR_END: start_limited

/// After the container ended with `exit`: if the OOM killer ended it (a
/// SIGKILL, and its cgroup counted an OOM kill), say so, naming the
/// `--memory` it was given. A later chapter's run says it the same way.
pub fn warn_if_oom_killed(
    cgroup: Option<&Cgroup>,
    exit: workshop::process::Exit,
    memory: Option<&cgroup::MemoryLimit>,
    say: &workshop::Narrator,
) {
    let oom_kills = cgroup.map_or(0, |c| c.oom_kills().unwrap_or(0));
    warn_of_oom(oom_kills, exit, memory, say);
}

/// [`warn_if_oom_killed`], given how many OOM kills the container's cgroup
/// counted (chapter 11's delegated cgroup counts its own).
pub fn warn_of_oom(
    oom_kills: u64,
    exit: workshop::process::Exit,
    memory: Option<&cgroup::MemoryLimit>,
    say: &workshop::Narrator,
) {
    if let (workshop::process::Exit::Signal(Signal::SIGKILL), true, Some(memory)) =
        (exit, oom_kills > 0, memory)
    {
        say.warn(&format!(
            "the container was killed by the OOM killer: it needed more than --memory {memory}"
        ));
    }
}

// ANCHOR: burn
/// A CPU burner: spin for `wall` of wall-clock time. Alone on a CPU it would
/// use all of `wall`; under a quota it gets only its share.
pub fn burn_cpu(wall: Duration) {
    let start = Instant::now();
    let mut x: u64 = 0;
    while start.elapsed() < wall {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
// ANCHOR_END: burn

/// What the bounded fork bomb saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bomb {
    pub forked: usize,
    pub refused: usize,
    pub first_refusal: Option<Errno>,
}

/// `19 forked, 181 refused with EAGAIN`: what the bomb prints in its
/// container for the tool to read back.
impl std::fmt::Display for Bomb {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} forked, {} refused", self.forked, self.refused)?;
        match self.first_refusal {
            Some(errno) => write!(f, " with {}", errno_name(errno)),
            None => Ok(()),
        }
    }
}

impl FromStr for Bomb {
    type Err = String;

    fn from_str(text: &str) -> Result<Bomb, String> {
        let bad = || {
            format!("{text:?} is not a bomb's report like \"19 forked, 181 refused with EAGAIN\"")
        };
        let (forked, rest) = text.trim().split_once(" forked, ").ok_or_else(bad)?;
        let (refused, first_refusal) = match rest.split_once(" refused with ") {
            Some((refused, name)) => (refused, Some(errno_named(name).ok_or_else(bad)?)),
            None => (rest.strip_suffix(" refused").ok_or_else(bad)?, None),
        };
        Ok(Bomb {
            forked: forked.parse().map_err(|_| bad())?,
            refused: refused.parse().map_err(|_| bad())?,
            first_refusal,
        })
    }
}

/// An errno's name, `EAGAIN`: nix names it in its Debug (its Display adds the
/// description).
pub fn errno_name(errno: Errno) -> String {
    format!("{errno:?}")
}

/// The errno named `name` (`EAGAIN`), among Linux's (all below 4096).
fn errno_named(name: &str) -> Option<Errno> {
    (1..4096)
        .map(Errno::from_raw)
        .find(|&errno| errno != Errno::UnknownErrno && errno_name(errno) == name)
}

// ANCHOR: bomb
/// A bounded fork bomb: try `attempts` forks; each child holds its task slot
/// for `hold`, then exits, and the bomb waits for them all. Under pids.max
/// the kernel refuses forks past the limit with EAGAIN. Bounded in count and
/// in time, so it ends by itself.
pub fn fork_bomb(attempts: usize, hold: Duration) -> Bomb {
    let mut bomb = Bomb {
        forked: 0,
        refused: 0,
        first_refusal: None,
    };
    for _ in 0..attempts {
        // SAFETY: the child only sleeps and _exits: no allocation, no locks.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                std::thread::sleep(hold);
                // SAFETY: leave at once, without running the parent's exit handlers.
                unsafe { nix::libc::_exit(0) };
            }
            Ok(nix::unistd::ForkResult::Parent { .. }) => bomb.forked += 1,
            Err(errno) => {
                bomb.refused += 1;
                bomb.first_refusal.get_or_insert(errno);
            }
        }
    }
    while nix::sys::wait::wait().is_ok() {} // until ECHILD: every child has exited
    bomb
}
// ANCHOR_END: bomb

// ANCHOR: allocate
/// Allocate `mib` MiB, one MiB at a time, writing to every page so that the
/// memory is really used (untouched pages cost nothing).
pub fn allocate(mib: usize) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    for _ in 0..mib {
        let mut block = vec![0u8; 1 << 20];
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        blocks.push(block);
    }
    blocks
}
// ANCHOR_END: allocate

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bomb_shows_what_it_saw_and_parses_back() {
        let bomb = Bomb {
            forked: 19,
            refused: 181,
            first_refusal: Some(Errno::EAGAIN),
        };
        assert_eq!(bomb.to_string(), "19 forked, 181 refused with EAGAIN");
        assert_eq!(bomb.to_string().parse(), Ok(bomb));
        let unrefused = Bomb {
            forked: 10,
            refused: 0,
            first_refusal: None,
        };
        assert_eq!(unrefused.to_string(), "10 forked, 0 refused");
        assert_eq!(unrefused.to_string().parse(), Ok(unrefused));
        for bad in [
            "",
            "19 181 Some(EAGAIN)",
            "x forked, 1 refused",
            "1 forked, 1 refused with ENOTANERRNO",
        ] {
            assert!(bad.parse::<Bomb>().is_err(), "{bad:?}");
        }
    }
}
