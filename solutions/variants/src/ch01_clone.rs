//! Chapter 1: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sched::{clone, unshare, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

pub const VARIANTS: &[Variant] = &[
    wrong(
        "1.1",
        "no-newpid",
        "clone() without CLONE_NEWPID: a child, but in the host's PID namespace, whose background processes outlive it",
    ).because("is not PID 1 of a new PID namespace"),
    wrong(
        "1.1",
        "exec-fail-exit-0",
        "returns 0 from the callback when exec fails: a command that never ran looks like a success",
    ).because("a command that never ran looks like a success"),
    wrong(
        "1.1",
        "unshare-in-caller",
        "unshare(CLONE_NEWPID) then fork(): the child is PID 1, but the caller's own pid_for_children is changed for good",
    ).because("changed the caller for good"),
    wrong(
        "1.1",
        "no-sigchld",
        "clone() with no exit signal (None): waitpid() without __WALL does not see the child",
    ).because("SIGCHLD as its exit signal"),
    wrong(
        "1.1",
        "pre-exec-unshare",
        "Command::pre_exec(unshare(CLONE_NEWPID)): unshare moves the caller's future children, not the caller: the command is not PID 1",
    ).because("moves only the caller's later children"),
    wrong(
        "1.1",
        "execv",
        "the child calls execv (no PATH search): `sh` alone is not found, the command never runs and the child exits 127",
    ).because("do not search $PATH"),
    right(
        "1.1",
        "raw-clone",
        "the clone syscall through libc with no stack of its own (0), which then behaves as fork() does",
    ),
    wrong(
        "1.2",
        "continued-is-0",
        "WaitStatus::Continued as Some(0): a process resumed by SIGCONT has not finished",
    ).because("continued by SIGCONT has not finished"),
    wrong(
        "1.2",
        "signal-number",
        "Signaled as the bare signal number: a shell reports 128 + N (137 for SIGKILL)",
    ).because("a signal N gives 128 + N"),
    wrong(
        "1.2",
        "stopped-as-signal",
        "Stopped as 128 + its signal: a stopped process can still be continued, it has not finished",
    ).because("a stopped process has not finished"),
    wrong(
        "1.2",
        "no-core",
        "only Signaled(_, _, false): a process killed with a core dump is not reported",
    ).because("core dump or not"),
    right(
        "1.2",
        "if-let",
        "if let instead of match",
    ),
    wrong(
        "1.3",
        "waits-for-command-only",
        "waitpid(command) alone: the orphans PID 1 inherits stay zombies",
    ).because("reap any child (-1) as they end"),
    wrong(
        "1.3",
        "first-child",
        "returns the status of the first child that ends, whichever it is: an orphan's, not the command's",
    ).because("not of whichever child ended first"),
    wrong(
        "1.3",
        "waits-for-all",
        "waits until no child is left (ECHILD): an orphan still running keeps PID 1 from returning",
    ).because("it waited for the orphan"),
    wrong(
        "1.3",
        "exec-fail-exit-0",
        "the forked child exits 0 when exec fails: a command that never ran looks like a success",
    ).because("the child should exit with 127"),
    wrong(
        "1.3",
        "reap-at-end",
        "waits for the command only, then reaps the zombies once at the end: the orphans stay zombies as long as the command runs",
    ).because("not once at the end"),
    right(
        "1.3",
        "command-spawn",
        "std::process::Command::spawn for the command, then waitpid(-1) until its PID comes back",
    ),
];

/// Exercise 1.1.
pub fn spawn_as_pid_1(argv: &[String]) -> Result<Pid> {
    match chosen("1.1").as_deref() {
        None => solutions::ch01_clone::spawn_as_pid_1(argv),
        Some("no-newpid") => clone_exec(argv, CloneFlags::empty(), Some(Signal::SIGCHLD), 127),
        Some("exec-fail-exit-0") => {
            clone_exec(argv, CloneFlags::CLONE_NEWPID, Some(Signal::SIGCHLD), 0)
        }
        Some("no-sigchld") => clone_exec(argv, CloneFlags::CLONE_NEWPID, None, 127),
        Some("unshare-in-caller") => {
            unshare(CloneFlags::CLONE_NEWPID).context("failed to unshare(CLONE_NEWPID)")?;
            fork_exec(argv)
        }
        Some("pre-exec-unshare") => {
            use std::os::unix::process::CommandExt;
            let mut cmd = std::process::Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            // SAFETY: unshare() is async-signal-safe: it only makes a syscall.
            unsafe {
                cmd.pre_exec(|| unshare(CloneFlags::CLONE_NEWPID).map_err(std::io::Error::from))
            };
            let child = cmd.spawn().context("failed to spawn")?;
            Ok(Pid::from_raw(child.id() as i32))
        }
        Some("execv") => {
            let mut stack = vec![0u8; 1024 * 1024];
            let child = Box::new(|| {
                let args: Vec<std::ffi::CString> = argv
                    .iter()
                    .map(|a| std::ffi::CString::new(a.as_bytes()).expect("no NUL"))
                    .collect();
                let e = nix::unistd::execv(&args[0], &args).unwrap_err();
                eprintln!("error: execv {}: {e}", argv[0]);
                127
            });
            let flags = CloneFlags::CLONE_NEWPID;
            // SAFETY: as in the solution: no CLONE_VM, one thread.
            unsafe { clone(child, &mut stack, flags, Some(Signal::SIGCHLD as i32)) }
                .context("failed to clone")
        }
        Some("raw-clone") => {
            use nix::libc;
            let flags = (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong;
            // SAFETY: with a null stack the child runs on a copy of ours, as
            // after fork(): no CLONE_VM, and the caller has one thread.
            let rc =
                unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
            match rc {
                -1 => Err(std::io::Error::last_os_error()).context("clone(CLONE_NEWPID)"),
                0 => {
                    let Err(e) = workshop::process::exec(argv);
                    eprintln!("error: {e:#}");
                    std::process::exit(127)
                }
                pid => Ok(Pid::from_raw(pid as i32)),
            }
        }
        Some(other) => unknown("1.1", other),
    }
}

fn clone_exec(
    argv: &[String],
    flags: CloneFlags,
    signal: Option<Signal>,
    failed: isize,
) -> Result<Pid> {
    let mut stack = vec![0u8; 1024 * 1024];
    let child = Box::new(|| match workshop::process::exec(argv) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("error: {e:#}");
            failed
        }
    });
    // SAFETY: as in the solution: no CLONE_VM, one thread.
    unsafe { clone(child, &mut stack, flags, signal.map(|s| s as i32)) }.context("failed to clone")
}

fn fork_exec(argv: &[String]) -> Result<Pid> {
    // SAFETY: the caller has one thread.
    match unsafe { fork() }.context("failed to fork")? {
        ForkResult::Child => {
            let Err(e) = workshop::process::exec(argv);
            eprintln!("error: {e:#}");
            std::process::exit(127)
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Exercise 1.2.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match chosen("1.2").as_deref() {
        None => solutions::ch01_clone::exit_code(status),
        Some("continued-is-0") => match status {
            WaitStatus::Continued(_) => Some(0),
            other => solutions::ch01_clone::exit_code(other),
        },
        Some("signal-number") => match status {
            WaitStatus::Exited(_, code) => Some(code),
            WaitStatus::Signaled(_, signal, _) => Some(signal as i32),
            _ => None,
        },
        Some("stopped-as-signal") => match status {
            WaitStatus::Exited(_, code) => Some(code),
            WaitStatus::Signaled(_, signal, _) | WaitStatus::Stopped(_, signal) => {
                Some(128 + signal as i32)
            }
            _ => None,
        },
        Some("no-core") => match status {
            WaitStatus::Exited(_, code) => Some(code),
            WaitStatus::Signaled(_, signal, false) => Some(128 + signal as i32),
            _ => None,
        },
        Some("if-let") => {
            if let WaitStatus::Exited(_, code) = status {
                Some(code)
            } else if let WaitStatus::Signaled(_, signal, _) = status {
                Some(128 + signal as i32)
            } else {
                None
            }
        }
        Some(other) => unknown("1.2", other),
    }
}

/// Exercise 1.3.
pub fn init(argv: &[String]) -> Result<i32> {
    let code = |status| exit_code(status);
    match chosen("1.3").as_deref() {
        None => solutions::ch01_clone::init(argv),
        Some("waits-for-command-only") => {
            let command = fork_exec(argv)?;
            loop {
                match waitpid(command, None) {
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e).context("waitpid"),
                    Ok(status) => {
                        if let Some(c) = code(status) {
                            return Ok(c);
                        }
                    }
                }
            }
        }
        Some("first-child") => {
            fork_exec(argv)?;
            loop {
                match waitpid(None, None) {
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e).context("waitpid"),
                    Ok(status) => {
                        if let Some(c) = code(status) {
                            return Ok(c);
                        }
                    }
                }
            }
        }
        Some("waits-for-all") => {
            let command = fork_exec(argv)?;
            let mut result = None;
            loop {
                match waitpid(None, None) {
                    Err(Errno::EINTR) => continue,
                    Err(Errno::ECHILD) => return result.context("the command was not reaped"),
                    Err(e) => return Err(e).context("waitpid"),
                    Ok(status) if status.pid() == Some(command) => result = code(status),
                    Ok(_) => {}
                }
            }
        }
        Some("exec-fail-exit-0") => {
            // SAFETY: one thread.
            let command = match unsafe { fork() }.context("failed to fork")? {
                ForkResult::Child => {
                    let _ = workshop::process::exec(argv);
                    std::process::exit(0)
                }
                ForkResult::Parent { child } => child,
            };
            reap_until(command)
        }
        Some("reap-at-end") => {
            let command = fork_exec(argv)?;
            let c = loop {
                match waitpid(command, None) {
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e).context("waitpid"),
                    Ok(status) => {
                        if let Some(c) = code(status) {
                            break c;
                        }
                    }
                }
            };
            loop {
                match waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            Ok(c)
        }
        Some("command-spawn") => {
            let child = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .spawn();
            match child {
                Err(_) => Ok(127),
                Ok(child) => reap_until(Pid::from_raw(child.id() as i32)),
            }
        }
        Some(other) => unknown("1.3", other),
    }
}

/// Reap any child until `command` has ended; its exit code.
fn reap_until(command: Pid) -> Result<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waitpid"),
            Ok(status) if status.pid() == Some(command) => {
                if let Some(c) = exit_code(status) {
                    return Ok(c);
                }
            }
            Ok(_) => {}
        }
    }
}
