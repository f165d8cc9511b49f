//! Chapter 7, checked against the kernel: the CPU share measured from the
//! cgroup's own usage counter, pids.current and pids.events under a bounded
//! fork bomb, the OOM kill, the cgroup placed beneath the tool's own, bad
//! options refused before anything exists, and no cgroup left afterwards.
//!
//! These tests take turns (a lock): a CPU measurement needs a quiet machine.
//! Each compares the workshop cgroups of its own runs before and after;
//! other runs on the machine are not its business (see HostSnapshot).

use ch07_cgroups::cgroup::{
    detect, dir_of, v1, v2, Version, CGROUP_PROCS, PIDS_CURRENT, PIDS_EVENTS, PIDS_MAX,
};
use nix::sys::signal::Signal;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use workshop_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch07-cgroups");
const LIMIT: Duration = Duration::from_secs(60);
static TURN: Mutex<()> = Mutex::new(());

// Each takes its turn, and runs the demo and the matrices with all three limits,
// in the machine's own network namespace with `--network none`.
workshop_testkit::contract! {
    bin: BIN,
    setup: turn(),
    network: host,
    demo: ["--network", "none"],
    fault_matrix: [
        "--network",
        "none",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--memory",
        "64M",
    ],
    bad_input: [
        ("--cpus", "0"),
        ("--cpus", "-1"),
        ("--cpus", "1000"),
        ("--cpus", "abc"),
        ("--cpus", ""),
        ("--pids-limit", "0"),
        ("--pids-limit", "-5"),
        ("--pids-limit", "many"),
        ("--pids-limit", ""),
        ("--pids-limit", "4194305"),
        ("--pids-limit", "9223372036854775808"),
        ("--cpus", "inf"),
        ("--cpus", "NaN"),
        ("--memory", "1M"),
        ("--memory", "lots"),
        ("--memory", ""),
        ("--hostname", "bad_name"),
        ("--rootfs", "/nonexistent/rootfs"),
        // ch06's options, which ch07 has too.
        ("--ip", "224.0.0.5/24"),
        ("--ip", "10.200.0.1/24"),
        ("--network", "bridge"),
        ("--rootfs", "/"),
    ],
    without_root: ["--network", "none", "--", "true"],
    container_pid: ["--pids-limit", "50"],
}

fn turn() -> std::sync::MutexGuard<'static, ()> {
    require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// ch07 as these tests run it, in the machine's own network namespace: with
/// `--network none` (lo only), since a veth is laid only in a namespace a
/// test made (the network tests below run in one).
fn tool() -> std::process::Command {
    let mut command = chapter(BIN);
    command.args(["--network", "none"]);
    command
}

fn ch07(args: &[&str]) -> std::process::Output {
    run(tool().args(args), LIMIT)
}

fn spawn(args: &[&str]) -> std::process::Child {
    spawn_command(tool().args(args))
}

/// Start `command` (ch07 with its arguments), its output captured, as this
/// test's run.
fn spawn_command(command: &mut std::process::Command) -> std::process::Child {
    workshop_testkit::spawn(command)
}

/// CPU time of `pid`'s cgroup, from the kernel's counter.
fn cpu_usage(pid: u32) -> Duration {
    match detect().unwrap() {
        Version::V2 => v2::cpu_usage(&dir_of(pid, "cpu").unwrap()).unwrap(),
        Version::V1 => v1::cpu_usage(&dir_of(pid, "cpuacct").unwrap()).unwrap(),
    }
}

#[test]
fn cpus_0_2_measures_20_percent_of_one_cpu() {
    let _turn = turn();
    let host = HostSnapshot::take();
    let tool = spawn(&[
        "--quiet",
        "--cpus",
        "0.2",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let container = wait_for_container(tool.id(), "sh", LIMIT);
    std::thread::sleep(Duration::from_millis(300)); // past the start
    let (t0, u0) = (Instant::now(), cpu_usage(container));
    std::thread::sleep(Duration::from_secs(3));
    let (t1, u1) = (Instant::now(), cpu_usage(container));
    let share = (u1 - u0).as_secs_f64() / (t1 - t0).as_secs_f64();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tool.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(exit_code(wait_output(tool, LIMIT).status), 143);
    assert!(
        (share - 0.20).abs() <= 0.03,
        "measured {:.1}% of one CPU, want 20% ± 3",
        share * 100.0
    );
    host.assert_unchanged("ch07 --cpus 0.2");
}

/// The demo (which must exit 0 and leave no cgroup) runs a bomb of 200 forks,
/// each child holding its slot for a second; the test watches it from the
/// host through the kernel's counters of its cgroup, the one whose pids.max is 20.
#[test]
fn pids_limit_20_holds_a_bomb_of_200_forks() {
    let _turn = turn();
    let host = HostSnapshot::take();
    let tool = spawn(&["--quiet"]);
    let (mut most, mut refused, mut host_spawn) = (0u64, 0u64, None);
    let start = Instant::now();
    while start.elapsed() < LIMIT && is_alive(tool.id()) {
        for kid in children_of(tool.id()) {
            let Ok(dir) = dir_of(kid, "pids") else {
                continue;
            };
            let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            if read(PIDS_MAX).trim() != "20" {
                continue;
            }
            while is_alive(kid) {
                most = most.max(read(PIDS_CURRENT).trim().parse().unwrap_or(0));
                let events = read(PIDS_EVENTS);
                let max = events
                    .lines()
                    .find_map(|l| l.strip_prefix("max "))
                    .and_then(|n| n.trim().parse().ok());
                refused = refused.max(max.unwrap_or(0));
                if host_spawn.is_none() && most >= 20 {
                    let t = Instant::now();
                    std::process::Command::new("true").status().unwrap();
                    host_spawn = Some(t.elapsed());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = wait_output(tool, LIMIT);
    assert_eq!(exit_code(out.status), 0, "{}", stderr_of(&out));
    assert!(most <= 20, "{most} tasks alive at once under pids.max 20");
    assert!(
        most >= 18,
        "the bomb should have filled the cgroup (saw at most {most} tasks)"
    );
    assert!(
        refused >= 100,
        "the kernel should have refused most of the 200 forks (pids.events max {refused})"
    );
    let host_spawn = host_spawn.expect("the test saw the bomb fill the cgroup");
    assert!(
        host_spawn < Duration::from_secs(1),
        "the host took {host_spawn:?} to start a process"
    );
    host.assert_unchanged("ch07 --pids-limit 20");
}

/// ch07 with `options`, running a program that allocates 100M at once.
fn allocate_100m(options: &[&str]) -> std::process::Output {
    let dd = [
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=100M",
        "count=1",
    ];
    ch07(&[options, &dd[..]].concat())
}

#[test]
fn memory_32m_and_100m_is_an_oom_kill() {
    let _turn = turn();
    let host = HostSnapshot::take();
    let out = allocate_100m(&["--memory", "32M"]);
    assert_eq!(exit_code(out.status), 137, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("OOM killer"),
        "the tool says so: {}",
        stderr_of(&out)
    );
    // Under the limit, the same program is fine.
    let out = allocate_100m(&["--quiet", "--memory", "200M"]);
    assert_eq!(exit_code(out.status), 0, "{}", stderr_of(&out));
    host.assert_unchanged("ch07 --memory");
}

/// The OOM warning names the limit as it was given: `--memory 6500k`, not
/// the whole MiB below it (it said `6M` while the limit was a bare u64).
#[test]
fn the_oom_warning_names_the_memory_limit_as_given() {
    let _turn = turn();
    let host = HostSnapshot::take();
    let out = allocate_100m(&["--memory", "6500k"]);
    assert_eq!(exit_code(out.status), 137, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("it needed more than --memory 6500k\n"),
        "the tool names the limit: {}",
        stderr_of(&out)
    );
    host.assert_unchanged("ch07 --memory 6500k");
}

/// On v1, the container's cgroup in every hierarchy is beneath the cgroup the
/// tool (here: this test) lives in; on v2 it is under the workshop parent.
#[test]
fn the_container_cgroup_is_beneath_ours() {
    let _turn = turn();
    let host = HostSnapshot::take();
    let tool = spawn(&[
        "--quiet",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--memory",
        "64M",
        "--",
        "sleep",
        "30",
    ]);
    let container = wait_for_container(tool.id(), "sleep", LIMIT);
    for controller in ["cpu", "pids", "memory"] {
        let theirs = dir_of(container, controller).unwrap();
        let ours = dir_of(std::process::id(), controller).unwrap();
        match detect().unwrap() {
            Version::V1 => assert_eq!(
                theirs.parent().unwrap(),
                ours,
                "{controller}: beneath our own cgroup"
            ),
            Version::V2 => assert_eq!(theirs.parent().unwrap(), v2::parent()),
        }
        assert!(theirs
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains(&tool.id().to_string()));
    }
    // Our own cgroup did not change.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tool.id() as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    wait_output(tool, LIMIT);
    assert_eq!(std::fs::read_to_string("/proc/self/cgroup").unwrap(), own);
    // The SIGKILLed run left an empty cgroup; the next run removes it.
    assert!(wait_until_gone(container, LIMIT));
    assert!(ch07(&["--quiet", "--", "true"]).status.success());
    host.assert_unchanged("ch07 after a SIGKILL and a new run");
}

/// In `pre_exec`: a seccomp filter that refuses clone3() with ENOSYS, as
/// docker's default profile does, for the tool and everything it starts.
fn refuse_clone3() -> std::io::Result<()> {
    use nix::libc::*;
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        stmt(BPF_LD | BPF_W | BPF_ABS, 0), // seccomp_data.nr: the syscall's number
        sock_filter {
            code: (BPF_JMP | BPF_JEQ | BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: SYS_clone3 as u32,
        },
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS as u32),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    ];
    let program = sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut sock_filter,
    };
    // SAFETY: `program` points at `filter`, both alive for the call; the
    // kernel copies the filter.
    if unsafe {
        prctl(
            PR_SET_SECCOMP,
            SECCOMP_MODE_FILTER,
            &program as *const sock_fprog,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // Check that it holds: clone3() with no arguments is EINVAL, refused it is
    // ENOSYS. (No allocation here: this runs between fork and exec.)
    // SAFETY: a null struct with size 0 is refused before anything is cloned.
    let answer = unsafe { syscall(SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    if answer != -1 || std::io::Error::last_os_error().raw_os_error() != Some(ENOSYS) {
        return Err(std::io::Error::from_raw_os_error(EPROTO));
    }
    Ok(())
}

/// The container's command runs in its cgroup from its first instruction: it
/// finds itself there in /proc/self/cgroup. Also where clone3() is refused
/// (a seccomp filter, as docker's): on v2 the tool then starts the container
/// with clone() and the container moves itself in (on v1 it always does).
#[test]
fn the_command_is_in_its_cgroup_from_the_start() {
    let _turn = turn();
    let host = HostSnapshot::take();
    for refused in [false, true] {
        let mut command = tool();
        command.args([
            "--quiet",
            "--pids-limit",
            "50",
            "--",
            "cat",
            "/proc/self/cgroup",
        ]);
        if refused {
            // SAFETY: refuse_clone3 only calls prctl, which is async-signal-safe.
            unsafe { std::os::unix::process::CommandExt::pre_exec(&mut command, refuse_clone3) };
        }
        let tool = spawn_command(&mut command);
        let id = tool.id();
        let out = wait_output(tool, LIMIT);
        assert!(
            out.status.success(),
            "clone3 refused: {refused}: {}",
            stderr_of(&out)
        );
        let text = stdout_of(&out);
        let expected = match detect().unwrap() {
            Version::V2 => format!("0::/{}/{id}", v2::PARENT),
            Version::V1 => format!("/{}{id}", v1::PREFIX),
        };
        let pids_line = text
            .lines()
            .find(|l| match detect().unwrap() {
                // v2: the one line, `0::PATH`; v1: the pids hierarchy's, `N:pids:PATH`.
                Version::V2 => l.starts_with("0::"),
                Version::V1 => l.split(':').nth(1) == Some("pids"),
            })
            .unwrap_or_else(|| panic!("no pids line in: {text}"));
        assert!(
            pids_line.ends_with(&expected),
            "clone3 refused: {refused}: {pids_line:?} is not {expected:?}"
        );
    }
    host.assert_unchanged("ch07 with clone3 allowed and refused");
}

/// ch07's container has everything ch06's has: with `--network none`, lo is
/// up (a new network namespace starts with it down).
#[test]
fn network_none_has_lo_up() {
    let _turn = turn();
    let host = HostSnapshot::take();
    let out = ch07(&["--quiet", "--", "sh", "-c", "ip -o link; ip -o -4 addr"]);
    let text = stdout_of(&out);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        text.lines()
            .any(|l| l.contains(": lo:") && l.contains(",UP")),
        "lo is up: {text}"
    );
    assert!(text.contains("inet 127.0.0.1/8"), "{text}");
    assert!(
        !text.contains("eth0"),
        "--network none lays no cable: {text}"
    );
    host.assert_unchanged("ch07 --network none");
}

/// By default (as ch06, and docker's default network), ch07's container has
/// a veth to the host: in a network namespace this test made, limited by a
/// cgroup, it pings its host end, and `--ip` places it; nothing is left.
#[test]
fn the_container_has_ch06s_veth_and_pings_its_host_end() {
    let _turn = turn();
    let host = HostSnapshot::take();
    let out = run_in_net_sandbox(
        &format!(
            "{BIN} --quiet --pids-limit 50 -- ping -c1 -W2 10.200.0.1 >/dev/null; echo ping=$?; \
             {BIN} --quiet --ip 10.77.3.9/24 -- sh -c 'ip -o -4 addr; ip route'; \
             for i in $(seq 500); do [ $(ip -o link | grep -c wsh-) = 0 ] && break; sleep 0.01; done; \
             echo veths=$(ip -o link | grep -c wsh-)"
        ),
        LIMIT,
    );
    let text = stdout_of(&out);
    assert!(
        text.contains("ping=0"),
        "the container pings its host end: {text}{}",
        stderr_of(&out)
    );
    assert!(
        text.contains("eth0") && text.contains("inet 10.77.3.9/24"),
        "{text}"
    );
    assert!(text.contains("default via 10.77.3.1 dev eth0"), "{text}");
    assert!(text.contains("inet 127.0.0.1/8"), "lo is up too: {text}");
    assert!(text.contains("veths=0"), "nothing is left: {text}");
    host.assert_unchanged("ch07 with its veth, in a sandbox");
}

/// Values only the kernel would reject (pids.max takes at most PID_MAX_LIMIT,
/// 4194304; pivot_root refuses the host's own root with EBUSY) are bad usage:
/// exit 2 and the option named, before any cgroup exists.
#[test]
fn values_only_the_kernel_rejects_are_refused_up_front() {
    let _turn = turn();
    for (option, value) in [
        ("--pids-limit", "4194305"),
        ("--pids-limit", "9223372036854775808"),
        ("--cpus", "inf"),
        ("--rootfs", "/"),
    ] {
        assert_refused_as_usage(BIN, option, value);
    }
    // The largest pids.max there is still runs.
    let out = ch07(&["--quiet", "--pids-limit", "4194304", "--", "true"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// A run started the way another user (or another test process) would:
/// not through the test kit, and not as our child (`sh` starts it in the
/// background and exits). Ended (SIGTERM, by its PID) when dropped.
struct ForeignRun(u32);

impl Drop for ForeignRun {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0 as i32), Signal::SIGTERM);
        wait_until_gone(self.0, LIMIT);
    }
}

/// Start a [`ForeignRun`] and wait until its cgroup exists.
fn start_foreign_run() -> ForeignRun {
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "{BIN} --quiet --network none --pids-limit 5 -- sleep 20 </dev/null >/dev/null 2>&1 & echo $!"
            ),
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("start a foreign run");
    let pid: u32 = stdout_of(&out)
        .trim()
        .parse()
        .expect("the foreign run's PID");
    let run = ForeignRun(pid);
    let start = Instant::now();
    while !ch07_cgroups::cgroup::workshop_dirs()
        .iter()
        .any(|d| ch07_cgroups::cgroup::run_of(d) == Some(pid))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the foreign run {pid} made no cgroup"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    run
}

/// The host check compares only what this test's own runs made: a run that
/// someone else started beside it (its cgroup appears during the test) does
/// not make it fail, while a cgroup our own run leaves behind still does.
#[test]
fn the_host_check_sees_our_leak_and_not_a_foreign_run() {
    let _turn = turn();
    let host = HostSnapshot::take();
    let foreign_run = start_foreign_run();
    let foreign = foreign_run.0;
    let out = ch07(&["--quiet", "--pids-limit", "5", "--", "true"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    host.assert_unchanged("ch07 beside a foreign run");

    // Our own run leaves its cgroup: SIGKILL the tool (it cannot clean up),
    // and keep a process of ours in the cgroup so that no other run's
    // reclaim can remove it before the check looks.
    let tool = spawn(&["--quiet", "--pids-limit", "5", "--", "sleep", "20"]);
    let ours = tool.id();
    let container = wait_for_container(ours, "sleep", LIMIT);
    let leaked = dir_of(container, "pids").unwrap();
    let mut holder = std::process::Command::new("sleep")
        .arg("20")
        .spawn()
        .unwrap();
    std::fs::write(leaked.join(CGROUP_PROCS), holder.id().to_string()).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(ours as i32), Signal::SIGKILL).unwrap();
    wait_output(tool, LIMIT);
    assert!(wait_until_gone(container, LIMIT));
    let caught = std::panic::catch_unwind(|| host.assert_unchanged("ch07 leaking its cgroup"));
    holder.kill().unwrap();
    holder.wait().unwrap();
    drop(foreign_run);
    assert!(!is_alive(foreign), "the foreign run ended");
    ch07_cgroups::cgroup::reclaim_stale().unwrap();
    let said = match caught {
        Ok(()) => panic!("the host check missed the cgroup our own run left: {leaked:?}"),
        Err(panic) => panic.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    let name = leaked.file_name().unwrap().to_string_lossy().into_owned();
    assert!(said.contains(&name), "the check names {name}: {said}");
    assert!(
        !said.contains(&format!("{}{foreign}", v1::PREFIX)),
        "the check blames the foreign run: {said}"
    );
    host.assert_unchanged("ch07 after the leak is cleaned up");
}

/// Runs started at the same moment all start: on v2 they share the workshop
/// parent, which the last one to end removes, and a run that was between
/// making the parent and making its own cgroup in it must not fail then
/// (found by reading: `mkdir` of its cgroup got ENOENT). Four runners, eight
/// runs each, all at once.
#[test]
fn runs_started_together_all_start_while_others_end() {
    let _turn = turn();
    let host = HostSnapshot::take();
    let runners: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                (0..8)
                    .map(|_| ch07(&["--quiet", "--pids-limit", "10", "--", "true"]))
                    .filter(|out| !out.status.success())
                    .map(|out| stderr_of(&out))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let failed: Vec<String> = runners
        .into_iter()
        .flat_map(|r| r.join().expect("a runner thread panicked"))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 32 runs failed to start, e.g.: {}",
        failed.len(),
        failed.first().map_or("", String::as_str)
    );
    host.assert_unchanged("32 runs, 4 at a time");
}

/// A Ctrl-C while a demo step's container runs (the CPU step's 3-second busy
/// loop) ends that container at once, as in the run mode: the demo stops
/// within a moment, says so, and shows no result of the step it cut short.
#[test]
fn a_ctrl_c_during_a_demo_step_ends_its_container_at_once() {
    let _turn = turn();
    let host = HostSnapshot::take();
    let tool = spawn(&[]);
    let pid = tool.id();
    let start = Instant::now();
    // The CPU step's container is the tool's first child.
    while children_of(pid).is_empty() {
        assert!(start.elapsed() < LIMIT, "the demo started no container");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200)); // well inside its 3 s
    let signalled = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let out = wait_output(tool, LIMIT);
    let took = signalled.elapsed();
    let err = stderr_of(&out);
    assert_eq!(exit_code(out.status), 130, "{err}");
    assert!(
        took < Duration::from_millis(1500),
        "the demo went on for {took:?} after SIGINT: the step's container ran to its end\n{err}"
    );
    assert!(err.contains("stopped: SIGINT"), "{err}");
    assert!(
        !err.contains("the cgroup's counter"),
        "a step cut short shows no result:\n{err}"
    );
    host.assert_unchanged("a Ctrl-C in the middle of a demo step");
}
