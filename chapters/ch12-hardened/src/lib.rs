//! Chapter 12: what stands between a container's root and the host. Until
//! now, root in the container was the host's root with every capability,
//! a whole /proc and every system call: chapter 11's attacks show what that
//! lets it do. This chapter takes it away, in the order runc does, just
//! before the exec: two more namespaces (IPC, cgroup), docker's masked and
//! read-only paths, docker's capabilities and no others, no_new_privs, and
//! a seccomp filter last.
//!
//! Its run mode is the whole runtime of the course: chapter 9's images,
//! chapter 10's bridge (or chapter 6's veth, or none), chapter 11's
//! rootless container with `--rootless`, chapter 8's layers and chapter 7's
//! limits; hardened unless `--privileged`.

use anyhow::{bail, Context, Result};
use ch04_rootfs::RootfsOption;
use ch06_net::netlink::Netlink;
use ch08_overlay::{parse_layer, ContainerOptions};
use ch09_image::{Reference, Store};
use ch10_bridge::{BridgeOptions, NetworkMode};
use ch11_rootless::idmap::MapChoice;
use ch11_rootless::RootlessOptions;
use nix::sched::CloneFlags;
use std::convert::Infallible;
use std::path::PathBuf;
use workshop::Narrator;

pub mod caps;
pub mod paths;
pub mod seccomp;

// ANCHOR: namespaces
/// The two namespaces the run modes did not have yet: SysV IPC of its own
/// (the host's shared memory out of sight), and a cgroup namespace, whose
/// root is the container's own cgroup (/proc/self/cgroup says `0::/`, and
/// a cgroupfs mounted inside shows no host path). Unshared in the
/// container, once it is in its cgroup: the namespace's root is the cgroup
/// the process is in when it is made.
pub const MORE_NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWIPC.union(CloneFlags::CLONE_NEWCGROUP);
// ANCHOR_END: namespaces

// ANCHOR: harden
/// In the container, after the pivot, just before the exec: everything
/// this chapter adds, in this order. Mounts need CAP_SYS_ADMIN, so the
/// paths come before the capabilities go; the seccomp filter comes last,
/// so that nothing of ours runs under it but the exec.
pub fn harden() -> Result<()> {
    nix::sched::unshare(MORE_NAMESPACES)
        .context("failed to unshare(CLONE_NEWIPC | CLONE_NEWCGROUP)")?;
    paths::protect_proc_and_sys()?; // masked and read-only /proc, read-only /sys
    caps::drop_capabilities()?; // docker's set, less CAP_MKNOD
    seccomp::load() // no_new_privs, then the filter
}
// ANCHOR_END: harden

/// `--privileged` and `--rootless`, and what `--rootless` takes.
#[derive(clap::Args, Debug, Clone)]
pub struct HardeningOptions {
    /// Turn the hardening off, as `docker run --privileged` (for a look at the "before")
    #[arg(long)]
    pub privileged: bool,

    /// Run as yourself, in a user namespace (chapter 11): no sudo
    #[arg(long)]
    pub rootless: bool,

    /// With --rootless: which of the host's ids the container's users are (chapter 11)
    #[arg(long, value_enum, value_name = "MAP", requires = "rootless")]
    pub map: Option<MapChoice>,
}

/// Everything the run mode takes.
#[derive(clap::Args, Debug, Clone)]
pub struct RunOptions {
    #[command(flatten)]
    pub hardening: HardeningOptions,

    /// Run this image of chapter 9's store (`ch09-image images` lists them)
    #[arg(long, value_name = "NAME[:TAG]")]
    pub image: Option<Reference>,

    /// Chapter 9's image store (default target/images)
    #[arg(long, value_name = "DIR", requires = "image")]
    pub store: Option<PathBuf>,

    #[command(flatten)]
    pub network: BridgeOptions,

    /// A read-only layer over the rootfs; repeat it, the first is the top (chapter 8)
    #[arg(long = "layer", value_name = "DIR", value_parser = parse_layer, conflicts_with = "image")]
    pub layers: Vec<PathBuf>,

    #[command(flatten)]
    pub container: ContainerOptions,

    #[command(flatten)]
    pub rootfs: RootfsOption,
}

/// What the container runs: a command in the rootfs (and `--layer`s), or
/// an image's process (its config, or the command given).
enum Payload {
    Command(Vec<String>),
    Image(ch09_image::config::Process),
}

// ANCHOR: run
/// The whole runtime: the lowers (an image's layers, or the rootfs and
/// `--layer`s), chapter 11's rootless container or chapter 10's (bridge,
/// veth or none), and, unless `--privileged`, [`harden`] before the exec.
pub fn run(options: &RunOptions, command: &[String], say: &Narrator) -> Result<i32> {
    if !options.hardening.rootless {
        // First, before anything is read or built: --rootless needs none.
        workshop::privileges::require(
            workshop::privileges::Capability::SysAdmin,
            "ch12-hardened",
            "to create namespaces, cgroups, mounts and links (or run it with --rootless)",
        )?;
    }
    let (lowers, payload, _held) = match &options.image {
        Some(reference) => {
            let store = match &options.store {
                Some(dir) => Store::open(dir)?,
                None => Store::open_default()?,
            };
            let image = store.resolve(reference)?;
            let lowers = image.lowers(&store);
            let process = ch09_image::config::process(&image.config, command, &lowers)?;
            let held = store.hold_layers(&lowers)?; // an rmi meanwhile leaves them be
            (lowers, Payload::Image(process), Some(held))
        }
        None => {
            if command.is_empty() {
                bail!("no command to run: give one after `--`, or --image");
            }
            let root = options.rootfs.resolve(|line| say.note(line))?;
            let lowers = options.layers.iter().cloned().chain([root]).collect();
            (lowers, Payload::Command(command.to_vec()), None)
        }
    };
    let hardened = !options.hardening.privileged;
    let start = || -> Result<Infallible> {
        if hardened {
            harden()?;
        }
        match &payload {
            Payload::Command(argv) => {
                workshop::process::container_environment(); // none of the host's
                workshop::process::exec(argv)
            }
            Payload::Image(process) => process.exec(),
        }
    };
    if options.hardening.rootless {
        ch11_rootless::run_rootless(&rootless_options(options)?, lowers, say, start)
    } else {
        let mut nl = Netlink::open()?;
        ch10_bridge::reclaim_what_killed_runs_left(&mut nl, say)?;
        ch10_bridge::run_on_network(
            &options.container,
            &options.network,
            lowers,
            &mut nl,
            say,
            start,
        )
    }
}
// ANCHOR_END: run

/// Chapter 11's options from this chapter's: the network maps to chapter
/// 11's (the bridge, the default, becomes its `auto`: pasta, slirp4netns or
/// lo), and a veth, which needs root, is refused.
fn rootless_options(options: &RunOptions) -> Result<RootlessOptions> {
    use ch11_rootless::net::Choice;
    let network = match options.network.network {
        NetworkMode::Bridge => Choice::Auto,
        NetworkMode::None => Choice::None,
        NetworkMode::Veth => bail!("--network veth needs root (its host end is a link on the host): with --rootless, use the default or --network none"),
    };
    if !options.network.publish.is_empty() || options.network.container_name.is_some() {
        bail!("--name and -p are the bridge's, which needs root: with --rootless, leave them out");
    }
    Ok(RootlessOptions {
        map: options.hardening.map.unwrap_or_default(),
        network: ch11_rootless::net::NetworkOption { network },
        keep: options.container.keep,
        read_only: false, // chapter 12 has no --read-only of its own (yet)
        limits: options.container.limits.clone(),
        hostname: options.container.hostname.clone(),
    })
}
