//! Chapter 4: the answers a student might give (see the crate's doc).

use crate::{chosen, unknown, Variant};
use anyhow::Result;
use std::path::Path;

pub const VARIANTS: &[Variant] = &[];

/// Exercise 4.1.
pub fn pivot_into(new_root: &Path) -> Result<()> {
    match chosen("4.1").as_deref() {
        None => solutions::ch04_rootfs::pivot_into(new_root),
        Some(other) => unknown("4.1", other),
    }
}

/// Exercise 4.2.
pub fn break_out_of_chroot() -> Result<()> {
    match chosen("4.2").as_deref() {
        None => solutions::ch04_rootfs::break_out_of_chroot(),
        Some(other) => unknown("4.2", other),
    }
}
