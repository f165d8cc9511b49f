//! `cargo xtask doctor` as a student runs it: on this machine, whatever it
//! has, the last line is the summary an instructor collects, and the exit
//! code agrees with it; bad input is refused before anything is read.

use std::process::Command;

fn front() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask-front"))
}

#[test]
fn the_doctor_ends_with_the_summary_and_exits_0_only_when_all_are_ready() {
    let out = front().arg("doctor").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("ready: "), "{stdout}");
    let all = last == "ready: 12/12 chapters";
    assert_eq!(out.status.success(), all, "{stdout}");
    assert_eq!(out.status.code(), Some(if all { 0 } else { 1 }));
    // Every check is said, ready or not, and every failing one has a fix.
    let checks = stdout
        .lines()
        .filter(|l| l.starts_with("  ✓") || l.starts_with("  ✗"));
    assert!(checks.count() >= 11, "{stdout}");
    assert_eq!(
        stdout.matches("  ✗").count(),
        stdout.matches("      fix: ").count()
    );
}

#[test]
fn the_doctor_takes_no_arguments() {
    let out = front().args(["doctor", "--fix"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("doctor takes no arguments"));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_doctor_says_what_it_is_on_help_and_reads_nothing() {
    for help in ["--help", "-h"] {
        let out = front().args(["doctor", help]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{help}");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("Usage: cargo xtask doctor") && !said.contains("ready:"),
            "{said}"
        );
    }
}
