//! Chapter 1: clone() a child into a new PID namespace.
//!
//! `ch01-clone` runs the guided demo; `ch01-clone -- COMMAND` runs COMMAND as
//! PID 1 of a new PID namespace and exits with its exit code.

use anyhow::Result;
use ch01_clone::{clone_child, describe, observe, Capture, Gate};
use clap::Parser;
use nix::sched::CloneFlags;
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::process::{argv, exec, wait_for};
use workshop::{ChapterCli, Common, Narrator};

/// Chapter 1: clone() a child into a new PID namespace, where it is PID 1.
#[derive(Parser)]
#[command(
    version,
    after_help = "Without COMMAND, runs the guided demo. Example: ch01-clone -- sh -c 'echo $$'"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
}

impl ChapterCli for Cli {
    fn common(&self) -> &Common {
        &self.common
    }
}

fn main() -> ExitCode {
    workshop::main("ch01-clone", "to create a PID namespace", run)
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    match cli.common.mode() {
        Mode::Demo => demo(say).map(|()| 0),
        Mode::Run(argv) | Mode::Shell(argv) => run_container(&argv, say),
    }
}

// ANCHOR: run
/// Like `docker run`: COMMAND is PID 1 of a new PID namespace, and its exit code is ours.
fn run_container(argv: &[String], say: &Narrator) -> Result<i32> {
    let pid = clone_child(CloneFlags::CLONE_NEWPID, || exec(argv))?;
    say.container_started(pid); // its PID on the host, for kill and /proc
    Ok(wait_for(pid)?.code())
}
// ANCHOR_END: run

fn demo(say: &Narrator) -> Result<()> {
    say.title("Chapter 1 · clone() and a PID namespace");

    say.step("clone() a child into a new PID namespace")?;
    say.syscall(&format!(
        "clone(child, stack, {})",
        describe(CloneFlags::CLONE_NEWPID)
    ));
    say.shell("unshare --pid --fork sh -c 'echo $$'");
    // ANCHOR: pid1
    // `exec grep` replaces the shell, so grep reads the status of the same process.
    let seen = observe(CloneFlags::CLONE_NEWPID, || {
        exec(&argv(&[
            "sh",
            "-c",
            "echo $$; exec grep NSpid /proc/self/status",
        ]))
    })?;
    // ANCHOR_END: pid1
    let mut lines = seen.output.lines();
    let inside = lines.next().unwrap_or("?");
    say.container(&format!(
        "echo $$  →  {inside}          (I am PID {inside})"
    ));
    say.host(&format!(
        "clone() returned {}  (the same process, as the host numbers it)",
        seen.pid
    ));
    say.note(&format!(
        "the kernel keeps both numbers: {}",
        lines.next().unwrap_or("?").replace('\t', " ")
    ));
    say.note("NSpid lists the process's PID in each PID namespace, outermost first.");

    say.step("ps inside the container still lists the host's processes")?;
    say.shell("unshare --pid --fork ps -e");
    let seen = observe(CloneFlags::CLONE_NEWPID, || {
        exec(&argv(&["ps", "-e", "-o", "pid,comm"]))
    })?;
    let rows: Vec<&str> = seen.output.lines().skip(1).collect();
    let preview: Vec<&str> = seen.output.lines().take(4).collect();
    say.container(&format!(
        "{}\n...  ({} processes, ps itself among them)",
        preview.join("\n"),
        rows.len()
    ));
    say.host(&format!(
        "{} processes in the host's /proc",
        ch01_clone::count_processes()?
    ));
    say.warn(
        "ps reads /proc, and /proc is still the host's: mounted for the host's PID namespace.",
    );
    say.note("The container is PID 1, yet it can see (and name) every process on the machine.");
    say.note("Chapter 3 gives it a /proc of its own.");

    say.step("two containers side by side: each is PID 1 of its own namespace")?;
    // ANCHOR: side_by_side
    // Both children wait at the gate, so that the host can look at them alive.
    let mut gate = Gate::new()?;
    let mut containers = Vec::new();
    for _ in 0..2 {
        let output = Capture::new()?;
        let pid = clone_child(CloneFlags::CLONE_NEWPID, || {
            output.redirect()?;
            gate.pass()?;
            exec(&argv(&["sh", "-c", "echo $$"]))
        })?;
        containers.push((pid, output));
    }
    for (pid, _) in &containers {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let nspid = workshop::process::nspid(&status);
        say.host(&format!("PID {pid}: NSpid {nspid:?}"));
    }
    gate.open();
    for (pid, output) in containers {
        let (inside, _) = output.collect(pid)?;
        say.container(&format!(
            "host PID {pid} says: echo $$  →  {}",
            inside.trim()
        ));
    }
    // ANCHOR_END: side_by_side
    say.note("Two processes, both PID 1: a PID namespace is a separate numbering of processes.");

    say.finish("Next, chapter 2: namespaces are files under /proc/PID/ns, and you can join one.")
}
