//! Chapter 8: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub const VARIANTS: &[Variant] = &[
    wrong(
        "8.1",
        "base-first",
        "lowerdir with the base first (lowers reversed, as a stack is drawn bottom up): the base's names hide the top's",
    ).because("the FIRST is the top"),
    wrong(
        "8.1",
        "top-only",
        "lowerdir=lowers[0] only, as if there were one lower: the layers below are not there",
    ).because("some of the layers are missing"),
    wrong(
        "8.1",
        "no-private",
        "mounts the overlay at once, the namespace's mounts still shared with the host: the mount propagates there",
    ).because("the overlay reached the stand-in host"),
    wrong(
        "8.1",
        "bind-lower",
        "bind-mounts the top lower on merged: one layer, and every write lands in it",
    ).because("A bind mount of a layer"),
    wrong(
        "8.1",
        "work-in-upper",
        "workdir=upper/work: inside the upper, which the kernel refuses",
    ).because("workdir is inside upperdir"),
    wrong(
        "8.1",
        "same-dir",
        "upperdir and workdir both the upper: the kernel refuses",
    ).because("upperdir and workdir are the same directory"),
    wrong(
        "8.1",
        "swapped",
        "upperdir=work, workdir=upper: the writes land in work",
    ).because("upperdir and workdir are swapped"),
    wrong(
        "8.1",
        "read-only",
        "lowerdir only, no upperdir and workdir: a read-only overlay",
    ).because("no upperdir makes a read-only overlay"),
    right(
        "8.1",
        "libc",
        "the same two mount(2) calls through libc, the options built in a CString",
    ),
    right(
        "8.1",
        "helpers",
        "the chapters' helpers: ch03_mount::make_mounts_private, then ch08_overlay::overlay_options",
    ),
    wrong(
        "8.2",
        "all-added",
        "every name of the upper is an A: the lowers are never looked at",
    ).because("a name the lowers have is a C"),
    wrong(
        "8.2",
        "whiteout-added",
        "a whiteout is listed like any file: C (its name is in the lowers), where the container deleted it",
    ).because("a deletion, D, not a new or changed file"),
    wrong(
        "8.2",
        "top-only",
        "looks names up in the first lower only: what only the base has is an A",
    ).because("look in every lower, top first"),
    wrong(
        "8.2",
        "any-layer",
        "a name is in the lowers if any layer holds it, a whiteout too: the top layer's whiteout does not hide the base's file",
    ).because("the top layer's whiteout hides it"),
    wrong(
        "8.2",
        "no-opaque",
        "opaque directories read like any other: what the lowers held in them is not listed as D",
    ).because("is opaque (trusted.overlay.opaque = y"),
    wrong(
        "8.2",
        "follow",
        "std::fs::metadata (follows links): a link to a directory is walked into",
    ).because("followed the symlink"),
    wrong(
        "8.2",
        "by-line",
        "sorts the lines as strings: by the letter first, then the path",
    ).because("not sorted by path"),
    wrong(
        "8.2",
        "relative",
        "paths relative to the upper (`A new-dir`), not as the container sees them",
    ).because("starting at `/`"),
    right(
        "8.2",
        "stack",
        "no recursion: a stack of directories to read, a BTreeMap from path to letter",
    ),
    right(
        "8.2",
        "helpers",
        "the chapter's helpers for what a whiteout, an opaque directory and a name in the lowers are (ch08_overlay::is_whiteout, is_opaque, in_lowers)",
    ),
];

/// Exercise 8.1.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, merged: &Path) -> Result<()> {
    let private = || {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .context("failed to make the mounts private")
    };
    let overlay = |options: String| {
        mount(
            Some("overlay"),
            merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .with_context(|| format!("failed to mount overlay ({options})"))
    };
    let joined = |lowers: &[PathBuf]| {
        let all: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
        all.join(":")
    };
    let options = |lowerdir: String, upper: &Path, work: &Path| {
        format!(
            "lowerdir={lowerdir},upperdir={},workdir={}",
            upper.display(),
            work.display()
        )
    };
    match chosen("8.1").as_deref() {
        None => solutions::ch08_overlay::mount_overlay(lowers, upper, work, merged),
        Some("base-first") => {
            private()?;
            let mut reversed = lowers.to_vec();
            reversed.reverse();
            overlay(options(joined(&reversed), upper, work))
        }
        Some("top-only") => {
            private()?;
            overlay(options(lowers[0].display().to_string(), upper, work))
        }
        Some("no-private") => overlay(options(joined(lowers), upper, work)),
        Some("bind-lower") => {
            private()?;
            mount(
                Some(&lowers[0]),
                merged,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .context("failed to bind the lower")
        }
        Some("work-in-upper") => {
            private()?;
            let inner = upper.join("work");
            std::fs::create_dir_all(&inner)?;
            overlay(options(joined(lowers), upper, &inner))
        }
        Some("same-dir") => {
            private()?;
            overlay(options(joined(lowers), upper, upper))
        }
        Some("swapped") => {
            private()?;
            overlay(options(joined(lowers), work, upper))
        }
        Some("read-only") => {
            private()?;
            overlay(format!("lowerdir={}", joined(lowers)))
        }
        Some("libc") => {
            use nix::libc;
            use std::ffi::CString;
            use std::os::unix::ffi::OsStrExt;
            let data = CString::new(options(joined(lowers), upper, work))?;
            let target = CString::new(merged.as_os_str().as_bytes())?;
            let calls = [
                (
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ),
                (
                    c"overlay".as_ptr(),
                    target.as_ptr(),
                    c"overlay".as_ptr(),
                    0,
                    data.as_ptr().cast(),
                ),
            ];
            for (source, at, fstype, flags, data) in calls {
                // SAFETY: NUL-terminated strings that outlive the call, or null.
                if unsafe { libc::mount(source, at, fstype, flags, data) } != 0 {
                    return Err(std::io::Error::last_os_error()).context("mount(2)");
                }
            }
            Ok(())
        }
        Some("helpers") => {
            ch03_mount::make_mounts_private()?;
            overlay(ch08_overlay::overlay_options(lowers, upper, work)?)
        }
        Some(other) => unknown("8.1", other),
    }
}

/// Exercise 8.2.
pub fn diff(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<String>> {
    let student = Student::default();
    match chosen("8.2").as_deref() {
        None => solutions::ch08_overlay::diff(upper, lowers),
        Some("all-added") => Student {
            all_added: true,
            ..student
        }
        .diff(upper, lowers),
        Some("whiteout-added") => Student {
            whiteout_added: true,
            ..student
        }
        .diff(upper, lowers),
        Some("top-only") => Student {
            top_only: true,
            ..student
        }
        .diff(upper, lowers),
        Some("any-layer") => Student {
            any_layer: true,
            ..student
        }
        .diff(upper, lowers),
        Some("no-opaque") => Student {
            no_opaque: true,
            ..student
        }
        .diff(upper, lowers),
        Some("follow") => Student {
            follow: true,
            ..student
        }
        .diff(upper, lowers),
        Some("by-line") => Student {
            by_line: true,
            ..student
        }
        .diff(upper, lowers),
        Some("relative") => Student {
            relative: true,
            ..student
        }
        .diff(upper, lowers),
        Some("stack") => stack(upper, lowers),
        Some("helpers") => helpers(upper, lowers),
        Some(other) => unknown("8.2", other),
    }
}

/// A student's diff, right unless one of its mistakes is switched on.
#[derive(Default, Clone, Copy)]
struct Student {
    all_added: bool,
    whiteout_added: bool,
    top_only: bool,
    any_layer: bool,
    no_opaque: bool,
    follow: bool,
    by_line: bool,
    relative: bool,
}

impl Student {
    fn diff(self, upper: &Path, lowers: &[PathBuf]) -> Result<Vec<String>> {
        let mut found = Vec::new();
        self.walk(upper, Path::new(""), lowers, &mut found)?;
        found.sort();
        let mut lines: Vec<String> = found
            .into_iter()
            .map(|(path, kind)| {
                let shown = if self.relative {
                    path
                } else {
                    Path::new("/").join(path)
                };
                format!("{kind} {}", shown.display())
            })
            .collect();
        if self.by_line {
            lines.sort();
        }
        Ok(lines)
    }

    fn walk(
        self,
        upper: &Path,
        rel: &Path,
        lowers: &[PathBuf],
        out: &mut Vec<(PathBuf, char)>,
    ) -> Result<()> {
        let dir = upper.join(rel);
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name();
            let rel = rel.join(&name);
            names.insert(name);
            let path = upper.join(&rel);
            let meta = if self.follow {
                std::fs::metadata(&path)?
            } else {
                std::fs::symlink_metadata(&path)?
            };
            if whiteout(&meta) && !self.whiteout_added {
                out.push((rel, 'D'));
                continue;
            }
            let kind = if !self.all_added && self.in_lowers(lowers, &rel) {
                'C'
            } else {
                'A'
            };
            out.push((rel.clone(), kind));
            if meta.is_dir() {
                self.walk(upper, &rel, lowers, out)?;
            }
        }
        if !self.no_opaque && !rel.as_os_str().is_empty() && ch08_overlay::is_opaque(&dir) {
            for lower in lowers {
                for entry in std::fs::read_dir(lower.join(rel)).into_iter().flatten() {
                    let name = entry?.file_name();
                    let path = rel.join(&name);
                    if !names.contains(&name)
                        && self.in_lowers(lowers, &path)
                        && !out.contains(&(path.clone(), 'D'))
                    {
                        out.push((path, 'D'));
                    }
                }
            }
        }
        Ok(())
    }

    fn in_lowers(self, lowers: &[PathBuf], rel: &Path) -> bool {
        let lowers = if self.top_only { &lowers[..1] } else { lowers };
        for lower in lowers {
            if let Ok(meta) = std::fs::symlink_metadata(lower.join(rel)) {
                if self.any_layer {
                    return true;
                }
                return !whiteout(&meta);
            }
        }
        false
    }
}

fn whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Right, another way: no recursion, a map from path to letter.
fn stack(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<String>> {
    let visible = |rel: &Path| {
        lowers
            .iter()
            .find_map(|l| std::fs::symlink_metadata(l.join(rel)).ok())
            .is_some_and(|m| !whiteout(&m))
    };
    let mut changes: BTreeMap<PathBuf, char> = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let dir = upper.join(&rel);
        let mut here = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            here.insert(entry.file_name());
            // DirEntry::file_type does not follow links.
            let kind = entry.file_type()?;
            let meta = entry.metadata()?;
            let letter = if kind.is_char_device() && meta.rdev() == 0 {
                'D'
            } else if visible(&path) {
                'C'
            } else {
                'A'
            };
            if kind.is_dir() {
                todo.push(path.clone());
            }
            changes.insert(path, letter);
        }
        if rel.as_os_str().is_empty() || !ch08_overlay::is_opaque(&dir) {
            continue;
        }
        for lower in lowers {
            let Ok(entries) = std::fs::read_dir(lower.join(&rel)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = rel.join(entry.file_name());
                if !here.contains(&entry.file_name()) && visible(&path) {
                    changes.insert(path, 'D');
                }
            }
        }
    }
    Ok(changes
        .into_iter()
        .map(|(path, letter)| format!("{letter} /{}", path.display()))
        .collect())
}

/// Right, with the chapter's helpers for the three rules.
fn helpers(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<String>> {
    fn walk(
        upper: &Path,
        rel: &Path,
        lowers: &[PathBuf],
        out: &mut Vec<(PathBuf, char)>,
    ) -> Result<()> {
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(upper.join(rel))? {
            let name = entry?.file_name();
            let rel = rel.join(&name);
            names.insert(name);
            let meta = std::fs::symlink_metadata(upper.join(&rel))?;
            if ch08_overlay::is_whiteout(&meta) {
                out.push((rel, 'D'));
            } else {
                let letter = if ch08_overlay::in_lowers(lowers, &rel) {
                    'C'
                } else {
                    'A'
                };
                out.push((rel.clone(), letter));
                if meta.is_dir() {
                    walk(upper, &rel, lowers, out)?;
                }
            }
        }
        if !rel.as_os_str().is_empty() && ch08_overlay::is_opaque(&upper.join(rel)) {
            let below: BTreeSet<_> = lowers
                .iter()
                .filter_map(|l| std::fs::read_dir(l.join(rel)).ok())
                .flat_map(|e| e.flatten().map(|e| e.file_name()))
                .filter(|n| !names.contains(n) && ch08_overlay::in_lowers(lowers, &rel.join(n)))
                .collect();
            out.extend(below.into_iter().map(|n| (rel.join(n), 'D')));
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(upper, Path::new(""), lowers, &mut out)?;
    out.sort();
    Ok(out
        .into_iter()
        .map(|(p, k)| format!("{k} {}", Path::new("/").join(p).display()))
        .collect())
}
