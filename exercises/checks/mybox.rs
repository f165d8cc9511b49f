//! The final check: your own container, end to end. `cargo test -p exercises mybox`.
//!
//! mybox (exercises/src/bin/mybox.rs) chains your exercises into one
//! container; this runs it in a network namespace the check makes (`unshare
//! --net`: both veth ends live there) and looks at the container from inside
//! and the host from outside.

use std::time::Duration;

/// The file each exercise lives in, for the message.
fn file_of(exercise: &str) -> &'static str {
    match exercise.split('.').next() {
        Some("1") => "ch01_clone.rs",
        Some("3") => "ch03_mount.rs",
        Some("4") => "ch04_rootfs.rs",
        Some("5") => "ch05_uts.rs",
        Some("6") => "ch06_net.rs",
        Some("7") => "ch07_cgroups.rs",
        Some("8") => "ch08_overlay.rs",
        _ => "the chapter's file",
    }
}

/// The file the container writes at its root.
const WRITTEN: &str = "written-by-mybox";

#[test]
fn mybox_your_container_end_to_end() {
    workshop_testkit::require_root();
    let _turn = super::TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = workshop_testkit::HostSnapshot::take();
    let host_dir = env!("CARGO_MANIFEST_DIR");
    // Inside: PID 1, its own /proc, an overlay over the rootfs as / (a write
    // there stays out of the rootfs), its hostname, a tmpfs on
    // /tmp, a ping over the veth, then a bounded fork loop in a subshell
    // under --pids-limit 5 (the shell, the subshell and 3 sleeps; the 4th
    // sleep is refused and the subshell stops there), and exit 7.
    let inside = format!(
        "echo pid=$$; \
         echo procs=$(ps -e -o pid= | wc -l); \
         test -e /{marker} && echo marker=yes || echo marker=no; \
         test -e {host_dir} && echo host_files=visible || echo host_files=absent; \
         echo root_fs=$(grep \" / \" /proc/mounts | tail -n1 | cut -d\" \" -f3); \
         echo written > /{written}; \
         echo hostname=$(hostname); \
         echo tmp=$(grep \" /tmp \" /proc/mounts | cut -d\" \" -f3); \
         ping -c1 -W2 10.200.0.1 >/dev/null 2>&1; echo ping=$?; \
         ( i=0; while [ $i -lt 10 ]; do sleep 2 & i=$((i+1)); echo forked=$i; done ) 2>&1; \
         exit 7",
        marker = workshop_rootfs::MARKER,
        written = WRITTEN,
    );
    let script = format!(
        "{mybox} --hostname mybox-check --network veth --pids-limit 5 -- sh -c '{inside}'; \
         echo mybox_exit=$?; echo links_after=$(ip -o link show | wc -l)",
        mybox = crate::MYBOX,
    );
    let out = workshop_testkit::run_in_net_sandbox(&script, Duration::from_secs(60));
    // What the container wrote at its / must not be in the rootfs (8.1's
    // overlay takes it); removed if it is, so that the next run starts clean.
    let rootfs_file = workshop_rootfs::default_dir()
        .expect("the default rootfs")
        .join(WRITTEN);
    let in_rootfs = rootfs_file.exists();
    let _ = std::fs::remove_file(&rootfs_file);
    host.assert_unchanged("mybox");
    let text = workshop_testkit::stdout_of(&out);
    let said = workshop_testkit::stderr_of(&out);
    // What mybox says it left out: the first todo!() is what to do next.
    if let Some(line) = said.lines().find(|l| l.trim_start().starts_with("todo!()")) {
        let what = line.trim_start().trim_start_matches("todo!()").trim();
        let exercise = what.split_whitespace().next().unwrap_or("?");
        panic!(
            "\n\nexercise {exercise} is not done yet: mybox left it out of your container\n  \
             ({what})\n  write it in exercises/src/{}, then run this check again\n\nwhat mybox said:\n{said}\n",
            file_of(exercise)
        );
    }
    let get = |key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| {
                panic!("the container did not say {key}=:\n{text}\nmybox said:\n{said}")
            })
            .to_string()
    };
    let context = format!("\ninside:\n{text}\nmybox said:\n{said}");
    assert_eq!(get("pid"), "1", "the command should be PID 1{context}");
    let procs: usize = get("procs").trim().parse().expect("a count");
    assert!(
        (1..=5).contains(&procs),
        "ps should list the container's processes only, 1 to 5 of them (its own /proc), not {procs}{context}"
    );
    assert_eq!(
        get("marker"),
        "yes",
        "/ should be the workshop rootfs (pivot_root){context}"
    );
    assert_eq!(
        get("host_files"),
        "absent",
        "the host's files ({host_dir}) should be out of reach after pivot_root{context}"
    );
    assert_eq!(
        get("root_fs"),
        "overlay",
        "/ should be an overlay over the rootfs (8.1){context}"
    );
    assert!(
        !in_rootfs,
        "the file the container wrote at /{WRITTEN} is in the workshop rootfs: its writes \
         should go to the overlay's upper (8.1){context}"
    );
    assert_eq!(
        get("hostname"),
        "mybox-check",
        "the container's own hostname{context}"
    );
    assert_ne!(
        ch05_uts::hostname().unwrap(),
        "mybox-check",
        "the host should keep its hostname"
    );
    assert_eq!(get("tmp"), "tmpfs", "/tmp should be a tmpfs{context}");
    assert_eq!(
        get("ping"),
        "0",
        "the host end should answer a ping over the veth{context}"
    );
    let forked = text
        .lines()
        .filter_map(|l| l.strip_prefix("forked="))
        .filter_map(|n| n.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    assert_eq!(
        forked, 3,
        "--pids-limit 5: the shell, the subshell and 3 sleeps; the 4th fork refused{context}"
    );
    assert!(
        text.contains("can't fork"),
        "the fork beyond the limit should be refused{context}"
    );
    assert_eq!(
        get("mybox_exit"),
        "7",
        "mybox should exit with the command's code (1.2){context}"
    );
    assert_eq!(
        get("links_after"),
        "1",
        "only lo should be left in the sandbox{context}"
    );
}
