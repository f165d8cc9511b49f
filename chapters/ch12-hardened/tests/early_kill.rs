//! A hardened container never outlives its tool, even one SIGKILLed in its
//! first milliseconds (while it clones, lays the overlay, or hardens): the
//! early-SIGKILL loop (`workshop_testkit::early_kill`) against the run mode
//! with cgroup limits, lo only. Its own file, so that it runs alone in its
//! test binary, apart from tests/ch12.rs.

use workshop_testkit::early_kill::{assert_early_kill_leaves_nothing, Loop};

const BIN: &str = env!("CARGO_BIN_EXE_ch12-hardened");

#[test]
fn a_tool_sigkilled_in_its_first_ms_leaves_no_container_and_no_cgroup() {
    workshop_testkit::require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    assert_early_kill_leaves_nothing(
        BIN,
        &["--network", "none", "--pids-limit", "50", "--memory", "64M"],
        Loop {
            runs: 100,
            ..Loop::default()
        },
    );
}
