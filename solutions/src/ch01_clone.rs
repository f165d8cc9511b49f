//! Chapter 1 exercises, solved.

use anyhow::{Context, Result};
use nix::sched::{clone, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// Exercise 1.1: start `argv` as PID 1 of a new PID namespace.
pub fn spawn_as_pid_1(argv: &[String]) -> Result<Pid> {
    let mut stack = vec![0u8; 1024 * 1024];
    let child = Box::new(|| match workshop::process::exec(argv) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("error: {e:#}");
            127
        }
    });
    // SAFETY: no CLONE_VM, so the child has its own copy of our memory, as after
    // fork(); the caller has a single thread, so no lock is held in the copy.
    let pid = unsafe {
        clone(
            child,
            &mut stack,
            CloneFlags::CLONE_NEWPID,
            Some(Signal::SIGCHLD as i32),
        )
    }
    .context("failed to clone(CLONE_NEWPID)")?;
    Ok(pid)
}

/// Exercise 1.2: the exit code a shell would report for a finished process.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}
