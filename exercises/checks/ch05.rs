//! Checks for chapter 5: `cargo test -p exercises ch05`.

use super::probe;

#[test]
fn ex5_1_hostnames_are_validated() {
    use crate::under_test::ch05_uts::validate_hostname;
    let long_label = "a".repeat(63);
    for good in [
        "box1",
        "a",
        "my-box.example",
        "x1.y2.z3",
        long_label.as_str(),
    ] {
        assert_eq!(
            validate_hostname(good),
            Ok(()),
            "{good:?} is a good hostname"
        );
    }
    let too_long = "a".repeat(65);
    let long_label = "a".repeat(64);
    for bad in [
        "",
        "bad_name",
        "-x",
        "x-",
        "a..b",
        ".a",
        "a.",
        "sp ace",
        "é",
        too_long.as_str(),
        long_label.as_str(),
    ] {
        let verdict = validate_hostname(bad);
        assert!(verdict.is_err(), "{bad:?} should be refused");
        assert!(
            !verdict.unwrap_err().is_empty(),
            "the error for {bad:?} should say what is wrong"
        );
    }
}

#[test]
fn ex5_2_the_child_has_its_own_hostname() {
    let report = probe("ch05-hostname", "5.2", "ch05_uts.rs");
    assert_eq!(
        report.get("inside"),
        "exercise-5-2",
        "`hostname` in the child should print the name you set"
    );
    assert_eq!(report.get("exit"), "0");
    assert_eq!(
        report.get("host_after"),
        report.get("host_before"),
        "the host must keep its hostname"
    );
    assert_eq!(
        report.get("bad_name_refused"),
        "true",
        "an invalid name must be an error"
    );
    assert_eq!(
        report.get("bad_name_spawned"),
        "false",
        "nothing may be started for an invalid name"
    );
}
