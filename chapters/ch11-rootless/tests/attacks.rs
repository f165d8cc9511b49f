//! The seven attacks, tried for real: each works against chapter 7's
//! container run as root (the host's root, with every capability, in the
//! host's user namespace, cgroup namespace and IPC namespace), and each is
//! refused in chapter 11's rootless container, run as a normal user made
//! for the test, with the errno the kernel gives. The host is unchanged
//! after both, and the shared memory segment the test made is removed.
//!
//! Chapter 7's binary is not built by `cargo test -p ch11-rootless`: it is
//! looked for beside this chapter's, and its absence fails with the
//! command that builds it.

use ch07_cgroups::cgroup::{v1, CGROUP_PROCS};
use ch11_rootless::attack::{self, Attack, Outcome, Report, INSIDE};
use nix::errno::Errno;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use workshop_testkit::user::TestUser;
use workshop_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch11-rootless");
const LIMIT: Duration = Duration::from_secs(60);

/// Chapter 7's binary, beside this chapter's in the same target directory.
fn ch07_binary() -> PathBuf {
    let bin = Path::new(BIN)
        .parent()
        .expect("the chapter binary is in a directory")
        .join("ch07-cgroups");
    assert!(
        bin.is_file(),
        "{} is missing: these tests run chapter 7's container too; build it first with \
         `cargo build -p ch07-cgroups` (same profile and target directory as this test)",
        bin.display()
    );
    bin
}

/// A copy of the rootfs with `ws-attack` (this chapter's binary) in it.
fn rootfs_with_attacks(what: &str) -> TempDir {
    let copy = rootfs_copy(what);
    let installed = attack::install(copy.path(), Path::new(BIN)).expect("install ws-attack");
    assert!(installed.is_file(), "{}", installed.display());
    copy
}

/// A SysV shared memory segment of the host's, made by the test with a key
/// of its own, and removed (IPC_RMID) when dropped, whatever happened.
struct HostSegment {
    key: i32,
    id: i32,
}

impl HostSegment {
    const SIZE: usize = 4096;

    fn create() -> HostSegment {
        static N: AtomicU32 = AtomicU32::new(0);
        // 0x57A7_xxxx: "WA" for workshop attacks, then this process and a count.
        let low = (std::process::id() & 0xfff) << 4 | (N.fetch_add(1, Ordering::Relaxed) & 0xf);
        let key = (0x57A7_0000_u32 | low) as i32;
        // SAFETY: shmget makes a new segment (IPC_EXCL: never someone else's).
        let id = unsafe {
            nix::libc::shmget(
                key,
                Self::SIZE,
                nix::libc::IPC_CREAT | nix::libc::IPC_EXCL | 0o600,
            )
        };
        assert!(
            id >= 0,
            "shmget({key:#x}, IPC_CREAT|IPC_EXCL): {}",
            Errno::last()
        );
        HostSegment { key, id }
    }

    fn key_arg(&self) -> String {
        format!("{:#x}", self.key)
    }
}

impl Drop for HostSegment {
    fn drop(&mut self) {
        // SAFETY: removes the segment this test made; no buffer is passed.
        let removed =
            unsafe { nix::libc::shmctl(self.id, nix::libc::IPC_RMID, std::ptr::null_mut()) };
        if removed != 0 {
            eprintln!("shmctl({}, IPC_RMID): {}", self.id, Errno::last());
        }
    }
}

/// A v1 pids cgroup of the test's own, beneath the test's (the house rule),
/// for chapter 7's tool to start in: chapter 7 puts the container's cgroup
/// beneath the tool's, and the escape moves the container into the tool's,
/// never into the root cgroup. Removed when dropped.
struct ToolCgroup {
    dir: PathBuf,
    /// As /proc/PID/cgroup names it: `/ws-attacks-PID-N`.
    name: String,
}

impl ToolCgroup {
    fn create() -> ToolCgroup {
        static N: AtomicU32 = AtomicU32::new(0);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let Some(home) = v1::home("pids", &mountinfo, &cgroups) else {
            // cgroup v2: chapter 7's containers are /workshop/PID, whatever
            // the tool's cgroup; the tool starts where the test is.
            return ToolCgroup {
                dir: PathBuf::new(),
                name: String::new(),
            };
        };
        let own = cgroups
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, names, path) = (f.next()?, f.next()?, f.next()?);
                names.split(',').any(|n| n == "pids").then_some(path)
            })
            .expect("a pids line in /proc/self/cgroup");
        let leaf = format!(
            "ws-attacks-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = home.join(&leaf);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let name = format!("{}/{leaf}", own.trim_end_matches('/'));
        ToolCgroup { dir, name }
    }
}

impl Drop for ToolCgroup {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return; // v2: none made
        }
        if let Err(e) = ch07_cgroups::cgroup::remove_dir_patiently(&self.dir) {
            eprintln!("rmdir {}: {e:#}", self.dir.display());
        }
    }
}

/// The reports of a `ws-attack` run, by attack, every attack there once.
fn reports(out: &std::process::Output) -> BTreeMap<Attack, Outcome> {
    let text = stdout_of(out);
    let reports: Vec<Report> = attack::parse_reports(&text).unwrap_or_else(|e| {
        panic!(
            "ws-attack's output does not parse: {e}\nstdout:\n{text}\nstderr:\n{}",
            stderr_of(out)
        )
    });
    let by_attack: BTreeMap<Attack, Outcome> =
        reports.into_iter().map(|r| (r.attack, r.outcome)).collect();
    let missing: Vec<_> = Attack::ALL
        .iter()
        .filter(|a| !by_attack.contains_key(a))
        .collect();
    assert!(
        missing.is_empty(),
        "no report for {missing:?}\nstdout:\n{text}\nstderr:\n{}",
        stderr_of(out)
    );
    by_attack
}

fn evidence(outcomes: &BTreeMap<Attack, Outcome>, attack: Attack) -> &str {
    match &outcomes[&attack] {
        Outcome::Worked(evidence) => evidence,
        refused => panic!("{attack} should have worked against chapter 7's container: {refused:?}"),
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Whether this kernel has the magic SysRq file at all (CONFIG_MAGIC_SYSRQ).
fn kernel_has_sysrq() -> bool {
    Path::new("/proc/sysrq-trigger").exists()
}

#[test]
fn every_attack_works_against_chapter_7s_root_container() {
    require_root();
    let ch07 = ch07_binary();
    let rootfs = rootfs_with_attacks("ch11-attacks-ch07");
    let segment = HostSegment::create();
    let tool_cgroup = ToolCgroup::create();
    let image = tree_checksum(rootfs.path());
    let host = HostSnapshot::take();
    // The tool starts in the test's cgroup (a shell moves itself there,
    // then becomes chapter 7), as a student's tool starts in theirs.
    let move_in = if tool_cgroup.name.is_empty() {
        String::new()
    } else {
        format!(
            "echo $$ > {} && ",
            tool_cgroup.dir.join(CGROUP_PROCS).display()
        )
    };
    let script = format!(
        "{move_in}exec {ch07} --quiet --network none --pids-limit 64 --rootfs {root} -- {INSIDE} --shm-key {key}",
        ch07 = ch07.display(),
        root = rootfs.path().display(),
        key = segment.key_arg(),
    );
    let out = run(chapter("/bin/sh").args(["-c", &script]), LIMIT);
    let outcomes = reports(&out);
    assert_eq!(
        exit_code(out.status),
        1,
        "ws-attack exits 1 when any attack worked\n{}",
        stderr_of(&out)
    );

    // shocker: names of the real filesystem's root, none of them in the container's /.
    let shocker = evidence(&outcomes, Attack::Shocker);
    if shocker.contains("the privilege is there") {
        // Not ext4 (the VM's root is a tmpfs): the call worked, with the
        // handle of the container's own /, but no name outside is known.
        eprintln!("NOTE: LOUDLY: shocker could not name the filesystem's root here: {shocker}");
    } else {
        shocker_listed_names_outside(shocker, &rootfs);
    }

    // cgroup-escape: from the container's cgroup (v1: beneath the tool's;
    // v2: /workshop/PID) into one the attack made beside it.
    let escape = evidence(&outcomes, Attack::CgroupEscape);
    let (before, after) = escape
        .rsplit_once("from ")
        .and_then(|(_, moved)| moved.split_once(" to "))
        .and_then(|(before, rest)| Some((before, rest.split_once(" (")?.0)))
        .unwrap_or_else(|| panic!("no move in: {escape}"));
    assert!(escape.ends_with("(and back, once seen)"), "{escape}");
    let parent = if tool_cgroup.name.is_empty() {
        "/workshop".to_string()
    } else {
        tool_cgroup.name.clone()
    };
    assert!(
        before.starts_with(&format!("{parent}/")),
        "the container was not in a cgroup beneath {parent}: {escape}"
    );
    assert!(
        after.starts_with(&format!("{parent}/ws-escape-")),
        "/proc/self/cgroup after the move is not the attack's cgroup beside the container's: {escape}"
    );
    if !tool_cgroup.name.is_empty() {
        let left: Vec<_> = std::fs::read_dir(&tool_cgroup.dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("ws-escape-"))
            .collect();
        assert!(left.is_empty(), "the attack left its cgroup: {left:?}");
    }

    // sysctl-write: the setting's own value, written back.
    let value = std::fs::read_to_string("/proc/sys/vm/overcommit_ratio").unwrap();
    let sysctl = evidence(&outcomes, Attack::SysctlWrite);
    assert!(
        sysctl.ends_with(&format!("its own value back: {})", value.trim())),
        "{sysctl}"
    );

    // host-shm: the test's own segment, seen from the container.
    let shm = evidence(&outcomes, Attack::HostShm);
    assert!(
        shm.contains(&format!(
            "key {:#x}: id {}, {} bytes",
            segment.key,
            segment.id,
            HostSegment::SIZE
        )),
        "{shm}"
    );

    let mknod = evidence(&outcomes, Attack::Mknod);
    assert!(mknod.contains("block device 8:0"), "{mknod}");

    if kernel_has_sysrq() {
        let sysrq = evidence(&outcomes, Attack::Sysrq);
        assert!(
            sysrq.starts_with("opened /proc/sysrq-trigger for writing"),
            "{sysrq}"
        );
    } else {
        eprintln!("NOTE: this kernel has no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ is off): the sysrq attack can only say so");
        assert_eq!(
            outcomes[&Attack::Sysrq],
            Outcome::Refused {
                errno: Errno::ENOENT,
                call: "open(/proc/sysrq-trigger, O_WRONLY)".into()
            }
        );
    }

    let mount = evidence(&outcomes, Attack::Mount);
    let entries: usize = mount
        .split("listed ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in: {mount}"));
    assert!(entries > 0, "debugfs was empty: {mount}");

    host.assert_unchanged("chapter 7's container after the attacks");
    // What the attacks make (a node, mount points) is in the container's
    // own /dev, gone with it: nothing written into the image.
    assert!(
        tree_checksum(rootfs.path()) == image,
        "the attacks wrote into chapter 7's rootfs"
    );
    drop(tool_cgroup);
}

/// The refusal each attack meets in a rootless container, and why.
fn expected_refusals() -> Vec<(Attack, Vec<Errno>, &'static str)> {
    vec![
        // The kernel asks for CAP_DAC_READ_SEARCH over the filesystem's
        // user namespace (EPERM). Newer kernels let a user namespace's root
        // decode handles on the mounts it owns, inside their subtree: the
        // container's / is then the overlay, which cannot decode a handle
        // (ESTALE). Either way the host's root stays shut.
        (
            Attack::Shocker,
            vec![Errno::EPERM, Errno::ESTALE],
            "open_by_handle_at(inode 2)",
        ),
        // cgroupfs is mounted only by the owner of the cgroup namespace
        // (the host's: chapter 11 makes none).
        (
            Attack::CgroupEscape,
            vec![Errno::EPERM],
            "mount(\"cgroup", // cgroup (v1 pids) or cgroup2
        ),
        // The file belongs to the host's root, whom the user namespace does not map.
        (
            Attack::SysctlWrite,
            vec![Errno::EACCES],
            "open(/proc/sys/vm/overcommit_ratio, O_WRONLY)",
        ),
        // A SysV IPC namespace of its own: the host's key is not there.
        (Attack::HostShm, vec![Errno::ENOENT], "shmget("),
        // Device nodes are never made in a user namespace.
        (Attack::Mknod, vec![Errno::EPERM], "mknod("),
        // debugfs is not a filesystem a user namespace may mount.
        (Attack::Mount, vec![Errno::EPERM], "mount(\"debugfs\")"),
    ]
}

#[test]
fn every_attack_is_refused_in_chapter_11s_rootless_container() {
    require_root();
    let rootfs = rootfs_with_attacks("ch11-attacks-rootless");
    let segment = HostSegment::create();
    let user = TestUser::create();
    user.assert_can_reach(Path::new(BIN));
    user.assert_can_reach(rootfs.path());
    let runs_dir = PathBuf::from(format!("/tmp/workshop-rootless-{}", user.uid));
    let image = tree_checksum(rootfs.path());
    let host = HostSnapshot::take();
    let out = run(
        user.command(BIN).args([
            "--quiet",
            "--network",
            "none",
            "--rootfs",
            rootfs.path().to_str().unwrap(),
            "--",
            INSIDE,
            "--shm-key",
            &segment.key_arg(),
        ]),
        LIMIT,
    );
    let outcomes = reports(&out);
    host.assert_unchanged("chapter 11's container after the attacks");
    assert!(
        tree_checksum(rootfs.path()) == image,
        "the attacks wrote into chapter 11's lower layer"
    );
    // The user's runs dir: theirs, and the user goes with the test.
    let _ = workshop_rootfs::remove_tree(&runs_dir);

    let mut wrong = Vec::new();
    for (attack, errnos, call) in expected_refusals() {
        match &outcomes[&attack] {
            Outcome::Refused { errno, call: got }
                if errnos.contains(errno) && got.starts_with(call) => {}
            other => wrong.push(format!(
                "{attack}: want {errnos:?} by {call}..., got {other:?}"
            )),
        }
    }
    let sysrq = &outcomes[&Attack::Sysrq];
    let want_sysrq = if kernel_has_sysrq() {
        Errno::EACCES // mode 0200, the host's root's
    } else {
        eprintln!("NOTE: this kernel has no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ is off)");
        Errno::ENOENT
    };
    if *sysrq
        != (Outcome::Refused {
            errno: want_sysrq,
            call: "open(/proc/sysrq-trigger, O_WRONLY)".into(),
        })
    {
        wrong.push(format!("sysrq: want {want_sysrq:?} by open, got {sysrq:?}"));
    }
    assert!(
        wrong.is_empty(),
        "{}\nstdout:\n{}\nstderr:\n{}",
        wrong.join("\n"),
        stdout_of(&out),
        stderr_of(&out)
    );
    assert_eq!(
        exit_code(out.status),
        0,
        "ws-attack exits 0 when every attack was refused"
    );
    // The segment is still there, untouched (shmget found it before IPC_RMID).
    // SAFETY: shmget only looks the key up.
    let still = unsafe { nix::libc::shmget(segment.key, 0, 0) };
    assert_eq!(still, segment.id, "the host's segment {:#x}", segment.key);
}

/// `ws-attack` run on the host itself, for the one attack that only looks
/// (the others would change the host: never here): it finds the test's
/// segment, and takes its key as `ipcs` prints it.
#[test]
fn ws_attack_on_the_host_finds_the_hosts_segment_and_refuses_bad_usage() {
    let dir = TempDir::new("ch11-attack-host");
    let program = dir.path().join(attack::PROGRAM);
    std::fs::copy(BIN, &program).unwrap();
    let segment = HostSegment::create();
    let out = run(
        Command::new(&program).args(["host-shm", "--shm-key", &segment.key_arg()]),
        LIMIT,
    );
    let text = stdout_of(&out);
    let lines: Vec<Report> = attack::parse_reports(&text).unwrap();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0].attack, Attack::HostShm, "{text}");
    assert!(
        matches!(&lines[0].outcome, Outcome::Worked(e) if e.contains(&format!("id {}, ", segment.id))),
        "{text}"
    );
    assert_eq!(exit_code(out.status), 1, "an attack worked: exit 1");
    for bad in [
        &["no-such-attack"][..],
        &["--shm-key", "0xzz"],
        &["--shm-key"],
    ] {
        let out = run(Command::new(&program).args(bad), LIMIT);
        assert_eq!(exit_code(out.status), 2, "{bad:?}: {}", stderr_of(&out));
        assert!(stdout_of(&out).is_empty(), "{bad:?}: nothing tried");
    }
}

/// shocker's evidence names what it listed in the real filesystem's root:
/// none of it is in the container's /.
fn shocker_listed_names_outside(shocker: &str, rootfs: &TempDir) {
    let listed: Vec<&str> = shocker
        .rsplit_once("listed: ")
        .unwrap_or_else(|| panic!("shocker names nothing: {shocker}"))
        .1
        .split(' ')
        .collect();
    let inside = names_in(rootfs.path());
    assert!(!listed.is_empty(), "{shocker}");
    for name in &listed {
        assert!(
            !inside.iter().any(|n| n == name),
            "shocker listed {name:?}, which the container's / has too: {shocker}"
        );
    }
    let same_fs_as_host_root =
        std::fs::metadata(rootfs.path()).unwrap().dev() == std::fs::metadata("/").unwrap().dev();
    if same_fs_as_host_root {
        let host_root = names_in(Path::new("/"));
        for name in &listed {
            assert!(
                host_root.iter().any(|n| n == name),
                "shocker listed {name:?}, not a name in the host's /: {shocker}"
            );
        }
    }
}
