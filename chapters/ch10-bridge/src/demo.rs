//! The guided demo: three containers on the bridge, each a run of this
//! very tool (as a student would start them, in three terminals), pinging
//! each other by name; a web page served by busybox httpd in one of them,
//! fetched from the host through its published port; the bridge's ports and
//! forwarding database read from the host; then everything gone.

use anyhow::{bail, Context, Result};
use ch06_net::netlink::Netlink;
use ch10_bridge::{lease, nat, reclaim_what_killed_runs_left, State, BRIDGE, GATEWAY, SUBNET};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use workshop::process::exec;
use workshop::Narrator;

/// How long a container of the demo may take to be on the bridge.
const JOIN_WAIT: Duration = Duration::from_secs(20);

/// The containers the demo started, each a run of this tool in the
/// background. Dropped (at the end, or on Ctrl-C or an error): each is sent
/// SIGTERM, as Ctrl-C in its terminal would, and waited for: each leaves the
/// bridge, and the last one out removes it.
struct Crew {
    root: std::path::PathBuf,
    runs: Vec<(String, Child)>,
}

impl Crew {
    fn start(&mut self, name: &str, options: &[&str], script: &str) -> Result<()> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["--quiet", "--color", "never", "--rootfs"])
            .arg(&self.root)
            .args(["--name", name])
            .args(options)
            .args(["--", "sh", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()); // read if it ends early: its error says why
                                     // SAFETY: between fork and exec only prctl, which is async-signal-safe:
                                     // if the demo is killed, so are its runs (and their containers with them).
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = command
            .spawn()
            .context("failed to start a run of ch10-bridge")?;
        self.runs.push((name.to_string(), child));
        Ok(())
    }

    /// The host PID of `name`'s container: its run's child.
    fn container(&self, name: &str) -> Result<Pid> {
        let (_, child) = (self.runs.iter().find(|(n, _)| n == name))
            .with_context(|| format!("no run called {name}"))?;
        let path = format!("/proc/{0}/task/{0}/children", child.id());
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
        let pid = text
            .split_whitespace()
            .next()
            .with_context(|| format!("{name} has no container"))?;
        Ok(Pid::from_raw(pid.parse()?))
    }

    /// Wait until every run's container is on the bridge (its lease is
    /// there, and its eth0 is up inside) and runs its command.
    fn wait_until_joined(&mut self, state: &State) -> Result<Vec<lease::Lease>> {
        let start = Instant::now();
        loop {
            for (name, child) in &mut self.runs {
                if let Some(status) = child.try_wait()? {
                    let mut said = String::new();
                    if let Some(mut stderr) = child.stderr.take() {
                        let _ = stderr.read_to_string(&mut said);
                    }
                    return Err(refused(name, status, &said));
                }
            }
            let leases = lease::leases(&state.leases())?;
            let all_in = self.runs.iter().all(|(name, _)| {
                leases.iter().any(|l| &l.name == name)
                    && self
                        .container(name)
                        .is_ok_and(|c| has_its_address(c) && runs_its_command(c))
            });
            if all_in {
                return Ok(leases);
            }
            if start.elapsed() > JOIN_WAIT {
                bail!("the containers were not all on the bridge after {JOIN_WAIT:?}");
            }
            workshop::process::stop_if_interrupted()?;
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-C each run, as its terminal would, and wait for it.
    fn stop(&mut self) {
        for (_, child) in &self.runs {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        }
        for (_, mut child) in self.runs.drain(..) {
            let _ = child.wait();
        }
    }
}

/// The error of a run of the crew that ended early, with its own error
/// and hint (it runs with --quiet: its stderr holds little else).
fn refused(name: &str, status: std::process::ExitStatus, said: &str) -> anyhow::Error {
    let line = |prefix: &str| {
        said.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
    };
    let why = line("error: ").unwrap_or_else(|| said.trim().to_string());
    let error = format!("the run of {name} ended before it was on the bridge ({status}): {why}");
    match line("hint: ") {
        Some(hint) => workshop::error::hinted(error, hint),
        None => anyhow::anyhow!(error),
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a container's eth0 has its address yet: its network namespace's
/// routes (read through /proc/PID/net) hold the bridge's subnet.
fn has_its_address(container: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{container}/net/route"))
        .is_ok_and(|routes| routes.lines().any(|l| l.starts_with("eth0")))
}

/// Whether a container runs its own command yet: its program is no longer
/// this tool's (the clone of the tool execs the command last, once it is in
/// its root with its /etc/hosts; joining it before would land in a mount
/// namespace that still shows the host's files).
fn runs_its_command(container: Pid) -> bool {
    let exe = std::fs::read_link(format!("/proc/{container}/exe"));
    exe.is_ok() && exe.ok() != std::env::current_exe().ok()
}

/// `docker exec`: run `argv` in `container`'s namespaces (chapter 2's
/// join), and capture what it prints.
fn exec_in(container: Pid, argv: &[&str]) -> Result<ch01_clone::Observed> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    ch01_clone::observe(CloneFlags::empty(), || {
        ch02_namespaces::join_namespaces(container)?;
        exec(&argv)
    })
}

/// The demo makes its own bridge and three containers named web, alpha
/// and beta: here, lo must be up (it fetches a page at 127.0.0.1), and no
/// container may be on this namespace's bridge already.
fn ready_for_the_demo(nl: &mut Netlink, state: &State) -> Result<()> {
    if !nl.link("lo")?.is_some_and(|lo| lo.up) {
        return Err(workshop::error::hinted(
            "lo is down in this network namespace: the demo fetches its page at 127.0.0.1",
            "bring it up first: `ip link set lo up` (a new namespace starts with lo down)",
        ));
    }
    let held: Vec<_> = lease::leases(&state.leases())?
        .into_iter()
        .filter(|l| l.is_held())
        .collect();
    if let Some(lease) = held.first() {
        return Err(workshop::error::hinted(
            format!(
                "{} container(s) are on {BRIDGE} here already ({} at {}, ...): the demo wants the bridge to itself",
                held.len(),
                if lease.name.is_empty() { "one" } else { &lease.name },
                lease.address
            ),
            "stop them first, or run the demo in a network namespace of its own: \
             `sudo unshare --net sh -c 'ip link set lo up; target/debug/ch10-bridge'`",
        ));
    }
    Ok(())
}

/// A free TCP port on the host for the demo's published port, from 8080 on.
fn free_port() -> Result<u16> {
    (8080..8180)
        .find(|&port| TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).is_ok())
        .context("no free port between 8080 and 8179 on the host")
}

/// `GET /` through the published port, as `curl http://127.0.0.1:PORT/`.
fn fetch(port: u16) -> Result<String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("failed to connect to 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .context("failed to read the reply")?;
    Ok(reply)
}

/// The container's name in the leases, for a port (the veth's host end).
fn name_of_port<'a>(leases: &'a [lease::Lease], port: &str) -> &'a str {
    (leases.iter().find(|l| l.veth == port)).map_or("?", |l| l.name.as_str())
}

const PAGE: &str = "<h1>hello from web</h1>";

pub fn demo(root: &Path, nl: &mut Netlink, say: &Narrator) -> Result<()> {
    say.title("Chapter 10 · bridge: many containers on one switch (docker0)");
    let state = State::here()?;
    let forwarding_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?;
    let mut crew = Crew {
        root: root.to_path_buf(),
        runs: Vec::new(),
    };

    say.step("the first container makes the bridge")?;
    reclaim_what_killed_runs_left(nl, say)?;
    ready_for_the_demo(nl, &state)?;
    let port = free_port()?;
    let web = format!("mkdir /w && echo '{PAGE}' >/w/index.html &&\nexec httpd -f -p 80 -h /w");
    say.shell(&format!(
        "ch10-bridge --name web -p {port}:80 -- sh -c \\\n\"{web}\" &"
    ));
    crew.start("web", &["-p", &format!("{port}:80")], &web)?;
    crew.wait_until_joined(&state)?;
    say.syscall("RTM_NEWLINK wsbr0-new kind bridge · RTM_SETLINK name wsbr0, alias");
    say.syscall("RTM_NEWADDR 10.201.0.1/24 · RTM_SETLINK up");
    say.shell("ip link add wsbr0-new type bridge");
    let bridge = nl.link(BRIDGE)?.context("the bridge is not there")?;
    say.shell(&format!(
        "ip link set wsbr0-new name wsbr0 alias '{}'",
        bridge.alias.as_deref().unwrap_or("")
    ));
    say.shell("ip addr add 10.201.0.1/24 dev wsbr0; ip link set wsbr0 up");
    say.host(&format!(
        "{}: {}, {GATEWAY}/{} (the containers' gateway), {}",
        bridge.name,
        bridge.kind.as_deref().unwrap_or("?"),
        SUBNET.prefix,
        if bridge.up { "up" } else { "down" }
    ));
    say.note("A bridge is a switch inside the kernel; its own address makes the host a member.");

    say.step("two more containers join it, each with the next free address")?;
    for name in ["alpha", "beta"] {
        say.shell(&format!("ch10-bridge --name {name} -- sleep 600 &"));
        crew.start(name, &[], "exec sleep 600")?;
    }
    let leases = crew.wait_until_joined(&state)?;
    say.shell(&format!("head {}/*", state.leases().display()));
    for lease in &leases {
        say.host(&format!(
            "{:<11} {:<6} {}",
            lease.address, lease.name, lease.owner
        ));
    }
    say.note("(each file's name, then the name and the owner it holds)");
    say.note("A lease is a file named by its address, made with O_EXCL: of two runs at once, only one creates it. It names the run that holds it (PID and start time), so a killed run's lease is found and reclaimed.");

    say.step("bridge link: each container's veth is a port of the bridge")?;
    say.shell("ip link set wsh-PID master wsbr0 up");
    for link in nl
        .links()?
        .iter()
        .filter(|l| l.master == Some(bridge.index))
    {
        say.host(&format!(
            "{}: master {BRIDGE} {} (the host end of {}'s veth)",
            link.name,
            if link.up { "up" } else { "down" },
            name_of_port(&leases, &link.name)
        ));
    }

    say.step("names: one /etc/hosts, every container's, read-only")?;
    let alpha = crew.container("alpha")?;
    say.container("cat /etc/hosts");
    let hosts = exec_in(alpha, &["cat", "/etc/hosts"])?;
    say.container(hosts.output.trim_end());
    say.note("Rewritten in place as containers come and go: each bind mount shows the same file.");

    say.step("each container pings the others by name")?;
    let mut unreached = Vec::new();
    for from in ["web", "alpha", "beta"] {
        let pid = crew.container(from)?;
        for to in ["web", "alpha", "beta"].iter().filter(|to| **to != from) {
            let seen = exec_in(pid, &["ping", "-c", "1", "-W", "2", to])?;
            let reply = (seen.output.lines())
                .find(|l| l.contains("bytes from"))
                .unwrap_or("no reply")
                .to_string();
            say.container(&format!("{from:>5}→{to:<5} {reply}"));
            if seen.exit != workshop::process::Exit::Code(0) {
                say.warn(&format!(
                    "{from} could not reach {to}: {}",
                    seen.output.trim()
                ));
                unreached.push(format!("{from} → {to}"));
            }
        }
    }
    if !unreached.is_empty() {
        // A bridge that carries nothing has shown nothing: fail loudly (the
        // crew is stopped on the way out, and the last one removes the bridge).
        return Err(workshop::error::hinted(
            format!(
                "the containers could not reach each other: {}",
                unreached.join(", ")
            ),
            "does a firewall filter bridged traffic (`nft list ruleset`; br_netfilter sends it through iptables)?",
        ));
    }

    say.step("bridge fdb: the bridge learned which port each container is behind")?;
    say.shell(&format!("bridge fdb show br {BRIDGE} | grep -v permanent"));
    let ports: Vec<_> = nl.links()?;
    for entry in nl.fdb(BRIDGE)?.iter().filter(|e| !e.permanent) {
        let port = (ports.iter().find(|l| l.index == entry.port)).map_or("?", |l| l.name.as_str());
        say.host(&format!(
            "{} dev {port} master {BRIDGE} ({}'s eth0)",
            entry.mac_text(),
            name_of_port(&leases, port)
        ));
    }
    say.note(
        "Learned from each frame's source address; a frame for an unknown one goes to every port.",
    );

    say.step("a web page through a published port")?;
    say.shell(&format!("curl http://127.0.0.1:{port}/"));
    let reply = fetch(port)?;
    let status = reply.lines().next().unwrap_or("").trim_end().to_string();
    let body = reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string();
    say.host(&format!("{status} · {body}"));
    say.note(&format!(
        "web's run listens on port {port} and relays each connection to its container's port 80 (as docker-proxy)."
    ));

    say.step("outgoing traffic leaves with the host's address (masquerade)")?;
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?;
    say.host(&format!(
        "net.ipv4.ip_forward = {} (was {}: the first container turned it on)",
        forwarding.trim(),
        forwarding_before.trim()
    ));
    if nat::nft_available() {
        say.shell(&format!("nft list table ip {}", nat::TABLE));
        let listed = Command::new("nft")
            .args(["list", "table", "ip", nat::TABLE])
            .output()
            .context("failed to run nft")?;
        say.host(
            &String::from_utf8_lossy(&listed.stdout)
                .trim_end()
                .replace('\t', "  "),
        );
        say.note("A packet from 10.201.0.0/24 leaving by any other link gets the host's address.");
    } else {
        say.warn(ch10_bridge::NO_NFT);
    }

    say.step("the containers stop: the last one out removes everything")?;
    say.shell("kill %1 %2 %3");
    crew.stop();
    let gone = |yes: bool| if yes { "gone" } else { "STILL THERE" };
    say.host(&format!("{BRIDGE}: {}", gone(nl.link(BRIDGE)?.is_none())));
    say.host(&format!(
        "{}: {}",
        state.dir.display(),
        gone(!state.dir.exists())
    ));
    say.host(&format!(
        "port {port}: {}",
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            "closed"
        } else {
            "STILL OPEN"
        }
    ));
    let after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?;
    say.host(&format!(
        "net.ipv4.ip_forward = {} ({})",
        after.trim(),
        if after == forwarding_before {
            "as before"
        } else {
            "NOT AS BEFORE"
        }
    ));
    let left = [
        (nl.link(BRIDGE)?.is_some(), BRIDGE.to_string()),
        (state.dir.exists(), state.dir.display().to_string()),
        (
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok(),
            format!("port {port}"),
        ),
        (
            after != forwarding_before,
            "net.ipv4.ip_forward".to_string(),
        ),
    ];
    let left: Vec<&str> = (left.iter().filter(|(there, _)| *there))
        .map(|(_, what)| what.as_str())
        .collect();
    if !left.is_empty() {
        bail!(
            "the last container out left {}: a bug of this chapter",
            left.join(", ")
        );
    }

    say.finish("Next, chapter 11: root in the container, not on the host (a user namespace).")
}
