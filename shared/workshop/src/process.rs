//! Process plumbing: what every container child does first, running a command
//! with exec, waiting for the container while answering SIGINT / SIGTERM,
//! and exit codes. (The gate and the output capture, pipes between the tool
//! and its child, are chapter 1's: `ch01_clone::{Gate, Capture}`.)
//!
//! The tool blocks SIGINT, SIGTERM and SIGCHLD at start-up and waits for them
//! with sigwait: a signal then arrives at one known place, the wait loop, where
//! the tool kills the container, lets the cleanup guards run, and exits 128+N.
//! No signal handler, no thread.

use crate::error::Interrupted;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, pipe2, Pid};
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

/// The signals the tool handles itself, at the wait loop.
fn termination_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set.add(Signal::SIGCHLD);
    set
}

/// Call first thing in `main`: from now on SIGINT, SIGTERM, SIGHUP and SIGCHLD
/// wait for [`wait_for`] instead of killing the tool before it has cleaned up.
pub fn block_termination_signals() -> Result<()> {
    termination_signals()
        .thread_block()
        .context("failed to block SIGINT/SIGTERM with sigprocmask")
}

/// With `--shell` on a terminal: the container gets the terminal, as a shell
/// gives it to a foreground job. Its shell then runs job control in a process
/// group of its own (one it can see from inside its PID namespace), Ctrl-C
/// goes to it and not to the tool, and the tool takes the terminal back when
/// the container is gone.
pub fn give_the_terminal_to_the_container() {
    INTERACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
}

static INTERACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn interactive() -> bool {
    INTERACTIVE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Make `pgrp` the terminal's foreground process group. SIGTTOU is blocked
/// meanwhile: a background process that calls tcsetpgrp() gets it otherwise.
fn set_foreground(pgrp: Pid) -> Result<()> {
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    let old = ttou
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .context("failed to block SIGTTOU")?;
    let result = nix::unistd::tcsetpgrp(std::io::stdin(), pgrp)
        .context("failed to tcsetpgrp on the terminal");
    old.thread_set_mask()
        .context("failed to restore the signal mask")?;
    result
}

/// What every child does first, whatever namespaces it is in: unblock the
/// signals the parent blocked (a program started with SIGINT blocked could
/// never be interrupted), and die with the tool if the tool is killed
/// (PR_SET_PDEATHSIG), so that a SIGKILLed tool never leaves a container behind.
/// Then run `body`; if it fails, print the error (and its hint) and return
/// the exit code for it. The parent must have called [`hold_lifeline`]
/// before the clone.
///
/// PR_SET_PDEATHSIG is a request the child makes for itself, and so only
/// once it runs, after clone() has returned in the parent. The kernel sends
/// the signal when the parent exits *after* the request (in exit_notify(),
/// as it hands the parent's children to a reaper); a parent that died before
/// it sends nothing, and the container would run on, its parent now the
/// reaper (PPID 1). So, once the request is made, the child checks that the
/// tool is still there. Not with getppid(): in a new PID namespace the
/// parent has no number and getppid() returns 0 whatever happened. With the
/// lifeline: a pipe whose write end only the tool keeps. An exiting process
/// closes its files before exit_notify(), so a tool that died too early to
/// signal us has already closed its end (poll says POLLHUP), and one that
/// had not closed it yet will see our request and send the signal.
pub fn in_child(body: impl FnOnce() -> Result<Infallible>) -> isize {
    let setup = || -> Result<()> {
        let lifeline = take_lifeline()?; // and let go of our copy of its write end
        SigSet::all()
            .thread_unblock()
            .context("failed to unblock signals")?;
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
            .context("failed to set PR_SET_PDEATHSIG")?;
        if lifeline.tool_is_gone()? {
            leave_quietly(); // what PR_SET_PDEATHSIG would have done
        }
        // Kept (close-on-exec) for a change of user before the exec.
        *CHILDS_LIFELINE.lock().unwrap_or_else(|e| e.into_inner()) = Some(lifeline);
        if interactive() {
            nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))
                .context("failed to setpgid")?;
            set_foreground(nix::unistd::getpgrp())?;
        }
        Ok(())
    };
    // A panic must not unwind out of the clone() callback (it would abort the
    // child with a confusing message): report it as exit code 101, as Rust does.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        setup().and_then(|()| body())
    }));
    let err = match result {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => e,
        Err(_panic) => return 101, // the panic hook has printed the message
    };
    let code = err
        .downcast_ref::<ExecFailed>()
        .map_or(1, |e| e.exit_code());
    crate::error::print(&err);
    code as isize
}

/// The exit code of a child that finds its tool gone: 128 + SIGKILL, as if
/// PR_SET_PDEATHSIG had come in time.
pub const TOOL_GONE: i32 = 128 + Signal::SIGKILL as i32;

/// A child whose tool is gone ends here, at once and without a word: there
/// is nobody to read it, and nothing of the container has run yet. (Also a
/// child that finds a gate's pipe ended before it opened: `ch01_clone::Gate`.)
pub fn leave_quietly() -> ! {
    // SAFETY: _exit ends the process at once; nothing of ours needs to run
    // first (no buffered output, and the tool's cleanup is not ours to do).
    unsafe { nix::libc::_exit(TOOL_GONE) }
}

/// The tool's lifeline: a pipe, made once per process before its first
/// child, whose write end the tool keeps until it exits. Every child gets a
/// copy of both ends with its copy of the tool's file table, and lets go of
/// the write end first thing ([`in_child`]), so that the pipe's writers are
/// the tool alone. Both ends are close-on-exec: no command keeps them.
///
/// One limit: a second child in its first microseconds (or a command that
/// std is starting, between fork and exec) also holds a copy; a tool that
/// died just then would look alive to a child checking at that instant. The
/// run mode starts one child; children that wait at a [`Gate`] wait until
/// every copy is closed, and so see the tool gone there.
struct Lifeline {
    read: OwnedFd,
    write: OwnedFd,
}

/// This process's lifeline, if it has started a child. A child takes its
/// parent's out ([`take_lifeline`]): if it starts children of its own, they
/// get a new one, whose write end it keeps.
static LIFELINE: std::sync::Mutex<Option<Lifeline>> = std::sync::Mutex::new(None);

/// In the parent, before each clone: make sure the lifeline exists, so that
/// the child can tell whether we are still here ([`in_child`]).
pub fn hold_lifeline() -> Result<()> {
    let mut lifeline = LIFELINE.lock().unwrap_or_else(|e| e.into_inner());
    if lifeline.is_none() {
        let (read, write) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("failed to create a pipe for the lifeline")?;
        *lifeline = Some(Lifeline { read, write });
    }
    Ok(())
}

/// In the child: the parent's lifeline, with our copy of its write end closed.
fn take_lifeline() -> Result<ChildsLifeline> {
    let taken = LIFELINE.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(Lifeline { read, write }) = taken else {
        bail!("the parent made no lifeline: call workshop::process::hold_lifeline() before clone()")
    };
    drop(write);
    Ok(ChildsLifeline(read))
}

/// The read end of the parent's lifeline, held by a child.
struct ChildsLifeline(OwnedFd);

/// In a child, its lifeline, kept until the exec closes it.
static CHILDS_LIFELINE: std::sync::Mutex<Option<ChildsLifeline>> = std::sync::Mutex::new(None);

/// In a child, after it changed its user (setresuid, as an image's `User`
/// asks): the kernel clears PR_SET_PDEATHSIG on a change of credentials, so
/// a SIGKILLed tool would leave the container running on. Ask again, then
/// look at the lifeline as [`in_child`] does, for a tool that died between.
pub fn rearm_parent_death_signal() -> Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .context("failed to set PR_SET_PDEATHSIG again after the change of user")?;
    let lifeline = CHILDS_LIFELINE.lock().unwrap_or_else(|e| e.into_inner());
    if lifeline.as_ref().map(|l| l.tool_is_gone()).transpose()? == Some(true) {
        leave_quietly();
    }
    Ok(())
}

impl ChildsLifeline {
    /// Whether every write end is closed: the tool has exited (or is exiting).
    fn tool_is_gone(&self) -> Result<bool> {
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::empty())];
        // Timeout 0: a look, not a wait. POLLHUP is reported whatever we ask for.
        poll(&mut fds, PollTimeout::ZERO).context("failed to poll the tool's lifeline")?;
        Ok(fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)))
    }
}

/// `exec` could not start the command: 127 when it does not exist, 126 when it
/// cannot be run, as a shell would say (and `docker run` does).
#[derive(Debug)]
pub struct ExecFailed {
    pub command: String,
    pub errno: Errno,
}

impl ExecFailed {
    pub fn exit_code(&self) -> i32 {
        if self.errno == Errno::ENOENT {
            127
        } else {
            126
        }
    }
}

impl std::fmt::Display for ExecFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.errno {
            Errno::ENOENT => write!(
                f,
                "failed to exec {}: command not found (ENOENT)",
                self.command
            ),
            // Errno's Display is already "EACCES: Permission denied".
            e => write!(f, "failed to exec {}: {e}", self.command),
        }
    }
}

impl std::error::Error for ExecFailed {}

/// Before a container's command is exec'd: every descriptor but 0, 1 and 2
/// is made close-on-exec, so nothing the tool or whoever started it held
/// open crosses into the container. A descriptor of a host directory (a
/// shell's `exec 7</`) is a way out of any root: through
/// /proc/self/fd/7 the container would read and write the host's files,
/// whatever its namespaces, capabilities and seccomp filter.
pub fn close_inherited_fds() -> Result<()> {
    // close_range(3, ~0, CLOSE_RANGE_CLOEXEC): Linux 5.11. Else, one by one.
    // SAFETY: a system call on numbers alone; it touches no memory of ours.
    let done = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            3u32,
            u32::MAX,
            nix::libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if done == 0 {
        return Ok(());
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .context("failed to list /proc/self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a number; a descriptor closed meanwhile (the
        // directory's own) gets EBADF, which is fine.
        unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// The `PATH` docker gives a container (and an image that sets none).
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// In a container, before its command: the environment docker gives one
/// (`PATH`, `HOSTNAME`, `HOME=/root`, and `TERM` and `PS1` when set), and
/// nothing else of whoever started the tool: their HOME, USER, and any
/// token their shell holds. Call it in the container's own process (one
/// thread: changing the environment is then safe).
pub fn container_environment() {
    let kept: Vec<(&str, std::ffi::OsString)> = ["TERM", "PS1"]
        .into_iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (k, v)))
        .collect();
    for (key, _) in std::env::vars_os() {
        std::env::remove_var(key);
    }
    std::env::set_var("PATH", CONTAINER_PATH);
    std::env::set_var("HOME", "/root");
    if let Ok(name) = nix::unistd::gethostname() {
        std::env::set_var("HOSTNAME", name);
    }
    for (key, value) in kept {
        std::env::set_var(key, value);
    }
}

/// Replace this process with `argv[0]`, searched in PATH (execvp), with
/// no descriptor but 0, 1 and 2 (see [`close_inherited_fds`]). Returns
/// only on failure.
pub fn exec(argv: &[String]) -> Result<Infallible> {
    let Some(program) = argv.first() else {
        bail!("no command to run")
    };
    close_inherited_fds()?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| {
            CString::new(a.as_bytes())
                .with_context(|| format!("argument {a:?} contains a NUL byte"))
        })
        .collect::<Result<_>>()?;
    let Err(errno) = execvp(&args[0], &args);
    Err(ExecFailed {
        command: program.clone(),
        errno,
    }
    .into())
}

/// An argument vector from string slices: `argv(&["sh", "-c", "echo $$"])`.
pub fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(Signal),
}

impl Exit {
    /// The exit code a shell would give: the code, or 128+N when killed by signal N.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s as i32,
        }
    }

    pub fn from_wait_status(status: WaitStatus) -> Option<Exit> {
        match status {
            WaitStatus::Exited(_, code) => Some(Exit::Code(code)),
            WaitStatus::Signaled(_, sig, _) => Some(Exit::Signal(sig)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by {} (exit code {})", s.as_str(), self.code()),
        }
    }
}

/// Wait for `pid` to end. If the tool gets SIGINT, SIGTERM or SIGHUP meanwhile,
/// kill the container (SIGKILL: PID 1 of a namespace ignores the others unless
/// it has a handler), reap it, and return [`Interrupted`] so that the caller's
/// cleanup runs on the way out.
pub fn wait_for(pid: Pid) -> Result<Exit> {
    let exit = wait_until_exit(pid);
    if interactive() {
        set_foreground(nix::unistd::getpgrp())?;
    }
    exit
}

fn wait_until_exit(pid: Pid) -> Result<Exit> {
    let waiting = termination_signals();
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(status) => {
                if let Some(exit) = Exit::from_wait_status(status) {
                    return Ok(exit);
                }
                continue;
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to waitpid for {pid}")),
        }
        // SIGCHLD is blocked, so one that came after waitpid is still pending
        // and sigwait returns at once: no exit can be missed between the two.
        let sig = waiting.wait().context("failed to sigwait")?;
        if sig != Signal::SIGCHLD {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(Interrupted(sig).into());
        }
    }
}

/// If SIGINT / SIGTERM / SIGHUP came while no container was running (it stays
/// pending, since it is blocked), stop now. Call between steps.
pub fn stop_if_interrupted() -> Result<()> {
    let mut pending = std::mem::MaybeUninit::<nix::libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set it is handed; we read it only on success.
    let pending = unsafe {
        Errno::result(nix::libc::sigpending(pending.as_mut_ptr()))
            .context("failed to read pending signals")?;
        pending.assume_init()
    };
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: sigismember only reads the initialised set.
        let is_pending = unsafe { nix::libc::sigismember(&pending, sig as i32) } == 1;
        if is_pending {
            return Err(Interrupted(sig).into());
        }
    }
    Ok(())
}

/// The `NSpid:` line of a process: its PID in each PID namespace it is in,
/// outermost first (`[48213, 1]` for PID 1 of a container).
pub fn nspid(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(Exit::Code(7).code(), 7);
        assert_eq!(Exit::Signal(Signal::SIGKILL).code(), 137);
        assert_eq!(Exit::Signal(Signal::SIGINT).code(), 130);
        let pid = Pid::from_raw(1);
        assert_eq!(
            Exit::from_wait_status(WaitStatus::Exited(pid, 3)),
            Some(Exit::Code(3))
        );
        assert_eq!(
            Exit::from_wait_status(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some(Exit::Signal(Signal::SIGTERM))
        );
        assert_eq!(Exit::from_wait_status(WaitStatus::StillAlive), None);
    }

    #[test]
    fn the_lifeline_says_when_every_write_end_is_closed() {
        hold_lifeline().unwrap();
        // Stand-in for the tool, still alive: another copy of the write end.
        let tool = LIFELINE
            .lock()
            .unwrap()
            .as_ref()
            .map(|l| l.write.try_clone().unwrap())
            .unwrap();
        let child = take_lifeline().unwrap(); // as in_child does
        assert!(!child.tool_is_gone().unwrap(), "the tool holds its end");
        drop(tool); // the tool exits: its files are closed
        assert!(child.tool_is_gone().unwrap(), "no write end is left");
    }

    #[test]
    fn exec_failures_map_to_126_and_127() {
        let missing = ExecFailed {
            command: "nope".into(),
            errno: Errno::ENOENT,
        };
        assert_eq!(missing.exit_code(), 127);
        assert!(missing.to_string().contains("command not found"));
        assert_eq!(
            ExecFailed {
                command: "/etc".into(),
                errno: Errno::EACCES
            }
            .exit_code(),
            126
        );
    }
}
