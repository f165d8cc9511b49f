//! Chapter 1 exercises, solved.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sched::{clone, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
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

/// Exercise 1.3: an init that reaps zombies.
pub fn init(argv: &[String]) -> Result<i32> {
    // SAFETY: PID 1 of the namespace runs one thread, so the child's copy of
    // our memory holds no lock that another thread had taken.
    let command = match unsafe { nix::unistd::fork() }.context("failed to fork")? {
        nix::unistd::ForkResult::Child => {
            let Err(e) = workshop::process::exec(argv);
            eprintln!("error: {e:#}");
            std::process::exit(127)
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    loop {
        // Any child: the command, or an orphan handed to us as PID 1.
        let status = match waitpid(None, None) {
            Err(Errno::EINTR) => continue,
            other => other.context("failed to waitpid")?,
        };
        if status.pid() == Some(command) {
            if let Some(code) = exit_code(status) {
                return Ok(code);
            }
        }
    }
}
