//! Chapter 6: a network namespace and a veth pair, over netlink.
//!
//! `ch06-net` runs the guided demo (pings both ways); `ch06-net -- COMMAND`
//! runs COMMAND in a container whose eth0 is one end of a veth pair, the
//! other end on the host with the subnet's first address.

use anyhow::Result;
use ch01_clone::{clone_child, describe, Observed};
use ch04_rootfs::{enter_rootfs, RootfsOption};
use ch05_uts::{set_hostname, HostnameOption};
use ch06_net::{
    check_no_clash, configure_host_end, configure_inside, create_pair, reclaim_stale, veth_names,
    wait_until_gone, TEARDOWN,
};
use clap::Parser;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::convert::Infallible;
use std::path::Path;
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::net::{plan, Netlink, Plan};
use workshop::process::{argv, exec, wait_for, Capture, Gate};
use workshop::{Common, Narrator};

/// Chapter 6: a network namespace and a veth pair, over netlink.
#[derive(Parser)]
#[command(version, after_help = "Example: ch06-net -- ping -c1 10.200.0.1")]
struct Cli {
    /// The container's address and prefix; the host end takes the subnet's first address
    #[arg(long, value_name = "ADDR/PREFIX", default_value = "10.200.0.2/24", value_parser = plan)]
    ip: Plan,

    #[command(flatten)]
    hostname: HostnameOption,

    #[command(flatten)]
    rootfs: RootfsOption,

    #[command(flatten)]
    common: Common,
}

// ANCHOR: flags
/// Chapters 1 to 5, plus a new network namespace.
const FLAGS: CloneFlags = CloneFlags::CLONE_NEWPID
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWNET);
// ANCHOR_END: flags

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.common.reject_mistyped_option::<Cli>();
    let say = Narrator::new(&cli.common);
    workshop::report(run(&cli, &say), &say)
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    workshop::start(
        &cli.common,
        "ch06-net",
        "to create network, mount, UTS and PID namespaces",
    )?;
    workshop::privileges::require(
        workshop::privileges::Capability::NetAdmin,
        "ch06-net",
        "to create network links",
    )?;
    let root = cli.rootfs.resolve(|line| say.note(line))?;
    let mut nl = Netlink::open()?;
    for stale in reclaim_stale(&mut nl)? {
        say.note(&format!(
            "removed {stale}, the veth pair of a run that has ended"
        ));
    }
    check_no_clash(&mut nl, &cli.ip)?;
    match cli.common.mode() {
        Mode::Demo => demo(cli, &root, &mut nl, say).map(|()| 0),
        Mode::Run(argv) | Mode::Shell(argv) => {
            let container = Container::start(cli, &root, &mut nl, || exec(&argv))?;
            say.container_started(container.pid);
            Ok(wait_for(container.pid)?.code())
        }
    }
}

/// A running container and the host end of its veth pair (which goes with
/// the container: see `create_pair`).
struct Container {
    pid: Pid,
    host_end: String,
}

impl Container {
    // ANCHOR: start
    /// The container first, waiting at a gate; then the cable, one end born
    /// in its namespace (if the kernel has no veth, the container is stopped
    /// and nothing is left); then the host end; then the gate opens.
    fn start(
        cli: &Cli,
        root: &Path,
        nl: &mut Netlink,
        then: impl FnOnce() -> Result<Infallible>,
    ) -> Result<Container> {
        let (host_end, container_end) = veth_names(std::process::id());
        let mut gate = Gate::new()?;
        let pid = clone_child(FLAGS, || {
            gate.pass()?; // until our end of the cable is here
            configure_inside(&container_end, &cli.ip)?;
            set_hostname(&cli.hostname.name)?;
            enter_rootfs(root)?;
            then()
        })?;
        let setup = create_pair(nl, &host_end, &container_end, pid)
            .and_then(|()| configure_host_end(nl, &host_end, &cli.ip));
        if let Err(e) = setup {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = wait_for(pid);
            return Err(e);
        }
        gate.open();
        Ok(Container { pid, host_end })
    }
    // ANCHOR_END: start
}

fn demo(cli: &Cli, root: &Path, nl: &mut Netlink, say: &Narrator) -> Result<()> {
    say.title("Chapter 6 · a network of the container's own");
    let plan = &cli.ip;

    say.step("a new network namespace starts with lo only, and lo is down");
    say.syscall(&format!("clone(child, stack, {})", describe(FLAGS)));
    say.shell("unshare --net --fork ip link");
    let seen = ch01_clone::observe(FLAGS, || {
        enter_rootfs(root)?;
        exec(&argv(&["ip", "link"]))
    })?;
    say.container(seen.output.trim_end());
    let host_links: Vec<String> = nl.links()?.into_iter().map(|l| l.name).collect();
    say.host(&format!("links: {}", host_links.join(" ")));
    say.note("No eth0, no route, no way out: a network namespace isolates all of it.");

    workshop::process::stop_if_interrupted()?;
    let (host_end, container_end) = veth_names(std::process::id());
    say.step("a veth pair: a virtual cable, one end on the host, the other in the container");
    say.syscall(&format!(
        "RTM_NEWLINK {host_end} kind veth, peer {container_end} with IFLA_NET_NS_PID=<container>"
    ));
    say.shell(&format!(
        "ip link add {host_end} type veth peer name {container_end} netns <PID>\n\
         (or: ip link add {host_end} type veth peer name {container_end}; ip link set {container_end} netns <PID>)"
    ));
    say.step("addresses, links up, and a default route through the host end");
    say.shell(&format!(
        "ip addr add {}/{p} dev {host_end}; ip link set {host_end} up      # on the host\n\
         ip link set lo up; ip link set {container_end} name eth0                  # in the container\n\
         ip addr add {}/{p} dev eth0; ip link set eth0 up; ip route add default via {}",
        plan.host,
        plan.container,
        plan.host,
        p = plan.subnet.prefix
    ));

    // The container shows its side, then pings the host; the host pings it as
    // soon as it has exec'd (the ready gate), while it is alive.
    let capture = Capture::new()?;
    let ready = Gate::new()?;
    let script = format!(
        "ip -4 addr show eth0; ip route; ping -c1 -W2 {}; sleep 1",
        plan.host
    );
    let container = Container::start(cli, root, nl, || {
        capture.redirect()?;
        exec(&argv(&["sh", "-c", &script]))
    })?;
    ready.wait_until_exec()?;
    let link = nl.link(&container.host_end)?;
    let addresses: Vec<String> = nl
        .addresses()?
        .into_iter()
        .filter(|a| Some(a.index) == link.as_ref().map(|l| l.index))
        .map(|a| format!("{}/{}", a.address, a.prefix))
        .collect();
    say.host(&format!(
        "{}: {} {}   (the container end is gone from here: moved)",
        container.host_end,
        if link.as_ref().is_some_and(|l| l.up) {
            "UP"
        } else {
            "DOWN"
        },
        addresses.join(" ")
    ));

    workshop::process::stop_if_interrupted()?;
    say.step("ping both ways across the cable");
    let host_ping = std::process::Command::new("ping")
        .args(["-c1", "-W2", &plan.container.to_string()])
        .output();
    match host_ping {
        Ok(out) if out.status.success() => say.ok(&format!(
            "host → container: ping {} answered",
            plan.container
        )),
        Ok(out) => say.warn(&format!(
            "host → container: ping {} failed:\n{}",
            plan.container,
            String::from_utf8_lossy(&out.stdout)
        )),
        Err(_) => say.warn("host → container: no `ping` on the host (apt install iputils-ping)"),
    }
    let (output, exit) = capture.collect(container.pid)?;
    let seen = Observed {
        pid: container.pid,
        output,
        exit,
    };
    say.container(seen.output.trim_end());
    if seen.exit.code() == 0 {
        say.ok(&format!("container → host: ping {} answered", plan.host));
    } else {
        say.warn(&format!(
            "container → host: the ping failed ({})",
            seen.exit
        ));
    }

    say.step("the container is gone, and its cable with it");
    // Nobody deletes the pair: the kernel destroys the container's namespace
    // a moment after its last process, its end of the cable with it, and the
    // other end with that.
    let start = std::time::Instant::now();
    if wait_until_gone(nl, &container.host_end, TEARDOWN)? {
        say.ok(&format!(
            "{} is gone, {:.0} ms after the container: the kernel deleted the pair with its namespace",
            container.host_end,
            start.elapsed().as_secs_f64() * 1e3
        ));
    } else {
        say.warn(&format!(
            "{} is still on the host {} s after the container ended",
            container.host_end,
            TEARDOWN.as_secs()
        ));
    }
    say.note("Going further (not done here): docker puts host ends on a bridge (docker0) and");
    say.note("NATs the bridge's subnet out through the host's own address with iptables.");

    say.finish("Next, chapter 7: limits on CPU, processes and memory (cgroups).");
    Ok(())
}
