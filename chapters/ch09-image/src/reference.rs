//! An image's name: `NAME[:TAG]`, the tag `latest` when none is given.

use std::fmt;
use std::str::FromStr;

/// `NAME:TAG`. NAME is lowercase letters, digits and `._-/` (as docker's
/// path components, without a registry host or port); TAG is letters,
/// digits and `._-`, at most 128, not starting with `.` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub name: String,
    pub tag: String,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

impl FromStr for Reference {
    type Err = String;

    fn from_str(text: &str) -> Result<Reference, String> {
        let (name, tag) = match text.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (text, "latest"),
        };
        let name_ok = !name.is_empty()
            && name.len() <= 255
            && name.split('/').all(|part| {
                !part.is_empty()
                    && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            });
        if !name_ok {
            return Err(format!(
                "{name:?} is not an image name: lowercase letters, digits, `.`, `_`, `-` and `/` between parts"
            ));
        }
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !tag_ok {
            return Err(format!(
                "{tag:?} is not a tag: letters, digits, `.`, `_` and `-`, at most 128, not starting with `.` or `-`"
            ));
        }
        Ok(Reference {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        let r: Reference = "busybox".parse().unwrap();
        assert_eq!(r.to_string(), "busybox:latest");
        let r: Reference = "workshop/app:v1.2".parse().unwrap();
        assert_eq!((r.name.as_str(), r.tag.as_str()), ("workshop/app", "v1.2"));
        for bad in [
            "", "Busybox", "a//b", "a:", "a:-x", "a:b c", "/a", "a/", "../x",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} was accepted");
        }
    }
}
