//! The probe: runs the code under test (the student's exercises or the
//! solutions) outside the multithreaded test harness, where clone(), setns()
//! and mount namespaces behave, and reports what the kernel did as `key=value`
//! lines. The checks in mod.rs start it and assert on the report.
//!
//! Each scenario makes its own throwaway namespaces, so a wrong answer cannot
//! reach the host's mounts, hostname or network.

use anyhow::{bail, Context, Result};
use ch01_clone::{clone_child, count_processes, observe, Capture, Gate};
use ch02_namespaces::namespace_inode;
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use workshop::process::{argv, exec, wait_for};

pub fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    if let Err(e) = workshop::process::block_termination_signals().and_then(|()| run(&scenario)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(scenario: &str) -> Result<()> {
    match scenario {
        "ch01-pid1" => ch01_pid1(),
        "ch02-join" => ch02_join(),
        "ch03-private" => ch03_private(),
        "ch03-proc" => ch03_proc(),
        "ch03-tmpfs" => ch03_tmpfs(),
        "ch04-pivot" => ch04_pivot(),
        "ch04-breakout" => ch04_breakout(),
        "ch05-hostname" => ch05_hostname(),
        "ch06-inside" => ch06_inside(),
        "ch07-pids" => ch07_pids(),
        "ch07-events" => ch07_events(),
        other => bail!("unknown probe scenario {other:?}"),
    }
}

/// Print a child's captured report, or fail with what it said.
fn relay(seen: ch01_clone::Observed) -> Result<()> {
    print!("{}", seen.output);
    if seen.exit.code() != 0 {
        bail!("the code under test failed in the child ({})", seen.exit);
    }
    Ok(())
}

fn shared_mounts() -> Result<usize> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(mountinfo.lines().filter(|l| l.contains(" shared:")).count())
}

fn ch01_pid1() -> Result<()> {
    let pid = under_test::ch01_clone::spawn_as_pid_1(&argv(&[
        "sh",
        "-c",
        "echo inside=$$; exec grep NSpid /proc/self/status",
    ]))?;
    let exit = wait_for(pid)?;
    println!("host_pid={pid}");
    println!("exit={}", exit.code());
    let pid = under_test::ch01_clone::spawn_as_pid_1(&argv(&["sh", "-c", "exit 5"]))?;
    println!("exit_of_exit_5={}", wait_for(pid)?.code());
    Ok(())
}

fn ch02_join() -> Result<()> {
    // A container with its own UTS, IPC and network namespaces, named so that
    // we can tell its UTS namespace from the host's, waiting at a gate.
    let mut gate = Gate::new()?;
    let container = clone_child(
        CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNET,
        || {
            nix::unistd::sethostname("joined-by-setns")?;
            gate.pass()?;
            exec(&argv(&["true"]))
        },
    )?;
    std::thread::sleep(std::time::Duration::from_millis(20)); // let it name itself
    for kind in ["uts", "ipc", "net", "mnt"] {
        println!(
            "container_{kind}={}",
            namespace_inode(Some(container), kind)?
        );
    }
    // A fresh child joins with the code under test and reports where it is.
    let seen = observe(CloneFlags::empty(), || {
        under_test::ch02_namespaces::join(container, &["uts", "ipc", "net"])?;
        println!("hostname={}", nix::unistd::gethostname()?.to_string_lossy());
        for kind in ["uts", "ipc", "net", "mnt"] {
            println!("joined_{kind}={}", namespace_inode(None, kind)?);
        }
        std::process::exit(0)
    });
    gate.open();
    wait_for(container)?;
    relay(seen?)
}

fn ch03_private() -> Result<()> {
    relay(observe(CloneFlags::CLONE_NEWNS, || {
        // In this throwaway mount namespace, make everything shared, as
        // systemd does on the host, so that the exercise has work to do.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SHARED,
            None::<&str>,
        )
        .context("probe: failed to make / shared in its own namespace")?;
        println!("shared_before={}", shared_mounts()?);
        under_test::ch03_mount::make_mounts_private()?;
        println!("shared_after={}", shared_mounts()?);
        std::process::exit(0)
    })?)
}

fn ch03_proc() -> Result<()> {
    relay(observe(
        CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS,
        || {
            ch03_mount::make_mounts_private()?; // the chapter's own: this exercise is the next step
            under_test::ch03_mount::mount_proc()?;
            println!("processes={}", count_processes()?);
            println!("self={}", std::fs::read_link("/proc/self")?.display());
            std::process::exit(0)
        },
    )?)
}

fn ch03_tmpfs() -> Result<()> {
    let dir = PathBuf::from(format!("/tmp/workshop-probe-tmpfs-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let seen = observe(CloneFlags::CLONE_NEWNS, || {
        ch03_mount::make_mounts_private()?;
        under_test::ch03_mount::mount_tmpfs(&dir, 16)?;
        let fs = nix::sys::statfs::statfs(&dir)?;
        println!(
            "tmpfs={}",
            fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC
        );
        let vfs = nix::sys::statvfs::statvfs(&dir)?;
        println!(
            "size_mib={}",
            vfs.blocks() * vfs.fragment_size() / (1024 * 1024)
        );
        std::fs::write(dir.join("inside.txt"), "written in the container\n")?;
        std::process::exit(0)
    });
    let host_entries = std::fs::read_dir(&dir).map(|d| d.count());
    let _ = std::fs::remove_dir_all(&dir);
    relay(seen?)?;
    println!("host_entries={}", host_entries?);
    Ok(())
}

/// (device, inode): the identity of a directory, whatever path reaches it.
fn identity(path: &str) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).with_context(|| format!("failed to stat {path}"))?;
    Ok((meta.dev(), meta.ino()))
}

/// Every name in a directory, hidden ones too.
fn all_names(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

fn ch04_pivot() -> Result<()> {
    let rootfs = workshop_rootfs::ensure_default(|_| {})?;
    let expected = identity(rootfs.to_str().context("utf-8 path")?)?;
    println!(
        "rootfs_listing={}",
        ch04_rootfs::list_dir(&rootfs)?.join(" ")
    );
    relay(observe(
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID,
        || {
            ch03_mount::make_mounts_private()?;
            under_test::ch04_rootfs::pivot_into(&rootfs)?;
            println!("root_is_rootfs={}", identity("/")? == expected);
            println!(
                "listing={}",
                ch04_rootfs::list_dir(std::path::Path::new("/"))?.join(" ")
            );
            ch03_mount::mount_proc()?;
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
            println!("mounts={}", mountinfo.lines().count());
            std::process::exit(0)
        },
    )?)
}

fn ch04_breakout() -> Result<()> {
    let rootfs = workshop_rootfs::ensure_default(|_| {})?;
    let host_root = identity("/")?;
    let before = all_names(&rootfs)?;
    let seen = observe(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID, || {
        ch03_mount::make_mounts_private()?;
        ch04_rootfs::enter_with_chroot(&rootfs)?;
        println!("chrooted={}", identity("/")? != host_root);
        under_test::ch04_rootfs::break_out_of_chroot()?;
        println!("escaped={}", identity("/")? == host_root);
        std::process::exit(0)
    });
    let after = all_names(&rootfs)?;
    let left: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    relay(seen?)?;
    println!("left_in_rootfs={}", left.len());
    Ok(())
}

fn ch05_hostname() -> Result<()> {
    println!("host_before={}", ch05_uts::hostname()?);
    // The child prints its hostname on our stdout, as a line of its own.
    let pid = under_test::ch05_uts::spawn_with_hostname(
        "exercise-5-2",
        &argv(&["sh", "-c", "echo inside=$(hostname)"]),
    )?;
    println!("exit={}", wait_for(pid)?.code());
    println!("host_after={}", ch05_uts::hostname()?);
    let refused = under_test::ch05_uts::spawn_with_hostname("bad_name!", &argv(&["true"]));
    println!("bad_name_refused={}", refused.is_err());
    if let Ok(pid) = refused {
        let _ = wait_for(pid);
    }
    // Any child left to reap means something was started for the bad name.
    let spawned = nix::sys::wait::waitpid(
        None::<nix::unistd::Pid>,
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    )
    .is_ok();
    println!("bad_name_spawned={spawned}");
    Ok(())
}

/// Run in a network namespace of its own (the check starts the probe under
/// `unshare --net`): both veth ends live there.
fn ch06_inside() -> Result<()> {
    use std::net::Ipv4Addr;
    let (host, container) = (Ipv4Addr::new(10, 200, 0, 1), Ipv4Addr::new(10, 200, 0, 2));
    let mut nl = ch06_net::netlink::Netlink::open()?;
    nl.add_veth("wsh-probe", "wsc-probe")?;
    let mut gate = Gate::new()?;
    let output = Capture::new()?;
    let child = clone_child(CloneFlags::CLONE_NEWNET, || {
        output.redirect()?;
        gate.pass()?;
        under_test::ch06_net::configure_inside("wsc-probe", host, container, 24)?;
        let mut inside = ch06_net::netlink::Netlink::open()?;
        for link in inside.links()? {
            println!("link_{}={}", link.name, if link.up { "up" } else { "down" });
        }
        for a in inside.addresses()? {
            println!("address={}/{}", a.address, a.prefix);
        }
        for r in inside.routes()?.iter().filter(|r| r.prefix == 0) {
            println!(
                "default_via={}",
                r.gateway.map_or("none".to_string(), |g| g.to_string())
            );
        }
        exec(&argv(&[
            "sh",
            "-c",
            "ping -c1 -W2 10.200.0.1 >/dev/null 2>&1; echo ping=$?",
        ]))
    })?;
    nl.move_to_namespace_of("wsc-probe", child.as_raw() as u32)?;
    nl.add_address("wsh-probe", host, 24)?;
    nl.set_up("wsh-probe")?;
    gate.open();
    let (text, exit) = output.collect(child)?;
    print!("{text}");
    anyhow::ensure!(
        exit.code() == 0,
        "the code under test failed in the child ({exit})"
    );
    Ok(())
}

/// A real cgroup (the workshop's, beneath ours), a gated child of two
/// threads; the code under test sets pids.max to 5 and attaches the child,
/// which then tries 10 forks. Reported: the order in which the cgroup's files
/// were written (inotify), where each thread of the child landed, whether the
/// probe itself was moved (it moves back, so that the cgroup can go), and any
/// error of the code under test, as `limit_error` (the check explains it).
fn ch07_pids() -> Result<()> {
    use ch07_cgroups::cgroup::{dir_of, Cgroup, Limits, PIDS_MAX};
    let cgroup = Cgroup::create(&Limits {
        pids: Some(1000),
        ..Limits::default()
    })?;
    let dir = cgroup.dir("pids")?.to_path_buf();
    let home = dir_of(std::process::id(), "pids")?;
    let mut gate = Gate::new()?;
    let output = Capture::new()?;
    let child = clone_child(CloneFlags::CLONE_NEWPID, || {
        output.redirect()?;
        // A second thread, parked: `cgroup.procs` moves it with the process,
        // v1's `tasks` would leave it behind. It takes one of the 5 tasks.
        std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(30)));
        gate.pass()?;
        let bomb = ch07_cgroups::fork_bomb(10, std::time::Duration::from_millis(200));
        println!("bomb={bomb}");
        std::process::exit(0)
    })?;
    // Both threads up before the code under test runs.
    let tasks = PathBuf::from(format!("/proc/{child}/task"));
    for _ in 0..500 {
        if std::fs::read_dir(&tasks)?.count() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let writes = Writes::watch(&dir)?;
    // A panic too (a todo!(), or an answer that panics after attaching the
    // probe) comes back here first, so that the probe goes home before it.
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        under_test::ch07_cgroups::limit_tasks(&dir, 5, child)
    }));
    // The probe itself in the cgroup (its own PID written): back home, or
    // the cgroup could not be removed.
    let moved = dir_of(std::process::id(), "pids")? == dir;
    if moved {
        std::fs::write(home.join("cgroup.procs"), std::process::id().to_string())
            .context("failed to move the probe back to its own cgroup")?;
    }
    match answer {
        Ok(Ok(())) => {}
        Ok(Err(e)) => println!("limit_error={}", format!("{e:#}").replace('\n', " ")),
        Err(panic) => std::panic::resume_unwind(panic),
    }
    println!("writes={}", writes.seen()?.join(","));
    println!("probe_moved={moved}");
    let mut threads = Vec::new();
    for task in std::fs::read_dir(&tasks)? {
        let tid: u32 = task?.file_name().to_string_lossy().parse()?;
        threads.push(dir_of(tid, "pids")? == dir);
    }
    let inside = threads.iter().filter(|&&t| t).count();
    println!("threads_in_cgroup={inside}/{}", threads.len());
    println!(
        "in_cgroup={}",
        dir_of(child.as_raw() as u32, "pids")? == dir
    );
    println!(
        "pids_max={}",
        std::fs::read_to_string(dir.join(PIDS_MAX))?.trim()
    );
    gate.open();
    let (text, exit) = output.collect(child)?;
    print!("{text}");
    anyhow::ensure!(exit.code() == 0, "the child failed ({exit})");
    Ok(())
}

/// The names of the files written in a directory, in order, from inotify
/// (IN_MODIFY: a write(2) to a cgroup file is one event, named).
struct Writes(std::os::fd::OwnedFd);

impl Writes {
    fn watch(dir: &std::path::Path) -> Result<Writes> {
        use nix::libc;
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscalls; the fd is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        anyhow::ensure!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
        use std::os::fd::AsRawFd;
        // SAFETY: a valid fd and a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
        anyhow::ensure!(
            wd >= 0,
            "inotify_add_watch {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
        Ok(Writes(fd))
    }

    fn seen(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = match nix::unistd::read(&self.0, &mut buf) {
                Ok(n) => n,
                Err(nix::errno::Errno::EAGAIN) => return Ok(names),
                Err(e) => return Err(e).context("failed to read inotify events"),
            };
            // struct inotify_event { int wd; u32 mask, cookie, len; char name[len]; }
            let mut at = 0;
            while at + 16 <= n {
                let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into()?) as usize;
                let name = &buf[at + 16..(at + 16 + len).min(n)];
                let name = String::from_utf8_lossy(name)
                    .trim_end_matches('\0')
                    .to_string();
                names.push(name);
                at += 16 + len;
            }
        }
    }
}

/// A cgroup whose pids.max (3) the probe sets and attaches a gated child to,
/// which then tries 10 forks. The code under test reads the count of refused
/// forks before the bomb (`before`) and after it (`after`).
fn ch07_events() -> Result<()> {
    use ch07_cgroups::cgroup::{Cgroup, Limits, CGROUP_PROCS, PIDS_EVENTS};
    let cgroup = Cgroup::create(&Limits {
        pids: Some(3),
        ..Limits::default()
    })?;
    let dir = cgroup.dir("pids")?.to_path_buf();
    let mut gate = Gate::new()?;
    let output = Capture::new()?;
    let child = clone_child(CloneFlags::CLONE_NEWPID, || {
        output.redirect()?;
        gate.pass()?;
        let bomb = ch07_cgroups::fork_bomb(10, std::time::Duration::from_millis(200));
        println!("bomb={bomb}");
        std::process::exit(0)
    })?;
    std::fs::write(dir.join(CGROUP_PROCS), child.to_string())?;
    let before = under_test::ch07_cgroups::refused_forks(&dir);
    gate.open();
    let (text, exit) = output.collect(child)?;
    print!("{text}");
    anyhow::ensure!(exit.code() == 0, "the child failed ({exit})");
    let after = under_test::ch07_cgroups::refused_forks(&dir);
    let events = std::fs::read_to_string(dir.join(PIDS_EVENTS))?;
    println!("events={}", events.trim().replace('\n', "; "));
    for (key, answer) in [("before", before?), ("after", after?)] {
        println!("{key}={answer}");
    }
    Ok(())
}
