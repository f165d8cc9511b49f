//! A network namespace of the test's own, for running a chapter in it: the
//! veth pairs it makes have both ends there, and no packet leaves it.
//! Unlike `run_in_net_sandbox` (a shell script under `unshare --net`), the
//! test starts the chapter itself, and so knows its PID and can signal it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;

/// A network namespace of the test's own, held by a file descriptor only,
/// with lo up as on a host: a veth a chapter makes has both its ends in it, and it goes with the last
/// process in it once the descriptor is closed.
pub struct NetSandbox(OwnedFd);

impl Default for NetSandbox {
    fn default() -> Self {
        NetSandbox::new()
    }
}

impl NetSandbox {
    pub fn new() -> NetSandbox {
        // unshare(CLONE_NEWNET) changes the namespace of the calling thread
        // only: a thread of its own does it, hands back the namespace, and ends.
        let fd = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET) for the test's sandbox");
            // lo up, as on any host: 127.0.0.1 answers (a published port is
            // fetched from the host at 127.0.0.1).
            workshop_netlink::Netlink::open()
                .and_then(|mut nl| nl.set_up("lo"))
                .expect("lo up in the test's sandbox");
            std::fs::File::open("/proc/thread-self/ns/net")
                .map(OwnedFd::from)
                .expect("open /proc/thread-self/ns/net")
        })
        .join()
        .expect("the sandbox thread");
        NetSandbox(fd)
    }

    /// The command starts in the sandbox: setns() between fork and exec.
    pub fn enter_on_exec(&self, command: &mut std::process::Command) {
        let fd = self.0.try_clone().expect("dup the sandbox's descriptor");
        // SAFETY: between fork and exec the closure only makes one system
        // call (setns), which is async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
    }

    /// Run `f` in a thread that has joined the sandbox (setns, which moves
    /// only the calling thread), and return what it returns: a socket it
    /// makes (a listener, a connection) is the sandbox's wherever it is used
    /// afterwards, and a file of `/proc/sys/net` it opens is the sandbox's.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            let thread = scope.spawn(|| {
                nix::sched::setns(self.0.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("setns into the test's sandbox");
                f()
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The namespace's inode: the N of `net:[N]`, and of a chapter's
    /// per-namespace state (chapter 10's `/run/workshop-bridge-net-N`).
    pub fn inode(&self) -> u64 {
        std::fs::File::from(self.0.try_clone().expect("dup the sandbox's descriptor"))
            .metadata()
            .expect("fstat the sandbox's descriptor")
            .ino()
    }
}

impl AsFd for NetSandbox {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
