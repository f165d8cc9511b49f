//! Chapter 8 exercises, solved.

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{major, minor};
use std::collections::BTreeSet;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Exercise 8.1: mount an overlay of `lowers` on `merged`.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, merged: &Path) -> Result<()> {
    // The overlay must stay in this namespace: nothing shared with the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("failed to make the mounts private")?;
    // lowerdir=TOP:...:BASE, as given: the first one is the top.
    let lowerdir: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .with_context(|| {
        format!(
            "failed to mount overlay on {} ({options})",
            merged.display()
        )
    })
}

/// Exercise 8.2: what a container changed, read from its upper (`docker diff`).
pub fn diff(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    walk(upper, Path::new(""), lowers, &mut changes)?;
    changes.sort();
    Ok(changes
        .into_iter()
        .map(|(path, kind)| format!("{kind} {}", Path::new("/").join(path).display()))
        .collect())
}

/// One directory of the upper, `rel` beneath it.
fn walk(
    upper: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<(PathBuf, char)>,
) -> Result<()> {
    let dir = upper.join(rel);
    let mut names = BTreeSet::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("failed to read {}", dir.display()))?
    {
        let name = entry?.file_name();
        let rel = rel.join(&name);
        names.insert(name);
        // symlink_metadata: a link is listed, never followed.
        let meta = std::fs::symlink_metadata(upper.join(&rel))?;
        if is_whiteout(&meta) {
            out.push((rel, 'D'));
            continue;
        }
        out.push((rel.clone(), if in_lowers(lowers, &rel) { 'C' } else { 'A' }));
        if meta.is_dir() {
            walk(upper, &rel, lowers, out)?;
        }
    }
    // An opaque directory hides what the lowers have in it: deleted, unless
    // the upper has the name again.
    if !rel.as_os_str().is_empty() && is_opaque(&dir)? {
        for name in names_in_lowers(lowers, rel) {
            if !names.contains(&name) {
                out.push((rel.join(name), 'D'));
            }
        }
    }
    Ok(())
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && major(meta.rdev()) == 0 && minor(meta.rdev()) == 0
}

/// The first lower that has `rel` decides: a whiteout there means gone.
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    for lower in lowers {
        if let Ok(meta) = std::fs::symlink_metadata(lower.join(rel)) {
            return !is_whiteout(&meta);
        }
    }
    false
}

/// The names directly in directory `rel` that the lowers show.
fn names_in_lowers(lowers: &[PathBuf], rel: &Path) -> BTreeSet<OsString> {
    let mut names = BTreeSet::new();
    for lower in lowers {
        for entry in std::fs::read_dir(lower.join(rel))
            .into_iter()
            .flatten()
            .flatten()
        {
            if in_lowers(lowers, &rel.join(entry.file_name())) {
                names.insert(entry.file_name());
            }
        }
    }
    names
}

fn is_opaque(dir: &Path) -> Result<bool> {
    let path = CString::new(dir.as_os_str().as_bytes())?;
    let mut value = [0u8; 4];
    // SAFETY: NUL-terminated strings that live for the call; the kernel
    // writes at most value.len() bytes into value.
    let len = unsafe {
        nix::libc::lgetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if len < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(nix::libc::ENODATA) {
            return Ok(false);
        }
        bail!("failed to read the opaque xattr of {}: {e}", dir.display());
    }
    Ok(&value[..len as usize] == b"y")
}
