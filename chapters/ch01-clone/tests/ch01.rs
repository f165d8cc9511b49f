//! Chapter 1, checked against the kernel: PIDs from both sides, exit codes,
//! signals, and the host left as it was.

use nix::sys::signal::Signal;
use std::time::Duration;
use workshop_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch01-clone");
const LIMIT: Duration = Duration::from_secs(20);

workshop_testkit::contract! {
    bin: BIN,
    network: host,
    demo: [],
    says: ["NSpid"],
    fault_matrix: [],
    bad_input: [],
    without_root: ["--", "true"],
    container_pid: [],
}

fn ch01(args: &[&str]) -> std::process::Output {
    require_root();
    run(chapter(BIN).args(args), LIMIT)
}

#[test]
fn the_command_is_pid_1_inside() {
    let host = HostSnapshot::take();
    let out = ch01(&["--", "sh", "-c", "echo $$"]);
    assert_eq!(stdout_of(&out), "1\n", "stderr: {}", stderr_of(&out));
    assert!(out.status.success());
    host.assert_unchanged("ch01 -- sh -c 'echo $$'");
}

#[test]
fn the_kernel_numbers_the_container_in_both_namespaces() {
    // `exec grep` so that grep reads the status of the container's PID 1 itself.
    let out = ch01(&["--quiet", "sh", "-c", "exec grep NSpid /proc/self/status"]);
    let ids = nspid(&stdout_of(&out));
    assert_eq!(ids.len(), 2, "one PID per namespace level: {ids:?}");
    assert_eq!(ids[1], 1, "PID 1 inside");
    assert!(ids[0] > 1, "a real PID on the host: {ids:?}");
}

#[test]
fn exit_codes_are_the_containers_own() {
    let host = HostSnapshot::take();
    assert_eq!(exit_code(ch01(&["sh", "-c", "exit 7"]).status), 7);
    assert_eq!(exit_code(ch01(&["true"]).status), 0);
    let missing = ch01(&["no-such-command-here"]);
    assert_eq!(exit_code(missing.status), 127);
    assert!(
        stderr_of(&missing).contains("command not found"),
        "{}",
        stderr_of(&missing)
    );
    host.assert_unchanged("ch01 failing containers");
}

#[test]
fn killed_container_exits_128_plus_the_signal() {
    require_root();
    let tool = chapter(BIN).args(["--", "sleep", "30"]).spawn().unwrap();
    let container = wait_for_container(tool.id(), "sleep", LIMIT);
    // From the host, SIGKILL reaches even PID 1 of a namespace.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(container as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    let out = wait_output(tool, LIMIT);
    assert_eq!(exit_code(out.status), 137);
}

#[test]
fn ps_inside_still_sees_the_host_processes() {
    // /proc is still the host's: the container can see this very test.
    let out = ch01(&["ps", "-e", "-o", "pid="]);
    let pids: Vec<u32> = stdout_of(&out)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(
        pids.contains(&std::process::id()),
        "ps inside should list the test process {}",
        std::process::id()
    );
    assert!(pids.len() > 3);
}

#[test]
fn two_containers_are_each_pid_1_of_their_own_namespace() {
    require_root();
    let tools: Vec<_> = (0..2)
        .map(|_| chapter(BIN).args(["--", "sleep", "30"]).spawn().unwrap())
        .collect();
    let containers: Vec<u32> = tools
        .iter()
        .map(|t| wait_for_container(t.id(), "sleep", LIMIT))
        .collect();
    for c in &containers {
        let status = std::fs::read_to_string(format!("/proc/{c}/status")).unwrap();
        assert_eq!(
            nspid(&status).last(),
            Some(&1),
            "container {c} is PID 1 inside"
        );
    }
    // A PID namespace's identity is the inode of /proc/PID/ns/pid (chapter 2).
    let pid_ns = |pid: &str| {
        let path = format!("/proc/{pid}/ns/pid");
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).expect(&path))
    };
    assert_ne!(
        pid_ns(&containers[0].to_string()),
        pid_ns(&containers[1].to_string())
    );
    assert_ne!(pid_ns(&containers[0].to_string()), pid_ns("self"));
    for c in &containers {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(*c as i32), Signal::SIGKILL).unwrap();
    }
    for t in tools {
        assert_eq!(exit_code(wait_output(t, LIMIT).status), 137);
    }
}

#[test]
fn quiet_prints_only_the_containers_output() {
    let out = ch01(&["--quiet", "--", "echo", "hi"]);
    assert_eq!(stdout_of(&out), "hi\n");
    assert_eq!(stderr_of(&out), "");
}
