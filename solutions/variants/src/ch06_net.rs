//! Chapter 6: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::Result;
use ch06_net::netlink::Netlink;
use std::net::Ipv4Addr;

pub const VARIANTS: &[Variant] = &[
    wrong(
        "6.1",
        "assume-24",
        "the container's address with its last byte set to 1: right for a /24 only",
    ).because("the first address of a /24 only"),
    wrong(
        "6.1",
        "shift-overflow",
        "`u32::MAX << (32 - prefix)` for every prefix: a /0 shifts by 32, which overflows",
    ).because("the mask of a /0 is 0"),
    wrong(
        "6.1",
        "only-31-32",
        "refuses /31 and /32 only: a /33 is no prefix at all, and `32 - 33` overflows",
    ).because("a prefix over 32 is an error"),
    wrong(
        "6.1",
        "refuse-30",
        "refuses /30 too: a /30 has two hosts, exactly the two ends of the cable",
    ).because("a /30 has exactly two hosts"),
    wrong(
        "6.1",
        "host-mask",
        "`u32::MAX >> prefix` as the mask: that keeps the host bits, not the network's",
    ).because("the network's bits are gone"),
    right(
        "6.1",
        "inverted-host-mask",
        "the mask as `!(u32::MAX >> prefix)` (0 for /0 without a special case), in u64 arithmetic",
    ),
    wrong(
        "6.2",
        "address-on-lo",
        "the address on lo instead of eth0: the container answers its own ping, nothing crosses the veth",
    ).because("an address on lo is reachable only from inside"),
    wrong(
        "6.2",
        "host-address-inside",
        "the host end's address given to eth0: the container pings itself",
    ).because("is the host end's: the container takes"),
    wrong(
        "6.2",
        "no-default-route",
        "no default route: the subnet is reachable, nothing beyond it",
    ).because("there is no default route inside"),
    wrong("6.2", "lo-down", "lo left down: 127.0.0.1 does not answer inside").because("lo is down: bring it up"),
    wrong(
        "6.2",
        "prefix-32",
        "the address as a /32: no subnet route, so the host end is not on a link and the route via it is refused",
    ).because("with a /32 no subnet on eth0 holds the gateway"),
    wrong(
        "6.2",
        "old-name",
        "the end left under its old name: configured and up, but not eth0, the name software inside expects",
    ).because("the cable still has its old name"),
    wrong(
        "6.2",
        "hardcoded",
        "the hint's values (10.200.0.2/24 via 10.200.0.1) instead of the arguments: right for the chapter's example only",
    ).because("not the chapter's example"),
    right(
        "6.2",
        "lo-last",
        "eth0 first (rename, address, up, route), lo last: the order between them does not matter",
    ),
    wrong(
        "6.3",
        "by-address",
        "the link whose address's subnet holds dest: ignores the default route and the local table",
    ).because("the local table sends it through lo"),
    wrong(
        "6.3",
        "index-as-position",
        "the index used as a position in links(): a deleted link leaves a hole in the indexes",
    ).because("not its position in links()"),
    wrong(
        "6.3",
        "fallback-lo",
        "an unreachable destination answered with lo instead of an error",
    ).because("nothing leads there"),
    wrong(
        "6.3",
        "first-up",
        "the first link that is up, other than lo: there may be more than one way out",
    ).because("there is more than one way out"),
    right(
        "6.3",
        "if-indextoname",
        "the kernel's route, named by if_indextoname(3) instead of the list of links",
    ),
];

/// Exercise 6.1.
pub fn host_address(container: Ipv4Addr, prefix: u8) -> Result<Ipv4Addr, String> {
    let check = |mask: u32| {
        let network = u32::from(container) & mask;
        let (broadcast, first) = (network | !mask, network.wrapping_add(1));
        let a = u32::from(container);
        if a == network || a == broadcast || a == first {
            return Err(format!("{container} cannot be the container's"));
        }
        Ok(Ipv4Addr::from(first))
    };
    match chosen("6.1").as_deref() {
        None => solutions::ch06_net::host_address(container, prefix),
        Some("assume-24") => {
            if prefix > 30 {
                return Err(format!("/{prefix} leaves no room"));
            }
            let [a, b, c, d] = container.octets();
            if d == 0 || d == 1 || d == 255 {
                return Err(format!("{container} cannot be the container's"));
            }
            Ok(Ipv4Addr::new(a, b, c, 1))
        }
        Some("shift-overflow") => {
            if prefix > 30 {
                return Err(format!("/{prefix} leaves no room"));
            }
            check(u32::MAX << (32 - u32::from(prefix)))
        }
        Some("only-31-32") => {
            if prefix == 31 || prefix == 32 {
                return Err(format!("/{prefix} leaves no room"));
            }
            let bits = 32 - prefix; // overflows for a prefix over 32
            check(u32::MAX.checked_shl(u32::from(bits)).unwrap_or(0))
        }
        Some("refuse-30") => {
            if prefix >= 30 {
                return Err(format!("/{prefix} leaves no room"));
            }
            check(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0))
        }
        Some("host-mask") => {
            if prefix > 30 {
                return Err(format!("/{prefix} leaves no room"));
            }
            check(u32::MAX >> prefix)
        }
        Some("inverted-host-mask") => {
            if prefix > 30 {
                return Err(format!("/{prefix} leaves no room for two hosts"));
            }
            let mask = u64::from(!(u32::MAX >> prefix));
            let a = u64::from(u32::from(container));
            let network = a & mask;
            let broadcast = network | (!mask & 0xffff_ffff);
            if a == network || a == broadcast || a == network + 1 {
                return Err(format!(
                    "{container} is not a container's address in /{prefix}"
                ));
            }
            Ok(Ipv4Addr::from((network + 1) as u32))
        }
        Some(other) => unknown("6.1", other),
    }
}

/// Exercise 6.2.
pub fn configure_inside(
    container_end: &str,
    host: Ipv4Addr,
    container: Ipv4Addr,
    prefix: u8,
) -> Result<()> {
    let choice = chosen("6.2");
    let Some(choice) = choice.as_deref() else {
        return solutions::ch06_net::configure_inside(container_end, host, container, prefix);
    };
    let mut nl = Netlink::open()?;
    match choice {
        "address-on-lo" => {
            nl.set_up("lo")?;
            nl.rename(container_end, "eth0")?;
            nl.add_address("lo", container, prefix)?;
            nl.set_up("eth0")?;
            nl.add_default_route(host)
        }
        "host-address-inside" => {
            nl.set_up("lo")?;
            nl.rename(container_end, "eth0")?;
            nl.add_address("eth0", host, prefix)?;
            nl.set_up("eth0")?;
            nl.add_default_route(host)
        }
        "no-default-route" => {
            nl.set_up("lo")?;
            nl.rename(container_end, "eth0")?;
            nl.add_address("eth0", container, prefix)?;
            nl.set_up("eth0")
        }
        "lo-down" => {
            nl.rename(container_end, "eth0")?;
            nl.add_address("eth0", container, prefix)?;
            nl.set_up("eth0")?;
            nl.add_default_route(host)
        }
        "prefix-32" => {
            nl.set_up("lo")?;
            nl.rename(container_end, "eth0")?;
            nl.add_address("eth0", container, 32)?;
            nl.set_up("eth0")?;
            nl.add_default_route(host)
        }
        "old-name" => {
            nl.set_up("lo")?;
            nl.add_address(container_end, container, prefix)?;
            nl.set_up(container_end)?;
            nl.add_default_route(host)
        }
        "hardcoded" => {
            let _ = (host, container, prefix);
            nl.set_up("lo")?;
            nl.rename(container_end, "eth0")?;
            nl.add_address("eth0", Ipv4Addr::new(10, 200, 0, 2), 24)?;
            nl.set_up("eth0")?;
            nl.add_default_route(Ipv4Addr::new(10, 200, 0, 1))
        }
        "lo-last" => {
            nl.rename(container_end, "eth0")?;
            nl.add_address("eth0", container, prefix)?;
            nl.set_up("eth0")?;
            nl.add_default_route(host)?;
            nl.set_up("lo")
        }
        other => unknown("6.2", other),
    }
}

/// Exercise 6.3.
pub fn link_towards(dest: Ipv4Addr) -> Result<String> {
    let choice = chosen("6.3");
    let Some(choice) = choice.as_deref() else {
        return solutions::ch06_net::link_towards(dest);
    };
    let mut nl = Netlink::open()?;
    let route = |nl: &mut Netlink| -> Result<u32> {
        nl.route_to(dest)?
            .ok_or_else(|| anyhow::anyhow!("no link for {dest}"))
    };
    match choice {
        "by-address" => {
            let links = nl.links()?;
            let a = nl
                .addresses()?
                .into_iter()
                .find(|a| {
                    let mask = u32::MAX.checked_shl(32 - u32::from(a.prefix)).unwrap_or(0);
                    u32::from(a.address) & mask == u32::from(dest) & mask
                })
                .ok_or_else(|| anyhow::anyhow!("no link's subnet holds {dest}"))?;
            links
                .into_iter()
                .find(|l| l.index == a.index)
                .map(|l| l.name)
                .ok_or_else(|| anyhow::anyhow!("no link {}", a.index))
        }
        "index-as-position" => {
            let index = route(&mut nl)?;
            let links = nl.links()?;
            links
                .get(index as usize - 1)
                .map(|l| l.name.clone())
                .ok_or_else(|| anyhow::anyhow!("no link at {index}"))
        }
        "fallback-lo" => {
            let Ok(index) = route(&mut nl) else {
                return Ok("lo".to_string());
            };
            nl.links()?
                .into_iter()
                .find(|l| l.index == index)
                .map(|l| l.name)
                .ok_or_else(|| anyhow::anyhow!("no link {index}"))
        }
        "first-up" => nl
            .links()?
            .into_iter()
            .find(|l| l.up && l.name != "lo")
            .map(|l| l.name)
            .ok_or_else(|| anyhow::anyhow!("no link up")),
        "if-indextoname" => {
            let index = route(&mut nl)?;
            let mut buf = [0u8; nix::libc::IF_NAMESIZE];
            // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname(3) needs.
            let p = unsafe { nix::libc::if_indextoname(index, buf.as_mut_ptr().cast()) };
            if p.is_null() {
                return Err(std::io::Error::last_os_error().into());
            }
            let name = std::ffi::CStr::from_bytes_until_nul(&buf)?;
            Ok(name.to_string_lossy().into_owned())
        }
        other => unknown("6.3", other),
    }
}
