//! Chapter 12: the hardened container, and the whole runtime of the course.
//!
//! `ch12-hardened` runs the guided demo (demo.rs: chapter 11's attacks
//! against chapter 7's container, then against this one);
//! `ch12-hardened [--image NAME] [--rootless] [--privileged] -- COMMAND`
//! runs COMMAND in the complete container.

use anyhow::Result;
use ch11_rootless::attack;
use ch12_hardened::RunOptions;
use clap::Parser;
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::{ChapterCli, Common, Narrator};

mod demo;

/// Chapter 12: capabilities, seccomp, masked /proc, IPC and cgroup
/// namespaces: the whole runtime of the course.
#[derive(Parser)]
#[command(
    version,
    after_help = "Examples:\n  sudo ch12-hardened -- sh -c 'grep Cap /proc/self/status'\n  \
                  sudo ch12-hardened --image workshop/demo --name web -p 8080:80\n  \
                  ch12-hardened --rootless -- id            (as yourself, no sudo)\n  \
                  sudo ch12-hardened --privileged -- ...     (the hardening off)"
)]
struct Cli {
    #[command(flatten)]
    options: RunOptions,

    #[command(flatten)]
    common: Common,
}

impl ChapterCli for Cli {
    fn common(&self) -> &Common {
        &self.common
    }

    fn reject_conflicts(&self) {
        self.options.network.reject_conflicts::<Cli>();
    }
}

fn main() -> ExitCode {
    if attack::called_as_attack() {
        return attack::main(); // inside a container, as `ws-attack`
    }
    // Root is checked by the run itself: --rootless needs none.
    workshop::main_unprivileged("ch12-hardened", run)
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    match cli.common.mode() {
        Mode::Demo if cli.options.image.is_none() => demo::demo(&cli.options, say).map(|()| 0),
        Mode::Demo => ch12_hardened::run(&cli.options, &[], say),
        Mode::Run(argv) | Mode::Shell(argv) => ch12_hardened::run(&cli.options, &argv, say),
    }
}
