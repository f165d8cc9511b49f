//! The early-SIGKILL loop: start a chapter's run mode, SIGKILL the tool at a
//! random moment of its first milliseconds (before, during or just after it
//! clones the container), again and again, on a loaded machine; then prove
//! that no container outlived its tool and that no cgroup of these runs is
//! left once a later run has reclaimed what the killed ones could not remove.
//!
//! What it guards: the container asks the kernel for PR_SET_PDEATHSIG only
//! once it runs, after clone(). A tool killed before that sends nothing, so
//! the container must find out for itself (see `workshop::process::in_child`).
//!
//! Every process of the loop carries a marker in its environment, unique to
//! this run of the test, so that the survivors found in /proc are ours and
//! only ours; each is killed by its PID.

use super::net_sandbox::NetSandbox;
use super::{chapter, exit_code, is_alive, nspid, require_root, run, stderr_of};
use ch07_cgroups::cgroup::run_of;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The environment variable that marks every process of one test run.
const MARKER_VAR: &str = "WORKSHOP_EARLY_KILL";

/// The shape of the loop.
#[derive(Debug, Clone, Copy)]
pub struct Loop {
    /// How many tools to start and kill.
    pub runs: usize,
    /// The kill comes at a random moment between 0 and this after the start.
    pub within: Duration,
    /// The whole loop stops here even if `runs` are not all done.
    pub time_limit: Duration,
    /// How many busy loops run beside it, to make the machine slow.
    pub busy_loops: usize,
}

impl Default for Loop {
    fn default() -> Self {
        Loop {
            runs: 200,
            within: Duration::from_millis(6),
            time_limit: Duration::from_secs(45),
            busy_loops: 2,
        }
    }
}

/// Run `bin OPTIONS -- sleep 31` in a network namespace of the test's own,
/// SIGKILL the tool within `shape.within` of its start, `shape.runs` times;
/// then fail, naming how many of them survived, if any container is left, or
/// if a cgroup of a killed run is still there after a new run has reclaimed
/// the stale ones.
pub fn assert_early_kill_leaves_nothing(bin: &str, options: &[&str], shape: Loop) {
    require_root();
    let marker = format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let sandbox = NetSandbox::new();
    let mut random = XorShift::seeded();
    let seed = random.0;

    let busy = Busy::start(shape.busy_loops, shape.time_limit);
    let start = Instant::now();
    let mut tools = Vec::new();
    let mut ended_by_themselves = Vec::new();
    while tools.len() < shape.runs && start.elapsed() < shape.time_limit {
        let mut command = chapter(bin);
        command
            .args(options)
            .args(["--quiet", "--", "sleep", "31"])
            .env(MARKER_VAR, &marker)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        sandbox.enter_on_exec(&mut command);
        let mut tool = command.spawn().expect("spawn the chapter");
        std::thread::sleep(random.below(shape.within));
        // Our own child, not yet reaped: its PID cannot be anyone else's.
        let _ = tool.kill();
        let status = tool.wait().expect("reap the tool");
        if exit_code(status) != 128 + Signal::SIGKILL as i32 {
            ended_by_themselves.push((tool.id(), exit_code(status)));
        }
        tools.push(tool.id());
    }
    let elapsed = start.elapsed();
    drop(busy);

    // A container whose tool died asked for PR_SET_PDEATHSIG in time (it is
    // killed at once) or finds out by itself (it exits as soon as it runs).
    // On a loaded machine "at once" can take a moment: give it two seconds.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !carrying(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivors = carrying(&marker);
    let containers: Vec<u32> = survivors
        .iter()
        .copied()
        .filter(|pid| is_pid_1_inside(*pid))
        .collect();
    for pid in &survivors {
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for pid in &survivors {
        super::wait_until_gone(*pid, deadline.saturating_duration_since(Instant::now()));
    }

    // A SIGKILLed tool cannot remove its cgroup; the next run reclaims it.
    let ours = |dir: &std::path::Path| {
        run_of(dir).is_some_and(|pid| tools.contains(&pid) && !is_alive(pid))
    };
    let stale = ch07_cgroups::cgroup::workshop_dirs()
        .into_iter()
        .filter(|dir| ours(dir))
        .count();
    let mut next_run = chapter(bin);
    next_run
        .args(options)
        .args(["--quiet", "--", "true"])
        .env(MARKER_VAR, &marker);
    sandbox.enter_on_exec(&mut next_run);
    let next = run(&mut next_run, Duration::from_secs(30));
    let left: Vec<std::path::PathBuf> = ch07_cgroups::cgroup::workshop_dirs()
        .into_iter()
        .filter(|dir| ours(dir))
        .collect();

    eprintln!(
        "{bin}: {} runs in {:.1} s (kill within {:?} of the start, seed {seed}, {} busy loops beside)",
        tools.len(),
        elapsed.as_secs_f64(),
        shape.within,
        shape.busy_loops
    );
    eprintln!(
        "{bin}: {stale} cgroup directories left by the killed runs before the next run, {} after",
        left.len()
    );
    assert!(
        containers.is_empty() && survivors.is_empty(),
        "{} of {} containers outlived their SIGKILLed tool ({} processes in all, killed now: {survivors:?})",
        containers.len(),
        tools.len(),
        survivors.len()
    );
    assert!(
        tools.len() * 2 >= shape.runs,
        "only {} of {} runs within {:?}: the loop tested too little",
        tools.len(),
        shape.runs,
        shape.time_limit
    );
    assert!(
        ended_by_themselves.is_empty(),
        "tools that ended before the SIGKILL (PID, exit code): {ended_by_themselves:?}"
    );
    assert_eq!(
        exit_code(next.status),
        0,
        "the run after the kills: {}",
        stderr_of(&next)
    );
    assert!(
        left.is_empty(),
        "cgroups of the killed runs still there after a new run: {left:?}"
    );
}

/// The live processes whose environment holds `MARKER_VAR=marker`: the
/// tools' children, before exec (a copy of the tool's memory) or after.
fn carrying(marker: &str) -> Vec<u32> {
    let wanted = format!("{MARKER_VAR}={marker}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == wanted.as_bytes()))
        })
        .filter(|pid| is_alive(*pid))
        .collect()
}

/// Whether `pid` is PID 1 of its own PID namespace: a container, not one of
/// its children.
fn is_pid_1_inside(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| nspid(&s).last() == Some(&1) && nspid(&s).len() > 1)
}

/// Threads that spin until dropped (or `limit` passes): a loaded machine,
/// where the tool and its container wait longer for a CPU between steps.
struct Busy {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Busy {
    fn start(count: usize, limit: Duration) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let start = Instant::now();
                    while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A small pseudo-random generator (xorshift64), seeded from the clock; the
/// seed is printed so that a failing sequence can be told apart.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> XorShift {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        XorShift((nanos ^ u64::from(std::process::id())) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A duration in [0, limit), to the microsecond.
    fn below(&mut self, limit: Duration) -> Duration {
        let micros = limit.as_micros().max(1) as u64;
        Duration::from_micros(self.next() % micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_delays_stay_below_the_limit() {
        let mut r = XorShift::seeded();
        let limit = Duration::from_millis(6);
        assert!((0..1000).all(|_| r.below(limit) < limit));
    }
}
