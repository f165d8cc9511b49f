//! Chapter 6: a network namespace and a veth pair, over netlink.
//!
//! `ch06-net` runs the guided demo (pings both ways); `ch06-net -- COMMAND`
//! runs COMMAND in a container whose eth0 is one end of a veth pair, the
//! other end on the host with the subnet's first address.

use anyhow::{Context, Result};
use ch01_clone::{clone_child, describe, Capture, Gate, Observed};
use ch04_rootfs::{enter_rootfs, RootfsOption};
use ch05_uts::{set_hostname, HostnameOption};
use ch06_net::netlink::Netlink;
use ch06_net::Plan;
use ch06_net::{
    reclaim_stale, veth_names, wait_until_gone, NetworkMode, NetworkOptions, Wiring, TEARDOWN,
};
use clap::Parser;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::convert::Infallible;
use std::path::Path;
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::error::hinted;
use workshop::process::{argv, exec, wait_for};
use workshop::{ChapterCli, Common, Narrator};

/// Chapter 6: a network namespace and a veth pair, over netlink.
#[derive(Parser)]
#[command(version, after_help = "Example: ch06-net -- ping -c1 10.200.0.1")]
struct Cli {
    #[command(flatten)]
    network: NetworkOptions,

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
        "ch06-net",
        "to create network, mount, UTS and PID namespaces",
        run,
    )
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
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
    match cli.common.mode() {
        Mode::Demo => demo(cli, &root, &mut nl, say).map(|()| 0),
        Mode::Run(argv) | Mode::Shell(argv) => {
            let container = Container::start(cli, &root, &mut nl, |_| exec(&argv))?;
            say.container_started(container.pid);
            Ok(wait_for(container.pid)?.code())
        }
    }
}

/// A running container, the host end of its veth pair (which goes with the
/// container: see `create_pair`) and its addresses (none with --network none).
struct Container {
    pid: Pid,
    host_end: String,
    plan: Option<Plan>,
}

impl Container {
    // ANCHOR: start
    /// The container first, waiting for its end of the cable; then the
    /// cable, one end born in its namespace, in a subnet chosen and claimed
    /// in one step (if anything fails, the container is stopped and nothing
    /// is left); then the container gets its addresses and goes on.
    fn start(
        cli: &Cli,
        root: &Path,
        nl: &mut Netlink,
        then: impl FnOnce(Option<Plan>) -> Result<Infallible>,
    ) -> Result<Container> {
        let mut wiring = Wiring::new(&cli.network)?;
        let pid = clone_child(FLAGS, || {
            let plan = wiring.inside()?; // waits for the cable, then eth0 and lo
            set_hostname(&cli.hostname.name)?;
            enter_rootfs(root)?;
            then(plan)
        })?;
        let plan = wiring.connect(nl, pid)?;
        Ok(Container {
            pid,
            host_end: wiring.host_end,
            plan,
        })
    }
    // ANCHOR_END: start
}

fn demo(cli: &Cli, root: &Path, nl: &mut Netlink, say: &Narrator) -> Result<()> {
    say.title("Chapter 6 · a network of the container's own");
    if cli.network.network == NetworkMode::None {
        return Err(hinted(
            "the demo lays a veth pair, and --network none asks for none",
            "run a command instead: ch06-net --network none -- ip addr",
        ));
    }

    say.step("a new network namespace starts with lo only, and lo is down")?;
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

    let (host_end, container_end) = veth_names(std::process::id());
    say.step("a veth pair: a virtual cable, one end on the host, the other in the container")?;
    say.syscall(&format!(
        "RTM_NEWLINK {host_end} kind veth, peer {container_end} with IFLA_NET_NS_PID=<container>"
    ));
    say.shell(&format!(
        "ip link add {host_end} type veth peer name {container_end} netns <PID>\n\
         (or: ip link add {host_end} type veth peer name {container_end}; ip link set {container_end} netns <PID>)"
    ));

    // The container shows its side, then pings the host; the host pings it as
    // soon as it has exec'd (the ready gate), while it is alive.
    let capture = Capture::new()?;
    let ready = Gate::new()?;
    let container = Container::start(cli, root, nl, |plan| {
        capture.redirect()?;
        let host = plan.context("the veth gives the container addresses")?.host;
        // Alive a second for the host's ping; its exit code is its own ping's.
        let script =
            format!("ip -4 addr show eth0; ip route; ping -c1 -W2 {host}; r=$?; sleep 1; exit $r");
        exec(&argv(&["sh", "-c", &script]))
    })?;
    let plan = container
        .plan
        .context("the veth gives the container addresses")?;
    say.step("addresses, links up, and a default route through the host end")?;
    say.syscall(&format!(
        "flock(\"/proc/self/ns/net\", LOCK_EX); choose {}; claim it",
        plan.subnet
    ));
    say.shell(&format!(
        "ip addr add {}/{p} dev {host_end}; ip link set {host_end} up      # on the host\n\
         ip link set lo up; ip link set {container_end} name eth0                  # in the container\n\
         ip addr add {}/{p} dev eth0; ip link set eth0 up; ip route add default via {}",
        plan.host,
        plan.container,
        plan.host,
        p = plan.subnet.prefix
    ));
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

    say.step("ping both ways across the cable")?;
    let host_ping = std::process::Command::new("ping")
        .args(["-c1", "-W2", &plan.container.to_string()])
        .output();
    let mut broken = Vec::new();
    match host_ping {
        Ok(out) if out.status.success() => say.ok(&format!(
            "host → container: ping {} answered",
            plan.container
        )),
        Ok(out) => {
            say.container(String::from_utf8_lossy(&out.stdout).trim_end());
            broken.push(format!("host → container: ping {} failed", plan.container));
        }
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
        broken.push(format!(
            "container → host: ping {} failed ({})",
            plan.host, seen.exit
        ));
    }
    if !broken.is_empty() {
        // A demo whose cable carries nothing has shown nothing: fail loudly.
        return Err(hinted(
            format!("the container's network is broken: {}", broken.join("; ")),
            format!(
                "does another link use {} (`ip route`)? does a firewall drop ICMP on new links?",
                plan.subnet
            ),
        ));
    }

    say.step("the container is gone, and its cable with it")?;
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

    say.finish("Next, chapter 7: limits on CPU, processes and memory (cgroups).")
}
