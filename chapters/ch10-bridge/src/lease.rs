//! Addresses on the bridge: a lease file per address taken, in a directory
//! of the bridge's own. The file's name is the address; its content says
//! which run holds it and the container's name. Creating a file that must
//! not exist yet (`O_CREAT | O_EXCL`) is one atomic step in the kernel: of
//! two runs that try the same address at the same moment, exactly one gets
//! it, the other gets `EEXIST` and tries the next. No lock is needed for
//! that, and the leases are also what the names (`/etc/hosts`) and the
//! bridge's lifetime are read from.

use anyhow::{bail, Context, Result};
use ch06_net::Subnet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

// ANCHOR: claim
/// Claim the first free address of `subnet` for a container: the first
/// lease file, from the subnet's second address on (the first is the
/// bridge's, the gateway) up to the one before the broadcast, that this
/// call creates itself. `O_EXCL` makes "is it free?" and "take it" one step:
/// looking first (`exists()`) and creating after would let two runs that
/// looked at the same moment take the same address. The record (who holds
/// it, and the container's name) is written into the new file.
pub fn claim_next(dir: &Path, subnet: Subnet, record: &str) -> Result<Ipv4Addr> {
    let first = u32::from(subnet.first_host()) + 1; // .1 is the gateway
    let last = u32::from(subnet.broadcast()) - 1;
    for n in first..=last {
        let address = Ipv4Addr::from(n);
        let path = dir.join(address.to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true) // O_CREAT | O_EXCL: fails with EEXIST if taken
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(record.as_bytes())
                    .with_context(|| format!("failed to write {}", path.display()))?;
                return Ok(address);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("failed to create {}", path.display()))
            }
        }
    }
    bail!("no free address left in {subnet}: every one has a lease")
}
// ANCHOR_END: claim

/// One lease as read back: the address, who holds it, the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    /// chapter 6's owner line: `workshop run PID started at TICKS`.
    pub owner: String,
    pub name: String,
    /// The veth's host end, the container's port on the bridge.
    pub veth: String,
    pub path: PathBuf,
}

/// The lease's record: owner, name and veth (its host end), one per line.
pub fn record(owner: &str, name: &str, veth: &str) -> String {
    format!("{owner}\nname {name}\nveth {veth}\n")
}

impl Lease {
    fn parse(path: &Path, text: &str) -> Option<Lease> {
        let address: Ipv4Addr = path.file_name()?.to_str()?.parse().ok()?;
        let mut lines = text.lines();
        let owner = lines.next().unwrap_or("").to_string();
        let mut lease = Lease {
            address,
            owner,
            name: String::new(),
            veth: String::new(),
            path: path.to_path_buf(),
        };
        for line in lines {
            if let Some(name) = line.strip_prefix("name ") {
                lease.name = name.to_string();
            } else if let Some(veth) = line.strip_prefix("veth ") {
                lease.veth = veth.to_string();
            }
        }
        Some(lease)
    }

    /// The PID of the run that holds it, from its owner line.
    pub fn pid(&self) -> Option<u32> {
        self.owner
            .strip_prefix("workshop run ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Whether the run that holds it is still running: the process with
    /// its PID is the one that started at the time the record says (a PID
    /// is reused once its process is gone; see chapter 6's `owner`). Ask it
    /// under chapter 6's lock, as every claim is made: an empty lease is
    /// then not one being claimed right now but one whose run was killed
    /// before it wrote its record, and is not held.
    pub fn is_held(&self) -> bool {
        match self.pid() {
            Some(pid) => ch06_net::owner(pid).as_deref() == Some(self.owner.as_str()),
            None => false,
        }
    }
}

/// Every lease in `dir`, by address (none if the directory is not there).
pub fn leases(dir: &Path) -> Result<Vec<Lease>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // just released
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
        };
        out.extend(Lease::parse(&path, &text));
    }
    out.sort_by_key(|l| u32::from(l.address));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet() -> Subnet {
        Subnet::of(Ipv4Addr::new(10, 9, 8, 0), 29)
    }

    fn tmp(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ch10-lease-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn claims_from_the_second_address_to_the_one_before_the_broadcast() {
        let dir = tmp("range");
        let got: Vec<_> = (0..5)
            .map(|_| claim_next(&dir, subnet(), "r").unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            ["10.9.8.2", "10.9.8.3", "10.9.8.4", "10.9.8.5", "10.9.8.6"]
        );
        let err = claim_next(&dir, subnet(), "r").unwrap_err().to_string();
        assert!(err.contains("no free address"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_released_address_is_taken_again_first() {
        let dir = tmp("reuse");
        for _ in 0..3 {
            claim_next(&dir, subnet(), "r").unwrap();
        }
        std::fs::remove_file(dir.join("10.9.8.3")).unwrap();
        assert_eq!(
            claim_next(&dir, subnet(), "r").unwrap(),
            Ipv4Addr::new(10, 9, 8, 3)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_its_records_back_and_knows_a_dead_owner() {
        let dir = tmp("records");
        let me = ch06_net::owner(std::process::id()).unwrap();
        claim_next(&dir, subnet(), &record(&me, "web", "wsh-1")).unwrap();
        claim_next(
            &dir,
            subnet(),
            &record("workshop run 4194303 started at 1", "old", "wsh-2"),
        )
        .unwrap();
        let all = leases(&dir).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].name.as_str(), all[0].veth.as_str()),
            ("web", "wsh-1")
        );
        assert_eq!(all[0].pid(), Some(std::process::id()));
        assert!(all[0].is_held());
        assert!(
            !all[1].is_held(),
            "no process has PID 4194303 (above pid_max)"
        );
        std::fs::write(dir.join("10.9.8.6"), "").unwrap();
        let empty = leases(&dir).unwrap().pop().unwrap();
        assert!(!empty.is_held(), "an empty lease is a killed claimer's");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
