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
        "ch01-init" => ch01_init(),
        "ch02-join" => ch02_join(),
        "ch03-private" => ch03_private(),
        "ch03-proc" => ch03_proc(),
        "ch03-tmpfs" => ch03_tmpfs(),
        "ch03-ro-bind" => ch03_ro_bind(),
        "ch04-pivot" => ch04_pivot(),
        "ch04-breakout" => ch04_breakout(),
        "ch04-mask" => ch04_mask(),
        "ch05-hostname" => ch05_hostname(),
        "ch05-domainname" => ch05_domainname(),
        "ch06-inside" => ch06_inside([10, 200, 0, 1], [10, 200, 0, 2], 24),
        "ch06-inside-2" => ch06_inside([172, 31, 7, 1], [172, 31, 7, 6], 28),
        "ch06-route" => ch06_route(),
        "ch07-pids" => ch07_pids(),
        "ch07-events" => ch07_events(),
        "ch08-mount" => ch08_mount(),
        "ch08-diff" => ch08_diff(),
        "ch09-whiteouts" => ch09_whiteouts(),
        "ch10-attach" => ch10_attach(),
        "ch10-claim" => ch10_claim(),
        "ch11-maps" => ch11_maps(),
        "ch12-caps" => ch12_caps(),
        "ch12-mask" => ch12_mask(),
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

/// The key's value: the code under test's answer, or its error on one line.
fn answer<T: std::fmt::Display>(result: Result<T>) -> String {
    result.map_or_else(
        |e| format!("error: {e:#}").replace('\n', " "),
        |v| v.to_string(),
    )
}

/// This process's children (and the orphans handed to it as a subreaper), by
/// /proc/PID/stat: (pid, command name, state letter).
fn children_of_self() -> Vec<(i32, String, char)> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // 1234 (sleep) S 1 ...: the name may hold spaces, so split after ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if rest.next() == Some(me.as_str()) {
            out.push((pid, stat[open + 1..close].to_string(), state));
        }
    }
    out
}

/// End and reap the processes this probe started, or inherited as a
/// subreaper, that are still there: by PID, each one ours.
fn end_children() {
    for (pid, _, _) in children_of_self() {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::__WALL));
    }
}

fn ch01_pid1() -> Result<()> {
    // Orphans come to us, not to the host's init: what the code under test
    // leaves running is ours to see, and to end.
    nix::sys::prctl::set_child_subreaper(true).context("failed to become a subreaper")?;
    let result = ch01_pid1_calls();
    // What is still running once the container's PID 1 has ended: in a PID
    // namespace, nothing (the kernel kills the rest with PID 1).
    std::thread::sleep(std::time::Duration::from_millis(50));
    let left: Vec<String> = children_of_self().into_iter().map(|(_, c, _)| c).collect();
    println!("left_running={}", left.join(","));
    end_children();
    result
}

fn ch01_pid1_calls() -> Result<()> {
    use ch02_namespaces::namespace_inode as inode;
    let for_children = inode(None, "pid_for_children")?;
    let pid = under_test::ch01_clone::spawn_as_pid_1(&argv(&[
        "sh",
        "-c",
        "sleep 2.5 & echo inside=$$; exec grep NSpid /proc/self/status",
    ]))?;
    println!(
        "pid_for_children_kept={}",
        inode(None, "pid_for_children")? == for_children
    );
    println!("host_pid={pid}");
    println!("exit={}", answer(wait_for(pid).map(|e| e.code())));
    let exit_5 = spawn_then_wait(&["sh", "-c", "exit 5"]);
    println!("exit_of_exit_5={exit_5}");
    let missing = spawn_then_wait(&["/nonexistent/ex1-1"]);
    println!("exit_of_missing={missing}");
    Ok(())
}

/// The exit code of a command run by the code under test, or which of the two
/// failed: "returned an error: ..." (the code under test), "error: ..."
/// (the probe's waitpid).
fn spawn_then_wait(command: &[&str]) -> String {
    match under_test::ch01_clone::spawn_as_pid_1(&argv(command)) {
        Err(e) => format!("returned an error: {e:#}").replace('\n', " "),
        Ok(pid) => answer(wait_for(pid).map(|e| e.code())),
    }
}

/// Exercise 1.3: the code under test is PID 1 of a namespace with its own
/// /proc, and runs commands that leave orphans behind.
fn ch01_init() -> Result<()> {
    relay(observe(
        CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS,
        || {
            ch03_mount::make_mounts_private()?;
            ch03_mount::mount_proc()?;
            // Two orphans that end at once, one that outlives the command.
            let start = std::time::Instant::now();
            let code = under_test::ch01_clone::init(&argv(&[
                "sh",
                "-c",
                // The zombies while the command still runs, as the
                // namespace's /proc lists them: PID 1's to reap as they come.
                "(sleep 0.05 &); (sleep 0.05 &); (sleep 4 &); sleep 0.5; \
                 echo zombies_while_running=$(grep -l '^State:.Z' /proc/[0-9]*/status \
                 2>/dev/null | wc -l); exit 3",
            ]));
            println!("returned_after_ms={}", start.elapsed().as_millis());
            println!("exit={}", answer(code));
            let zombies: Vec<String> = children_of_self()
                .into_iter()
                .filter(|(_, _, state)| *state == 'Z')
                .map(|(pid, name, _)| format!("{pid}:{name}"))
                .collect();
            println!("zombies={}", zombies.join(","));
            let killed = under_test::ch01_clone::init(&argv(&["sh", "-c", "kill -TERM $$"]));
            println!("exit_of_kill_term={}", answer(killed));
            let missing = under_test::ch01_clone::init(&argv(&["/nonexistent/ex1-3"]));
            println!("exit_of_missing={}", answer(missing));
            // We exit: the kernel ends what is left (the sleep 4) with us.
            std::process::exit(0)
        },
    )?)
}

/// The inode of entry `kind` of a `/proc/PID/ns` directory opened earlier:
/// still this process's namespaces after setns() into another mount
/// namespace, whose /proc does not list us.
fn ns_at(dir: &std::fs::File, kind: &str) -> Result<u64> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let name = std::ffi::CString::new(kind)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid directory fd, a C string, and a stat buffer to fill.
    let rc = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context(format!("fstatat ns/{kind}"));
    }
    // SAFETY: fstatat succeeded, so it filled the buffer.
    Ok(unsafe { st.assume_init() }.st_ino)
}

/// The kinds each case of exercise 2.2 asks to join, as `CASE=kind,kind`.
const CH02_JOIN_CASES: [(&str, &[&str]); 3] = [
    ("a", &["uts", "net"]),
    ("b", &["ipc"]),
    ("c", &["mnt", "uts"]),
];

fn ch02_join() -> Result<()> {
    // A container with its own UTS, IPC, network, mount and PID namespaces
    // (and its own /proc), named so that we can tell its UTS namespace from
    // ours. Exec is its signal that all that is done.
    let gate = Gate::new()?;
    let container = clone_child(
        CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID,
        || {
            nix::unistd::sethostname("joined-by-setns")?;
            ch03_mount::make_mounts_private()?;
            ch03_mount::mount_proc()?;
            exec(&argv(&["sleep", "30"]))
        },
    )?;
    let result = gate.wait_until_exec().and_then(|()| ch02_joins(container));
    let _ = nix::sys::signal::kill(container, nix::sys::signal::Signal::SIGKILL);
    let _ = wait_for(container);
    result
}

fn ch02_joins(container: nix::unistd::Pid) -> Result<()> {
    let kinds = ["uts", "ipc", "net", "mnt"];
    for kind in kinds {
        println!(
            "container_{kind}={}",
            namespace_inode(Some(container), kind)?
        );
    }
    for (case, asked) in CH02_JOIN_CASES {
        println!("{case}_asked={}", asked.join(","));
        // A fresh child, in throwaway namespaces of its own (what a wrong
        // answer renames or mounts goes with them), joins with the code under
        // test and reports where it is.
        relay(observe(
            CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWNS,
            || {
                let ns = std::fs::File::open("/proc/self/ns")?;
                for kind in kinds {
                    println!("{case}_before_{kind}={}", ns_at(&ns, kind)?);
                }
                let joined = under_test::ch02_namespaces::join(container, asked);
                println!("{case}_join={}", answer(joined.map(|()| "ok")));
                println!(
                    "{case}_hostname={}",
                    nix::unistd::gethostname()?.to_string_lossy()
                );
                for kind in kinds {
                    println!("{case}_joined_{kind}={}", ns_at(&ns, kind)?);
                }
                std::process::exit(0)
            },
        )?)?;
    }
    Ok(())
}

/// One line of /proc/self/mountinfo, the fields chapters 3 and 4 look at.
struct Ch03Mount {
    id: String,
    /// The directory of its filesystem that is mounted (`/` for a whole one).
    root: String,
    point: String,
    /// The per-mount options: `rw,nosuid,...`.
    options: String,
    /// The optional fields: `shared:N`, `master:N`, `unbindable`, or none.
    propagation: String,
    fstype: String,
}

fn ch03_mounts() -> Result<Vec<Ch03Mount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .context("probe: failed to read /proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
            let (head, tail) = line.split_once(" - ")?;
            let f: Vec<&str> = head.split(' ').collect();
            Some(Ch03Mount {
                id: f.first()?.to_string(),
                root: f.get(3)?.replace("\\040", " "),
                point: f.get(4)?.replace("\\040", " "),
                options: f.get(5)?.to_string(),
                propagation: f.get(6..).unwrap_or_default().join(" "),
                fstype: tail.split(' ').next()?.to_string(),
            })
        })
        .collect())
}

/// The topmost mount at `point` (the one a path lookup reaches), if any.
fn ch03_mount_at(point: &str) -> Result<Option<Ch03Mount>> {
    Ok(ch03_mounts()?.into_iter().rev().find(|m| m.point == point))
}

/// What a write of a new file in `dir` gave: `ok` or the errno's name.
fn ch03_try_write(dir: &std::path::Path) -> String {
    match std::fs::write(dir.join("written-by-the-probe"), "x") {
        Ok(()) => "ok".into(),
        Err(e) => e.raw_os_error().map_or(e.to_string(), |n| {
            format!("{:?}", nix::errno::Errno::from_raw(n))
        }),
    }
}

fn ch03_private() -> Result<()> {
    relay(observe(CloneFlags::CLONE_NEWNS, || {
        let everything = |flags: MsFlags| {
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | flags,
                None::<&str>,
            )
        };
        // A stand-in for the host: this throwaway namespace, cut from the
        // real host first (private), then shared, as systemd does on most
        // hosts. Its mounts are where "the host's" new mounts will come from.
        everything(MsFlags::MS_PRIVATE).context("probe: failed to make its namespace private")?;
        everything(MsFlags::MS_SHARED).context("probe: failed to make its namespace shared")?;
        let host = std::fs::File::open("/proc/self/ns/mnt")?;
        // The container: a copy of it, whose mounts are peers of the host's.
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).context("probe: failed to unshare")?;
        let container = std::fs::File::open("/proc/self/ns/mnt")?;
        let before = ch03_mounts()?;
        println!("mounts_before={}", before.len());
        let shared = before.iter().filter(|m| m.propagation.contains("shared:"));
        println!("shared_before={}", shared.count());
        under_test::ch03_mount::make_mounts_private()?;
        let now = std::fs::metadata("/proc/self/ns/mnt")?.ino();
        println!(
            "caller_namespace_changed={}",
            now != container.metadata()?.ino()
        );
        // Private means no optional field at all: not `shared:N` (sends and
        // receives), not `master:N` (a slave: still receives the host's new
        // mounts), not `unbindable` (private, but refuses bind mounts).
        let after = ch03_mounts()?;
        println!("mounts_after={}", after.len());
        for m in after.iter().filter(|m| !m.propagation.is_empty()) {
            println!("not_private_{}={} is `{}`", m.id, m.point, m.propagation);
        }
        for kind in ["shared:", "master:", "unbindable"] {
            let n = after.iter().filter(|m| m.propagation.contains(kind));
            println!("{}_after={}", kind.trim_end_matches(':'), n.count());
        }
        // And what the kernel does with it: the stand-in host mounts a tmpfs
        // on its /tmp; does it arrive in the container?
        nix::sched::setns(&host, CloneFlags::CLONE_NEWNS).context("probe: setns host")?;
        mount(
            Some("tmpfs"),
            "/tmp",
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .context("probe: failed to mount a tmpfs in the stand-in host")?;
        nix::sched::setns(&container, CloneFlags::CLONE_NEWNS).context("probe: setns")?;
        println!(
            "received_from_host={}",
            ch03_mounts()?.len().saturating_sub(after.len())
        );
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
            // The mount the kernel reaches at /proc, as it lists it.
            match ch03_mount_at("/proc")? {
                Some(m) => {
                    println!("proc_fstype={}", m.fstype);
                    println!("proc_options={}", m.options);
                }
                None => println!("proc_fstype=none"),
            }
            std::process::exit(0)
        },
    )?)
}

/// Sizes the check asks for: the hint's 16 MiB, and two it never prints.
const CH03_TMPFS_SIZES: [u64; 3] = [16, 3, 129];

fn ch03_tmpfs() -> Result<()> {
    let dir = PathBuf::from(format!("/tmp/workshop-probe-tmpfs-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    for size in CH03_TMPFS_SIZES {
        std::fs::create_dir(dir.join(format!("{size}m")))?;
    }
    let seen = observe(CloneFlags::CLONE_NEWNS, || {
        ch03_mount::make_mounts_private()?;
        for size in CH03_TMPFS_SIZES {
            let at = dir.join(format!("{size}m"));
            under_test::ch03_mount::mount_tmpfs(&at, size)?;
            let point = at.to_string_lossy();
            let mount = ch03_mount_at(&point)?;
            println!(
                "fstype_{size}={}",
                mount.map_or("none".into(), |m| m.fstype)
            );
            let vfs = nix::sys::statvfs::statvfs(&at)?;
            println!("size_bytes_{size}={}", vfs.blocks() * vfs.fragment_size());
            std::fs::write(at.join("inside.txt"), "written in the container\n")?;
        }
        std::process::exit(0)
    });
    // From the host, every directory must still be empty: count what is there.
    let mut host_entries = Vec::new();
    for size in CH03_TMPFS_SIZES {
        for name in all_names(&dir.join(format!("{size}m"))).unwrap_or_default() {
            host_entries.push(format!("{size}m/{name}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    relay(seen?)?;
    println!("host_entries={}", host_entries.len());
    println!("host_entry_names={}", host_entries.join(" "));
    println!("left_behind={}", dir.exists());
    Ok(())
}

/// Exercise 3.4: a read-only bind mount. Everything happens on a tmpfs this
/// probe mounts in its own namespace, so that even an answer that makes a
/// whole filesystem read-only touches nothing of the host's.
fn ch03_ro_bind() -> Result<()> {
    let base = PathBuf::from(format!("/tmp/workshop-probe-robind-{}", std::process::id()));
    std::fs::create_dir(&base).with_context(|| format!("failed to create {}", base.display()))?;
    let seen = observe(CloneFlags::CLONE_NEWNS, || {
        ch03_mount::make_mounts_private()?;
        let base_str = base.to_str().context("utf-8 path")?;
        mount(
            Some("tmpfs"),
            base_str,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .context("probe: failed to mount its tmpfs")?;
        let (source, target) = (base.join("data"), base.join("view"));
        std::fs::create_dir(&source)?;
        std::fs::create_dir(&target)?;
        std::fs::write(source.join("file"), "the host's data\n")?;
        if let Err(e) = under_test::ch03_mount::bind_read_only(&source, &target) {
            // Reported, so that the check can name the idea behind the errno.
            println!("error={}", answer::<u8>(Err(e)));
            println!(
                "source_mounted={}",
                ch03_mount_at(&source.to_string_lossy())?.is_some()
            );
            std::process::exit(0)
        }
        let same = identity(source.to_str().context("utf-8")?)?
            == identity(target.to_str().context("utf-8")?)?;
        println!("same_directory={same}");
        println!(
            "target_reads={}",
            std::fs::read_to_string(target.join("file")).is_ok_and(|t| t == "the host's data\n")
        );
        match ch03_mount_at(&target.to_string_lossy())? {
            Some(m) => {
                println!("target_mounted=true");
                println!("target_options={}", m.options);
                println!("target_root={}", m.root);
            }
            None => println!("target_mounted=false"),
        }
        let flags = nix::sys::statvfs::statvfs(&target)?.flags();
        println!(
            "target_statvfs_rdonly={}",
            flags.contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
        );
        println!("target_write={}", ch03_try_write(&target));
        println!("source_write={}", ch03_try_write(&source));
        std::process::exit(0)
    });
    // The tmpfs lived in the child's namespace only: on the host the
    // directory is empty, and goes.
    let host_entries = all_names(&base).map(|n| n.len()).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&base);
    relay(seen?)?;
    println!("host_entries={host_entries}");
    println!("left_behind={}", base.exists());
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

/// What the code under test added to the rootfs (hidden names too), each
/// removed again if it is a directory, with what it holds: the next run, and
/// the student's rootfs, stay as they were. Only names that were not there
/// before, never the rootfs's own; anything else added is reported only.
fn ch04_tidy_rootfs(rootfs: &std::path::Path, before: &[String]) -> Result<Vec<String>> {
    let added: Vec<String> = all_names(rootfs)?
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    let device = std::fs::metadata(rootfs)?.dev();
    for name in &added {
        let _ = remove_tree(&rootfs.join(name), device);
    }
    Ok(added)
}

/// Remove a directory and what it holds, bottom up, on `device` only: no
/// symbolic link is followed (each entry is looked at with lstat) and no
/// other filesystem is entered (a mount point beneath it stays, and so does
/// the directory that holds it). Bounded: at most 10000 entries and depth 64.
fn remove_tree(dir: &std::path::Path, device: u64) -> Result<()> {
    fn walk(dir: &std::path::Path, device: u64, depth: u32, budget: &mut u32) -> Result<()> {
        let meta = std::fs::symlink_metadata(dir)?;
        anyhow::ensure!(meta.is_dir() && meta.dev() == device, "not ours to remove");
        anyhow::ensure!(depth < 64, "too deep");
        for entry in std::fs::read_dir(dir)? {
            *budget = budget.checked_sub(1).context("too many entries")?;
            let path = entry?.path();
            if std::fs::symlink_metadata(&path)?.is_dir() {
                walk(&path, device, depth + 1, budget)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(std::fs::remove_dir(dir)?)
    }
    walk(dir, device, 0, &mut 10_000)
}

fn ch04_pivot() -> Result<()> {
    let rootfs = workshop_rootfs::ensure_default(|_| {})?;
    let expected = identity(rootfs.to_str().context("utf-8 path")?)?;
    let host_root = identity("/")?;
    let host_cwd = identity(".")?;
    let before = all_names(&rootfs)?;
    println!("rootfs_listing={}", before.join(" "));
    let seen = observe(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID, || {
        ch03_mount::make_mounts_private()?;
        // Kept to enter the namespace again afterwards (see below).
        let ns = std::fs::File::open("/proc/self/ns/mnt")?;
        under_test::ch04_rootfs::pivot_into(&rootfs)?;
        println!("root_is_rootfs={}", identity("/")? == expected);
        // pivot_root moves the roots, not the working directory: before the
        // setns below resets it, where does "." lie? (The old root is
        // detached: no path leads there, but ".." from it still climbs.)
        println!("cwd_is_root={}", identity(".")? == identity("/")?);
        println!(
            "cwd={}",
            std::env::current_dir().map_or_else(
                |e| format!("unreachable from the new / (getcwd: {e})"),
                |d| d.display().to_string()
            )
        );
        println!(
            "cwd_in_host={}",
            identity(".").is_ok_and(|d| d == host_cwd)
                || identity("..").is_ok_and(|d| d == host_root)
        );
        println!(
            "listing={}",
            all_names(std::path::Path::new("/"))?.join(" ")
        );
        // chroot moves this process's "/"; pivot_root moves the mount
        // namespace's. Entering the namespace again (setns) sets our root to
        // the namespace's root, whatever chroot said: that is what every
        // process that joins this container (nsenter, docker exec) gets.
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNS)
            .context("probe: failed to enter its own mount namespace again")?;
        let ns_root = identity("/")?;
        println!("namespace_root_is_rootfs={}", ns_root == expected);
        println!("namespace_root_is_host={}", ns_root == host_root);
        if std::fs::metadata("/proc/self/mountinfo").is_err() {
            ch03_mount::mount_proc()?;
        }
        let mounts = ch03_mounts()?;
        println!("mounts={}", mounts.len());
        println!(
            "mounts_at_root={}",
            mounts.iter().filter(|m| m.point == "/").count()
        );
        let others: Vec<String> = mounts
            .iter()
            .filter(|m| m.point != "/" && m.point != "/proc")
            .map(|m| format!("{} ({})", m.point, m.fstype))
            .take(8)
            .collect();
        println!("other_mounts={}", others.join(", "));
        // The escape of exercise 4.2 (the chapter's own), run in the
        // container: after pivot_root and the detach, ".." from the rootfs
        // leads nowhere; with the host's root still mounted beneath it, it
        // leads there.
        ch04_rootfs::break_out_of_chroot()?;
        let after_escape = identity("/")?;
        println!("escape_stays_in_rootfs={}", after_escape == expected);
        println!("escape_reaches_host={}", after_escape == host_root);
        // Last, lift the rootfs off / (this namespace dies with us) and enter
        // the namespace again: what lay beneath it? After pivot_root and the
        // detach, nothing: the rootfs is the namespace's root.
        let lifted = nix::mount::umount2("/", nix::mount::MntFlags::MNT_DETACH);
        println!(
            "lifted={}",
            lifted.map_or_else(|e| format!("{e:?}"), |()| "ok".into())
        );
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNS)
            .context("probe: failed to enter its own mount namespace again")?;
        println!("beneath_is_host={}", identity("/")? == host_root);
        std::process::exit(0)
    });
    relay_and_tidy(&rootfs, &before, seen)
}

/// After a ch04 answer's child: tidy what it added to the rootfs, relay its
/// report, and report what was left (and whether it still is).
/// The end of a scenario whose files all lived on a tmpfs of the child's
/// own namespace, under `dir` on the host: relay what the child said, then
/// report what the host sees under `dir` (nothing, if the mount stayed in
/// the child's namespace) and whether the empty `dir` could go.
fn relay_and_report_leftovers(
    dir: &std::path::Path,
    seen: Result<ch01_clone::Observed>,
) -> Result<()> {
    let host_entries = all_names(dir).map(|n| n.len()).unwrap_or(0);
    let _ = std::fs::remove_dir(dir);
    relay(seen?)?;
    println!("host_entries={host_entries}");
    println!("left_behind={}", dir.exists());
    Ok(())
}

fn relay_and_tidy(
    rootfs: &std::path::Path,
    before: &[String],
    seen: Result<ch01_clone::Observed>,
) -> Result<()> {
    let left = ch04_tidy_rootfs(rootfs, before)?;
    relay(seen?)?;
    println!("left_in_rootfs={}", left.len());
    println!("left_names={}", left.join(" "));
    println!(
        "still_left_in_rootfs={}",
        ch04_tidy_rootfs(rootfs, before)?.len()
    );
    Ok(())
}

fn ch04_breakout() -> Result<()> {
    let rootfs = workshop_rootfs::ensure_default(|_| {})?;
    let host_root = identity("/")?;
    let before = all_names(&rootfs)?;
    let rootfs_id = identity(rootfs.to_str().context("utf-8 path")?)?;
    let seen = observe(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID, || {
        ch03_mount::make_mounts_private()?;
        ch04_rootfs::enter_with_chroot(&rootfs)?;
        println!("chrooted={}", identity("/")? != host_root);
        under_test::ch04_rootfs::break_out_of_chroot()?;
        let ended = identity("/")?;
        println!("escaped={}", ended == host_root);
        // Where a failed escape ended: still the rootfs, or a directory in it.
        println!("root_is_rootfs={}", ended == rootfs_id);
        std::process::exit(0)
    });
    relay_and_tidy(&rootfs, &before, seen)
}

/// The probe's own UTS namespace: the "host" that a wrong 5.x answer would
/// rename is this throwaway one, never the machine's. Named so that a change
/// shows, and reported as `NAME_before`.
fn ch05_own_uts(name: &str) -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWUTS)
        .context("probe: failed to make a UTS namespace of its own")?;
    nix::unistd::sethostname(name).context("probe: failed to name its own UTS namespace")?;
    Ok(())
}

fn uts_ns() -> Result<String> {
    Ok(std::fs::read_link("/proc/self/ns/uts")?
        .display()
        .to_string())
}

/// The domain name as uname(2) reports it, in this process's UTS namespace.
fn domainname() -> Result<String> {
    // SAFETY: uname fills a zeroed utsname; its fields are NUL-terminated.
    let mut uts: nix::libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { nix::libc::uname(&mut uts) } != 0 {
        return Err(std::io::Error::last_os_error()).context("uname");
    }
    let bytes: Vec<u8> = uts
        .domainname
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Exercise 4.3: mask /proc files, in a child with a proc of its own.
fn ch04_mask() -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    // Two files /proc has on most kernels, which runc masks: the check asks
    // for both, so an answer that masks one fixed path is seen.
    let candidates = [
        "/proc/kcore",
        "/proc/timer_list",
        "/proc/keys",
        "/proc/sched_debug",
    ];
    let paths: Vec<&str> = candidates
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .take(2)
        .collect();
    anyhow::ensure!(paths.len() == 2, "probe: /proc has none of {candidates:?}");
    let null = std::fs::metadata("/dev/null")?.rdev();
    let seen = observe(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID, || {
        ch03_mount::make_mounts_private()?;
        ch03_mount::mount_proc()?;
        for (i, path) in paths.iter().enumerate() {
            println!("path_{i}={path}");
            if let Err(e) = under_test::ch04_rootfs::mask_path(std::path::Path::new(path)) {
                // Reported, so that the check can name the idea behind the errno.
                println!("error={}", answer::<u8>(Err(e)));
                println!("is_file={}", std::fs::metadata(path)?.is_file());
                std::process::exit(0)
            }
            let meta = std::fs::metadata(path)?;
            let is_null = meta.file_type().is_char_device() && meta.rdev() == null;
            println!("is_dev_null_{i}={is_null}");
            println!(
                "kind_{i}={}",
                if meta.file_type().is_char_device() {
                    format!(
                        "character device {}:{}",
                        nix::sys::stat::major(meta.rdev()),
                        nix::sys::stat::minor(meta.rdev())
                    )
                } else if meta.is_file() {
                    "regular file".into()
                } else {
                    "directory".into()
                }
            );
            let mut buf = [0u8; 64];
            let read = std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read(&mut f, &mut buf))
                .map_or("error".to_string(), |n| n.to_string());
            println!("read_bytes_{i}={read}");
            println!("mounted_{i}={}", ch03_mount_at(path)?.is_some());
        }
        std::process::exit(0)
    });
    // The host's /proc must be as it was.
    for (i, path) in paths.iter().enumerate() {
        let meta = std::fs::metadata(path)?;
        println!(
            "host_masked_{i}={}",
            meta.file_type().is_char_device() && meta.rdev() == null
        );
    }
    relay(seen?)
}

fn ch05_hostname() -> Result<()> {
    ch05_own_uts("probe-host-5-2")?;
    println!("host_before={}", ch05_uts::hostname()?);
    println!("probe_uts_before={}", uts_ns()?);
    // The child prints its hostname and UTS namespace on our stdout.
    let pid = under_test::ch05_uts::spawn_with_hostname(
        "exercise-5-2",
        &argv(&[
            "sh",
            "-c",
            "echo inside=$(hostname); echo inside_uts=$(readlink /proc/self/ns/uts)",
        ]),
    )?;
    println!("exit={}", wait_for(pid)?.code());
    println!("host_after={}", ch05_uts::hostname()?);
    println!("probe_uts_after={}", uts_ns()?);
    let refused = under_test::ch05_uts::spawn_with_hostname("bad_name!", &argv(&["true"]));
    println!("bad_name_refused={}", refused.is_err());
    if let Ok(pid) = refused {
        println!("bad_name_spawned=true");
        println!("bad_name_exit={}", wait_for(pid)?.code());
        return Ok(());
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

/// 5.3: the code under test runs in a child with a UTS namespace of its own
/// (the container's), named `box-5-3`; the probe's own namespace is another,
/// so that a change outside the container shows as well.
fn ch05_domainname() -> Result<()> {
    ch05_own_uts("probe-host-5-3")?;
    println!("outer_domain_before={}", domainname()?);
    let long = format!("{}.{}", "a".repeat(31), "b".repeat(32)); // 64 bytes
    let seen = observe(CloneFlags::CLONE_NEWUTS, || {
        nix::unistd::sethostname("box-5-3")?;
        let ns = uts_ns()?;
        let first = under_test::ch05_uts::set_domainname("workshop.test");
        println!("set_ok={}", first.is_ok());
        if let Err(e) = &first {
            println!("set_error={e:#}");
        }
        println!("uts_moved={}", uts_ns()? != ns);
        println!("domain={}", domainname()?);
        println!("hostname={}", ch05_uts::hostname()?);
        let long_result = under_test::ch05_uts::set_domainname(&long);
        println!("long_ok={}", long_result.is_ok());
        if let Err(e) = &long_result {
            println!("long_error={e:#}");
        }
        println!("long_domain={}", domainname()?);
        for (key, bad) in [("too_long", "c".repeat(65)), ("empty", String::new())] {
            let before = domainname()?;
            let verdict = under_test::ch05_uts::set_domainname(&bad);
            println!("{key}_refused={}", verdict.is_err());
            println!("{key}_changed={}", domainname()? != before);
            println!("{key}_domain_after={}", domainname()?);
        }
        std::process::exit(0)
    });
    let seen = seen?;
    println!("outer_domain_after={}", domainname()?);
    println!("outer_hostname_after={}", ch05_uts::hostname()?);
    relay(seen)
}

/// The ICMP echo requests this network namespace has received (`Icmp:
/// InEchos` of /proc/net/snmp, which is per namespace).
fn echo_requests_received() -> Result<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp")?;
    let mut icmp = snmp.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (icmp.next(), icmp.next());
    let (Some(names), Some(values)) = (names, values) else {
        bail!("no Icmp lines in /proc/net/snmp");
    };
    let at = names
        .split_whitespace()
        .position(|n| n == "InEchos")
        .context("no InEchos in /proc/net/snmp")?;
    Ok(values
        .split_whitespace()
        .nth(at)
        .context("InEchos")?
        .parse()?)
}

/// The name of the link the kernel routes `dest` out of, or `err`.
fn kernel_link_towards(nl: &mut ch06_net::netlink::Netlink, dest: std::net::Ipv4Addr) -> String {
    let Ok(Some(index)) = nl.route_to(dest) else {
        return "err".to_string();
    };
    nl.links()
        .ok()
        .and_then(|links| links.into_iter().find(|l| l.index == index))
        .map_or_else(|| format!("index-{index}"), |l| l.name)
}

/// Run in a network namespace of its own (the check starts the probe under
/// `unshare --net`): both veth ends live there. Two sets of addresses (the
/// chapter's, and another), so that an answer that ignores its arguments
/// shows.
fn ch06_inside(host: [u8; 4], container: [u8; 4], prefix: u8) -> Result<()> {
    use std::net::Ipv4Addr;
    let (host, container) = (Ipv4Addr::from(host), Ipv4Addr::from(container));
    let mut nl = ch06_net::netlink::Netlink::open()?;
    nl.add_veth("wsh-probe", "wsc-probe")?;
    let mut gate = Gate::new()?;
    let output = Capture::new()?;
    let child = clone_child(CloneFlags::CLONE_NEWNET, || {
        output.redirect()?;
        gate.pass()?;
        if let Err(e) = under_test::ch06_net::configure_inside("wsc-probe", host, container, prefix)
        {
            // Reported, for the check to explain; the child's state as well.
            println!("configure_error={}", format!("{e:#}").replace('\n', " "));
        }
        let mut inside = ch06_net::netlink::Netlink::open()?;
        let links = inside.links()?;
        for link in &links {
            println!("link_{}={}", link.name, if link.up { "up" } else { "down" });
        }
        let name_of = |index: u32| {
            links
                .iter()
                .find(|l| l.index == index)
                .map_or("?", |l| l.name.as_str())
        };
        let addresses: Vec<String> = inside
            .addresses()?
            .iter()
            .map(|a| format!("{}:{}/{}", name_of(a.index), a.address, a.prefix))
            .collect();
        println!("addresses={}", addresses.join(" "));
        for r in inside.routes()?.iter().filter(|r| r.prefix == 0) {
            println!(
                "default_via={}",
                r.gateway.map_or("none".to_string(), |g| g.to_string())
            );
        }
        // Where a packet beyond the subnet would leave (a lookup: none is sent).
        println!(
            "default_dev={}",
            kernel_link_towards(&mut inside, Ipv4Addr::new(192, 0, 2, 7))
        );
        exec(&argv(&[
            "sh",
            "-c",
            &format!(
                "ping -c1 -W2 {host} >/dev/null 2>&1; echo ping=$?; \
                 ping -c1 -W2 127.0.0.1 >/dev/null 2>&1; echo ping_lo=$?"
            ),
        ]))
    })?;
    nl.move_to_namespace_of("wsc-probe", child.as_raw() as u32)?;
    nl.add_address("wsh-probe", host, prefix)?;
    nl.set_up("wsh-probe")?;
    let echos_before = echo_requests_received()?;
    gate.open();
    let (text, exit) = output.collect(child)?;
    print!("{text}");
    // Only a ping that crossed the veth reaches this namespace.
    println!(
        "host_echo_requests={}",
        echo_requests_received()? - echos_before
    );
    anyhow::ensure!(
        exit.code() == 0,
        "the code under test failed in the child ({exit})"
    );
    Ok(())
}

/// 6.3, in a network namespace of its own: two links up with a subnet each,
/// a default route, and a hole in the link indexes (a pair made and
/// deleted first). Each destination is asked of the code under test and of
/// the kernel (`ip route get`); then again in a namespace with only `lo`.
fn ch06_route() -> Result<()> {
    use std::net::Ipv4Addr;
    let mut nl = ch06_net::netlink::Netlink::open()?;
    nl.add_veth("wsx-gone", "wsx-gone2")?;
    nl.delete_link("wsx-gone")?;
    nl.add_veth("wsh-probe", "wsc-probe")?;
    nl.set_up("lo")?;
    nl.add_address("wsh-probe", Ipv4Addr::new(10, 200, 0, 1), 24)?;
    nl.add_address("wsc-probe", Ipv4Addr::new(10, 201, 0, 1), 24)?;
    nl.set_up("wsh-probe")?;
    nl.set_up("wsc-probe")?;
    nl.add_default_route(Ipv4Addr::new(10, 200, 0, 2))?;
    let links: Vec<String> = nl
        .links()?
        .iter()
        .map(|l| format!("{}:{}", l.name, l.index))
        .collect();
    println!("links={}", links.join(" "));
    let ask = |nl: &mut ch06_net::netlink::Netlink, dest: Ipv4Addr| {
        let answer = under_test::ch06_net::link_towards(dest)
            .unwrap_or_else(|e| format!("err ({e:#})").replace('\n', " "));
        println!("answer_{dest}={answer}");
        println!("kernel_{dest}={}", kernel_link_towards(nl, dest));
    };
    for dest in [
        "10.200.0.9",
        "10.201.0.9",
        "10.200.0.1",
        "127.0.0.1",
        "192.0.2.7",
    ] {
        ask(&mut nl, dest.parse()?);
    }
    relay(observe(CloneFlags::CLONE_NEWNET, || {
        let mut alone = ch06_net::netlink::Netlink::open()?;
        alone.set_up("lo")?;
        println!("alone=true");
        for dest in ["127.0.0.1", "192.0.2.8"] {
            ask(&mut alone, dest.parse()?);
        }
        std::process::exit(0)
    })?)
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
    // Cgroups the answer made inside `dir` (it should write into `dir`
    // itself): their processes back to `dir`, then removed, deepest first,
    // before `cgroup` is dropped, or they would stay on the host.
    let made = remove_subcgroups(&dir);
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
    println!("subcgroups={}", made?.join(","));
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

/// Remove the cgroups made inside `dir`, deepest first, after moving their
/// processes to `dir`; their paths relative to `dir`, as found.
fn remove_subcgroups(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at)? {
            let path = entry?.path();
            if path.is_dir() {
                found.push(path.clone());
                todo.push(path);
            }
        }
    }
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for sub in &found {
        let procs = std::fs::read_to_string(sub.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            let _ = std::fs::write(dir.join("cgroup.procs"), pid);
        }
        std::fs::remove_dir(sub).with_context(|| format!("failed to remove {}", sub.display()))?;
    }
    Ok(found
        .iter()
        .rev()
        .map(|p| p.strip_prefix(dir).unwrap_or(p).display().to_string())
        .collect())
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
    // pids.current beside each call, for the check to recognise it.
    let current = || -> Result<String> {
        Ok(std::fs::read_to_string(dir.join("pids.current"))?
            .trim()
            .to_string())
    };
    println!("current_before={}", current()?);
    let before = under_test::ch07_cgroups::refused_forks(&dir);
    gate.open();
    let (text, exit) = output.collect(child)?;
    print!("{text}");
    anyhow::ensure!(exit.code() == 0, "the child failed ({exit})");
    println!("current_after={}", current()?);
    let after = under_test::ch07_cgroups::refused_forks(&dir);
    let events = std::fs::read_to_string(dir.join(PIDS_EVENTS))?;
    println!("events={}", events.trim().replace('\n', "; "));
    for (key, result) in [("before", before), ("after", after)] {
        println!("{key}={}", answer(result));
    }
    Ok(())
}

/// A scratch directory for chapter 8 on the host, empty: the probe mounts a
/// tmpfs on it in a namespace of its own, and lays its layers there.
fn ch08_scratch(what: &str) -> Result<PathBuf> {
    let dir = PathBuf::from(format!("/tmp/workshop-probe-{what}-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    Ok(dir)
}

/// In a fresh mount namespace: cut it from the real host (private), then a
/// tmpfs of the probe's own on `dir` (chapter 8's layers; chapter 12's tree
/// to mask).
fn own_private_tmpfs(dir: &std::path::Path) -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("probe: failed to make its namespace private")?;
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=8m"),
    )
    .context("probe: failed to mount its tmpfs")
}

/// Write `text` to `dir/rel`, making the directories on the way.
fn ch08_write(dir: &std::path::Path, rel: &str, text: &str) -> Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, text)
        .with_context(|| format!("probe: failed to write {}", path.display()))
}

/// What is at `path`, not following a link: `missing`, `whiteout` (a 0/0
/// character device), `file`, `dir`, `symlink` or `other`.
fn ch08_kind(path: &std::path::Path) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(_) => "missing",
        Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => "whiteout",
        Ok(m) if m.is_file() => "file",
        Ok(m) if m.is_dir() => "dir",
        Ok(m) if m.file_type().is_symlink() => "symlink",
        Ok(_) => "other",
    }
}

/// The topmost mount at `point`: its filesystem type and its superblock's
/// options (`rw,lowerdir=...,upperdir=...`), as /proc/self/mountinfo has them.
fn ch08_mount_at(point: &std::path::Path) -> Result<Option<(String, String)>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .context("probe: failed to read /proc/self/mountinfo")?;
    let point = point.to_string_lossy();
    Ok(text
        .lines()
        .rev()
        .filter_map(|line| line.split_once(" - "))
        .find(|(head, _)| head.split(' ').nth(4) == Some(&*point))
        .map(|(_, tail)| {
            // overlay overlay rw,lowerdir=...
            let f: Vec<&str> = tail.split(' ').collect();
            (
                f.first().unwrap_or(&"").to_string(),
                f.get(2).unwrap_or(&"").to_string(),
            )
        }))
}

/// What an I/O call gave: `ok` or the errno's name.
fn ch08_io(result: std::io::Result<()>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(e) => e.raw_os_error().map_or(e.to_string(), |n| {
            format!("{:?}", nix::errno::Errno::from_raw(n))
        }),
    }
}

/// Exercise 8.1: three lowers, an upper, a work directory and a mount point
/// on the probe's own tmpfs, in a stand-in host (a throwaway namespace, made
/// shared as systemd makes hosts); the code under test runs in a copy of it,
/// and the probe reads what the kernel made, then looks from the stand-in host.
fn ch08_mount() -> Result<()> {
    let dir = ch08_scratch("overlay")?;
    let seen = observe(CloneFlags::CLONE_NEWNS, || {
        own_private_tmpfs(&dir)?;
        let lowers: Vec<PathBuf> = ["layer-top", "layer-mid", "layer-base"]
            .iter()
            .map(|n| dir.join(n))
            .collect();
        for lower in &lowers {
            let name = lower.file_name().unwrap_or_default().to_string_lossy();
            ch08_write(lower, "layer", &name)?;
        }
        ch08_write(&lowers[1], "mid-and-base", "mid")?;
        ch08_write(&lowers[2], "mid-and-base", "base")?;
        ch08_write(&lowers[2], "etc/base-file", "base\n")?;
        ch08_write(&lowers[2], "to-delete", "delete me\n")?;
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir(d)?;
        }
        // The stand-in host shares its mounts, and the container's
        // namespace is a copy of it whose mounts are still peers of its own.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SHARED,
            None::<&str>,
        )
        .context("probe: failed to make the stand-in host shared")?;
        let host = std::fs::File::open("/proc/self/ns/mnt")?;
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).context("probe: failed to unshare")?;
        let shown: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
        println!("lowers={}", shown.join(":"));
        println!("upper={}", upper.display());
        println!("work={}", work.display());
        let base_file = lowers[2].join("etc/base-file");
        let inode = std::fs::metadata(&base_file)?.ino();

        let done = under_test::ch08_overlay::mount_overlay(&lowers, &upper, &work, &merged);
        let names = |d: &std::path::Path| all_names(d).unwrap_or_default().join(",");
        if let Err(e) = done {
            println!("error={}", answer::<u8>(Err(e)));
            println!("upper_names={}", names(&upper));
            std::process::exit(0)
        }
        match ch08_mount_at(&merged)? {
            Some((fstype, options)) => {
                println!("merged_fstype={fstype}");
                println!("merged_options={options}");
            }
            None => println!("merged_fstype=none"),
        }
        let read = |rel: &str| {
            std::fs::read_to_string(merged.join(rel)).unwrap_or_else(|_| "missing".into())
        };
        println!("read_layer={}", read("layer"));
        println!("read_mid_and_base={}", read("mid-and-base"));
        // The first write to a lower's file: copied up, changed there.
        let wrote = std::fs::OpenOptions::new()
            .append(true)
            .open(merged.join("etc/base-file"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"written\n"));
        println!("write={}", ch08_io(wrote));
        let in_upper = upper.join("etc/base-file");
        println!("upper_copy_kind={}", ch08_kind(&in_upper));
        println!(
            "upper_copy={:?}",
            std::fs::read_to_string(&in_upper).unwrap_or_default()
        );
        println!(
            "lower_after={:?}",
            std::fs::read_to_string(&base_file).unwrap_or_default()
        );
        println!(
            "lower_inode_same={}",
            std::fs::metadata(&base_file).is_ok_and(|m| m.ino() == inode)
        );
        let deleted = std::fs::remove_file(merged.join("to-delete"));
        println!("delete={}", ch08_io(deleted));
        println!("upper_deleted_kind={}", ch08_kind(&upper.join("to-delete")));
        println!(
            "lower_deleted_kind={}",
            ch08_kind(&lowers[2].join("to-delete"))
        );
        println!("upper_names={}", names(&upper));
        println!("work_names={}", names(&work));
        // And from the stand-in host: is anything mounted on merged there?
        nix::sched::setns(&host, CloneFlags::CLONE_NEWNS).context("probe: setns host")?;
        println!(
            "host_sees={}",
            ch08_mount_at(&merged)?.map_or("nothing".into(), |(fstype, _)| fstype)
        );
        std::process::exit(0)
    });
    // Every layer lived on the tmpfs of the child's namespaces: on the host
    // the directory is empty, and goes.
    relay_and_report_leftovers(&dir, seen)
}

/// Exercise 8.2: an upper the kernel wrote. Two lowers (the top one whites
/// out a name of the base, as an image layer does), an overlay over them on
/// the probe's tmpfs, and through it: a copy-up, new files, deletions, a
/// directory removed and made again (opaque), a symbolic link. Then the
/// code under test reads the upper.
fn ch08_diff() -> Result<()> {
    let dir = ch08_scratch("diff")?;
    let seen = observe(CloneFlags::CLONE_NEWNS, || {
        own_private_tmpfs(&dir)?;
        let (top, base) = (dir.join("top"), dir.join("base"));
        for (rel, text) in [
            ("bin/sh", "sh"),
            ("etc/hosts", "127.0.0.1 localhost\n"),
            ("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
            ("home/user/notes", "notes\n"),
            ("old-file", "old\n"),
            ("gone-in-top", "whited out by the top layer\n"),
            ("var/log/app.log", "app\n"),
            ("var/log/old.log", "old\n"),
            ("var/log/archive/2024.log", "2024\n"),
        ] {
            ch08_write(&base, rel, text)?;
        }
        ch08_write(&top, "etc/motd", "hello\n")?;
        ch08_write(&top, "top-file", "top\n")?;
        nix::sys::stat::mknod(
            &top.join("gone-in-top"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .context("probe: failed to make a whiteout in the top layer")?;
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir(d)?;
        }
        let lowers = vec![top.clone(), base.clone()];
        let options = ch08_overlay::overlay_options(&lowers, &upper, &work)?;
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .with_context(|| format!("probe: failed to mount overlay ({options})"))?;
        let m = |rel: &str| merged.join(rel);
        let append = |rel: &str| -> Result<()> {
            let mut f = std::fs::OpenOptions::new().append(true).open(m(rel))?;
            std::io::Write::write_all(&mut f, b"# changed\n")?;
            Ok(())
        };
        append("etc/hosts")?; // copied up: C, and C for /etc
        append("top-file")?;
        std::fs::remove_file(m("old-file"))?; // a whiteout
        std::fs::remove_file(m("home/user/notes"))?;
        std::fs::write(m("gone-in-top"), "back\n")?; // hidden below: new
        std::fs::create_dir(m("new-dir"))?;
        std::fs::write(m("new-dir/inner.txt"), "inner\n")?;
        std::os::unix::fs::symlink("etc", m("link-to-etc"))?;
        std::fs::remove_dir_all(m("var/log"))?; // removed and made again: opaque
        std::fs::create_dir(m("var/log"))?;
        std::fs::write(m("var/log/app.log"), "a new log\n")?;
        std::fs::write(m("var/log/new.log"), "new\n")?;
        nix::mount::umount(&merged).context("probe: failed to unmount the overlay")?;
        println!("whiteout_made={}", ch08_kind(&upper.join("old-file")));
        println!(
            "opaque_made={}",
            ch08_overlay::is_opaque(&upper.join("var/log"))
        );
        match under_test::ch08_overlay::diff(&upper, &lowers) {
            Ok(lines) => {
                println!("lines={}", lines.len());
                for (i, line) in lines.iter().enumerate() {
                    println!("line_{i}={line}");
                }
            }
            Err(e) => println!("error={}", answer::<u8>(Err(e))),
        }
        std::process::exit(0)
    });
    relay_and_report_leftovers(&dir, seen)
}

/// The entries of exercise 9.1's layer tar, in the order the probe gives
/// them: whiteouts at the top and deep down, two opaque markers, and
/// ordinary names (two only look like whiteouts).
const CH09_ENTRIES: [&str; 8] = [
    "etc/.wh.passwd",
    ".wh.old-file",
    "usr/share/doc/.wh.README",
    "etc/.wh..wh..opq",
    "var/cache/.wh..wh..opq",
    "etc/hosts",
    "notes/my.wh.file",
    "bin/wh.sh",
];

/// The paths of the layer the check asks about, after every entry.
const CH09_PATHS: [&str; 15] = [
    "etc/passwd",
    "etc/.wh.passwd",
    "old-file",
    ".wh.old-file",
    "usr/share/doc/README",
    "usr/share/doc/.wh.README",
    "etc/.wh..opq",
    "etc/.wh..wh..opq",
    "etc/keep",
    "var/cache",
    "var/cache/.wh..opq",
    "var/cache/.wh..wh..opq",
    "etc/hosts",
    "notes",
    "bin",
];

/// The value of xattr `name` of `path` (not following a link), or `none`.
fn xattr_of(path: &std::path::Path, name: &str) -> String {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(path.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return "none".into();
    };
    let mut value = [0u8; 64];
    // SAFETY: NUL-terminated strings alive for the call; the kernel writes
    // at most value.len() bytes into value.
    let len = unsafe {
        nix::libc::lgetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if len < 0 {
        return "none".into();
    }
    String::from_utf8_lossy(&value[..len as usize]).into_owned()
}

/// Exercise 9.1: a layer directory on the probe's own tmpfs (a file of the
/// layer's own already in etc/, as an unpacker writes entries in tar
/// order), each entry given to the code under test, then what it made.
fn ch09_whiteouts() -> Result<()> {
    let dir = ch08_scratch("whiteouts")?;
    let seen = observe(CloneFlags::CLONE_NEWNS, || {
        own_private_tmpfs(&dir)?;
        let layer = dir.join("layer");
        ch08_write(&layer, "etc/keep", "this layer's own\n")?;
        for entry in CH09_ENTRIES {
            let applied =
                under_test::ch09_image::apply_whiteout(&layer, std::path::Path::new(entry));
            println!("returned {entry}={}", answer(applied));
        }
        for rel in CH09_PATHS {
            println!("kind {rel}={}", ch08_kind(&layer.join(rel)));
        }
        for rel in ["etc", "var/cache"] {
            for ns in ["trusted", "user"] {
                let value = xattr_of(&layer.join(rel), &format!("{ns}.overlay.opaque"));
                println!("{ns}.overlay.opaque {rel}={value}");
            }
        }
        std::process::exit(0)
    });
    relay_and_report_leftovers(&dir, seen)
}

/// The bridge and the two containers' cables of exercise 10.1's scenario:
/// names of its own, not the chapter's (wsbr0), so that an answer that
/// ignores its arguments shows.
const CH10_BRIDGE: &str = "br-ex10";
/// (host end, container end, container address) of each container.
const CH10_CABLES: [(&str, &str, [u8; 4]); 2] = [
    ("wsh-ex10a", "wsc-ex10a", [10, 231, 0, 2]),
    ("wsh-ex10b", "wsc-ex10b", [10, 231, 0, 3]),
];
/// The bridge's own address (the containers' gateway).
const CH10_GATEWAY: [u8; 4] = [10, 231, 0, 1];

/// A link's flags (`SIOCGIFFLAGS`), in this network namespace, as hex.
fn ch10_flags(name: &str) -> String {
    use nix::libc;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: socket(2) takes no pointers; the descriptor is ours.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return "err".into();
    }
    // SAFETY: just opened, owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all zeroes is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (to, from) in req.ifr_name.iter_mut().zip(name.bytes().take(15)) {
        *to = from as libc::c_char;
    }
    // SAFETY: a valid ifreq that outlives the call; SIOCGIFFLAGS fills it.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return "err".into();
    }
    // SAFETY: SIOCGIFFLAGS filled ifru_flags.
    format!("{:#x}", unsafe { req.ifr_ifru.ifru_flags } as u16)
}

/// A process that holds a new network namespace, and nothing else (it
/// sleeps until it is killed).
fn ch10_namespace_holder() -> Result<nix::unistd::Pid> {
    clone_child(CloneFlags::CLONE_NEWNET, || exec(&argv(&["sleep", "30"])))
}

/// Run `f` in the network namespace of `pid`, then come back to `home`.
fn ch10_in_namespace_of<T>(
    pid: nix::unistd::Pid,
    home: &std::fs::File,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let there = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    nix::sched::setns(&there, CloneFlags::CLONE_NEWNET).context("probe: setns into a container")?;
    let result = f();
    nix::sched::setns(home, CloneFlags::CLONE_NEWNET).context("probe: setns back")?;
    result
}

/// Exercise 10.1, in a network namespace of its own (the check starts the
/// probe under `unshare --net`): a bridge with an address, up; two
/// "containers" (processes in network namespaces of their own), each with a
/// veth whose container end was born inside it, as chapter 10 lays them.
/// The code under test attaches each host end; the kernel then says what it
/// did, and a ping from one container to the other says whether frames
/// cross the bridge.
fn ch10_attach() -> Result<()> {
    let mut nl = ch06_net::netlink::Netlink::open()?;
    let home = std::fs::File::open("/proc/self/ns/net")?;
    let holders = [ch10_namespace_holder()?, ch10_namespace_holder()?];
    let result = ch10_attach_in(&mut nl, &home, holders);
    for pid in holders {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = wait_for(pid);
    }
    result
}

fn ch10_attach_in(
    nl: &mut ch06_net::netlink::Netlink,
    home: &std::fs::File,
    holders: [nix::unistd::Pid; 2],
) -> Result<()> {
    use std::net::Ipv4Addr;
    nl.set_up("lo")?;
    nl.add_bridge(CH10_BRIDGE)
        .context("probe: failed to make its bridge (`modprobe bridge`?)")?;
    nl.add_address(CH10_BRIDGE, Ipv4Addr::from(CH10_GATEWAY), 24)?;
    nl.set_up(CH10_BRIDGE)?;
    for ((host_end, container_end, _), pid) in CH10_CABLES.iter().zip(holders) {
        nl.add_veth_into(host_end, container_end, Some(pid.as_raw() as u32))?;
        println!("flags_before {host_end}={}", ch10_flags(host_end));
    }
    println!("bridge_flags_before={}", ch10_flags(CH10_BRIDGE));
    for (host_end, _, _) in CH10_CABLES {
        let result = under_test::ch10_bridge::attach(host_end, CH10_BRIDGE);
        println!("attach {host_end}={}", answer(result.map(|()| "ok")));
    }
    // What the kernel made of it: every link here, its master and state.
    let links = nl.links()?;
    let bridge = links.iter().find(|l| l.name == CH10_BRIDGE);
    println!("bridge_index={}", bridge.map_or(0, |b| b.index));
    for link in &links {
        let master = link
            .master
            .and_then(|m| links.iter().find(|l| l.index == m));
        println!(
            "link {}={} master={}",
            link.name,
            if link.up { "up" } else { "down" },
            master.map_or("none", |m| m.name.as_str())
        );
    }
    for (host_end, _, _) in CH10_CABLES {
        println!("flags_after {host_end}={}", ch10_flags(host_end));
    }
    println!("bridge_flags_after={}", ch10_flags(CH10_BRIDGE));
    // Inside each container: its end up, with its address.
    for ((_, container_end, address), pid) in CH10_CABLES.iter().zip(holders) {
        ch10_in_namespace_of(pid, home, || {
            let mut inside = ch06_net::netlink::Netlink::open()?;
            inside.set_up("lo")?;
            inside.add_address(container_end, Ipv4Addr::from(*address), 24)?;
            inside.set_up(container_end)
        })?;
    }
    // One container pings the other, then the gateway. Only an echo request
    // that crossed the bridge reaches the second container's namespace.
    let echoes = |pid: nix::unistd::Pid| -> Result<u64> {
        ch10_in_namespace_of(pid, home, echo_requests_received)
    };
    let before = echoes(holders[1])?;
    let ping = |to: [u8; 4]| -> Result<String> {
        let to = Ipv4Addr::from(to).to_string();
        ch10_in_namespace_of(holders[0], home, || {
            let status = std::process::Command::new("ping")
                .args(["-c1", "-W2", &to])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .context("probe: failed to run ping")?;
            Ok(status.code().map_or("killed".into(), |c| c.to_string()))
        })
    };
    println!("ping_container={}", ping(CH10_CABLES[1].2)?);
    println!("echoes_in_container={}", echoes(holders[1])? - before);
    println!("ping_gateway={}", ping(CH10_GATEWAY)?);
    Ok(())
}

/// Exercise 10.2, one of many processes racing for one subnet: `ch10-claim
/// DIR SUBNET/PREFIX CLAIMS`. It says `ready` and reads from stdin the
/// instant (realtime clock, in ns) at which to start, the same for every
/// racer; it spins until then, claims CLAIMS addresses as fast as it can,
/// each with the record `pid N claim K`, and reports each answer as `claim
/// K=ADDRESS` (or `error: ...`).
fn ch10_claim() -> Result<()> {
    use std::io::{BufRead, Write};
    let args: Vec<String> = std::env::args().skip(2).collect();
    let [dir, subnet, claims] = &args[..] else {
        bail!("usage: ch10-claim DIR SUBNET/PREFIX CLAIMS");
    };
    let (network, prefix) = subnet.split_once('/').context("SUBNET/PREFIX")?;
    let subnet = ch06_net::Subnet::of(network.parse()?, prefix.parse()?);
    let claims: u32 = claims.parse()?;
    println!("ready");
    std::io::stdout().flush()?;
    let mut start = String::new();
    std::io::stdin().lock().read_line(&mut start)?;
    let start: u128 = start.trim().parse().context("the start instant, in ns")?;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    };
    // Asleep until just before the start (the others need the CPUs to be
    // told it), then spinning on the clock, to leave at the same instant.
    let spin = 3_000_000; // ns
    let ahead = start.saturating_sub(now()).saturating_sub(spin);
    std::thread::sleep(std::time::Duration::from_nanos(
        ahead.min(5_000_000_000) as u64
    ));
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while now() < start && std::time::Instant::now() < limit {
        std::hint::spin_loop();
    }
    let pid = std::process::id();
    let mut said = String::new();
    for k in 0..claims {
        let got = under_test::ch10_bridge::claim_next(
            std::path::Path::new(dir),
            subnet,
            &format!("pid {pid} claim {k}"),
        );
        said.push_str(&format!("claim {k}={}\n", answer(got)));
    }
    print!("pid={pid}\n{said}");
    Ok(())
}

/// Exercise 11.1, run by the check as an unprivileged user (uid 65534, a
/// gid of its own): a child in a new user namespace waits at a gate while
/// the code under test writes its maps from outside; the kernel then says
/// what the maps are, and the child, let through, says who it is inside.
fn ch11_maps() -> Result<()> {
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    println!("outside_uid={uid}");
    println!("outside_gid={gid}");
    let mut gate = Gate::new()?;
    let capture = Capture::new()?;
    let pid = clone_child(CloneFlags::CLONE_NEWUSER, || {
        capture.redirect()?;
        gate.pass()?; // the maps are written (or not)
        exec(&argv(&[
            "sh",
            "-c",
            "echo uid_inside=$(id -u); echo gid_inside=$(id -g)",
        ]))
    })
    .context(
        "probe: failed to clone a child in a new user namespace as a normal user (does \
         `sysctl user.max_user_namespaces kernel.unprivileged_userns_clone` forbid it?)",
    )?;
    let result = under_test::ch11_rootless::write_id_maps(pid, uid, gid);
    println!("write={}", answer(result.map(|()| "ok")));
    for file in ["uid_map", "gid_map", "setgroups"] {
        // One line, its fields single-spaced: `0 65534 1`.
        let text = std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|e| format!("unreadable ({e})"));
        println!("{file}={text}");
    }
    gate.open();
    let (output, exit) = capture.collect(pid)?;
    print!("{output}");
    println!("child_exit={}", exit.code());
    Ok(())
}

/// The capabilities exercise 12.1's check keeps: CAP_SETPCAP not among
/// them, so that the bounding set can be dropped only while it is there.
const CH12_KEEP: [caps::Capability; 3] = [
    caps::Capability::CAP_CHOWN,
    caps::Capability::CAP_KILL,
    caps::Capability::CAP_NET_BIND_SERVICE,
];

/// The `Cap*:` lines of a /proc/PID/status text, as `WHO CapEff=000001ff...`.
fn ch12_cap_lines(who: &str, status: &str) {
    for line in status.lines().filter(|l| l.starts_with("Cap")) {
        if let Some((key, value)) = line.split_once(':') {
            println!("{who} {key}={}", value.trim());
        }
    }
}

/// Exercise 12.1, as root in this throwaway process: every capability in
/// the inheritable set and CAP_CHOWN raised in the ambient set first (so
/// that an answer that leaves them shows), then the code under test, then
/// the five sets of this process, and of `cat /proc/self/status` run after
/// it (an exec: what root gets back from the bounding and inheritable sets).
fn ch12_caps() -> Result<()> {
    use caps::{CapSet, Capability};
    let permitted = caps::read(None, CapSet::Permitted).context("probe: read the permitted set")?;
    caps::set(None, CapSet::Inheritable, &permitted)
        .context("probe: failed to fill the inheritable set")?;
    caps::raise(None, CapSet::Ambient, Capability::CAP_CHOWN)
        .context("probe: failed to raise CAP_CHOWN in the ambient set")?;
    let kept: u64 = CH12_KEEP.iter().map(|c| c.bitmask()).sum();
    println!("kept={kept:016x}");
    ch12_cap_lines("before", &std::fs::read_to_string("/proc/self/status")?);
    let result = under_test::ch12_hardened::drop_capabilities(&CH12_KEEP);
    println!("drop={}", answer(result.map(|()| "ok")));
    ch12_cap_lines("self", &std::fs::read_to_string("/proc/self/status")?);
    let out = std::process::Command::new("cat")
        .arg("/proc/self/status")
        .output()
        .context("probe: failed to run cat /proc/self/status")?;
    ch12_cap_lines("exec", &String::from_utf8_lossy(&out.stdout));
    Ok(())
}

/// What a path holds, for exercise 12.2's report: its text (up to 40
/// bytes, on one line), or why it could not be read.
fn ch12_read(path: &str) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).replace('\n', " "),
        Err(e) => format!("unreadable ({e})"),
    }
}

/// Exercise 12.2, in a mount namespace of this probe's own, private, with a
/// tmpfs on /tmp: a tree of its own (a file, a directory, their neighbours,
/// and a bind of the whole tree elsewhere, to look under the masks), and
/// paths of /proc. The code under test masks some; the kernel says what a
/// process sees there now.
fn ch12_mask() -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).context("probe: unshare(CLONE_NEWNS)")?;
    own_private_tmpfs(std::path::Path::new("/tmp"))?;
    let tree = "/tmp/ex12";
    std::fs::create_dir_all(format!("{tree}/secrets"))?;
    std::fs::create_dir_all(format!("{tree}/beside"))?;
    std::fs::create_dir_all("/tmp/ex12-under")?;
    std::fs::write(format!("{tree}/secret.txt"), "secret")?;
    std::fs::write(format!("{tree}/secrets/key"), "key")?;
    std::fs::write(format!("{tree}/beside.txt"), "beside")?;
    std::fs::write(format!("{tree}/beside/kept"), "kept")?;
    mount(
        Some(tree),
        "/tmp/ex12-under",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .context("probe: bind the tree elsewhere")?;
    println!("timer_list_before={}", ch12_read("/proc/timer_list").len());
    for (name, path) in [
        ("file", format!("{tree}/secret.txt")),
        ("dir", format!("{tree}/secrets")),
        ("missing", format!("{tree}/no-such-file")),
        ("proc_file", "/proc/timer_list".to_string()),
        ("proc_dir", "/proc/fs".to_string()),
        ("proc_missing", "/proc/ex12-no-such-file".to_string()),
    ] {
        let result = under_test::ch12_hardened::mask_path(std::path::Path::new(&path));
        println!("mask {name}={}", answer(result.map(|()| "ok")));
    }
    let entries = |dir: &str| {
        std::fs::read_dir(dir)
            .map_or_else(|e| format!("unreadable ({e})"), |d| d.count().to_string())
    };
    println!("file_text={}", ch12_read(&format!("{tree}/secret.txt")));
    println!(
        "file_rdev={}",
        std::fs::metadata(format!("{tree}/secret.txt")).map_or("none".into(), |m| {
            let rdev = m.rdev();
            format!(
                "{}:{}",
                nix::sys::stat::major(rdev),
                nix::sys::stat::minor(rdev)
            )
        })
    );
    println!(
        "under_file_text={}",
        ch12_read("/tmp/ex12-under/secret.txt")
    );
    println!("dir_entries={}", entries(&format!("{tree}/secrets")));
    println!(
        "dir_write={}",
        ch03_try_write(std::path::Path::new(&format!("{tree}/secrets")))
    );
    match ch03_mount_at(&format!("{tree}/secrets"))? {
        Some(m) => println!("dir_mount={} {}", m.fstype, m.options),
        None => println!("dir_mount=none"),
    }
    println!("beside_text={}", ch12_read(&format!("{tree}/beside.txt")));
    println!("beside_dir_entries={}", entries(&format!("{tree}/beside")));
    println!("under_dir_entries={}", entries("/tmp/ex12-under/secrets"));
    println!("timer_list_after={}", ch12_read("/proc/timer_list").len());
    println!("uptime={}", ch12_read("/proc/uptime").len());
    println!("proc_dir_entries={}", entries("/proc/fs"));
    println!(
        "proc_dir_write={}",
        ch03_try_write(std::path::Path::new("/proc/fs"))
    );
    Ok(())
}
