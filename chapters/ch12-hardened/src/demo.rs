//! The guided demo of chapter 12, as root: chapter 11's attacks against
//! chapter 7's container (each works), the hardening step by step, the
//! same attacks against this chapter's container (each refused, with the
//! errno), the container still working, and the whole picture.

use anyhow::{Context, Result};
use ch01_clone::Capture;
use ch07_cgroups::cgroup::Limits;
use ch08_overlay::Layers;
use ch11_rootless::attack::{self, Attack, Outcome, Report};
use ch11_rootless::shm::HostSegment;
use ch12_hardened::{caps, paths, seccomp, RunOptions};
use nix::sched::CloneFlags;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use workshop::process::{argv, exec};
use workshop::Narrator;

/// Chapter 7's container: PID, mount, UTS and network namespaces (lo only).
const CHAPTER_7: CloneFlags = CloneFlags::CLONE_NEWPID
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWNET);

/// Both containers of the demo run with a pids limit, which the cgroup
/// attack tries to escape.
const PIDS_LIMIT: u64 = 64;

pub fn demo(options: &RunOptions, say: &Narrator) -> Result<()> {
    workshop::privileges::require(
        workshop::privileges::Capability::SysAdmin,
        "ch12-hardened",
        "for its demo, which runs chapter 7's container as the host's root (or run a command with --rootless)",
    )?;
    say.title("Chapter 12 · what stands between a container's root and the host");
    let root = options.rootfs.resolve(|line| say.note(line))?;
    let limits = Limits {
        pids: Some(PIDS_LIMIT),
        ..Limits::default()
    };
    let segment = HostSegment::create(0x5754_0000)?;
    let shm_key = segment.key.to_string();
    let attack_argv = argv(&[attack::INSIDE, "--shm-key", &shm_key]);

    say.step("chapter 7's container: the host's root, every capability, every system call")?;
    say.shell(&format!(
        "sudo ch07-cgroups --network none --pids-limit {PIDS_LIMIT} -- {} --shm-key {shm_key}",
        attack::INSIDE
    ));
    say.host(&format!(
        "a SysV shared memory segment: key {shm_key} (the host-shm attack looks for it)"
    ));
    // Its root is a copy of the rootfs with ws-attack in it: chapter 7 has no layers.
    let copy = TempTree::copy_of(&root)?;
    attack::install_into(&copy.0)?;
    let before = in_chapter_7_container(&copy.0, &limits, &attack_argv)?;
    let before = attack::parse_reports(&before).map_err(|e| anyhow::anyhow!("{e}: {before}"))?;
    for report in &before {
        show(report, say, true);
    }

    say.step("the hardening, in the container, just before the exec")?;
    say.syscall("unshare(CLONE_NEWIPC | CLONE_NEWCGROUP)");
    say.note("SysV IPC of its own; its cgroup is the root of the cgroups it can see");
    say.syscall(&format!(
        "mount sysfs on /sys read-only; mask {} paths (/dev/null or an empty tmpfs over them); {} read-only",
        paths::MASKED.len(),
        paths::READ_ONLY.len()
    ));
    say.shell("mount --bind /dev/null /proc/kcore; mount --bind /proc/sys /proc/sys; mount -o remount,bind,ro /proc/sys");
    let kept = caps::names(caps::kept_mask());
    say.syscall(&format!(
        "prctl(PR_CAPBSET_DROP, ...) for each capability but {}; capset(): the same in the other sets",
        kept.len()
    ));
    say.note(&format!(
        "kept, as docker keeps them (less cap_mknod): {}",
        kept.join(" ")
    ));
    say.syscall("prctl(PR_SET_NO_NEW_PRIVS, 1); seccomp(SECCOMP_SET_MODE_FILTER, ...) twice");
    say.note(&format!(
        "{} calls refused with EPERM (mount, unshare, open_by_handle_at, init_module, keyctl, ...), clone() with a namespace flag too, clone3() ENOSYS",
        seccomp::REFUSED.len()
    ));

    say.step("the same attacks, against this chapter's container")?;
    let layer = TempTree::empty("attack-layer")?;
    attack::install_into(&layer.0)?;
    let lowers = vec![layer.0.clone(), root.clone()];
    say.shell(&format!("sudo ch12-hardened --network none --pids-limit {PIDS_LIMIT} --layer LAYER -- {} --shm-key {shm_key}", attack::INSIDE));
    let after = in_hardened_container(lowers.clone(), &limits, &attack_argv)?;
    let after = attack::parse_reports(&after).map_err(|e| anyhow::anyhow!("{e}: {after}"))?;
    for report in &after {
        show(report, say, false);
    }
    say.step("the attacks, before and after")?;
    let table = before_and_after(&before, &after);
    say.note("attack          chapter 7           chapter 12");
    for (attack, (b, a)) in &table {
        say.note(&format!("{:<15} {b:<19} {a}", attack.name()));
    }

    say.step("and it is still a container that works")?;
    let seen = in_hardened_container(
        vec![root.clone()],
        &limits,
        &argv(&[
            "sh",
            "-c",
            "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/self/cgroup | tail -1; \
             echo hello > /tmp/x && cat /tmp/x; ping -c 1 -W 1 127.0.0.1 | head -2 | tail -1",
        ]),
    )?;
    for line in seen.lines().filter(|l| !l.trim().is_empty()) {
        say.container(&line.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    say.note("programs run, write their own files, ping (cap_net_raw is kept); what they lost is what only the host's root may do.");

    say.step("the whole picture")?;
    for (chapter, what) in WHOLE_PICTURE {
        say.note(&format!("{chapter:>3}  {what}"));
    }
    say.note("What runc, crun and youki still do that this runtime does not: an OCI bundle and its config.json,");
    say.note("AppArmor and SELinux profiles, a device cgroup, rlimits and oom_score_adj, a console and a pty,");
    say.note("hooks, checkpoint and restore, seccomp notifications, user namespaces by default, and years of CVEs.");
    drop(segment);
    let worked = |reports: &[Report]| {
        reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Worked(_)))
            .count()
    };
    if worked(&after) > 0 {
        anyhow::bail!(
            "{} of the attacks still worked against the hardened container (see above)",
            worked(&after)
        );
    }
    say.finish(&format!(
        "{} of {} attacks worked against chapter 7's container; here the kernel refused all {}, each with its errno.",
        worked(&before),
        before.len(),
        after.len()
    ))
}

/// Each chapter's step, for the closing picture.
const WHOLE_PICTURE: [(&str, &str); 12] = [
    (
        "1",
        "clone() with CLONE_NEWPID: PID 1 inside, a real PID outside",
    ),
    (
        "2",
        "namespaces are files in /proc/PID/ns; setns() joins them (docker exec)",
    ),
    (
        "3",
        "a mount namespace, made private, and a /proc of its own",
    ),
    (
        "4",
        "a root filesystem, and pivot_root into it (chroot is escaped)",
    ),
    ("5", "a UTS namespace: a hostname of its own"),
    ("6", "a network namespace and a veth pair over netlink"),
    (
        "7",
        "cgroups: a CPU share, a pids limit, a memory limit (v1 and v2)",
    ),
    (
        "8",
        "an overlay root: read-only layers, an upper of its own",
    ),
    ("9", "images: import, a content store, run, build, save"),
    (
        "10",
        "a bridge for many containers, names, published ports, NAT",
    ),
    (
        "11",
        "a user namespace: root inside, yourself outside, no sudo",
    ),
    (
        "12",
        "IPC and cgroup namespaces, masked /proc, capabilities, seccomp",
    ),
];

fn show(report: &Report, say: &Narrator, before: bool) {
    match (&report.outcome, before) {
        (Outcome::Worked(evidence), true) => {
            say.warn(&format!("{}: worked: {evidence}", report.attack))
        }
        (Outcome::Worked(evidence), false) => {
            say.warn(&format!("{}: STILL WORKS: {evidence}", report.attack))
        }
        (Outcome::Refused { errno, call }, _) => {
            say.ok(&format!(
                "{}: refused, {} by {call}",
                report.attack,
                attack::errno_name(*errno)
            ));
            if report.attack == Attack::Sysrq && *errno == nix::errno::Errno::ENOENT {
                say.note("(this kernel has no magic SysRq: no /proc/sysrq-trigger to attack)");
            }
        }
    }
}

/// Each attack's result before and after, as the table's two cells.
pub fn before_and_after(before: &[Report], after: &[Report]) -> BTreeMap<Attack, (String, String)> {
    let cell = |o: &Outcome| match o {
        Outcome::Worked(_) => "worked".to_string(),
        Outcome::Refused { errno, .. } => format!("refused, {}", attack::errno_name(*errno)),
    };
    let mut table = BTreeMap::new();
    for r in before {
        table
            .entry(r.attack)
            .or_insert((String::new(), String::new()))
            .0 = cell(&r.outcome);
    }
    for r in after {
        table
            .entry(r.attack)
            .or_insert((String::new(), String::new()))
            .1 = cell(&r.outcome);
    }
    table
}

/// `argv` in chapter 7's container (in its cgroup with `limits`, lo only,
/// pivoted into `root`), as root with every capability; its output.
fn in_chapter_7_container(root: &Path, limits: &Limits, argv: &[String]) -> Result<String> {
    let capture = Capture::new()?;
    let (_cgroup, pid) = ch07_cgroups::start_limited(CHAPTER_7, limits, || {
        capture.redirect()?;
        ch06_net::bring_up_loopback()?;
        ch04_rootfs::enter_rootfs(root)?;
        exec(argv)
    })?;
    let (output, _exit) = capture.collect(pid)?;
    Ok(output) // the cgroup goes with `_cgroup`
}

// ANCHOR: hardened
/// `argv` in this chapter's container: chapter 8's (its overlay over
/// `lowers`, chapter 7's cgroup, lo only), hardened before the exec.
fn in_hardened_container(lowers: Vec<PathBuf>, limits: &Limits, argv: &[String]) -> Result<String> {
    let layers = Layers::for_this_run(lowers, false)?;
    let capture = Capture::new()?;
    let (_cgroup, pid) = ch07_cgroups::start_limited(ch08_overlay::FLAGS, limits, || {
        capture.redirect()?;
        ch06_net::bring_up_loopback()?;
        ch08_overlay::enter_layers(&layers)?;
        ch12_hardened::harden()?; // this chapter
        exec(argv)
    })?;
    let (output, _exit) = capture.collect(pid)?;
    Ok(output)
}
// ANCHOR_END: hardened

/// A directory of the demo's, removed when dropped.
struct TempTree(PathBuf);

impl TempTree {
    fn empty(what: &str) -> Result<TempTree> {
        let dir = std::env::temp_dir().join(format!("workshop-ch12-{what}-{}", std::process::id()));
        let _ = workshop_rootfs::remove_tree(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        Ok(TempTree(dir))
    }

    /// A copy of `root` (`cp -a`), for a container whose root is not an overlay.
    fn copy_of(root: &Path) -> Result<TempTree> {
        let tree = TempTree::empty("rootfs")?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(root.join("."))
            .arg(&tree.0)
            .status()
            .context("failed to run cp -a")?;
        anyhow::ensure!(
            status.success(),
            "cp -a {} {} failed",
            root.display(),
            tree.0.display()
        );
        Ok(tree)
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = workshop_rootfs::remove_tree(&self.0);
    }
}
