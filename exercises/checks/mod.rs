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
    let Some(name) = exercise_fn(&source, exercise) else {
        return;
    };
    if let Some(reach) = namesake_call(&source, &name) {
        panic!(
            "\n\nexercise {exercise}: exercises/src/{file} reaches the chapter's own `{name}` \
             (`{reach}`): the check would test the chapter's code, not yours.\n  write `{name}` \
             yourself (the hints say how); the chapter's other helpers are yours to call\n"
        );
    }
}

/// The name of exercise `exercise`'s function in `source`: the first `fn`
/// after its `/// Exercise N.M:` line.
pub fn exercise_fn(source: &str, exercise: &str) -> Option<String> {
    let doc = format!("/// Exercise {exercise}:");
    let after = &source[source.find(&doc)?..];
    let tokens = tokens(after);
    let at = tokens.iter().position(|t| t == "fn")?;
    tokens.get(at + 1).cloned()
}

/// Where `source` reaches a chapter crate's `name` (`chNN_...::name(`,
/// through `use chNN_... as alias` or `extern crate chNN_... as alias`, or
/// a `use` of `name` from a chapter crate): the path as written.
pub fn namesake_call(source: &str, name: &str) -> Option<String> {
    let tokens = tokens(source);
    let is_chapter = |t: &str| {
        let b = t.as_bytes();
        b.len() > 5
            && t.starts_with("ch")
            && b[2].is_ascii_digit()
            && b[3].is_ascii_digit()
            && b[4] == b'_'
    };
    // Names that stand for a chapter crate (or something in one).
    let mut aliases: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let start = match tokens[i].as_str() {
            "use" => i + 1,
            "crate" if i > 0 && tokens[i - 1] == "extern" => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        let end = tokens[start..]
            .iter()
            .position(|t| t == ";")
            .map_or(tokens.len(), |n| start + n);
        let item = &tokens[start..end];
        let first = item.iter().find(|t| *t != "::").map(String::as_str);
        if first.is_some_and(|f| is_chapter(f) || aliases.contains(&f)) {
            if item.iter().any(|t| t == name) {
                return Some(format!("use {}", shown(item)));
            }
            for w in item.windows(2) {
                if w[0] == "as" {
                    aliases.push(&w[1]);
                }
            }
        }
        i = end;
    }
    for (i, t) in tokens.iter().enumerate() {
        if t != name || tokens.get(i + 1).map(String::as_str) != Some("(") {
            continue;
        }
        // Walk back over `seg::seg::` to the path's first segment.
        let mut j = i;
        let word = |t: &str| t.starts_with(|c: char| c.is_alphanumeric() || c == '_');
        while j >= 2 && tokens[j - 1] == "::" && word(&tokens[j - 2]) {
            j -= 2;
        }
        if j == i {
            continue; // a bare call: the student's own function
        }
        let first = tokens[j].as_str();
        if is_chapter(first) || aliases.contains(&first) {
            return Some(format!("{}(", shown(&tokens[j..=i])));
        }
    }
    None
}

/// Tokens as they would be written: a space between two words only.
fn shown(tokens: &[String]) -> String {
    let word = |t: &str| t.starts_with(|c: char| c.is_alphanumeric() || c == '_');
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 && word(t) && word(&tokens[i - 1]) {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// Rust source as tokens, enough to follow paths: identifiers, `::`, and
/// other characters one by one; comments, strings and whitespace dropped.
fn tokens(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = c.to_string();
            while let Some(&n) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                word.push(n);
                chars.next();
            }
            out.push(word);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.push("::".into());
        } else if c == '"' {
            // A string: skipped, escapes included.
            while let Some(n) = chars.next() {
                match n {
                    '\\' => {
                        chars.next();
                    }
                    '"' => break,
                    _ => {}
                }
            }
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

#[test]
fn an_answer_that_calls_the_chapters_namesake_is_refused() {
    let stub = "/// Exercise 3.1: make every mount private.\n\
                /// Hint: `ch03_mount::make_mounts_private()` is the chapter's.\n\
                pub fn make_mounts_private() -> Result<()> {\n    BODY\n}\n";
    let answer = |body: &str| stub.replace("BODY", body);
    assert_eq!(
        exercise_fn(&answer(""), "3.1").as_deref(),
        Some("make_mounts_private")
    );
    assert_eq!(exercise_fn(&answer(""), "3.2"), None);
    let name = "make_mounts_private";
    for (body, caught) in [
        (
            "ch03_mount::make_mounts_private()",
            "ch03_mount::make_mounts_private(",
        ),
        (
            "::ch03_mount::make_mounts_private ()",
            "ch03_mount::make_mounts_private(",
        ),
        (
            "ch03_mount ::\n  make_mounts_private()",
            "ch03_mount::make_mounts_private(",
        ),
        (
            "m::make_mounts_private() }\nuse ch03_mount as m; fn x() {",
            "m::make_mounts_private(",
        ),
        (
            "c::ch03_mount::make_mounts_private() }\nextern crate ch03_mount as c; fn x() {",
            "c::ch03_mount::make_mounts_private(",
        ),
        (
            "mp() }\nuse ch03_mount::{make_mounts_private as mp}; fn x() {",
            "use ch03_mount::{make_mounts_private as mp}",
        ),
        (
            "ch04_rootfs::make_mounts_private()",
            "ch04_rootfs::make_mounts_private(",
        ),
    ] {
        assert_eq!(
            namesake_call(&answer(body), name).as_deref(),
            Some(caught),
            "{body}"
        );
    }
    for body in [
        // the student's own work, and the chapter's other helpers
        "mount(None::<&str>, \"/\", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?; Ok(())",
        "ch03_mount::remount_private_helper()",
        "crate::ch03_mount::make_mounts_private()",
        "super::make_mounts_private()",
        "let s = \"ch03_mount::make_mounts_private()\"; Ok(())",
        "// ch03_mount::make_mounts_private()\nOk(())",
        "todo!()",
    ] {
        assert_eq!(namesake_call(&answer(body), name), None, "{body}");
    }
}
