//! A container never outlives its tool, even one SIGKILLed in its first
//! milliseconds, while it clones the container or builds its veth pair: the
//! early-SIGKILL loop (`workshop_testkit::early_kill`) against the run mode.
//! Every run is in a network namespace the test made, both veth ends with it.

use workshop_testkit::early_kill::{assert_early_kill_leaves_nothing, Loop};

const BIN: &str = env!("CARGO_BIN_EXE_ch06-net");

#[test]
fn a_tool_sigkilled_in_its_first_ms_leaves_no_container() {
    workshop_testkit::require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    assert_early_kill_leaves_nothing(BIN, &[], Loop::default());
}
