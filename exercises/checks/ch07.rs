//! Checks for chapter 7: `cargo test -p exercises ch07`.

use super::probe;

#[test]
fn ex7_1_cpu_limits_in_v2_and_v1_files() {
    use crate::under_test::ch07_cgroups::write_cpu_limit;
    // Removed when the check ends, passed or failed (it left /tmp/ex7-1-PID
    // behind on every run).
    let tmp = workshop_testkit::TempDir::new("ex7-1");
    let dir = tmp.path();
    // The kernel's own file names, written out: the check states them
    // itself rather than agreeing with chapter 7's constants by construction.
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f)).unwrap_or_else(|_| panic!("{f} was not written"))
    };
    write_cpu_limit(dir, 0.2, true).unwrap();
    assert_eq!(
        read("cpu.max").trim(),
        "20000 100000",
        "v2: cpu.max for --cpus 0.2"
    );
    write_cpu_limit(dir, 1.5, true).unwrap();
    assert_eq!(
        read("cpu.max").trim(),
        "150000 100000",
        "v2: cpu.max for --cpus 1.5"
    );
    write_cpu_limit(dir, 0.2, false).unwrap();
    assert_eq!(
        read("cpu.cfs_quota_us").trim(),
        "20000",
        "v1: cpu.cfs_quota_us for --cpus 0.2"
    );
    assert_eq!(
        read("cpu.cfs_period_us").trim(),
        "100000",
        "v1: cpu.cfs_period_us"
    );
    write_cpu_limit(dir, 0.333, false).unwrap();
    assert_eq!(
        read("cpu.cfs_quota_us").trim(),
        "33300",
        "v1: a quota in whole microseconds"
    );
}

#[test]
fn ex7_2_the_kernel_allows_exactly_pids_max_tasks() {
    let report = probe("ch07-pids", "7.2", "ch07_cgroups.rs");
    assert_eq!(report.get("pids_max"), "5", "pids.max should say 5");
    assert_eq!(
        report.get("in_cgroup"),
        "true",
        "the process should be in the cgroup (its /proc/PID/cgroup)"
    );
    let bomb: ch07_cgroups::Bomb = report
        .get("bomb")
        .parse()
        .unwrap_or_else(|e| panic!("{e}:\n{}", report.text));
    assert_eq!(
        bomb.forked, 4,
        "5 tasks: the process and 4 children; the rest of the 10 forks refused"
    );
    assert_eq!(bomb.refused, 6);
}
