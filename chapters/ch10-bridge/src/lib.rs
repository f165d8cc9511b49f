//! Chapter 10: a bridge for many containers, as docker's `docker0`.
//!
//! Chapter 6 wired one container to the host with one veth pair, a subnet
//! each. Here every container's veth host end becomes a port of one bridge,
//! `wsbr0`, a switch inside the kernel: containers reach each other through
//! it, the bridge's own address (10.201.0.1) is their gateway, each has the
//! next free address of 10.201.0.0/24 (a lease file, [`lease`]), finds the
//! others by name (one `/etc/hosts`, [`hosts`]), may publish a port on the
//! host (a relay, [`publish`]), and goes out with the host's address (a
//! masquerade rule, [`nat`]). The first container makes the bridge; the
//! last one out removes it, and everything else it made.

use anyhow::{Context, Result};
use ch06_net::netlink::Netlink;
use ch06_net::{
    configure_inside, create_pair, lock_addresses, owner, stop_waiting_container, Handoff, Network,
    NetworkOptions, Plan, Subnet, Wiring,
};
use ch08_overlay::{run_over_layers_with, ContainerOptions};
use nix::errno::Errno;
use nix::unistd::Pid;
use std::cell::Cell;
use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use workshop::error::hinted;
use workshop::fs::remove_if_there;
use workshop::Narrator;
use workshop_netlink::errno_of;

pub mod hosts;
pub mod lease;
pub mod nat;
pub mod publish;

pub use lease::{claim_next, Lease};
pub use publish::{parse_publish, Publish};

/// The bridge: docker's is `docker0`.
pub const BRIDGE: &str = "wsbr0";

/// The bridge's subnet (docker0's default is 172.17.0.0/16).
pub const SUBNET: Subnet = Subnet {
    network: Ipv4Addr::new(10, 201, 0, 0),
    prefix: 24,
};

/// The bridge's own address: every container's gateway, and the host's
/// address as the containers see it.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);

/// The alias the bridge carries (`ip -d link show wsbr0`): whose it is,
/// and the value of `net.ipv4.ip_forward` before it, put back when it goes.
pub const BRIDGE_ALIAS: &str = "workshop bridge; ip_forward was ";

/// The `ip_forward` value a bridge's alias saved, if it is ours.
pub fn forwarding_before(alias: Option<&str>) -> Option<&str> {
    alias?
        .strip_prefix(BRIDGE_ALIAS)
        .filter(|v| *v == "0" || *v == "1")
}

/// Where the bridges' state lives: one directory per network namespace,
/// `/run/workshop-bridge-net-INODE` (the inode of `/proc/self/ns/net`), as
/// each namespace has a bridge of its own. Removed with the bridge. Each
/// sits in /run itself, with no parent of the workshop's that a run in
/// another namespace (under another lock) would remove once empty, maybe
/// between another's making of it and of its own directory in it.
pub const STATE_PREFIX: &str = "/run/workshop-bridge-net-";

/// The state of the bridge of the network namespace this process is in.
#[derive(Debug, Clone)]
pub struct State {
    pub dir: PathBuf,
}

impl State {
    pub fn here() -> Result<State> {
        let path = "/proc/self/ns/net";
        let inode = std::fs::metadata(path)
            .with_context(|| format!("failed to stat {path}"))?
            .ino();
        Ok(State {
            dir: PathBuf::from(format!("{STATE_PREFIX}{inode}")),
        })
    }

    /// One lease file per address taken.
    pub fn leases(&self) -> PathBuf {
        self.dir.join("leases")
    }

    /// The hosts file every container's `/etc/hosts` shows.
    pub fn hosts(&self) -> PathBuf {
        self.dir.join("hosts")
    }

    /// Make the directory and its `leases/`. Call it under chapter 6's lock.
    pub fn make(&self) -> Result<()> {
        let leases = self.leases();
        std::fs::create_dir_all(&leases)
            .with_context(|| format!("failed to make {}", leases.display()))
    }
}

/// The bridge's name while it is made, until it has the alias that says it
/// is ours (the kernel takes no alias with a new link): a run killed in
/// between leaves a link by this name, and the next run removes it.
pub const BRIDGE_BEING_MADE: &str = "wsbr0-new";

// ANCHOR: create_bridge
/// `ip link add wsbr0 type bridge; ip addr add 10.201.0.1/24 dev wsbr0;
/// ip link set wsbr0 up`: the switch, with the gateway's address on it (the
/// kernel adds the route to 10.201.0.0/24 through it). It is made under
/// another name and becomes wsbr0 in the same request that gives it its
/// alias: whose it is, and `forwarding_before`, the `ip_forward` to put back.
pub fn create_bridge(nl: &mut Netlink, forwarding_before: &str) -> Result<()> {
    if let Some(why) = ch06_net::subnet_clash(nl, &SUBNET)? {
        return Err(hinted(
            format!("the bridge's subnet {SUBNET} {why}"),
            "remove what uses it (`ip route`, `ip addr`), or run with --network veth",
        ));
    }
    remove_half_made_bridge(nl)?;
    nl.add_bridge(BRIDGE_BEING_MADE).map_err(|e| match errno_of(&e) {
        Some(Errno::EOPNOTSUPP) => hinted(
            format!("{e:#}"),
            "this kernel has no bridge driver: `modprobe bridge`, or a kernel built with CONFIG_BRIDGE",
        ),
        _ => e,
    })?;
    let alias = format!("{BRIDGE_ALIAS}{forwarding_before}");
    nl.rename_and_describe(BRIDGE_BEING_MADE, BRIDGE, &alias)?;
    nl.add_address(BRIDGE, GATEWAY, SUBNET.prefix)?;
    nl.set_up(BRIDGE)
}
// ANCHOR_END: create_bridge

/// The bridge a run killed while making it left (under chapter 6's lock,
/// which that run held: it is gone).
fn remove_half_made_bridge(nl: &mut Netlink) -> Result<()> {
    match nl.link(BRIDGE_BEING_MADE)? {
        Some(_) => nl.delete_link(BRIDGE_BEING_MADE),
        None => Ok(()),
    }
}

/// Whether `link` is the bridge this chapter made: it carries its alias (a
/// link called wsbr0 the host made is the host's, and stays).
pub fn is_ours(link: &workshop_netlink::Link) -> bool {
    forwarding_before(link.alias.as_deref()).is_some()
}

// ANCHOR: attach
/// `ip link set wsh-PID master wsbr0 up`: the veth's host end becomes a
/// port of the bridge. A port has no address of its own: what the container
/// sends into its end comes out here, and the bridge switches it to the
/// port of the MAC address it is for (or to all of them, until it learns
/// where that address is).
pub fn attach(nl: &mut Netlink, port: &str, bridge: &str) -> Result<()> {
    nl.set_master_and_up(port, bridge)
}
// ANCHOR_END: attach

/// Said when the bridge is made where `nft` is not installed.
pub const NO_NFT: &str = "nft is not installed: no masquerade rule, so the containers reach \
     the host and each other, not beyond (Debian: apt install nftables)";

/// `--name`: docker's rule (a letter or digit, then letters, digits, `_`,
/// `.` or `-`), at most 63 characters, as a name in `/etc/hosts` must be.
pub fn parse_name(name: &str) -> Result<String, String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !first_ok || !rest_ok {
        return Err(format!(
            "{name:?}: a name is a letter or digit, then letters, digits, '_', '.' or '-'"
        ));
    }
    if reads_as_address(name) {
        return Err(format!(
            "{name:?} reads as an address (`ping {name}` would ping it): give a name with a letter"
        ));
    }
    if name.len() > 63 {
        return Err(format!("{name:?} is {} characters: at most 63", name.len()));
    }
    // Names are looked up whatever their case: LOCALHOST is localhost.
    if name.eq_ignore_ascii_case(hosts::HOST_NAME) || name.eq_ignore_ascii_case("localhost") {
        return Err(format!("{name:?} is taken: it names the host"));
    }
    Ok(name.to_string())
}

/// Whether the C library's `inet_aton` takes `name` for an IPv4 address
/// (1 to 4 parts split by '.', each decimal, octal or 0x hex), so that a
/// lookup of it never reaches /etc/hosts.
fn reads_as_address(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 4
        && parts.iter().all(|part| {
            let hex = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X"));
            match hex {
                Some(digits) => digits.chars().all(|c| c.is_ascii_hexdigit()),
                None => !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()),
            }
        })
}

/// `--network`, in docker's words, from this chapter on.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// a veth to the bridge wsbr0, shared with every other container on it
    Bridge,
    /// chapter 6's veth to the host, a subnet of its own
    Veth,
    /// only lo, up
    None,
}

/// This chapter's network options: `--network`, chapter 6's `--ip`, and
/// the bridge's `--name` and `--publish`.
#[derive(clap::Args, Debug, Clone)]
pub struct BridgeOptions {
    /// bridge (the default, as docker's): the bridge wsbr0, shared;
    /// veth: chapter 6's pair to the host; none: only lo
    #[arg(long, value_enum, value_name = "MODE", default_value_t = NetworkMode::Bridge)]
    pub network: NetworkMode,

    /// With --network veth: the container's address and prefix (chapter 6)
    #[arg(long, value_name = "ADDR/PREFIX", value_parser = ch06_net::plan)]
    pub ip: Option<Plan>,

    /// The container's name on the bridge: the other containers reach it by it
    #[arg(long = "name", value_name = "NAME", value_parser = parse_name)]
    pub container_name: Option<String>,

    /// Publish a container's TCP port on the host (repeatable)
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST_PORT:PORT", value_parser = parse_publish)]
    pub publish: Vec<Publish>,
}

impl BridgeOptions {
    /// Options that cannot go together are bad usage (exit 2). Call right
    /// after parsing.
    pub fn reject_conflicts<C: clap::CommandFactory>(&self) {
        let conflict = |text: String| {
            C::command()
                .error(clap::error::ErrorKind::ArgumentConflict, text)
                .exit()
        };
        if let (false, Some(plan)) = (self.network == NetworkMode::Veth, &self.ip) {
            conflict(format!(
                "--ip {}/{} is chapter 6's veth's: it goes with --network veth only (the bridge gives the next free address)",
                plan.container, plan.subnet.prefix
            ));
        }
        if self.network != NetworkMode::Bridge {
            if let Some(name) = &self.container_name {
                conflict(format!(
                    "--name {name} is a name on the bridge: it goes with --network bridge only"
                ));
            }
            if let Some(p) = self.publish.first() {
                conflict(format!("-p {p} relays to the container's address on the bridge: it goes with --network bridge only"));
            }
        }
        if let Some(port) = publish::repeated_host_port(&self.publish) {
            conflict(format!("host port {port} is published twice"));
        }
    }
}

/// A container's place on the bridge: made before the clone
/// ([`BridgeNetwork::new`]), joined on the host ([`Network::connect`]),
/// configured inside, and left when dropped (the last one out removes the
/// bridge).
pub struct BridgeNetwork {
    name: String,
    state: State,
    host_end: String,
    container_end: String,
    handoff: Handoff,
    /// The published ports: listening from the start, relaying once the
    /// container has its address.
    listeners: Vec<(Publish, std::net::TcpListener)>,
    relays: Option<publish::Relays>,
    /// In the container: the hosts file's bind mount, until it is attached.
    hosts_tree: Cell<Option<OwnedFd>>,
    /// On the host: this run's lease, once claimed.
    lease: Option<PathBuf>,
    say: Narrator,
}

impl BridgeNetwork {
    /// `name` may be empty: the container has an address, and no name.
    pub fn new(name: Option<String>, publish: &[Publish], say: &Narrator) -> Result<BridgeNetwork> {
        let (host_end, container_end) = ch06_net::veth_names(std::process::id());
        Ok(BridgeNetwork {
            name: name.unwrap_or_default(),
            state: State::here()?,
            host_end,
            container_end,
            handoff: Handoff::new()?,
            listeners: publish::listen(publish)?, // a taken port fails here
            relays: None,
            hosts_tree: Cell::new(None),
            lease: None,
            say: say.clone(),
        })
    }

    // ANCHOR: join
    /// On the host, under chapter 6's lock: the bridge if it is not there
    /// yet, the next free address, the cable, its host end made a port of
    /// the bridge, and the names rewritten.
    fn join(&mut self, nl: &mut Netlink, container: Pid) -> Result<Plan> {
        let _lock = lock_addresses()?;
        self.state.make()?;
        let leases = self.state.leases();
        let live = reclaim_stale_leases(&self.state)?;
        if let Some(taken) = live
            .iter()
            .find(|l| !self.name.is_empty() && l.name.eq_ignore_ascii_case(&self.name))
        {
            return Err(hinted(
                format!(
                    "the name {} is taken on the bridge: {} is {} ({})",
                    self.name, taken.name, taken.address, taken.owner
                ),
                "give this container another --name, or stop the other one first",
            ));
        }
        match nl.link(BRIDGE)? {
            None => {
                // The first container makes it, then lets the host forward
                // (once the bridge's alias keeps the value to put back).
                create_bridge(nl, &nat::forwarding()?)?;
                nat::enable_forwarding()?;
                if nat::nft_available() {
                    nat::add_masquerade(SUBNET, BRIDGE)?;
                } else {
                    self.say.warn(NO_NFT);
                }
            }
            Some(link) if !is_ours(&link) => {
                return Err(hinted(
                    format!("a link called {BRIDGE} is there, and the workshop did not make it"),
                    format!("`ip -d link show {BRIDGE}` says what it is; delete it or rename it"),
                ))
            }
            Some(_) => {} // ours, made by a container still on it
        }
        let me = owner(std::process::id()).context("failed to read this process's start time")?;
        let record = lease::record(&me, &self.name, &self.host_end);
        let address = claim_next(&leases, SUBNET, &record).map_err(|e| {
            hinted(
                format!("{e:#}"),
                format!("{} containers are on {BRIDGE} already: stop one, or run this one with --network veth", live.len()),
            )
        })?;
        self.lease = Some(leases.join(address.to_string()));
        create_pair(nl, &self.host_end, &self.container_end, container)?;
        nl.describe_and_set_up(&self.host_end, &me)?; // who owns the pair (chapter 6)
        attach(nl, &self.host_end, BRIDGE)?;
        write_hosts(&self.state, &lease::leases(&leases)?)?; // with its own lease
        Ok(Plan::in_subnet(SUBNET, address))
    }
    // ANCHOR_END: join

    /// Leave the bridge: the lease goes, the names are rewritten, and the
    /// last one out removes the bridge and everything it made.
    fn leave(&mut self) -> Result<()> {
        self.relays = None; // the published ports close
        let Some(lease) = self.lease.take() else {
            return Ok(());
        };
        let _lock = lock_addresses()?;
        remove_if_there(&lease, |p| std::fs::remove_file(p))?;
        settle(&mut Netlink::open()?, &self.state).map(|_| ())
    }
}

impl Network for BridgeNetwork {
    // ANCHOR: inside
    fn inside(&self) -> Result<Option<Plan>> {
        let plan = self.handoff.receive()?; // waits here for the cable
        configure_inside(&self.container_end, &plan)?; // chapter 6: eth0, the route

        // The hosts file, while the host's files are still in sight.
        self.hosts_tree
            .set(Some(hosts::detach_bind_of(&self.state.hosts())?));
        Ok(Some(plan))
    }

    fn in_root(&self) -> Result<()> {
        match self.hosts_tree.take() {
            Some(tree) => hosts::attach_hosts(tree),
            None => Ok(()),
        }
    }
    // ANCHOR_END: inside

    fn connect(&mut self, nl: &mut Netlink, container: Pid) -> Result<Option<Plan>> {
        let laid = self.join(nl, container).and_then(|plan| {
            let listeners = std::mem::take(&mut self.listeners);
            self.relays = Some(publish::relay(listeners, plan.container)?);
            self.handoff.send(&plan)?;
            Ok(plan)
        });
        match laid {
            Ok(plan) => Ok(Some(plan)),
            Err(e) => {
                stop_waiting_container(container);
                if self.lease.is_none() {
                    // Refused before it took an address (a name taken, a
                    // wsbr0 not ours, a subnet in use): what it made on the
                    // way, the state directory at least, goes now if no
                    // container is on the bridge.
                    if let Ok(_lock) = lock_addresses() {
                        let _ = settle(nl, &self.state);
                    }
                }
                Err(e)
            }
        }
    }
}

impl Drop for BridgeNetwork {
    fn drop(&mut self) {
        if let Err(e) = self.leave() {
            workshop::error::print(&e.context("failed to leave the bridge"));
        }
    }
}

/// Rewrite the hosts file from `leases`, those of the bridge's state.
fn write_hosts(state: &State, leases: &[Lease]) -> Result<()> {
    hosts::write_in_place(&state.hosts(), &hosts::render(GATEWAY, leases))
}

/// Remove the leases of runs that have ended (killed: they could not
/// remove their own). Returns the leases still held. Call it under
/// chapter 6's lock.
pub fn reclaim_stale_leases(state: &State) -> Result<Vec<Lease>> {
    let mut live = Vec::new();
    for lease in lease::leases(&state.leases())? {
        if lease.is_held() {
            live.push(lease);
        } else {
            remove_if_there(&lease.path, |p| std::fs::remove_file(p))?;
        }
    }
    Ok(live)
}

// ANCHOR: settle
/// After a container left (or was found gone): if any container is still on
/// the bridge, rewrite the names; if none is, remove the bridge, the
/// masquerade rule, the state, and put `ip_forward` back as it was. Call it
/// under chapter 6's lock. Returns whether the bridge was removed.
pub fn settle(nl: &mut Netlink, state: &State) -> Result<bool> {
    let live = reclaim_stale_leases(state)?;
    if !live.is_empty() {
        write_hosts(state, &live)?;
        return Ok(false);
    }
    nat::remove_masquerade()?;
    remove_half_made_bridge(nl)?;
    let bridge = nl.link(BRIDGE)?;
    if let Some(before) = bridge
        .as_ref()
        .and_then(|l| forwarding_before(l.alias.as_deref()))
    {
        // ip_forward first, while the bridge's alias keeps its old value.
        nat::restore_forwarding(before)?;
        match nl.delete_link(BRIDGE) {
            Err(e) if errno_of(&e) != Some(Errno::ENODEV) => return Err(e),
            _ => {} // deleted, or gone meanwhile
        }
    }
    remove_if_there(&state.dir, |p| std::fs::remove_dir_all(p))?;
    Ok(true)
}
// ANCHOR_END: settle

/// The inodes of the network namespaces that exist, as far as this host's
/// /proc shows them. A namespace no process is in may still be there, and
/// its bridge with it: held by a thread that joined it (`/proc/PID/task/TID/ns/net`),
/// by an open descriptor (`/proc/PID/fd/N` reads `net:[INODE]`), or by a
/// bind mount of it (nsfs in mountinfo: `ip netns add` mounts under
/// /run/netns, docker under /run/docker/netns).
fn live_namespaces() -> std::collections::BTreeSet<u64> {
    let mut inodes = std::collections::BTreeSet::new();
    let entries = |dir: PathBuf| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
    };
    for process in entries(PathBuf::from("/proc")) {
        let is_pid = (process.file_name().and_then(|n| n.to_str()))
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        for task in entries(process.join("task")) {
            if let Ok(meta) = std::fs::metadata(task.join("ns/net")) {
                inodes.insert(meta.ino());
            }
        }
        for fd in entries(process.join("fd")) {
            let link = std::fs::read_link(fd).unwrap_or_default();
            inodes.extend(link.to_str().and_then(net_inode));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    inodes.extend(nsfs_mounts(&mountinfo));
    inodes
}

/// `net:[4026532288]`, as a namespace's descriptor or nsfs mount names it.
fn net_inode(text: &str) -> Option<u64> {
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// The network namespaces bind-mounted somewhere: mountinfo's nsfs mounts,
/// whose root (the 4th field) names the namespace.
fn nsfs_mounts(mountinfo: &str) -> Vec<u64> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, source) = line.split_once(" - ")?;
            if !source.starts_with("nsfs ") {
                return None;
            }
            net_inode(mount.split(' ').nth(3)?)
        })
        .collect()
}

/// The state of bridges whose network namespace is gone (the bridge went
/// with it, killed runs left the state): removed. Returns what it removed.
pub fn reclaim_dead_namespaces() -> Result<Vec<PathBuf>> {
    let (run, prefix) = STATE_PREFIX.rsplit_once('/').expect("an absolute path");
    let Ok(entries) = std::fs::read_dir(run) else {
        return Ok(Vec::new());
    };
    let here = State::here()?.dir;
    let others: Vec<(PathBuf, Option<u64>)> = entries
        .flatten()
        .filter_map(|e| {
            let inode = e.file_name().to_str()?.strip_prefix(prefix)?.parse().ok();
            Some((e.path(), inode))
        })
        .filter(|(p, _)| *p != here)
        // A lease held by a running container is a live namespace (its
        // tool runs in it): no need to look through every process for it.
        .filter(|(p, _)| {
            let state = State { dir: p.clone() };
            let leases = lease::leases(&state.leases()).unwrap_or_default();
            !leases.iter().any(Lease::is_held)
        })
        .collect();
    if others.is_empty() {
        return Ok(Vec::new()); // the common case: nothing to look for
    }
    let live = live_namespaces(); // every task's and descriptor's namespace: slow
    let mut removed = Vec::new();
    for (dir, inode) in others {
        if inode.is_some_and(|i| !live.contains(&i))
            && remove_if_there(&dir, |p| std::fs::remove_dir_all(p))?
        {
            removed.push(dir);
        }
    }
    Ok(removed)
}

/// Before a run: what killed runs left on the bridge. Their leases go; if
/// no container is left on it, so does the bridge. Returns the leases
/// removed, and whether the bridge went.
pub fn reclaim_bridge(nl: &mut Netlink) -> Result<(Vec<Lease>, bool)> {
    let state = State::here()?;
    if !state.dir.exists() {
        return Ok((Vec::new(), false));
    }
    // Most often every lease is held by a running container: nothing to do,
    // and no lock to take. (Read without the lock, a lease being claimed
    // right now may look empty, which takes the slow way: under the lock.)
    let held = lease::leases(&state.leases())?;
    if !held.is_empty() && held.iter().all(Lease::is_held) {
        return Ok((Vec::new(), false));
    }
    let _lock = lock_addresses()?;
    let before = lease::leases(&state.leases())?;
    let removed_bridge = settle(nl, &state)?;
    let after = lease::leases(&state.leases())?;
    let gone = before.into_iter().filter(|l| !after.contains(l)).collect();
    Ok((gone, removed_bridge))
}

/// Before a run: everything killed runs left (chapters 6 to 8's, and the
/// bridge's), saying what.
pub fn reclaim_what_killed_runs_left(nl: &mut Netlink, say: &Narrator) -> Result<()> {
    ch08_overlay::reclaim_what_killed_runs_left(nl, say)?;
    for dir in reclaim_dead_namespaces()? {
        say.note(&format!(
            "removed {}, the bridge state of a network namespace that is gone",
            dir.display()
        ));
    }
    let (gone, bridge) = reclaim_bridge(nl)?;
    for lease in gone {
        say.note(&format!(
            "removed the lease of {} ({}), held by a run that was killed",
            lease.address,
            if lease.name.is_empty() {
                "no name"
            } else {
                &lease.name
            }
        ));
    }
    if bridge {
        say.note(&format!(
            "removed {BRIDGE} and its rule: killed runs left them with no container on it"
        ));
    }
    Ok(())
}

// ANCHOR: run
/// Chapter 8's container over `lowers`, wired by `--network`: to the bridge
/// (with its name and published ports), chapter 6's veth, or lo only.
pub fn run_on_network(
    options: &ContainerOptions,
    net: &BridgeOptions,
    lowers: Vec<PathBuf>,
    nl: &mut Netlink,
    say: &Narrator,
    start: impl FnOnce() -> Result<Infallible>,
) -> Result<i32> {
    let mut network: Box<dyn Network> = match net.network {
        NetworkMode::Bridge => Box::new(BridgeNetwork::new(
            net.container_name.clone(),
            &net.publish,
            say,
        )?),
        NetworkMode::Veth | NetworkMode::None => Box::new(Wiring::new(&NetworkOptions {
            network: match net.network {
                NetworkMode::Veth => ch06_net::NetworkMode::Veth,
                _ => ch06_net::NetworkMode::None,
            },
            ip: net.ip,
        })?),
    };
    run_over_layers_with(options, network.as_mut(), lowers, nl, say, start)
    // `network` is dropped: the bridge's lease goes, and the bridge with the last
}
// ANCHOR_END: run

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_alias_keeps_the_forwarding_it_found() {
        let alias = format!("{BRIDGE_ALIAS}0");
        assert_eq!(forwarding_before(Some(&alias)), Some("0"));
        assert_eq!(
            forwarding_before(Some(&format!("{BRIDGE_ALIAS}1"))),
            Some("1")
        );
        assert_eq!(
            forwarding_before(Some("workshop bridge; ip_forward was 7")),
            None
        );
        assert_eq!(forwarding_before(Some("someone else's bridge")), None);
        assert_eq!(forwarding_before(None), None);
    }

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["web", "a", "db-1", "my_app.v2", "A9"] {
            assert_eq!(parse_name(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "-web",
            "_x",
            ".x",
            "we b",
            "web/1",
            "wéb",
            "localhost",
            "host.workshop.internal",
            "LocalHost",
            "Host.Workshop.Internal",
        ] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
        // What the C library reads as an address is never looked up as a
        // name: `ping 12` pings 0.0.0.12, `ping 0x10` 0.0.0.16.
        for address_like in ["12", "1.2", "10.201.0.3", "0x10", "0X1f.2"] {
            let err = parse_name(address_like).unwrap_err();
            assert!(err.contains("address"), "{address_like}: {err}");
        }
        for name in ["1a", "web1", "0xg", "1-2", "1.2.3.4.5"] {
            assert!(parse_name(name).is_ok(), "{name}");
        }
        assert!(parse_name(&"a".repeat(63)).is_ok());
        assert!(parse_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn finds_network_namespaces_bind_mounted_anywhere() {
        let mountinfo = "\
25 1 0:22 / /run rw,nosuid shared:5 - tmpfs tmpfs rw\n\
612 25 0:4 net:[4026532288] /run/netns/blue rw shared:301 - nsfs nsfs rw\n\
640 25 0:4 net:[4026532301] /run/docker/netns/1a2b rw shared:302 - nsfs nsfs rw\n\
641 25 0:4 mnt:[4026532300] /run/some/mnt rw shared:303 - nsfs nsfs rw\n";
        assert_eq!(nsfs_mounts(mountinfo), [4026532288, 4026532301]);
        assert_eq!(net_inode("net:[12]"), Some(12));
        assert_eq!(net_inode("socket:[12]"), None);
    }

    #[test]
    fn a_namespace_held_by_a_descriptor_only_is_live() {
        let held = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            std::fs::File::open("/proc/thread-self/ns/net").unwrap()
        })
        .join()
        .unwrap();
        let inode = held.metadata().unwrap().ino();
        assert!(live_namespaces().contains(&inode));
        drop(held);
    }
}
