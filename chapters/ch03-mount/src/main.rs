//! Chapter 3: a mount namespace, a private mount tree and a fresh /proc.
//!
//! `ch03-mount` runs the guided demo; `ch03-mount -- COMMAND` runs COMMAND as
//! PID 1 of new PID and mount namespaces with its own /proc: `ps -e` there
//! lists only the container's processes.

use anyhow::Result;
use ch01_clone::{clone_child, describe, observe};
use ch03_mount::{
    host_mounts, make_mounts_private, mount_proc, root_propagation, say_host_mounts_unchanged,
};
use clap::Parser;
use nix::sched::CloneFlags;
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::process::{argv, exec, wait_for};
use workshop::{ChapterCli, Common, Narrator};

/// Chapter 3: a mount namespace, a private mount tree and a fresh /proc.
#[derive(Parser)]
#[command(
    version,
    after_help = "Without COMMAND, runs the guided demo. Example: ch03-mount -- ps -e"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
}

// ANCHOR: flags
/// A new PID namespace (chapter 1) and a new mount namespace.
const FLAGS: CloneFlags = CloneFlags::CLONE_NEWPID.union(CloneFlags::CLONE_NEWNS);
// ANCHOR_END: flags

impl ChapterCli for Cli {
    fn common(&self) -> &Common {
        &self.common
    }
}

fn main() -> ExitCode {
    workshop::main("ch03-mount", "to create mount and PID namespaces", run)
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    match cli.common.mode() {
        Mode::Demo => demo(say).map(|()| 0),
        Mode::Run(argv) | Mode::Shell(argv) => run_container(&argv, say),
    }
}

// ANCHOR: run
/// COMMAND as PID 1 of new PID and mount namespaces, with a /proc of its own.
fn run_container(argv: &[String], say: &Narrator) -> Result<i32> {
    let pid = clone_child(FLAGS, || {
        make_mounts_private()?; // first, before any mount
        mount_proc()?;
        exec(argv)
    })?;
    say.container_started(pid);
    Ok(wait_for(pid)?.code())
}
// ANCHOR_END: run

fn demo(say: &Narrator) -> Result<()> {
    say.title("Chapter 3 · a mount namespace and a /proc of our own");
    let mounts_before = host_mounts()?;

    // The child reports what it saw at each step on its stdout, which the demo
    // captures: a line per step, then the output of `ps`.
    let seen = observe(FLAGS, || {
        println!("{}", root_propagation()?);
        make_mounts_private()?;
        println!("{}", root_propagation()?);
        mount_proc()?;
        exec(&argv(&["ps", "-e", "-o", "pid,comm"]))
    })?;
    let mut lines = seen.output.lines();
    let (before, after) = (lines.next().unwrap_or("?"), lines.next().unwrap_or("?"));
    let ps: Vec<&str> = lines.collect();

    say.step("a new mount namespace starts as a copy of the host's mounts")?;
    say.syscall(&format!("clone(child, stack, {})", describe(FLAGS)));
    say.shell("unshare --mount --pid --fork sh");
    say.container(&format!("/ is {before}   (from /proc/self/mountinfo)"));
    if before.contains("shared") {
        say.warn(
            "/ is shared (systemd does that): the copies in the new namespace are still peers",
        );
        say.warn("of the host's mounts, and anything mounted inside would appear on the host too.");
    } else if before == "private" {
        say.note("Here / is already private (no systemd). On most machines it is shared:1,");
        say.note("and a mount made inside the container would then appear on the host too.");
    } else {
        say.note(&format!(
            "{before}: / receives mounts from its master but sends none back."
        ));
        say.note(
            "Making it private still matters: the step below makes sure, whatever the host did.",
        );
    }

    say.step("make every mount private, before mounting anything")?;
    say.syscall("mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE, NULL)");
    say.shell("mount --make-rprivate /");
    say.container(&format!("/ is {after}"));
    say.note("Mounts made in the container now stay in the container.");

    say.step("mount a fresh /proc for the new PID namespace")?;
    say.syscall("mount(\"proc\", \"/proc\", \"proc\", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)");
    say.shell("mount -t proc proc /proc && ps -e");
    let count = ps.len().saturating_sub(1); // less the header
    say.container(&format!(
        "{}\n({count} process{})",
        ps.join("\n"),
        if count == 1 { "" } else { "es" }
    ));
    say.note(
        "ps reads /proc: it now lists the container's PID namespace only (compare chapter 1).",
    );

    say_host_mounts_unchanged(&mounts_before, say)?;
    say.host(&format!(
        "ps -e on the host still lists {} processes",
        ch01_clone::count_processes()?
    ));
    say.note(
        "The container's mounts went away with its mount namespace, when its last process exited.",
    );

    say.finish(
        "Next, chapter 4: a root filesystem of the container's own (chroot, then pivot_root).",
    )
}
