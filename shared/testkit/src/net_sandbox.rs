//! A network namespace of the test's own, for running a chapter in it: the
//! veth pairs it makes have both ends there, and no packet leaves it.
//! Unlike `run_in_net_sandbox` (a shell script under `unshare --net`), the
//! test starts the chapter itself, and so knows its PID and can signal it.

use std::os::fd::{AsFd, OwnedFd};
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
}
