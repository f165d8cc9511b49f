//! Chapter 2, checked against the kernel: which namespace files differ, and
//! that --join (setns) lands in the container's namespaces.

use ch02_namespaces::namespace_inode;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::time::Duration;
use workshop_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch02-namespaces");
const LIMIT: Duration = Duration::from_secs(20);
const NEW: [&str; 6] = ["mnt", "pid", "net", "ipc", "uts", "cgroup"];
const SHARED: [&str; 2] = ["user", "time"];

workshop_testkit::contract! {
    bin: BIN,
    network: host,
    demo: [],
    fault_matrix: [],
    bad_input: [
        ("--join", ""),
        ("--join", "0"),
        ("--join", "-5"),
        ("--join", "abc"),
        ("--join", "999999999"),
    ],
    without_root: [],
    container_pid: [],
}

fn ch02(args: &[&str]) -> std::process::Output {
    require_root();
    run(chapter(BIN).args(args), LIMIT)
}

/// The inode of each namespace of the process that runs `script`'s loop, as `stat` reports it.
fn inodes_reported(out: &std::process::Output) -> Vec<(String, u64)> {
    stdout_of(out)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().parse().expect("an inode")))
        .collect()
}

const REPORT: &str = "for n in mnt pid net ipc uts cgroup user time; do echo $n $(stat -L -c %i /proc/self/ns/$n); done";

#[test]
fn the_container_has_new_namespaces_except_user_and_time() {
    let host = HostSnapshot::take();
    let out = ch02(&["--quiet", "--", "sh", "-c", REPORT]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let seen = inodes_reported(&out);
    assert_eq!(seen.len(), 8, "{seen:?}");
    for (kind, ino) in seen {
        let mine = namespace_inode(None, &kind).unwrap();
        if NEW.contains(&kind.as_str()) {
            assert_ne!(ino, mine, "{kind} should be a new namespace");
        } else {
            assert!(SHARED.contains(&kind.as_str()));
            assert_eq!(ino, mine, "{kind} should be the host's");
        }
    }
    host.assert_unchanged("ch02 -- report");
}

#[test]
fn join_runs_the_command_in_the_containers_namespaces() {
    require_root();
    let host = HostSnapshot::take();
    let tool = chapter(BIN)
        .args(["--quiet", "--", "sleep", "30"])
        .spawn()
        .unwrap();
    let container = wait_for_container(tool.id(), "sleep", LIMIT);

    let script = format!("echo pid-inside $$; {REPORT}");
    let out = ch02(&[
        "--quiet",
        "--join",
        &container.to_string(),
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let seen = inodes_reported(&out);
    let (_, pid_inside) = seen
        .iter()
        .find(|(k, _)| k == "pid-inside")
        .expect("the shell's PID");
    assert!(
        *pid_inside > 1 && *pid_inside < 10,
        "the joined shell is a low PID of the container's namespace: {pid_inside}"
    );
    for (kind, ino) in seen.iter().filter(|(k, _)| k != "pid-inside") {
        assert_eq!(
            *ino,
            namespace_inode(Some(Pid::from_raw(container as i32)), kind).unwrap(),
            "{kind}: joined the container's namespace"
        );
    }
    assert_eq!(seen.len(), 9, "{seen:?}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(container as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(exit_code(wait_output(tool, LIMIT).status), 137);
    host.assert_unchanged("ch02 --join");
}

#[test]
fn join_a_process_that_does_not_exist_is_a_clear_error() {
    let out = ch02(&["--join", "999999999", "--", "true"]);
    assert_eq!(exit_code(out.status), 1);
    let err = stderr_of(&out);
    assert!(
        err.contains("error: --join 999999999: no process 999999999") && err.contains("hint:"),
        "{err}"
    );
    // A process in the host's own namespaces (this test): nothing to join, and it says so.
    let me = std::process::id().to_string();
    let out = ch02(&["--join", &me, "--", "true"]);
    assert_eq!(exit_code(out.status), 1);
    assert!(
        stderr_of(&out).contains("nothing to join"),
        "{}",
        stderr_of(&out)
    );
    for bad in ["0", "-5", "abc", ""] {
        assert_eq!(
            exit_code(ch02(&["--join", bad, "--", "true"]).status),
            2,
            "--join {bad:?}"
        );
    }
}
