//! The addresses of a veth pair: `--ip ADDR/PREFIX` parsed and checked into
//! a [`Plan`] (the container's address and the host end's, in one subnet).

use std::net::Ipv4Addr;

/// An IPv4 subnet: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn of(address: Ipv4Addr, prefix: u8) -> Subnet {
        let mask = mask(prefix);
        Subnet {
            network: Ipv4Addr::from(u32::from(address) & mask),
            prefix,
        }
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let shorter = self.prefix.min(other.prefix);
        u32::from(self.network) & mask(shorter) == u32::from(other.network) & mask(shorter)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// The first usable address: the host end of the veth takes it.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// The addresses of a host/container veth pair, from `--ip ADDR/PREFIX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub subnet: Subnet,
    /// The host end: the subnet's first address.
    pub host: Ipv4Addr,
    /// The container end: the address asked for.
    pub container: Ipv4Addr,
}

/// Parse and check `ADDR/PREFIX` for the container, as clap's value parser of
/// `--ip` (so a bad value is a usage error, exit 2, naming the option): a
/// prefix from /8 to /30 (room for two hosts, the host end and the
/// container), a subnet the kernel and routing accept on a veth, and an
/// address that is neither the network, the broadcast nor the first address,
/// which the host end takes.
pub fn plan(spec: &str) -> Result<Plan, String> {
    let (address, prefix) = spec
        .split_once('/')
        .ok_or_else(|| format!("{spec:?} is not ADDR/PREFIX (e.g. 10.200.0.2/24)"))?;
    let address: Ipv4Addr = address
        .parse()
        .map_err(|_| format!("{address:?} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| format!("{prefix:?} is not a prefix length (8 to 30)"))?;
    if prefix > 30 {
        return Err(format!("/{prefix} leaves no room for two hosts (the host end and the container): use /30 or shorter"));
    }
    if prefix < 8 {
        return Err(format!(
            "/{prefix} is a huge subnet for one veth pair: use /8 to /30"
        ));
    }
    // From /8 on, the subnet lies within one first octet: that octet says
    // whether it is unicast space at all. The kernel refuses some of these
    // (EINVAL for a multicast or 0/8 address) and routing drops the rest.
    match address.octets()[0] {
        0 => return Err(format!(
            "{address} is in 0.0.0.0/8, \"this network\": no host may have it (the kernel refuses it)"
        )),
        127 => return Err(format!(
            "{address} is in 127.0.0.0/8, loopback: routing drops it on any link but lo"
        )),
        224..=239 => return Err(format!(
            "{address} is a multicast address (224.0.0.0/4): a link cannot have it as its own (the kernel refuses it)"
        )),
        240..=255 => return Err(format!(
            "{address} is in 240.0.0.0/4, reserved (and 255.255.255.255 is the broadcast of every network): routing drops it"
        )),
        _ => {}
    }
    let subnet = Subnet::of(address, prefix);
    if address == subnet.network || address == subnet.broadcast() {
        return Err(format!(
            "{address} is the network or broadcast address of {subnet}"
        ));
    }
    if address == subnet.first_host() {
        return Err(format!(
            "{address} is the first address of {subnet}, which the host end takes: pick another"
        ));
    }
    Ok(Plan::in_subnet(subnet, address))
}

impl Plan {
    /// The container at `container` in `subnet`, the host end at its first address.
    pub fn in_subnet(subnet: Subnet, container: Ipv4Addr) -> Plan {
        Plan {
            subnet,
            host: subnet.first_host(),
            container,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_a_subnet() {
        let p = plan("10.200.0.2/24").unwrap();
        assert_eq!(p.subnet.to_string(), "10.200.0.0/24");
        assert_eq!(p.host, Ipv4Addr::new(10, 200, 0, 1));
        assert_eq!(p.container, Ipv4Addr::new(10, 200, 0, 2));
        assert!(
            plan("192.168.77.9/30")
                .unwrap_err()
                .contains("host end takes"),
            "the first of a /30 is the host's"
        );
        assert_eq!(
            plan("192.168.77.10/30").unwrap().host,
            Ipv4Addr::new(192, 168, 77, 9)
        );
        let p = plan("172.30.5.6/30").unwrap();
        assert_eq!(p.host, Ipv4Addr::new(172, 30, 5, 5));
    }

    #[test]
    fn refuses_bad_plans() {
        for bad in [
            "",
            "10.0.0.2",
            "10.0.0.2/",
            "10.0.0.2/33",
            "10.0.0.2/31",
            "10.0.0.2/32",
            "10.0.0.300/24",
            "x/24",
            "10.0.0.0/24",
            "10.0.0.255/24",
            "10.0.0.1/24",
            "10.0.0.2/4",
            "10.0.0.2/0",
            "224.0.0.5/24",
            "239.1.2.3/8",
            "0.0.0.2/8",
            "127.0.0.2/8",
            "127.1.0.2/24",
            "240.0.0.2/24",
            "255.255.255.254/24",
        ] {
            assert!(plan(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn names_why_an_address_is_refused() {
        for (bad, why) in [
            ("224.0.0.5/24", "multicast"),
            ("0.0.0.2/8", "0.0.0.0/8"),
            ("127.0.0.2/8", "loopback"),
            ("250.0.0.2/24", "reserved"),
            ("10.0.0.2/0", "/8 to /30"),
            ("10.0.0.2/31", "no room for two hosts"),
        ] {
            let err = plan(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        // Just inside the edges of unicast space.
        assert!(plan("1.0.0.2/8").is_ok());
        assert!(plan("126.255.0.2/16").is_ok());
        assert!(plan("223.255.255.2/24").is_ok());
    }

    #[test]
    fn subnets_overlap() {
        let a = Subnet::of(Ipv4Addr::new(10, 200, 0, 0), 24);
        assert!(a.overlaps(&Subnet::of(Ipv4Addr::new(10, 0, 0, 0), 8)));
        assert!(a.overlaps(&Subnet::of(Ipv4Addr::new(10, 200, 0, 128), 25)));
        assert!(!a.overlaps(&Subnet::of(Ipv4Addr::new(10, 201, 0, 0), 24)));
        assert!(a.contains(Ipv4Addr::new(10, 200, 0, 77)));
        assert_eq!(a.broadcast(), Ipv4Addr::new(10, 200, 0, 255));
    }
}
