//! Checks for chapter 7: `cargo test -p exercises ch07`.

use super::probe;

#[test]
fn ex7_1_cpu_limits_in_v2_and_v1_files() {
    use crate::under_test::ch07_cgroups::write_cpu_limit;
    super::own_work("7.1", "ch07_cgroups.rs");
    // Removed when the check ends, passed or failed (it left /tmp/ex7-1-PID
    // behind on every run).
    let tmp = workshop_testkit::TempDir::new("ex7-1");
    // The kernel's own file names, written out: the check states them
    // itself rather than agreeing with chapter 7's constants by construction.
    const V2: &[&str] = &["cpu.max"];
    const V1: &[&str] = &["cpu.cfs_period_us", "cpu.cfs_quota_us"];
    // Each case in a fresh directory, as a fresh cgroup: a file one case
    // wrote cannot stand in for one the next forgot.
    for (case, (cpus, v2, expected)) in [
        (0.2, true, "20000 100000"),
        (1.5, true, "150000 100000"),
        // 0.29 × 100000 is 28999.999999999996 in f64: truncated, 28999.
        (0.29, true, "29000 100000"),
        (0.2, false, "100000 20000"),
        (0.333, false, "100000 33300"),
        (0.29, false, "100000 29000"),
        // 20000.01 µs: to the nearest, 20000; rounded up, 20001.
        (0.2000001, true, "20000 100000"),
        (0.2000001, false, "100000 20000"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(case.to_string());
        std::fs::create_dir(&dir).unwrap();
        let version = if v2 { "v2" } else { "v1" };
        let writes = Writes::watch(&dir);
        write_cpu_limit(&dir, cpus, v2).unwrap();
        let order = writes.seen();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        let (mine, other) = if v2 { (V2, V1) } else { (V1, V2) };
        for f in other {
            assert!(
                read(f).is_none(),
                "\n{version}, --cpus {cpus}: {f} was written too; a {version} cgroup has no \
                 such file (the kernel refuses to create it): write only {}\n",
                mine.join(" and ")
            );
        }
        let got: Vec<String> = mine
            .iter()
            .map(|f| match read(f) {
                Some(text) => text.trim().to_string(),
                None => panic!("\n{version}, --cpus {cpus}: {f} was not written\n"),
            })
            .collect();
        let first = |f: &str| order.iter().position(|w| w == f);
        if let (Some(period), Some(quota)) = (first(V1[0]), first(V1[1])) {
            assert!(
                period < quota,
                "\n{version}, --cpus {cpus}: the kernel saw writes to {order:?}, in this order: \
                 write cpu.cfs_period_us first, then cpu.cfs_quota_us: the kernel checks each \
                 quota against the period in place when it is written\n"
            );
        }
        let got = got.join(" ");
        let shown = mine.join(" + ");
        // The mistake, named from the numbers written: (quota, period).
        let numbers = |text: &str| -> Option<(u64, u64)> {
            let mut n = text.split_whitespace().map(|w| w.parse::<u64>().ok());
            let (a, b) = (n.next()??, n.next()??);
            Some(if v2 { (a, b) } else { (b, a) })
        };
        let mistake = match (numbers(&got), numbers(expected)) {
            (Some((q, p)), Some((eq, ep))) if (q, p) == (ep, eq) => {
                "the two numbers are swapped: cpu.max is \"QUOTA PERIOD\", the quota first\n"
            }
            (Some((_, p)), Some((_, ep))) if p * 1000 == ep => {
                "a period of 100 is in milliseconds: cgroup CPU files count microseconds\n"
            }
            (Some((q, _)), Some((eq, _))) if q + 1 == eq => {
                "the quota is one µs short: truncated (`as u64`), not rounded to the nearest\n"
            }
            (Some((q, _)), Some((eq, _))) if q == eq + 1 => {
                "the quota is one µs over: rounded up (`ceil`), not to the nearest\n"
            }
            _ => "",
        };
        assert_eq!(
            got,
            expected,
            "\n{version}, --cpus {cpus}: {shown} say {got:?}, the kernel needs {expected:?}: \
             {mistake}the quota is cpus × 100000 µs rounded to the nearest whole µs (not \
             truncated, not rounded up: {cpus} × 100000 is {} in f64), the period 100000 µs{}\n",
            cpus * 100_000.0,
            if v2 { " (\"QUOTA PERIOD\")" } else { "" }
        );
    }
}

/// The names of the files written in a directory, in order, from inotify
/// (IN_MODIFY: one event per write(2), named).
struct Writes(std::os::fd::OwnedFd);

impl Writes {
    fn watch(dir: &std::path::Path) -> Writes {
        use nix::libc;
        use std::os::fd::{AsRawFd, FromRawFd};
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: a plain syscall; the fd is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: fd is a new descriptor nobody else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid fd and a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        Writes(fd)
    }

    fn seen(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = match nix::unistd::read(&self.0, &mut buf) {
                Ok(n) => n,
                Err(nix::errno::Errno::EAGAIN) => return names,
                Err(e) => panic!("failed to read inotify events: {e}"),
            };
            // struct inotify_event { int wd; u32 mask, cookie, len; char name[len]; }
            let mut at = 0;
            while at + 16 <= n {
                let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
                let name = &buf[at + 16..(at + 16 + len).min(n)];
                names.push(
                    String::from_utf8_lossy(name)
                        .trim_end_matches('\0')
                        .to_string(),
                );
                at += 16 + len;
            }
        }
    }
}

#[test]
fn ex7_2_the_kernel_allows_exactly_pids_max_tasks() {
    let report = probe("ch07-pids", "7.2", "ch07_cgroups.rs");
    if let Some(error) = report.values.get("limit_error") {
        let hint = if error.contains("tasks") {
            "\n  v2 has no `tasks` file (the kernel refuses to create one: EACCES), and v1's \
             moves a single thread: write the PID to cgroup.procs, which moves the whole process"
        } else if error.contains("os error 22") {
            "\n  the kernel refused a value (EINVAL): write each whole value in one write(2), \
             e.g. std::fs::write; writeln! may send the number and the newline separately"
        } else {
            ""
        };
        panic!("\n\nexercise 7.2: limit_tasks failed: {error}{hint}\n");
    }
    let made = report.get("subcgroups");
    assert!(
        made.is_empty(),
        "\nthe kernel saw a cgroup made inside `dir`: {made} (the check moved its processes \
         out and removed it, or it would have stayed on your machine). `dir` is the cgroup: \
         write pids.max and cgroup.procs into it, do not create one\n"
    );
    assert_eq!(
        report.get("probe_moved"),
        "false",
        "\nthe check's own process (the probe) was moved into the cgroup: write the PID you \
         are given (`pid`), not std::process::id()\n"
    );
    assert_eq!(
        report.get("threads_in_cgroup"),
        "2/2",
        "\nthreads of the process in the cgroup (their /proc/TID/cgroup): the process has two \
         threads; v1's `tasks` moves one thread only: write the PID to cgroup.procs\n"
    );
    assert_eq!(
        report.get("in_cgroup"),
        "true",
        "\nthe process should be in the cgroup (its /proc/PID/cgroup)\n"
    );
    let writes = report.get("writes");
    let order: Vec<&str> = writes.split(',').collect();
    let at = |file: &str| order.iter().position(|&f| f == file);
    assert!(
        matches!((at("pids.max"), at("cgroup.procs")), (Some(limit), Some(attach)) if limit < attach),
        "\nthe kernel saw these writes in the cgroup, in this order: {writes:?}; set pids.max \
         first, then attach: a process attached first may fork past the limit before it is set\n"
    );
    assert_eq!(
        report.get("pids_max"),
        "5",
        "\npids.max should say 5: the limit counts every task, the first process included\n"
    );
    let bomb: ch07_cgroups::Bomb = report.parsed("bomb");
    assert_eq!(
        (bomb.forked, bomb.refused),
        (3, 7),
        "\n5 tasks: the process, its second thread and 3 children; the kernel let {} of the \
         10 forks through\n",
        bomb.forked
    );
}

#[test]
fn ex7_3_refused_forks_are_the_kernels_count() {
    let report = probe("ch07-events", "7.3", "ch07_cgroups.rs");
    let bomb: ch07_cgroups::Bomb = report.parsed("bomb");
    // pids.max 3: the bomber and 2 children; the kernel refused the rest.
    assert_eq!(
        (bomb.forked, bomb.refused),
        (2, 8),
        "the probe's bomb:\n{}",
        report.text
    );
    let events = report.get("events");
    for key in ["before", "after"] {
        if let Some(error) = report.get(key).strip_prefix("error: ") {
            panic!(
                "\nrefused_forks failed on the cgroup's pids.events ({key} the fork bomb; \
                 after it the file says {events:?}): {error}\n  each line of pids.events ends \
                 with a newline: take the word after `max` (split_whitespace, or trim) before \
                 parsing it\n"
            );
        }
    }
    // What the count read instead, named from the numbers it gave: the
    // probe's pids.max is 3; pids.current is read beside each call.
    let (before, after) = (report.get("before"), report.get("after"));
    let instead = if before == "3" {
        "3 is pids.max, the limit, not how often the kernel enforced it: "
    } else if before == report.get("current_before") && after == report.get("current_after") {
        "that is pids.current, the tasks in the cgroup now, not the refused forks: "
    } else if before == "1" && after == "1" {
        "1 before and after the bomb: whether pids.events mentions `max`, not its count: "
    } else {
        ""
    };
    assert_eq!(
        report.number("before"),
        0,
        "\nbefore the fork bomb no fork had been refused, yet you counted {before} (and {after} \
         after it): {instead}return the number on pids.events' `max` line (after the bomb it \
         says {events:?})\n"
    );
    assert_eq!(
        report.number("after"),
        bomb.refused as u64,
        "\nthe kernel refused {} forks and pids.events now says {events:?}: return the number \
         on the `max` line (not pids.max, the limit, nor pids.current)\n",
        bomb.refused
    );
    // A pids.events written here, not by the kernel: the kernel lists
    // `max` first today, but a flat-keyed file promises no order, and newer
    // kernels add keys (`max.imposed`).
    use crate::under_test::ch07_cgroups::refused_forks;
    let tmp = workshop_testkit::TempDir::new("ex7-3");
    for (text, expected) in [
        ("max.imposed 4\nmax 9\n", 9),
        ("max 12\nmax.imposed 3\n", 12),
    ] {
        std::fs::write(tmp.path().join("pids.events"), text).unwrap();
        let got = refused_forks(tmp.path()).map_err(|e| format!("{e:#}"));
        assert_eq!(
            got,
            Ok(expected),
            "\nfor a pids.events that says {text:?}, refused_forks gave {got:?}: the count is \
             the number on the line whose key is exactly `max`, wherever that line is (not \
             the first line, not every digit in the file)\n"
        );
    }
}
