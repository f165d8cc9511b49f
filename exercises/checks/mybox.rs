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
        Some("10") => "ch10_bridge.rs",
        Some("12") => "ch12_hardened.rs",
        _ => "the chapter's file",
    }
}

/// What mybox says it left out: the first todo!() is what to do next.
fn fail_on_todo(said: &str) {
    if let Some(line) = said.lines().find(|l| l.trim_start().starts_with("todo!()")) {
        let what = line.trim_start().trim_start_matches("todo!()").trim();
        let exercise = what.split_whitespace().next().unwrap_or("?");
        panic!(
            "\n\nexercise {exercise} is not done yet: mybox left it out of your container\n  \
             ({what})\n  write it in exercises/src/{}, then run this check again\n\nwhat mybox said:\n{said}\n",
            file_of(exercise)
        );
    }
}

/// `mybox --rootless`, run as a user of the check's own (no sudo): inside,
/// PID 1 and root, the user's own uid and gid mapped to 0 (11.1), hardened
/// (12.1, 12.2) all the same.
#[test]
fn mybox_rootless_as_a_normal_user() {
    workshop_testkit::require_root(); // to make the user
    let user = workshop_testkit::user::TestUser::create();
    user.assert_can_reach(std::path::Path::new(crate::MYBOX));
    let inside = "echo pid=$$; echo uid=$(id -u); echo gid=$(id -g); \
                  echo uid_map=$(cat /proc/self/uid_map); echo gid_map=$(cat /proc/self/gid_map); \
                  echo cap_bnd=$(grep CapBnd /proc/self/status | cut -f2); \
                  echo timer_list=$(wc -c < /proc/timer_list); exit 3";
    let mut cmd = user.command(crate::MYBOX);
    cmd.args(["--rootless", "--", "sh", "-c", inside]);
    let out = workshop_testkit::run(&mut cmd, Duration::from_secs(30));
    let text = workshop_testkit::stdout_of(&out);
    let said = workshop_testkit::stderr_of(&out);
    fail_on_todo(&said);
    let context = format!("\ninside:\n{text}\nmybox said:\n{said}");
    let get = |key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("the container did not say {key}={context}"))
            .to_string()
    };
    assert_eq!(get("pid"), "1", "the command should be PID 1{context}");
    assert_eq!(
        (get("uid"), get("gid")),
        ("0".to_string(), "0".to_string()),
        "in its user namespace the user {} should be root (11.1){context}",
        user.name
    );
    let map = |key: &str| get(key).split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        (map("uid_map"), map("gid_map")),
        (format!("0 {} 1", user.uid), format!("0 {} 1", user.gid)),
        "the maps should be the user's own uid and gid as 0, one id (11.1){context}"
    );
    assert_eq!(
        get("cap_bnd"),
        "00000000a00425fb",
        "rootless or not, the container's bounding set should be docker's capabilities, less \
         CAP_MKNOD (12.1){context}"
    );
    assert_eq!(
        get("timer_list"),
        "0",
        "/proc/timer_list should read empty in the container (12.2){context}"
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "mybox should exit with the command's code{context}"
    );
}

/// The file the container writes at its root (one name per run: a wrong
/// answer that never leaves the host's / writes it there, and the check
/// removes what its own run wrote, never another's).
fn written() -> String {
    format!("written-by-mybox-{}", std::process::id())
}

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
         echo cap_bnd=$(grep CapBnd /proc/self/status | cut -f2); \
         echo timer_list=$(wc -c < /proc/timer_list); \
         ( i=0; while [ $i -lt 10 ]; do sleep 2 & i=$((i+1)); echo forked=$i; done ) 2>&1; \
         exit 7",
        marker = workshop_rootfs::MARKER,
        written = written(),
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
        .join(written());
    let in_rootfs = rootfs_file.exists();
    let _ = std::fs::remove_file(&rootfs_file);
    // Nor on the host's own / (a container that never left it).
    let host_file = std::path::Path::new("/").join(written());
    let on_host = host_file.exists();
    let _ = std::fs::remove_file(&host_file);
    host.assert_unchanged("mybox");
    let text = workshop_testkit::stdout_of(&out);
    let said = workshop_testkit::stderr_of(&out);
    fail_on_todo(&said);
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
        !on_host,
        "the file the container wrote at its / is on the host's own /: the container never \
         left the host's root (pivot_root, 4.x){context}"
    );
    assert!(
        !in_rootfs,
        "the file the container wrote at its / is in the workshop rootfs: its writes \
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
    // 12.1 and 12.2, by default: docker's capabilities less CAP_MKNOD, in
    // the bounding set of a process the container exec'd; /proc masked.
    assert_eq!(
        get("cap_bnd"),
        "00000000a00425fb",
        "the container's bounding set should be docker's capabilities, less CAP_MKNOD (12.1){context}"
    );
    assert_eq!(
        get("timer_list"),
        "0",
        "/proc/timer_list should read empty in the container: masked (12.2){context}"
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

/// Two of your containers on your bridge (10.1, 10.2 and 6.2): each gets an
/// address of its own, the second pings the first through the bridge, and
/// the last one out removes the bridge and its leases.
#[test]
fn mybox_two_containers_on_your_bridge() {
    workshop_testkit::require_root();
    let _turn = super::TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = workshop_testkit::HostSnapshot::take();
    // The first lives 6 s; the second starts a second later, and pings the
    // address it does not have (retrying while the first may still be
    // joining).
    let second = "me=$(ip -4 -o addr show eth0); echo b_address=\"$me\"; \
                  case \"$me\" in *10.202.0.2/*) other=10.202.0.3;; *) other=10.202.0.2;; esac; \
                  i=0; until ping -c1 -W1 $other >/dev/null 2>&1; do \
                  i=$((i+1)); [ $i -ge 8 ] && break; sleep 0.5; done; \
                  ping -c1 -W1 $other >/dev/null 2>&1; echo ping_other=$?; \
                  ping -c1 -W1 10.202.0.1 >/dev/null 2>&1; echo ping_gateway=$?";
    let script = format!(
        "ip link set lo up; out=$(mktemp); \
         {mybox} --network bridge -- sh -c 'echo a_address=\"$(ip -4 -o addr show eth0)\"; sleep 6' \
           >$out 2>&1 & first=$!; \
         sleep 1; {mybox} --network bridge -- sh -c '{second}'; echo b_exit=$?; \
         wait $first; echo a_exit=$?; cat $out; rm -f $out; \
         echo links_after=$(ip -o link show | wc -l); \
         test -e {state}$(stat -Lc %i /proc/self/ns/net) && echo leases_after=left \
           || echo leases_after=gone",
        mybox = crate::MYBOX,
        state = "/run/mybox-bridge-net-",
    );
    let out = workshop_testkit::run_in_net_sandbox(&script, Duration::from_secs(60));
    host.assert_unchanged("mybox on a bridge");
    let text = workshop_testkit::stdout_of(&out);
    let said = workshop_testkit::stderr_of(&out);
    fail_on_todo(&format!("{said}\n{text}"));
    let get = |key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("the run did not say {key}=:\n{text}\nmybox said:\n{said}"))
            .to_string()
    };
    let context = format!("\nwhat the run said:\n{text}\nmybox said:\n{said}");
    let address = |key: &str| -> String {
        let line = get(key);
        line.split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap_or("none")
            .to_string()
    };
    let (a, b) = (address("a_address"), address("b_address"));
    let ours = ["10.202.0.2/24", "10.202.0.3/24"];
    assert!(
        ours.contains(&a.as_str()) && ours.contains(&b.as_str()) && a != b,
        "the two containers on the bridge should have 10.202.0.2 and 10.202.0.3 (10.2), one \
         each: they have {a} and {b}{context}"
    );
    assert_eq!(
        get("ping_other"),
        "0",
        "the second container should reach the first through the bridge (10.1){context}"
    );
    assert_eq!(
        get("ping_gateway"),
        "0",
        "the containers should reach the bridge's address, their gateway{context}"
    );
    assert_eq!(
        (get("a_exit"), get("b_exit")),
        ("0".to_string(), "0".to_string()),
        "both myboxes should exit 0{context}"
    );
    assert_eq!(
        (get("links_after"), get("leases_after")),
        ("1".to_string(), "gone".to_string()),
        "the last mybox out should remove the bridge and its leases{context}"
    );
}
