//! workshop_netlink against the kernel, each test in a network namespace of its
//! own: a network namespace belongs to a thread, so a test thread that
//! unshares one works in a sandbox that disappears with it, and nothing it
//! does can reach the machine's own network.

use nix::sched::{unshare, CloneFlags};
use std::net::Ipv4Addr;
use workshop_netlink::{errno_of, Netlink};

fn in_sandbox<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    workshop_testkit::require_root();
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        f()
    })
    .join()
    .expect("the sandbox thread panicked")
}

#[test]
fn a_new_namespace_has_only_lo_and_it_is_down() {
    let links = in_sandbox(|| Netlink::open().unwrap().links().unwrap());
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].name, "lo");
    assert!(!links[0].up);
}

#[test]
fn veth_pair_addresses_routes_rename_and_delete() {
    in_sandbox(|| {
        let mut nl = Netlink::open().unwrap();
        nl.add_veth("wst-a", "wst-b").unwrap();
        let links = nl.links().unwrap();
        for name in ["wst-a", "wst-b"] {
            let link = links
                .iter()
                .find(|l| l.name == name)
                .unwrap_or_else(|| panic!("{name} in {links:?}"));
            assert_eq!(link.kind.as_deref(), Some("veth"));
        }
        // A second pair with the same name: EEXIST, said as such.
        let again = nl.add_veth("wst-a", "wst-c").unwrap_err();
        assert_eq!(
            errno_of(&again),
            Some(nix::errno::Errno::EEXIST),
            "{again:#}"
        );

        nl.rename("wst-b", "eth0").unwrap();
        nl.add_address("wst-a", Ipv4Addr::new(10, 123, 0, 1), 24)
            .unwrap();
        nl.add_address("eth0", Ipv4Addr::new(10, 123, 0, 2), 24)
            .unwrap();
        for name in ["lo", "wst-a", "eth0"] {
            nl.set_up(name).unwrap();
        }
        let eth0 = nl.link("eth0").unwrap().unwrap();
        assert!(eth0.up);
        assert_eq!(eth0.name, "eth0");
        assert_eq!(eth0.kind.as_deref(), Some("veth"));
        assert_eq!(
            nl.link("wst-b").unwrap(),
            None,
            "renamed: no wst-b any more"
        );
        let addresses = nl.addresses().unwrap();
        assert!(
            addresses
                .iter()
                .any(|a| a.address == Ipv4Addr::new(10, 123, 0, 2) && a.prefix == 24),
            "{addresses:?}"
        );

        nl.add_default_route(Ipv4Addr::new(10, 123, 0, 1)).unwrap();
        let routes = nl.routes().unwrap();
        assert!(
            routes
                .iter()
                .any(|r| r.prefix == 0 && r.gateway == Some(Ipv4Addr::new(10, 123, 0, 1))),
            "{routes:?}"
        );
        assert!(
            routes
                .iter()
                .any(|r| r.prefix == 24 && r.destination == Ipv4Addr::new(10, 123, 0, 0)),
            "{routes:?}"
        );

        nl.delete_link("wst-a").unwrap();
        let names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["lo"], "deleting one end of a veth deletes both");
        assert_eq!(
            errno_of(&nl.delete_link("wst-a").unwrap_err()),
            Some(nix::errno::Errno::ENODEV)
        );
    });
}

#[test]
fn a_link_moves_into_another_processes_namespace() {
    in_sandbox(|| {
        // A process in a network namespace of its own, child of this sandbox.
        let mut other = std::process::Command::new("unshare")
            .args(["--net", "sleep", "10"])
            .spawn()
            .unwrap();
        let pid = other.id();
        let mine = std::fs::metadata("/proc/thread-self/ns/net")
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap();
        let start = std::time::Instant::now();
        while std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap()
            == mine
        {
            assert!(
                start.elapsed().as_secs() < 5,
                "unshare did not make a network namespace"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut nl = Netlink::open().unwrap();
        nl.add_veth("wst-host", "wst-inside").unwrap();
        nl.move_to_namespace_of("wst-inside", pid).unwrap();
        let names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
        assert!(
            names.contains(&"wst-host".to_string()) && !names.contains(&"wst-inside".to_string()),
            "{names:?}"
        );
        // When that namespace goes, its end goes, and the pair with it.
        other.kill().unwrap();
        other.wait().unwrap();
        let start = std::time::Instant::now();
        while nl.link("wst-host").unwrap().is_some() {
            assert!(
                start.elapsed().as_secs() < 10,
                "the host end outlived the other namespace"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
}
