//! The chapter contract, as tests: what every chapter binary promises (see
//! DESIGN.md, "The chapter contract"), checked by the same code for each, so
//! that a chapter's test file holds only the tests of its own lesson.
//!
//! ```text
//! workshop_testkit::contract! {
//!     bin: env!("CARGO_BIN_EXE_ch03-mount"),
//!     demo: [],
//!     fault_matrix: [],
//!     bad_input: [("--hostname", "bad_name")],
//!     without_root: ["--", "ps"],
//!     container_pid: [],
//! }
//! ```
//!
//! Every part but `bin` may be left out (a chapter whose runs need a network
//! sandbox, say, writes its own). `setup: EXPR,` right after `bin` is
//! evaluated first in each generated test and kept until it ends: a lock
//! guard, or the default rootfs built. The tests it generates, by part:
//! - `demo: [ARGS], says: [TEXT, ..],` (`says` optional):
//!   `the_demo_exits_0_and_leaves_the_host_as_it_was` ([`assert_demo_exits_0`])
//!   and `a_ctrl_c_during_the_demo_stops_it_at_the_next_step`
//!   ([`assert_ctrl_c_stops_the_demo_at_the_next_step`]);
//! - `fault_matrix: [OPTIONS],`: `fault_matrix` ([`crate::fault_matrix`]);
//! - `bad_input: [(OPTION, VALUE), ..],`, or `bad_input: let PATTERN = EXPR; [(OPTION, VALUE), ..],`
//!   when a value needs something made first (kept until the test ends):
//!   `bad_input_matrix` ([`crate::bad_input_matrix`]);
//! - `without_root: [ARGS],`: `without_root_it_says_which_capability_and_how`
//!   ([`assert_refuses_without_root`]);
//! - `container_pid: [OPTIONS],`: `the_run_mode_says_the_containers_host_pid_unless_quiet`
//!   ([`crate::container_pid::assert_says_the_container_pid`]).

use super::{chapter, exit_code, require_root, run, run_as_nobody, stderr_of, HostSnapshot};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long a demo may take (ch07's runs a CPU burner, a fork bomb and an OOM kill).
const DEMO_LIMIT: Duration = Duration::from_secs(60);

/// What starts every step header (`━━ 2 · make the mount tree private`).
const STEP: &str = "━━ ";

/// The demo, without a terminal (stdin empty): it exits 0, narrates on stderr
/// (its first step header at least, and each of `says`), in no colour since
/// NO_COLOR is set, and leaves the host as it was.
pub fn assert_demo_exits_0(bin: &str, args: &[&str], says: &[&str]) {
    require_root();
    let host = HostSnapshot::take();
    let out = run(chapter(bin).args(args), DEMO_LIMIT);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{bin} demo: {err}");
    assert!(
        err.contains(&format!("{STEP}1 · ")),
        "{bin}: the demo narrates on stderr:\n{err}"
    );
    for text in says {
        assert!(err.contains(text), "{bin}: the demo says {text:?}:\n{err}");
    }
    assert!(!err.contains('\u{1b}'), "NO_COLOR means no colour:\n{err}");
    host.assert_unchanged(&format!("{bin} demo"));
}

/// Run as user `nobody`, the tool refuses before doing anything: exit 1, an
/// `error:` naming the capability it needs, and a `hint:` saying how.
pub fn assert_refuses_without_root(bin: &str, args: &[&str]) {
    require_root();
    let out = run_as_nobody(bin, args);
    let err = stderr_of(&out);
    assert_eq!(exit_code(out.status), 1, "{bin} as nobody: {err}");
    assert!(
        err.contains("error:") && err.contains("CAP_SYS_ADMIN") && err.contains("hint:"),
        "{bin} as nobody: {err}"
    );
}

/// A Ctrl-C (SIGINT) that comes while the demo narrates, with no container
/// running to notice it, stops the demo at its next step (or at its end,
/// when it came in the last): exit 130 and a `stopped:` line, at most the
/// step being written finished, and the host as it was.
///
/// The moment is made, not hoped for: the demo's stderr is a pipe filled
/// beforehand but for the bytes the demo writes before its first step header
/// (learnt from a first run, stopped there), so the demo blocks in its first
/// write of step 1. SIGINT is sent then (the tool keeps it pending: it blocks
/// the termination signals), and the pipe drained.
pub fn assert_ctrl_c_stops_the_demo_at_the_next_step(bin: &str, args: &[&str]) {
    require_root();
    let host = HostSnapshot::take();
    let room = bytes_before_the_first_step(bin, args);

    // Close-on-exec: a program another test thread starts meanwhile must not
    // hold the write end open (the drain below waits for its EOF).
    let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    let capacity = fcntl(&writer, FcntlArg::F_GETPIPE_SZ).expect("F_GETPIPE_SZ") as usize;
    assert!(
        room < 4096 && room < capacity,
        "{bin}: {room} bytes before step 1"
    );
    let filler = vec![b'.'; capacity - room];
    let mut writer = std::fs::File::from(writer);
    writer.write_all(&filler).expect("fill the pipe");

    let mut command = chapter(bin);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(writer));
    let mut tool = command.spawn().expect("spawn the chapter");
    drop(command); // our copy of the pipe's write end: EOF comes with the tool
    super::note_started(tool.id());

    // Blocked in write(2, ...): /proc/PID/syscall names the call and its
    // first argument while the process sleeps in it.
    let blocked = format!("{} 0x2 ", nix::libc::SYS_write);
    let start = Instant::now();
    loop {
        let syscall = std::fs::read_to_string(format!("/proc/{}/syscall", tool.id()));
        if syscall.is_ok_and(|s| s.starts_with(&blocked)) {
            break;
        }
        if tool.try_wait().expect("try_wait").is_some() || start.elapsed() > DEMO_LIMIT {
            let _ = tool.kill();
            let _ = tool.wait();
            panic!("{bin}: the demo never blocked on its stderr ({room} bytes of room)");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    kill(Pid::from_raw(tool.id() as i32), Signal::SIGINT).expect("SIGINT the tool");

    let mut written = Vec::new();
    std::fs::File::from(reader)
        .read_to_end(&mut written)
        .expect("drain the tool's stderr");
    let status = tool.wait().expect("wait for the tool");
    let written = &written[filler.len()..];
    let (before, after) = written.split_at(room.min(written.len()));
    let (before, after) = (
        String::from_utf8_lossy(before),
        String::from_utf8_lossy(after),
    );
    let narration = String::from_utf8_lossy(written);

    assert_eq!(
        exit_code(status),
        130,
        "{bin}: the demo did not stop on SIGINT:\n{narration}"
    );
    assert!(
        narration
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("stopped: SIGINT")),
        "{bin}: the last line says it stopped:\n{narration}"
    );
    assert!(
        !before.contains(STEP) && after.matches(STEP).count() <= 1,
        "{bin}: SIGINT came in step 1; it should have stopped by the next step:\n{narration}"
    );
    host.assert_unchanged(&format!("{bin} demo after SIGINT"));
}

/// How many bytes the demo writes on stderr before its first step header's
/// blank line: read from a run stopped (SIGTERM) as soon as the header shows.
fn bytes_before_the_first_step(bin: &str, args: &[&str]) -> usize {
    let mut command = chapter(bin);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut tool = command.spawn().expect("spawn the chapter");
    super::note_started(tool.id());
    let mut stderr = tool.stderr.take().expect("the tool's stderr");
    let header = format!("\n{STEP}1 · ");
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let found = loop {
        if let Some(at) = find(&seen, header.as_bytes()) {
            break Some(at);
        }
        match stderr.read(&mut chunk) {
            Ok(0) | Err(_) => break None,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
        }
    };
    let _ = kill(Pid::from_raw(tool.id() as i32), Signal::SIGTERM);
    let _ = std::io::copy(&mut stderr, &mut std::io::sink());
    let _ = tool.wait();
    found.unwrap_or_else(|| {
        panic!(
            "{bin}: no step header in the demo's narration:\n{}",
            String::from_utf8_lossy(&seen)
        )
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One test per part of the chapter contract; see the [module](self) for the parts.
#[macro_export]
macro_rules! contract {
    (bin: $bin:expr, setup: $setup:expr, $($parts:tt)*) => {
        $crate::contract!(@part [$bin] [$setup] $($parts)*);
    };
    (bin: $bin:expr, $($parts:tt)*) => {
        $crate::contract!(@part [$bin] [] $($parts)*);
    };

    (@part [$bin:expr] [$($setup:expr)?]) => {};
    (@part [$bin:expr] [$($setup:expr)?] demo: [$($arg:expr),* $(,)?], says: [$($says:expr),* $(,)?], $($rest:tt)*) => {
        /// The demo, without a terminal: exit 0, narration on stderr, no colour, nothing left.
        #[test]
        fn the_demo_exits_0_and_leaves_the_host_as_it_was() {
            $(let _setup = $setup;)?
            $crate::contract::assert_demo_exits_0($bin, &[$($arg),*], &[$($says),*]);
        }

        /// A Ctrl-C while the demo narrates stops it at its next step (or its end), exit 130.
        #[test]
        fn a_ctrl_c_during_the_demo_stops_it_at_the_next_step() {
            $(let _setup = $setup;)?
            $crate::contract::assert_ctrl_c_stops_the_demo_at_the_next_step($bin, &[$($arg),*]);
        }

        $crate::contract!(@part [$bin] [$($setup)?] $($rest)*);
    };
    (@part [$bin:expr] [$($setup:expr)?] demo: [$($arg:expr),* $(,)?], $($rest:tt)*) => {
        $crate::contract!(@part [$bin] [$($setup)?] demo: [$($arg),*], says: [], $($rest)*);
    };
    (@part [$bin:expr] [$($setup:expr)?] fault_matrix: [$($option:expr),* $(,)?], $($rest:tt)*) => {
        /// Exit 0, exit non-zero, SIGINT, SIGTERM, SIGKILL then a new run: the host is as it was.
        #[test]
        fn fault_matrix() {
            $(let _setup = $setup;)?
            $crate::fault_matrix($bin, &[$($option),*]);
        }

        $crate::contract!(@part [$bin] [$($setup)?] $($rest)*);
    };
    (@part [$bin:expr] [$($setup:expr)?] bad_input: [$($case:expr),* $(,)?], $($rest:tt)*) => {
        /// Every option with bad values: exit 1 or 2, an error naming both, nothing left.
        #[test]
        fn bad_input_matrix() {
            $(let _setup = $setup;)?
            $crate::bad_input_matrix($bin, &[$($case),*]);
        }

        $crate::contract!(@part [$bin] [$($setup)?] $($rest)*);
    };
    (@part [$bin:expr] [$($setup:expr)?] bad_input: let $made:pat = $init:expr; [$($case:expr),* $(,)?], $($rest:tt)*) => {
        /// Every option with bad values: exit 1 or 2, an error naming both, nothing left.
        #[test]
        fn bad_input_matrix() {
            $(let _setup = $setup;)?
            let $made = $init;
            $crate::bad_input_matrix($bin, &[$($case),*]);
        }

        $crate::contract!(@part [$bin] [$($setup)?] $($rest)*);
    };
    (@part [$bin:expr] [$($setup:expr)?] without_root: [$($arg:expr),* $(,)?], $($rest:tt)*) => {
        /// As a user who forgot sudo: exit 1, the capability named, and how to get it.
        #[test]
        fn without_root_it_says_which_capability_and_how() {
            $(let _setup = $setup;)?
            $crate::contract::assert_refuses_without_root($bin, &[$($arg),*]);
        }

        $crate::contract!(@part [$bin] [$($setup)?] $($rest)*);
    };
    (@part [$bin:expr] [$($setup:expr)?] container_pid: [$($option:expr),* $(,)?], $($rest:tt)*) => {
        /// The run mode names the container's PID on the host (and inside), so
        /// that the book's `kill` and `/proc/PID` commands reach our own container.
        #[test]
        fn the_run_mode_says_the_containers_host_pid_unless_quiet() {
            $(let _setup = $setup;)?
            $crate::container_pid::assert_says_the_container_pid($bin, &[$($option),*]);
        }

        $crate::contract!(@part [$bin] [$($setup)?] $($rest)*);
    };
}
