//! Chapter 11: a rootless container. Run it as yourself, with no sudo:
//! `ch11-rootless` runs the guided demo (demo.rs), and
//! `ch11-rootless -- COMMAND` runs COMMAND as root in a user namespace of
//! yours, in chapter 8's container (overlay, hostname, and chapter 7's
//! limits when a cgroup is delegated to you).

use anyhow::Result;
use ch04_rootfs::RootfsOption;
use ch08_overlay::parse_layer;
use ch11_rootless::{attack, run_rootless, RootlessOptions};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::process::exec;
use workshop::{ChapterCli, Common, Narrator};

mod demo;

/// Chapter 11: a rootless container. Root inside, yourself outside, no sudo.
#[derive(Parser)]
#[command(
    version,
    after_help = "Run it as yourself, without sudo. Example: ch11-rootless -- sh -c 'id; touch /mine; ls -ln /mine'"
)]
struct Cli {
    #[command(flatten)]
    options: RootlessOptions,

    /// A read-only layer over the rootfs; repeat it, the first is the top (chapter 8)
    #[arg(long = "layer", value_name = "DIR", value_parser = parse_layer)]
    layers: Vec<PathBuf>,

    #[command(flatten)]
    rootfs: RootfsOption,

    #[command(flatten)]
    common: Common,
}

impl ChapterCli for Cli {
    fn common(&self) -> &Common {
        &self.common
    }
}

fn main() -> ExitCode {
    if attack::called_as_attack() {
        return attack::main(); // inside a container, as `ws-attack`
    }
    workshop::main_unprivileged("ch11-rootless", run)
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    let root = cli.rootfs.resolve(|line| say.note(line))?;
    let lowers: Vec<PathBuf> = cli.layers.iter().cloned().chain([root.clone()]).collect();
    match cli.common.mode() {
        Mode::Demo => demo::demo(&cli.options, lowers, say).map(|()| 0),
        Mode::Run(argv) | Mode::Shell(argv) => {
            run_rootless(&cli.options, lowers, say, || exec(&argv))
        }
    }
}
