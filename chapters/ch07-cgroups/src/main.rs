//! Chapter 7: cgroup limits on CPU, processes and memory, on cgroup v2 and v1.
//!
//! `ch07-cgroups` runs the guided demo (a CPU burner under --cpus 0.2, a
//! bounded fork bomb under --pids-limit 20, an allocation past --memory 32M);
//! `ch07-cgroups --cpus 0.5 --memory 64M -- COMMAND` runs COMMAND so limited,
//! in a container with everything chapter 6's has: its veth (or, with
//! `--network none`, lo only), the same options.

use anyhow::{Context, Result};
use ch01_clone::{describe, Capture};
use ch04_rootfs::{enter_rootfs, RootfsOption};
use ch05_uts::{set_hostname, HostnameOption};
use ch06_net::netlink::Netlink;
use ch06_net::{bring_up_loopback, reclaim_stale as reclaim_stale_pairs, NetworkOptions, Wiring};
use ch07_cgroups::cgroup::{
    self, reclaim_stale, v1, v2, Cgroup, CpuQuota, Limits, MemoryLimit, Version,
};
use ch07_cgroups::{
    allocate, burn_cpu, errno_name, fork_bomb, start_limited, warn_if_oom_killed, Bomb,
    LimitOptions,
};
use clap::Parser;
use nix::sched::CloneFlags;
use std::convert::Infallible;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use workshop::cli::Mode;
use workshop::process::{exec, wait_for, Exit};
use workshop::{ChapterCli, Common, Narrator};

/// Chapter 7: cgroup limits on CPU, processes and memory, on cgroup v2 and v1.
#[derive(Parser)]
#[command(
    version,
    after_help = "Example: ch07-cgroups --cpus 0.2 --pids-limit 20 --memory 64M -- sh"
)]
struct Cli {
    #[command(flatten)]
    limits: LimitOptions,

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
/// Chapters 1 to 6: every namespace so far.
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
    workshop::main("ch07-cgroups", "to create namespaces and cgroups", run)
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    for stale in reclaim_stale()? {
        say.note(&format!(
            "removed {}, a cgroup left by a run that was killed",
            stale.display()
        ));
    }
    let root = cli.rootfs.resolve(|line| say.note(line))?;
    let mut nl = Netlink::open()?;
    for stale in reclaim_stale_pairs(&mut nl)? {
        say.note(&format!(
            "removed {stale}, the veth pair of a run that has ended"
        ));
    }
    match cli.common.mode() {
        Mode::Demo => demo(cli, &root, say).map(|()| 0),
        Mode::Run(argv) | Mode::Shell(argv) => {
            let limits = cli.limits.limits();
            let mut wiring = Wiring::new(&cli.network)?;
            let (cgroup, pid) = start_limited(FLAGS, &limits, || {
                wiring.inside()?; // chapter 6: lo up; with the veth, wait for it, then eth0
                set_hostname(&cli.hostname.name)?;
                enter_rootfs(&root)?;
                exec(&argv)
            })?;
            wiring.connect(&mut nl, pid)?; // chapter 6: a free subnet, claimed, and the cable
            say.container_started(pid);
            let exit = wait_for(pid)?;
            warn_if_oom_killed(cgroup.as_ref(), exit, cli.limits.memory.as_ref(), say);
            Ok(exit.code())
        }
    }
}

/// What a demo step saw: the cgroup (still there, for its counters), the
/// container's output and exit, and the wall time it ran.
struct Seen {
    cgroup: Cgroup,
    output: String,
    exit: Exit,
    wall: Duration,
}

/// Run `work` as the container's PID 1 under `limits`, capturing its output;
/// `meanwhile` runs on the host while it does.
fn observe_limited(
    limits: &Limits,
    meanwhile: impl FnOnce(),
    work: impl FnOnce() -> Result<Infallible>,
) -> Result<Seen> {
    let capture = Capture::new()?;
    let (cgroup, pid) = start_limited(FLAGS, limits, || {
        // The demo's workloads need no cable: lo only, as with --network none.
        bring_up_loopback()?;
        capture.redirect()?;
        work()
    })?;
    let start = Instant::now();
    meanwhile();
    let (output, exit) = capture.collect(pid)?;
    let cgroup = cgroup.context("each demo step sets a limit, so it has a cgroup")?;
    Ok(Seen {
        cgroup,
        output,
        exit,
        wall: start.elapsed(),
    })
}

fn demo(_cli: &Cli, root: &Path, say: &Narrator) -> Result<()> {
    say.title("Chapter 7 · cgroups: limits on CPU, processes and memory");
    let version = cgroup::detect()?;

    say.step("where cgroups live on this machine")?;
    say.shell(&format!(
        "stat -f -c %T {}; cat /proc/self/cgroup",
        cgroup::ROOT
    ));
    match version {
        Version::V2 => say.host("cgroup v2: one tree at /sys/fs/cgroup, every controller in it"),
        Version::V1 => say
            .host("cgroup v1: one hierarchy per controller, /sys/fs/cgroup/cpu, /pids, /memory..."),
    }
    say.note("A cgroup is a directory. Its files are the limits and the counters; the PIDs");
    say.note(&format!(
        "written into its {} are its members, and their children are born in it.",
        cgroup::CGROUP_PROCS
    ));

    let cpu = CpuQuota::percent(20);
    say.step(&format!("CPU: --cpus {cpu}, a busy loop for 3 seconds"))?;
    let seen = observe_limited(
        &Limits {
            cpu: Some(cpu),
            ..Limits::default()
        },
        || {},
        || {
            enter_rootfs(root)?;
            burn_cpu(Duration::from_secs(3));
            std::process::exit(0)
        },
    )?;
    let file = |name: &str| {
        seen.cgroup
            .file("cpu", name)
            .map(|p| p.display().to_string())
    };
    match version {
        Version::V2 => say.shell(&format!(
            "echo '{}' > {}",
            v2::cpu_max(cpu),
            file(v2::CPU_MAX)?
        )),
        Version::V1 => say.shell(&format!(
            "echo {} > {}; echo {} > {}",
            cpu.period_us(),
            file(v1::CPU_CFS_PERIOD_US)?,
            cpu.quota_us(),
            file(v1::CPU_CFS_QUOTA_US)?
        )),
    }
    let dir = seen.cgroup.dir("cpu")?.display().to_string();
    match version {
        Version::V2 => say.syscall(&format!(
            "clone3({{flags: {} | CLONE_INTO_CGROUP, exit_signal: SIGCHLD, cgroup: open(\"{dir}\")}})",
            FLAGS.iter_names().map(|(name, _)| name).collect::<Vec<_>>().join(" | ")
        )),
        Version::V1 => say.syscall(&format!(
            "clone(child, stack, {})\nthen, in the child: write(\"{dir}/{}\", \"0\"), one such write per hierarchy",
            describe(FLAGS),
            v1::TASKS
        )),
    }
    let used = seen.cgroup.cpu_usage()?;
    let share = used.as_secs_f64() / seen.wall.as_secs_f64();
    say.container("a busy loop that would use a whole CPU");
    say.host(&format!(
        "the cgroup's counter: {:.2} s of CPU in {:.2} s  →  {:.1}% of one CPU (limit {:.0}%)",
        used.as_secs_f64(),
        seen.wall.as_secs_f64(),
        share * 100.0,
        cpu.share() * 100.0
    ));
    say.note(&format!(
        "The scheduler lets the cgroup run {} ms in every {} ms period, then throttles it.",
        cpu.quota_us() as f64 / 1000.0,
        cpu.period_us() as f64 / 1000.0
    ));
    let mut made = seen.cgroup.paths();
    drop(seen); // each step's container gets a cgroup of its own, with its one limit

    let (pids, forks) = (20, 200);
    say.step(&format!(
        "pids: --pids-limit {pids}, a bomb of {forks} forks"
    ))?;
    let mut host_spawn = Duration::ZERO;
    let seen = observe_limited(
        &Limits {
            pids: Some(pids),
            ..Limits::default()
        },
        || {
            std::thread::sleep(Duration::from_millis(300));
            let start = Instant::now();
            let _ = std::process::Command::new("true").status();
            host_spawn = start.elapsed();
        },
        || {
            enter_rootfs(root)?;
            println!("{}", fork_bomb(forks, Duration::from_secs(1)));
            std::process::exit(0)
        },
    )?;
    say.shell(&format!(
        "echo {pids} > {}",
        seen.cgroup.file("pids", cgroup::PIDS_MAX)?.display()
    ));
    let (forked, refused, errno) = match seen.output.parse::<Bomb>() {
        Ok(bomb) => (
            bomb.forked.to_string(),
            bomb.refused.to_string(),
            bomb.first_refusal.map_or("None".into(), errno_name),
        ),
        Err(_) => ("?".into(), "?".into(), "?".into()), // it did not get to the end
    };
    say.container(&format!(
        "forked {forked} children, then {refused} forks failed with {errno}"
    ));
    say.note(&format!(
        "{} children + the bomb itself = {pids} tasks: {} counts every task in the cgroup.",
        pids - 1,
        cgroup::PIDS_MAX
    ));
    say.host(&format!(
        "meanwhile the host started /bin/true in {:.1} ms: it stays responsive",
        host_spawn.as_secs_f64() * 1e3
    ));
    made.extend(seen.cgroup.paths());
    drop(seen);

    let (memory, allocated_mib) = (MemoryLimit::mib(32), 100);
    say.step(&format!(
        "memory: --memory {memory}, then allocate {allocated_mib}M"
    ))?;
    let seen = observe_limited(
        &Limits {
            memory: Some(memory),
            ..Limits::default()
        },
        || {},
        || {
            enter_rootfs(root)?;
            let blocks = allocate(allocated_mib);
            println!("allocated {} MiB", blocks.len());
            std::process::exit(0)
        },
    )?;
    let memory_file = match version {
        Version::V2 => v2::MEMORY_MAX,
        Version::V1 => v1::MEMORY_LIMIT_IN_BYTES,
    };
    say.shell(&format!(
        "echo {memory} > {}",
        seen.cgroup.file("memory", memory_file)?.display()
    ));
    let kills = seen.cgroup.oom_kills()?;
    say.container(if seen.output.trim().is_empty() {
        "(nothing: it did not get to the end)"
    } else {
        seen.output.trim()
    });
    if seen.exit == Exit::Signal(nix::sys::signal::Signal::SIGKILL) && kills > 0 {
        say.ok(&format!(
            "{}: the OOM killer struck (oom_kill {kills} in the cgroup's counters)",
            seen.exit
        ));
    } else {
        say.warn(&format!(
            "the container ended with {} and oom_kill {kills}",
            seen.exit
        ));
    }

    say.step("the cgroups are gone with the containers")?;
    made.extend(seen.cgroup.paths());
    drop(seen);
    if made.iter().all(|p| !p.exists()) {
        say.ok("rmdir'd: no workshop cgroup is left");
    } else {
        say.warn("a workshop cgroup is still there");
    }

    say.finish(
        "Next, chapter 8: layers, what a container is made of (an overlay over a shared rootfs).",
    )
}
