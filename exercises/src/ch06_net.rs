//! Chapter 6 exercises: a network of the container's own.
//!
//! Check your work with `cargo test -p exercises ch06`. The checks run in a
//! network namespace of their own: nothing reaches your machine's network.

use anyhow::Result;
use std::net::Ipv4Addr;

/// Exercise 6.1: the host end's address.
///
/// The container asks for `container/prefix` (say 10.200.0.2/24); the host
/// end of the veth takes the first address of that subnet (10.200.0.1).
/// Return it, or an error when the request cannot work: a prefix longer than
/// /30 (no room for two hosts), or a container address that is the subnet's
/// network address, its broadcast address, or the first address itself.
///
/// Hints:
/// - `u32::from(ip)` and `Ipv4Addr::from(n)` convert both ways.
/// - the mask of a /24 is `u32::MAX << (32 - 24)`; network = address & mask,
///   broadcast = network | !mask, first = network + 1.
pub fn host_address(container: Ipv4Addr, prefix: u8) -> Result<Ipv4Addr, String> {
    // TODO: compute the network, refuse the bad cases, return network + 1.
    todo!("exercise 6.1: the first address of the container's subnet")
}

/// Exercise 6.2: configure the container's side of the cable.
///
/// Called inside the container's network namespace, where the veth end
/// `container_end` has just arrived (down, no address). Afterwards: `lo` is
/// up; the end is renamed `eth0`, has `container/prefix` and is up; and the
/// default route goes via `host`. The check then pings `host` from inside.
///
/// Hints:
/// - `ch06_net::netlink::Netlink::open()` gives a socket in the current namespace;
///   its methods are the `ip` commands: `set_up`, `rename`, `add_address`,
///   `add_default_route`.
/// - rename before bringing the link up (kernels before 6.2 refuse to rename
///   a link that is up).
pub fn configure_inside(
    container_end: &str,
    host: Ipv4Addr,
    container: Ipv4Addr,
    prefix: u8,
) -> Result<()> {
    // TODO: lo up; rename to eth0; address; eth0 up; default route via host.
    todo!("exercise 6.2: configure lo, eth0 and the default route inside")
}

/// Exercise 6.3: which link would the kernel send a packet through?
///
/// The chapter checks that the route to the container leaves by its veth.
/// Answer the general question, as `ip route get DEST` does: the *name* of
/// the link the kernel would send a packet for `dest` out of, in the current
/// network namespace, every route considered (the default route; the local
/// table, where the machine's own addresses go through `lo`). An unreachable
/// destination is an `Err`. No packet is sent.
///
/// Hints:
/// - `Netlink::open()?.route_to(dest)` asks the kernel, and gives the
///   link's *index* (`Oif`), not its name.
/// - `links()` lists every link with its `index` and `name`. Indexes are not
///   positions in that list: a deleted link leaves a hole.
pub fn link_towards(dest: Ipv4Addr) -> Result<String> {
    // TODO: ask the kernel for the route, then name the link by its index.
    todo!("exercise 6.3: the link a packet for dest would leave by")
}
