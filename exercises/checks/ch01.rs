//! Checks for chapter 1: `cargo test -p exercises ch01`.

use super::probe;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

#[test]
fn ex1_1_the_command_runs_as_pid_1_of_a_new_pid_namespace() {
    let report = probe("ch01-pid1", "1.1", "ch01_clone.rs");
    assert_eq!(
        report.get("pid_for_children_kept"),
        "true",
        "\n\nafter your function returned, the caller's /proc/self/ns/pid_for_children \
         was another namespace: unshare(CLONE_NEWPID) changed the caller for good (each \
         later child of it lands there). Ask clone() for the new namespace instead: it \
         is the child's alone.\n{}",
        report.text
    );
    let exit = report.get("exit");
    if exit == "127" && !report.values.contains_key("inside") {
        panic!(
            "\n\nthe check ran `sh -c 'echo inside=$$; ...'`: the child exited with 127 \
             and printed nothing, so the command never ran (127 is what your child \
             returns when exec fails). The probe saw:\n{}\n`sh` is a name, not a path: \
             execv() and execve() take a path and do not search $PATH; execvp() \
             does (workshop::process::exec uses it)\n",
            report.text
        );
    }
    // Before the errors below: a child that is not PID 1 (unshare in pre_exec,
    // say) may also mishandle a missing command, and PID 1 is this exercise's idea.
    let not_pid_1 = |inside: &str| {
        format!(
            "\n\n`echo $$` in your child printed {inside}, not 1: the command is not PID 1 of \
             a new PID namespace. The child must be created in it (clone() with \
             CLONE_NEWPID); unshare(CLONE_NEWPID) moves only the caller's later children.\n{}",
            report.text
        )
    };
    if let Some(inside) = report.values.get("inside") {
        assert_eq!(inside, "1", "{}", not_pid_1(inside));
    }
    for key in ["exit_of_exit_5", "exit_of_missing"] {
        let said = report.get(key);
        assert!(
            !said.starts_with("returned an error"),
            "\n\nspawn_as_pid_1 {said}: it should return the child's PID once \
             clone() succeeded; a command that cannot run is the child's business \
             (exit 127), not an error of the caller\n"
        );
    }
    for key in ["exit", "exit_of_exit_5", "exit_of_missing"] {
        let exit = report.get(key);
        assert!(
            !exit.starts_with("error"),
            "\n\nthe check could not wait for your child (waitpid said {exit}). \
             waitpid() sees a child that ends only if it was cloned with SIGCHLD as \
             its exit signal: pass Some(Signal::SIGCHLD as i32) to clone(), and do \
             not wait for the child yourself (the caller does).\n"
        );
    }
    let inside = report.get("inside");
    assert_eq!(inside, "1", "{}", not_pid_1(inside));
    let host_pid = report.number("host_pid");
    let nspid = workshop_testkit::nspid(&report.text);
    assert_eq!(
        nspid,
        vec![host_pid as u32, 1],
        "the kernel's NSpid should list the host PID you returned, then 1:\n{}",
        report.text
    );
    assert_eq!(exit, "0");
    assert_eq!(
        report.get("exit_of_exit_5"),
        "5",
        "the child's exit code should reach waitpid"
    );
    let missing = report.get("exit_of_missing");
    assert!(
        missing != "0" && !missing.starts_with("error"),
        "\n\nfor a command that does not exist (/nonexistent/ex1-1), waitpid saw {missing}: \
         when exec() returns, it failed, and the child must end with a non-zero code \
         (127, as a shell does), or a command that never ran looks like a success.\n"
    );
    let left = report.get("left_running");
    assert_eq!(
        left, "",
        "\n\nthe command started `sleep 2.5 &`, then ended; the check still found these \
         processes running: {left}. When PID 1 of a PID namespace ends, the kernel kills \
         every other process in it: yours were not in a namespace of their own. (The check \
         ended them.)\n"
    );
}

#[test]
fn ex1_2_exit_codes_are_what_a_shell_reports() {
    use crate::under_test::ch01_clone::exit_code;
    super::own_work("1.2", "ch01_clone.rs");
    let pid = Pid::from_raw(42);
    assert_eq!(exit_code(WaitStatus::Exited(pid, 0)), Some(0));
    assert_eq!(exit_code(WaitStatus::Exited(pid, 7)), Some(7));
    assert_eq!(
        exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
        Some(137),
        "SIGKILL is 9: 128 + 9"
    );
    assert_eq!(
        exit_code(WaitStatus::Signaled(pid, Signal::SIGTERM, true)),
        Some(143),
        "SIGTERM is 15: 128 + 15, core dump or not"
    );
    assert_eq!(
        exit_code(WaitStatus::Stopped(pid, Signal::SIGSTOP)),
        None,
        "a stopped process has not finished"
    );
    assert_eq!(
        exit_code(WaitStatus::StillAlive),
        None,
        "a running process has not finished"
    );
    assert_eq!(
        exit_code(WaitStatus::Continued(pid)),
        None,
        "a process continued by SIGCONT has not finished"
    );
    assert_eq!(
        exit_code(WaitStatus::PtraceEvent(pid, Signal::SIGTRAP, 1)),
        None,
        "a traced process stopped at an event has not finished"
    );
}

/// A child of this test, ended (and reaped) if the test fails early.
struct Child(Pid);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, Some(WaitPidFlag::__WALL));
    }
}

// The kernel's own statuses are the point: waitpid() reaps it, not std's wait().
#[allow(clippy::zombie_processes)]
fn spawn(script: &str) -> Child {
    let child = std::process::Command::new("sh")
        .args(["-c", script])
        .spawn()
        .expect("spawn sh");
    Child(Pid::from_raw(child.id() as i32))
}

/// What `sh` says `$?` is after `script`: the exit code a shell reports.
fn shell_says(script: &str) -> i32 {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("sh -c '{script}'; echo $?")])
        .output()
        .expect("run sh");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn ex1_2_exit_codes_match_the_shells_for_real_processes() {
    use crate::under_test::ch01_clone::exit_code;
    super::own_work("1.2", "ch01_clone.rs");
    // Statuses from the kernel, for processes of our own, beside what a shell
    // reports for the same script.
    for script in ["exit 0", "exit 7", "kill -KILL $$", "kill -TERM $$"] {
        let child = spawn(script);
        let status = waitpid(child.0, None).expect("waitpid");
        std::mem::forget(child); // reaped
        let shell = shell_says(script);
        assert_eq!(
            exit_code(status),
            Some(shell),
            "\n\nthe kernel said {status:?} for `sh -c '{script}'`, and a shell reports \
             $? = {shell}: exit_code should say Some({shell}) (a signal N gives 128 + N)\n"
        );
    }
    // Stopped, continued, then killed: only the last has finished.
    let child = spawn("sleep 5");
    kill(child.0, Signal::SIGSTOP).unwrap();
    let stopped = waitpid(child.0, Some(WaitPidFlag::WUNTRACED)).unwrap();
    kill(child.0, Signal::SIGCONT).unwrap();
    let continued = waitpid(child.0, Some(WaitPidFlag::WCONTINUED)).unwrap();
    for status in [stopped, continued] {
        assert_eq!(
            exit_code(status),
            None,
            "\n\nthe kernel said {status:?}: the process is still there (it can be stopped \
             and continued again), so it has not finished: None\n"
        );
    }
}

#[test]
fn ex1_3_init_reaps_orphans_and_returns_the_commands_code() {
    let report = probe("ch01-init", "1.3", "ch01_clone.rs");
    let exit = report.get("exit");
    assert_eq!(
        exit, "3",
        "\n\ninit ran `sh -c '(sleep 0.05 &); ...; sleep 0.5; exit 3'` and returned {exit}, \
         not 3: return the exit code of the command you started (its PID, from fork), not \
         of whichever child ended first (an orphan handed to PID 1).\n{}",
        report.text
    );
    let after = report.number("returned_after_ms");
    assert!(
        after < 2500,
        "\n\ninit returned {after} ms after it started, though the command ended after \
         0.5 s: it waited for the orphan `sleep 4` too. Return when the command ends: the \
         kernel kills what is left when PID 1 exits.\n"
    );
    let during = report.number("zombies_while_running");
    assert_eq!(
        during, 0,
        "\n\nthe command started three orphans, two of which end at once, and 0.45 s \
         later the namespace's /proc listed {during} zombies (state Z) while the \
         command still ran. Orphans are handed to PID 1, and only PID 1's waitpid() \
         lets them go: reap any child (-1) as they end, all the while the command \
         runs, not once at the end (a long-lived container would fill up with \
         zombies)\n"
    );
    let zombies = report.get("zombies");
    assert_eq!(
        zombies, "",
        "\n\nwhen init returned, the namespace's /proc showed these children of PID 1 as \
         zombies (state Z): {zombies}. They were orphans the kernel handed to PID 1, and \
         only a waitpid() by PID 1 lets them go: wait for any child (-1), not only the \
         command.\n"
    );
    let killed = report.get("exit_of_kill_term");
    assert_eq!(
        killed, "143",
        "\n\na command killed by SIGTERM should give 128 + 15 = 143, as a shell reports; \
         init said {killed}\n"
    );
    let missing = report.get("exit_of_missing");
    assert_eq!(
        missing, "127",
        "\n\nfor a command that does not exist (/nonexistent/ex1-3), init said {missing}: \
         when exec() returns, it failed: the child should exit with 127, as a shell \
         does\n"
    );
}
