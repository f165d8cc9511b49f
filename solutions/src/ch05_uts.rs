//! Chapter 5 exercises, solved.

use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// Exercise 5.1: refuse a bad hostname before anything is created.
pub fn validate_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("a hostname has 1 to 64 bytes, not {}", name.len()));
    }
    for label in name.split('.') {
        let ok_chars = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if label.is_empty()
            || label.len() > 63
            || !ok_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!("bad label {label:?} in {name:?}"));
        }
    }
    Ok(())
}

/// Exercise 5.2: start `argv` in a new UTS namespace named `hostname`.
pub fn spawn_with_hostname(hostname: &str, argv: &[String]) -> Result<Pid> {
    validate_hostname(hostname).map_err(anyhow::Error::msg)?;
    ch01_clone::clone_child(CloneFlags::CLONE_NEWUTS, || {
        nix::unistd::sethostname(hostname).context("failed to sethostname")?;
        workshop::process::exec(argv)
    })
}
