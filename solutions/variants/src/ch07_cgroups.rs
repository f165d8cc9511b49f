//! Chapter 7: the answers a student might give (see the crate's doc).

use crate::{chosen, unknown, Variant};
use anyhow::Result;
use std::path::Path;

pub const VARIANTS: &[Variant] = &[];

/// Exercise 7.1.
pub fn write_cpu_limit(dir: &Path, cpus: f64, v2: bool) -> Result<()> {
    match chosen("7.1").as_deref() {
        None => solutions::ch07_cgroups::write_cpu_limit(dir, cpus, v2),
        Some(other) => unknown("7.1", other),
    }
}

/// Exercise 7.2.
pub fn limit_tasks(dir: &Path, max: u64, pid: nix::unistd::Pid) -> Result<()> {
    match chosen("7.2").as_deref() {
        None => solutions::ch07_cgroups::limit_tasks(dir, max, pid),
        Some(other) => unknown("7.2", other),
    }
}
