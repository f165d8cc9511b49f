//! Checks for chapter 11: `cargo test -p exercises ch11`.

use super::{own_work, probe_as_user};
use std::os::unix::fs::MetadataExt;

/// Who the probe of exercise 11.1 runs as: nobody, and a gid that is not
/// its uid (so that a uid written to gid_map shows).
const UID: u32 = 65534;
const GID: u32 = 65532;

#[test]
fn ex11_1_a_normal_user_maps_itself_as_root_in_a_new_user_namespace() {
    let report = probe_as_user("ch11-maps", UID, GID, "11.1", "ch11_rootless.rs");
    let context = format!(
        "\nwhat the probe saw (running as uid {UID}, gid {GID}):\n{}",
        report.text
    );
    assert_eq!(
        (report.number("outside_uid"), report.number("outside_gid")),
        (UID as u64, GID as u64),
        "the probe did not run as the unprivileged user it was started as{context}"
    );
    let (uid_map, gid_map, setgroups) = (
        report.get("uid_map"),
        report.get("gid_map"),
        report.get("setgroups"),
    );
    let said = report.get("write");
    if said != "ok" {
        let said = said.strip_prefix("error: ").unwrap_or(said);
        let idea = if uid_map.is_empty() {
            format!(
                "the kernel refused your uid_map line (it is still empty): without capabilities a \
                 process may map exactly one id, its own: `0 {UID} 1` (inside 0, then outside: your \
                 uid, then the count: 1). A range, or the host's root outside, needs newuidmap"
            )
        } else if setgroups != "deny" {
            format!(
                "/proc/PID/setgroups still says allow ({setgroups}): a normal user may write gid_map \
                 only once setgroups() is denied in the namespace: write `deny` to \
                 /proc/PID/setgroups first, before gid_map"
            )
        } else if gid_map.is_empty() {
            format!(
                "the kernel refused your gid_map line (it is still empty): `0 {GID} 1`, with the gid \
                 you are given ({GID}), not your uid"
            )
        } else {
            "setgroups `deny`, then uid_map `0 UID 1`, then gid_map `0 GID 1`".to_string()
        };
        panic!("\n\nwrite_id_maps(child, {UID}, {GID}) failed: {said}\n{idea}\n{context}");
    }
    assert!(
        setgroups == "deny",
        "\n\n/proc/PID/setgroups says {setgroups}: write `deny` there, before gid_map{context}"
    );
    assert!(
        uid_map == format!("0 {UID} 1"),
        "\n\nthe child's uid_map is `{uid_map}`: it should be `0 {UID} 1`, uid 0 inside is {UID} \
         outside, one id{context}"
    );
    assert!(
        gid_map == format!("0 {GID} 1"),
        "\n\nthe child's gid_map is `{gid_map}`: it should be `0 {GID} 1`, with the gid you are \
         given, not your uid{context}"
    );
    assert_eq!(
        (report.get("uid_inside"), report.get("gid_inside")),
        ("0", "0"),
        "\n\nthe maps are written, but inside the child `id -u` and `id -g` are not 0{context}"
    );
    assert_eq!(report.get("child_exit"), "0", "the child failed{context}");
}

/// A cgroup-like directory of the check's own: the directory, cgroup.procs
/// and cgroup.subtree_control, each given to `owners` (dir, procs, subtree;
/// `None`: the file is missing).
fn cgroup_dir(
    parent: &std::path::Path,
    name: &str,
    owners: [Option<u32>; 3],
) -> std::path::PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).unwrap();
    for (file, owner) in ["cgroup.procs", "cgroup.subtree_control"]
        .into_iter()
        .zip(&owners[1..])
    {
        if let Some(owner) = owner {
            let path = dir.join(file);
            std::fs::write(&path, "").unwrap();
            std::os::unix::fs::chown(&path, Some(*owner), None).unwrap();
        }
    }
    std::os::unix::fs::chown(&dir, owners[0], None).unwrap();
    dir
}

#[test]
fn ex11_2_a_cgroup_is_delegated_when_the_dir_and_its_two_files_are_the_users() {
    own_work("11.2", "ch11_rootless.rs");
    workshop_testkit::require_root();
    let temp = workshop_testkit::TempDir::new("ex11-2");
    let (user, root) = (Some(UID), Some(0));
    // (name, owners of dir, cgroup.procs, cgroup.subtree_control; the uid
    // asked about; the answer; why)
    let cases = [
        (
            "all-the-users",
            [user, user, user],
            UID,
            true,
            format!(
                "the directory, cgroup.procs and cgroup.subtree_control all belong to uid {UID}, \
                  the uid you are given: delegated to it"
            ),
        ),
        (
            "procs-roots",
            [user, root, user],
            UID,
            false,
            "cgroup.procs belongs to root: the user cannot move a process in".into(),
        ),
        (
            "subtree-roots",
            [user, user, root],
            UID,
            false,
            "cgroup.subtree_control belongs to root: the user cannot enable a controller below"
                .into(),
        ),
        (
            "dir-roots",
            [root, user, user],
            UID,
            false,
            "the directory belongs to root: the user cannot make a cgroup (mkdir) in it".into(),
        ),
        (
            "no-procs",
            [user, None, user],
            UID,
            false,
            "there is no cgroup.procs: no cgroup, nothing delegated".into(),
        ),
        (
            "no-subtree",
            [user, user, None],
            UID,
            false,
            "there is no cgroup.subtree_control: nothing delegated".into(),
        ),
        (
            "all-the-users",
            [user, user, user],
            0,
            false,
            format!("they belong to {UID}, not to 0: ask about the uid you are given"),
        ),
    ];
    for (name, owners, asked, expected, why) in &cases {
        let dir = temp.path().join(name);
        let dir = if dir.exists() {
            dir
        } else {
            cgroup_dir(temp.path(), name, *owners)
        };
        let got = std::panic::catch_unwind(|| under_test::ch11_rootless::delegated_to(&dir, *asked))
            .unwrap_or_else(|panic| {
                let said = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("\n\nexercise 11.2 is not done yet, or panicked ({said})\n  write it in exercises/src/ch11_rootless.rs, then run this check again\n")
            });
        let seen: Vec<String> = ["", "cgroup.procs", "cgroup.subtree_control"]
            .iter()
            .map(|f| {
                let p = dir.join(f);
                p.metadata().map_or(format!("{f}: missing"), |m| {
                    format!("{} uid {}", if f.is_empty() { "dir" } else { f }, m.uid())
                })
            })
            .collect();
        assert_eq!(
            got,
            *expected,
            "\n\ndelegated_to({}, {asked}) said {got}: {why}\n(owners: {})\n",
            dir.display(),
            seen.join(", ")
        );
    }
}
