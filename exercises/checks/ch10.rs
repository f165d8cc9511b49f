//! Checks for chapter 10: `cargo test -p exercises ch10`.

use super::probe_in_net_sandbox;
use ch06_net::Subnet;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The probe's bridge and the two host ends it attaches (probe.rs, `ch10-attach`).
const BRIDGE: &str = "br-ex10";
const PORTS: [&str; 2] = ["wsh-ex10a", "wsh-ex10b"];

/// A flags value the probe printed (`0x1043`).
fn flags(text: &str) -> u32 {
    u32::from_str_radix(text.trim_start_matches("0x"), 16).unwrap_or(u32::MAX)
}

#[test]
fn ex10_1_a_veth_end_becomes_a_port_of_the_bridge_and_up() {
    let report = probe_in_net_sandbox("ch10-attach", "10.1", "ch10_bridge.rs");
    let context = format!("\nwhat the probe saw:\n{}", report.text);
    for port in PORTS {
        let said = report.get(&format!("attach {port}"));
        if said != "ok" {
            let idea = if said.contains("wsbr0") {
                format!(
                    "the bridge is the one you are given ({BRIDGE} here), not the chapter's wsbr0: \
                     use the arguments"
                )
            } else if said.contains("os error 95") || said.contains("EOPNOTSUPP") {
                format!(
                    "the kernel says EOPNOTSUPP: SIOCBRADDIF is asked of the bridge, not of the \
                     port: ifr_name is the bridge's name ({BRIDGE}), ifr_ifindex the port's index"
                )
            } else if said.contains("os error 40") || said.contains("ELOOP") {
                format!(
                    "the kernel says ELOOP: ifr_ifindex holds the bridge's own index, and a bridge \
                     cannot be a port of itself: give the port's index, if_nametoindex({port:?})"
                )
            } else if said.contains("os error 19") || said.contains("ENODEV") {
                format!(
                    "a link the code named is not in this network namespace (ENODEV). The port is \
                     the link you are given, {port}, the veth's host end: the container's end lives \
                     in the container's namespace, out of the bridge's sight"
                )
            } else {
                format!(
                    "make {port} a port of {BRIDGE} (SIOCBRADDIF on the bridge, with the port's \
                     index), then bring the port up (SIOCGIFFLAGS, | IFF_UP, SIOCSIFFLAGS)"
                )
            };
            let said = said.strip_prefix("error: ").unwrap_or(said);
            panic!("\n\nattach({port:?}, {BRIDGE:?}) failed: {said}\n{idea}\n{context}");
        }
        // `up master=br-ex10`
        let link = report.get(&format!("link {port}"));
        let (state, master) = link.split_once(" master=").unwrap_or((link, "?"));
        assert!(
            master == BRIDGE,
            "\n\nafter attach({port:?}, {BRIDGE:?}) the kernel lists {port} {state}, with {}: \
             {port} is no port of {BRIDGE}. SIOCBRADDIF, asked of the bridge with the port's \
             index, makes it one (`ip link show {port}` then says `master {BRIDGE}`)\n{context}",
            if master == "none" {
                "no master".to_string()
            } else {
                format!("master {master}")
            }
        );
        assert!(
            state == "up",
            "\n\nafter attach({port:?}, {BRIDGE:?}) {port} is a port of {BRIDGE} but down: a port \
             that is down forwards nothing. Bring the port up (the port: the bridge was up \
             already): its flags, | IFF_UP, written back\n{context}"
        );
        let (before, after) = (
            flags(report.get(&format!("flags_before {port}"))),
            flags(report.get(&format!("flags_after {port}"))),
        );
        // IFF_UP is the change; IFF_RUNNING follows the carrier, not us.
        let kept = before & !(nix::libc::IFF_UP | nix::libc::IFF_RUNNING) as u32;
        assert!(
            after & kept == kept,
            "\n\n{port}'s flags were {before:#x} before attach and are {after:#x} after: its other \
             flags (IFF_MULTICAST is 0x1000) were lost. Read the port's flags first \
             (SIOCGIFFLAGS), add IFF_UP to them, and write them back (SIOCSIFFLAGS)\n{context}"
        );
    }
    // Nothing else became a port of anything: not the bridge, not lo.
    for (key, value) in &report.values {
        let Some(name) = key.strip_prefix("link ") else {
            continue;
        };
        if PORTS.contains(&name) {
            continue;
        }
        assert!(
            value.ends_with(" master=none"),
            "\n\n{name} is {value}: only the ports you are given join the bridge\n{context}"
        );
    }
    let (ping, echoes) = (
        report.get("ping_container"),
        report.number("echoes_in_container"),
    );
    assert!(
        ping == "0" && echoes >= 1,
        "\n\nboth host ends are up ports of {BRIDGE}, but a ping from one container to the other \
         (10.231.0.2 to 10.231.0.3) got exit {ping}, and the second container received {echoes} \
         echo requests: frames do not cross the bridge\n{context}"
    );
    assert_eq!(
        report.get("ping_gateway"),
        "0",
        "\n\na container could not ping the bridge's own address (its gateway)\n{context}"
    );
}

/// A subnet from its text (`10.77.3.16/28`).
fn subnet(text: &str) -> Subnet {
    let (network, prefix) = text.split_once('/').unwrap();
    Subnet::of(network.parse().unwrap(), prefix.parse().unwrap())
}

/// Call the code under test; a panic of the stub (todo!()) goes on as it is.
fn claim(dir: &Path, subnet: Subnet, record: &str) -> Result<Ipv4Addr, String> {
    use crate::under_test::ch10_bridge::claim_next;
    claim_next(dir, subnet, record).map_err(|e| format!("{e:#}"))
}

/// The files in `dir` (but for hidden ones), and what each holds.
fn leases_in(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap_or_default())
        })
        .collect()
}

/// What is wrong with `got`, the answer where `want` was due in `subnet`.
fn misplaced(subnet: Subnet, got: Ipv4Addr, want: Ipv4Addr) -> String {
    let net = subnet.network;
    let (gateway, broadcast) = (subnet.first_host(), subnet.broadcast());
    let why = if got == net {
        format!("{got} is the network address of {subnet}: no host has it")
    } else if got == gateway {
        format!(
            "{got} is the subnet's first host address, the gateway: the bridge's own, \
             the containers start at the second"
        )
    } else if got == broadcast {
        format!("{got} is the broadcast address of {subnet}: a packet for it goes to every host")
    } else if !subnet.contains(got) {
        format!(
            "{got} is outside {subnet}: the subnet is a /{} (from {net} to {broadcast}); take \
             the ends from the subnet (first_host(), broadcast()), not from the last byte",
            subnet.prefix
        )
    } else {
        format!("the lowest free address was {want}")
    };
    format!("claim_next gave {got}, where {want} was due: {why}")
}

#[test]
fn ex10_2_claims_the_lowest_free_address_and_writes_the_record() {
    super::own_work("10.2", "ch10_bridge.rs");
    let tmp = workshop_testkit::TempDir::new("ex10-2");

    // A /28 off the byte boundary: .16 the network, .17 the gateway, .31 the
    // broadcast; .18 to .30 for the containers, in order.
    let net = subnet("10.77.3.16/28");
    let dir = tmp.path().join("a-28");
    std::fs::create_dir(&dir).unwrap();
    for (k, n) in (18..=30).enumerate() {
        let want = Ipv4Addr::new(10, 77, 3, n);
        let record = format!("workshop run {k} started at 7\nname c{k}\nport wsh-{k}\n");
        let got = match claim(&dir, net, &record) {
            Ok(got) => got,
            Err(e) if k > 0 => panic!(
                "\n\nclaim {k} of {net} failed: {e}\n{} taken, {want} is free: a taken \
                 address (EEXIST) is no failure, try the next one\n",
                if k == 1 {
                    "1 address is".to_string()
                } else {
                    format!("{k} addresses are")
                }
            ),
            Err(e) => {
                panic!("\n\nclaim_next(dir, {net}, record) failed on an empty directory: {e}\n")
            }
        };
        if got != want {
            let again = leases_in(&dir).contains_key(&got.to_string())
                && std::fs::read_to_string(dir.join(got.to_string())).ok() == Some(record.clone());
            let taken = if k > 0 && got.octets()[3] < n && again {
                format!(
                    "\n{got} is taken: its lease file was there before this claim (opened \
                     again, and written over). Create the file only if it does not exist \
                     (create_new: O_CREAT | O_EXCL)"
                )
            } else {
                String::new()
            };
            panic!(
                "\n\nclaim {k} of {net}: {}{taken}\n",
                misplaced(net, got, want)
            );
        }
        let held = std::fs::read_to_string(dir.join(got.to_string())).unwrap_or_default();
        assert!(
            held == record,
            "\n\nclaim_next(dir, {net}, record) gave {got}, and the lease file {got} holds \
             {held:?}, not the record it was given ({record:?}): write the record into the \
             file you created (it says who holds the address)\n"
        );
    }
    // Full: an error, and no file more.
    let before = leases_in(&dir);
    let full = claim(&dir, net, "one too many\n");
    let after = leases_in(&dir);
    if let Ok(got) = full {
        panic!(
            "\n\nwith .18 to .30 of {net} taken, claim_next gave {got}: {}\n",
            misplaced(net, got, Ipv4Addr::new(0, 0, 0, 0))
                .split(": ")
                .skip(1)
                .collect::<Vec<_>>()
                .join(": ")
        );
    }
    assert!(
        before == after,
        "\n\nclaim_next on a full subnet failed, as it should, but the directory changed: \
         {before:?} then {after:?}\n"
    );

    // A released address is taken again first.
    let small = subnet("10.9.8.0/29");
    let dir = tmp.path().join("b-29");
    std::fs::create_dir(&dir).unwrap();
    for n in 2..=6 {
        let got = claim(&dir, small, "r\n");
        assert!(
            got == Ok(Ipv4Addr::new(10, 9, 8, n)),
            "\n\nclaim of {small}: {got:?}, where 10.9.8.{n} was due\n"
        );
    }
    std::fs::remove_file(dir.join("10.9.8.3")).unwrap();
    std::fs::remove_file(dir.join("10.9.8.5")).unwrap();
    for n in [3, 5] {
        let got = claim(&dir, small, "again\n");
        assert!(
            got == Ok(Ipv4Addr::new(10, 9, 8, n)),
            "\n\nafter 10.9.8.3 and 10.9.8.5 were released (their files removed), claim_next \
             gave {got:?}: a released address is free again, and the lowest free address comes \
             first (10.9.8.{n})\n"
        );
    }
    // The smallest subnet with room: a /30 has one address for a container.
    let tiny = subnet("192.168.77.4/30");
    let dir = tmp.path().join("c-30");
    std::fs::create_dir(&dir).unwrap();
    let got = claim(&dir, tiny, "only\n");
    let want = Ipv4Addr::new(192, 168, 77, 6);
    match got {
        Ok(got) if got != want => panic!("\n\nclaim of {tiny}: {}\n", misplaced(tiny, got, want)),
        Err(e) => panic!("\n\nclaim of {tiny} failed: {e}; {want} is free\n"),
        Ok(_) => {}
    }
    assert!(
        claim(&dir, tiny, "none\n").is_err(),
        "\n\na /30 holds one container's address ({want}): the second claim must fail\n"
    );
    // A directory that is not there is an error, not a full subnet.
    let missing = tmp.path().join("not-there");
    let got = claim(&missing, small, "x\n");
    assert!(
        got.is_err() && !missing.exists(),
        "\n\nclaim_next in a directory that does not exist gave {got:?}: an error\n"
    );
}

/// One claim of the race: who made it, and what it got.
struct Claimed {
    who: String,
    record: String,
    got: Result<Ipv4Addr, String>,
}

/// The race's verdict on one round: every claim an address of its own, no
/// failure while addresses were free, every lease file its winner's record.
fn judge_round(dir: &Path, net: Subnet, claims: &[Claimed], how: &str) {
    let free = u32::from(net.broadcast()) - u32::from(net.first_host()) - 1;
    let mut winners: BTreeMap<Ipv4Addr, Vec<&Claimed>> = BTreeMap::new();
    for c in claims {
        match &c.got {
            Ok(a) => winners.entry(*a).or_default().push(c),
            Err(e) => panic!(
                "\n\n{how}: {} claims of {net} ({free} addresses) at the same moment; {}'s \
                 failed while {} addresses were free: {e}\nwhen another run takes the address \
                 between your look and your create, the create says EEXIST: that address is \
                 taken, try the next one\n",
                claims.len(),
                c.who,
                free as usize - claims.len() + 1
            ),
        }
    }
    for (address, won) in &winners {
        if won.len() > 1 {
            let names: Vec<&str> = won.iter().map(|c| c.who.as_str()).collect();
            let held = std::fs::read_to_string(dir.join(address.to_string())).unwrap_or_default();
            let processes = if how.contains("processes") {
                "; they were other processes: a lock of your own process (a Mutex) does not \
                 stop them, only the kernel can (O_EXCL)"
            } else {
                ""
            };
            panic!(
                "\n\n{how}: {address} was won by more than one claim ({}); its file holds \
                 {held:?}. Looking first (exists()) and creating after lets two runs that \
                 looked at the same moment both take it{processes}. Make \"is it free?\" and \
                 \"take it\" one step: create_new (O_CREAT | O_EXCL) fails with EEXIST for all \
                 but one\n",
                names.join(", ")
            );
        }
    }
    let files = leases_in(dir);
    for (address, won) in &winners {
        let held = files.get(&address.to_string());
        assert!(
            held == Some(&won[0].record),
            "\n\n{how}: {address} went to {}, whose record is {:?}, and its lease file holds \
             {held:?}\n",
            won[0].who,
            won[0].record
        );
    }
    assert!(
        files.len() == claims.len(),
        "\n\n{how}: {} claims, {} lease files: {:?}\n",
        claims.len(),
        files.len(),
        files.keys().collect::<Vec<_>>()
    );
}

#[test]
fn ex10_2_runs_that_race_get_addresses_of_their_own() {
    super::own_work("10.2", "ch10_bridge.rs");
    let tmp = workshop_testkit::TempDir::new("ex10-2-race");
    let net = subnet("10.9.0.0/27"); // .2 to .30: 29 addresses
    let (threads, each) = (6, 4); // 24 claims a round

    // One claim alone first (an unsolved stub says so once, not per thread).
    let alone = tmp.path().join("alone");
    std::fs::create_dir(&alone).unwrap();
    if let Err(e) = claim(&alone, net, "alone\n") {
        panic!("\n\nclaim_next(dir, {net}, record) failed on an empty directory: {e}\n");
    }

    // Threads of this process, released at once by a barrier, round after
    // round: a race lost once is enough.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut rounds = 0;
    while rounds < 300 && Instant::now() < deadline {
        let dir = tmp.path().join(format!("threads-{rounds}"));
        std::fs::create_dir(&dir).unwrap();
        let barrier = std::sync::Barrier::new(threads);
        let claims: Vec<Claimed> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (dir, barrier) = (&dir, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        (0..each)
                            .map(|k| {
                                let record = format!("round {rounds} thread {t} claim {k}\n");
                                Claimed {
                                    who: format!("thread {t} claim {k}"),
                                    got: claim(dir, net, &record),
                                    record,
                                }
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        judge_round(
            &dir,
            net,
            &claims,
            &format!("round {rounds}, {threads} threads"),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        rounds += 1;
    }

    // Processes (the probe, with the code under test): chapter 10's runs are
    // processes, not threads. Each says it is ready; then all are told one
    // instant, a little later, to start at.
    // A /24, and most of it claimed: each probe races the others for tens
    // of milliseconds, longer than a time slice, so that they overlap even
    // on a busy machine.
    let wide = subnet("10.9.0.0/24");
    let (processes, each) = (4, 50);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut round = 0;
    while round < 30 && Instant::now() < deadline {
        use std::io::{BufRead, Read, Write};
        let dir = tmp.path().join(format!("processes-{round}"));
        std::fs::create_dir(&dir).unwrap();
        let mut children: Vec<_> = (0..processes)
            .map(|_| {
                let mut child = std::process::Command::new(crate::PROBE)
                    .args(["ch10-claim", &dir.to_string_lossy(), "10.9.0.0/24"])
                    .arg(each.to_string())
                    .env("RUST_BACKTRACE", "0")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("start the probe");
                let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
                let mut ready = String::new();
                out.read_line(&mut ready).expect("read the probe");
                (child, out, ready)
            })
            .collect();
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            + Duration::from_millis(50);
        for (child, _, _) in &mut children {
            // A probe that is not ready has failed: its stdin may be closed.
            if let Some(mut stdin) = child.stdin.take() {
                let _ = writeln!(stdin, "{}", start.as_nanos());
            }
        }
        let mut claims = Vec::new();
        for (mut child, mut out, ready) in children {
            let mut text = String::new();
            out.read_to_string(&mut text).expect("read the probe");
            let mut said = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut said)
                .expect("read the probe");
            let status = child.wait().expect("wait for the probe");
            assert!(
                status.success() && ready == "ready\n",
                "\n\nthe probe (ch10-claim) failed: {said}{ready}{text}\n"
            );
            let pid = text
                .lines()
                .find_map(|l| l.strip_prefix("pid="))
                .unwrap_or("?")
                .to_string();
            for line in text.lines() {
                let Some((k, answer)) = line.strip_prefix("claim ").and_then(|l| l.split_once('='))
                else {
                    continue;
                };
                claims.push(Claimed {
                    who: format!("process {pid} claim {k}"),
                    record: format!("pid {pid} claim {k}"),
                    got: answer.parse().map_err(|_| answer.to_string()),
                });
            }
        }
        assert_eq!(
            claims.len(),
            processes * each,
            "the probes reported fewer claims than they made"
        );
        judge_round(
            &dir,
            wide,
            &claims,
            &format!("round {round}, {processes} processes"),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        round += 1;
    }
}
