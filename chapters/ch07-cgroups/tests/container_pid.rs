//! The run mode names the container's PID on the host (and inside), so that
//! the book's `kill` and `/proc/PID` commands reach our own container.

const BIN: &str = env!("CARGO_BIN_EXE_ch07-cgroups");

#[test]
fn the_run_mode_says_the_containers_host_pid_unless_quiet() {
    workshop_testkit::require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    workshop_testkit::container_pid::assert_says_the_container_pid(BIN, &["--pids-limit", "50"]);
}
