//! mybox: the container, built from the functions of `under_test` (the
//! student's exercises or the solutions: the crate root that includes this
//! file names it). See ../mybox.rs.

use crate::under_test;
use anyhow::{bail, Context, Result};
use ch01_clone::{clone_child, observe, Gate};
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

const HELP: &str = "\
mybox: a container built from your own exercises (exercises/src/chNN_*.rs)

usage: mybox [OPTIONS] -- COMMAND [ARGS...]

options:
  --hostname NAME     the container's hostname (default: mybox)      [5.1, 5.2]
  --network MODE      none (default): a network namespace with lo only;
                      veth: a veth pair to the host, --ip for the container [6.1, 6.2];
                      bridge: a veth to the bridge mybox0, shared with every
                      other mybox on it, the next free address of 10.202.0.0/24 [10.1, 10.2, 6.2]
  --ip ADDR/PREFIX    the container's address with --network veth (default 10.200.0.2/24)
  --cpus N            a CPU limit, in CPUs (0.5 = half of one)        [7.1]
  --pids-limit N      at most N tasks in the container                [7.2]
  --rootless          as a normal user: a user namespace in which your own
                      uid and gid are root (no sudo) [11.1]; no rootfs,
                      overlay, hostname, network or limits, only its own
                      PID, mount and IPC namespaces, /proc and /tmp
  --privileged        no hardening: every capability, /proc unmasked [12.1, 12.2 off]
  -h, --help          this text

Every run: new PID, mount, network and IPC namespaces (ch01_clone::clone_child),
then, each with your function: private mounts [3.1], an overlay with the
workshop rootfs as its lower and an upper of the run's own [8.1] (removed at
exit: the rootfs is never written), pivot_root into it [4.1], /proc [3.2], a
tmpfs on /tmp [3.3], and the exit code [1.2]. Hardened unless --privileged,
just before the exec: docker's masked /proc paths hidden [12.2], then
docker's capabilities kept, less CAP_MKNOD, and every other dropped [12.1].
Before it runs, mybox lists which of these are yours and which are still
todo!(); a todo!() step is left out, and it says what the container lacks.

--network veth changes the network namespace mybox runs in: it adds a veth
pair and an address (10.200.0.1/24 by default) on the host end, removed at
exit. On your own machine, run it in a network namespace of its own:
  sudo unshare --net mybox --network veth -- ping -c1 10.200.0.1
The default, none, touches no network outside the container.
--network bridge makes the bridge mybox0 (10.202.0.1/24) in that namespace if
it is not there, and the last mybox on it removes it (its leases are under
/run/mybox-bridge-net-INODE).

The hostname uses 5.2's spawn_with_hostname as it is: mybox starts itself
again through it (so its second half runs in the new UTS namespace with your
hostname), and that second half starts the container, which inherits it.";

/// What the user asked for.
#[derive(Debug, Default)]
struct Options {
    hostname: Option<String>,
    veth: bool,
    /// `--network bridge`: chapter 10's bridge, with exercises 10.1 and 10.2.
    bridge: bool,
    ip: Option<(Ipv4Addr, u8)>,
    /// `--rootless`: as a normal user, in a user namespace (11.1).
    rootless: bool,
    /// `--privileged`: no hardening (12.1 and 12.2 left out).
    privileged: bool,
    cpus: Option<f64>,
    pids: Option<u64>,
    command: Vec<String>,
    /// Internal: the second half, started by 5.2 in the new UTS namespace,
    /// with the exercises the first half found solved.
    stage2: Option<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--" => {
                o.command = it.cloned().collect();
                break;
            }
            "-h" | "--help" => return Err(String::new()),
            "--hostname" => o.hostname = Some(value(arg)?),
            "--network" => {
                (o.veth, o.bridge) = match value(arg)?.as_str() {
                    "none" => (false, false),
                    "veth" => (true, false),
                    "bridge" => (false, true),
                    other => return Err(format!("--network {other:?}: none, veth or bridge")),
                }
            }
            "--ip" => {
                let v = value(arg)?;
                let bad = || format!("--ip {v:?}: ADDR/PREFIX, e.g. 10.200.0.2/24");
                let (a, p) = v.split_once('/').ok_or_else(bad)?;
                o.ip = Some((a.parse().map_err(|_| bad())?, p.parse().map_err(|_| bad())?));
            }
            "--cpus" => {
                let v = value(arg)?;
                let cpus: f64 = v.parse().map_err(|_| format!("--cpus {v:?}: a number"))?;
                if !(0.01..=1024.0).contains(&cpus) {
                    return Err(format!("--cpus {v}: from 0.01 to 1024"));
                }
                o.cpus = Some(cpus);
            }
            "--pids-limit" => {
                let v = value(arg)?;
                o.pids = Some(ch07_cgroups::cgroup::parse_pids_limit(&v)?);
            }
            "--privileged" => o.privileged = true,
            "--rootless" => o.rootless = true,
            "--stage2" => o.stage2 = Some(value(arg)?),
            other => return Err(format!("unknown option {other:?} (see --help)")),
        }
    }
    if o.command.is_empty() {
        return Err("no command: mybox [OPTIONS] -- COMMAND [ARGS...]".into());
    }
    if o.ip.is_some() && !o.veth {
        return Err("--ip needs --network veth".into());
    }
    // What a normal user may not do: a veth or bridge on the host, a cgroup
    // (none is delegated to mybox), and 5.2's UTS namespace outside a user
    // namespace.
    if o.rootless
        && (o.veth || o.bridge || o.cpus.is_some() || o.pids.is_some() || o.hostname.is_some())
    {
        return Err("--rootless takes no --network, --cpus, --pids-limit or --hostname".into());
    }
    Ok(o)
}

/// The exercises mybox chains, in the book's order.
const STEPS: &[(&str, &str, &str)] = &[
    ("1.2", "exit_code", "ch01_clone.rs"),
    ("3.1", "make_mounts_private", "ch03_mount.rs"),
    ("3.2", "mount_proc", "ch03_mount.rs"),
    ("3.3", "mount_tmpfs", "ch03_mount.rs"),
    ("4.1", "pivot_into", "ch04_rootfs.rs"),
    ("8.1", "mount_overlay", "ch08_overlay.rs"),
    ("5.1", "validate_hostname", "ch05_uts.rs"),
    ("5.2", "spawn_with_hostname", "ch05_uts.rs"),
    ("6.1", "host_address", "ch06_net.rs"),
    ("6.2", "configure_inside", "ch06_net.rs"),
    ("7.1", "write_cpu_limit", "ch07_cgroups.rs"),
    ("7.2", "limit_tasks", "ch07_cgroups.rs"),
    ("10.1", "attach", "ch10_bridge.rs"),
    ("10.2", "claim_next", "ch10_bridge.rs"),
    ("11.1", "write_id_maps", "ch11_rootless.rs"),
    ("12.2", "mask_path", "ch12_hardened.rs"),
    ("12.1", "drop_capabilities", "ch12_hardened.rs"),
];

/// What 12.2 hides in the container: docker's masked paths that are under
/// /proc (mybox mounts no /sys).
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
];

/// What 12.1 keeps: docker's default capabilities, less CAP_MKNOD (mybox
/// has no device cgroup to refuse what a node would lead to).
const KEPT: [caps::Capability; 13] = [
    caps::Capability::CAP_CHOWN,
    caps::Capability::CAP_DAC_OVERRIDE,
    caps::Capability::CAP_FOWNER,
    caps::Capability::CAP_FSETID,
    caps::Capability::CAP_KILL,
    caps::Capability::CAP_SETGID,
    caps::Capability::CAP_SETUID,
    caps::Capability::CAP_SETPCAP,
    caps::Capability::CAP_NET_BIND_SERVICE,
    caps::Capability::CAP_NET_RAW,
    caps::Capability::CAP_SYS_CHROOT,
    caps::Capability::CAP_SETFCAP,
    caps::Capability::CAP_AUDIT_WRITE,
];

/// Call exercise `id` in a throwaway child (see [`is_todo`]), on arguments
/// that cannot reach the host (`nowhere`: a path that does not exist, on a
/// tmpfs of the child's own; a hostname it must refuse), and see whether it
/// panics with todo!()'s "not yet implemented". Its answer does not matter
/// here, only whether it is still a stub.
fn call(id: &str, nowhere: &Path) -> Result<()> {
    let ip = Ipv4Addr::new(10, 200, 0, 2);
    match id {
        "1.2" => {
            let _ = under_test::ch01_clone::exit_code(WaitStatus::Exited(Pid::this(), 0));
        }
        "3.1" => under_test::ch03_mount::make_mounts_private()?,
        "3.2" => under_test::ch03_mount::mount_proc()?,
        "3.3" => under_test::ch03_mount::mount_tmpfs(nowhere, 1)?,
        "4.1" => under_test::ch04_rootfs::pivot_into(nowhere)?,
        "8.1" => {
            let lowers = [nowhere.to_path_buf()];
            under_test::ch08_overlay::mount_overlay(&lowers, nowhere, nowhere, nowhere)?
        }
        "5.1" => {
            let _ = under_test::ch05_uts::validate_hostname("mybox");
        }
        "5.2" => {
            let _ = under_test::ch05_uts::spawn_with_hostname("bad_name!", &[]);
        }
        "6.1" => {
            let _ = under_test::ch06_net::host_address(ip, 24);
        }
        "6.2" => under_test::ch06_net::configure_inside("nonexistent", ip, ip, 24)?,
        "7.1" => under_test::ch07_cgroups::write_cpu_limit(nowhere, 0.5, true)?,
        "7.2" => under_test::ch07_cgroups::limit_tasks(nowhere, 5, Pid::this())?,
        "10.1" => under_test::ch10_bridge::attach("nonexistent", "nonexistent")?,
        "10.2" => {
            let _ = under_test::ch10_bridge::claim_next(nowhere, bridge_subnet(), "")?;
        }
        // No such process (above pid_max): the kernel's answer is ENOENT.
        "11.1" => under_test::ch11_rootless::write_id_maps(Pid::from_raw(i32::MAX), 0, 0)?,
        // In the throwaway child: its capabilities, its mount namespace.
        "12.1" => under_test::ch12_hardened::drop_capabilities(&KEPT)?,
        "12.2" => under_test::ch12_hardened::mask_path(nowhere)?,
        other => bail!("no exercise {other} in mybox"),
    }
    Ok(())
}

fn is_todo(id: &str) -> Result<bool> {
    let all = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    // A normal user (--rootless) makes the others in a user namespace of its own.
    let all = if nix::unistd::geteuid().is_root() {
        all
    } else {
        all | CloneFlags::CLONE_NEWUSER
    };
    let seen = observe(all, || {
        ch03_mount::make_mounts_private()?; // so that nothing it mounts can reach the host
                                            // A new mount namespace does not stop writes to the host's disk: an
                                            // answer may create the directory it is given (3.3, 7.1, 7.2), so
                                            // every path it gets is on a tmpfs that ends with the child.
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(Some("tmpfs"), "/tmp", Some("tmpfs"), flags, Some("size=1m"))
            .context("mybox: a tmpfs on /tmp for the todo!() test")?;
        let _ = call(id, Path::new("/tmp/nonexistent-mybox"));
        std::process::exit(0)
    })?;
    Ok(seen.output.contains("not yet implemented"))
}

/// The exercises that are solved (not todo!()), by number.
#[derive(Debug, Clone)]
struct Solved(Vec<String>);

impl Solved {
    fn detect() -> Result<Solved> {
        let mut solved = Vec::new();
        for (id, _, _) in STEPS {
            if !is_todo(id)? {
                solved.push(id.to_string());
            }
        }
        Ok(Solved(solved))
    }

    fn has(&self, id: &str) -> bool {
        self.0.iter().any(|s| s == id)
    }

    fn from_list(list: &str) -> Solved {
        Solved(list.split(',').map(str::to_string).collect())
    }

    fn list(&self) -> String {
        self.0.join(",")
    }
}

/// What this run will do and leave out, given the solved exercises.
struct Plan {
    /// Steps that will run, and those left out, with why.
    lines: Vec<String>,
}

fn plan(o: &Options, s: &Solved) -> Plan {
    let mut lines = Vec::new();
    // A step runs when its exercise is solved and so are those it `needs`.
    let say = |lines: &mut Vec<String>, id: &str, needs: &[&str], done: &str, missing: &str| {
        let waits_for: Vec<&str> = needs.iter().copied().filter(|n| !s.has(n)).collect();
        lines.push(if !s.has(id) {
            format!("  todo!()   {id} {missing}")
        } else if waits_for.is_empty() {
            format!("  yours     {id} {done}")
        } else {
            let name = missing.split(':').next().unwrap_or(missing);
            format!(
                "  waiting   {id} {name}: yours, left out until {} is done",
                waits_for.join(" and ")
            )
        });
    };
    say(
        &mut lines,
        "3.1",
        &[],"make_mounts_private: the container's mounts stay its own",
        "make_mounts_private: no private mounts, so mybox mounts nothing (no pivot_root, no /proc, no /tmp)",
    );
    say(
        &mut lines,
        "4.1",
        &["3.1"],
        "pivot_into: / is the workshop rootfs",
        "pivot_into: no pivot_root, the container sees the host's files",
    );
    say(
        &mut lines,
        "8.1",
        &["3.1", "4.1"],
        "mount_overlay: / an overlay, the rootfs its read-only lower",
        "mount_overlay: no overlay, the container writes into the workshop rootfs itself",
    );
    say(
        &mut lines,
        "3.2",
        &["3.1"],
        "mount_proc: its own /proc, ps shows only its processes",
        "mount_proc: no /proc of its own, ps shows the host's processes",
    );
    say(
        &mut lines,
        "3.3",
        &["3.1"],
        "mount_tmpfs: a tmpfs of 64 MiB on /tmp",
        "mount_tmpfs: no tmpfs, /tmp is the rootfs's (or the host's)",
    );
    say(
        &mut lines,
        "5.1",
        &["5.2"],
        "validate_hostname: --hostname checked before anything starts",
        "validate_hostname: no hostname, the container has the host's",
    );
    say(
        &mut lines,
        "5.2",
        &["5.1"],
        "spawn_with_hostname: a UTS namespace with the hostname",
        "spawn_with_hostname: no UTS namespace, the container has the host's hostname",
    );
    if o.veth {
        say(
            &mut lines,
            "6.1",
            &["6.2"],
            "host_address: the host end's address",
            "host_address: no veth (the host end needs its address), lo only",
        );
        say(
            &mut lines,
            "6.2",
            &["6.1"],
            "configure_inside: eth0, its address and the default route",
            "configure_inside: no veth, lo only",
        );
    } else if o.bridge {
        say(
            &mut lines,
            "10.2",
            &["10.1", "6.2"],
            "claim_next: the next free address of the bridge's subnet",
            "claim_next: no bridge (the container needs its address), lo only",
        );
        say(
            &mut lines,
            "10.1",
            &["10.2", "6.2"],
            "attach: the veth's host end a port of mybox0",
            "attach: no bridge, lo only",
        );
        say(
            &mut lines,
            "6.2",
            &["10.1", "10.2"],
            "configure_inside: eth0, its address and the default route via the bridge",
            "configure_inside: no bridge, lo only",
        );
    } else {
        lines.push(
            "  (--network none: lo only; 6.1 and 6.2 wait for --network veth, 10.1 and 10.2 for --network bridge)"
                .into(),
        );
    }
    if o.cpus.is_some() {
        say(
            &mut lines,
            "7.1",
            &[],
            "write_cpu_limit: the --cpus limit",
            "write_cpu_limit: no CPU limit",
        );
    }
    if o.pids.is_some() {
        say(
            &mut lines,
            "7.2",
            &[],
            "limit_tasks: the --pids-limit, and the container in its cgroup",
            "limit_tasks: no pids limit",
        );
    }
    if o.rootless {
        say(
            &mut lines,
            "11.1",
            &[],
            "write_id_maps: your uid and gid are root in the container's user namespace",
            "write_id_maps: no user namespace, so no --rootless",
        );
        lines.push(
            "  (--rootless: no pivot_root, overlay, hostname, network or limits: 4.1, 8.1, 5.x, 6.x, 7.x, 10.x are left out)"
                .into(),
        );
    }
    if o.privileged {
        lines.push("  (--privileged: no hardening; 12.1 and 12.2 are left out)".into());
    } else {
        say(
            &mut lines,
            "12.2",
            &["3.1", "4.1", "3.2"],
            "mask_path: /proc/kcore, /proc/keys, /proc/timer_list... hidden",
            "mask_path: the container reads /proc/kcore, /proc/keys, /proc/timer_list",
        );
        say(
            &mut lines,
            "12.1",
            &[],
            "drop_capabilities: docker's capabilities, less CAP_MKNOD; no others, even after an exec",
            "drop_capabilities: the container's root has every capability of the host's",
        );
    }
    say(
        &mut lines,
        "1.2",
        &[],
        "exit_code: mybox exits with the container's code",
        "exit_code: mybox computes the exit code itself",
    );
    if o.rootless {
        // Steps --rootless leaves out, yours or not: the note above says why.
        let out = ["4.1", "8.1", "5.1", "5.2"];
        lines.retain(|l| !out.contains(&l.split_whitespace().nth(1).unwrap_or_default()));
    }
    Plan { lines }
}

pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{HELP}");
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("mybox: {e}");
            std::process::exit(2)
        }
    };
    let result = workshop::process::block_termination_signals().and_then(|()| run(options));
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            workshop::error::print(&e);
            let code = match e.downcast_ref::<workshop::Interrupted>() {
                Some(workshop::Interrupted(sig)) => 128 + *sig as i32,
                None => 1,
            };
            std::process::exit(code)
        }
    }
}

fn run(o: Options) -> Result<i32> {
    if let Some(list) = &o.stage2 {
        return container(&o, &Solved::from_list(list));
    }
    if !o.rootless && !nix::unistd::geteuid().is_root() {
        bail!(
            "mybox makes namespaces, mounts and cgroups: run it as root (sudo), or with --rootless"
        );
    }
    let solved = Solved::detect()?;
    eprintln!(
        "mybox: your container, from {}/src (yours = solved, todo!() = left out):",
        env!("CARGO_PKG_NAME")
    );
    for line in plan(&o, &solved).lines {
        eprintln!("{line}");
    }
    if o.rootless {
        if !solved.has("11.1") {
            bail!("--rootless needs exercise 11.1 (write_id_maps in exercises/src/ch11_rootless.rs): it is still todo!()");
        }
        return container(&o, &solved); // no 5.2: its UTS namespace needs root
    }
    let hostname = o.hostname.clone().unwrap_or_else(|| "mybox".into());
    if !(solved.has("5.1") && solved.has("5.2")) {
        return container(&o, &solved);
    }
    if let Err(why) = under_test::ch05_uts::validate_hostname(&hostname) {
        bail!("--hostname {hostname:?}: {why}");
    }
    // 5.2 starts mybox again, in the new UTS namespace it names: that
    // second half starts the container, which inherits the namespace.
    let exe = std::fs::read_link("/proc/self/exe").context("failed to read /proc/self/exe")?;
    let mut argv = vec![
        exe.to_string_lossy().into_owned(),
        "--stage2".into(),
        solved.list(),
    ];
    argv.extend(args_after_stage1());
    let second = under_test::ch05_uts::spawn_with_hostname(&hostname, &argv)?;
    // The second half cleans up after the container: on Ctrl-C, pass the
    // signal on and wait for it, rather than kill it.
    let status = wait_status(second, true)?;
    Ok(workshop::process::Exit::from_wait_status(status).map_or(1, |e| e.code()))
}

/// This run's own arguments (without a --stage2 it never has in stage 1).
fn args_after_stage1() -> Vec<String> {
    std::env::args().skip(1).collect()
}

/// The cgroup of the run, the veth's host end: removed when dropped.
struct Cleanup {
    cgroup: Option<ch07_cgroups::cgroup::Cgroup>,
    veth: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(host_end) = self.veth.take() {
            if let Ok(mut nl) = ch06_net::netlink::Netlink::open() {
                let _ = nl.delete_link(&host_end); // gone already if the container's netns went
            }
        }
        drop(self.cgroup.take()); // rmdir, retried while its last tasks leave
    }
}

/// The network plan: (host end, container end, host address, container address, prefix).
struct Veth {
    host_end: String,
    container_end: String,
    host: Ipv4Addr,
    container: Ipv4Addr,
    prefix: u8,
}

/// The second half: the container itself, and the host's side of it.
fn container(o: &Options, s: &Solved) -> Result<i32> {
    let mounts = s.has("3.1");
    let rootfs: Option<PathBuf> = if mounts && s.has("4.1") && !o.rootless {
        Some(workshop_rootfs::ensure_default(|what| {
            eprintln!("mybox: {what}")
        })?)
    } else {
        None
    };
    // 8.1: the rootfs becomes the overlay's one lower, under an upper of this
    // run's own (chapter 8's directories, removed when `layers` is dropped).
    let layers = match &rootfs {
        Some(root) if s.has("8.1") => {
            ch08_overlay::reclaim_stale()?; // what a killed run left
            Some(ch08_overlay::Layers::for_this_run(
                vec![root.clone()],
                false,
            )?)
        }
        _ => None,
    };
    let veth = if o.veth && s.has("6.1") && s.has("6.2") {
        let (container, prefix) = o.ip.unwrap_or((Ipv4Addr::new(10, 200, 0, 2), 24));
        let host = under_test::ch06_net::host_address(container, prefix)
            .map_err(|why| anyhow::anyhow!("--ip {container}/{prefix}: {why}"))?;
        let (host_end, container_end) = ch06_net::veth_names(std::process::id());
        Some(Veth {
            host_end,
            container_end,
            host,
            container,
            prefix,
        })
    } else {
        None
    };
    // --network bridge: the address is claimed (10.2) before the clone, the
    // lease held by this process until the container is gone.
    let mut on_bridge = None;
    let veth = match veth {
        None if o.bridge && s.has("10.1") && s.has("10.2") && s.has("6.2") => {
            let joined = BridgeLease::join()?;
            let (host_end, container_end) = ch06_net::veth_names(std::process::id());
            let v = Veth {
                host_end,
                container_end,
                host: bridge_gateway(),
                container: joined.address,
                prefix: bridge_subnet().prefix,
            };
            on_bridge = Some(joined);
            Some(v)
        }
        other => other,
    };
    let cpus = o.cpus.filter(|_| s.has("7.1"));
    let pids = o.pids.filter(|_| s.has("7.2"));

    let gate = Gate::new()?;
    let flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC;
    // --rootless: a user namespace too, which the kernel makes first and
    // which owns the others: in there, the student's uid is root.
    let flags = if o.rootless {
        flags | CloneFlags::CLONE_NEWUSER
    } else {
        flags
    };
    let child = clone_child(flags, || {
        gate.pass()?; // until its maps, its cgroup and its end of the veth are in place
        if o.rootless {
            // Mapped as 0 already; this makes the saved and filesystem ids 0 too.
            let (uid, gid) = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
            nix::unistd::setresgid(gid, gid, gid)
                .context("failed to setresgid(0, 0, 0) in the user namespace")?;
            nix::unistd::setresuid(uid, uid, uid)
                .context("failed to setresuid(0, 0, 0) in the user namespace")?;
        }
        match &veth {
            Some(v) => under_test::ch06_net::configure_inside(
                &v.container_end,
                v.host,
                v.container,
                v.prefix,
            )?,
            None => ch06_net::bring_up_loopback()?,
        }
        if mounts {
            under_test::ch03_mount::make_mounts_private()?;
            if let Some(rootfs) = &rootfs {
                let root = match &layers {
                    Some(l) => {
                        under_test::ch08_overlay::mount_overlay(
                            &l.lowers, &l.upper, &l.work, &l.merged,
                        )?;
                        &l.merged
                    }
                    None => rootfs,
                };
                ch04_rootfs::populate_dev(root)?; // the chapter's: /dev/null and friends
                under_test::ch04_rootfs::pivot_into(root)?;
            }
            if s.has("3.2") {
                under_test::ch03_mount::mount_proc()?;
            }
            if s.has("3.3") {
                under_test::ch03_mount::mount_tmpfs(Path::new("/tmp"), 64)?;
            }
        }
        // Hardening, last: masks are mounts, which need CAP_SYS_ADMIN, so
        // they come before the capabilities go; and only over the
        // container's own /proc (never the host's).
        let own_proc = mounts && (rootfs.is_some() || o.rootless) && s.has("3.2");
        if !o.privileged && own_proc && s.has("12.2") {
            for path in MASKED {
                under_test::ch12_hardened::mask_path(Path::new(path))?;
            }
        }
        if !o.privileged && s.has("12.1") {
            under_test::ch12_hardened::drop_capabilities(&KEPT)?;
        }
        workshop::process::exec(&o.command)
    })?;
    let mut gate = gate;
    let mut cleanup = Cleanup {
        cgroup: None,
        veth: None,
    };
    let host_side = if o.rootless {
        // 11.1: from outside, the maps of the child's user namespace.
        under_test::ch11_rootless::write_id_maps(
            child,
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        host_side(child, &veth, on_bridge.is_some(), cpus, pids, &mut cleanup)
    };
    if let Err(e) = host_side {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(e);
    }
    gate.open();
    let status = wait_status(child, false)?;
    drop(cleanup);
    drop(on_bridge); // the lease goes, and the bridge with the last one
    if s.has("1.2") {
        under_test::ch01_clone::exit_code(status)
            .with_context(|| format!("exercise 1.2 gave no exit code for {status:?}"))
    } else {
        Ok(workshop::process::Exit::from_wait_status(status).map_or(1, |e| e.code()))
    }
}

/// The host's side, while the container waits at its gate: its cgroup
/// with the limits, and the host end of its veth.
fn host_side(
    child: Pid,
    veth: &Option<Veth>,
    bridge: bool,
    cpus: Option<f64>,
    pids: Option<u64>,
    cleanup: &mut Cleanup,
) -> Result<()> {
    use ch07_cgroups::cgroup::{self, Cgroup, Limits, Version, CGROUP_PROCS, MAX_PIDS_LIMIT};
    if cpus.is_some() || pids.is_some() {
        // The directories are chapter 7's (beneath our own cgroup on v1,
        // /sys/fs/cgroup/workshop/PID on v2); the limits and the move
        // into them are yours. pids.max starts at the largest it takes.
        let limits = Limits {
            pids: pids.map(|_| MAX_PIDS_LIMIT),
            ..Limits::default()
        };
        let made = cleanup.cgroup.insert(Cgroup::create(&limits)?);
        let v2 = cgroup::detect()? == Version::V2;
        let mut attached = Vec::new();
        if let Some(max) = pids {
            let dir = made.dir("pids")?;
            under_test::ch07_cgroups::limit_tasks(dir, max, child)?;
            attached.push(dir.to_path_buf());
        }
        if let Some(cpus) = cpus {
            let dir = made.dir("cpu")?;
            under_test::ch07_cgroups::write_cpu_limit(dir, cpus, v2)?;
            if !attached.iter().any(|d| d == dir) {
                // v1 has a hierarchy per controller; or 7.2 is not done.
                let procs = dir.join(CGROUP_PROCS);
                std::fs::write(&procs, child.to_string())
                    .with_context(|| format!("failed to write to {}", procs.display()))?;
            }
        }
    }
    if let Some(v) = veth {
        let mut nl = ch06_net::netlink::Netlink::open()?;
        nl.add_veth(&v.host_end, &v.container_end)?;
        cleanup.veth = Some(v.host_end.clone());
        nl.move_to_namespace_of(&v.container_end, child.as_raw() as u32)?;
        if bridge {
            under_test::ch10_bridge::attach(&v.host_end, BRIDGE)?; // a port of mybox0, up
        } else {
            nl.add_address(&v.host_end, v.host, v.prefix)?;
            nl.set_up(&v.host_end)?;
        }
    }
    Ok(())
}

/// Wait for `pid` to end and return how, for 1.2. SIGINT, SIGTERM and
/// SIGHUP are blocked (they wait here): `forward` passes them on to
/// `pid` (the second half, which cleans up), otherwise `pid` (the
/// container) is killed and the run ends as interrupted.
fn wait_status(pid: Pid, forward: bool) -> Result<WaitStatus> {
    let mut waiting = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ] {
        waiting.add(sig);
    }
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return Ok(status),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to waitpid for {pid}")),
        }
        let sig = waiting.wait().context("failed to sigwait")?;
        if sig == Signal::SIGCHLD {
            continue;
        }
        if forward {
            let _ = kill(pid, sig);
        } else {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(workshop::Interrupted(sig).into());
        }
    }
}

/// `--network bridge`: mybox's own bridge (chapter 10's is wsbr0), its
/// subnet and gateway, and where its leases live (one directory per
/// network namespace, as each has a bridge of its own).
const BRIDGE: &str = "mybox0";
/// Leases under /run/mybox-bridge-net-INODE, one directory per network
/// namespace, with no shared parent that one namespace's last run would
/// remove while another's is making its directory in it.
const BRIDGE_STATE: &str = "/run/mybox-bridge-net-";

fn bridge_subnet() -> ch06_net::Subnet {
    ch06_net::Subnet::of(Ipv4Addr::new(10, 202, 0, 0), 24)
}

fn bridge_gateway() -> Ipv4Addr {
    bridge_subnet().first_host()
}

/// This network namespace's lease directory.
fn bridge_leases() -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata("/proc/self/ns/net")
        .context("failed to stat /proc/self/ns/net")?
        .ino();
    Ok(PathBuf::from(format!("{BRIDGE_STATE}{inode}")))
}

/// This run's place on the bridge: its address, claimed with 10.2, and the
/// lease file that holds it. Dropped: the lease goes, and the last one out
/// removes the bridge.
struct BridgeLease {
    address: Ipv4Addr,
    lease: PathBuf,
}

impl BridgeLease {
    /// Under chapter 6's lock: the bridge if it is not there yet, the
    /// leases of killed runs removed, then the next free address (10.2).
    fn join() -> Result<BridgeLease> {
        let _lock = ch06_net::lock_addresses()?;
        let dir = bridge_leases()?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to make {}", dir.display()))?;
        let mut nl = ch06_net::netlink::Netlink::open()?;
        if nl.link(BRIDGE)?.is_none() {
            nl.add_bridge(BRIDGE)?;
            let subnet = bridge_subnet();
            nl.add_address(BRIDGE, bridge_gateway(), subnet.prefix)?;
            nl.set_up(BRIDGE)?;
        }
        live_leases(&dir)?; // removes the dead ones
        let me = ch06_net::owner(std::process::id()).context("failed to read our start time")?;
        let address = under_test::ch10_bridge::claim_next(&dir, bridge_subnet(), &me)
            .context("exercise 10.2 (claim_next) claimed no address")?;
        Ok(BridgeLease {
            address,
            lease: dir.join(address.to_string()),
        })
    }
}

/// The leases in `dir` whose run still runs (the record is chapter 6's
/// owner line); the others are removed. Call it under chapter 6's lock.
fn live_leases(dir: &Path) -> Result<usize> {
    let mut live = 0;
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?
    {
        let path = entry?.path();
        let record = std::fs::read_to_string(&path).unwrap_or_default();
        let pid = record
            .strip_prefix("workshop run ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| ch06_net::owner(pid).as_deref() == Some(record.trim_end())) {
            live += 1;
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(live)
}

impl Drop for BridgeLease {
    fn drop(&mut self) {
        let Ok(_lock) = ch06_net::lock_addresses() else {
            return;
        };
        let _ = std::fs::remove_file(&self.lease);
        let Some(dir) = self.lease.parent() else {
            return;
        };
        if live_leases(dir).is_ok_and(|n| n == 0) {
            if let Ok(mut nl) = ch06_net::netlink::Netlink::open() {
                let _ = nl.delete_link(BRIDGE);
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}
