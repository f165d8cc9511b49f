//! Chapter 6: a network namespace and a veth pair.
//!
//! A new network namespace has its own links, addresses, routes and ports,
//! and starts with nothing but a loopback device, down. A veth pair is a
//! virtual cable: what goes in one end comes out of the other. Put one end in
//! the container's namespace, give both ends addresses, and the host and the
//! container can talk. All of it over rtnetlink, the interface `ip` itself uses.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::Pid;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};
use workshop::error::hinted;
use workshop_netlink::{errno_of, Netlink};

pub mod address;
pub use address::{plan, Plan, Subnet};
/// The rtnetlink client this chapter speaks to the kernel with (plumbing: the
/// page quotes the steps above it, not the message encoding).
pub use workshop_netlink as netlink;

/// `--network` and `--ip`, in docker's words, for this chapter and every one
/// after it. The veth is on by default, as docker's default (bridge)
/// network is: a container is reachable from its host unless asked
/// otherwise, and later chapters keep what this one gave.
#[derive(clap::Args, Debug, Clone)]
pub struct NetworkOptions {
    /// veth: a veth pair to the host (the default, as docker's default network);
    /// none: only lo, up
    #[arg(long, value_enum, value_name = "MODE", default_value_t = NetworkMode::Veth)]
    pub network: NetworkMode,

    /// The container's address and prefix (default: 10.200.N.2/24, the first N
    /// free); the host end takes the subnet's first address
    #[arg(long, value_name = "ADDR/PREFIX", value_parser = plan)]
    pub ip: Option<Plan>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Veth,
    None,
}

impl NetworkOptions {
    /// `--ip` with `--network none` asks for an address on a cable that will
    /// not exist: bad usage (exit 2), as with docker. Call right after parsing.
    pub fn reject_conflicts<C: clap::CommandFactory>(&self) {
        if let (NetworkMode::None, Some(plan)) = (self.network, &self.ip) {
            C::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "--ip {}/{} needs the veth: it cannot go with --network none",
                        plan.container, plan.subnet.prefix
                    ),
                )
                .exit();
        }
    }
}

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
/// `ip addr add HOST/PREFIX dev wsh-PID; ip link set wsh-PID alias OWNER up`.
/// The alias says which run owns the pair (see [`owner`]).
pub fn configure_host_end(nl: &mut Netlink, host_end: &str, plan: &Plan) -> Result<()> {
    nl.add_address(host_end, plan.host, plan.subnet.prefix)?;
    let me = std::process::id();
    let owner = owner(me).with_context(|| format!("failed to read /proc/{me}/stat"))?;
    nl.describe_and_set_up(host_end, &owner)
}
// ANCHOR_END: host_end

/// Who owns a pair: the run's PID and the moment its process started
/// (`/proc/PID/stat`'s starttime, in clock ticks since boot). A PID is
/// reused once its process is gone; the pair and the start time tell a
/// running owner from a new process that got the same PID. None if no
/// process has that PID.
pub fn owner(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(") ")?;
    let started = after_name.split_whitespace().nth(19)?; // field 22, starttime
    Some(format!("workshop run {pid} started at {started}"))
}

/// Whether the run a pair's `alias` names is still running, given the
/// [`owner`] line of the process that has the pair's PID now (None: no
/// process has it). The same PID started at another time is another
/// process, which got the PID of a run that has ended.
fn made_by_a_live_run(alias: Option<&str>, now: Option<&str>) -> bool {
    match (alias, now) {
        (_, None) => false, // no process has that PID
        (Some(alias), Some(now)) => alias == now,
        (None, Some(_)) => true, // not ours to judge (made by something else)
    }
}

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

/// `--network none`: in the container, loopback up and nothing else. A new
/// network namespace starts with lo down, and much software expects
/// 127.0.0.1 to answer.
pub fn bring_up_loopback() -> Result<()> {
    Netlink::open()?.set_up("lo") // ip link set lo up
}

/// Remove the workshop pairs of runs that have ended: `wsh-PID` whose run
/// is not running any more (its owner, in the link's alias, is not the
/// process that has that PID now; see [`owner`]). Most are on their way out
/// already (the kernel removes a finished run's pair a moment after it ends,
/// and this run may have started within that moment); deleting them now
/// rather than waiting for the kernel is what lets this run use the same
/// subnet at once. Under [`lock_addresses`]: a run that is laying its pair
/// holds it until the pair has its alias, so none is taken for stale
/// half-made. Returns the names of those it deleted.
pub fn reclaim_stale(nl: &mut Netlink) -> Result<Vec<String>> {
    let _lock = lock_addresses()?;
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
            && made_by_a_live_run(link.alias.as_deref(), owner(pid).as_deref());
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

/// What the host's namespace already uses: its routes (but the default
/// route, which overlaps everything) and its addresses.
struct InUse {
    routes: Vec<Subnet>,
    addresses: Vec<Ipv4Addr>,
}

impl InUse {
    fn read(nl: &mut Netlink) -> Result<InUse> {
        Ok(InUse {
            routes: (nl.routes()?.into_iter())
                .filter(|r| r.prefix != 0)
                .map(|r| Subnet::of(r.destination, r.prefix))
                .collect(),
            addresses: nl.addresses()?.into_iter().map(|a| a.address).collect(),
        })
    }

    /// Why `subnet` is taken, if it is: it would shadow (or be shadowed by) a
    /// network the host already has.
    fn clash(&self, subnet: &Subnet) -> Option<String> {
        if let Some(theirs) = self.routes.iter().find(|r| r.overlaps(subnet)) {
            return Some(format!("clashes with the host's route to {theirs}"));
        }
        (self.addresses.iter().find(|a| subnet.contains(**a)))
            .map(|a| format!("holds the address {a}, which the host already has"))
    }
}

/// Why the host cannot take `subnet` for a new link, if it cannot: it
/// would shadow (or be shadowed by) a route or an address the host already
/// has. Chapter 10 asks this of its bridge's subnet.
pub fn subnet_clash(nl: &mut Netlink, subnet: &Subnet) -> Result<Option<String>> {
    Ok(InUse::read(nl)?.clash(subnet))
}

/// Where the container goes without `--ip`: 10.200.N.2/24 for the first N
/// whose subnet the host does not use yet (a run alone gets 10.200.0.2).
pub const DEFAULT_SUBNETS: &str = "10.200.0.0/16";

// ANCHOR: choose
/// The container's addresses: `--ip`'s, if the host does not use that subnet
/// already, or else the first free 10.200.N.0/24. Call it holding
/// [`lock_addresses`], and claim the subnet (the host end's address) before
/// letting go: another run choosing meanwhile would take the same.
pub fn choose_subnet(nl: &mut Netlink, asked: Option<Plan>) -> Result<Plan> {
    let in_use = InUse::read(nl)?;
    if let Some(plan) = asked {
        return match in_use.clash(&plan.subnet) {
            None => Ok(plan),
            Some(why) => Err(hinted(
                format!(
                    "--ip {}/{}: the subnet {} {why}",
                    plan.container, plan.subnet.prefix, plan.subnet
                ),
                "pick a subnet the host does not use (see `ip route` and `ip addr`), \
                 or leave --ip out and a free one is chosen",
            )),
        };
    }
    (0..=255u8)
        .map(|n| Subnet::of(Ipv4Addr::new(10, 200, n, 0), 24))
        .find(|subnet| in_use.clash(subnet).is_none())
        .map(|subnet| Plan::in_subnet(subnet, Ipv4Addr::from(u32::from(subnet.network) + 2)))
        .ok_or_else(|| {
            hinted(
                format!("no free subnet left in {DEFAULT_SUBNETS}: every 10.200.N.0/24 is in use"),
                "pass one the host does not use with --ip, e.g. --ip 10.201.0.2/24",
            )
        })
}
// ANCHOR_END: choose

/// Check that the kernel sends what is for the container out of our host
/// end. Routing rules and tables other than the main one (a VPN's, say) are
/// not seen by [`choose_subnet`], and may send the subnet elsewhere: then the
/// container could reach nothing, and the run stops here rather than start a
/// container with a broken network.
pub fn check_route(nl: &mut Netlink, host_end: &str, plan: &Plan) -> Result<()> {
    let ours = nl.link(host_end)?.map(|l| l.index);
    let hint = "a routing rule or table sends this subnet elsewhere (see `ip rule` and \
                `ip route get ADDRESS`): pick another with --ip";
    match nl.route_to(plan.container) {
        Ok(Some(index)) if Some(index) == ours => Ok(()),
        Ok(other) => {
            let name = match other {
                Some(index) => (nl.links()?.into_iter().find(|l| l.index == index))
                    .map_or(format!("link {index}"), |l| l.name),
                None => "no link".to_string(),
            };
            Err(hinted(
                format!("the route to the container's {} goes out of {name}, not {host_end}: its network would be broken", plan.container),
                hint,
            ))
        }
        Err(e) => Err(hinted(
            format!("{e:#}, from the host end {host_end}: the container's network would be broken"),
            hint,
        )),
    }
}

/// How long a run waits for another to finish choosing its subnet: a few
/// milliseconds each, normally.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

// ANCHOR: lock
/// Choosing a free subnet and claiming it must be one step: two runs that
/// both looked before either claimed would take the same one. The lock is
/// an exclusive `flock` on this network namespace's own file
/// (`/proc/self/ns/net`): every run in the same namespace contends for the
/// same lock, runs in other namespaces (which have their own routes) do not,
/// and there is no lock file to leave behind. The kernel drops it when the
/// file is closed, or the process dies.
pub fn lock_addresses() -> Result<Flock<std::fs::File>> {
    let path = "/proc/self/ns/net";
    let mut file = std::fs::File::open(path).with_context(|| format!("failed to open {path}"))?;
    let start = Instant::now();
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((back, Errno::EWOULDBLOCK)) if start.elapsed() < LOCK_WAIT => {
                file = back; // another run is choosing: wait for it
                workshop::process::stop_if_interrupted()?;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(hinted(
                    format!(
                        "failed to flock {path}: another run has held it for {} s",
                        LOCK_WAIT.as_secs()
                    ),
                    "is a run of a chapter from 6 on stopped (Ctrl-Z) in this network namespace? `fg` it or end it",
                ))
            }
            Err((_, e)) => return Err(e).with_context(|| format!("failed to flock {path}")),
        }
    }
}
// ANCHOR_END: lock

/// The container learns its addresses through a pipe: the subnet is chosen
/// after the container exists (its end of the cable is born in its
/// namespace), so the copy of memory it started with cannot hold them. runc
/// hands its container its configuration the same way. Until they come, the
/// container waits: the pipe is also its gate.
pub struct Handoff {
    read: OwnedFd,
    write: Option<OwnedFd>,
}

/// A plan on the wire: container address, host address, prefix.
const PLAN_BYTES: usize = 9;

impl Handoff {
    pub fn new() -> Result<Handoff> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("failed to create a pipe for the container's addresses")?;
        Ok(Handoff {
            read,
            write: Some(write),
        })
    }

    /// In the parent: send the plan, and close the pipe.
    pub fn send(&mut self, plan: &Plan) -> Result<()> {
        let mut bytes = [0u8; PLAN_BYTES];
        bytes[..4].copy_from_slice(&plan.container.octets());
        bytes[4..8].copy_from_slice(&plan.host.octets());
        bytes[8] = plan.subnet.prefix;
        let write = self
            .write
            .take()
            .context("the addresses were sent already")?;
        let sent = nix::unistd::write(&write, &bytes)
            .context("failed to send the container its addresses")?;
        anyhow::ensure!(
            sent == PLAN_BYTES,
            "the pipe took {sent} of {PLAN_BYTES} bytes"
        );
        Ok(())
    }

    /// In the child: close our copy of the write end, and wait for the plan.
    /// End-of-file first means the tool is gone (or gave up): stop.
    pub fn receive(&self) -> Result<Plan> {
        if let Some(write) = &self.write {
            nix::unistd::close(std::os::fd::AsRawFd::as_raw_fd(write))
                .context("failed to close the pipe's write end")?;
        }
        let mut bytes = [0u8; PLAN_BYTES];
        let mut got = 0;
        while got < PLAN_BYTES {
            match nix::unistd::read(self.read.as_fd(), &mut bytes[got..]) {
                Ok(0) => anyhow::bail!(
                    "the tool sent no addresses: it stopped before the cable was laid"
                ),
                Ok(n) => got += n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("failed to read the container's addresses"),
            }
        }
        let at = |i: usize| Ipv4Addr::new(bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]);
        Ok(Plan {
            subnet: Subnet::of(at(0), bytes[8]),
            host: at(4),
            container: at(0),
        })
    }
}

// ANCHOR: network
/// How a container is wired, in the two halves every network of this course
/// has: one run by the container before anything else (it waits there for
/// its cable), one run by the tool on the host once the container exists.
/// Chapter 6's veth to the host is one ([`Wiring`]); chapter 10's bridge is
/// another, and a run over layers (chapter 8) takes either.
pub trait Network {
    /// In the container, first: bring up what is inside (lo, and eth0 once
    /// the host end is laid). Returns the container's addresses, if any.
    fn inside(&self) -> Result<Option<Plan>>;
    /// On the host, once the container waits in [`Network::inside`]: lay
    /// the cable and hand the container its addresses. On failure, the
    /// waiting container is stopped.
    fn connect(&mut self, nl: &mut Netlink, container: Pid) -> Result<Option<Plan>>;
    /// In the container, once it is in its own root (after `pivot_root`):
    /// anything the network puts into that root. Nothing, by default;
    /// chapter 10 mounts the bridge's `/etc/hosts` there.
    fn in_root(&self) -> Result<()> {
        Ok(())
    }
}
// ANCHOR_END: network

impl Network for Wiring {
    fn inside(&self) -> Result<Option<Plan>> {
        Wiring::inside(self)
    }

    fn connect(&mut self, nl: &mut Netlink, container: Pid) -> Result<Option<Plan>> {
        Wiring::connect(self, nl, container)
    }
}

/// Stop a container that waits for its network, when the network could not
/// be laid: nothing is left running.
pub fn stop_waiting_container(container: Pid) {
    let _ = nix::sys::signal::kill(container, nix::sys::signal::Signal::SIGKILL);
    let _ = workshop::process::wait_for(container);
}

/// A container's network, from `--network` and `--ip`: made ready before
/// the clone ([`Wiring::new`]), set up inside by the container
/// ([`Wiring::inside`]) and on the host by the tool ([`Wiring::connect`]).
pub struct Wiring {
    pub mode: NetworkMode,
    asked: Option<Plan>,
    pub host_end: String,
    container_end: String,
    handoff: Handoff,
}

impl Wiring {
    pub fn new(options: &NetworkOptions) -> Result<Wiring> {
        let (host_end, container_end) = veth_names(std::process::id());
        Ok(Wiring {
            mode: options.network,
            asked: options.ip,
            host_end,
            container_end,
            handoff: Handoff::new()?,
        })
    }

    // ANCHOR: wiring_inside
    /// In the container, first: with the veth, wait for the tool to lay the
    /// cable and send the addresses, then configure the inside; with
    /// `--network none`, lo up. Returns the addresses, if any.
    pub fn inside(&self) -> Result<Option<Plan>> {
        match self.mode {
            NetworkMode::None => bring_up_loopback().map(|()| None),
            NetworkMode::Veth => {
                let plan = self.handoff.receive()?; // waits here for the cable
                configure_inside(&self.container_end, &plan)?;
                Ok(Some(plan))
            }
        }
    }
    // ANCHOR_END: wiring_inside

    // ANCHOR: connect
    /// On the host, once the container exists and waits in [`Wiring::inside`]:
    /// choose the subnet and claim it under the lock (the host end's address
    /// is the claim), then hand the container its addresses. If any of it
    /// fails, the waiting container is stopped: nothing is left.
    pub fn connect(&mut self, nl: &mut Netlink, container: Pid) -> Result<Option<Plan>> {
        if self.mode == NetworkMode::None {
            return Ok(None);
        }
        let laid = (|| {
            let _lock = lock_addresses()?; // until the subnet is claimed
            let plan = choose_subnet(nl, self.asked)?;
            create_pair(nl, &self.host_end, &self.container_end, container)?;
            configure_host_end(nl, &self.host_end, &plan)?; // the claim
            check_route(nl, &self.host_end, &plan)?;
            Ok(plan)
        })()
        .and_then(|plan| self.handoff.send(&plan).map(|()| plan));
        if laid.is_err() {
            stop_waiting_container(container);
        }
        laid.map(Some)
    }
    // ANCHOR_END: connect
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_of_a_pair_is_its_pid_and_start_time() {
        let me = std::process::id();
        let line = owner(me).unwrap();
        assert!(
            line.starts_with(&format!("workshop run {me} started at ")),
            "{line}"
        );
        assert_eq!(owner(me), Some(line), "the same process, the same owner");
        // Above pid_max (at most 2^22): no process has it.
        assert_eq!(owner(u32::MAX), None);
    }

    #[test]
    fn a_pid_alive_but_started_at_another_time_is_not_the_owner() {
        let alias = "workshop run 4242 started at 1000";
        assert!(made_by_a_live_run(Some(alias), Some(alias)));
        assert!(
            !made_by_a_live_run(Some(alias), Some("workshop run 4242 started at 2000")),
            "the PID was reused by a process started later"
        );
        assert!(!made_by_a_live_run(Some(alias), None), "no process has it");
        assert!(
            made_by_a_live_run(None, Some("workshop run 4242 started at 1000")),
            "a pair without an alias is not ours to judge"
        );
    }
}
