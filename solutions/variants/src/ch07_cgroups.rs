//! Chapter 7: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{Context, Result};
use std::io::Write as _;
use std::path::Path;

pub const VARIANTS: &[Variant] = &[
    wrong(
        "7.1",
        "truncate",
        "`(cpus * 100000.0) as u64` truncates: 0.29 CPUs is 28999.999… µs in f64, so 28999",
    ).because("the quota is one µs short"),
    wrong(
        "7.1",
        "swapped",
        "cpu.max as \"PERIOD QUOTA\": the kernel reads the first number as the quota",
    ).because("the two numbers are swapped"),
    wrong(
        "7.1",
        "millis",
        "the quota and period in milliseconds (20, 100): cgroup CPU files count microseconds",
    ).because("a period of 100 is in milliseconds"),
    wrong(
        "7.1",
        "both",
        "writes cpu.max and the cfs files whatever the version: a cgroup of one version has no file of the other",
    ).because("a v2 cgroup has no such file"),
    wrong(
        "7.1",
        "quota-first",
        "v1: cpu.cfs_quota_us written before cpu.cfs_period_us: the kernel checks each quota against the period in place when it is written",
    ).because("write cpu.cfs_period_us first, then cpu.cfs_quota_us"),
    wrong(
        "7.1",
        "ceil",
        "the quota rounded up (`ceil`): 0.2000001 CPUs is 20000.01 µs, which rounds to 20000, not 20001",
    ).because("the quota is one µs over"),
    right(
        "7.1",
        "half-up",
        "rounds with + 0.5 and floor, writes through File handles, with a trailing newline",
    ),
    wrong(
        "7.2",
        "attach-first",
        "attaches, then sets pids.max: the process can fork past the limit in between",
    ).because("set pids.max first, then attach"),
    wrong(
        "7.2",
        "tasks",
        "writes the PID to `tasks`: v1 moves one thread only (its other threads stay out), v2 has no such file",
    ).because("moves one thread only"),
    wrong(
        "7.2",
        "self",
        "writes std::process::id(): the caller goes into the cgroup, not `pid` (and the cgroup cannot be removed while it is there)",
    ).because("not std::process::id()"),
    wrong(
        "7.2",
        "plus-one",
        "pids.max = max + 1, as if the limit counted only the children: it counts every task",
    ).because("the limit counts every task"),
    wrong(
        "7.2",
        "writeln",
        "writeln! to the open file: it may write the number and the newline in two write(2)s, and the kernel refuses a lone \"\\n\" (EINVAL)",
    ).because("writeln! may send the number and the newline separately"),
    wrong(
        "7.2",
        "subcgroup",
        "makes a cgroup of its own inside `dir` (dir/box) and writes there: `dir` is the cgroup, and the one it made is left behind",
    ).because("the kernel saw a cgroup made inside `dir`"),
    right(
        "7.2",
        "open-write",
        "OpenOptions without create, each value and its newline in one write_all",
    ),
    wrong(
        "7.3",
        "no-trim",
        "parses what follows `max ` with its newline still on: \"8\\n\" is not a number",
    ).because("each line of pids.events ends with a newline"),
    wrong(
        "7.3",
        "limit",
        "reads pids.max, the limit, instead of how often the kernel enforced it",
    ).because("3 is pids.max, the limit"),
    wrong(
        "7.3",
        "current",
        "reads pids.current, the tasks there now, instead of the refused forks",
    ).because("that is pids.current"),
    wrong(
        "7.3",
        "contains",
        "`events.contains(\"max\")` as the count: 1 whether or not a fork was refused",
    ).because("whether pids.events mentions `max`"),
    wrong(
        "7.3",
        "first-line",
        "the number on the first line of pids.events, whatever its key: a line such as `max.imposed` may come before `max`",
    ).because("not the first line"),
    right(
        "7.3",
        "words",
        "split_whitespace on each line, the value of the pair whose key is `max`",
    ),
];

fn put(dir: &Path, file: &str, value: &str) -> Result<()> {
    std::fs::write(dir.join(file), value).with_context(|| format!("failed to write {file}"))
}

fn get(dir: &Path, file: &str) -> Result<String> {
    std::fs::read_to_string(dir.join(file)).with_context(|| format!("failed to read {file}"))
}

/// Exercise 7.1.
pub fn write_cpu_limit(dir: &Path, cpus: f64, v2: bool) -> Result<()> {
    let rounded = (cpus * 100_000.0).round() as u64;
    match chosen("7.1").as_deref() {
        None => solutions::ch07_cgroups::write_cpu_limit(dir, cpus, v2),
        Some("truncate") => {
            let quota = (cpus * 100_000.0) as u64;
            if v2 {
                put(dir, "cpu.max", &format!("{quota} 100000"))
            } else {
                put(dir, "cpu.cfs_period_us", "100000")?;
                put(dir, "cpu.cfs_quota_us", &quota.to_string())
            }
        }
        Some("swapped") => {
            if v2 {
                put(dir, "cpu.max", &format!("100000 {rounded}"))
            } else {
                put(dir, "cpu.cfs_period_us", "100000")?;
                put(dir, "cpu.cfs_quota_us", &rounded.to_string())
            }
        }
        Some("millis") => {
            let quota = (cpus * 100.0).round() as u64;
            if v2 {
                put(dir, "cpu.max", &format!("{quota} 100"))
            } else {
                put(dir, "cpu.cfs_period_us", "100")?;
                put(dir, "cpu.cfs_quota_us", &quota.to_string())
            }
        }
        Some("both") => {
            put(dir, "cpu.max", &format!("{rounded} 100000"))?;
            put(dir, "cpu.cfs_period_us", "100000")?;
            put(dir, "cpu.cfs_quota_us", &rounded.to_string())
        }
        Some("quota-first") => {
            let quota = (cpus * 100_000.0).round() as u64;
            if v2 {
                put(dir, "cpu.max", &format!("{quota} 100000"))
            } else {
                put(dir, "cpu.cfs_quota_us", &quota.to_string())?;
                put(dir, "cpu.cfs_period_us", "100000")
            }
        }
        Some("ceil") => {
            let quota = (cpus * 100_000.0).ceil() as u64;
            if v2 {
                put(dir, "cpu.max", &format!("{quota} 100000"))
            } else {
                put(dir, "cpu.cfs_period_us", "100000")?;
                put(dir, "cpu.cfs_quota_us", &quota.to_string())
            }
        }
        Some("half-up") => {
            let quota = (cpus * 100_000.0 + 0.5).floor() as u64;
            let mut lines: Vec<(&str, String)> = Vec::new();
            if v2 {
                lines.push(("cpu.max", format!("{quota} {}", 100_000)));
            } else {
                lines.push(("cpu.cfs_period_us", 100_000.to_string()));
                lines.push(("cpu.cfs_quota_us", quota.to_string()));
            }
            for (file, value) in lines {
                let mut f = std::fs::File::create(dir.join(file))?;
                f.write_all(format!("{value}\n").as_bytes())?;
            }
            Ok(())
        }
        Some(other) => unknown("7.1", other),
    }
}

/// Exercise 7.2.
pub fn limit_tasks(dir: &Path, max: u64, pid: nix::unistd::Pid) -> Result<()> {
    match chosen("7.2").as_deref() {
        None => solutions::ch07_cgroups::limit_tasks(dir, max, pid),
        Some("attach-first") => {
            put(dir, "cgroup.procs", &pid.to_string())?;
            put(dir, "pids.max", &max.to_string())
        }
        Some("tasks") => {
            put(dir, "pids.max", &max.to_string())?;
            put(dir, "tasks", &pid.to_string())
        }
        Some("self") => {
            put(dir, "pids.max", &max.to_string())?;
            put(dir, "cgroup.procs", &std::process::id().to_string())
        }
        Some("plus-one") => {
            put(dir, "pids.max", &(max + 1).to_string())?;
            put(dir, "cgroup.procs", &pid.to_string())
        }
        Some("subcgroup") => {
            let own = dir.join("box");
            std::fs::create_dir(&own).context("failed to make dir/box")?;
            put(&own, "pids.max", &max.to_string())?;
            put(&own, "cgroup.procs", &pid.to_string())
        }
        Some(how @ ("open-write" | "writeln")) => {
            for (file, value) in [
                ("pids.max", max.to_string()),
                ("cgroup.procs", pid.to_string()),
            ] {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join(file))
                    .with_context(|| format!("failed to open {file}"))?;
                if how == "writeln" {
                    writeln!(f, "{value}")
                } else {
                    f.write_all(format!("{value}\n").as_bytes())
                }
                .with_context(|| format!("failed to write {value:?} to {file}"))?;
            }
            Ok(())
        }
        Some(other) => unknown("7.2", other),
    }
}

/// Exercise 7.3.
pub fn refused_forks(dir: &Path) -> Result<u64> {
    match chosen("7.3").as_deref() {
        None => solutions::ch07_cgroups::refused_forks(dir),
        Some("no-trim") => {
            let events = get(dir, "pids.events")?;
            let count = events.strip_prefix("max ").context("no max")?;
            count
                .parse()
                .with_context(|| format!("{count:?} is not a number"))
        }
        Some("limit") => Ok(get(dir, "pids.max")?.trim().parse()?),
        Some("current") => Ok(get(dir, "pids.current")?.trim().parse()?),
        Some("contains") => Ok(get(dir, "pids.events")?.contains("max") as u64),
        Some("first-line") => {
            let text = get(dir, "pids.events")?;
            let first = text.lines().next().context("empty")?;
            Ok(first
                .split_whitespace()
                .nth(1)
                .context("no value")?
                .parse()?)
        }
        Some("words") => {
            let events = get(dir, "pids.events")?;
            for line in events.lines() {
                let mut words = line.split_whitespace();
                if words.next() == Some("max") {
                    return Ok(words.next().context("`max` without a count")?.parse()?);
                }
            }
            anyhow::bail!("pids.events has no `max` line: {events:?}")
        }
        Some(other) => unknown("7.3", other),
    }
}
