//! The cargo runner (.cargo/run-as-root): direct as root, sudo otherwise, and
//! a clear message when sudo is missing.

use std::os::unix::process::CommandExt;
use std::process::Command;

fn runner() -> String {
    format!("{}/../.cargo/run-as-root", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn as_root_it_runs_the_program_directly() {
    workshop_testkit::require_root();
    let out = Command::new(runner())
        .args(["/bin/echo", "hi"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert!(out.stderr.is_empty(), "no note when no sudo is needed");
}

#[test]
fn without_root_or_sudo_it_says_what_to_do() {
    workshop_testkit::require_root();
    // A PATH with the basics but no sudo, whatever this machine has installed.
    let bin = std::env::temp_dir().join(format!("runner-path-{}", std::process::id()));
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["id", "basename"] {
        let _ = std::os::unix::fs::symlink(format!("/usr/bin/{tool}"), bin.join(tool));
    }
    let out = Command::new("/bin/sh")
        .arg(runner())
        .args(["/work/target/debug/ch01-clone", "--", "true"])
        .env("PATH", &bin)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&bin).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: ch01-clone needs root")
            && err.contains("sudo is not installed")
            && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn help_needs_no_root_and_no_sudo() {
    workshop_testkit::require_root();
    // As a student without sudo: --help is run directly, not refused.
    let out = Command::new("/bin/sh")
        .arg(runner())
        .args(["/bin/sh", "-c", "echo ran as $(/usr/bin/id -u)", "--help"])
        .env("PATH", "/nonexistent")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ran as 65534\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn xtask_is_never_elevated() {
    // xtask writes under target/: it runs as whoever called cargo, root or not.
    let dir = std::env::temp_dir().join(format!("runner-xtask-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let xtask = dir.join("xtask");
    std::fs::write(&xtask, "#!/bin/sh\nid -u\n").unwrap();
    std::fs::set_permissions(&xtask, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new("/bin/sh")
        .arg(runner())
        .arg(&xtask)
        .env("PATH", "/nonexistent:/usr/bin:/bin")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        nix::unistd::geteuid().to_string(),
        "xtask runs as the caller"
    );
}

/// A stand-in for the chapter binary `name`, which prints the uid it runs as.
fn fake_chapter(name: &str, test: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("runner-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bin = dir.join(name);
    std::fs::write(&bin, "#!/bin/sh\n/usr/bin/id -u\n").unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (dir, bin)
}

#[test]
fn the_rootless_chapter_runs_as_the_student_without_sudo() {
    workshop_testkit::require_root();
    let (dir, bin) = fake_chapter("ch11-rootless", "student");
    // A PATH with no sudo: had the runner asked for one, this would fail.
    let out = Command::new("/bin/sh")
        .arg(runner())
        .arg(&bin)
        .args(["--", "true"])
        .env("PATH", "/nonexistent:/usr/bin:/bin")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "65534\n", "{err}");
    assert!(err.is_empty(), "no note for the student: {err}");
}

#[test]
fn the_rootless_chapter_as_root_says_root_is_root() {
    workshop_testkit::require_root();
    let (dir, bin) = fake_chapter("ch11-rootless", "root");
    let run = |args: &[&str]| {
        Command::new("/bin/sh")
            .arg(runner())
            .arg(&bin)
            .args(args)
            .output()
            .unwrap()
    };
    let (loud, quiet) = (run(&["--", "true"]), run(&["--quiet", "--", "true"]));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(String::from_utf8_lossy(&loud.stdout), "0\n");
    let note = String::from_utf8_lossy(&loud.stderr);
    assert!(
        note.contains("note: ch11-rootless is running as root"),
        "{note}"
    );
    assert!(quiet.stderr.is_empty(), "--quiet: no note");
}
