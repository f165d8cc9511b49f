//! Network plumbing over rtnetlink: veth pairs, moving a link into another
//! network namespace, addresses, link state and routes, and reading them back.
//! What `ip link`, `ip addr` and `ip route` do, without running them.
//!
//! A [`Netlink`] socket talks to the network namespace of the process (thread)
//! that opened it: open one in the container's child to configure the inside.

use anyhow::{Context, Result};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{NeighbourAttribute, NeighbourMessage, NeighbourState};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::{IpAddr, Ipv4Addr};

/// A network link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    /// "veth", "bridge"... when the kernel says; None for loopback and physical devices.
    pub kind: Option<String>,
    /// The link's description (`ip link set NAME alias TEXT`), if it has one.
    pub alias: Option<String>,
    /// The index of the bridge this link is a port of (`ip link set NAME
    /// master BRIDGE`), if it is one.
    pub master: Option<u32>,
}

/// One entry of a bridge's forwarding database (`bridge fdb show`): a MAC
/// address the bridge has seen (or was given), and the port it goes out of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    pub mac: [u8; 6],
    /// The port's link index.
    pub port: u32,
    /// The bridge's own address for that port (`permanent`), not learned.
    pub permanent: bool,
}

impl FdbEntry {
    /// `aa:bb:cc:dd:ee:ff`, as `bridge fdb` prints it.
    pub fn mac_text(&self) -> String {
        let hex: Vec<String> = self.mac.iter().map(|b| format!("{b:02x}")).collect();
        hex.join(":")
    }
}

/// An IPv4 address on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub address: Ipv4Addr,
    pub prefix: u8,
}

/// An IPv4 route of the main table: destination/prefix, maybe via a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
}

/// The kernel said no: the errno, for the caller to give a hint about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetlinkError(pub nix::errno::Errno);

impl std::fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.0.desc(), self.0)
    }
}

impl std::error::Error for NetlinkError {}

/// The errno in an error from this module, if the kernel gave one.
pub fn errno_of(err: &anyhow::Error) -> Option<nix::errno::Errno> {
    err.chain()
        .find_map(|e| e.downcast_ref::<NetlinkError>())
        .map(|e| e.0)
}

pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    /// An rtnetlink socket in this process's network namespace.
    pub fn open() -> Result<Netlink> {
        let mut socket =
            Socket::new(NETLINK_ROUTE).context("failed to open a NETLINK_ROUTE socket")?;
        socket
            .bind_auto()
            .context("failed to bind the netlink socket")?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .context("failed to connect the netlink socket to the kernel")?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// Send one request and collect the replies until the kernel's ack (or the
    /// end of a dump). An error reply becomes a [`NetlinkError`].
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.sequence += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .context("failed to send a netlink request")?;

        let mut replies = Vec::new();
        loop {
            let (data, _) = self
                .socket
                .recv_from_full()
                .context("failed to read a netlink reply")?;
            let mut offset = 0;
            while offset < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .context("failed to parse a netlink reply")?;
                let length = reply.header.length as usize;
                if reply.header.sequence_number != self.sequence {
                    offset += length.max(1);
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(replies), // the ack
                        Some(code) => {
                            return Err(
                                NetlinkError(nix::errno::Errno::from_raw(-code.get())).into()
                            )
                        }
                    },
                    _ => {}
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }

    /// `ip link show`: every link in this network namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link_of(&link)),
                _ => None,
            })
            .collect())
    }

    /// `ip link show NAME`: the link called `name`, if there is one (one
    /// question about one link, rather than a dump of them all).
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(message), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link_of(&link)),
                _ => None,
            })),
            Err(e) if errno_of(&e) == Some(nix::errno::Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn index_of(&mut self, name: &str) -> Result<u32> {
        match self.link(name)? {
            Some(link) => Ok(link.index),
            None => Err(NetlinkError(nix::errno::Errno::ENODEV))
                .with_context(|| format!("no link called {name}")),
        }
    }

    /// `ip link add NAME type veth peer name PEER`: both ends in this namespace.
    pub fn add_veth(&mut self, name: &str, peer: &str) -> Result<()> {
        self.add_veth_into(name, peer, None)
    }

    /// `ip link add NAME type veth peer name PEER netns PID`: the peer is born
    /// in the network namespace of process `pid`: one step, where creating it
    /// here and moving it costs the kernel a second round of synchronisation.
    pub fn add_veth_into(&mut self, name: &str, peer: &str, pid: Option<u32>) -> Result<()> {
        let mut peer_message = LinkMessage::default();
        peer_message
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        if let Some(pid) = pid {
            peer_message.attributes.push(LinkAttribute::NetNsPid(pid));
        }
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .with_context(|| format!("failed to create the veth pair {name} <-> {peer}"))?;
        Ok(())
    }

    /// `ip link add NAME type bridge`: a virtual switch, in this namespace.
    pub fn add_bridge(&mut self, name: &str) -> Result<()> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        message
            .attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .with_context(|| format!("failed to create the bridge {name}"))?;
        Ok(())
    }

    /// `ip link set NAME master BRIDGE up`: make a link a port of a bridge,
    /// and bring it up, in one request.
    pub fn set_master_and_up(&mut self, name: &str, bridge: &str) -> Result<()> {
        let master = self.index_of(bridge)?;
        self.set_link(name, |m| {
            m.attributes.push(LinkAttribute::Controller(master));
            m.header.flags |= LinkFlags::Up;
            m.header.change_mask |= LinkFlags::Up;
        })
        .with_context(|| format!("failed to make {name} a port of {bridge}"))
    }

    /// `bridge fdb show br BRIDGE`: the bridge's forwarding database, the
    /// MAC addresses it knows and the port each goes out of.
    pub fn fdb(&mut self, bridge: &str) -> Result<Vec<FdbEntry>> {
        let index = self.index_of(bridge)?;
        let mut query = NeighbourMessage::default();
        query.header.family = AddressFamily::Bridge;
        let replies = self.request(RouteNetlinkMessage::GetNeighbour(query), NLM_F_DUMP)?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewNeighbour(m) = reply else {
                continue;
            };
            let mut mac = None;
            let mut master = None;
            for attribute in &m.attributes {
                match attribute {
                    NeighbourAttribute::LinkLayerAddress(bytes) if bytes.len() == 6 => {
                        mac = <[u8; 6]>::try_from(bytes.as_slice()).ok()
                    }
                    NeighbourAttribute::Controller(i) => master = Some(*i),
                    _ => {}
                }
            }
            if let (Some(mac), Some(master)) = (mac, master) {
                if master == index && m.header.ifindex != index {
                    out.push(FdbEntry {
                        mac,
                        port: m.header.ifindex,
                        permanent: m.header.state == NeighbourState::Permanent,
                    });
                }
            }
        }
        Ok(out)
    }

    fn set_link(&mut self, name: &str, change: impl FnOnce(&mut LinkMessage)) -> Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = self.index_of(name)?;
        change(&mut message);
        self.request(RouteNetlinkMessage::SetLink(message), 0)?;
        Ok(())
    }

    /// `ip link set NAME netns PID`: move a link into the network namespace of process `pid`.
    pub fn move_to_namespace_of(&mut self, name: &str, pid: u32) -> Result<()> {
        self.set_link(name, |m| m.attributes.push(LinkAttribute::NetNsPid(pid)))
            .with_context(|| {
                format!("failed to move {name} into the network namespace of process {pid}")
            })
    }

    /// `ip link set NAME name NEW`: rename a link (it must be down).
    pub fn rename(&mut self, name: &str, new: &str) -> Result<()> {
        self.set_link(name, |m| {
            m.attributes.push(LinkAttribute::IfName(new.to_string()))
        })
        .with_context(|| format!("failed to rename {name} to {new}"))
    }

    /// `ip link set NAME name NEW alias TEXT`: rename a link (it must be
    /// down) and describe it, in one request: no one sees it under its new
    /// name without the description.
    pub fn rename_and_describe(&mut self, name: &str, new: &str, alias: &str) -> Result<()> {
        self.set_link(name, |m| {
            m.attributes.push(LinkAttribute::IfName(new.to_string()));
            m.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
        })
        .with_context(|| format!("failed to rename {name} to {new}"))
    }

    /// `ip link set NAME up`.
    pub fn set_up(&mut self, name: &str) -> Result<()> {
        self.set_link(name, |m| {
            m.header.flags |= LinkFlags::Up;
            m.header.change_mask |= LinkFlags::Up;
        })
        .with_context(|| format!("failed to bring {name} up"))
    }

    /// `ip link set NAME alias TEXT up`: a description, and up, in one request.
    pub fn describe_and_set_up(&mut self, name: &str, alias: &str) -> Result<()> {
        self.set_link(name, |m| {
            m.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
            m.header.flags |= LinkFlags::Up;
            m.header.change_mask |= LinkFlags::Up;
        })
        .with_context(|| format!("failed to bring {name} up"))
    }

    /// `ip link delete NAME` (for a veth, both ends go).
    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = self.index_of(name)?;
        self.request(RouteNetlinkMessage::DelLink(message), 0)
            .with_context(|| format!("failed to delete {name}"))?;
        Ok(())
    }

    /// `ip addr add ADDRESS/PREFIX dev NAME`.
    pub fn add_address(&mut self, name: &str, address: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix;
        message.header.index = self.index_of(name)?;
        message
            .attributes
            .push(AddressAttribute::Local(IpAddr::V4(address)));
        message
            .attributes
            .push(AddressAttribute::Address(IpAddr::V4(address)));
        self.request(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .with_context(|| format!("failed to add {address}/{prefix} to {name}"))?;
        Ok(())
    }

    /// `ip -4 addr show`: the IPv4 addresses of this namespace.
    pub fn addresses(&mut self) -> Result<Vec<Address>> {
        let mut query = AddressMessage::default();
        query.header.family = AddressFamily::Inet;
        let replies = self.request(RouteNetlinkMessage::GetAddress(query), NLM_F_DUMP)?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewAddress(m) = reply else {
                continue;
            };
            let local = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(ip))
                | AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            if let Some(address) = local {
                out.push(Address {
                    index: m.header.index,
                    address,
                    prefix: m.header.prefix_len,
                });
            }
        }
        Ok(out)
    }

    /// `ip route add default via GATEWAY`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Static;
        message.header.scope = RouteScope::Universe;
        message.header.kind = RouteType::Unicast;
        message
            .attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .with_context(|| format!("failed to add a default route via {gateway}"))?;
        Ok(())
    }

    /// `ip route get DESTINATION`: the link the kernel would send a packet to
    /// `destination` out of, every routing rule and table considered. An
    /// unreachable or prohibited destination is an error (ENETUNREACH, EACCES...).
    pub fn route_to(&mut self, destination: Ipv4Addr) -> Result<Option<u32>> {
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet;
        query.header.destination_prefix_length = 32;
        query
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(destination)));
        let replies = self
            .request(RouteNetlinkMessage::GetRoute(query), 0)
            .with_context(|| format!("no route to {destination}"))?;
        Ok(replies.into_iter().find_map(|reply| match reply {
            RouteNetlinkMessage::NewRoute(m) => m.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(index) => Some(*index),
                _ => None,
            }),
            _ => None,
        }))
    }

    /// `ip -4 route show table main`.
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet;
        let replies = self.request(RouteNetlinkMessage::GetRoute(query), NLM_F_DUMP)?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewRoute(m) = reply else {
                continue;
            };
            if m.header.table != RouteHeader::RT_TABLE_MAIN {
                continue;
            }
            let mut route = Route {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix: m.header.destination_prefix_length,
                gateway: None,
            };
            for attribute in &m.attributes {
                match attribute {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => route.destination = *ip,
                    RouteAttribute::Gateway(RouteAddress::Inet(ip)) => route.gateway = Some(*ip),
                    _ => {}
                }
            }
            out.push(route);
        }
        Ok(out)
    }
}

fn link_of(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        up: message.header.flags.contains(LinkFlags::Up),
        kind: None,
        alias: None,
        master: None,
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::IfAlias(alias) => link.alias = Some(alias.clone()),
            LinkAttribute::Controller(index) => link.master = Some(*index),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}
