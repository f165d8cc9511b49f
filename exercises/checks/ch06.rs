//! Checks for chapter 6: `cargo test -p exercises ch06`.

use super::probe_in_net_sandbox;
use std::net::Ipv4Addr;

#[test]
fn ex6_1_the_host_end_takes_the_first_address() {
    use crate::under_test::ch06_net::host_address;
    super::own_work("6.1", "ch06_net.rs");
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    // A panic (a shift that overflows, say) is reported as such.
    let call = |addr: &str, prefix: u8| {
        let (addr, got) = (
            ip(addr),
            std::panic::catch_unwind(|| host_address(ip(addr), prefix)),
        );
        got.unwrap_or_else(|payload| {
            let said = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if said.contains("not yet implemented") {
                std::panic::resume_unwind(payload); // the stub: its todo!() says it all
            }
            let idea = match prefix {
                0 => "the mask of a /0 is 0: `u32::MAX << 32` overflows",
                33.. => "a prefix over 32 is an error, refused before `32 - prefix` overflows",
                _ => "a shift or a subtraction overflowed",
            };
            panic!(
                "\n\nhost_address({addr}, {prefix}) panicked: a prefix from 0 to 32 and any \
                 other u8 must give Ok or Err ({idea})\n"
            )
        })
    };
    for (addr, prefix, first, why) in [
        ("10.200.0.2", 24, "10.200.0.1", "the chapter's own case"),
        ("10.200.0.77", 24, "10.200.0.1", "any host of the /24"),
        (
            "172.30.5.6",
            30,
            "172.30.5.5",
            "a /30 has exactly two hosts: the cable's ends",
        ),
        (
            "10.9.200.3",
            16,
            "10.9.0.1",
            "a /16: the network is 10.9.0.0, not 10.9.200.0",
        ),
        (
            "192.168.1.130",
            25,
            "192.168.1.129",
            "a /25: the upper half of the /24",
        ),
        ("10.200.0.2", 8, "10.0.0.1", "a /8"),
        (
            "10.200.0.2",
            0,
            "0.0.0.1",
            "a /0: the mask is 0, the network 0.0.0.0",
        ),
    ] {
        let got = call(addr, prefix);
        // The mistake, named from the answer: the last byte set to 1, or the
        // network's bits lost to a mask that keeps the host's.
        let [a, b, c, _] = ip(addr).octets();
        let network_bits = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let mistake = match got {
            Ok(g) if g == Ipv4Addr::new(a, b, c, 1) => {
                " (the last byte set to 1 is the first address of a /24 only)"
            }
            Ok(g) if u32::from(g) & network_bits == 0 && network_bits != 0 => {
                " (the network's bits are gone: the mask keeps the first `prefix` bits, \
                 not the host's)"
            }
            _ => "",
        };
        assert_eq!(
            got,
            Ok(ip(first)),
            "\n\nhost_address({addr}, {prefix}) gave {got:?}; the first address of \
             {addr}/{prefix} is {first}: {why}{mistake}\n"
        );
    }
    for (addr, prefix, why) in [
        ("10.200.0.2", 31, "a /31 has no room for two hosts"),
        ("10.200.0.2", 32, "a /32 is one address"),
        (
            "10.200.0.2",
            33,
            "there is no /33: an IPv4 prefix is 0 to 32",
        ),
        ("10.200.0.2", 255, "there is no /255"),
        ("10.200.0.0", 24, "the network address"),
        ("10.200.0.255", 24, "the broadcast address"),
        ("10.200.0.1", 24, "the first address is the host's"),
        (
            "192.168.1.127",
            25,
            "the broadcast address of 192.168.1.0/25",
        ),
        (
            "192.168.1.128",
            25,
            "the network address of 192.168.1.128/25",
        ),
        ("0.0.0.1", 0, "the first address of 0.0.0.0/0"),
    ] {
        let got = call(addr, prefix);
        assert!(
            got.is_err(),
            "\n\nhost_address({addr}, {prefix}) gave {got:?}; it should be refused: {why}\n"
        );
    }
}

#[test]
fn ex6_2_inside_lo_and_eth0_are_up_with_a_default_route() {
    // The chapter's addresses, then others: the answer must use its arguments.
    for (scenario, host, container, prefix) in [
        ("ch06-inside", "10.200.0.1", "10.200.0.2", 24),
        ("ch06-inside-2", "172.31.7.1", "172.31.7.6", 28),
    ] {
        check_inside(scenario, host, container, prefix);
    }
}

fn check_inside(scenario: &str, host: &str, container: &str, prefix: u8) {
    let report = probe_in_net_sandbox(scenario, "6.2", "ch06_net.rs");
    let call = format!("configure_inside(\"wsc-probe\", {host}, {container}, {prefix})");
    if let Some(e) = report.values.get("configure_error") {
        // An address with another prefix than the one given: named.
        let wrong_prefix = report
            .values
            .get("addresses")
            .and_then(|listed| {
                listed.split_whitespace().find_map(|a| {
                    let p = a.strip_prefix(&format!("eth0:{container}/"))?;
                    (p != prefix.to_string()).then(|| {
                        format!(
                            "eth0 has {container}/{p}, not /{prefix}: with a /{p} no subnet \
                             on eth0 holds the gateway {host}, so no route leads to it\n"
                        )
                    })
                })
            })
            .unwrap_or_default();
        panic!(
            "\n\n{call} failed: {e}\n{wrong_prefix}(the default route needs eth0 up with \
             `container/prefix` on it first: the gateway must be on eth0's subnet; \
             kernels before 6.2 also refuse to rename a link that is up)\nthe kernel then showed:\n{}\n",
            report.text
        );
    }
    let lo = report.get("link_lo");
    assert_eq!(
        lo, "up",
        "\n\nlo is {lo}: bring it up, or 127.0.0.1 does not answer inside\n"
    );
    assert!(
        !report.text.contains("link_wsc-probe"),
        "\n\nthe cable still has its old name wsc-probe: rename it to eth0\n"
    );
    let eth0 = report.get("link_eth0");
    assert_eq!(
        eth0, "up",
        "\n\neth0 is {eth0}: bring it up after the rename\n"
    );
    let addresses = report.get("addresses");
    let listed: Vec<&str> = addresses.split_whitespace().collect();
    assert!(
        !listed.iter().any(|a| a.contains(&format!(":{host}/"))),
        "\n\nthe kernel lists these addresses inside: {addresses}\n{host} is the host \
         end's: the container takes `container`\n"
    );
    let mine = format!("eth0:{container}/{prefix}");
    if !listed.contains(&mine.as_str()) && host != "10.200.0.1" {
        panic!(
            "\n\nafter {call} the kernel lists these addresses inside: {addresses}\nnot \
             {container}/{prefix} on eth0: use the addresses and prefix the function is \
             given, not the chapter's example (10.200.0.2/24 via 10.200.0.1)\n"
        );
    }
    assert!(
        listed.contains(&mine.as_str()),
        "\n\nthe kernel lists these addresses inside: {addresses}\n{container}/{prefix} \
         belongs on eth0, the container's end of the cable (an address on lo is reachable \
         only from inside)\n"
    );
    let via = report.values.get("default_via").unwrap_or_else(|| {
        panic!("\n\nthere is no default route inside: add one via the host end, {host}\n")
    });
    assert_eq!(
        via, host,
        "\n\nthe default route goes via {via}, not the host end ({host})\n"
    );
    let dev = report.get("default_dev");
    assert_eq!(
        dev, "eth0",
        "\n\nthe kernel would send a packet for 192.0.2.7 out of {dev}: the default route \
         should leave by eth0\n"
    );
    assert_eq!(
        report.get("ping_lo"),
        "0",
        "\n\n127.0.0.1 does not answer inside\n"
    );
    assert_eq!(
        report.get("ping"),
        "0",
        "\n\nthe ping to the host end ({host}) got no answer\n"
    );
    let echoes = report.number("host_echo_requests");
    assert!(
        echoes >= 1,
        "\n\nthe ping inside got an answer, but the host end's namespace received {echoes} \
         echo requests (Icmp InEchos): the ping never crossed the veth, something inside \
         answered it. Put {container}/{prefix} on eth0\n"
    );
}

#[test]
fn ex6_3_the_link_a_packet_would_leave_by() {
    let report = probe_in_net_sandbox("ch06-route", "6.3", "ch06_net.rs");
    assert_eq!(report.get("alone"), "true", "{}", report.text);
    // The links the probe made, as name:index, for naming an index taken
    // as a position; and whether every destination got one same link.
    let links: Vec<(&str, usize)> = report
        .get("links")
        .split_whitespace()
        .filter_map(|l| {
            let (name, index) = l.split_once(':')?;
            Some((name, index.parse().ok()?))
        })
        .collect();
    let answers: Vec<&str> = ["10.200.0.9", "10.201.0.9", "10.200.0.1", "192.0.2.7"]
        .iter()
        .map(|d| report.get(&format!("answer_{d}")))
        .collect();
    let one_for_all = answers.windows(2).all(|w| w[0] == w[1]);
    for (dest, expected, why) in [
        (
            "10.200.0.9",
            "wsh-probe",
            "10.200.0.0/24 is wsh-probe's subnet",
        ),
        (
            "10.201.0.9",
            "wsc-probe",
            "10.201.0.0/24 is wsc-probe's subnet",
        ),
        (
            "10.200.0.1",
            "lo",
            "the machine's own address: the local table sends it through lo",
        ),
        ("127.0.0.1", "lo", "loopback"),
        (
            "192.0.2.7",
            "wsh-probe",
            "no subnet holds it: the default route via 10.200.0.2 does",
        ),
        (
            "192.0.2.8",
            "err",
            "in a namespace with only lo, nothing leads there",
        ),
    ] {
        let kernel = report.get(&format!("kernel_{dest}"));
        assert_eq!(
            kernel, expected,
            "the probe's own setup is off:\n{}",
            report.text
        );
        let answer = report.get(&format!("answer_{dest}"));
        let matches = if expected == "err" {
            answer.starts_with("err")
        } else {
            answer == expected
        };
        let index = links.iter().find(|l| l.0 == expected).map(|l| l.1);
        let at_position = index.map(|i| links.get(i - 1).map_or("err", |l| l.0));
        let mistake = if !matches && at_position.is_some_and(|p| answer.starts_with(p)) {
            format!(
                "{expected}'s index is {}, not its position in links(): a deleted link left \
                 a hole in the indexes\n",
                index.unwrap_or(0)
            )
        } else if !matches && one_for_all && dest != "192.0.2.8" {
            format!(
                "{answer:?} for every destination: there is more than one way out, and only \
                 the kernel's route says which\n"
            )
        } else {
            String::new()
        };
        assert!(
            matches,
            "\n\nlink_towards({dest}) gave {answer:?}; the kernel's route (`ip route get \
             {dest}`) leaves by {expected}: {why}\n{mistake}(ask the kernel with route_to, \
             and name the link whose `index` is the one it gives; an unreachable destination \
             is an Err)\n"
        );
    }
}
