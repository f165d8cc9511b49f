//! Outgoing traffic: the containers' addresses are private to this host, so
//! a packet from 10.201.0.2 that leaves through the host's uplink must carry
//! the host's address instead, and the replies come back to the host, which
//! sends them on (connection tracking remembers whose they are). That is a
//! masquerade rule in the `postrouting` hook, and the host must forward
//! packets between links at all (`net.ipv4.ip_forward`, off by default).
//!
//! The rule is nftables', in a table of our own: `nft` reads the ruleset
//! below (the nf_tables netlink protocol, which `nft` speaks for us), and
//! the whole table goes in one `delete table` with the bridge. Docker does
//! the same with iptables (or, experimentally, nftables since 29) in its own chains.

use anyhow::{bail, Context, Result};
use ch06_net::Subnet;
use std::io::Write;
use std::process::{Command, Stdio};

/// The nftables table of ours: `nft list table ip workshop_bridge`.
pub const TABLE: &str = "workshop_bridge";

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

// ANCHOR: ruleset
/// What `nft -f -` is given: in a table of our own, a chain on the NAT
/// `postrouting` hook that masquerades what comes from the bridge's subnet
/// and leaves through any other link (traffic between containers keeps its
/// addresses).
pub fn ruleset(subnet: Subnet, bridge: &str) -> String {
    format!(
        "table ip {TABLE} {{\n  \
           chain postrouting {{\n    \
             type nat hook postrouting priority srcnat; policy accept;\n    \
             ip saddr {subnet} oifname != \"{bridge}\" masquerade\n  \
           }}\n\
         }}\n"
    )
}
// ANCHOR_END: ruleset

/// Whether `nft` can be run here (Debian: the nftables package).
pub fn nft_available() -> bool {
    Command::new("nft")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn nft(args: &[&str], input: Option<&str>) -> Result<()> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("failed to run nft")?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .context("failed to write to nft")?;
    }
    let out = child.wait_with_output().context("failed to wait for nft")?;
    if !out.status.success() {
        bail!(
            "nft {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Add the masquerade rule: `nft -f -` with [`ruleset`].
pub fn add_masquerade(subnet: Subnet, bridge: &str) -> Result<()> {
    nft(&["-f", "-"], Some(&ruleset(subnet, bridge))).map_err(|e| {
        workshop::error::hinted(
            format!("{e:#}"),
            "the kernel may lack nftables' NAT (`modprobe nft_chain_nat nft_masq`; CONFIG_NFT_NAT, CONFIG_NFT_MASQ); \
             `nft list ruleset` shows what nft can do here",
        )
    })
}

/// `nft delete table ip workshop_bridge`, if it is there.
pub fn remove_masquerade() -> Result<()> {
    if nft(&["list", "table", "ip", TABLE], None).is_err() {
        return Ok(()); // not there (or no nft)
    }
    nft(&["delete", "table", "ip", TABLE], None)
}

/// `net.ipv4.ip_forward` as it is: what [`restore_forwarding`] puts back
/// (the bridge carries it in its alias: it lives and dies with the bridge,
/// in the same namespace).
pub fn forwarding() -> Result<String> {
    let now = std::fs::read_to_string(IP_FORWARD)
        .with_context(|| format!("failed to read {IP_FORWARD}"))?;
    Ok(now.trim().to_string())
}

/// Turn forwarding on: `sysctl -w net.ipv4.ip_forward=1`.
pub fn enable_forwarding() -> Result<()> {
    restore_forwarding("1")
}

/// Put back the value [`forwarding`] read.
pub fn restore_forwarding(before: &str) -> Result<()> {
    let now = std::fs::read_to_string(IP_FORWARD).unwrap_or_default();
    if now.trim() != before {
        std::fs::write(IP_FORWARD, before)
            .with_context(|| format!("failed to write {IP_FORWARD}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn masquerades_the_subnet_leaving_by_another_link() {
        let text = ruleset(Subnet::of(Ipv4Addr::new(10, 201, 0, 0), 24), "wsbr0");
        assert!(text.contains("table ip workshop_bridge"), "{text}");
        assert!(
            text.contains("type nat hook postrouting priority srcnat"),
            "{text}"
        );
        assert!(
            text.contains("ip saddr 10.201.0.0/24 oifname != \"wsbr0\" masquerade"),
            "{text}"
        );
    }
}
