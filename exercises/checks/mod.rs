//! The checks for the exercises: one set, run against `exercises/` by
//! `cargo test -p exercises` and against `solutions/` by `cargo test`.
//!
//! Namespace work does not run in this (multithreaded) test process: a check
//! starts the probe binary, which calls the code under test and reports what
//! the kernel did, and the check asserts on that report.

mod ch01;
mod ch02;
mod ch03;
mod ch04;
mod ch05;
mod ch06;
mod ch07;
mod ch08;
mod ch09;
mod ch10;
mod ch11;
mod ch12;
mod mybox;
mod namesake;

use namesake::{exercise_fn, namesake_call};

use std::collections::HashMap;
use std::time::Duration;

/// What the probe reported, as key=value pairs (and the raw text).
pub struct Report {
    pub values: HashMap<String, String>,
    pub text: String,
}

impl Report {
    pub fn get(&self, key: &str) -> &str {
        self.values
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("the probe did not report `{key}`:\n{}", self.text))
    }

    pub fn number(&self, key: &str) -> u64 {
        self.get(key)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("`{key}` is not a number:\n{}", self.text))
    }

    /// A value the probe printed with `Display`, read back with `FromStr`.
    pub fn parsed<T: std::str::FromStr>(&self, key: &str) -> T
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .parse()
            .unwrap_or_else(|e| panic!("{e}:\n{}", self.text))
    }
}

/// Run a probe scenario for `exercise` (e.g. "1.1"), and fail with a message
/// a student can act on if the code under test is not done or failed.
pub fn probe(scenario: &str, exercise: &str, file: &str) -> Report {
    let mut cmd = std::process::Command::new(crate::PROBE);
    cmd.arg(scenario);
    probe_with(cmd, exercise, file)
}

/// The same, with the probe in a network namespace of its own (`unshare
/// --net`), for the network exercises: no packet leaves it.
pub fn probe_in_net_sandbox(scenario: &str, exercise: &str, file: &str) -> Report {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--net", crate::PROBE, scenario]);
    probe_with(cmd, exercise, file)
}

/// The same, with the probe run as an unprivileged user (`uid`, `gid`, no
/// other group, no capability): for the rules the kernel applies to a
/// normal user, which root would get past.
pub fn probe_as_user(scenario: &str, uid: u32, gid: u32, exercise: &str, file: &str) -> Report {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // The user must be able to reach the probe: every directory above it
    // searchable by others, the file executable by others.
    let probe = std::path::Path::new(crate::PROBE);
    for (at, needs) in
        std::iter::once((probe, 0o001)).chain(probe.ancestors().skip(1).map(|d| (d, 0o001)))
    {
        let mode = std::fs::metadata(at).map_or(0, |m| m.permissions().mode());
        assert!(
            mode & needs != 0,
            "\n\nexercise {exercise} runs its probe as uid {uid}, who cannot reach {} (mode {:o}): \
             put the target directory where every user may enter (CARGO_TARGET_DIR=/tmp/target, \
             say), not under /root\n",
            at.display(),
            mode & 0o777
        );
    }
    let mut cmd = std::process::Command::new(crate::PROBE);
    // As root, std drops the supplementary groups (setgroups) before setuid.
    cmd.arg(scenario).uid(uid).gid(gid).env_remove("HOME");
    probe_with(cmd, exercise, file)
}

/// Probes take turns: each compares the machine before and after, and one
/// probe's cgroup or mount must not show up in another's comparison.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn probe_with(mut cmd: std::process::Command, exercise: &str, file: &str) -> Report {
    own_work(exercise, file);
    workshop_testkit::require_root();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = workshop_testkit::HostSnapshot::take();
    let out = workshop_testkit::run(cmd.env("RUST_BACKTRACE", "0"), Duration::from_secs(30));
    host.assert_unchanged(&format!("exercise {exercise}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        // A todo!() may panic in the probe itself (stderr) or in a child whose
        // output the probe captured and relayed (stdout).
        if let Some(todo) = said
            .lines()
            .chain(text.lines())
            .find(|l| l.contains("not yet implemented"))
        {
            panic!("\n\nexercise {exercise} is not done yet ({todo})\n  write it in exercises/src/{file}, then run this check again\n");
        }
        panic!("\n\nexercise {exercise}: the code under test failed.\nwhat it said:\n{said}\nwhat it reported:\n{text}\n");
    }
    let values = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Report { values, text }
}

/// Refuse a student's answer that hands the exercise to the chapter's own
/// function of the same name (`ch03_mount::make_mounts_private()`, or through
/// an alias): it would pass, and prove nothing about what the student wrote.
/// Only for the `exercises` package (the solutions and variants are ours):
/// its source file is read at run time, where cargo built it. A check that
/// calls the code under test directly calls this first; [`probe`] does.
pub fn own_work(exercise: &str, file: &str) {
    if env!("CARGO_PKG_NAME") != "exercises" {
        return;
    }
    let path = format!("{}/src/{file}", env!("CARGO_MANIFEST_DIR"));
    // No source (a test executable copied elsewhere): nothing to read.
    let Ok(source) = std::fs::read_to_string(&path) else {
        return;
    };
    let name = exercise_fn(&source, exercise).unwrap_or_else(|missing| {
        panic!("\n\nexercise {exercise}: in exercises/src/{file}, {missing}\n")
    });
    // Only the body of `name` is searched: another exercise's function in
    // the same file may call the chapter's.
    if let Ok(Some(reach)) = namesake_call(&source, exercise) {
        panic!(
            "\n\nexercise {exercise}: your `{name}` in exercises/src/{file} reaches the chapter's \
             own `{name}` (`{reach}`): the check would test the chapter's code, not yours.\n  write `{name}` \
             yourself (the hints say how); the chapter's other helpers are yours to call\n"
        );
    }
}
