//! Chapter 5: a UTS namespace and a hostname of the container's own.
//!
//! `ch05-uts` runs the guided demo; `ch05-uts --hostname box1 -- hostname`
//! runs `hostname` in a container named box1, in its own rootfs.

use anyhow::Result;
use ch01_clone::{clone_child, describe, observe};
use ch02_namespaces::namespace_inode;
use ch04_rootfs::{enter_rootfs, RootfsOption};
use ch05_uts::{hostname, set_hostname, HostnameOption};
use clap::Parser;
use nix::sched::CloneFlags;
use std::path::Path;
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::process::{argv, exec, wait_for};
use workshop::{ChapterCli, Common, Narrator};

/// Chapter 5: a UTS namespace and a hostname of the container's own.
#[derive(Parser)]
#[command(version, after_help = "Example: ch05-uts --hostname box1 -- hostname")]
struct Cli {
    #[command(flatten)]
    hostname: HostnameOption,

    #[command(flatten)]
    rootfs: RootfsOption,

    #[command(flatten)]
    common: Common,
}

/// Chapter 4's container: PID and mount namespaces, no UTS namespace yet.
const WITHOUT_UTS: CloneFlags = CloneFlags::CLONE_NEWPID.union(CloneFlags::CLONE_NEWNS);

// ANCHOR: flags
/// Chapters 1 to 4, plus a new UTS namespace.
const FLAGS: CloneFlags = CloneFlags::CLONE_NEWPID
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWUTS);
// ANCHOR_END: flags

impl ChapterCli for Cli {
    fn common(&self) -> &Common {
        &self.common
    }
}

fn main() -> ExitCode {
    workshop::main("ch05-uts", "to create UTS, mount and PID namespaces", run)
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    let root = cli.rootfs.resolve(|line| say.note(line))?;
    match cli.common.mode() {
        Mode::Demo => demo(&root, &cli.hostname.name, say).map(|()| 0),
        Mode::Run(argv) | Mode::Shell(argv) => run_container(&root, &cli.hostname.name, &argv, say),
    }
}

// ANCHOR: run
/// COMMAND in a container named `hostname`, in its own rootfs.
fn run_container(root: &Path, hostname: &str, argv: &[String], say: &Narrator) -> Result<i32> {
    let pid = clone_child(FLAGS, || {
        set_hostname(hostname)?;
        enter_rootfs(root)?;
        exec(argv)
    })?;
    say.container_started(pid);
    Ok(wait_for(pid)?.code())
}
// ANCHOR_END: run

fn demo(root: &Path, name: &str, say: &Narrator) -> Result<()> {
    say.title("Chapter 5 · a hostname of the container's own");
    let host_before = hostname()?;
    let host_uts = namespace_inode(None, "uts")?;

    // ANCHOR: shared
    // Chapter 4's container, no CLONE_NEWUTS: it reports its UTS namespace,
    // then calls sethostname() with the name it sees, the host's own. The
    // kernel allows it, and renames the host: to the name it already has,
    // so that this demo changes nothing.
    let shared = observe(WITHOUT_UTS, || {
        println!("{}", namespace_inode(None, "uts")?);
        set_hostname(&hostname()?)?;
        enter_rootfs(root)?;
        exec(&argv(&["hostname"]))
    })?;
    // ANCHOR_END: shared
    let mut lines = shared.output.lines();
    let (shared_uts, shared_name) = (lines.next().unwrap_or("?"), lines.next().unwrap_or("?"));

    say.step("without a UTS namespace, the container has the host's name")?;
    say.syscall(&format!("clone(child, stack, {})", describe(WITHOUT_UTS)));
    say.shell(
        "unshare --mount --pid --fork sh -c 'readlink /proc/self/ns/uts; hostname \"$(hostname)\"'",
    );
    say.container(&format!("/proc/self/ns/uts  →  uts:[{shared_uts}]"));
    say.host(&format!("/proc/self/ns/uts  →  uts:[{host_uts}]"));
    if shared_uts == host_uts.to_string() {
        say.warn("the same inode: the container is in the host's UTS namespace");
    }
    say.syscall(&format!(
        "sethostname(\"{host_before}\", {}), from inside",
        host_before.len()
    ));
    if shared.exit.code() == 0 {
        say.container(&format!("hostname  →  {shared_name}"));
        say.warn("allowed: sethostname() renamed the host, to its own name here;");
        say.note("`hostname evil` inside would have renamed your machine.");
    } else {
        say.note(&format!("refused: {}", shared.output.trim()));
    }
    let host_after = hostname()?;
    say.host(&format!("hostname  →  {host_after}"));

    // The real container: it reports its namespace and the name it starts
    // with, then names itself and runs `hostname`.
    let seen = observe(FLAGS, || {
        println!("{}", namespace_inode(None, "uts")?);
        println!("{}", hostname()?);
        set_hostname(name)?;
        enter_rootfs(root)?;
        exec(&argv(&["hostname"]))
    })?;
    let mut lines = seen.output.lines();
    let own_uts = lines.next().unwrap_or("?");
    let (at_start, after) = (lines.next().unwrap_or("?"), lines.next().unwrap_or("?"));

    say.step("CLONE_NEWUTS: a new UTS namespace, a copy of the host's")?;
    say.syscall(&format!("clone(child, stack, {})", describe(FLAGS)));
    say.shell("unshare --uts --mount --pid --fork hostname");
    say.container(&format!("/proc/self/ns/uts  →  uts:[{own_uts}]"));
    say.host(&format!("/proc/self/ns/uts  →  uts:[{host_uts}]"));
    say.container(&format!("hostname  →  {at_start}"));
    say.note("Another namespace, the same name: it starts as a copy.");

    say.step("sethostname() inside changes the container's copy only")?;
    say.syscall(&format!("sethostname(\"{name}\", {})", name.len()));
    say.shell(&format!(
        "unshare --uts --mount --pid --fork sh -c 'hostname {name}; hostname'"
    ));
    say.container(&format!("hostname  →  {after}"));
    let host_last = hostname()?;
    say.host(&format!("hostname  →  {host_last}"));
    if host_last == host_before && host_after == host_before && after == name {
        say.ok("two names at once, one per UTS namespace; the host kept its own");
    } else {
        say.warn(
            "the names are not what they should be: see the troubleshooting section of the book",
        );
    }
    say.note("Docker names a container after its ID the same way (--hostname).");

    say.finish(
        "Next, chapter 6: a network of the container's own (a network namespace and a veth pair).",
    )
}
