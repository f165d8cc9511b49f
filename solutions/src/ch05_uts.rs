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

/// Exercise 5.3: a NIS domain name as well.
pub fn set_domainname(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 {
        anyhow::bail!("a domain name has 1 to 64 bytes, not {}", name.len());
    }
    // SAFETY: a pointer and the length of a live &str; the kernel copies it.
    let rc = unsafe { nix::libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("failed to setdomainname");
    }
    Ok(())
}
