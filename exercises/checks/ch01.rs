//! Checks for chapter 1: `cargo test -p exercises ch01`.

use super::probe;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

#[test]
fn ex1_1_the_command_runs_as_pid_1_of_a_new_pid_namespace() {
    let report = probe("ch01-pid1", "1.1", "ch01_clone.rs");
    assert_eq!(
        report.get("inside"),
        "1",
        "`echo $$` in the child should print 1:\n{}",
        report.text
    );
    let host_pid = report.number("host_pid");
    let nspid = workshop_testkit::nspid(&report.text);
    assert_eq!(
        nspid,
        vec![host_pid as u32, 1],
        "the kernel's NSpid should list the host PID you returned, then 1:\n{}",
        report.text
    );
    assert_eq!(report.get("exit"), "0");
    assert_eq!(
        report.get("exit_of_exit_5"),
        "5",
        "the child's exit code should reach waitpid"
    );
}

#[test]
fn ex1_2_exit_codes_are_what_a_shell_reports() {
    use crate::under_test::ch01_clone::exit_code;
    let pid = Pid::from_raw(42);
    assert_eq!(exit_code(WaitStatus::Exited(pid, 0)), Some(0));
    assert_eq!(exit_code(WaitStatus::Exited(pid, 7)), Some(7));
    assert_eq!(
        exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
        Some(137),
        "SIGKILL is 9: 128 + 9"
    );
    assert_eq!(
        exit_code(WaitStatus::Signaled(pid, Signal::SIGTERM, true)),
        Some(143),
        "SIGTERM is 15: 128 + 15"
    );
    assert_eq!(
        exit_code(WaitStatus::Stopped(pid, Signal::SIGSTOP)),
        None,
        "a stopped process has not finished"
    );
    assert_eq!(
        exit_code(WaitStatus::StillAlive),
        None,
        "a running process has not finished"
    );
}
