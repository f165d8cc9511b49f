//! Support for the tests: run a chapter binary, find its container, and prove
//! that the host is as it was (mounts, hostname, links, cgroups).

pub mod container_pid;
pub mod contract;
pub mod early_kill;
pub mod host_cgroups;
pub mod net_sandbox;
pub mod user;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What a chapter must leave exactly as it found it.
///
/// Mounts and the hostname are compared whole. Network links and workshop
/// cgroups are compared as far as this test is concerned: the machine may run
/// other containers of the workshop meanwhile (another user, another test
/// process), whose `wsh-PID` links and `workshop-PID` cgroups come and go. An
/// entry named after a run (the tool's PID) counts only if that run is one
/// this test started (see [`spawn`]); an entry named after no run (`eth0`,
/// the v2 parent when it is left empty) always counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSnapshot {
    /// `/proc/self/mountinfo` of the test process, byte for byte.
    pub mountinfo: String,
    pub hostname: String,
    /// Names of the network links (`/sys/class/net`), sorted.
    pub links: Vec<String>,
    /// The workshop's cgroup directories (there should be none between runs).
    pub cgroups: Vec<std::path::PathBuf>,
    /// The runs started after this snapshot, from this thread, are this test's.
    since: u64,
    thread: std::thread::ThreadId,
}

impl HostSnapshot {
    pub fn take() -> HostSnapshot {
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
        let hostname = nix::unistd::gethostname()
            .expect("gethostname")
            .to_string_lossy()
            .into_owned();
        let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        links.sort();
        let cgroups = host_cgroups::workshop_cgroups();
        HostSnapshot {
            mountinfo,
            hostname,
            links,
            cgroups,
            since: runs::now(),
            thread: std::thread::current().id(),
        }
    }

    /// Panic with a readable diff unless the host is as it was at `self`, as
    /// far as this test's runs are concerned. A veth end goes with its network
    /// namespace, which the kernel tears down a little after the last process
    /// leaves: what differs is looked at again for up to two seconds.
    pub fn assert_unchanged(&self, what: &str) {
        let start = Instant::now();
        loop {
            let problems = self.changes(&HostSnapshot::take());
            if problems.is_empty() {
                return;
            }
            if start.elapsed() > Duration::from_secs(2) {
                panic!("{what}: {}", problems.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What differs between `self` and `now` that this test is answerable for.
    fn changes(&self, now: &HostSnapshot) -> Vec<String> {
        let mut problems = Vec::new();
        if now.mountinfo != self.mountinfo {
            let before: Vec<&str> = self.mountinfo.lines().collect();
            let after: Vec<&str> = now.mountinfo.lines().collect();
            let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
            let new: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
            problems.push(format!(
                "the host's mounts changed\n  gone: {gone:#?}\n  new: {new:#?}"
            ));
        }
        if now.hostname != self.hostname {
            problems.push(format!(
                "the host's hostname changed: {:?} -> {:?}",
                self.hostname, now.hostname
            ));
        }
        let ours = |pid: u32| runs::is_ours(pid, self.since, self.thread);
        let links = unexplained(&self.links, &now.links, link_owner, ours);
        if !links.is_empty() {
            problems.push(format!("the host's network links changed: {links:?}"));
        }
        let shown = |dirs: &[std::path::PathBuf]| -> Vec<String> {
            dirs.iter().map(|d| d.display().to_string()).collect()
        };
        let (before, after) = (shown(&self.cgroups), shown(&now.cgroups));
        let cgroups = unexplained(&before, &after, |d| cgroup_owner(Path::new(d)), ours);
        if !cgroups.is_empty() {
            problems.push(format!(
                "the workshop's cgroup directories changed: {cgroups:?}"
            ));
        }
        problems
    }
}

/// Whom a link, or a workshop cgroup directory, belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The run of the tool with this PID (`wsh-PID`, `workshop-PID`, `workshop/PID`).
    Run(u32),
    /// Shared by the runs there are: v2's `workshop` parent. It counts when it
    /// appeared and is left with no run's cgroup in it.
    Shared,
    /// The machine's own (`lo`, `eth0`): any change counts.
    Host,
}

/// `wsh-PID` / `wsc-PID`: the ends of a run's veth pair (ch06 on).
pub fn link_owner(name: &str) -> Owner {
    name.strip_prefix("wsh-")
        .or_else(|| name.strip_prefix("wsc-"))
        .and_then(|pid| pid.parse().ok())
        .map_or(Owner::Host, Owner::Run)
}

pub use host_cgroups::cgroup_owner;

/// The entries of `after` and `before` that tell of a change this test made:
/// what is new and belongs to one of our runs (`ours`) or to the host; what is
/// gone and belonged to the host; the shared parent when it appeared and no
/// run's entry is left in it. A run's entry that went is no change (runs end,
/// and a run reclaims what a killed one left), nor is a run that is not ours.
pub fn unexplained(
    before: &[String],
    after: &[String],
    owner: impl Fn(&str) -> Owner,
    ours: impl Fn(u32) -> bool,
) -> Vec<String> {
    let runs_left = after.iter().any(|e| matches!(owner(e), Owner::Run(_)));
    let mut out = Vec::new();
    for entry in after.iter().filter(|e| !before.contains(e)) {
        match owner(entry) {
            Owner::Run(pid) if ours(pid) => out.push(format!("new: {entry}")),
            Owner::Run(_) => {}
            Owner::Shared if !runs_left => out.push(format!("new: {entry}")),
            Owner::Shared => {}
            Owner::Host => out.push(format!("new: {entry}")),
        }
    }
    for entry in before.iter().filter(|e| !after.contains(e)) {
        if owner(entry) == Owner::Host {
            out.push(format!("gone: {entry}"));
        }
    }
    out
}

/// The runs this process started, for [`HostSnapshot`] to tell them from
/// others': each with the thread that started it (a test runs in a thread of
/// its own, named after it) and its start time (a PID is reused once its
/// process is gone).
mod runs {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    use std::thread::ThreadId;

    struct Run {
        seq: u64,
        pid: u32,
        start_time: Option<u64>,
        /// None for a thread with no name: a helper thread of some test.
        thread: Option<ThreadId>,
    }

    static RUNS: Mutex<Vec<Run>> = Mutex::new(Vec::new());
    static SEQ: AtomicU64 = AtomicU64::new(0);

    pub fn now() -> u64 {
        SEQ.fetch_add(1, Ordering::SeqCst)
    }

    /// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
    pub fn start_time(pid: u32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(") ")?.1.split(' ').nth(19)?.parse().ok()
    }

    pub fn note(pid: u32) {
        let start_time = start_time(pid);
        let current = std::thread::current();
        let thread = current.name().map(|_| current.id());
        let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        if !runs
            .iter()
            .any(|r| r.pid == pid && r.start_time == start_time && r.thread == thread)
        {
            runs.push(Run {
                seq: now(),
                pid,
                start_time,
                thread,
            });
        }
    }

    /// Whether `pid` is a run started since `since` by `thread` (or by a
    /// helper thread), and not a process of someone else's that reuses its PID.
    pub fn is_ours(pid: u32, since: u64, thread: ThreadId) -> bool {
        let runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        runs.iter().any(|r| {
            r.pid == pid
                && r.seq >= since
                && r.thread.is_none_or(|t| t == thread)
                && match start_time(pid) {
                    None => true, // gone: whatever it left is its own
                    now => r.start_time.is_none() || now == r.start_time,
                }
        })
    }
}

/// Note `pid` as a run this test started. [`spawn`] and [`run`] do it for the
/// process they start and for each process they see it start while waiting
/// (a chapter run by a script); a test that starts a chapter otherwise calls
/// this, or its runs' links and cgroups are taken for someone else's.
pub fn note_started(pid: u32) {
    runs::note(pid);
}

/// Note `pid` and every process beneath it now.
fn note_tree(pid: u32) {
    runs::note(pid);
    let mut queue = children_of(pid);
    while let Some(kid) = queue.pop() {
        runs::note(kid);
        queue.extend(children_of(kid));
    }
}

/// Whether this process can do what the chapters do. Checks that need root
/// call [`require_root`] first, which fails loudly rather than skip.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn require_root() {
    assert!(
        is_root(),
        "this check creates namespaces and needs root; run `cargo test` (it asks sudo for you) or run it as root"
    );
}

/// A chapter binary, with narration off and colour off.
pub fn chapter(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

/// Start a chapter (or a script that runs one), stdin empty, output captured,
/// and note it as this test's run (see [`HostSnapshot`]).
///
/// A program a test has just written (a copied binary) can fail to start with
/// ETXTBSY: a fork by another test thread, between its fork and its exec,
/// still holds the copy's write descriptor. That passes within milliseconds,
/// so it is tried again, for up to two seconds.
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = loop {
        match cmd.spawn() {
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && start.elapsed() < Duration::from_secs(2) =>
            {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => break other.expect("spawn chapter"),
        }
    };
    note_started(child.id());
    child
}

/// For a run that timed out: each process of its tree, with its state, the
/// kernel function it waits in and the system call it is in (root reads
/// them all), one line each.
pub fn where_stuck(pid: u32) -> String {
    let mut out = String::new();
    let mut todo = vec![(pid, 0)];
    while let Some((p, depth)) = todo.pop() {
        let read = |f: &str| std::fs::read_to_string(format!("/proc/{p}/{f}")).unwrap_or_default();
        // `PID (COMM) STATE ...`: COMM may hold spaces and parentheses.
        let stat = read("stat");
        let (comm, state) = stat
            .split_once(" (")
            .and_then(|(_, rest)| rest.rsplit_once(") "))
            .map_or(("?", "?"), |(comm, rest)| {
                (comm, rest.split(' ').next().unwrap_or("?"))
            });
        let syscall = read("syscall");
        let syscall = syscall.split(' ').next().unwrap_or("?").trim();
        out.push_str(&format!(
            "{:indent$}{p} {comm} state {state} wchan {} syscall {syscall}\n",
            "",
            read("wchan"),
            indent = depth * 2
        ));
        todo.extend(children_of(p).into_iter().map(|kid| (kid, depth + 1)));
    }
    out
}

/// Run a chapter to the end with a time limit, returning its output.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    wait_output(spawn(cmd), limit)
}

/// Wait for a spawned child's output, killing it if it runs past `limit`.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        // What the child starts (a chapter, when it is a script) is this test's run too.
        note_tree(child.id());
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if start.elapsed() > limit {
            let stuck = where_stuck(child.id());
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "timed out after {limit:?}\nwhere each process was:\n{stuck}stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The PIDs of `pid`'s children, from the kernel (`/proc/PID/task/*/children`).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                kids.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    kids
}

/// Wait until the tool `pid` has a child whose command line starts with `argv0`
/// (the container has exec'd its command), and return that child's PID.
pub fn wait_for_container(pid: u32, argv0: &str, limit: Duration) -> u32 {
    let start = Instant::now();
    while start.elapsed() < limit {
        for kid in children_of(pid) {
            let cmdline = std::fs::read(format!("/proc/{kid}/cmdline")).unwrap_or_default();
            let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            if Path::new(&*String::from_utf8_lossy(first))
                .file_name()
                .is_some_and(|n| n == argv0)
            {
                return kid;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no child `{argv0}` of {pid} appeared within {limit:?}");
}

/// Everything a write could change in a tree, path by path (the root's
/// own mode and mtime included): the type, mode, owner, size, device,
/// mtime and ctime, the content of files and the target of links (atime
/// aside: reads change it). Equal before and after: nothing was written.
pub fn tree_checksum(root: &Path) -> std::collections::BTreeMap<std::path::PathBuf, u64> {
    use std::collections::BTreeMap;
    use std::hash::{DefaultHasher, Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;
    fn walk(root: &Path, dir: &Path, sums: &mut BTreeMap<PathBuf, u64>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mut h = DefaultHasher::new();
            (
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.size(),
                meta.rdev(),
            )
                .hash(&mut h);
            (
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec(),
            )
                .hash(&mut h);
            if meta.is_file() {
                std::fs::read(&path).unwrap().hash(&mut h);
            } else if meta.is_symlink() {
                std::fs::read_link(&path).unwrap().hash(&mut h);
            }
            sums.insert(path.strip_prefix(root).unwrap().to_path_buf(), h.finish());
            if meta.is_dir() {
                walk(root, &path, sums);
            }
        }
    }
    let mut sums = BTreeMap::new();
    let top = std::fs::symlink_metadata(root).unwrap();
    sums.insert(
        PathBuf::new(),
        (top.mode() as u64) ^ top.mtime_nsec() as u64,
    );
    walk(root, root, &mut sums);
    sums
}

/// Whether a process exists (and is not a zombie waiting to be reaped).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

pub use workshop::process::nspid;

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `script` with `sh -c` in a sandbox that stands in for a systemd host:
/// a mount namespace of the test's own whose mounts are all shared, as
/// systemd makes the host's. The namespace starts private (unshare's default)
/// and is made shared inside, so its peer groups are its own: even a chapter
/// that wrongly propagated a mount would only reach the sandbox, never the
/// real host.
pub fn run_in_shared_sandbox(script: &str, limit: Duration) -> Output {
    require_root();
    let script = format!("mount --make-rshared / && {script}");
    run(
        Command::new("unshare").args(["--mount", "sh", "-c", &script]),
        limit,
    )
}

/// Run `script` with `sh -c` in a network namespace of its own (`unshare
/// --net`): both ends of every veth the chapter makes live there, and no
/// packet can leave it. The script reads the kernel's state back (`ip -o
/// link`) before the namespace goes.
pub fn run_in_net_sandbox(script: &str, limit: Duration) -> Output {
    require_root();
    run(
        Command::new("unshare").args(["--net", "sh", "-c", script]),
        limit,
    )
}

/// Exit code of a finished chapter run: its code, or 128+N if it was killed by signal N.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Start `bin args` (its command exec's `argv0`, e.g. `sleep`), wait until the
/// container is up, send `signal` to the tool, and wait for the tool to end.
/// Returns the tool's exit code and the container's host PID. The caller
/// asserts on both and on the host snapshot.
pub fn signal_mid_run(
    bin: &str,
    args: &[&str],
    argv0: &str,
    signal: nix::sys::signal::Signal,
) -> (i32, u32) {
    let tool = spawn(chapter(bin).args(args));
    let container = wait_for_container(tool.id(), argv0, Duration::from_secs(10));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(tool.id() as i32), signal)
        .expect("signal the tool");
    let out = wait_output(tool, Duration::from_secs(10));
    (exit_code(out.status), container)
}

/// The fault case: send `signal` to the tool mid-run (its command execs
/// `argv0`), then prove the tool exited 128+N, the container is gone, and the
/// host is exactly as before.
pub fn assert_signal_leaves_nothing(
    bin: &str,
    args: &[&str],
    argv0: &str,
    signal: nix::sys::signal::Signal,
) {
    require_root();
    let host = HostSnapshot::take();
    let (exit, container) = signal_mid_run(bin, args, argv0, signal);
    assert_eq!(
        exit,
        128 + signal as i32,
        "{bin} after {signal:?}: exit code"
    );
    assert!(
        wait_until_gone(container, Duration::from_secs(10)),
        "{bin}: the container survived {signal:?}"
    );
    host.assert_unchanged(&format!("{bin} after {signal:?}"));
}

/// The fault matrix for one chapter: the container exits 0, exits non-zero,
/// the tool gets SIGINT, SIGTERM, or SIGKILL mid-run followed by a new run;
/// after each, the host's mounts, hostname, links and workshop cgroups are
/// exactly as before. `options` come before the command (e.g. limits).
pub fn fault_matrix(bin: &str, options: &[&str]) {
    require_root();
    let with = |command: &[&str]| -> Vec<String> {
        options
            .iter()
            .chain(["--quiet", "--"].iter())
            .chain(command.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let host = HostSnapshot::take();
    for (command, code) in [(&["true"][..], 0), (&["sh", "-c", "exit 3"][..], 3)] {
        let out = run(chapter(bin).args(with(command)), Duration::from_secs(60));
        assert_eq!(
            exit_code(out.status),
            code,
            "{bin} {command:?}: {}",
            stderr_of(&out)
        );
        host.assert_unchanged(&format!("{bin} after {command:?}"));
    }
    let sleep: Vec<String> = with(&["sleep", "30"]);
    let sleep: Vec<&str> = sleep.iter().map(String::as_str).collect();
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        assert_signal_leaves_nothing(bin, &sleep, "sleep", signal);
    }
    // SIGKILL: the tool cannot clean up. The container dies with it
    // (PR_SET_PDEATHSIG) and what the kernel ties to it goes; what it cannot
    // (an empty cgroup directory) the next run reclaims. After that new run,
    // the host must be exactly as before.
    let (exit, container) = signal_mid_run(bin, &sleep, "sleep", nix::sys::signal::Signal::SIGKILL);
    assert_eq!(exit, 137, "{bin} after SIGKILL");
    assert!(
        wait_until_gone(container, Duration::from_secs(10)),
        "{bin}: the container survived SIGKILL of the tool"
    );
    // After a SIGKILL, a new run starts and ends clean (and reclaims what it finds).
    let out = run(chapter(bin).args(with(&["true"])), Duration::from_secs(60));
    assert_eq!(
        exit_code(out.status),
        0,
        "{bin}: the run after a SIGKILL: {}",
        stderr_of(&out)
    );
    host.assert_unchanged(&format!("{bin} after SIGKILL and a new run"));
}

/// The bad-input matrix for one chapter: each (option, value) must be refused
/// with exit 1 or 2 and an `error:` that names the option and the value,
/// before anything is created. The options every chapter has are added.
pub fn bad_input_matrix(bin: &str, cases: &[(&str, &str)]) {
    require_root();
    let host = HostSnapshot::take();
    let common = [
        ("--color", ""),
        ("--color", "purple"),
        ("--color", "ALWAYS!"),
    ];
    for (option, value) in common.iter().chain(cases.iter()) {
        let out = run(
            chapter(bin).args([option, value, "--", "true"]),
            Duration::from_secs(60),
        );
        let err = stderr_of(&out);
        let code = exit_code(out.status);
        assert!(
            code == 1 || code == 2,
            "{bin} {option} {value:?}: exit {code}\n{err}"
        );
        let first = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("{bin} {option} {value:?}: no error: line\n{err}"));
        assert!(
            first.contains(option),
            "{bin} {option} {value:?}: the error does not name the option: {first}"
        );
        assert!(
            first.contains(value),
            "{bin} {option} {value:?}: the error does not name the value: {first}"
        );
    }
    host.assert_unchanged(&format!("{bin} bad input"));
}

/// A value only the kernel would reject, refused up front as bad usage: exit
/// 2 and an `error:` line naming the option and the value, before anything
/// is created (no cgroup, no link, no mount) and before any system call
/// could fail on it.
pub fn assert_refused_as_usage(bin: &str, option: &str, value: &str) {
    require_root();
    let host = HostSnapshot::take();
    let out = run(
        chapter(bin).args([option, value, "--", "true"]),
        Duration::from_secs(60),
    );
    let err = stderr_of(&out);
    assert_eq!(
        exit_code(out.status),
        2,
        "{bin} {option} {value:?}: bad usage exits 2\n{err}"
    );
    let first = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{bin} {option} {value:?}: no error: line\n{err}"));
    assert!(
        first.contains(option) && first.contains(value),
        "{bin} {option} {value:?}: the error names the option and the value: {first}"
    );
    host.assert_unchanged(&format!("{bin} {option} {value:?}"));
}

/// Wait (a little) for a process to be gone: the kernel may take a moment to
/// deliver PR_SET_PDEATHSIG and the reaper to reap.
pub fn wait_until_gone(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Run a chapter binary as user `nobody`, to see what a student who forgot
/// sudo sees. The binary is copied where `nobody` can reach it.
pub fn run_as_nobody(bin: &str, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = std::env::temp_dir().join(format!(
        "workshop-nobody-{}-{}",
        std::process::id(),
        args.len()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    let copy = dir.join(Path::new(bin).file_name().expect("binary name"));
    std::fs::copy(bin, &copy).expect("copy binary");
    let out = run(
        chapter(copy.to_str().expect("utf-8 path"))
            .args(args)
            .uid(65534)
            .gid(65534),
        Duration::from_secs(10),
    );
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// A directory under the system temp dir, removed (whatever is in it, even
/// read-only directories) when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// `/tmp/workshop-WHAT-PID-N`, new and empty, mode 0755.
    pub fn new(what: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("workshop-{what}-{}-{n}", std::process::id()));
        let _ = workshop_rootfs::remove_tree(&path);
        std::fs::create_dir(&path).expect("create a temp dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = workshop_rootfs::remove_tree(&self.0);
    }
}

/// A copy of the default rootfs (`cp -a`) that is this test's alone, for a
/// test that writes into its rootfs or looks at everything in it: tests run
/// in parallel and share target/rootfs, where another test's container may
/// be writing at that moment. Removed when dropped.
pub fn rootfs_copy(what: &str) -> TempDir {
    let source = workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    let copy = TempDir::new(what);
    let out = run(
        Command::new("cp")
            .arg("-a")
            .arg(source.join("."))
            .arg(copy.path()),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "cp -a {} {}: {}",
        source.display(),
        copy.path().display(),
        stderr_of(&out)
    );
    copy
}

/// A tar archive made by a test, hostile entries included: paths and link
/// targets are written raw into the header, so `../x`, `/abs/../../x` and
/// `evil -> /` are all possible (tar's own `Builder` refuses `..`).
pub struct Tarball(tar::Builder<Vec<u8>>);

impl Default for Tarball {
    fn default() -> Self {
        Tarball(tar::Builder::new(Vec::new()))
    }
}

impl Tarball {
    pub fn new() -> Tarball {
        Tarball::default()
    }

    /// Any entry, written raw: `kind`, `mode` (setuid bits included) and the
    /// link target as given, uid and gid 0.
    pub fn raw(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        link: &str,
        data: &[u8],
    ) -> &mut Self {
        let mut header = tar::Header::new_ustar();
        let old = header.as_old_mut();
        assert!(
            path.len() < old.name.len() && link.len() < old.linkname.len(),
            "short names only"
        );
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        self.0
            .append(&header, data)
            .expect("append to an in-memory tar");
        self
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.raw(path, tar::EntryType::Directory, mode, "", b"")
    }

    pub fn file(&mut self, path: &str, content: &[u8], mode: u32) -> &mut Self {
        self.raw(path, tar::EntryType::Regular, mode, "", content)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Symlink, 0o777, target, b"")
    }

    pub fn hard_link(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Link, 0o644, target, b"")
    }

    /// A character device entry (device 0,0: only its type matters here).
    pub fn char_device(&mut self, path: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Char, 0o666, "", b"")
    }

    pub fn fifo(&mut self, path: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Fifo, 0o644, "", b"")
    }

    /// A block device entry (device 0,0).
    pub fn block_device(&mut self, path: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Block, 0o660, "", b"")
    }

    /// A GNU sparse file of `real_size` bytes, holding `chunks` (offset,
    /// data) and holes everywhere else: the archive carries the data only.
    /// At most 4 chunks (no extension headers); every chunk but the last a
    /// multiple of 512 bytes long, as GNU tar writes them.
    pub fn sparse(&mut self, path: &str, real_size: u64, chunks: &[(u64, &[u8])]) -> &mut Self {
        assert!(chunks.len() <= 4, "at most 4 chunks in the GNU header");
        let mut header = tar::Header::new_gnu();
        {
            let old = header.as_old_mut();
            assert!(path.len() < old.name.len(), "short names only");
            old.name[..path.len()].copy_from_slice(path.as_bytes());
        }
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        let data: Vec<u8> = chunks.iter().flat_map(|(_, d)| d.iter().copied()).collect();
        header.set_size(data.len() as u64);
        let gnu = header.as_gnu_mut().expect("a GNU header");
        for (slot, (offset, chunk)) in gnu.sparse.iter_mut().zip(chunks) {
            octal(&mut slot.offset, *offset);
            octal(&mut slot.numbytes, chunk.len() as u64);
        }
        octal(&mut gnu.realsize, real_size);
        header.set_cksum();
        self.0
            .append(&header, &data[..])
            .expect("append to an in-memory tar");
        self
    }

    /// The archive as a .tar file's bytes.
    pub fn bytes(&mut self) -> Vec<u8> {
        self.0
            .get_ref()
            .clone()
            .into_iter()
            .chain([0u8; 1024])
            .collect()
    }

    /// The archive as a .tar.gz file's bytes.
    pub fn gzipped(&mut self) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&self.bytes()).expect("gzip in memory");
        gz.finish().expect("gzip in memory")
    }

    /// Write the archive to `path` (gzipped when `gzip`).
    pub fn write_to(&mut self, path: &Path, gzip: bool) {
        let bytes = if gzip { self.gzipped() } else { self.bytes() };
        std::fs::write(path, bytes).expect("write a test tarball");
    }
}

/// A tar number field: octal digits, NUL-terminated.
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}\0", width = field.len() - 1);
    assert_eq!(digits.len(), field.len(), "{value} does not fit");
    field.copy_from_slice(digits.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_stuck_names_each_process_with_its_state() {
        let me = std::process::id();
        let said = where_stuck(me);
        let first = said.lines().next().unwrap();
        // Its name is the test binary's (cut to 15 bytes by the kernel);
        // its main thread waits for the test threads (S, in a futex).
        assert!(
            first.starts_with(&format!("{me} workshop_testki state ")),
            "{said}"
        );
        let state = first.split(" state ").nth(1).and_then(|r| r.chars().next());
        assert!(state.is_some_and(|c| "RSDTtZI".contains(c)), "{said}");
        assert!(
            first.contains(" wchan ") && first.contains(" syscall "),
            "{said}"
        );
    }

    #[test]
    fn parses_nspid() {
        assert_eq!(nspid("Name:\tsh\nNSpid:\t48213\t1\n"), vec![48213, 1]);
        assert_eq!(nspid("Name:\tsh\n"), Vec::<u32>::new());
    }

    #[test]
    fn owners_are_read_from_the_names() {
        assert_eq!(link_owner("wsh-4321"), Owner::Run(4321));
        assert_eq!(link_owner("wsc-17"), Owner::Run(17));
        assert_eq!(link_owner("eth0"), Owner::Host);
        assert_eq!(link_owner("wsh-x"), Owner::Host);
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn only_our_runs_and_the_host_count() {
        let ours = |pid: u32| pid == 10;
        let before = strings(&["eth0", "lo", "wsh-7"]);
        // Another run appears (wsh-8), one goes (wsh-7): nothing to say.
        let after = strings(&["eth0", "lo", "wsh-8"]);
        assert!(unexplained(&before, &after, link_owner, ours).is_empty());
        // Our own run's link is left: that counts, and only it is named.
        let after = strings(&["eth0", "lo", "wsh-10", "wsh-8"]);
        assert_eq!(
            unexplained(&before, &after, link_owner, ours),
            ["new: wsh-10"]
        );
        // The host's own links count both ways, whoever changed them.
        let after = strings(&["lo", "veth9", "wsh-7"]);
        assert_eq!(
            unexplained(&before, &after, link_owner, ours),
            ["new: veth9", "gone: eth0"]
        );
    }

    #[test]
    fn the_shared_v2_parent_counts_when_left_empty() {
        let owner = |d: &str| cgroup_owner(Path::new(d));
        let ours = |pid: u32| pid == 10;
        let parent = "/sys/fs/cgroup/workshop";
        let theirs = "/sys/fs/cgroup/workshop/8";
        // Another run made the parent and its cgroup: not ours.
        let after = strings(&[parent, theirs]);
        assert!(unexplained(&[], &after, owner, ours).is_empty());
        // The parent left with nothing in it: somebody leaked it, and since
        // no run is there to own it, this test answers for it.
        assert_eq!(
            unexplained(&[], &strings(&[parent]), owner, ours),
            ["new: /sys/fs/cgroup/workshop"]
        );
        // The parent and all the runs in it gone: runs end.
        assert!(unexplained(&after, &[], owner, ours).is_empty());
    }

    #[test]
    fn a_run_started_through_the_kit_is_ours_and_others_are_not() {
        let snapshot_since = runs::now();
        let me = std::thread::current().id();
        let mut ours = Command::new("sleep").arg("5").spawn().unwrap();
        note_started(ours.id());
        let mut theirs = Command::new("sleep").arg("5").spawn().unwrap();
        assert!(runs::is_ours(ours.id(), snapshot_since, me));
        assert!(!runs::is_ours(theirs.id(), snapshot_since, me));
        // A snapshot taken after the run started does not answer for it.
        assert!(!runs::is_ours(ours.id(), runs::now(), me));
        for child in [&mut ours, &mut theirs] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        // Gone, its PID still names what it may have left.
        assert!(runs::is_ours(ours.id(), snapshot_since, me));
    }

    /// A fork made by another thread while a test writes a program holds the
    /// write descriptor until its exec: starting the program meanwhile is
    /// ETXTBSY. `spawn` waits that out.
    #[test]
    fn a_program_just_written_starts_while_a_fork_still_holds_it() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let dir = TempDir::new("etxtbsy");
        let program = dir.path().join("hello");
        let mut file = std::fs::File::create(&program).unwrap();
        file.write_all(b"#!/bin/sh\necho hello\n").unwrap();
        file.set_permissions(std::fs::Permissions::from_mode(0o755))
            .unwrap();
        // Another thread forks a child that waits 300 ms before its exec,
        // holding a copy of `file`, open for writing, all that time.
        let holder = std::thread::spawn(|| {
            let mut slow = Command::new("true");
            // SAFETY: only sleeps (nanosleep), between fork and exec.
            unsafe {
                slow.pre_exec(|| {
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
            };
            slow.status().unwrap()
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(file);
        let out = run(&mut Command::new(&program), Duration::from_secs(10));
        assert_eq!(stdout_of(&out), "hello\n");
        assert!(holder.join().unwrap().success());
    }

    #[test]
    fn this_process_is_alive_and_has_no_children_yet() {
        let me = std::process::id();
        assert!(is_alive(me));
        assert!(!is_alive(u32::MAX));
    }
}
