//! Checks for chapter 6: `cargo test -p exercises ch06`.

use super::probe_in_net_sandbox;
use std::net::Ipv4Addr;

#[test]
fn ex6_1_the_host_end_takes_the_first_address() {
    use crate::under_test::ch06_net::host_address;
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    assert_eq!(host_address(ip("10.200.0.2"), 24), Ok(ip("10.200.0.1")));
    assert_eq!(host_address(ip("10.200.0.77"), 24), Ok(ip("10.200.0.1")));
    assert_eq!(host_address(ip("172.30.5.6"), 30), Ok(ip("172.30.5.5")));
    assert_eq!(host_address(ip("10.9.200.3"), 16), Ok(ip("10.9.0.1")));
    for (addr, prefix, why) in [
        ("10.200.0.2", 31, "a /31 has no room for two hosts"),
        ("10.200.0.2", 32, "a /32 is one address"),
        ("10.200.0.0", 24, "the network address"),
        ("10.200.0.255", 24, "the broadcast address"),
        ("10.200.0.1", 24, "the first address is the host's"),
    ] {
        assert!(
            host_address(ip(addr), prefix).is_err(),
            "{addr}/{prefix} should be refused: {why}"
        );
    }
}

#[test]
fn ex6_2_inside_lo_and_eth0_are_up_with_a_default_route() {
    let report = probe_in_net_sandbox("ch06-inside", "6.2", "ch06_net.rs");
    assert_eq!(report.get("link_lo"), "up", "lo should be up");
    assert_eq!(
        report.get("link_eth0"),
        "up",
        "the cable should be renamed eth0 and be up"
    );
    assert!(
        !report.text.contains("link_wsc-probe"),
        "the old name should be gone"
    );
    assert!(
        report.text.contains("address=10.200.0.2/24"),
        "eth0 should have 10.200.0.2/24:\n{}",
        report.text
    );
    assert_eq!(
        report.get("default_via"),
        "10.200.0.1",
        "the default route goes through the host end"
    );
    assert_eq!(report.get("ping"), "0", "the host end should answer a ping");
}
