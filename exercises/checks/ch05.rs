//! Checks for chapter 5: `cargo test -p exercises ch05`.

use super::probe;

#[test]
fn ex5_1_hostnames_are_validated() {
    use crate::under_test::ch05_uts::validate_hostname;
    super::own_work("5.1", "ch05_uts.rs");
    let label_63 = "a".repeat(63);
    let name_64 = format!("{}.{}", "a".repeat(31), "b".repeat(32));
    let good: &[(&str, &str)] = &[
        ("box1", "letters and digits"),
        ("a", "one letter is a label"),
        ("my-box.example", "a hyphen inside a label, two labels"),
        ("x1.y2.z3", "three labels"),
        (&label_63, "a label may have 63 characters"),
        (
            &name_64,
            "a name may have 64 bytes (HOST_NAME_MAX), the kernel's limit",
        ),
        (
            "1box",
            "a label may start with a digit (RFC 1123 relaxed RFC 952)",
        ),
        ("9", "a label of one digit is fine too"),
        (
            "Box1.Example",
            "capitals are fine: hostnames are case-insensitive",
        ),
    ];
    for (name, why) in good {
        if let Err(e) = validate_hostname(name) {
            panic!(
                "\n\n{name:?} ({} bytes) is a good hostname, but was refused ({e}): {why}\n",
                name.len()
            );
        }
    }
    let too_long = "a".repeat(65);
    let long_label = "a".repeat(64);
    let short_labels_65 = format!("{}.{}", "a".repeat(32), "b".repeat(32));
    let bad: &[(&str, &str)] = &[
        ("", "a hostname has at least 1 byte"),
        ("bad_name", "`_` is not a letter, digit or hyphen"),
        ("-x", "a label cannot start with a hyphen"),
        ("x-", "a label cannot end with a hyphen"),
        (
            "a-.b",
            "each label, not only the whole name: `a-` ends with a hyphen",
        ),
        (
            "a.-b",
            "each label, not only the whole name: `-b` starts with a hyphen",
        ),
        ("a..b", "an empty label between two dots"),
        (".a", "an empty label before the first dot"),
        ("a.", "an empty label after the last dot"),
        ("sp ace", "a space is not allowed"),
        ("é", "letters are ASCII only: `é` is 2 bytes of UTF-8"),
        (
            "box٣",
            "digits are ASCII only: `٣` is an Arabic-Indic digit",
        ),
        (&too_long, "65 bytes: a hostname has at most 64"),
        (
            &short_labels_65,
            "65 bytes in two labels of 32: a hostname has at most 64 bytes \
             (HOST_NAME_MAX), whatever its labels; 253 is DNS's limit for a whole name, not \
             the kernel's",
        ),
        (
            &long_label,
            "a label of 64 characters: a label has at most 63",
        ),
    ];
    for (name, why) in bad {
        match validate_hostname(name) {
            Ok(()) => panic!("\n\n{name:?} was accepted, but should be refused: {why}\n"),
            Err(e) if e.trim().is_empty() => {
                panic!("\n\nthe error for {name:?} is empty: say what is wrong ({why})\n")
            }
            Err(_) => {}
        }
    }
}

#[test]
fn ex5_2_the_child_has_its_own_hostname() {
    // The probe runs in a UTS namespace of its own, named `probe-host-5-2`: a
    // wrong answer renames that one, never your machine.
    let report = probe("ch05-hostname", "5.2", "ch05_uts.rs");
    let (ns_before, ns_after) = (
        report.get("probe_uts_before"),
        report.get("probe_uts_after"),
    );
    assert_eq!(
        ns_after, ns_before,
        "\n\nthe caller was in {ns_before} and is now in {ns_after}: your code moved the \
         caller (unshare in the parent?). Only the child gets a new UTS namespace: \
         clone it with CLONE_NEWUTS\n"
    );
    let inside_ns = report.get("inside_uts");
    assert_ne!(
        inside_ns, ns_before,
        "\n\nthe child is in the caller's UTS namespace ({inside_ns}): clone it with \
         CLONE_NEWUTS, or its sethostname renames the host\n"
    );
    let (before, after) = (report.get("host_before"), report.get("host_after"));
    assert_eq!(
        after, before,
        "\n\nthe caller's hostname went from {before:?} to {after:?}: sethostname ran in \
         the caller's UTS namespace, not in the child's new one. Call it inside the \
         clone's closure. (The check ran in a UTS namespace of its own: your \
         machine kept its name.)\n"
    );
    assert_eq!(
        report.get("inside"),
        "exercise-5-2",
        "\n\n`hostname` in the child printed another name: set the name in the child, \
         before it execs\n"
    );
    assert_eq!(report.get("exit"), "0", "the child should exit 0");
    if let Some(code) = report.values.get("bad_name_exit").filter(|c| *c != "0") {
        panic!(
            "\n\nfor `bad_name!` a child was started, and exited {code}: the name was \
             checked in the child. Validate in the parent, before clone: the caller gets \
             the error, and nothing is started\n"
        );
    }
    assert_eq!(
        report.get("bad_name_refused"),
        "true",
        "\n\n`bad_name!` was accepted: the kernel takes any bytes as a hostname, so \
         refuse it yourself, with validate_hostname, before cloning\n"
    );
    assert_eq!(
        report.get("bad_name_spawned"),
        "false",
        "\n\na child was started for `bad_name!`: validate in the parent, before clone\n"
    );
}

#[test]
fn ex5_3_the_namespace_gets_a_domain_name() {
    // The probe runs the code in a child with a UTS namespace of its own
    // (named `box-5-3`), itself inside the probe's own UTS namespace.
    let report = probe("ch05-domainname", "5.3", "ch05_uts.rs");
    assert_eq!(
        report.get("uts_moved"),
        "false",
        "\n\nset_domainname moved the caller into a new UTS namespace: the caller is \
         already in the container's; set the name there\n"
    );
    assert_eq!(
        report.get("set_ok"),
        "true",
        "\n\nset_domainname(\"workshop.test\") failed: {}\n",
        report.text
    );
    let hostname = report.get("hostname");
    assert_eq!(
        hostname, "box-5-3",
        "\n\nthe hostname is now {hostname:?}: setdomainname(2) sets the domain name, \
         sethostname(2) the hostname; leave the hostname alone\n"
    );
    assert_eq!(
        report.get("domain"),
        "workshop.test",
        "\n\nuname() reports the domain name {:?}, not \"workshop.test\"\n",
        report.get("domain")
    );
    assert_eq!(
        report.get("long_ok"),
        "true",
        "\n\na 64-byte domain name was refused ({}): 64 bytes is the limit, and \
         setdomainname takes the length without a NUL\n",
        report.values.get("long_error").map_or("", String::as_str)
    );
    let long = format!("{}.{}", "a".repeat(31), "b".repeat(32));
    assert_eq!(
        report.get("long_domain"),
        long,
        "\n\nafter setting a 64-byte name, uname() reports another\n"
    );
    for (key, what, idea) in [
        (
            "too_long",
            "65 bytes",
            "a name longer than 64 bytes is refused, not cut short: cut, the container \
             gets a name nobody asked for",
        ),
        (
            "empty",
            "an empty name",
            "the kernel takes an empty one, so refuse it before any syscall",
        ),
    ] {
        let after = report.get(&format!("{key}_domain_after"));
        assert_eq!(
            report.get(&format!("{key}_changed")),
            "false",
            "\n\nafter set_domainname({what}) the kernel reports the domain name {after:?}: \
             {idea}\n"
        );
        assert_eq!(
            report.get(&format!("{key}_refused")),
            "true",
            "\n\nset_domainname({what}) returned Ok: it should be an error\n"
        );
    }
    let (before, after) = (
        report.get("outer_domain_before"),
        report.get("outer_domain_after"),
    );
    assert_eq!(
        after, before,
        "\n\nthe domain name outside the container went from {before:?} to {after:?}\n"
    );
}
