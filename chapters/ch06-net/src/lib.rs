//! Chapter 6: a network namespace and a veth pair.
//!
//! A new network namespace has its own links, addresses, routes and ports,
//! and starts with nothing but a loopback device, down. A veth pair is a
//! virtual cable: what goes in one end comes out of the other. Put one end in
//! the container's namespace, give both ends addresses, and the host and the
//! container can talk. All of it over rtnetlink, the interface `ip` itself uses.

use anyhow::Result;
use nix::errno::Errno;
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use workshop::error::hinted;
use workshop::net::{errno_of, Netlink, Plan, Subnet};

/// Names say the links are the workshop's, and which run made them: the host
/// end `wsh-PID`, the container end `wsc-PID`, PID being the tool's.
pub fn veth_names(tool: u32) -> (String, String) {
    (format!("wsh-{tool}"), format!("wsc-{tool}"))
}

// ANCHOR: create
/// `ip link add wsh-PID type veth peer name wsc-PID netns CONTAINER`: the
/// cable, with one end on the host and the other born in the container's
/// network namespace (creating both on the host and then moving one, as
/// `ip link set wsc-PID netns CONTAINER` does, works too, and costs the kernel
/// a second round of synchronisation: see [`move_into`]).
///
/// Nothing has to delete the pair: a veth end lives in its namespace, and
/// when nothing holds the container's namespace any more the kernel destroys
/// it, its end of the cable, and with it the other end. What holds a network
/// namespace is its processes (here they all die with the container, and the
/// container with the tool, even SIGKILLed), but also a process outside that
/// joined it, or a TCP connection still closing: then the pair stays until
/// they let go, or until the next run removes it ([`reclaim_stale`]).
pub fn create_pair(
    nl: &mut Netlink,
    host_end: &str,
    container_end: &str,
    container: Pid,
) -> Result<()> {
    nl.add_veth_into(host_end, container_end, Some(container.as_raw() as u32))
        .map_err(|e| match errno_of(&e) {
            Some(Errno::EOPNOTSUPP) => hinted(
                format!("{e:#}"),
                "this kernel has no veth driver: `modprobe veth`, or a kernel built with CONFIG_VETH",
            ),
            Some(Errno::EEXIST) => hinted(format!("{e:#}"), "a link with that name exists: `ip link delete` it"),
            _ => e,
        })
}
// ANCHOR_END: create

/// How long the kernel may take to destroy a finished container's namespace,
/// and its veth pair with it (here: 5 to 40 ms; a loaded machine takes longer).
pub const TEARDOWN: Duration = Duration::from_secs(2);

/// Wait until the host end `name` is gone, as it goes a moment after its
/// container (see [`create_pair`]); at most `limit`. Whether it went.
pub fn wait_until_gone(nl: &mut Netlink, name: &str, limit: Duration) -> Result<bool> {
    let start = Instant::now();
    while nl.link(name)?.is_some() {
        if start.elapsed() >= limit {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(true)
}

// ANCHOR: move
/// `ip link set wsc-PID netns CONTAINER`: one end of the cable into the
/// container's network namespace. From now on the host cannot see it.
pub fn move_into(nl: &mut Netlink, container_end: &str, container: Pid) -> Result<()> {
    nl.move_to_namespace_of(container_end, container.as_raw() as u32)
}
// ANCHOR_END: move

// ANCHOR: host_end
/// `ip addr add HOST/PREFIX dev wsh-PID; ip link set wsh-PID up`.
pub fn configure_host_end(nl: &mut Netlink, host_end: &str, plan: &Plan) -> Result<()> {
    nl.add_address(host_end, plan.host, plan.subnet.prefix)?;
    nl.set_up(host_end)
}
// ANCHOR_END: host_end

// ANCHOR: inside
/// In the container, before exec: loopback up, the cable renamed eth0 with
/// its address and up, and a default route through the host end.
pub fn configure_inside(container_end: &str, plan: &Plan) -> Result<()> {
    let mut nl = Netlink::open()?; // a socket in the container's namespace
    nl.set_up("lo")?; // ip link set lo up
    nl.rename(container_end, "eth0")?; // ip link set wsc-PID name eth0
    nl.add_address("eth0", plan.container, plan.subnet.prefix)?; // ip addr add ADDR/PREFIX dev eth0
    nl.set_up("eth0")?; // ip link set eth0 up
    nl.add_default_route(plan.host) // ip route add default via HOST
}
// ANCHOR_END: inside

/// Remove the workshop pairs of runs that have ended: `wsh-PID` whose tool
/// (PID) is no longer running. Most are on their way out already (the kernel
/// removes a finished run's pair a moment after it ends, and this run may
/// have started within that moment); deleting them now rather than waiting
/// for the kernel is what lets this run use the same subnet at once.
/// Returns the names of those it deleted.
pub fn reclaim_stale(nl: &mut Netlink) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for link in nl.links()? {
        let Some(pid) = link
            .name
            .strip_prefix("wsh-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        // A pair named after this very process is an earlier run's (its PID
        // was reused): this run has not made its own yet.
        let running = pid != std::process::id()
            && std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split('\0')
                    .next()
                    .is_some_and(|argv0| argv0.contains("ch0"))
            });
        if running || link.kind.as_deref() != Some("veth") {
            continue;
        }
        match nl.delete_link(&link.name) {
            Ok(()) => removed.push(link.name),
            Err(e) if errno_of(&e) == Some(Errno::ENODEV) => {} // the kernel was quicker
            Err(e) => {
                return Err(e.context(format!("failed to remove the stale pair {}", link.name)))
            }
        }
    }
    Ok(removed)
}

/// Refuse a subnet that overlaps a route or an address the host already has:
/// the container would shadow (or be shadowed by) a real network.
pub fn check_no_clash(nl: &mut Netlink, plan: &Plan) -> Result<()> {
    for route in nl.routes()? {
        if route.prefix == 0 {
            continue; // the default route overlaps everything
        }
        let theirs = Subnet::of(route.destination, route.prefix);
        if theirs.overlaps(&plan.subnet) {
            return Err(hinted(
                format!(
                    "--ip {}/{}: the subnet {} clashes with the host's route to {theirs}",
                    plan.container, plan.subnet.prefix, plan.subnet
                ),
                "pick a subnet the host does not use, e.g. --ip 10.201.0.2/24 (see `ip route`)",
            ));
        }
    }
    for address in nl.addresses()? {
        if plan.subnet.contains(address.address) {
            return Err(hinted(
                format!(
                    "--ip {}/{}: the host already has the address {} in {}",
                    plan.container, plan.subnet.prefix, address.address, plan.subnet
                ),
                "pick a subnet the host does not use, e.g. --ip 10.201.0.2/24 (see `ip addr`)",
            ));
        }
    }
    Ok(())
}
