//! The chapter contract, as tests: what every chapter binary promises (see
//! DESIGN.md, "The chapter contract"), checked by the same code for each, so
//! that a chapter's test file holds only the tests of its own lesson.
//!
//! ```text
//! workshop_testkit::contract! {
//!     bin: env!("CARGO_BIN_EXE_ch05-uts"),
//!     setup: workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs"),
//!     network: host,
//!     demo: [],
//!     fault_matrix: [],
//!     bad_input: [("--hostname", "bad_name"), ("--rootfs", "/")],
//!     without_root: ["--", "true"],
//!     container_pid: [],
//! }
//! ```
//!
//! Every part is required, in this order: one left out does not compile. A
//! chapter that checks a part in a test of its own says so, and why, in
//! place of the part: `fault_matrix: elsewhere("in the sandbox, with its
//! links and routes compared: see fault_matrix"),` (a non-empty reason;
//! nothing is generated for it). `setup: EXPR,` right after `bin` is the one
//! optional line: evaluated first in each generated test and kept until it
//! ends (a lock guard, or the default rootfs built).
//!
//! `network:` says where the demo and the Ctrl-C test run the chapter:
//! `host` (the test's own network namespace, whose links the host snapshot
//! compares) for a chapter that lays no cable, `sandbox` (a network namespace
//! the test makes, see [`NetSandbox`]) for one that lays a veth, so that both
//! its ends are there and no packet leaves. The fault and bad-input matrices
//! run on the host only: with `network: sandbox` they must be `elsewhere`,
//! else it does not compile. (The container-PID check always makes a sandbox.)
//!
//! The tests it generates, by part:
//! - `demo: [ARGS], says: [TEXT, ..],` (`says` optional):
//!   `the_demo_exits_0_and_leaves_the_host_as_it_was` ([`assert_demo_exits_0`])
//!   and `a_ctrl_c_during_the_demo_stops_it_at_the_next_step`
//!   ([`assert_ctrl_c_stops_the_demo_at_the_next_step`]);
//! - `fault_matrix: [OPTIONS],`: `fault_matrix` ([`crate::fault_matrix`]);
//! - `bad_input: [(OPTION, VALUE), ..],`, or `bad_input: let PATTERN = EXPR; [(OPTION, VALUE), ..],`
//!   when a value needs something made first: `bad_input_matrix`
//!   ([`crate::bad_input_matrix`]). The macro keeps EXPR's value whole until
//!   the test ends and matches PATTERN against a reference to it, so a part
//!   the pattern does not bind (`let (_, path) = ...`) is not dropped early;
//!   the names it binds are references (`path.as_str()` works as before);
//! - `without_root: [ARGS],`: `without_root_it_says_which_capability_and_how`
//!   ([`assert_refuses_without_root`]);
//! - `container_pid: [OPTIONS],`: `the_run_mode_says_the_containers_host_pid_unless_quiet`
//!   ([`crate::container_pid::assert_says_the_container_pid`]).

use super::net_sandbox::NetSandbox;
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

/// Which network namespace the demo and the Ctrl-C test run the chapter in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The test's own (the host's): for a chapter that lays no cable, so that
    /// a link it left would show in the host snapshot.
    Host,
    /// A network namespace the test makes for the run ([`NetSandbox`]): for a
    /// chapter that lays a veth, whose two ends must never be on the host.
    Sandbox,
}

impl Network {
    /// A sandbox made for this run when asked for one; dropping it (and the
    /// run ending) lets the kernel remove the namespace and what is in it.
    fn sandbox(self) -> Option<NetSandbox> {
        (self == Network::Sandbox).then(NetSandbox::new)
    }
}

/// The chapter binary (see [`chapter`]), started in `sandbox` if there is one.
fn chapter_in(bin: &str, sandbox: Option<&NetSandbox>) -> std::process::Command {
    let mut command = chapter(bin);
    if let Some(sandbox) = sandbox {
        sandbox.enter_on_exec(&mut command);
    }
    command
}

/// The demo, without a terminal (stdin empty): it exits 0, narrates on stderr
/// (its first step header at least, and each of `says`), in no colour since
/// NO_COLOR is set, and leaves the host as it was.
pub fn assert_demo_exits_0(bin: &str, network: Network, args: &[&str], says: &[&str]) {
    require_root();
    let sandbox = network.sandbox();
    let host = HostSnapshot::take();
    let out = run(chapter_in(bin, sandbox.as_ref()).args(args), DEMO_LIMIT);
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
/// running to notice it, stops the demo at its next step: exit 130 and a
/// `stopped:` line, and the host as it was. Here it comes as the demo writes
/// the last byte of its title, so the next step is step 1, whose header
/// `━━ 1 · ` must never be written. What stops it there is
/// [`Narrator::step`](workshop::narrate::Narrator::step)'s own look at the
/// pending signals, or, in a demo that runs a container between its title and
/// step 1 (ch03's), the wait for that container, which notices it first.
///
/// The moment is made, not hoped for: the demo's stderr is a pipe filled
/// beforehand but for one byte less than the demo writes before its first step
/// header's blank line (learnt from a first run, stopped there), so the demo
/// blocks in the write of that last byte, before it calls `say.step(..)`.
/// SIGINT is sent then (the tool keeps it pending: it blocks the termination
/// signals), and the pipe drained.
pub fn assert_ctrl_c_stops_the_demo_at_the_next_step(bin: &str, network: Network, args: &[&str]) {
    require_root();
    let sandbox = network.sandbox();
    let host = HostSnapshot::take();
    let before_step_1 = bytes_before_the_first_step(chapter_in(bin, sandbox.as_ref()), bin, args);
    assert!(
        before_step_1 > 0,
        "{bin}: the demo writes its title before step 1"
    );
    let room = before_step_1 - 1;

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

    let mut command = chapter_in(bin, sandbox.as_ref());
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
    let narration = String::from_utf8_lossy(&written[filler.len()..]);

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
        !narration.contains(STEP),
        "{bin}: SIGINT came before step 1; the demo should have stopped there:\n{narration}"
    );
    host.assert_unchanged(&format!("{bin} demo after SIGINT"));
}

/// How many bytes the demo writes on stderr before its first step header's
/// blank line: read from a run (`command`, the chapter) stopped (SIGTERM) as
/// soon as the header shows.
fn bytes_before_the_first_step(
    mut command: std::process::Command,
    bin: &str,
    args: &[&str],
) -> usize {
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

/// One test per part of the chapter contract; see the [module](self) for the
/// parts. Every part is required, in order; `elsewhere("why")` in place of one
/// says that the chapter checks it in a test of its own.
#[macro_export]
macro_rules! contract {
    // The head: `bin`, the optional `setup`, and `network`.
    (bin: $bin:expr, $(setup: $setup:expr,)? network: host, $($parts:tt)*) => {
        $crate::contract!(@demo [$bin] [$($setup)?] [Host] $($parts)*);
    };
    (bin: $bin:expr, $(setup: $setup:expr,)? network: sandbox, $($parts:tt)*) => {
        $crate::contract!(@demo [$bin] [$($setup)?] [Sandbox] $($parts)*);
    };
    (bin: $bin:expr, $(setup: $setup:expr,)? $($parts:tt)*) => {
        compile_error!(
            "contract!: after `bin:` (and `setup:`, if any) comes `network: host,` (the chapter \
             lays no cable) or `network: sandbox,` (it lays a veth: its runs go in a network \
             namespace the test makes)"
        );
    };

    // A part checked elsewhere: a reason, and nothing generated.
    (@elsewhere $why:literal) => {
        const _: () = assert!(
            !$why.is_empty(),
            "contract!: elsewhere(..) says where and why"
        );
    };

    (@demo [$bin:expr] [$($setup:expr)?] [$net:ident] demo: elsewhere($why:literal), $($rest:tt)*) => {
        $crate::contract!(@elsewhere $why);
        $crate::contract!(@fault_matrix [$bin] [$($setup)?] [$net] $($rest)*);
    };
    (@demo [$bin:expr] [$($setup:expr)?] [$net:ident] demo: [$($arg:expr),* $(,)?], says: [$($says:expr),* $(,)?], $($rest:tt)*) => {
        /// The demo, without a terminal: exit 0, narration on stderr, no colour, nothing left.
        #[test]
        fn the_demo_exits_0_and_leaves_the_host_as_it_was() {
            $(let _setup = $setup;)?
            $crate::contract::assert_demo_exits_0(
                $bin,
                $crate::contract::Network::$net,
                &[$($arg),*],
                &[$($says),*],
            );
        }

        /// A Ctrl-C while the demo narrates stops it at its next step (or its end), exit 130.
        #[test]
        fn a_ctrl_c_during_the_demo_stops_it_at_the_next_step() {
            $(let _setup = $setup;)?
            $crate::contract::assert_ctrl_c_stops_the_demo_at_the_next_step(
                $bin,
                $crate::contract::Network::$net,
                &[$($arg),*],
            );
        }

        $crate::contract!(@fault_matrix [$bin] [$($setup)?] [$net] $($rest)*);
    };
    (@demo [$bin:expr] [$($setup:expr)?] [$net:ident] demo: [$($arg:expr),* $(,)?], $($rest:tt)*) => {
        $crate::contract!(@demo [$bin] [$($setup)?] [$net] demo: [$($arg),*], says: [], $($rest)*);
    };
    (@demo [$($context:tt)*] $($rest:tt)*) => {
        compile_error!(
            "contract!: `demo: [ARGS],` (with `says: [TEXT, ..],` if you like) or \
             `demo: elsewhere(\"where and why\"),` comes after `network:`"
        );
    };

    (@fault_matrix [$bin:expr] [$($setup:expr)?] [$net:ident] fault_matrix: elsewhere($why:literal), $($rest:tt)*) => {
        $crate::contract!(@elsewhere $why);
        $crate::contract!(@bad_input [$bin] [$($setup)?] [$net] $($rest)*);
    };
    (@fault_matrix [$bin:expr] [$($setup:expr)?] [Sandbox] fault_matrix: [$($option:expr),* $(,)?], $($rest:tt)*) => {
        compile_error!(
            "contract!: the generated fault matrix runs the chapter on the host's network; with \
             `network: sandbox` write it in the sandbox and say `fault_matrix: elsewhere(\"..\"),`"
        );
    };
    (@fault_matrix [$bin:expr] [$($setup:expr)?] [Host] fault_matrix: [$($option:expr),* $(,)?], $($rest:tt)*) => {
        /// Exit 0, exit non-zero, SIGINT, SIGTERM, SIGKILL then a new run: the host is as it was.
        #[test]
        fn fault_matrix() {
            $(let _setup = $setup;)?
            $crate::fault_matrix($bin, &[$($option),*]);
        }

        $crate::contract!(@bad_input [$bin] [$($setup)?] [Host] $($rest)*);
    };
    (@fault_matrix [$($context:tt)*] $($rest:tt)*) => {
        compile_error!(
            "contract!: `fault_matrix: [OPTIONS],` or `fault_matrix: elsewhere(\"where and why\"),` \
             comes after `demo:`"
        );
    };

    (@bad_input [$bin:expr] [$($setup:expr)?] [$net:ident] bad_input: elsewhere($why:literal), $($rest:tt)*) => {
        $crate::contract!(@elsewhere $why);
        $crate::contract!(@without_root [$bin] [$($setup)?] [$net] $($rest)*);
    };
    (@bad_input [$bin:expr] [$($setup:expr)?] [Sandbox] bad_input: $($rest:tt)*) => {
        compile_error!(
            "contract!: the generated bad-input matrix runs the chapter on the host's network; with \
             `network: sandbox` write it in the sandbox and say `bad_input: elsewhere(\"..\"),`"
        );
    };
    (@bad_input [$bin:expr] [$($setup:expr)?] [Host] bad_input: [$($case:expr),* $(,)?], $($rest:tt)*) => {
        /// Every option with bad values: exit 1 or 2, an error naming both, nothing left.
        #[test]
        fn bad_input_matrix() {
            $(let _setup = $setup;)?
            $crate::bad_input_matrix($bin, &[$($case),*]);
        }

        $crate::contract!(@without_root [$bin] [$($setup)?] [Host] $($rest)*);
    };
    (@bad_input [$bin:expr] [$($setup:expr)?] [Host] bad_input: let $made:pat = $init:expr; [$($case:expr),* $(,)?], $($rest:tt)*) => {
        /// Every option with bad values: exit 1 or 2, an error naming both, nothing left.
        #[test]
        fn bad_input_matrix() {
            $(let _setup = $setup;)?
            // Kept whole until the test ends, whatever the pattern binds.
            let made = $init;
            let $made = &made;
            $crate::bad_input_matrix($bin, &[$($case),*]);
        }

        $crate::contract!(@without_root [$bin] [$($setup)?] [Host] $($rest)*);
    };
    (@bad_input [$($context:tt)*] $($rest:tt)*) => {
        compile_error!(
            "contract!: `bad_input: [(OPTION, VALUE), ..],` (or `bad_input: let PATTERN = EXPR; \
             [..],`) or `bad_input: elsewhere(\"where and why\"),` comes after `fault_matrix:`"
        );
    };

    (@without_root [$bin:expr] [$($setup:expr)?] [$net:ident] without_root: elsewhere($why:literal), $($rest:tt)*) => {
        $crate::contract!(@elsewhere $why);
        $crate::contract!(@container_pid [$bin] [$($setup)?] [$net] $($rest)*);
    };
    (@without_root [$bin:expr] [$($setup:expr)?] [$net:ident] without_root: [$($arg:expr),* $(,)?], $($rest:tt)*) => {
        /// As a user who forgot sudo: exit 1, the capability named, and how to get it.
        #[test]
        fn without_root_it_says_which_capability_and_how() {
            $(let _setup = $setup;)?
            $crate::contract::assert_refuses_without_root($bin, &[$($arg),*]);
        }

        $crate::contract!(@container_pid [$bin] [$($setup)?] [$net] $($rest)*);
    };
    (@without_root [$($context:tt)*] $($rest:tt)*) => {
        compile_error!(
            "contract!: `without_root: [ARGS],` or `without_root: elsewhere(\"where and why\"),` \
             comes after `bad_input:`"
        );
    };

    (@container_pid [$bin:expr] [$($setup:expr)?] [$net:ident] container_pid: elsewhere($why:literal) $(,)?) => {
        $crate::contract!(@elsewhere $why);
    };
    (@container_pid [$bin:expr] [$($setup:expr)?] [$net:ident] container_pid: [$($option:expr),* $(,)?] $(,)?) => {
        /// The run mode names the container's PID on the host (and inside), so
        /// that the book's `kill` and `/proc/PID` commands reach our own container.
        #[test]
        fn the_run_mode_says_the_containers_host_pid_unless_quiet() {
            $(let _setup = $setup;)?
            $crate::container_pid::assert_says_the_container_pid($bin, &[$($option),*]);
        }
    };
    (@container_pid [$($context:tt)*] $($rest:tt)*) => {
        compile_error!(
            "contract!: `container_pid: [OPTIONS],` or `container_pid: elsewhere(\"where and \
             why\"),` comes last, after `without_root:`, and nothing after it"
        );
    };
    // Anything else.
    ($($anything:tt)*) => {
        compile_error!("contract!: it starts with `bin: BIN,`");
    };
}
