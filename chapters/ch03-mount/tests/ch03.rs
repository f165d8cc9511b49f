//! Chapter 3, checked against the kernel: the container's own /proc, a private
//! mount tree, and the host's mount table byte-identical afterwards, whatever
//! way the run ends.

use std::time::Duration;
use workshop_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch03-mount");
const LIMIT: Duration = Duration::from_secs(20);

workshop_testkit::contract! {
    bin: BIN,
    network: host,
    demo: [],
    fault_matrix: [],
    bad_input: [],
    without_root: ["--", "ps"],
    container_pid: [],
}

fn ch03(args: &[&str]) -> std::process::Output {
    require_root();
    run(chapter(BIN).args(args), LIMIT)
}

#[test]
fn ps_lists_only_the_container_with_pid_1_first() {
    let host = HostSnapshot::take();
    let out = ch03(&["--", "ps", "-e", "-o", "pid=,comm="]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows: Vec<String> = stdout_of(&out)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    assert!(!rows.is_empty() && rows.len() <= 3, "{rows:?}");
    assert_eq!(rows[0], "1 ps", "{rows:?}");
    host.assert_unchanged("ch03 -- ps -e");
}

#[test]
fn proc_1_is_the_containers_own_pid_1() {
    let out = ch03(&["--quiet", "cat", "/proc/1/cmdline"]);
    assert_eq!(stdout_of(&out), "cat\0/proc/1/cmdline\0");
}

#[test]
fn no_mount_inside_is_shared_with_the_host() {
    let out = ch03(&["--quiet", "cat", "/proc/self/mountinfo"]);
    let mountinfo = stdout_of(&out);
    assert!(mountinfo.contains(" /proc "), "a proc mount on /proc");
    for line in mountinfo.lines() {
        assert!(
            !line.contains(" shared:"),
            "still shared with the host: {line}"
        );
    }
}

#[test]
fn host_mounts_unchanged_when_the_container_fails() {
    let host = HostSnapshot::take();
    assert_eq!(exit_code(ch03(&["sh", "-c", "exit 3"]).status), 3);
    assert_eq!(exit_code(ch03(&["no-such-command-here"]).status), 127);
    host.assert_unchanged("ch03 failing container");
}
/// Most students' hosts run systemd, which makes / shared; this machine's may
/// not. Recreate that host in a sandbox: a mount namespace of the test's own
/// whose mounts are all shared. There, the chapter must still leave the
/// sandbox's mount table byte-identical and see no shared mount inside.
#[test]
fn on_a_shared_root_nothing_propagates_back() {
    require_root();
    let dir = std::env::temp_dir().join(format!("ch03-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "cat /proc/self/mountinfo > {d}/before && {BIN} --quiet -- cat /proc/self/mountinfo > {d}/inside \
         && cat /proc/self/mountinfo > {d}/after",
        d = dir.display()
    );
    let out = run_in_shared_sandbox(&script, LIMIT);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let (before, inside, after) = (read("before"), read("inside"), read("after"));
    std::fs::remove_dir_all(&dir).unwrap();

    assert!(
        before.lines().any(|l| l.contains(" shared:")),
        "the sandbox should have shared mounts:\n{before}"
    );
    assert!(
        !inside.lines().any(|l| l.contains(" shared:")),
        "the container kept a shared mount:\n{inside}"
    );
    assert_eq!(
        before, after,
        "a mount made in the container propagated back to the (sandboxed) host"
    );
}

/// `--shell` on a real terminal (a pty from `script`): the shell is PID 1 with
/// a prompt that names the chapter, job control works (no "Cannot set tty
/// process group"), and its exit code comes back.
#[test]
fn shell_on_a_terminal_is_pid_1_and_returns_its_exit_code() {
    require_root();
    let mut child = std::process::Command::new("script")
        .args(["-qec", &format!("{BIN} --shell"), "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    // Type only once the prompt is there, as a person does. (Typed ahead, the
    // terminal echoed the lines before the prompt or after it, depending on
    // how fast the shell came up: the output's order was left to chance.)
    use std::io::{Read, Write};
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut chunk) {
            if tx.send(chunk[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let start = std::time::Instant::now();
    while !String::from_utf8_lossy(&seen).contains("[ch03-mount] # ") {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) if start.elapsed() < LIMIT => {}
            Err(_) => panic!("no prompt: {}", String::from_utf8_lossy(&seen)),
        }
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo pid=$$\nexit 3\n")
        .unwrap();
    let out = wait_output(child, LIMIT);
    reader.join().unwrap();
    seen.extend(rx.try_iter().flatten());
    let text = String::from_utf8_lossy(&seen).replace('\r', "");
    // The prompt names the chapter; the shell's answer is a line of its own.
    assert!(text.contains("[ch03-mount] # "), "{text}");
    assert!(text.lines().any(|l| l == "pid=1"), "{text}");
    assert!(!text.contains("Cannot set tty process group"), "{text}");
    assert_eq!(exit_code(out.status), 3, "{text}");
}

#[test]
fn shell_without_a_terminal_reads_its_commands_from_stdin() {
    require_root();
    let mut child = chapter(BIN)
        .args(["--quiet", "--shell"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo $$; ps -e -o pid= | wc -l; exit 4\n")
        .unwrap();
    let out = wait_output(child, LIMIT);
    assert_eq!(
        stdout_of(&out).split_whitespace().collect::<Vec<_>>(),
        ["1", "3"],
        "PID 1; sh, ps and wc"
    );
    assert_eq!(exit_code(out.status), 4);
}
