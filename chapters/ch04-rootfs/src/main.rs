//! Chapter 4: a root filesystem of the container's own: chroot, its escape,
//! then pivot_root.
//!
//! `ch04-rootfs` runs the guided demo; `ch04-rootfs -- COMMAND` runs COMMAND
//! in new PID and mount namespaces whose root is the rootfs (pivot_root).

use anyhow::Result;
use ch01_clone::{clone_child, describe, observe};
use ch03_mount::{host_mounts, make_mounts_private, say_host_mounts_unchanged};
use ch04_rootfs::{
    break_out_of_chroot, enter_rootfs, enter_with_chroot, list_dir, mount_proc_at, populate_dev,
    RootfsOption,
};
use clap::Parser;
use nix::sched::CloneFlags;
use std::path::Path;
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::process::{argv, exec, wait_for};
use workshop::{ChapterCli, Common, Narrator};

/// Chapter 4: a root filesystem of the container's own: chroot (and its escape), then pivot_root.
#[derive(Parser)]
#[command(
    version,
    after_help = "Without COMMAND, runs the guided demo. Example: ch04-rootfs -- ls /"
)]
struct Cli {
    #[command(flatten)]
    rootfs: RootfsOption,

    /// Enter the rootfs with chroot() instead of pivot_root() (the old, escapable way)
    #[arg(long)]
    chroot: bool,

    /// Before running COMMAND, try the classic chroot escape (it works under --chroot only)
    #[arg(long)]
    break_out: bool,

    #[command(flatten)]
    common: Common,
}

const FLAGS: CloneFlags = CloneFlags::CLONE_NEWPID.union(CloneFlags::CLONE_NEWNS);

/// How the container gets its root.
#[derive(Clone, Copy)]
enum Root {
    Chroot,
    Pivot,
}

impl ChapterCli for Cli {
    fn common(&self) -> &Common {
        &self.common
    }
}

fn main() -> ExitCode {
    workshop::main(
        "ch04-rootfs",
        "to create mount namespaces and pivot_root",
        run,
    )
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    let root = cli.rootfs.resolve(|line| say.note(line))?;
    match cli.common.mode() {
        Mode::Demo => demo(&root, say).map(|()| 0),
        Mode::Run(argv) | Mode::Shell(argv) => {
            let how = if cli.chroot {
                Root::Chroot
            } else {
                Root::Pivot
            };
            let pid = clone_child(FLAGS, || {
                enter(&root, how)?;
                if cli.break_out {
                    break_out_of_chroot()?;
                }
                exec(&argv)
            })?;
            say.container_started(pid);
            Ok(wait_for(pid)?.code())
        }
    }
}

// ANCHOR: enter
/// In the child: enter the rootfs the old way (chroot) or the proper way (pivot_root).
fn enter(root: &Path, how: Root) -> Result<()> {
    match how {
        Root::Chroot => {
            make_mounts_private()?; // chapter 3: before any mount
            populate_dev(root)?;
            mount_proc_at(root)?;
            enter_with_chroot(root)
        }
        Root::Pivot => enter_rootfs(root),
    }
}
// ANCHOR_END: enter

/// Run `ls /` in a container entered `how`, after the escape if `escape`.
fn look(root: &Path, how: Root, escape: bool) -> Result<Vec<String>> {
    let seen = observe(FLAGS, || {
        enter(root, how)?;
        if escape {
            break_out_of_chroot()?;
        }
        exec(&argv(&["ls", "/"]))
    })?;
    anyhow::ensure!(
        seen.exit.code() == 0,
        "ls / in the container failed ({}):\n{}",
        seen.exit,
        seen.output
    );
    let mut names: Vec<String> = seen.output.split_whitespace().map(str::to_string).collect();
    names.sort();
    Ok(names)
}

/// `ls /` as a few short lines.
fn listing(names: &[String]) -> String {
    let mut lines = vec![String::from("ls /  →")];
    for name in names {
        let last = lines.last_mut().expect("one line at least");
        if last.len() + name.len() > 66 {
            lines.push(format!("        {name}"));
        } else {
            last.push(' ');
            last.push_str(name);
        }
    }
    lines.join("\n")
}

fn demo(root: &Path, say: &Narrator) -> Result<()> {
    say.title("Chapter 4 · a root filesystem of the container's own");
    let r = workshop_rootfs::shown(root).display().to_string();
    let mounts_before = host_mounts()?;
    let (in_rootfs, on_host) = (list_dir(root)?, list_dir(Path::new("/"))?);
    let verdict = |names: &[String]| {
        if names == in_rootfs.as_slice() {
            "the rootfs"
        } else if names == on_host.as_slice() {
            "the HOST's /"
        } else {
            "something else"
        }
    };

    say.step("a root filesystem is a directory with a small Linux inside")?;
    say.host(&format!("{r}\n{}", in_rootfs.join(" ")));
    say.note(
        "bin/ holds the programs (a busybox, or the host's own binaries with their libraries).",
    );

    say.step("chroot(): change what / means for the container")?;
    say.syscall(&format!(
        "clone(child, stack, {})\nchroot(\"{r}\")\nchdir(\"/\")",
        describe(FLAGS)
    ));
    say.shell(&format!("unshare --mount --pid --fork chroot {r} ls /"));
    let names = look(root, Root::Chroot, false)?;
    say.container(&listing(&names));
    say.ok(&format!("that is {}", verdict(&names)));

    say.step("...and walk out of it, as root can")?;
    say.syscall(
        "mkdir(\"/.breakout-N\")\nchroot(\"/.breakout-N\")\nchdir(\"..\") × 256\nchroot(\".\")",
    );
    let names = look(root, Root::Chroot, true)?;
    say.container(&listing(&names));
    say.warn(&format!(
        "that is {}: chroot moved \"/\", not the working directory,",
        verdict(&names)
    ));
    say.warn("and \"..\" climbs until the real top of the mount tree. chroot is not a jail.");

    say.step("pivot_root(): swap the root mount, then detach the old one")?;
    say.syscall(&format!(
        "mount(\"{r}\", \"{r}\", NULL, MS_BIND | MS_REC, NULL)\nchdir(\"{r}\")\n\
         pivot_root(\".\", \".\")\numount2(\".\", MNT_DETACH)\nchdir(\"/\")"
    ));
    say.shell(&format!(
        "mount --bind {r} {r} && cd {r} && pivot_root . . && umount -l ."
    ));
    let names = look(root, Root::Pivot, false)?;
    say.container(&listing(&names));
    say.ok(&format!("that is {}", verdict(&names)));
    say.note("The rootfs is now the root mount of the container's mount namespace,");
    say.note("and the host's root is not mounted anywhere in it.");

    say.step("the same escape, after pivot_root")?;
    let names = look(root, Root::Pivot, true)?;
    say.container(&listing(&names));
    if verdict(&names) == "the rootfs" {
        say.ok("still the rootfs: \"..\" stops at the root mount, and there is nothing above it.");
    } else {
        say.warn(&format!(
            "that is {}: the escape should have failed",
            verdict(&names)
        ));
    }

    say_host_mounts_unchanged(&mounts_before, say)?;

    say.finish("Next, chapter 5: a hostname of the container's own (the UTS namespace).")
}
