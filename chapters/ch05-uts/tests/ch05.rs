//! Chapter 5, checked against the kernel: the container's hostname from
//! inside, the host's from outside, and bad names refused before anything
//! is created.

use nix::sys::signal::Signal;
use std::time::Duration;
use workshop::testing::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch05-uts");
const LIMIT: Duration = Duration::from_secs(60);

fn ch05(args: &[&str]) -> std::process::Output {
    require_root();
    workshop::rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    run(chapter(BIN).args(args), LIMIT)
}

#[test]
fn the_container_has_its_own_name_and_the_host_keeps_its_own() {
    let host = HostSnapshot::take();
    let out = ch05(&["--hostname", "box1", "--", "hostname"]);
    assert_eq!(stdout_of(&out), "box1\n", "{}", stderr_of(&out));
    // uname(2) reads the same UTS namespace.
    let out = ch05(&["--quiet", "--hostname", "box2.example", "--", "uname", "-n"]);
    assert_eq!(stdout_of(&out), "box2.example\n");
    host.assert_unchanged("ch05 --hostname");
}

#[test]
fn the_default_name_is_workshop() {
    let out = ch05(&["--quiet", "cat", "/proc/sys/kernel/hostname"]);
    assert_eq!(stdout_of(&out), "workshop\n");
}

#[test]
fn bad_names_are_refused_before_anything_is_created() {
    let host = HostSnapshot::take();
    let long = "a".repeat(65);
    for bad in ["", "bad_name", "-x", "x-", "a..b", "sp ace", long.as_str()] {
        let out = ch05(&["--hostname", bad, "--", "true"]);
        let err = stderr_of(&out);
        assert_eq!(exit_code(out.status), 2, "{bad:?}: {err}");
        assert!(
            err.contains("error:") && err.contains("--hostname"),
            "{bad:?}: {err}"
        );
        assert!(
            err.contains(&format!("'{bad}'")),
            "the error names the value {bad:?}: {err}"
        );
    }
    host.assert_unchanged("ch05 bad names");
}

#[test]
fn signals_leave_the_host_as_it_was() {
    workshop::rootfs::ensure_default(|_| {}).unwrap();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL] {
        assert_signal_leaves_nothing(BIN, &["--", "sleep", "30"], "sleep", signal);
    }
}

#[test]
fn the_demo_exits_0_and_leaves_the_host_as_it_was() {
    let host = HostSnapshot::take();
    let out = ch05(&[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    host.assert_unchanged("ch05 demo");
}
