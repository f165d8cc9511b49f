//! Chapter 10 exercises: a bridge for many containers.
//!
//! Check your work with `cargo test -p exercises ch10`. The first check runs
//! in a network namespace of its own (its bridge, veths and containers are
//! gone with it); the second claims addresses in a directory under /tmp that
//! it removes.

use anyhow::Result;
use ch06_net::Subnet;
use std::net::Ipv4Addr;
use std::path::Path;

/// Exercise 10.1: make a veth end a port of a bridge, and bring it up.
///
/// The chapter does it in one netlink message (`ip link set PORT master
/// BRIDGE up`). Do it the way `brctl addif BRIDGE PORT` and `ifconfig PORT
/// up` did before netlink, with two `ioctl`s on an ordinary socket, in the
/// current network namespace:
///
/// - `SIOCBRADDIF`, asked of the *bridge*: `ifr_name` is the bridge's name,
///   and `ifr_ifindex` the *port's* index. The port is the veth's host end,
///   the link you are given: the container's end lives in the container's
///   namespace, and stays out of the bridge;
/// - then the port up: read its flags (`SIOCGIFFLAGS`), add `IFF_UP`, write
///   them back (`SIOCSIFFLAGS`), keeping every other flag as it was. A port
///   that is down forwards nothing.
///
/// The check makes a bridge and two containers with a veth each, calls your
/// function on each host end, and asks the kernel: is the port's master the
/// bridge (and nothing else enslaved)? is it up, its other flags kept? does a
/// ping from one container reach the other through the bridge?
///
/// Hints:
/// - a socket to ask with: `nix::libc::socket(AF_INET, SOCK_DGRAM |
///   SOCK_CLOEXEC, 0)`, kept as an `OwnedFd` (`OwnedFd::from_raw_fd`) so
///   that it is closed on every path.
/// - `nix::libc::ifreq` (zeroed: `std::mem::zeroed()`), a name written into
///   `ifr_name` as C chars with a NUL after; the port's index from
///   `nix::libc::if_nametoindex` (0: no such link here) into
///   `ifr_ifru.ifru_ifindex`; the flags are `ifr_ifru.ifru_flags` (a
///   `c_short`; `IFF_UP` is a `c_int`).
/// - `SIOCBRADDIF` is 0x89a2 (<linux/sockios.h>; the libc crate does not
///   name it); `nix::libc::ioctl(fd, SIOCBRADDIF as _, &mut req)`: `-1` is an error,
///   `std::io::Error::last_os_error()` says which. Name the links in it.
pub fn attach(port: &str, bridge: &str) -> Result<()> {
    // TODO: SIOCBRADDIF on the bridge with the port's index; then the port's flags | IFF_UP.
    todo!("exercise 10.1: make port a port of bridge, and up")
}

/// Exercise 10.2: claim the next free address of a subnet, atomically.
///
/// A container on the bridge takes an address by creating the lease file
/// `dir/ADDRESS` (say `dir/10.201.0.3`), whose content is `record` (who
/// holds it). Return the lowest address of `subnet` that this call got
/// that way, from the subnet's second address (the first, .1 in a /24, is
/// the bridge's: the gateway) up to the one before the broadcast address.
/// Never the network address, the gateway or the broadcast address.
///
/// - an address whose file exists is taken: try the next one. One that was
///   released (its file removed) is free again, and the lowest free one
///   comes first;
/// - no address left: an error, and no file made;
/// - many runs claim at the same time, threads and processes: each must get
///   an address of its own. "Is it free?" and "take it" must be one step in
///   the kernel: looking first (`Path::exists`) and creating after lets two
///   runs that looked at the same moment both take it. Nor can a lock of
///   your process's own (a `Mutex`) help: the other runs are other
///   processes.
///
/// The check claims a whole subnet and beyond, releases and claims again,
/// and then races many threads and many processes for one small subnet, over
/// many rounds, and looks for two winners of one address.
///
/// Hints:
/// - `u32::from(ip)` and `Ipv4Addr::from(n)`; `subnet.first_host()` and
///   `subnet.broadcast()` (chapter 6) give the ends.
/// - `std::fs::OpenOptions::new().write(true).create_new(true)`: that is
///   `O_CREAT | O_EXCL`, which fails with `ErrorKind::AlreadyExists` when
///   the file is there.
/// - any other error (the directory is missing, say) is an error, not a
///   taken address.
pub fn claim_next(dir: &Path, subnet: Subnet, record: &str) -> Result<Ipv4Addr> {
    // TODO: from first_host() + 1 to broadcast() - 1, create_new the file; write the record.
    todo!("exercise 10.2: claim the next free address with O_CREAT | O_EXCL")
}
