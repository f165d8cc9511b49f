//! Checks for chapter 12: `cargo test -p exercises ch12`.

use super::{probe, Report};

/// A capability mask the probe printed (`00000000a80425fb`).
fn mask(report: &Report, key: &str) -> u64 {
    u64::from_str_radix(report.get(key), 16)
        .unwrap_or_else(|_| panic!("`{key}` is no capability mask:\n{}", report.text))
}

/// A mask as capability names, for the student.
fn names(mask: u64) -> String {
    let names: Vec<String> = caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| c.to_string().to_lowercase())
        .collect();
    if names.is_empty() {
        "none".into()
    } else if names.len() > 6 {
        format!(
            "{} capabilities ({}, ...)",
            names.len(),
            names[..4].join(", ")
        )
    } else {
        names.join(", ")
    }
}

#[test]
fn ex12_1_only_the_kept_capabilities_are_left_in_every_set_even_after_an_exec() {
    let report = probe("ch12-caps", "12.1", "ch12_hardened.rs");
    let context = format!("\nwhat the probe saw:\n{}", report.text);
    let kept = mask(&report, "kept") & mask(&report, "before CapBnd");
    let said = report.get("drop");
    if said != "ok" {
        let said = said.strip_prefix("error: ").unwrap_or(said);
        let idea = if mask(&report, "self CapBnd") == mask(&report, "before CapBnd") {
            "the bounding set first: dropping from it (PR_CAPBSET_DROP) needs CAP_SETPCAP in the \
             effective set, and this check does not keep it: once the effective set is cut, the \
             bounding set can no longer be"
        } else {
            "the order of capset(): effective before permitted: the kernel refuses a permitted set \
             that lacks a capability the effective set still holds (EPERM)"
        };
        panic!("\n\ndrop_capabilities(CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE) failed: {said}\n{idea}\n{context}");
    }
    for set in ["CapBnd", "CapPrm", "CapEff"] {
        let now = mask(&report, &format!("self {set}"));
        assert!(
            now & kept == kept,
            "\n\nafter drop_capabilities, {set} lacks {}: these are to be kept, in the bounding, \
             permitted and effective sets (cut each to what it holds that is kept, not to \
             nothing){context}",
            names(kept & !now)
        );
    }
    let extra = |key: &str, allowed: u64| mask(&report, key) & !allowed;
    let bnd = extra("self CapBnd", kept);
    assert!(
        bnd == 0,
        "\n\nafter drop_capabilities, CapBnd (the bounding set) still holds {}: the process looks \
         tame, but at its next exec root gets back every capability the bounding set holds. Drop \
         each one not kept from it (PR_CAPBSET_DROP), first{context}",
        names(bnd)
    );
    let amb = extra("self CapAmb", 0);
    assert!(
        amb == 0,
        "\n\nafter drop_capabilities, CapAmb (the ambient set) still holds {} (the probe raised it \
         before): what is ambient survives every exec, even as a normal user. Clear the ambient \
         set{context}",
        names(amb)
    );
    let inh = extra("self CapInh", kept);
    assert!(
        inh == 0,
        "\n\nafter drop_capabilities, CapInh (the inheritable set) still holds {} (the probe filled \
         it before): root's next exec takes it into its permitted set. Cut it to the kept \
         ones{context}",
        names(inh)
    );
    let prm = extra("self CapPrm", kept);
    assert!(
        prm == 0,
        "\n\nafter drop_capabilities, CapPrm (the permitted set) still holds {}: a program may raise \
         any of them back into its effective set. Cut it, after the effective set{context}",
        names(prm)
    );
    let eff = extra("self CapEff", kept);
    assert!(
        eff == 0,
        "\n\nafter drop_capabilities, CapEff (the effective set) still holds {}{context}",
        names(eff)
    );
    for set in ["CapBnd", "CapPrm", "CapEff", "CapInh"] {
        let after = extra(&format!("exec {set}"), kept);
        assert!(
            after == 0,
            "\n\nafter an exec (`cat /proc/self/status`, run by the probe once your function \
             returned), {set} holds {} again: root's exec takes the bounding and inheritable \
             sets{context}",
            names(after)
        );
    }
}

#[test]
fn ex12_2_a_file_reads_empty_a_directory_is_empty_and_read_only_a_missing_path_is_skipped() {
    let report = probe("ch12-mask", "12.2", "ch12_hardened.rs");
    let context = format!("\nwhat the probe saw:\n{}", report.text);
    for (name, what, idea) in [
        ("file", "a file of the check's own (/tmp/ex12/secret.txt)",
         "a file is masked by binding /dev/null over it (MS_BIND): a tmpfs mounts only on a directory"),
        ("dir", "a directory of the check's own (/tmp/ex12/secrets)",
         "/dev/null is no directory, and the kernel binds a file only over a file (ENOTDIR): a \
          directory is masked with an empty read-only tmpfs"),
        ("missing", "a path that does not exist (/tmp/ex12/no-such-file)",
         "a path that does not exist is skipped: return Ok (not every kernel has every /proc file, \
          and one missing must not stop the container)"),
        ("proc_file", "/proc/timer_list", "a file: /dev/null bound over it"),
        ("proc_dir", "/proc/fs", "a directory: an empty read-only tmpfs over it"),
        ("proc_missing", "/proc/ex12-no-such-file", "a path that does not exist is skipped: Ok"),
    ] {
        let said = report.get(&format!("mask {name}"));
        assert!(
            said == "ok",
            "\n\nmask_path on {what} failed: {}\n{idea}\n{context}",
            said.strip_prefix("error: ").unwrap_or(said)
        );
    }
    assert_eq!(
        report.get("under_file_text"),
        "secret",
        "\n\nseen from elsewhere (a bind of the tree the probe made before), the file itself was \
         changed: mask it with a mount over it, and leave the file as it is{context}"
    );
    assert!(
        report.get("file_text").is_empty() && report.get("file_rdev") == "1:3",
        "\n\nafter mask_path, /tmp/ex12/secret.txt reads `{}` (device {}): it should be /dev/null, \
         bound over it (device 1:3), and read empty{context}",
        report.get("file_text"),
        report.get("file_rdev")
    );
    assert_eq!(
        report.get("dir_entries"),
        "0",
        "\n\nafter mask_path, the directory /tmp/ex12/secrets still shows entries: an empty tmpfs \
         over it hides them{context}"
    );
    assert_eq!(
        report.get("dir_write"),
        "EROFS",
        "\n\na write in the masked directory gave {}, not EROFS: the tmpfs is to be read-only \
         (MS_RDONLY), or the container may fill it and hide things there{context}",
        report.get("dir_write")
    );
    assert!(
        report.get("beside_text") == "beside"
            && report.get("beside_dir_entries") == "1"
            && report.get("under_dir_entries") == "1",
        "\n\nthe paths beside the masked ones changed: mask only the path you are given{context}"
    );
    assert!(
        report.number("timer_list_before") > 0 && report.number("timer_list_after") == 0,
        "\n\n/proc/timer_list should read empty once masked{context}"
    );
    assert!(
        report.get("proc_dir_entries") == "0" && report.get("proc_dir_write") == "EROFS",
        "\n\n/proc/fs should be empty and read-only once masked{context}"
    );
    assert!(
        report.number("uptime") > 0,
        "\n\n/proc/uptime, which was not masked, reads empty: mask only the path you are \
         given{context}"
    );
}
