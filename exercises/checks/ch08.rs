//! Checks for chapter 8: `cargo test -p exercises ch08`.

use super::probe;

#[test]
fn ex8_1_an_overlay_of_the_given_layers() {
    let report = probe("ch08-mount", "8.1", "ch08_overlay.rs");
    let (lowers, upper, work) = (
        report.get("lowers"),
        report.get("upper"),
        report.get("work"),
    );
    if let Some(error) = report.values.get("error") {
        // The options, when the error says them (the solution's does).
        let said = |key: &str| {
            let at = error.find(&format!("{key}="))? + key.len() + 1;
            error[at..].split([',', ')', ' ']).next()
        };
        let specific = match (said("upperdir"), said("workdir")) {
            (Some(u), Some(w)) if u == w => {
                "upperdir and workdir are the same directory: overlayfs needs a work \
                 directory of its own beside the upper. "
            }
            (Some(u), Some(w)) if w.starts_with(&format!("{u}/")) => {
                "workdir is inside upperdir: it would show in the container's root. "
            }
            _ => "",
        };
        let idea = if error.contains("EINVAL") {
            "the kernel refused the options (EINVAL): upperdir and workdir must be two \
             different directories on one filesystem, neither inside the other (the \
             kernel says \"workdir and upperdir must be separate subtrees\"), and \
             lowerdir holds the lowers joined by ':'"
        } else {
            "mount(\"overlay\", merged, \"overlay\", 0, \"lowerdir=TOP:...:BASE,upperdir=UPPER,workdir=WORK\")"
        };
        panic!(
            "\n\nmount_overlay(lowers, upper, work, merged) failed: {error}\n(lowers {lowers}, \
             upper {upper}, work {work})\n{specific}{idea}\n"
        );
    }
    let fstype = report.get("merged_fstype");
    assert!(
        fstype == "overlay",
        "\n\nthe kernel lists {} at merged: not an overlay. {}A container's root is a \
         mount of type overlay, mount(\"overlay\", merged, \"overlay\", 0, \"lowerdir=...,upperdir=...,workdir=...\"): \
         the lowers stay read-only and every write goes to the upper\n",
        if fstype == "none" {
            "nothing mounted".to_string()
        } else {
            format!("a mount of type {fstype}")
        },
        if fstype == "none" {
            ""
        } else {
            "A bind mount of a layer shows that one directory alone, and every write \
             lands in it, shared by every container started on it. "
        },
    );
    let host = report.get("host_sees");
    assert_eq!(
        host, "nothing",
        "\n\nthe overlay reached the stand-in host: it lists an {host} mount at merged too. \
         The container's namespace is a copy of the host's whose mounts are still shared \
         with it, and a mount made there propagates back. Make the mounts private first \
         (MS_REC | MS_PRIVATE on /, chapter 3), then mount the overlay\n"
    );
    let options = report.get("merged_options");
    let option = |key: &str| {
        options
            .split(',')
            .find_map(|o| o.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .unwrap_or("")
    };
    let given: Vec<&str> = lowers.split(':').collect();
    let got: Vec<&str> = option("lowerdir").split(':').collect();
    let mut reversed = given.clone();
    reversed.reverse();
    let idea = if got == reversed {
        "they are the base first: in lowerdir=a:b:c the FIRST is the top (its names \
         hide the same names below), so pass them in the order given, the top one first"
    } else if got.len() < given.len() {
        "some of the layers are missing: every lower goes into lowerdir, joined by ':'"
    } else {
        "pass the lowers in the order given, joined by ':'"
    };
    assert_eq!(
        got,
        given,
        "\n\nthe overlay at merged has lowerdir={}, not the lowers as given ({lowers}): \
         {idea}\n(the kernel's options: {options})\n",
        option("lowerdir")
    );
    let (upperdir, workdir) = (option("upperdir"), option("workdir"));
    assert!(
        upperdir == upper && workdir == work,
        "\n\nthe overlay at merged has upperdir={upperdir:?} and workdir={workdir:?}, where \
         upper is {upper} and work is {work}: {}\n(the kernel's options: {options})\n",
        if upperdir.is_empty() {
            "no upperdir makes a read-only overlay: every write fails (EROFS); give it \
             upperdir=UPPER and workdir=WORK"
        } else if upperdir == work && workdir == upper {
            "upperdir and workdir are swapped: the writes land in work, where overlayfs \
             keeps its scratch files, and upper stays empty"
        } else {
            "upperdir is the directory that takes the writes, workdir overlayfs's scratch space"
        }
    );
    assert_eq!(
        report.get("read_layer"),
        "layer-top",
        "a read of a name every layer has should reach the top layer"
    );
    assert_eq!(
        report.get("read_mid_and_base"),
        "mid",
        "a name in the middle layer should hide the base's"
    );
    assert_eq!(
        report.get("write"),
        "ok",
        "a write through merged should succeed"
    );
    assert_eq!(
        report.get("upper_copy"),
        "\"base\\nwritten\\n\"",
        "\n\nafter a write to /etc/base-file through merged, the upper holds {}: the first \
         write copies the lower's file up into the upper, and changes it there\n",
        report.get("upper_copy_kind")
    );
    assert_eq!(
        (report.get("lower_after"), report.get("lower_inode_same")),
        ("\"base\\n\"", "true"),
        "the lower's file should be unchanged (same content, same inode) after a write \
         through merged"
    );
    assert_eq!(
        (report.get("delete"), report.get("upper_deleted_kind")),
        ("ok", "whiteout"),
        "a deletion through merged should leave a whiteout (a 0/0 character device) in the upper"
    );
    assert_eq!(
        report.get("lower_deleted_kind"),
        "file",
        "the lower should keep the file deleted through merged"
    );
    assert_eq!(
        (report.number("host_entries"), report.get("left_behind")),
        (0, "false"),
        "nothing should reach the host's /tmp"
    );
}

/// What the probe's overlay did, as `docker diff` says it, sorted by path.
const CH08_DIFF: [&str; 17] = [
    "C /etc",
    "C /etc/hosts",
    "A /gone-in-top",
    "C /home",
    "C /home/user",
    "D /home/user/notes",
    "A /link-to-etc",
    "A /new-dir",
    "A /new-dir/inner.txt",
    "D /old-file",
    "C /top-file",
    "C /var",
    "C /var/log",
    "C /var/log/app.log",
    "D /var/log/archive",
    "A /var/log/new.log",
    "D /var/log/old.log",
];

#[test]
fn ex8_2_a_diff_of_the_upper() {
    let report = probe("ch08-diff", "8.2", "ch08_overlay.rs");
    assert_eq!(
        (report.get("whiteout_made"), report.get("opaque_made")),
        ("whiteout", "true"),
        "the kernel's overlay did not make a whiteout and an opaque directory in the upper: \
         this machine's overlayfs (or the upper's filesystem, without trusted.* xattrs) \
         cannot run this check"
    );
    if let Some(error) = report.values.get("error") {
        panic!("\n\ndiff(upper, lowers) failed: {error}\n");
    }
    let got: Vec<&str> = (0..report.number("lines"))
        .map(|i| report.get(&format!("line_{i}")))
        .collect();
    if got == CH08_DIFF {
        return;
    }
    let has = |line: &str| got.contains(&line);
    let missing: Vec<&str> = CH08_DIFF.iter().copied().filter(|l| !has(l)).collect();
    let extra: Vec<&str> = got
        .iter()
        .copied()
        .filter(|l| !CH08_DIFF.contains(l))
        .collect();
    let mut ideas = Vec::new();
    if got.iter().any(|l| !l[1..].starts_with(" /")) {
        ideas.push(
            "each line is a letter, a space, and the path as the container sees it, \
             starting at `/`: `A /new-dir`",
        );
    }
    if extra.iter().any(|l| l.contains("/link-to-etc/")) {
        ideas.push(
            "/link-to-etc is a symbolic link (to etc): it is one path, A; the diff \
             followed the symlink into what it points at (std::fs::metadata follows, \
             symlink_metadata does not)",
        );
    }
    if ["A", "C"]
        .iter()
        .any(|k| has(&format!("{k} /old-file")) || has(&format!("{k} /home/user/notes")))
    {
        ideas.push(
            "/old-file in the upper is a whiteout (a character device numbered 0/0): \
             a deletion, D, not a new or changed file",
        );
    }
    if has("A /etc") && has("A /var") {
        ideas.push(
            "a name the lowers have is a C (changed), not an A: look each path up in the \
             lowers (/etc, /var and their files are in the base)",
        );
    } else if has("A /etc/hosts") {
        ideas.push(
            "/etc/hosts is in the base, the second lower: look in every lower, top first, \
             not only the first one",
        );
    }
    if has("C /gone-in-top") {
        ideas.push(
            "/gone-in-top is in the base, but the top layer's whiteout hides it: a name is \
             in the lowers when the first lower that has it holds something other than a \
             whiteout; the container made it anew, A",
        );
    }
    if missing.contains(&"D /var/log/old.log") {
        ideas.push(
            "/var/log in the upper is opaque (trusted.overlay.opaque = y: it was removed \
             and made again): what the lowers hold in it and the upper does not is gone, \
             D /var/log/old.log and D /var/log/archive",
        );
    }
    if missing.is_empty() && extra.is_empty() {
        let mut sorted = got.clone();
        sorted.sort_by_key(|l| std::path::PathBuf::from(&l[1..].trim_start()));
        ideas.push(if sorted == CH08_DIFF {
            "the lines are right but not sorted by path (component by component, as \
             PathBuf sorts): sort on the path, not on the whole line"
        } else {
            "the lines are right but not in order: sort them by path"
        });
    } else if got.len() != CH08_DIFF.len() && missing.is_empty() {
        ideas.push("a path is listed more than once");
    }
    panic!(
        "\n\ndiff(upper, lowers) on an upper the kernel wrote gave:\n  {}\nexpected:\n  {}\n\
         missing: {missing:?}\nnot expected: {extra:?}\n{}\n",
        got.join("\n  "),
        CH08_DIFF.join("\n  "),
        ideas.join("\n"),
    );
}
