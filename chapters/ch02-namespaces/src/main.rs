//! Chapter 2: namespaces are files under /proc/PID/ns; join one with setns.
//!
//! `ch02-namespaces` runs the guided demo; `ch02-namespaces -- COMMAND` runs
//! COMMAND in new mount, PID, network, IPC, UTS and cgroup namespaces;
//! `ch02-namespaces --join PID -- COMMAND` runs COMMAND inside the namespaces
//! of process PID, as `docker exec` does.

use anyhow::{Context, Result};
use ch01_clone::{clone_child, describe, observe, Gate};
use ch02_namespaces::{join_and_spawn, namespace_inode, CONTAINER_FLAGS, KINDS};
use clap::Parser;
use nix::unistd::Pid;
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::process::{argv, block_termination_signals, exec, wait_for};
use workshop::{ChapterCli, Common, Narrator};

/// Chapter 2: namespaces are files under /proc/PID/ns; join one with setns.
#[derive(Parser)]
#[command(
    version,
    after_help = "Example: ch02-namespaces --join 4242 -- hostname"
)]
struct Cli {
    /// Run COMMAND inside the namespaces of this process (like `docker exec` or `nsenter -t PID -a`)
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    join: Option<i32>,

    #[command(flatten)]
    common: Common,
}

impl ChapterCli for Cli {
    fn common(&self) -> &Common {
        &self.common
    }
}

fn main() -> ExitCode {
    workshop::main("ch02-namespaces", "to create and join namespaces", run)
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    let mode = cli.common.mode();
    if let Some(target) = cli.join {
        let argv = match mode {
            Mode::Run(argv) => argv,
            Mode::Shell(argv) => argv, // --shell prepared the shell already
            Mode::Demo => {
                // `--join PID` alone: a shell inside, as `docker exec -it ID sh`.
                workshop::prepare_shell("ch02-namespaces");
                argv(&["/bin/sh"])
            }
        };
        let pid = join_and_spawn(Pid::from_raw(target), &argv)
            .with_context(|| format!("--join {target}"))?;
        return Ok(wait_for(pid)?.code());
    }
    match mode {
        Mode::Demo => demo(say).map(|()| 0),
        Mode::Run(argv) | Mode::Shell(argv) => {
            let pid = clone_child(CONTAINER_FLAGS, || exec(&argv))?;
            say.container_started(pid);
            Ok(wait_for(pid)?.code())
        }
    }
}

fn demo(say: &Narrator) -> Result<()> {
    say.title("Chapter 2 · namespaces are files");

    say.step("every process has a file per namespace kind in /proc/PID/ns")?;
    say.shell("ls -l /proc/self/ns");
    for kind in KINDS {
        let ino = namespace_inode(None, kind.name)?;
        say.host(&format!(
            "{:<20} {}",
            format!("{}:[{ino}]", kind.name),
            kind.isolates
        ));
    }
    say.note("The number is the inode of the namespace: same number, same namespace.");

    say.step("a container with new namespaces: compare the files")?;
    say.syscall(&format!(
        "clone(child, stack, {})",
        describe(CONTAINER_FLAGS)
    ));
    say.shell("unshare --mount --pid --net --ipc --uts --cgroup --fork sleep infinity &");
    // ANCHOR: compare
    // The container waits at the gate while we look at its namespace files.
    let mut gate = Gate::new()?;
    let container = clone_child(CONTAINER_FLAGS, || {
        gate.pass()?;
        exec(&argv(&["true"]))
    })?;
    let mut new_kinds = Vec::new();
    for kind in KINDS {
        let host = namespace_inode(None, kind.name)?;
        let inside = namespace_inode(Some(container), kind.name)?;
        let verdict = if host == inside {
            "same as the host"
        } else {
            "NEW"
        };
        say.note(&format!(
            "{:<7} host {host}   container {inside}   {verdict}",
            kind.name
        ));
        if host != inside {
            new_kinds.push(kind.name);
        }
    }
    // ANCHOR_END: compare
    say.note(
        "user: a later chapter (rootless containers) makes one. time: only unshare() can make one, not clone().",
    );

    say.step("join the running container with setns(), as `docker exec` does")?;
    say.syscall(&format!(
        "fd = open(\"/proc/{container}/ns/net\"); setns(fd, CLONE_NEWNET); ... then fork"
    ));
    say.shell(&format!(
        "nsenter --target {container} --all sh -c 'echo $$; readlink /proc/self/ns/*'"
    ));
    // ANCHOR: exec
    // A helper joins the namespaces, then forks: its child is the first of
    // ours inside the container's PID namespace (setns on a PID namespace
    // applies to the children of the caller, not to the caller).
    let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    let script = format!(
        "echo $$; for ns in {}; do readlink /proc/self/ns/$ns; done",
        names.join(" ")
    );
    let joined = observe(nix::sched::CloneFlags::empty(), || {
        block_termination_signals()?;
        let pid = join_and_spawn(container, &argv(&["sh", "-c", &script]))?;
        std::process::exit(wait_for(pid)?.code())
    })?;
    // ANCHOR_END: exec
    let mut lines = joined.output.lines();
    say.container(&format!(
        "echo $$  →  {}   (PID 1 is the container's first process; we are the next)",
        lines.next().unwrap_or("?")
    ));
    for link in lines {
        // "net:[4026532290]": is that the container's namespace?
        let Some((name, rest)) = link.split_once(":[") else {
            continue;
        };
        let ino: u64 = rest.trim_end_matches(']').parse().unwrap_or(0);
        if ino == namespace_inode(Some(container), name)? && new_kinds.contains(&name) {
            say.ok(&format!("{link:<24} the container's {name} namespace"));
        } else {
            say.note(&format!(
                "{link:<24} {}",
                if new_kinds.contains(&name) {
                    "NOT the container's"
                } else {
                    "shared with the host"
                }
            ));
        }
    }
    gate.open();
    wait_for(container)?;
    say.note(
        "docker exec, kubectl exec and nsenter all do this: open the files, setns(), fork, exec.",
    );

    say.finish("Next, chapter 3: a mount namespace and a /proc of the container's own.")
}
