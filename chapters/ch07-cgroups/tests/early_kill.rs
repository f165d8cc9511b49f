//! A container never outlives its tool, even one SIGKILLed in its first
//! milliseconds, while it clones the container: the early-SIGKILL loop
//! (`workshop_testkit::early_kill`) against the run mode with cgroup limits.
//! Its own file, so that it runs alone in its test binary, apart from
//! tests/ch07.rs and its CPU measurements.

use workshop_testkit::early_kill::{assert_early_kill_leaves_nothing, Loop};

const BIN: &str = env!("CARGO_BIN_EXE_ch07-cgroups");

#[test]
fn a_tool_sigkilled_in_its_first_ms_leaves_no_container_and_no_cgroup() {
    workshop_testkit::require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    assert_early_kill_leaves_nothing(
        BIN,
        &["--cpus", "0.5", "--pids-limit", "50", "--memory", "64M"],
        Loop::default(),
    );
}
