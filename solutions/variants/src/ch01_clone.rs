//! Chapter 1: the answers a student might give (see the crate's doc).

use crate::{chosen, unknown, Variant};
use anyhow::Result;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

pub const VARIANTS: &[Variant] = &[];

/// Exercise 1.1.
pub fn spawn_as_pid_1(argv: &[String]) -> Result<Pid> {
    match chosen("1.1").as_deref() {
        None => solutions::ch01_clone::spawn_as_pid_1(argv),
        Some(other) => unknown("1.1", other),
    }
}

/// Exercise 1.2.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match chosen("1.2").as_deref() {
        None => solutions::ch01_clone::exit_code(status),
        Some(other) => unknown("1.2", other),
    }
}
