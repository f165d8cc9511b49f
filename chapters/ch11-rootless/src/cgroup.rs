//! Cgroups without root. Creating a cgroup is a mkdir in cgroupfs, and the
//! directories belong to root: a normal user can make one only beneath a
//! cgroup that root *delegated* to them (chown'd its directory and its
//! `cgroup.procs`, `cgroup.subtree_control` and `cgroup.threads` to them),
//! as systemd does for `systemd-run --user --scope -p Delegate=yes`. Only
//! cgroup v2 can be delegated safely. With no delegation, the container
//! runs without limits, and the tool says why (as rootless podman does).

use anyhow::{Context, Result};
use ch07_cgroups::cgroup::v2::{self, CONTROLLERS, SUBTREE_CONTROL};
use ch07_cgroups::cgroup::{
    make_new_dir, remove_dir_patiently, write, Limits, MemoryLimit, Version, CGROUP_PROCS, ROOT,
};
use nix::unistd::{AccessFlags, Uid};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use workshop::error::hinted;
use workshop::Narrator;

/// How a student gets a delegated cgroup of their own, on a systemd machine.
pub const HOW_TO_DELEGATE: &str =
    "systemd-run --user --scope -p Delegate=yes target/debug/ch11-rootless --cpus 0.5 -- ...";

/// Why there is no cgroup to use, or the delegated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delegation {
    /// `dir` (the cgroup we are in) is ours, with these controllers offered.
    Ours { dir: PathBuf, offered: Vec<String> },
    /// Not usable: why, in a sentence.
    No(String),
}

// ANCHOR: delegated
/// Whether the cgroup this process is in (`our_cgroup`, the `0::` line of
/// /proc/self/cgroup made a path) was delegated to `uid`: on cgroup v2, its
/// directory and the files that move processes and enable controllers are
/// the user's.
pub fn delegation(version: Version, our_cgroup: &Path, uid: u32) -> Delegation {
    if version != Version::V2 {
        return Delegation::No(
            "cgroup v1 controllers cannot be delegated to a user (on v1, a user's cgroup could \
             escape its limits): only cgroup v2 can"
                .into(),
        );
    }
    let owned = |p: &Path| p.metadata().is_ok_and(|m| m.uid() == uid);
    let ours = owned(our_cgroup)
        && [CGROUP_PROCS, SUBTREE_CONTROL]
            .iter()
            .all(|f| owned(&our_cgroup.join(f)) && writable(&our_cgroup.join(f)));
    if !ours {
        return Delegation::No(format!(
            "the cgroup you are in, {}, was not delegated to you (it is not yours to write)",
            our_cgroup.display()
        ));
    }
    let offered = std::fs::read_to_string(our_cgroup.join(CONTROLLERS))
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    Delegation::Ours {
        dir: our_cgroup.to_path_buf(),
        offered,
    }
}
// ANCHOR_END: delegated

fn writable(path: &Path) -> bool {
    nix::unistd::access(path, AccessFlags::W_OK).is_ok()
}

/// The cgroup this process is in, on cgroup v2.
pub fn our_cgroup() -> Result<PathBuf> {
    let text =
        std::fs::read_to_string("/proc/self/cgroup").context("failed to read /proc/self/cgroup")?;
    v2::dir_in(&text)
}

/// A container's cgroup beneath a delegated one. cgroup v2's "no internal
/// processes" rule: a cgroup that enables controllers for its children may
/// hold no process itself, and the delegated cgroup holds us. So the tool
/// first moves itself into a leaf of its own beneath it (`tool-PID`: the
/// house rule allows a move beneath, never out), enables the controllers,
/// and makes the container's cgroup (`ctr-PID`) beside its leaf. When
/// dropped, everything is undone in reverse, and the tool is back where it
/// started.
#[derive(Debug)]
pub struct Delegated {
    pub delegated: PathBuf,
    pub tool_leaf: PathBuf,
    pub dir: PathBuf,
    enabled: Vec<&'static str>,
}

// ANCHOR: create
impl Delegated {
    pub fn create(delegated: &Path, offered: &[String], limits: &Limits) -> Result<Delegated> {
        let wanted = needed(limits);
        if let Some(missing) = wanted.iter().find(|c| !offered.iter().any(|o| o == *c)) {
            return Err(hinted(
                format!(
                    "the {missing} controller is not delegated to your cgroup {} (it offers: {})",
                    delegated.display(),
                    offered.join(" ")
                ),
                "systemd delegates memory and pids to users by default, and cpu only when asked: \
                 see the book's troubleshooting (Delegate= in user@.service)",
            ));
        }
        let me = std::process::id();
        let mut cgroup = Delegated {
            delegated: delegated.to_path_buf(),
            tool_leaf: delegated.join(format!("tool-{me}")),
            dir: delegated.join(format!("ctr-{me}")),
            enabled: Vec::new(),
        };
        make_new_dir(&cgroup.tool_leaf)?;
        write(&cgroup.tool_leaf, CGROUP_PROCS, "0")?; // 0: this process
        let already = std::fs::read_to_string(delegated.join(SUBTREE_CONTROL)).unwrap_or_default();
        for c in wanted {
            if !already.split_whitespace().any(|e| e == c) {
                write(delegated, SUBTREE_CONTROL, &format!("+{c}")).map_err(|e| {
                    hinted(
                        format!("{e:#}"),
                        format!(
                            "other processes share your cgroup (see {}/{CGROUP_PROCS}), and a cgroup \
                             that enables controllers may hold none: start the tool in a cgroup of its \
                             own, `{HOW_TO_DELEGATE}`",
                            delegated.display()
                        ),
                    )
                })?;
                cgroup.enabled.push(c);
            }
        }
        make_new_dir(&cgroup.dir)?;
        v2::set_limits(&cgroup.dir, limits)?;
        Ok(cgroup)
    }
    // ANCHOR_END: create

    /// The container's cgroup, opened for clone3()'s CLONE_INTO_CGROUP.
    pub fn open_dir(&self) -> Result<std::os::fd::OwnedFd> {
        let file = std::fs::File::open(&self.dir)
            .with_context(|| format!("failed to open {}", self.dir.display()))?;
        Ok(file.into())
    }

    /// Chapter 7's warning, for this cgroup.
    pub fn warn_if_oom_killed(
        &self,
        exit: workshop::process::Exit,
        memory: Option<&MemoryLimit>,
        say: &Narrator,
    ) {
        let oom_kills = v2::oom_kills(&self.dir).unwrap_or(0);
        ch07_cgroups::warn_of_oom(oom_kills, exit, memory, say);
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let _ = remove_dir_patiently(&self.dir);
        for c in self.enabled.iter().rev() {
            let _ = write(&self.delegated, SUBTREE_CONTROL, &format!("-{c}"));
        }
        let _ = write(&self.delegated, CGROUP_PROCS, "0"); // back where we started
        let _ = std::fs::remove_dir(&self.tool_leaf);
    }
}

/// The controllers `limits` need, and no more (chapter 7 always takes cpu,
/// to measure; a delegation may not offer it).
pub fn needed(limits: &Limits) -> Vec<&'static str> {
    [
        (limits.cpu.is_some(), "cpu"),
        (limits.pids.is_some(), "pids"),
        (limits.memory.is_some(), "memory"),
    ]
    .into_iter()
    .filter_map(|(asked, c)| asked.then_some(c))
    .collect()
}

/// Remove what killed runs left in a delegated cgroup: `ctr-PID` and
/// `tool-PID` of a PID that no longer runs (empty: their processes died
/// with the run). Returns what it removed.
pub fn reclaim_stale(delegated: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(delegated) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("ctr-")
            .or_else(|| name.strip_prefix("tool-"))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists()
                && std::fs::remove_dir(entry.path()).is_ok()
            {
                removed.push(entry.path());
            }
        }
    }
    removed
}

/// The cgroup for `limits`: none when none is asked for; beneath the
/// delegated cgroup when there is one; else none, with a warning that says
/// why the limits are not applied.
pub fn for_limits(limits: &Limits, say: &Narrator) -> Result<Option<Delegated>> {
    if *limits == Limits::default() {
        return Ok(None);
    }
    let found = match (ch07_cgroups::cgroup::detect(), our_cgroup()) {
        (Ok(version), Ok(ours)) => delegation(version, &ours, Uid::current().as_raw()),
        (Err(e), _) | (_, Err(e)) => Delegation::No(format!("{e:#}")),
    };
    match found {
        Delegation::Ours { dir, offered } => {
            for stale in reclaim_stale(&dir) {
                say.note(&format!(
                    "removed {}, a cgroup left by a run that was killed",
                    stale.display()
                ));
            }
            Delegated::create(&dir, &offered, limits).map(Some)
        }
        Delegation::No(why) => {
            say.warn(&format!("running without limits: {why}"));
            say.note(&format!(
                "on a systemd machine with cgroup v2, get a delegated cgroup with `{HOW_TO_DELEGATE}`"
            ));
            Ok(None)
        }
    }
}

/// The root of the cgroup v2 tree, for the book's shell lines.
pub fn root() -> &'static Path {
    Path::new(ROOT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ch07_cgroups::cgroup::CpuQuota;
    use workshop_testkit::TempDir;

    /// A directory that looks like a cgroup v2 the user was given.
    fn temp_cgroup(name: &str) -> TempDir {
        let dir = TempDir::new(&format!("ch11-cgroup-{name}"));
        for f in [CGROUP_PROCS, SUBTREE_CONTROL] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        std::fs::write(dir.path().join(CONTROLLERS), "cpu memory pids\n").unwrap();
        dir
    }

    #[test]
    fn only_v2_can_be_delegated() {
        let temp = temp_cgroup("v1");
        let dir = temp.path();
        let me = nix::unistd::getuid().as_raw();
        assert!(
            matches!(delegation(Version::V1, dir, me), Delegation::No(why) if why.contains("v1"))
        );
    }

    #[test]
    fn a_cgroup_is_delegated_when_it_and_its_files_are_the_users() {
        let temp = temp_cgroup("ours");
        let dir = temp.path();
        let me = nix::unistd::getuid().as_raw();
        match delegation(Version::V2, dir, me) {
            Delegation::Ours { offered, .. } => assert_eq!(offered, ["cpu", "memory", "pids"]),
            other => panic!("{other:?}"),
        }
        // Someone else's: not delegated to them.
        assert!(matches!(
            delegation(Version::V2, dir, me + 1),
            Delegation::No(_)
        ));
        // Its cgroup.procs missing: not usable.
        std::fs::remove_file(dir.join(CGROUP_PROCS)).unwrap();
        assert!(matches!(
            delegation(Version::V2, dir, me),
            Delegation::No(_)
        ));
    }

    #[test]
    fn only_the_controllers_a_limit_needs_are_asked_for() {
        assert!(needed(&Limits::default()).is_empty());
        let limits = Limits {
            cpu: Some(CpuQuota::percent(50)),
            pids: Some(10),
            memory: None,
        };
        assert_eq!(needed(&limits), ["cpu", "pids"]);
    }

    #[test]
    fn a_missing_controller_is_named_before_anything_is_made() {
        let temp = temp_cgroup("missing");
        let dir = temp.path();
        let limits = Limits {
            cpu: None,
            pids: Some(10),
            memory: None,
        };
        let err = Delegated::create(dir, &["memory".into()], &limits).unwrap_err();
        assert!(
            err.to_string()
                .contains("the pids controller is not delegated"),
            "{err}"
        );
        let made: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(made.is_empty(), "nothing made: {made:?}");
    }

    #[test]
    fn reclaims_the_cgroups_of_dead_runs_only() {
        let temp = temp_cgroup("stale");
        let dir = temp.path();
        let dead = 4_000_000; // above pid_max's ceiling: no such process
        let alive = std::process::id();
        for name in [
            format!("ctr-{dead}"),
            format!("tool-{dead}"),
            format!("ctr-{alive}"),
            "other".into(),
        ] {
            std::fs::create_dir(dir.join(name)).unwrap();
        }
        let mut removed: Vec<String> = reclaim_stale(dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        assert_eq!(removed, [format!("ctr-{dead}"), format!("tool-{dead}")]);
        assert!(dir.join(format!("ctr-{alive}")).exists() && dir.join("other").exists());
    }
}
