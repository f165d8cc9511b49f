//! Chapter 6, checked against the kernel, always inside a network namespace
//! the test makes (`unshare --net`): both veth ends live there and no packet
//! leaves it. What is asserted is read back from the kernel (`ip -o link`,
//! `ip -o addr` over netlink), not from the tool's narration.

use std::time::Duration;
use workshop_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch06-net");
const LIMIT: Duration = Duration::from_secs(60);

// The demo and the Ctrl-C test run in a network namespace the contract makes
// (`network: sandbox`); the two matrices are below, in a sandbox where they
// also count the veth ends and compare the sandbox's own links and routes.
workshop_testkit::contract! {
    bin: BIN,
    setup: workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs"),
    network: sandbox,
    demo: [],
    fault_matrix: elsewhere(
        "in the sandbox, counting the veth mid-run and comparing the sandbox's links, \
         addresses and routes after each case: see fault_matrix below"
    ),
    bad_input: elsewhere(
        "in the sandbox, a bad --ip or --network being bad usage (exit 2) and no veth made: \
         see bad_input_matrix below"
    ),
    without_root: ["--", "true"],
    container_pid: [],
}

fn sandbox(script: &str) -> std::process::Output {
    workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    let host = HostSnapshot::take();
    let out = run_in_net_sandbox(&format!("BIN={BIN}; {SHELL_HELPERS} {script}"), LIMIT);
    host.assert_unchanged("ch06 in its sandbox"); // the machine's own links too
    out
}

/// Two shell functions every sandbox script may use, written for iproute2 and
/// busybox alike (the VM test has only busybox: no `ip link show type veth`,
/// no pgrep). `veths`: how many workshop veth ends are in the sandbox.
/// `has_sleep_child PID`: whether the tool PID has a `sleep` child, read from
/// /proc (the container is set up and running its command).
const SHELL_HELPERS: &str = "veths() { ip -o link | grep -cE '^[0-9]+: ws[hc]-'; }; \
    has_sleep_child() { for c in $(cat /proc/$1/task/$1/children 2>/dev/null); do \
      [ \"$(cat /proc/$c/comm 2>/dev/null)\" = sleep ] && return 0; done; return 1; };";

/// The veth links left in the sandbox, as the kernel lists them. A pair goes
/// with its container's namespace, which the kernel destroys a moment after
/// the container ends (ch06_net::TEARDOWN): wait up to 5 s for none to be left.
const VETHS: &str = "for i in $(seq 500); do [ $(veths) = 0 ] && break; sleep 0.01; done; \
                     echo veths=$(veths)";

/// The veth links in the sandbox right now, without waiting: where a run must
/// not have created any.
const VETHS_NOW: &str = "echo veths=$(veths)";

/// Wait until the tool $T has a `sleep` child: the container is set up and running.
const WAIT_FOR_SLEEP: &str =
    "for i in $(seq 200); do has_sleep_child $T && break; sleep 0.05; done";

fn value(out: &std::process::Output, key: &str) -> String {
    let text = stdout_of(out);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in:\n{text}\nstderr:\n{}", stderr_of(out)))
        .trim()
        .to_string()
}

#[test]
fn the_container_pings_the_host_end_and_nothing_is_left() {
    let out = sandbox(&format!(
        "$BIN --quiet -- ping -c1 -W2 10.200.0.1 >/dev/null; echo exit=$?; {VETHS}"
    ));
    assert_eq!(value(&out, "exit"), "0", "{}", stderr_of(&out));
    assert_eq!(value(&out, "veths"), "0");
}

#[test]
fn the_host_pings_the_container_while_it_runs() {
    let out = sandbox(&format!(
        "$BIN --quiet -- sleep 30 & T=$!; {WAIT_FOR_SLEEP}; \
         ping -c1 -W2 10.200.0.2 >/dev/null; echo ping=$?; \
         echo host_end=$(ip -o -4 addr show | grep -c 'wsh-.*10.200.0.1/24'); \
         kill -TERM $T; wait $T; echo exit=$?; {VETHS}"
    ));
    assert_eq!(
        value(&out, "ping"),
        "0",
        "host → container ping: {}",
        stderr_of(&out)
    );
    assert_eq!(
        value(&out, "host_end"),
        "1",
        "the host end has the subnet's first address"
    );
    assert_eq!(value(&out, "exit"), "143");
    assert_eq!(value(&out, "veths"), "0");
}

#[test]
fn inside_eth0_has_the_address_and_a_default_route_and_lo_is_up() {
    let out =
        sandbox("$BIN --quiet --ip 10.77.3.9/24 -- sh -c 'ip -o -4 addr; ip route; ip -o link'");
    let text = stdout_of(&out);
    assert!(
        text.contains("eth0") && text.contains("inet 10.77.3.9/24"),
        "{text}"
    );
    assert!(
        text.contains("inet 127.0.0.1/8"),
        "lo is up with its address: {text}"
    );
    assert!(text.contains("default via 10.77.3.1 dev eth0"), "{text}");
    assert!(
        !text.contains("wsc-") && !text.contains("wsh-"),
        "inside, the cable is eth0 and the host end is not visible: {text}"
    );
}

#[test]
fn the_demo_pings_both_ways_and_exits_0() {
    let out = sandbox(&format!("$BIN; echo exit=$?; {VETHS}"));
    assert_eq!(value(&out, "exit"), "0", "{}", stderr_of(&out));
    assert_eq!(value(&out, "veths"), "0");
}

#[test]
fn sigint_sigterm_and_sigkill_leave_no_veth() {
    for (signal, code) in [("INT", "130"), ("TERM", "143")] {
        let out = sandbox(&format!(
            "$BIN --quiet -- sleep 30 & T=$!; {WAIT_FOR_SLEEP}; echo during=$(veths); \
             kill -{signal} $T; wait $T; echo exit=$?; {VETHS}"
        ));
        assert_eq!(
            value(&out, "during"),
            "1",
            "SIG{signal}: the host end exists mid-run"
        );
        assert_eq!(value(&out, "exit"), code, "SIG{signal}");
        assert_eq!(value(&out, "veths"), "0", "SIG{signal}");
    }
    // SIGKILL: the tool cannot clean up; the container dies with it
    // (PR_SET_PDEATHSIG), its namespace goes, and the pair with it. The next
    // run starts clean either way.
    let out = sandbox(&format!(
        "$BIN --quiet -- sleep 30 & T=$!; {WAIT_FOR_SLEEP}; kill -KILL $T; wait $T; echo exit=$?; \
         {VETHS}; \
         $BIN --quiet -- true; echo next=$?; {VETHS}"
    ));
    assert_eq!(value(&out, "exit"), "137");
    assert_eq!(value(&out, "next"), "0");
    assert!(
        stdout_of(&out).lines().filter(|l| *l == "veths=0").count() == 2,
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn a_stale_pair_from_a_killed_run_is_reclaimed() {
    // A pair named as a run whose tool is gone would name it (no such PID).
    let out = sandbox(&format!(
        "ip link add wsh-999999 type veth peer name wsc-999999; echo before=$(veths); \
         $BIN -- true; echo exit=$?; {VETHS}"
    ));
    assert_eq!(value(&out, "before"), "2");
    assert_eq!(value(&out, "exit"), "0", "{}", stderr_of(&out));
    assert_eq!(value(&out, "veths"), "0", "the stale pair was removed");
    assert!(
        stderr_of(&out).contains("removed wsh-999999, the veth pair of a run that has ended"),
        "the run says what it removed: {}",
        stderr_of(&out)
    );
}

/// A pair named after a PID that another process has now (the PID was
/// reused) is stale too: its alias names the run that made it, by PID and
/// start time, and that is not the process that has the PID now. The pair
/// of a live run (the tool started here) is left alone.
#[test]
fn a_pair_whose_pid_was_reused_is_reclaimed_and_a_live_runs_is_not() {
    let out = sandbox(&format!(
        "D=$(mktemp -d); cp $(command -v sleep) $D/ch0-sleep; $D/ch0-sleep 30 & S=$!; \
         ip link add wsh-$S type veth peer name wsc-$S; ip link set wsh-$S alias \"workshop run $S started at 1\"; \
         $BIN --quiet -- sleep 30 & T=$!; {WAIT_FOR_SLEEP}; \
         $BIN -- true; echo exit=$?; \
         echo reused=$(ip -o link | grep -c \" wsh-$S@\"); echo live=$(ip -o link | grep -c \" wsh-$T@\"); \
         kill $S $T; wait; rm -r $D; {VETHS}"
    ));
    assert_eq!(value(&out, "exit"), "0", "{}", stderr_of(&out));
    assert_eq!(
        value(&out, "reused"),
        "0",
        "the pair of a reused PID was removed: {}",
        stderr_of(&out)
    );
    assert_eq!(value(&out, "live"), "1", "the live run's pair is untouched");
    assert_eq!(value(&out, "veths"), "0");
}

/// Runs back to back: each starts while the pair of the one before may still
/// be on its way out (the kernel destroys it in the background). Every run
/// works (no clash with the address of the pair before), the runs remove no
/// pair but those of runs that have ended, and nothing is left.
#[test]
fn runs_back_to_back_each_work_and_leave_nothing() {
    let out = sandbox(&format!(
        "for i in 1 2 3 4 5; do $BIN -- ping -c1 -W2 10.200.0.1 >/dev/null 2>>/tmp/ch06-b2b-$$ || echo failed=$i; done; \
         cat /tmp/ch06-b2b-$$ >&2; rm -f /tmp/ch06-b2b-$$; {VETHS}"
    ));
    assert!(
        !stdout_of(&out).contains("failed="),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    for line in stderr_of(&out).lines().filter(|l| l.contains("removed")) {
        assert!(
            line.contains("the veth pair of a run that has ended"),
            "{line}"
        );
    }
    assert_eq!(value(&out, "veths"), "0");
}

/// N runs started at once in one sandbox, none of them told which address to
/// take. Each container pings its own host end (its default gateway), says
/// its address, and stays up until all N have, so that all N are alive at
/// once; then the tools get SIGTERM. Every ping answered, and no two share a
/// subnet: choosing a free subnet and claiming it is one step, which the
/// others wait for. Bounded: 10 s for all N to come up.
fn simultaneous_runs_each_get_their_own_subnet(runs: usize) {
    // Inside each container: its address, then a ping to its default gateway.
    let inside = r#"set -- $(ip route | grep ^default); ip -o -4 addr show dev eth0 | grep -o "inet [0-9./]*"; ping -c1 -W2 $3 >/dev/null; echo pinged=$?; exec sleep 30"#;
    let out = sandbox(&format!(
        "D=$(mktemp -d); P=; for i in $(seq {runs}); do \
           $BIN --quiet -- sh -c '{inside}' >$D/out$i 2>$D/err$i & P=\"$P $!\"; \
         done; \
         for t in $(seq 1000); do [ $(cat $D/out* | grep -c pinged=) = {runs} ] && break; sleep 0.01; done; \
         echo veths_at_once=$(veths); \
         kill -TERM $P; i=0; for p in $P; do i=$((i+1)); wait $p; \
           echo run$i=$? $(cat $D/out$i); cat $D/err$i >&2; done; \
         rm -r $D; {VETHS}"
    ));
    let mut subnets = Vec::new();
    for i in 1..=runs {
        let line = value(&out, &format!("run{i}"));
        assert!(
            line.starts_with("143 ") && line.ends_with("pinged=0"),
            "run {i} of {runs} started at once: its container could not ping its host end, \
             or the run did not end by SIGTERM ({line}): {}",
            stderr_of(&out)
        );
        let address = line
            .split_whitespace()
            .find(|w| w.contains('/'))
            .unwrap_or_else(|| panic!("run {i}: no eth0 address in {line:?}"));
        let plan = ch06_net::plan(address).unwrap_or_else(|e| panic!("run {i}: {e}"));
        subnets.push(plan.subnet.to_string());
    }
    assert_eq!(
        value(&out, "veths_at_once"),
        runs.to_string(),
        "all {runs} host ends were up at once"
    );
    let mut distinct = subnets.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        runs,
        "{runs} runs alive at once took the subnets {subnets:?}: some share one"
    );
    assert_eq!(value(&out, "veths"), "0");
}

#[test]
fn two_runs_started_at_once_each_get_their_own_subnet() {
    simultaneous_runs_each_get_their_own_subnet(2);
}

#[test]
fn five_runs_started_at_once_each_get_their_own_subnet() {
    simultaneous_runs_each_get_their_own_subnet(5);
}

/// `--network none`: lo up with 127.0.0.1, no eth0, and no veth on the host.
#[test]
fn network_none_has_lo_up_and_no_veth() {
    let out = sandbox(&format!(
        "$BIN --quiet --network none -- sh -c 'ip -o link; ip -o -4 addr'; echo exit=$?; {VETHS_NOW}"
    ));
    let text = stdout_of(&out);
    assert_eq!(value(&out, "exit"), "0", "{}", stderr_of(&out));
    assert!(
        text.lines()
            .any(|l| l.contains(": lo:") && l.contains(",UP")),
        "lo is up: {text}"
    );
    assert!(text.contains("inet 127.0.0.1/8"), "{text}");
    assert!(!text.contains("eth0"), "no cable: {text}");
    assert_eq!(value(&out, "veths"), "0");
}

/// `--ip` asks for an address on a cable that `--network none` does not lay:
/// bad usage (exit 2), naming both, before anything exists.
#[test]
fn ip_with_network_none_is_bad_usage() {
    let out = sandbox(&format!(
        "$BIN --network none --ip 10.9.0.2/24 -- true; echo exit=$?; {VETHS_NOW}"
    ));
    assert_eq!(value(&out, "exit"), "2");
    let err = stderr_of(&out);
    assert!(
        err.lines().any(|l| l.starts_with("error:")
            && l.contains("--ip 10.9.0.2/24")
            && l.contains("--network none")),
        "{err}"
    );
    assert_eq!(value(&out, "veths"), "0");
}

/// A routing rule (as a VPN adds) sends the container's subnet to another
/// table, which the clash check (the main table) does not see: the container
/// could reach nothing. The run fails loudly (exit 1, error and hint) instead
/// of running the command, even one that would exit 0.
#[test]
fn a_subnet_routed_elsewhere_fails_loudly() {
    let out = sandbox(&format!(
        "ip rule add to 10.200.0.0/16 lookup 100; ip route add unreachable 10.200.0.0/16 table 100; \
         $BIN --quiet -- true; echo exit=$?; {VETHS}"
    ));
    assert_eq!(value(&out, "exit"), "1", "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("error:") && err.contains("network would be broken") && err.contains("hint:"),
        "{err}"
    );
    assert_eq!(value(&out, "veths"), "0", "nothing is left");
}

/// When the pings do not go through, the demo says so and exits 1: here the
/// sandbox (the "host") ignores pings (a per-namespace sysctl).
#[test]
fn the_demo_fails_loudly_when_a_ping_gets_no_answer() {
    let out = sandbox(&format!(
        "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all; $BIN; echo exit=$?; {VETHS}"
    ));
    assert_eq!(value(&out, "exit"), "1", "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("error: the container's network is broken") && err.contains("hint:"),
        "{err}"
    );
    assert_eq!(value(&out, "veths"), "0");
}

/// The bad-input matrix, in the sandbox: every option with bad values is
/// refused (exit 1 or 2; a bad `--ip` or `--network` is bad usage: 2) with an
/// error naming the option and the value, and no link is created.
#[test]
fn bad_input_matrix() {
    let cases = [
        ("--ip", ""),
        ("--ip", "10.200.0.2"),
        ("--ip", "10.200.0.2/31"),
        ("--ip", "10.200.0.2/32"),
        ("--ip", "300.1.1.1/24"),
        ("--ip", "10.200.0.0/24"),
        ("--ip", "10.200.0.1/24"),
        ("--ip", "abc/24"),
        // Values only the kernel or routing would refuse: refused up front.
        ("--ip", "224.0.0.5/24"),
        ("--ip", "0.0.0.2/8"),
        ("--ip", "127.0.0.2/8"),
        ("--ip", "240.0.0.2/24"),
        ("--ip", "255.255.255.254/24"),
        ("--ip", "10.0.0.2/0"),
        ("--network", "bridge"),
        ("--network", ""),
        ("--hostname", "bad_name"),
        ("--rootfs", "/nonexistent/rootfs"),
        ("--rootfs", "/"),
        ("--color", "purple"),
    ];
    for (option, bad) in cases {
        let out = sandbox(&format!(
            "$BIN {option} '{bad}' -- true; echo exit=$?; {VETHS_NOW}"
        ));
        let code = value(&out, "exit");
        assert!(
            code == "1" || code == "2",
            "{option} {bad:?}: exit {code}: {}",
            stderr_of(&out)
        );
        if option == "--ip" || option == "--network" {
            assert_eq!(code, "2", "{option} {bad:?}: {}", stderr_of(&out));
        }
        let err = stderr_of(&out);
        let first = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            first.contains(option) && first.contains(bad),
            "the error names the option and the value: {err}"
        );
        assert_eq!(value(&out, "veths"), "0");
    }
}

#[test]
fn a_subnet_the_host_already_uses_is_refused() {
    let out = sandbox(&format!(
        "ip link set lo up; ip addr add 10.200.0.77/24 dev lo; \
         $BIN --ip 10.200.0.2/24 -- true; echo exit=$?; {VETHS_NOW}"
    ));
    assert_eq!(value(&out, "exit"), "1");
    let err = stderr_of(&out);
    assert!(
        err.contains("error:") && err.contains("10.200.0.0/24") && err.contains("hint:"),
        "{err}"
    );
    assert_eq!(value(&out, "veths"), "0", "nothing was created");
}

/// The fault matrix, in the sandbox: the container exits 0, exits 3, the tool
/// gets SIGINT, SIGTERM, or SIGKILL followed at once by a new run. After each, the
/// sandbox's links, addresses and routes are exactly as before (given the
/// kernel its moment to destroy the container's namespace), and the exit code
/// is the container's, or 128+N.
#[test]
fn fault_matrix() {
    // The sandbox gets a state worth comparing: lo up, with an extra address.
    let out = sandbox(&format!(
        "ip link set lo up; ip addr add 10.9.9.9/32 dev lo; \
         state() {{ ip -o link; ip -o addr; ip route; }}; BEFORE=$(state); \
         same() {{ for i in $(seq 500); do [ \"$(state)\" = \"$BEFORE\" ] && {{ echo \"$1=same\"; return; }}; sleep 0.01; done; \
                   echo \"$1=changed\"; state >&2; }}; \
         $BIN --quiet -- true; echo exit0=$?; same after0; \
         $BIN --quiet -- sh -c 'exit 3'; echo exit3=$?; same after3; \
         for sig in INT TERM; do \
           $BIN --quiet -- sleep 30 & T=$!; {WAIT_FOR_SLEEP}; \
           echo during$sig=$(veths); \
           kill -$sig $T; wait $T; echo exit$sig=$?; same after$sig; \
         done; \
         $BIN --quiet -- sleep 30 & T=$!; {WAIT_FOR_SLEEP}; \
         echo duringKILL=$(veths); \
         kill -KILL $T; wait $T; echo exitKILL=$?; \
         $BIN --quiet -- true; echo next=$?; same afternext"
    ));
    let expect = [
        ("exit0", "0"),
        ("exit3", "3"),
        ("duringINT", "1"),
        ("exitINT", "130"),
        ("duringTERM", "1"),
        ("exitTERM", "143"),
        ("duringKILL", "1"),
        ("exitKILL", "137"),
        ("next", "0"),
    ];
    for (key, want) in expect {
        assert_eq!(value(&out, key), want, "{key}: {}", stderr_of(&out));
    }
    for key in ["after0", "after3", "afterINT", "afterTERM", "afternext"] {
        assert_eq!(
            value(&out, key),
            "same",
            "{key}: the sandbox's links, addresses or routes changed: {}",
            stderr_of(&out)
        );
    }
}
