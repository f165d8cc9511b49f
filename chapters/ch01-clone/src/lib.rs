//! Chapter 1: clone() and a PID namespace.
//!
//! The one new step: start a child process with `clone()`, asking the kernel
//! for new namespaces with `CLONE_NEW*` flags. Later chapters call
//! [`clone_child`] with more flags and more work in the child.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sched::{clone, CloneFlags};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::convert::Infallible;
use workshop::error::hinted;

pub mod pipe;
pub use pipe::{Capture, Gate};

/// The child's stack. It runs only until it execs its command, so 1 MiB is plenty.
pub const STACK_SIZE: usize = 1024 * 1024;

// ANCHOR: clone_child
/// Start `body` in a new child process, inside the new namespaces that `flags`
/// ask for, and return the child's PID as the host sees it.
pub fn clone_child(flags: CloneFlags, body: impl FnOnce() -> Result<Infallible>) -> Result<Pid> {
    // The child, once it has asked to die with us (PR_SET_PDEATHSIG), checks
    // that we did not die first: through this pipe, whose write end we keep.
    workshop::process::hold_lifeline()?;
    // clone() does not allocate a stack for the child: we hand it one.
    let mut stack = vec![0u8; STACK_SIZE];
    let mut body = Some(body);
    let child =
        Box::new(move || workshop::process::in_child(body.take().expect("the child runs once")));

    // SIGCHLD: tell the parent when the child ends, as fork() does, so that
    // waitpid() works.
    // SAFETY: without CLONE_VM the child gets its own copy of this process's
    // memory, stack included, exactly as after fork(); this process has one
    // thread, so no lock can be held by a thread that does not exist in the child.
    let pid = unsafe { clone(child, &mut stack, flags, Some(Signal::SIGCHLD as i32)) }
        .map_err(|errno| clone_error(flags, errno))?;
    Ok(pid)
}
// ANCHOR_END: clone_child

/// Name the flags of a clone() call the way the man page does:
/// `CLONE_NEWNS | CLONE_NEWPID | SIGCHLD`.
pub fn describe(flags: CloneFlags) -> String {
    let mut names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    names.push("SIGCHLD");
    names.join(" | ")
}

/// Turn a failed clone() (or clone3()) into an error that says what to do about it.
pub fn clone_error(flags: CloneFlags, errno: Errno) -> anyhow::Error {
    let what = format!("failed to clone({}): {errno}", describe(flags));
    let hint = match errno {
        Errno::EPERM => "creating namespaces needs CAP_SYS_ADMIN: run as root, or through `cargo run`, which asks sudo",
        Errno::EINVAL => "this kernel was built without one of these namespaces (CONFIG_PID_NS, CONFIG_NET_NS, ...)",
        Errno::ENOSPC => {
            "a namespace limit is reached (/proc/sys/user/max_*_namespaces), or PID namespaces are nested 32 deep"
        }
        Errno::EUSERS => "user namespaces are nested too deep (older kernels said EUSERS for this)",
        _ => "see `man 2 clone`, section ERRORS",
    };
    hinted(what, hint)
}

/// How many processes /proc lists: the host's, or the container's once it has its own /proc.
pub fn count_processes() -> Result<usize> {
    let entries = std::fs::read_dir("/proc").context("failed to read /proc")?;
    Ok(entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_flags_like_the_man_page() {
        assert_eq!(describe(CloneFlags::CLONE_NEWPID), "CLONE_NEWPID | SIGCHLD");
        assert_eq!(describe(CloneFlags::empty()), "SIGCHLD");
    }

    #[test]
    fn clone_errors_say_what_to_do() {
        let e = clone_error(CloneFlags::CLONE_NEWPID, Errno::EINVAL);
        let hinted = e.downcast_ref::<workshop::error::Hinted>().unwrap();
        assert_eq!(
            hinted.message,
            "failed to clone(CLONE_NEWPID | SIGCHLD): EINVAL: Invalid argument"
        );
        assert!(hinted.hint.contains("CONFIG_PID_NS"));
        let e = clone_error(CloneFlags::CLONE_NEWNS, Errno::EPERM);
        assert!(e
            .downcast_ref::<workshop::error::Hinted>()
            .unwrap()
            .hint
            .contains("CAP_SYS_ADMIN"));
    }
}

/// What a demo saw when it ran a command in a container.
#[derive(Debug)]
pub struct Observed {
    /// The container's PID as the host sees it.
    pub pid: Pid,
    /// Its stdout and stderr, together.
    pub output: String,
    pub exit: workshop::process::Exit,
}

/// Run `body` in a container made with `flags` and capture what it prints:
/// how the demos look inside. `body` ends by exec'ing a command.
pub fn observe(flags: CloneFlags, body: impl FnOnce() -> Result<Infallible>) -> Result<Observed> {
    let capture = Capture::new()?;
    let pid = clone_child(flags, || {
        capture.redirect()?;
        body()
    })?;
    let (output, exit) = capture.collect(pid)?;
    Ok(Observed { pid, output, exit })
}
