//! Chapter 5: a UTS namespace and a hostname of the container's own.
//!
//! UTS ("UNIX Time-sharing System") namespaces hold two names: the hostname
//! and the NIS domain name, what `uname -n` and `hostname` print. A new one
//! starts as a copy of the parent's; sethostname() then changes the copy only.

use anyhow::{Context, Result};

/// The longest hostname Linux accepts (HOST_NAME_MAX).
pub const HOST_NAME_MAX: usize = 64;

// ANCHOR: validate
/// Check a hostname before anything is created: 1 to 64 bytes, dot-separated
/// labels of letters, digits and hyphens (RFC 1123), no label empty, longer
/// than 63, or starting or ending with a hyphen. The kernel itself only checks
/// the length; the rest keeps names that other programs can resolve.
pub fn validate_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a hostname cannot be empty".into());
    }
    if name.len() > HOST_NAME_MAX {
        return Err(format!(
            "a hostname is at most {HOST_NAME_MAX} bytes, this one has {}",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(
                "empty label: a hostname cannot start or end with a dot, or have two in a row"
                    .into(),
            );
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{c:?} is not allowed: use letters, digits, hyphens and dots"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with a hyphen"));
        }
    }
    Ok(())
}
// ANCHOR_END: validate

/// `--hostname NAME`: the option every chapter from 5 on takes, checked while
/// the command line is parsed, before anything is created.
#[derive(clap::Args, Debug, Clone)]
pub struct HostnameOption {
    /// The container's hostname (letters, digits, hyphens and dots; at most 64 bytes)
    #[arg(long = "hostname", value_name = "NAME", default_value = "workshop", value_parser = parse_hostname)]
    pub name: String,
}

/// For clap: `--hostname` is checked while the command line is parsed.
pub fn parse_hostname(name: &str) -> Result<String, String> {
    validate_hostname(name).map(|()| name.to_string())
}

// ANCHOR: set
/// Give this UTS namespace its own hostname. Call it in a process that is in a
/// new UTS namespace (CLONE_NEWUTS), or it renames the host.
pub fn set_hostname(name: &str) -> Result<()> {
    nix::unistd::sethostname(name).with_context(|| format!("failed to sethostname({name:?})"))
}
// ANCHOR_END: set

pub fn hostname() -> Result<String> {
    Ok(nix::unistd::gethostname()
        .context("failed to gethostname")?
        .to_string_lossy()
        .into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names() {
        for name in [
            "box1",
            "workshop",
            "a",
            "my-box.example",
            &"a".repeat(63),
            &format!("{}.{}", "a".repeat(31), "b".repeat(32)),
        ] {
            assert_eq!(validate_hostname(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn bad_names() {
        for name in [
            "",
            "bad_name",
            "-x",
            "x-",
            "a..b",
            ".a",
            "a.",
            "sp ace",
            "é",
            &"a".repeat(64),
            &"a.".repeat(33),
        ] {
            assert!(
                validate_hostname(name).is_err(),
                "{name:?} should be refused"
            );
        }
    }
}
