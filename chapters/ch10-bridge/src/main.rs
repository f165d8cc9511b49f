//! Chapter 10: a bridge for many containers (docker0), names, published
//! ports and outgoing NAT.
//!
//! `ch10-bridge` runs the guided demo (demo.rs: three containers on the
//! bridge, pinging each other by name, a web page through a published port,
//! then everything gone); `ch10-bridge --name web -p 8080:80 -- COMMAND`
//! runs COMMAND in chapter 8's container (layers, limits, hostname and all)
//! on the bridge `wsbr0`.

use anyhow::Result;
use ch04_rootfs::RootfsOption;
use ch06_net::netlink::Netlink;
use ch08_overlay::{parse_layer, ContainerOptions};
use ch10_bridge::{reclaim_what_killed_runs_left, run_on_network, BridgeOptions};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::process::exec;
use workshop::{ChapterCli, Common, Narrator};

mod demo;

/// Chapter 10: a bridge for many containers (docker0), names, published
/// ports and outgoing NAT.
#[derive(Parser)]
#[command(
    version,
    after_help = "Example: ch10-bridge --name web -p 8080:80 -- \\\n    sh -c 'echo hello > /tmp/index.html && exec httpd -f -p 80 -h /tmp'\n\
    then, on the host: curl http://127.0.0.1:8080/"
)]
struct Cli {
    #[command(flatten)]
    network: BridgeOptions,

    /// A read-only layer over the rootfs; repeat it, the first is the top (chapter 8)
    #[arg(long = "layer", value_name = "DIR", value_parser = parse_layer)]
    layers: Vec<PathBuf>,

    // `--keep`, and chapter 7's limits and chapter 5's hostname.
    #[command(flatten)]
    container: ContainerOptions,

    #[command(flatten)]
    rootfs: RootfsOption,

    #[command(flatten)]
    common: Common,
}

impl ChapterCli for Cli {
    fn common(&self) -> &Common {
        &self.common
    }

    fn reject_conflicts(&self) {
        self.network.reject_conflicts::<Cli>();
    }
}

fn main() -> ExitCode {
    workshop::main(
        "ch10-bridge",
        "to create namespaces, cgroups, mounts and links",
        run,
    )
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    let mut nl = Netlink::open()?;
    if cli.common.mode() != Mode::Demo {
        // The demo does it after its first step header.
        reclaim_what_killed_runs_left(&mut nl, say)?;
    }
    let root = cli.rootfs.resolve(|line| say.note(line))?;
    // The lowers, the top first: the --layer options, then the rootfs.
    let lowers: Vec<PathBuf> = cli.layers.iter().cloned().chain([root.clone()]).collect();
    match cli.common.mode() {
        Mode::Demo => demo::demo(&root, &mut nl, say).map(|()| 0),
        Mode::Run(argv) | Mode::Shell(argv) => {
            run_on_network(&cli.container, &cli.network, lowers, &mut nl, say, || {
                exec(&argv)
            })
        }
    }
}
