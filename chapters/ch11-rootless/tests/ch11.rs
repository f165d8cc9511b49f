//! Chapter 11, checked against the kernel, as a normal user: the tests run
//! as root only to make that user (testkit's TestUser, with a range in
//! /etc/subuid) and to look from the host; the chapter itself runs as the
//! user, with no privilege. What is asserted is what the kernel did: the
//! maps it holds for the container, the uid it shows the host for the
//! container's root, the owner of the files the container wrote, what the
//! container's root may not do to the host, where its limits are.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use workshop_testkit::user::TestUser;
use workshop_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch11-rootless");
const LIMIT: Duration = Duration::from_secs(60);

/// A user of the test's own that can reach the chapter binary and the
/// default rootfs (built first, as root).
fn user() -> TestUser {
    require_root();
    let rootfs = workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    let user = TestUser::create();
    user.assert_can_reach(Path::new(BIN));
    user.assert_can_reach(&rootfs);
    user
}

/// `ch11-rootless --network none ARGS` as `user`.
fn as_user(user: &TestUser, args: &[&str]) -> Output {
    run(
        user.command(BIN).args(["--network", "none"]).args(args),
        LIMIT,
    )
}

/// What the host sees of a running container, read from /proc by root.
struct HostView {
    status_uid: String,
    uid_map: String,
    gid_map: String,
    setgroups: String,
    user_ns: PathBuf,
}

fn host_view(pid: u32) -> HostView {
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{f}"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/{f}: {e}"))
    };
    let status = read("status");
    HostView {
        status_uid: status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .expect("a Uid: line")
            .to_string(),
        uid_map: normalized(&read("uid_map")),
        gid_map: normalized(&read("gid_map")),
        setgroups: read("setgroups").trim().to_string(),
        user_ns: std::fs::read_link(format!("/proc/{pid}/ns/user")).expect("readlink ns/user"),
    }
}

/// A map as `inside outside count` lines with single spaces (the kernel
/// pads its columns).
fn normalized(map: &str) -> String {
    map.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect()
}

/// Run `script` in a container of `user`'s (`--map MAP` and `extra`), its
/// last step `exec sleep 30`: once it sleeps, look at it from the host,
/// then SIGKILL it (from the host: the one signal the host may send a PID
/// namespace's init that has no handler). Returns the view, the tool's
/// output and its PID.
fn look_while_it_runs(
    user: &TestUser,
    map: &str,
    extra: &[&str],
    script: &str,
) -> (HostView, Output, u32) {
    let tool = spawn(
        user.command(BIN)
            .args(["--network", "none", "--map", map])
            .args(extra)
            .args(["--", "sh", "-c", &format!("{script}; exec sleep 30")]),
    );
    let pid = tool.id();
    let container = wait_for_container(pid, "sleep", LIMIT);
    let view = host_view(container);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(container as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the container");
    (view, wait_output(tool, LIMIT), pid)
}

/// `--map self`: root inside, the user outside, one id each, written by
/// the tool itself (so setgroups is denied); the container is PID 1 of its
/// own PID namespace and sees no other process; a container killed by a
/// signal makes the tool exit 128+N; the run leaves nothing behind.
#[test]
fn map_self_is_root_inside_and_the_user_outside() {
    let user = user();
    let host = HostSnapshot::take();
    let script = "id -u; id -g; grep CapEff /proc/self/status; grep CapBnd /proc/self/status; \
                  echo pid=$$; ps -o pid,comm";
    let (view, out, pid) = look_while_it_runs(&user, "self", &["--quiet"], script);
    let text = stdout_of(&out);
    assert_eq!(
        exit_code(out.status),
        137,
        "SIGKILL of the container: 128+9\n{text}{}",
        stderr_of(&out)
    );
    let (uid, gid) = (user.uid, user.gid);
    assert_eq!(
        view.status_uid,
        format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}"),
        "the host sees the container's root as the user"
    );
    assert_eq!(view.uid_map, format!("0 {uid} 1\n"));
    assert_eq!(view.gid_map, format!("0 {gid} 1\n"));
    assert_eq!(
        view.setgroups, "deny",
        "one id written by the tool: setgroups denied first"
    );
    assert_ne!(
        view.user_ns,
        std::fs::read_link("/proc/self/ns/user").unwrap(),
        "the container has a user namespace of its own"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["0", "0"], "root inside: {text}");
    let cap = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert_eq!(
        cap("CapEff:"),
        cap("CapBnd:"),
        "every capability inside the namespace"
    );
    assert!(lines.contains(&"pid=1"), "PID 1 inside: {text}");
    let pids: Vec<u32> = lines
        .iter()
        .skip_while(|l| !l.trim_start().starts_with("PID"))
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(
        !pids.is_empty() && pids.iter().all(|p| *p < 10),
        "ps sees the container's processes only: {text}"
    );
    assert!(
        !user.rootless_runs_dir().join(pid.to_string()).exists(),
        "the run's layers are left"
    );
    assert!(
        !user.rootless_runs_dir().exists(),
        "the runs dir is left with nothing in it"
    );
    host.assert_unchanged("ch11 --map self");
}

/// `--map subids`: newuidmap and newgidmap write two lines, root the user
/// and 1.. the user's range of /etc/subuid; a file the container writes in
/// its upper is the user's on the host, and one it gives to 5:5 is the
/// range's start+4.
#[test]
fn map_subids_maps_the_users_range_and_files_show_it() {
    let user = user();
    let (start, count) = user.subids.expect(
        "useradd gives the test user a range in /etc/subuid (SUB_UID_COUNT in /etc/login.defs)",
    );
    let script = "touch /by-root && touch /by-five && chown 5:5 /by-five";
    let (view, out, pid) = look_while_it_runs(&user, "subids", &["--keep"], script);
    let err = stderr_of(&out);
    assert_eq!(exit_code(out.status), 137, "{err}");
    let (uid, gid) = (user.uid, user.gid);
    assert_eq!(view.uid_map, format!("0 {uid} 1\n1 {start} {count}\n"));
    assert_eq!(view.gid_map, format!("0 {gid} 1\n1 {start} {count}\n"));
    let upper = user.rootless_runs_dir().join(pid.to_string()).join("diff");
    assert!(
        err.contains(&format!(
            "kept: the container's upper is {}",
            upper.display()
        )),
        "the tool says where it kept the upper: {err}"
    );
    let owner = |name: &str| {
        let meta = std::fs::metadata(upper.join(name))
            .unwrap_or_else(|e| panic!("{}/{name}: {e}", upper.display()));
        (meta.uid(), meta.gid())
    };
    assert_eq!(
        owner("by-root"),
        (uid, gid),
        "the container's root is the user"
    );
    assert_eq!(
        owner("by-five"),
        (start + 4, start + 4),
        "5 inside is start+4"
    );
}

/// The container's root has every capability over what its namespaces own
/// (its hostname), and none over what the host's own: a global sysctl
/// (the value it holds, written back, is refused), a device node. And the
/// host's hostname and mounts are as before.
#[test]
fn the_containers_root_has_no_power_over_the_host() {
    let user = user();
    let host = HostSnapshot::take();
    let swappiness = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    let script = "hostname ws11-probe && hostname; \
                  v=$(cat /proc/sys/vm/swappiness); \
                  if echo $v > /proc/sys/vm/swappiness; then echo sysctl-written; else echo sysctl-refused; fi; \
                  if mknod /null-copy c 1 3; then echo mknod-made; else echo mknod-refused; fi";
    let out = as_user(
        &user,
        &["--map", "subids", "--quiet", "--", "sh", "-c", script],
    );
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}{}", stderr_of(&out));
    assert_eq!(
        text,
        "ws11-probe\nsysctl-refused\nmknod-refused\n",
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
        swappiness
    );
    host.assert_unchanged("ch11 as the user, trying the host");
}

/// The container's exit code is the tool's; a signal to the tool ends the
/// container and the tool exits 128+N, with the layers gone.
#[test]
fn exit_codes_pass_through_and_a_signal_is_128_plus_n() {
    let user = user();
    let out = as_user(&user, &["--quiet", "--", "sh", "-c", "exit 7"]);
    assert_eq!(exit_code(out.status), 7, "{}", stderr_of(&out));
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let host = HostSnapshot::take();
        let tool = spawn(user.command(BIN).args([
            "--network",
            "none",
            "--map",
            "self",
            "--quiet",
            "--",
            "sleep",
            "30",
        ]));
        let pid = tool.id();
        let container = wait_for_container(pid, "sleep", LIMIT);
        assert!(
            user.rootless_runs_dir()
                .join(pid.to_string())
                .join("diff")
                .is_dir(),
            "the run has its upper in the user's runs dir"
        );
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
        let out = wait_output(tool, LIMIT);
        assert_eq!(
            exit_code(out.status),
            128 + signal as i32,
            "{}",
            stderr_of(&out)
        );
        assert!(
            wait_until_gone(container, LIMIT),
            "{signal:?}: the container survived"
        );
        assert!(
            !user.rootless_runs_dir().join(pid.to_string()).exists(),
            "{signal:?} left the run's layers"
        );
        host.assert_unchanged(&format!("ch11 after {signal:?}"));
    }
}

/// Bad values of this chapter's options are usage errors: exit 2, an
/// `error:` naming the option and the value, before anything is made.
#[test]
fn bad_map_and_network_values_exit_2() {
    let user = user();
    for (option, value) in [("--map", "everyone"), ("--network", "bridge")] {
        let out = run(user.command(BIN).args([option, value, "--", "true"]), LIMIT);
        let err = stderr_of(&out);
        assert_eq!(exit_code(out.status), 2, "{option} {value}: {err}");
        let first = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
        assert!(
            first.contains(option) && first.contains(value),
            "{option} {value}: {err}"
        );
        assert!(
            !user.rootless_runs_dir().exists(),
            "{option} {value}: made the runs dir before refusing"
        );
    }
}

/// SIGKILL of the tool: the container dies with it (PR_SET_PDEATHSIG),
/// its layers are left (nothing could remove them), and the next run of
/// the same user reclaims them and says so.
#[test]
fn a_killed_runs_layers_are_reclaimed_by_the_next_run() {
    let user = user();
    let tool = spawn(user.command(BIN).args([
        "--network",
        "none",
        "--map",
        "self",
        "--quiet",
        "--",
        "sleep",
        "30",
    ]));
    let pid = tool.id();
    let container = wait_for_container(pid, "sleep", LIMIT);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(exit_code(wait_output(tool, LIMIT).status), 137);
    assert!(
        wait_until_gone(container, LIMIT),
        "the container survived its tool"
    );
    let left = user.rootless_runs_dir().join(pid.to_string());
    assert!(
        left.is_dir(),
        "a SIGKILLed tool cannot remove {}",
        left.display()
    );
    let out = as_user(&user, &["--map", "self", "--", "true"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!left.exists(), "the next run left {}", left.display());
    assert!(
        stderr_of(&out).contains(&format!("removed {}", left.display())),
        "the next run says what it removed: {}",
        stderr_of(&out)
    );
}

/// The early-SIGKILL loop (testkit), as root (uid 0 is mapped to itself):
/// no container outlives a tool killed in its first milliseconds.
#[test]
fn an_early_kill_leaves_no_container() {
    require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    early_kill::assert_early_kill_leaves_nothing(
        BIN,
        &["--network", "none", "--map", "self"],
        early_kill::Loop {
            runs: 60,
            ..Default::default()
        },
    );
    // The layers of the killed runs go with the next run of root's.
    let out = run(
        chapter(BIN).args([
            "--network",
            "none",
            "--map",
            "self",
            "--quiet",
            "--",
            "true",
        ]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// Two runs of one user at once: each has its own upper (neither sees the
/// other's file), and both end clean.
#[test]
fn two_runs_at_once_keep_apart() {
    let user = user();
    let start = |name: &str| {
        spawn(user.command(BIN).args([
            "--network",
            "none",
            "--map",
            "subids",
            "--quiet",
            "--",
            "sh",
            "-c",
            &format!("echo {name} > /mark-{name}; sleep 1; ls / | grep mark-"),
        ]))
    };
    let (a, b) = (start("a"), start("b"));
    let (a, b) = (wait_output(a, LIMIT), wait_output(b, LIMIT));
    assert!(a.status.success(), "{}", stderr_of(&a));
    assert!(b.status.success(), "{}", stderr_of(&b));
    assert_eq!(stdout_of(&a), "mark-a\n");
    assert_eq!(stdout_of(&b), "mark-b\n");
    assert!(!user.rootless_runs_dir().exists());
}

/// A fresh network namespace of the test's, set up as a small host: lo,
/// a veth pair (both ends here) with 192.0.2.2/24 and a default route via
/// 192.0.2.1. Returns it and a listener bound to `addr` (port 0) in it.
fn small_host(addr: &str) -> (net_sandbox::NetSandbox, TcpListener) {
    let sandbox = net_sandbox::NetSandbox::new();
    let listener = sandbox.run_in(|| {
        // Over netlink (the VM's busybox ip cannot add a veth pair).
        let mut nl = ch06_net::netlink::Netlink::open().expect("netlink in the sandbox");
        let gateway = std::net::Ipv4Addr::new(192, 0, 2, 1);
        nl.add_veth("ws11a", "ws11b")
            .and_then(|()| nl.add_address("ws11a", std::net::Ipv4Addr::new(192, 0, 2, 2), 24))
            .and_then(|()| nl.set_up("ws11a"))
            .and_then(|()| nl.set_up("ws11b"))
            .and_then(|()| nl.add_default_route(gateway))
            .expect("the sandbox's veth, address and default route");
        TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
    });
    (sandbox, listener)
}

/// Answer one HTTP request on `listener` with `body`, within a minute.
fn serve_once(listener: TcpListener, body: &'static str) -> std::thread::JoinHandle<bool> {
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < LIMIT {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let mut request = [0u8; 1024];
                    let _ = conn.read(&mut request);
                    let reply = format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes());
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return true;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    })
}

/// Run the chapter as `user` in `sandbox`, in a mount namespace of its own
/// where /dev/net/tun is open to everyone (the host's is root's alone, mode
/// 0600: a tmpfs over /dev/net in that namespace, with a new node).
fn as_user_with_tun(user: &TestUser, sandbox: &net_sandbox::NetSandbox, args: &[&str]) -> Output {
    run(&mut command_with_tun(user, sandbox, args), LIMIT)
}

/// [`as_user_with_tun`]'s command, not started: the tool ends up with the
/// spawned process's PID (unshare, sh and setpriv each exec the next).
fn command_with_tun(user: &TestUser, sandbox: &net_sandbox::NetSandbox, args: &[&str]) -> Command {
    require_program("setpriv", "util-linux");
    let script = "mount -t tmpfs -o mode=0755 ws11-dev-net /dev/net && \
                  mknod -m 666 /dev/net/tun c 10 200 && exec \"$@\"";
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "sh", "-c", script, "sh"])
        .args(user.setpriv_argv())
        .arg(BIN)
        .args(args)
        .current_dir("/");
    sandbox.enter_on_exec(&mut command);
    command
}

/// A shell line that fetches `/` from `addr:port` in the container and
/// prints the reply. With nc: the rootfs's static busybox's wget dies of
/// SIGSEGV (its static glibc's resolver). Bounded: through pasta (Debian
/// 12's), nc never sees the server's FIN, and waits; the reply is in by
/// then.
fn fetch(addr: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc -w 10 {addr} {port}; true")
}

fn require_program(name: &str, package: &str) {
    assert!(
        workshop_rootfs::find_host_program(name).is_some(),
        "{name} is not installed: apt-get install {package}"
    );
}

/// `--network pasta`: the container gets the host's address and routes,
/// and the gateway is the host's loopback: a page served on the host's
/// 127.0.0.1 comes through 192.0.2.1.
#[test]
fn pasta_reaches_the_hosts_loopback_through_the_gateway() {
    require_program("pasta", "passt");
    let user = user();
    let (sandbox, listener) = small_host("127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    let server = serve_once(listener, "ws11-served-on-loopback");
    let out = as_user_with_tun(
        &user,
        &sandbox,
        &[
            "--network",
            "pasta",
            "--map",
            "self",
            "--quiet",
            "--",
            "sh",
            "-c",
            &format!("ip -4 -o addr; {}", fetch("192.0.2.1", port)),
        ],
    );
    // pasta ends with the run; one of this user's still running outlived
    // it (ended here, by its PID, and reported).
    let outlived = end_outliving_pastas(user.uid);
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}{}", stderr_of(&out));
    assert!(
        text.contains("inet 192.0.2.2/24"),
        "pasta copies the host's address: {text}"
    );
    assert!(text.ends_with("ws11-served-on-loopback"), "{text}");
    assert!(server.join().unwrap());
    assert!(
        outlived.is_empty(),
        "pasta outlived the container: PIDs {outlived:?} (killed now)"
    );
}

/// A SIGKILLed tool takes its pasta with it (PR_SET_PDEATHSIG): nothing
/// is left holding the container's network namespace.
#[test]
fn a_killed_tool_leaves_no_pasta() {
    require_program("pasta", "passt");
    let user = user();
    let (sandbox, _listener) = small_host("127.0.0.1:0");
    let args = [
        "--network",
        "pasta",
        "--map",
        "self",
        "--quiet",
        "--",
        "sleep",
        "30",
    ];
    let mut tool = spawn(&mut command_with_tun(&user, &sandbox, &args));
    let start = std::time::Instant::now();
    while pastas_of(user.uid).is_empty() {
        assert!(start.elapsed() < LIMIT, "no pasta started for the run");
    }
    let container = wait_for_container(tool.id(), "sleep", LIMIT);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tool.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = tool.wait();
    assert!(
        wait_until_gone(container, LIMIT),
        "the container outlived its tool"
    );
    let outlived = end_outliving_pastas(user.uid);
    assert!(
        outlived.is_empty(),
        "pasta outlived its killed tool: PIDs {outlived:?} (killed now)"
    );
}

/// The pasta processes of `uid` still running, each ended (SIGKILL, by
/// its PID): the test's own user's, so none is anyone else's.
fn end_outliving_pastas(uid: u32) -> Vec<u32> {
    let outlived = pastas_of(uid);
    for pid in &outlived {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    outlived
}

/// The PIDs of the pasta processes of `uid` (pasta execs passt.avx2 where
/// the CPU has AVX2: its command line still starts with pasta's path).
fn pastas_of(uid: u32) -> Vec<u32> {
    // pasta may take a moment to see the namespace go.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let dir = PathBuf::from(format!("/proc/{pid}"));
            dir.metadata().is_ok_and(|m| m.uid() == uid)
                && std::fs::read(dir.join("cmdline")).is_ok_and(|c| {
                    let argv0 = c.split(|b| *b == 0).next().unwrap_or_default();
                    Path::new(&*String::from_utf8_lossy(argv0))
                        .file_name()
                        .is_some_and(|n| n == "pasta")
                })
        })
        .collect()
}

/// `--network slirp4netns`: a tap0 at 10.0.2.100 behind a user-space NAT,
/// with the host's loopback out of reach (--disable-host-loopback): the
/// page comes from the host's own address.
#[test]
fn slirp4netns_reaches_the_hosts_address() {
    require_program("slirp4netns", "slirp4netns");
    let user = user();
    let (sandbox, listener) = small_host("192.0.2.2:0");
    let port = listener.local_addr().unwrap().port();
    let server = serve_once(listener, "ws11-served-via-slirp");
    let out = as_user_with_tun(
        &user,
        &sandbox,
        &[
            "--network",
            "slirp4netns",
            "--map",
            "self",
            "--quiet",
            "--",
            "sh",
            "-c",
            &format!("ip -4 -o addr show dev tap0; {}", fetch("192.0.2.2", port)),
        ],
    );
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}{}", stderr_of(&out));
    assert!(text.contains("inet 10.0.2.100/24"), "{text}");
    assert!(text.ends_with("ws11-served-via-slirp"), "{text}");
    assert!(server.join().unwrap());
}

/// Limits need a cgroup delegated to the user, and only cgroup v2 can
/// delegate one. Not delegated (here, or in v1): the container runs, and
/// the tool warns and says how to get one. In a delegated cgroup v2 (the
/// VM's `cargo xtask vm-test`): pids.max holds, and the delegated cgroup
/// is as it was afterwards.
#[test]
fn limits_apply_only_in_a_delegated_cgroup() {
    let user = user();
    let out = as_user(
        &user,
        &["--map", "self", "--pids-limit", "10", "--", "true"],
    );
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("running without limits"), "{err}");
    assert!(
        err.contains("systemd-run --user --scope -p Delegate=yes"),
        "{err}"
    );
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        delegated_cgroup_enforces_pids_max(&user);
    } else {
        assert!(
            err.contains("cgroup v1"),
            "on a cgroup v1 machine, the warning says v1 cannot delegate: {err}"
        );
    }
}

/// A cgroup D beneath the test's own, delegated to `user` as systemd does
/// (chown of D and its procs, subtree_control, threads), with the
/// controllers enabled in its parent; the tool starts in it as the user.
fn delegated_cgroup_enforces_pids_max(user: &TestUser) {
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let rel = ours
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a 0:: line");
    let parent = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let d = parent.join(format!("ws11-{}-{}", std::process::id(), user.uid));
    let parent_control = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
    if !parent_control.split_whitespace().any(|c| c == "pids") {
        std::fs::write(parent.join("cgroup.subtree_control"), "+pids")
            .expect("enable pids in the test's own cgroup");
    }
    std::fs::create_dir(&d).unwrap();
    for f in [
        "",
        "cgroup.procs",
        "cgroup.subtree_control",
        "cgroup.threads",
    ] {
        let p = d.join(f);
        std::os::unix::fs::chown(&p, Some(user.uid), Some(user.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
    }
    let listing = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = (
        listing(&d),
        std::fs::read_to_string(d.join("cgroup.subtree_control")).unwrap(),
    );
    // 30 sleeps in the background: the 10th process and after must fail.
    let forks = "i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); done 2>&1; echo forked";
    let script = format!("echo $$ > {}/cgroup.procs && exec \"$@\"", d.display());
    let mut command = Command::new("sh");
    command
        .args(["-c", &script, "sh"])
        .args(user.setpriv_argv())
        .arg(BIN)
        .args(["--network", "none", "--map", "self", "--pids-limit", "10"])
        .args(["--", "sh", "-c", forks])
        .current_dir("/");
    let out = run(&mut command, LIMIT);
    let (text, err) = (stdout_of(&out), stderr_of(&out));
    let after = (
        listing(&d),
        std::fs::read_to_string(d.join("cgroup.subtree_control")).unwrap(),
    );
    let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
    let removed = std::fs::remove_dir(&d);
    // The shell gives up at the first fork refused (busybox sh: "can't
    // fork", on its own stderr): the container's code, not the tool's error.
    assert!(!err.contains("error:"), "{text}{err}");
    assert!(!err.contains("running without limits"), "{err}");
    assert!(
        !text.contains("forked")
            && format!("{text}{err}").contains("Resource temporarily unavailable"),
        "pids.max 10 stops the forks (EAGAIN): {text}{err}"
    );
    assert_eq!(before, after, "the delegated cgroup is as it was");
    assert_eq!(procs, "", "nothing left in the delegated cgroup");
    removed.unwrap_or_else(|e| panic!("rmdir {}: {e}", d.display()));
}

/// The hint for a refused user namespace names the settings that forbid
/// one, read from a root of the test's own (here a fake /proc/sys).
#[test]
fn forbidding_settings_names_each_setting_that_forbids() {
    let root = TempDir::new("ch11-fake-root");
    let put = |file: &str, value: &str| {
        let path = root.path().join(file.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, value).unwrap();
    };
    assert!(
        ch11_rootless::forbidding_settings(root.path()).is_empty(),
        "no files: nothing forbids"
    );
    put("/proc/sys/user/max_user_namespaces", "15000\n");
    put("/proc/sys/kernel/unprivileged_userns_clone", "1\n");
    assert!(ch11_rootless::forbidding_settings(root.path()).is_empty());
    put("/proc/sys/user/max_user_namespaces", "0\n");
    let named: Vec<String> = ch11_rootless::forbidding_settings(root.path())
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(named, ["/proc/sys/user/max_user_namespaces = 0"]);
    put("/proc/sys/kernel/unprivileged_userns_clone", "0\n");
    put(
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1\n",
    );
    assert_eq!(ch11_rootless::forbidding_settings(root.path()).len(), 3);
}

/// A real refusal, harmlessly: the tool runs as the user inside a user
/// namespace the test made (root's own id and the user's mapped to
/// themselves), whose max_user_namespaces is 0 (that setting is per user
/// namespace: the host's is untouched). The kernel refuses the clone, and
/// the error names the setting.
#[test]
fn a_forbidden_user_namespace_is_named_in_the_error() {
    let user = user();
    let host_max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap();
    let go = TempDir::new("ch11-forbid");
    let go_file = go.path().join("maps-written");
    let wait = format!(
        "i=0; while [ ! -e {} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
         exec sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"' sh \"$@\"",
        go_file.display()
    );
    let mut command = Command::new("unshare");
    command
        .args(["--user", "sh", "-c", &wait, "sh"])
        .args(user.setpriv_argv())
        .arg(BIN)
        .args(["--network", "none", "--map", "self", "--", "true"])
        .current_dir("/");
    let shell = spawn(&mut command);
    let pid = shell.id();
    // Wait for unshare to have made the namespace (it execs sh in it). That
    // sh has no capability (its exec came before any map: its uid was
    // nobody's there); the one it execs once the maps are written has all
    // of them in the namespace, root's.
    let start = Instant::now();
    while std::fs::read_link(format!("/proc/{pid}/ns/user")).ok()
        == std::fs::read_link("/proc/self/ns/user").ok()
    {
        assert!(start.elapsed() < LIMIT, "unshare --user did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (u, g) = (user.uid, user.gid);
    std::fs::write(
        format!("/proc/{pid}/uid_map"),
        format!("0 0 1\n{u} {u} 1\n"),
    )
    .unwrap();
    std::fs::write(
        format!("/proc/{pid}/gid_map"),
        format!("0 0 1\n{g} {g} 1\n"),
    )
    .unwrap();
    std::fs::write(&go_file, "").unwrap();
    let out = wait_output(shell, LIMIT);
    let err = stderr_of(&out);
    assert_eq!(exit_code(out.status), 1, "{err}");
    assert!(
        err.contains("the kernel refused a new user namespace"),
        "{err}"
    );
    assert!(
        err.contains("/proc/sys/user/max_user_namespaces = 0"),
        "the hint names the setting: {err}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap(),
        host_max,
        "the host's setting is untouched"
    );
}

/// `--read-only`: the root is the layers alone, read-only (EROFS on a
/// write, /proc and /dev still there, a --layer over the rootfs seen), and
/// no runs dir is made; --keep with it is bad usage.
#[test]
fn read_only_root_writes_nothing_and_makes_nothing() {
    let user = user();
    let layer = TempDir::new("ch11-ro-layer");
    std::fs::create_dir(layer.path().join("etc")).unwrap();
    std::fs::write(layer.path().join("etc/ws11-layer"), "from the layer\n").unwrap();
    let host = HostSnapshot::take();
    let out = as_user(
        &user,
        &[
            "--quiet",
            "--read-only",
            "--layer",
            layer.path().to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "cat /etc/ws11-layer; touch /made 2>&1; echo touch=$?; \
             awk '$5 == \"/\" {print \"root=\" $6}' /proc/self/mountinfo; \
             ls /proc/self/status /dev/null",
        ],
    );
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}{}", stderr_of(&out));
    assert!(
        text.contains("from the layer"),
        "the layer is in the root: {text}"
    );
    assert!(
        text.contains("Read-only file system") && text.contains("touch=1"),
        "a write to the root is refused with EROFS: {text}"
    );
    let root = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("root="))
        .unwrap_or_else(|| panic!("no root mount seen: {text}"));
    assert!(
        root.split(',').any(|o| o == "ro"),
        "/ is mounted read-only: {root}"
    );
    assert!(
        text.contains("/proc/self/status") && text.contains("/dev/null"),
        "{text}"
    );
    assert!(
        !user.rootless_runs_dir().exists(),
        "a read-only run makes no runs dir"
    );
    host.assert_unchanged("a read-only rootless run");
    // One lower, the rootfs alone: a bind of it, remounted read-only.
    let out = as_user(
        &user,
        &[
            "--quiet",
            "--read-only",
            "--",
            "sh",
            "-c",
            "d=/tmp/ws11-ro-$$; mkdir $d 2>&1 && rmdir $d; awk '$5 == \"/\" {print \"root=\" $6}' /proc/self/mountinfo",
        ],
    );
    let text = stdout_of(&out);
    assert!(
        text.contains("Read-only file system"),
        "EROFS on the bare rootfs: {text}"
    );
    let root = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("root="))
        .unwrap_or("");
    assert!(
        root.split(',').any(|o| o == "ro"),
        "/ remounted read-only: {text}"
    );
    let out = as_user(&user, &["--read-only", "--keep", "--", "true"]);
    assert_eq!(
        exit_code(out.status),
        2,
        "--keep has no upper to keep: {}",
        stderr_of(&out)
    );
}

/// As chapter 12's test: no descriptor of the student's shell (`exec 7<`)
/// and none of their environment crosses into the rootless container.
#[test]
fn no_descriptor_or_variable_of_the_student_crosses_in() {
    let user = user();
    let script = format!(
        "exec 7</etc; exec {BIN} --quiet --network none -- sh -c \
         'ls /proc/self/fd | tr \"\\n\" \" \"; echo; env'"
    );
    let out = run(
        user.command("/bin/sh")
            .env("WS11_SECRET_TOKEN", "hunter2")
            .args(["-c", &script]),
        LIMIT,
    );
    let text = stdout_of(&out);
    assert_eq!(
        text.lines().next().unwrap_or_default().trim(),
        "0 1 2 3",
        "only stdin, stdout, stderr (and ls's own): {text}{}",
        stderr_of(&out)
    );
    assert!(
        !text.contains("hunter2") && !text.contains(&user.name),
        "the student's environment leaked in: {text}"
    );
}
