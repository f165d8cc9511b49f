//! Chapter 6 exercises, solved.

use anyhow::Result;
use ch06_net::netlink::Netlink;
use std::net::Ipv4Addr;

/// Exercise 6.1: the host end's address.
pub fn host_address(container: Ipv4Addr, prefix: u8) -> Result<Ipv4Addr, String> {
    if prefix > 30 {
        return Err(format!("/{prefix} leaves no room for two hosts"));
    }
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    let network = u32::from(container) & mask;
    let broadcast = network | !mask;
    let first = network + 1;
    match u32::from(container) {
        a if a == network => Err(format!("{container} is the network address")),
        a if a == broadcast => Err(format!("{container} is the broadcast address")),
        a if a == first => Err(format!("{container} is the first address, the host's")),
        _ => Ok(Ipv4Addr::from(first)),
    }
}

/// Exercise 6.2: configure the container's side of the cable.
pub fn configure_inside(
    container_end: &str,
    host: Ipv4Addr,
    container: Ipv4Addr,
    prefix: u8,
) -> Result<()> {
    let mut nl = Netlink::open()?;
    nl.set_up("lo")?;
    nl.rename(container_end, "eth0")?;
    nl.add_address("eth0", container, prefix)?;
    nl.set_up("eth0")?;
    nl.add_default_route(host)
}

/// Exercise 6.3: which link would the kernel send a packet through?
pub fn link_towards(dest: Ipv4Addr) -> Result<String> {
    let mut nl = Netlink::open()?;
    let index = nl
        .route_to(dest)?
        .ok_or_else(|| anyhow::anyhow!("the kernel named no link for {dest}"))?;
    nl.links()?
        .into_iter()
        .find(|l| l.index == index)
        .map(|l| l.name)
        .ok_or_else(|| anyhow::anyhow!("no link has index {index}"))
}
