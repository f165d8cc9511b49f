//! The run mode says the container's host PID, so that a student kills their
//! own container and not the newest `sleep` of the machine: a line on stderr,
//! `container: PID 48213 on the host, 1 inside`, and none with `--quiet`.

use super::net_sandbox::NetSandbox;
use super::{chapter, children_of, exit_code, nspid, require_root, run, stderr_of};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

/// Start `bin OPTIONS -- sleep 10` (in a network namespace of the test's own,
/// for the chapters that make a veth), read the `container:` line it prints,
/// and check it against the kernel while the container runs: the PID is a
/// child of the tool, and its `NSpid` is the two numbers the line gives.
/// Then `--quiet` must print no such line.
pub fn assert_says_the_container_pid(bin: &str, options: &[&str]) {
    require_root();
    let sandbox = NetSandbox::new();
    let mut command = chapter(bin);
    command
        .args(options)
        .args(["--", "sleep", "10"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    sandbox.enter_on_exec(&mut command);
    let mut tool = command.spawn().expect("spawn the chapter");
    let stderr = tool.stderr.take().expect("the tool's stderr");
    let mut said = None;
    let mut before = Vec::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.expect("read the tool's stderr");
        if line.starts_with("container:") {
            said = Some(line);
            break;
        }
        before.push(line);
    }
    // The container, as the kernel knows it, while it runs.
    let children = children_of(tool.id());
    let status = children
        .first()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .unwrap_or_default();
    let kernel = nspid(&status);
    let _ = kill(Pid::from_raw(tool.id() as i32), Signal::SIGTERM); // our child: it stops its container
    let _ = tool.wait();

    let said = said.unwrap_or_else(|| {
        panic!(
            "{bin} -- sleep 10: no `container:` line on stderr, which said:\n{}",
            before.join("\n")
        )
    });
    assert_eq!(
        children.len(),
        1,
        "{bin}: the tool's children: {children:?}"
    );
    assert!(
        kernel.len() >= 2,
        "{bin}: the container is not in a PID namespace of its own: NSpid {kernel:?}"
    );
    assert_eq!(
        said,
        format!(
            "container: PID {} on the host, {} inside",
            kernel[0],
            kernel[kernel.len() - 1]
        ),
        "{bin}: the line against the kernel's NSpid {kernel:?}"
    );

    let mut quiet = chapter(bin);
    quiet.args(options).args(["--quiet", "--", "true"]);
    sandbox.enter_on_exec(&mut quiet);
    let out = run(&mut quiet, Duration::from_secs(60));
    assert_eq!(
        exit_code(out.status),
        0,
        "{bin} --quiet: {}",
        stderr_of(&out)
    );
    assert!(
        !stderr_of(&out).contains("container:"),
        "{bin} --quiet printed the container's PID:\n{}",
        stderr_of(&out)
    );
}
