//! Who the container's users are on the host: the lines of `uid_map` and
//! `gid_map`, and where they come from (the student's own id, or a range
//! of subordinate ids from /etc/subuid and /etc/subgid).

use anyhow::{bail, Context, Result};
use nix::unistd::{Gid, Pid, Uid};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use workshop::error::hinted;

/// One line of a `uid_map` or `gid_map`: `inside outside count`, ids
/// `inside..inside+count` in the namespace are `outside..outside+count` on
/// the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

impl IdRange {
    /// The id inside that `outside` is, if this range maps it.
    pub fn inside_of(&self, outside: u32) -> Option<u32> {
        let offset = outside.checked_sub(self.outside)?;
        (offset < self.count).then(|| self.inside + offset)
    }
}

/// A range of subordinate ids: one line `user:start:count` of /etc/subuid
/// or /etc/subgid, which the root of the machine granted to `user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubordinateIds {
    pub start: u32,
    pub count: u32,
}

/// The first range /etc/subuid (or /etc/subgid) grants to the user named
/// `name` or numbered `id` (shadow's newuidmap accepts either).
pub fn subordinate_ids(file_text: &str, name: Option<&str>, id: u32) -> Option<SubordinateIds> {
    file_text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let (who, start, count) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() || (Some(who) != name && who != id.to_string()) {
            return None;
        }
        let (start, count) = (start.parse().ok()?, count.parse().ok()?);
        (count > 0).then_some(SubordinateIds { start, count })
    })
}

/// `--map`: how many of the host's ids the container gets.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MapChoice {
    /// A range from /etc/subuid when newuidmap and a range are there, else your own id alone
    #[default]
    Auto,
    /// Your own uid and gid alone, as root (written by this tool, no helper)
    #[value(name = "self")]
    Self_,
    /// Root your own id, and 1.. a range of /etc/subuid and /etc/subgid (through newuidmap and newgidmap)
    Subids,
}

/// The helpers from shadow (Debian: uidmap) that write a map with ranges a
/// user may not write alone: they are setuid root, and check /etc/subuid.
pub const NEWUIDMAP: &str = "newuidmap";
pub const NEWGIDMAP: &str = "newgidmap";

/// The container's maps, and who writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
    /// newuidmap and newgidmap, when the maps hold subordinate ranges;
    /// `None`: this tool writes them itself (one id each).
    pub helpers: Option<(PathBuf, PathBuf)>,
}

/// Who the student is: what the maps are made from.
#[derive(Debug, Clone)]
pub struct Me {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
}

impl Me {
    pub fn now() -> Me {
        let uid = Uid::current();
        Me {
            uid: uid.as_raw(),
            gid: Gid::current().as_raw(),
            name: nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.name),
        }
    }
}

// ANCHOR: plan
/// The maps for `choice`. Your own id is always root inside (`0 UID 1`); a
/// subordinate range, when there is one, becomes ids 1 and up, so that an
/// image's other users (a `User` of chapter 9) exist too.
pub fn plan(
    choice: MapChoice,
    me: &Me,
    subuid: &str,
    subgid: &str,
    helpers: Option<(PathBuf, PathBuf)>,
) -> Result<Mapping> {
    let own = |id| IdRange {
        inside: 0,
        outside: id,
        count: 1,
    };
    let only_me = Mapping {
        uids: vec![own(me.uid)],
        gids: vec![own(me.gid)],
        helpers: None,
    };
    let ranges = (
        subordinate_ids(subuid, me.name.as_deref(), me.uid),
        subordinate_ids(subgid, me.name.as_deref(), me.gid).or_else(|| {
            // /etc/subgid names the user, not the group.
            subordinate_ids(subgid, me.name.as_deref(), me.uid)
        }),
    );
    let with_range = |u: SubordinateIds, g: SubordinateIds| {
        let rest = |s: SubordinateIds| IdRange {
            inside: 1,
            outside: s.start,
            count: s.count,
        };
        Mapping {
            uids: vec![own(me.uid), rest(u)],
            gids: vec![own(me.gid), rest(g)],
            helpers: helpers.clone(),
        }
    };
    match (choice, ranges, &helpers) {
        (MapChoice::Self_, ..) => Ok(only_me),
        (_, (Some(u), Some(g)), Some(_)) => Ok(with_range(u, g)),
        (MapChoice::Auto, ..) => Ok(only_me),
        (MapChoice::Subids, _, None) => Err(hinted(
            format!("--map subids needs {NEWUIDMAP} and {NEWGIDMAP}, and they are not installed"),
            "install them (Debian, Ubuntu: `sudo apt install uidmap`), or use --map self",
        )),
        (MapChoice::Subids, (u, _), Some(_)) => {
            let (file, who) = if u.is_none() {
                ("/etc/subuid", me.name.clone().unwrap_or(me.uid.to_string()))
            } else {
                ("/etc/subgid", me.name.clone().unwrap_or(me.gid.to_string()))
            };
            Err(hinted(
                format!("{file} grants no range of ids to {who}"),
                format!(
                    "ask root for one: `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {who}`, or use --map self"
                ),
            ))
        }
    }
}
// ANCHOR_END: plan

/// Where a program is on $PATH (and root's directories, where shadow's
/// tools sometimes live), if anywhere.
pub use workshop_host::find_on_path as find_program;

/// newuidmap and newgidmap, if both are installed.
pub fn helpers() -> Option<(PathBuf, PathBuf)> {
    Some((find_program(NEWUIDMAP)?, find_program(NEWGIDMAP)?))
}

/// The maps for `choice`, for the student running this, read from the
/// machine.
pub fn plan_for_me(choice: MapChoice) -> Result<Mapping> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default(); // absent: no ranges
    plan(
        choice,
        &Me::now(),
        &read("/etc/subuid"),
        &read("/etc/subgid"),
        helpers(),
    )
}

// ANCHOR: write_maps
/// From the host, once the container exists (it waits at its gate): write
/// its `uid_map` and `gid_map`. One id each, the tool writes them itself:
/// a process may map its own id into a namespace it created, and nothing
/// else. For the gid map it must first give up setgroups() in there
/// (`deny`), or a group it was in could be dropped to get past a
/// "not this group" permission. Ranges go through newuidmap/newgidmap,
/// setuid root, which check /etc/subuid first.
pub fn write_maps(container: Pid, mapping: &Mapping) -> Result<()> {
    let proc = PathBuf::from(format!("/proc/{container}"));
    match &mapping.helpers {
        None => {
            write_proc(&proc.join("setgroups"), "deny")?;
            write_proc(&proc.join("uid_map"), &lines(&mapping.uids))?;
            write_proc(&proc.join("gid_map"), &lines(&mapping.gids))
        }
        Some((newuidmap, newgidmap)) => {
            run_helper(newuidmap, container, &mapping.uids)?;
            run_helper(newgidmap, container, &mapping.gids)
        }
    }
}
// ANCHOR_END: write_maps

/// The text of a map file: one `inside outside count` line per range.
pub fn lines(ranges: &[IdRange]) -> String {
    ranges.iter().map(|r| format!("{r}\n")).collect()
}

/// `newuidmap PID 0 1000 1 1 100000 65536`: the PID, then each range's
/// three numbers.
pub fn helper_args(container: Pid, ranges: &[IdRange]) -> Vec<String> {
    std::iter::once(container.to_string())
        .chain(ranges.iter().flat_map(|r| {
            [r.inside, r.outside, r.count]
                .into_iter()
                .map(|n| n.to_string())
        }))
        .collect()
}

fn run_helper(program: &Path, container: Pid, ranges: &[IdRange]) -> Result<()> {
    let args = helper_args(container, ranges);
    let out = Command::new(program)
        .args(&args)
        .output()
        .with_context(|| format!("failed to run {}", program.display()))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(hinted(
            format!(
                "{} {} failed: {}",
                program.display(),
                args.join(" "),
                said.trim()
            ),
            "newuidmap must be setuid root (`ls -l` shows rws), and /etc/subuid must grant the range: or use --map self",
        ));
    }
    Ok(())
}

fn write_proc(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| {
        format!(
            "failed to write {:?} to {}",
            text.trim_end(),
            path.display()
        )
    })
}

/// Read a map back (`/proc/PID/uid_map`), as the kernel shows it.
pub fn read_map(text: &str) -> Result<Vec<IdRange>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let n: Vec<u32> = l
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .with_context(|| format!("not a map line: {l:?}"))?;
            match n[..] {
                [inside, outside, count] => Ok(IdRange {
                    inside,
                    outside,
                    count,
                }),
                _ => bail!("not a map line: {l:?}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Me {
        Me {
            uid: 1000,
            gid: 1000,
            name: Some("ada".into()),
        }
    }

    fn tools() -> Option<(PathBuf, PathBuf)> {
        Some(("/usr/bin/newuidmap".into(), "/usr/bin/newgidmap".into()))
    }

    #[test]
    fn finds_a_users_range_by_name_or_by_number() {
        let text = "bob:100000:65536\nada:165536:65536\n";
        assert_eq!(
            subordinate_ids(text, Some("ada"), 1000),
            Some(SubordinateIds {
                start: 165536,
                count: 65536
            })
        );
        assert_eq!(
            subordinate_ids("1000:200000:10\n", Some("ada"), 1000),
            Some(SubordinateIds {
                start: 200000,
                count: 10
            })
        );
        assert_eq!(subordinate_ids(text, Some("eve"), 1001), None);
        // A broken or empty line is no range.
        assert_eq!(
            subordinate_ids("ada:x:1\nada:5:0\nada:1\n", Some("ada"), 1),
            None
        );
    }

    #[test]
    fn self_maps_one_id_and_writes_it_alone() {
        let m = plan(
            MapChoice::Self_,
            &me(),
            "ada:100000:65536",
            "ada:100000:65536",
            tools(),
        )
        .unwrap();
        assert_eq!(lines(&m.uids), "0 1000 1\n");
        assert_eq!(lines(&m.gids), "0 1000 1\n");
        assert_eq!(m.helpers, None);
    }

    #[test]
    fn auto_takes_the_range_only_with_the_helpers_and_both_files() {
        let m = plan(
            MapChoice::Auto,
            &me(),
            "ada:100000:65536",
            "ada:300000:65536",
            tools(),
        )
        .unwrap();
        assert_eq!(lines(&m.uids), "0 1000 1\n1 100000 65536\n");
        assert_eq!(lines(&m.gids), "0 1000 1\n1 300000 65536\n");
        assert!(m.helpers.is_some());
        let no_tools = plan(MapChoice::Auto, &me(), "ada:100000:65536", "ada:1:2", None).unwrap();
        assert_eq!(lines(&no_tools.uids), "0 1000 1\n");
        let no_gids = plan(MapChoice::Auto, &me(), "ada:100000:65536", "", tools()).unwrap();
        assert_eq!(no_gids.helpers, None);
    }

    #[test]
    fn subids_says_what_is_missing() {
        let e = plan(MapChoice::Subids, &me(), "", "", tools()).unwrap_err();
        assert!(
            e.to_string()
                .contains("/etc/subuid grants no range of ids to ada"),
            "{e}"
        );
        let e = plan(MapChoice::Subids, &me(), "ada:1:2", "", tools()).unwrap_err();
        assert!(e.to_string().contains("/etc/subgid"), "{e}");
        let e = plan(MapChoice::Subids, &me(), "ada:1:2", "ada:1:2", None).unwrap_err();
        let hint = &e.downcast_ref::<workshop::error::Hinted>().unwrap().hint;
        assert!(hint.contains("apt install uidmap"), "{hint}");
    }

    #[test]
    fn helper_arguments_are_the_pid_then_each_range() {
        let ranges = [
            IdRange {
                inside: 0,
                outside: 1000,
                count: 1,
            },
            IdRange {
                inside: 1,
                outside: 100000,
                count: 65536,
            },
        ];
        assert_eq!(
            helper_args(Pid::from_raw(42), &ranges).join(" "),
            "42 0 1000 1 1 100000 65536"
        );
    }

    #[test]
    fn reads_a_map_back_and_translates_ids() {
        let map = read_map("         0       1000          1\n         1     100000      65536\n")
            .unwrap();
        assert_eq!(map[1].inside_of(100_004), Some(5));
        assert_eq!(map[0].inside_of(1000), Some(0));
        assert_eq!(map[0].inside_of(1001), None);
        assert!(read_map("0 1\n").is_err());
    }
}
