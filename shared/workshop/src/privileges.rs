//! Privileges: say clearly which capability is missing, and how to get it.

use crate::error::hinted;
use anyhow::{Context, Result};

/// The capabilities the course needs, with their bit numbers in `CapEff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Creating namespaces, mounting, pivot_root, sethostname, setns.
    SysAdmin = 21,
    /// Creating network links and addresses.
    NetAdmin = 12,
}

impl Capability {
    pub fn name(self) -> &'static str {
        match self {
            Capability::SysAdmin => "CAP_SYS_ADMIN",
            Capability::NetAdmin => "CAP_NET_ADMIN",
        }
    }
}

/// Parse the effective capability set from the text of `/proc/self/status`.
pub fn effective_capabilities(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Fail with an `error:` and a `hint:` unless this process holds `cap`.
/// `tool` is the binary's name and `why` says what the capability is for.
pub fn require(cap: Capability, tool: &str, why: &str) -> Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("failed to read /proc/self/status")?;
    let caps = effective_capabilities(&status).context("no CapEff line in /proc/self/status")?;
    if caps & (1u64 << cap as u32) != 0 {
        return Ok(());
    }
    Err(hinted(
        format!(
            "{tool} needs {} {why}, and this process does not have it (not root?)",
            cap.name()
        ),
        format!(
            "run it through cargo, which asks sudo for you (`cargo run -p {tool}`), \
             or as root: `sudo target/debug/{tool}`"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cap_eff() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        let caps = effective_capabilities(status).unwrap();
        assert_ne!(caps & (1 << Capability::SysAdmin as u32), 0);
        let none = "CapEff:\t0000000000000000\n";
        assert_eq!(effective_capabilities(none), Some(0));
        assert_eq!(effective_capabilities("Name: x\n"), None);
    }
}
