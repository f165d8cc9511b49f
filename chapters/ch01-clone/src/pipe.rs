//! Two small pipes between the tool and a container it has cloned: a
//! [`Gate`], at which the child waits until the tool has looked at it (or set
//! it up), and a [`Capture`] of what the child prints. The page shows the
//! gate at work in `side_by_side`: two containers held alive at once.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{dup2_stderr, dup2_stdout, pipe2, read, Pid};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use workshop::process::{wait_for, Exit};

/// A close-on-exec pipe whose write end the parent can drop, read to its end.
struct Pipe {
    read: OwnedFd,
    write: Option<OwnedFd>,
}

impl Pipe {
    fn new(what: &str) -> Result<Pipe> {
        let (read, write) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .with_context(|| format!("failed to create a pipe for {what}"))?;
        Ok(Pipe {
            read,
            write: Some(write),
        })
    }

    /// Everything written until every write end is closed (end-of-file).
    /// `between` runs before each wait for more (at least every 50 ms): an
    /// error from it ends the read.
    fn read_to_end(&self, mut between: impl FnMut() -> Result<()>) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            between()?;
            let mut fds = [PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(50u16)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e).context("failed to poll a pipe"),
            }
            match read(self.read.as_fd(), &mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(Errno::EINTR | Errno::EAGAIN) => continue,
                Err(e) => return Err(e).context("failed to read from a pipe"),
            }
        }
    }
}

/// A gate: the child waits at it until the parent opens it. Lets the parent
/// look at (or set up) a container that exists but has not run its command.
///
/// It is a pipe. The parent opens the gate by writing one byte into it and
/// closing its write end; the byte stays in the pipe (nobody reads it), so
/// every child waiting at the gate sees it, however many there are. A child
/// that sees the pipe end (every write end closed) without the byte knows
/// the tool died before opening it: it exits at once, quietly, rather than
/// run a container that nobody set up and nobody waits for.
///
/// Both ends are close-on-exec, so a second child that inherited this gate's
/// write end lets go of it when it execs.
pub struct Gate(Pipe);

/// What [`Gate::open`] writes.
const OPEN: &[u8] = b"o";

impl Gate {
    pub fn new() -> Result<Gate> {
        Pipe::new("the gate").map(Gate)
    }

    /// In the child: close our copy of the write end, then wait until the
    /// parent opens the gate. If the tool dies instead, this never returns:
    /// the child exits at once, quietly (exit code
    /// [`TOOL_GONE`](workshop::process::TOOL_GONE)).
    pub fn pass(&self) -> Result<()> {
        if let Some(w) = &self.0.write {
            nix::unistd::close(w.as_raw_fd()).context("failed to close the gate's write end")?;
        }
        loop {
            let mut fds = [PollFd::new(self.0.read.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("failed to poll the gate"),
            }
            let seen = fds[0].revents().unwrap_or(PollFlags::empty());
            if seen.contains(PollFlags::POLLIN) {
                return Ok(()); // the byte: open
            }
            if seen.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                workshop::process::leave_quietly(); // every write end closed, no byte: the tool is gone
            }
        }
    }

    /// In the parent: let the children through.
    pub fn open(&mut self) {
        if let Some(w) = self.0.write.take() {
            // One byte into an empty pipe whose read end we hold: it cannot
            // block or fail. (Were it to, the children would see the pipe
            // end without the byte and exit: no container runs unopened.)
            let _ = nix::unistd::write(&w, OPEN);
        }
    }

    /// In the parent, the other way round: wait until every child that holds
    /// this gate has exec'd (or exited), which closes its close-on-exec copy.
    /// The child does nothing: exec is the signal ("set up, and running").
    pub fn wait_until_exec(mut self) -> Result<()> {
        self.0.write = None;
        self.0.read_to_end(|| Ok(())).map(drop)
    }
}

/// Capture a child's stdout and stderr: create with [`Capture::new`], call
/// [`Capture::redirect`] in the child, then [`Capture::collect`] in the parent.
pub struct Capture(Pipe);

impl Capture {
    pub fn new() -> Result<Capture> {
        Pipe::new("output").map(Capture)
    }

    /// In the child: send stdout and stderr into the pipe.
    pub fn redirect(&self) -> Result<()> {
        let w = self.0.write.as_ref().context("capture already collected")?;
        dup2_stdout(w).context("failed to dup2 the capture pipe onto stdout")?;
        dup2_stderr(w).context("failed to dup2 the capture pipe onto stderr")?;
        Ok(())
    }

    /// In the parent: read everything the child wrote, then wait for it. A
    /// Ctrl-C (SIGINT, SIGTERM, SIGHUP: blocked, so pending) while the child
    /// runs ends it at once, as in the run mode, instead of after it is done.
    pub fn collect(mut self, pid: Pid) -> Result<(String, Exit)> {
        self.0.write = None;
        let out = self
            .0
            .read_to_end(|| {
                let stop = workshop::process::stop_if_interrupted();
                if stop.is_err() {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(pid, None);
                }
                stop
            })
            .map_err(|e| match e.is::<workshop::Interrupted>() {
                true => e, // reported as "stopped: SIGINT", not as a failed read
                false => e.context("failed to read the container's output"),
            })?;
        let exit = wait_for(pid)?;
        Ok((String::from_utf8_lossy(&out).into_owned(), exit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workshop::process::TOOL_GONE;

    #[test]
    fn an_open_gate_lets_every_child_through() {
        let mut gate = Gate::new().unwrap();
        gate.open();
        // Nobody reads the byte: each child that passes sees it.
        gate.pass().unwrap();
        gate.pass().unwrap();
    }

    /// The other side of the gate: a child whose tool died before opening it
    /// sees the pipe end with no byte, and exits at once (it would end the
    /// test process), so the test runs itself again as a helper to see it.
    #[test]
    fn a_gate_never_opened_ends_the_child_quietly() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "pipe::tests::gate_helper_whose_tool_is_gone",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("WORKSHOP_GATE_HELPER", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains("passed the gate"),
            "a child passed a gate that was never opened:\n{stdout}"
        );
        assert_eq!(out.status.code(), Some(TOOL_GONE), "{stdout}");
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("error"),
            "the child said something: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "a helper: run by a_gate_never_opened_ends_the_child_quietly"]
    fn gate_helper_whose_tool_is_gone() {
        if std::env::var_os("WORKSHOP_GATE_HELPER").is_none() {
            return;
        }
        let mut gate = Gate::new().unwrap();
        gate.0.write = None; // the tool is gone: every write end closed, no byte
        let passed = gate.pass();
        println!("passed the gate: {passed:?}");
    }
}
