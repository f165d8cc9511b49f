//! Chapter 1 exercises: clone() and a PID namespace.
//!
//! Check your work with `cargo test -p exercises ch01`.
//! Read chapters/ch01-clone/src/lib.rs (`clone_child`) for the pattern, but
//! write the calls yourself: that is the point.

use anyhow::Result;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// Exercise 1.1: start `argv` as PID 1 of a new PID namespace.
///
/// Start a child process in a new PID namespace that runs `argv`, and return
/// the child's PID as the host sees it. Do not wait for the child: the check
/// does that, and reads the child's `/proc/PID/status` to see where it is.
///
/// Hints:
/// - `nix::sched::clone(callback, &mut stack, flags, Some(Signal::SIGCHLD as i32))`
///   needs a stack you allocate: `vec![0u8; 1024 * 1024]` is plenty.
/// - The flag for a new PID namespace is `CloneFlags::CLONE_NEWPID`.
/// - In the callback, `workshop::process::exec(argv)` replaces the child with
///   the command; if it returns, it failed: return a non-zero code (127).
/// - `clone` is `unsafe`: say in a `// SAFETY:` comment why it is sound here.
pub fn spawn_as_pid_1(argv: &[String]) -> Result<Pid> {
    // TODO: allocate a stack, clone() with CLONE_NEWPID, exec argv in the child.
    todo!("exercise 1.1: clone() a child into a new PID namespace that execs argv")
}

/// Exercise 1.2: the exit code a shell would report for a finished process.
///
/// - `WaitStatus::Exited(_, code)`: `Some(code)`.
/// - `WaitStatus::Signaled(_, signal, _)`: `Some(128 + signal number)`, so a
///   container killed by SIGKILL (9) gives 137, as `docker run` reports.
/// - anything else (stopped, continued, still alive): `None`, it has not
///   finished.
///
/// Hint: `signal as i32` is the signal's number.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    // TODO: match on the status.
    todo!("exercise 1.2: turn a WaitStatus into a shell's exit code")
}

/// Exercise 1.3: an init that reaps zombies (a PID 1 the chapter does not write).
///
/// You are PID 1 of a PID namespace. Start `argv` as your child, then wait.
/// Every process orphaned in the namespace becomes your child, and one that
/// has ended stays a zombie until you wait for it: so reap every child that
/// ends, not only the command. Return as soon as the command itself has ended,
/// with the exit code a shell would report (exercise 1.2), or 127 if it could
/// not be started. Do not wait for orphans still running then: when PID 1
/// exits, the kernel kills the rest of the namespace.
///
/// Hints:
/// - `unsafe { nix::unistd::fork() }` (one thread: say so in `// SAFETY:`);
///   in the child, `workshop::process::exec(argv)`, and if it returns,
///   `std::process::exit(127)`.
/// - `nix::sys::wait::waitpid(None, None)` waits for any child (-1) and says
///   which one ended; loop until it is the command. Retry on `Errno::EINTR`.
/// - Your `exit_code` from exercise 1.2 turns the status into the answer.
pub fn init(argv: &[String]) -> Result<i32> {
    // TODO: fork and exec argv, then reap children until the command has ended.
    todo!("exercise 1.3: an init that reaps every child and returns the command's exit code")
}
