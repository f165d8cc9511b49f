//! Chapter 8, checked against the kernel: the container's root is an overlay
//! whose base is never written (a checksum of the whole base before and
//! after a container that writes, deletes and renames), its upper goes with
//! the run (or stays, with --keep), the first --layer is the top, and the
//! layers of a killed run are reclaimed by the next.

use std::path::{Path, PathBuf};
use std::time::Duration;
use workshop_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch08-overlay");
const LIMIT: Duration = Duration::from_secs(60);

workshop_testkit::contract! {
    bin: BIN,
    setup: workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs"),
    network: host,
    demo: [],
    fault_matrix: ["--network", "none", "--pids-limit", "50"],
    bad_input: let layers = bad_layers(); [
        ("--rootfs", "/nonexistent/rootfs"),
        ("--layer", "/nonexistent/layer"),
        ("--layer", layers.file.as_str()),
        ("--layer", layers.colon.as_str()),
        ("--layer", layers.comma.as_str()),
        // ch07's options, which ch08 has too.
        ("--cpus", "0"),
        ("--pids-limit", "0"),
        ("--memory", "lots"),
        ("--hostname", "bad_name"),
        ("--network", "bridge"),
    ],
    without_root: ["--network", "none", "--", "true"],
    container_pid: ["--network", "none"],
}

/// Paths `--layer` must refuse: a file, and directories whose names hold
/// the overlay options' separators. Removed when dropped.
struct BadLayers {
    _dir: TempDir,
    file: String,
    colon: String,
    comma: String,
}

fn bad_layers() -> BadLayers {
    let dir = TempDir::new("ch08-bad-layers");
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let (colon, comma) = (dir.path().join("a:b"), dir.path().join("a,b"));
    std::fs::create_dir(&colon).unwrap();
    std::fs::create_dir(&comma).unwrap();
    let text = |p: &Path| p.to_str().unwrap().to_owned();
    BadLayers {
        file: text(&file),
        colon: text(&colon),
        comma: text(&comma),
        _dir: dir,
    }
}

/// ch08 as these tests run it: lo only (a veth is laid only in a namespace
/// a test made), no narration.
fn ch08(args: &[&str]) -> std::process::Output {
    let out = run(chapter(BIN).args(["--network", "none"]).args(args), LIMIT);
    assert!(
        out.status.success(),
        "ch08 {args:?}: {}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    out
}

/// The layers directory of the run whose tool had `pid`.
fn run_dir(pid: u32) -> PathBuf {
    Path::new(ch08_overlay::RUNS_DIR).join(pid.to_string())
}

/// The base is never written: a container that writes, appends, deletes,
/// renames, chmods, replaces a directory and makes new ones leaves a
/// checksum of the whole base as it was; it saw its own changes while it
/// ran, and its upper is gone after it exits.
#[test]
fn a_container_that_writes_deletes_and_renames_leaves_the_base_unchanged() {
    require_root();
    let base = rootfs_copy("ch08-base");
    let before = tree_checksum(base.path());
    let script = "echo '# ch08' >> /etc/passwd && rm /etc/group && mv /etc/hosts /etc/hosts.old \
                  && chmod 600 /etc/nsswitch.conf && rm -rf /root && mkdir /root && echo hi > /root/x \
                  && mkdir -p /srv/a && echo new > /srv/a/b && rm /bin/cat && touch /tmp/t \
                  && ln -s /srv /link && ls /etc && echo done";
    let tool = spawn(
        chapter(BIN)
            .args(["--network", "none", "--quiet", "--rootfs"])
            .arg(base.path())
            .args(["--", "sh", "-c", script]),
    );
    let pid = tool.id();
    let out = wait_output(tool, LIMIT);
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}{}", stderr_of(&out));
    assert!(text.ends_with("done\n"), "{text}");
    assert!(
        text.contains("hosts.old") && !text.contains("group"),
        "the container saw its own changes: {text}"
    );
    let after = tree_checksum(base.path());
    let changed: std::collections::BTreeSet<_> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(changed.is_empty(), "the base was written: {changed:?}");
    assert!(
        !run_dir(pid).exists(),
        "the upper is left: {:?}",
        run_dir(pid)
    );
}

/// --keep keeps the upper, says where, and it holds what the container did:
/// the new file, and a whiteout for the deleted one.
#[test]
fn keep_keeps_the_upper_with_the_changes() {
    require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    let tool = spawn(chapter(BIN).args([
        "--network",
        "none",
        "--keep",
        "--",
        "sh",
        "-c",
        "echo kept > /kept && rm /etc/group",
    ]));
    let pid = tool.id();
    let out = wait_output(tool, LIMIT);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let dir = run_dir(pid);
    let upper = dir.join("diff");
    let kept = std::fs::read_to_string(upper.join("kept"));
    let group = std::fs::symlink_metadata(upper.join("etc/group"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        stderr_of(&out).contains(&upper.display().to_string()),
        "the tool says where: {}",
        stderr_of(&out)
    );
    assert_eq!(kept.unwrap(), "kept\n");
    assert!(ch08_overlay::is_whiteout(&group.unwrap()));
}

/// The first --layer is the top: a name in it hides the same name in the
/// layers below, and in the rootfs.
#[test]
fn the_first_layer_is_the_top() {
    require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    let (top, below) = (TempDir::new("ch08-top"), TempDir::new("ch08-below"));
    for (layer, text) in [(&top, "top"), (&below, "below")] {
        std::fs::create_dir(layer.path().join("etc")).unwrap();
        std::fs::write(layer.path().join("etc/hosts"), text).unwrap();
        std::fs::write(layer.path().join(text), text).unwrap();
    }
    let top_arg = top.path().to_str().unwrap();
    let below_arg = below.path().to_str().unwrap();
    let out = ch08(&[
        "--quiet",
        "--layer",
        top_arg,
        "--layer",
        below_arg,
        "--",
        "sh",
        "-c",
        "cat /etc/hosts; echo; ls /top /below /etc/passwd",
    ]);
    let text = stdout_of(&out);
    assert!(text.starts_with("top\n"), "{text}");
    assert!(
        text.contains("/top") && text.contains("/below") && text.contains("/etc/passwd"),
        "every layer shows through where no layer above hides it: {text}"
    );
    let out = ch08(&[
        "--quiet",
        "--layer",
        below_arg,
        "--layer",
        top_arg,
        "--",
        "cat",
        "/etc/hosts",
    ]);
    assert_eq!(stdout_of(&out), "below");
}

/// A run killed with SIGKILL cannot remove its layers: the next run does.
#[test]
fn the_layers_of_a_killed_run_are_reclaimed_by_the_next() {
    require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    let (exit, container) = signal_mid_run(
        BIN,
        &["--network", "none", "--quiet", "--", "sleep", "30"],
        "sleep",
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(exit, 137);
    assert!(wait_until_gone(container, LIMIT));
    // Its directory may already be gone: a run of another test reclaims it
    // too. After a run of ours it must be.
    let killed_runs: Vec<PathBuf> = std::fs::read_dir(ch08_overlay::RUNS_DIR)
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|d| {
            let pid = d
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u32>().ok());
            pid.is_some_and(|p| !is_alive(p)) && !d.join(ch08_overlay::KEPT_MARK).exists()
        })
        .collect();
    ch08(&["--quiet", "--", "true"]);
    for dir in killed_runs {
        assert!(!dir.exists(), "{} is left", dir.display());
    }
}

/// The fault matrix looks at mounts, links and cgroups; this looks at the
/// layers: after a SIGINT or SIGTERM mid-run (the tool ends its container
/// and cleans up), the run's directory is gone.
#[test]
fn a_signalled_run_removes_its_layers() {
    require_root();
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let tool = spawn(chapter(BIN).args(["--network", "none", "--quiet", "--", "sleep", "30"]));
        let pid = tool.id();
        let container = wait_for_container(pid, "sleep", LIMIT);
        assert!(run_dir(pid).join("diff").is_dir(), "the run has its upper");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
        let out = wait_output(tool, LIMIT);
        assert_eq!(
            exit_code(out.status),
            128 + signal as i32,
            "{}",
            stderr_of(&out)
        );
        assert!(wait_until_gone(container, LIMIT));
        assert!(!run_dir(pid).exists(), "{signal:?} left {:?}", run_dir(pid));
    }
}
