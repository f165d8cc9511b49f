//! `cargo xtask doctor`: before a class, what each chapter needs from this
//! machine, ready or missing, with the fix. It only reads (/proc, /sys,
//! /etc, PATH): it never changes the machine. Every check reads through a
//! [`Machine`] rooted at `/`, or at a directory of a test's own that holds
//! a made-up /proc and /sys (a test double: faults are injected there).

use std::collections::BTreeSet;
use std::path::PathBuf;

/// What the checks read: a root (`/`, or a test's tree) and the programs on PATH.
pub struct Machine {
    pub root: PathBuf,
    /// Whether a program is installed (the user's PATH and root's directories).
    pub has_program: Box<dyn Fn(&str) -> bool>,
    pub is_root: bool,
    /// Free bytes where target/ is.
    pub free_bytes: Option<u64>,
}

impl Machine {
    /// This machine.
    pub fn here() -> Machine {
        let target = crate::workspace_root().join("target");
        let probe = if target.exists() {
            target
        } else {
            crate::workspace_root()
        };
        Machine {
            root: PathBuf::from("/"),
            // As the chapters look for them when the student runs them: their
            // PATH, then root's directories.
            has_program: Box::new(|name| workshop_host::find_on_path(name).is_some()),
            // SAFETY: geteuid has no preconditions and cannot fail.
            is_root: unsafe { libc::geteuid() } == 0,
            free_bytes: free_bytes(&probe),
        }
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.path(path)).ok()
    }

    fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn exists(&self, path: &str) -> bool {
        self.path(path).exists()
    }
}

/// One thing a chapter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    Root,
    Namespaces,
    Rootfs,
    Veth,
    Cgroups,
    Overlay,
    Bridge,
    Kernel511,
    UnprivilegedUserns,
    Seccomp,
    Disk,
}

/// What each chapter needs (the later chapters need what the earlier do).
pub fn needs(chapter: usize) -> BTreeSet<Need> {
    use Need::*;
    let mut all = BTreeSet::from([Root, Namespaces, Disk]);
    let steps: [&[Need]; 12] = [
        &[],
        &[],
        &[],
        &[Rootfs],
        &[],
        &[Veth],
        &[Cgroups],
        &[Overlay],
        &[],
        &[Bridge],
        &[Kernel511, UnprivilegedUserns],
        &[Seccomp],
    ];
    for step in &steps[..chapter] {
        all.extend(step.iter().copied());
    }
    if chapter == 11 {
        all.remove(&Root); // chapter 11 runs as the student
    }
    all
}

/// The result of one check: ready or not, what was seen, and the fix.
#[derive(Debug, Clone)]
pub struct Check {
    pub need: Need,
    pub ready: bool,
    pub seen: String,
    pub fix: String,
}

fn check(need: Need, ready: bool, seen: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        need,
        ready,
        seen: seen.into(),
        fix: fix.into(),
    }
}

/// The kernel's release, as (major, minor).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Whether a kernel module is there: built in, loaded, or on disk to load.
fn module(m: &Machine, release: &str, name: &str) -> bool {
    if m.exists(&format!("/sys/module/{name}")) {
        return true;
    }
    let dir = format!("/lib/modules/{release}");
    let listed = |file: &str| {
        m.read(&format!("{dir}/{file}")).is_some_and(|t| {
            // `kernel/drivers/net/veth.ko: deps...`: the module is the
            // first path, before the colon.
            t.lines().any(|l| {
                let path = l.split(':').next().unwrap_or_default();
                path.rsplit('/')
                    .next()
                    .is_some_and(|f| f.starts_with(&format!("{name}.ko")))
            })
        })
    };
    listed("modules.builtin") || listed("modules.dep")
}

/// Every check, on `m`.
pub fn checks(m: &Machine) -> Vec<Check> {
    use Need::*;
    let release = m
        .read("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut out = Vec::new();

    out.push(if m.is_root || (m.has_program)("sudo") {
        check(
            Root,
            true,
            if m.is_root {
                "root"
            } else {
                "sudo is installed"
            },
            "",
        )
    } else {
        check(
            Root,
            false,
            "not root, and no sudo",
            "install sudo, or run the chapters as root",
        )
    });

    let kinds = ["pid", "mnt", "uts", "ipc", "net", "user", "cgroup"];
    let missing: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| !m.exists(&format!("/proc/self/ns/{k}")))
        .collect();
    out.push(check(
        Namespaces,
        missing.is_empty(),
        if missing.is_empty() {
            format!("namespaces: {}", kinds.join(" "))
        } else {
            format!("no {} namespace", missing.join(", "))
        },
        "a kernel built with CONFIG_NAMESPACES and each CONFIG_*_NS",
    ));

    let busybox = m.exists("/bin/busybox");
    out.push(check(
        Rootfs,
        busybox || (m.has_program)("sh"),
        if busybox {
            "busybox for the rootfs (/bin/busybox)"
        } else {
            "no busybox: the rootfs is made of the host's own binaries"
        },
        "`sudo apt install busybox-static`",
    ));

    for (need, name, what) in [
        (Veth, "veth", "chapters 6 and 7 lay a veth pair"),
        (Overlay, "overlay", "chapter 8 mounts an overlay"),
        (Bridge, "bridge", "chapter 10 makes a bridge"),
    ] {
        let there = module(m, &release, name)
            || (name == "overlay"
                && m.read("/proc/filesystems")
                    .is_some_and(|f| f.contains("\toverlay")));
        // A kernel with no module list at all was built with everything it
        // has built in, and a built-in module with no parameters is not in
        // /sys/module: nothing to read tells; say so, and assume it.
        let unknown = !there && !m.exists(&format!("/lib/modules/{release}"));
        out.push(check(
            need,
            there || unknown,
            if there {
                format!("{name} module ({what})")
            } else if unknown {
                format!("{name} module: assumed built in (no /lib/modules/{release})")
            } else {
                format!("no {name} module in /sys/module or /lib/modules/{release}")
            },
            format!(
                "a kernel with CONFIG_{} (built in or as a module)",
                name.to_uppercase()
            ),
        ));
    }

    out.push(cgroups(m));

    let version = kernel_version(&release);
    out.push(check(
        Kernel511,
        version.is_some_and(|v| v >= (5, 11)),
        format!("kernel {release}"),
        "chapter 11 needs Linux 5.11 or later (an overlay in a user namespace)",
    ));

    let forbidding = workshop_host::forbidding_settings(&m.root);
    out.push(check(
        UnprivilegedUserns,
        forbidding.is_empty(),
        if forbidding.is_empty() {
            "unprivileged user namespaces allowed".to_string()
        } else {
            forbidding
                .iter()
                .map(|(s, _)| s.clone())
                .collect::<Vec<_>>()
                .join("; ")
        },
        forbidding
            .iter()
            .map(|(s, _)| {
                let (file, _) = s.split_once(" = ").unwrap_or((s, ""));
                let key = file.trim_start_matches("/proc/sys/").replace('/', ".");
                let allowed = if key.ends_with("max_user_namespaces") {
                    "15000"
                } else if key.contains("apparmor") {
                    "0"
                } else {
                    "1"
                };
                format!("`sudo sysctl {key}={allowed}`")
            })
            .collect::<Vec<_>>()
            .join(", "),
    ));

    let seccomp = m
        .read("/proc/self/status")
        .is_some_and(|s| s.lines().any(|l| l.starts_with("Seccomp:")));
    out.push(check(
        Seccomp,
        seccomp,
        if seccomp {
            "seccomp filters"
        } else {
            "no Seccomp line in /proc/self/status"
        },
        "a kernel with CONFIG_SECCOMP_FILTER",
    ));

    // `cargo build --workspace --tests` leaves 2.5 GiB in target/ (debug).
    const DISK: u64 = 3 << 30;
    out.push(match m.free_bytes {
        Some(free) => check(
            Disk,
            free >= DISK,
            format!(
                "{:.1} GiB free under target/",
                free as f64 / f64::from(1u32 << 30)
            ),
            "the workspace and its tests take about 2.5 GiB in target/: free some space",
        ),
        None => check(
            Disk,
            false,
            "cannot tell the free space under target/",
            "check `df -h target`",
        ),
    });
    out
}

/// cgroup v2 with cpu, pids and memory offered and enabled at the root, or
/// v1 with the three hierarchies mounted.
fn cgroups(m: &Machine) -> Check {
    let mounts = m.read("/proc/self/mounts").unwrap_or_default();
    let at = |fs: &str, dir: &str| {
        mounts.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 2 && f[2] == fs && f[1] == dir
        })
    };
    let wanted = ["cpu", "pids", "memory"];
    if at("cgroup2", "/sys/fs/cgroup") {
        let offered = m
            .read("/sys/fs/cgroup/cgroup.controllers")
            .unwrap_or_default();
        let enabled = m
            .read("/sys/fs/cgroup/cgroup.subtree_control")
            .unwrap_or_default();
        let lacking: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| !offered.split_whitespace().any(|o| o == *c))
            .collect();
        let off: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| !enabled.split_whitespace().any(|o| o == *c))
            .collect();
        return match (lacking.is_empty(), off.is_empty()) {
            (true, true) => check(Need::Cgroups, true, "cgroup v2, cpu pids memory enabled", ""),
            (false, _) => check(Need::Cgroups, false, format!("cgroup v2 without {}", lacking.join(" ")), "a kernel with those controllers (cgroup_enable=memory on some boards)"),
            (true, false) => check(
                Need::Cgroups,
                false,
                format!("cgroup v2: {} not enabled in /sys/fs/cgroup/cgroup.subtree_control", off.join(" ")),
                format!("`echo '{}' | sudo tee /sys/fs/cgroup/cgroup.subtree_control` (systemd does it at boot)", off.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ")),
            ),
        };
    }
    let v1: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| {
            mounts.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[2] == "cgroup" && f[3].split(',').any(|o| o == *c)
            })
        })
        .collect();
    if v1.len() == wanted.len() {
        check(
            Need::Cgroups,
            true,
            "cgroup v1 (hybrid): cpu pids memory hierarchies",
            "",
        )
    } else {
        let lacking: Vec<&str> = wanted.iter().copied().filter(|c| !v1.contains(c)).collect();
        check(
            Need::Cgroups,
            false,
            format!("no cgroup for {}", lacking.join(" ")),
            "mount cgroup v2 at /sys/fs/cgroup (every current distribution does)",
        )
    }
}

/// Which chapters are ready, and the one-line summary an instructor collects:
/// `ready: 12/12 chapters`, or `ready: 1–10; 11–12 need unprivileged user namespaces`.
pub fn summary(checks: &[Check]) -> (Vec<usize>, String) {
    let failing: BTreeSet<Need> = checks.iter().filter(|c| !c.ready).map(|c| c.need).collect();
    let ready: Vec<usize> = (1..=12)
        .filter(|&n| needs(n).is_disjoint(&failing))
        .collect();
    if ready.len() == 12 {
        return (ready, "ready: 12/12 chapters".into());
    }
    let mut parts = vec![if ready.is_empty() {
        "0/12 chapters".to_string()
    } else {
        ranges(&ready)
    }];
    let not: Vec<usize> = (1..=12).filter(|n| !ready.contains(n)).collect();
    let why: Vec<String> = failing.iter().map(|n| describe(*n).to_string()).collect();
    parts.push(format!("{} need {}", ranges(&not), why.join(", ")));
    (ready, format!("ready: {}", parts.join("; ")))
}

fn describe(need: Need) -> &'static str {
    match need {
        Need::Root => "root or sudo",
        Need::Namespaces => "namespaces",
        Need::Rootfs => "a rootfs source",
        Need::Veth => "the veth module",
        Need::Cgroups => "the cpu, pids and memory cgroup controllers",
        Need::Overlay => "overlayfs",
        Need::Bridge => "the bridge module",
        Need::Kernel511 => "Linux 5.11 or later",
        Need::UnprivilegedUserns => "unprivileged user namespaces",
        Need::Seccomp => "seccomp",
        Need::Disk => "3 GiB of disk",
    }
}

/// `1–10` or `1–3, 5, 7–12`.
fn ranges(chapters: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chapters.len() {
        let start = chapters[i];
        while i + 1 < chapters.len() && chapters[i + 1] == chapters[i] + 1 {
            i += 1;
        }
        out.push(if chapters[i] == start {
            start.to_string()
        } else {
            format!("{start}–{}", chapters[i])
        });
        i += 1;
    }
    out.join(", ")
}

/// The optional tools, said but never counted against a chapter.
fn optional(m: &Machine) -> Vec<(bool, String)> {
    let tun = m.path("/dev/net/tun");
    let tun_open = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&tun).is_ok_and(|meta| meta.permissions().mode() & 0o006 == 0o006)
    };
    [
        ("skopeo", "chapter 9's interop with a real client"),
        ("umoci", "chapter 9's interop with a real client"),
        ("nft", "chapter 10's masquerade rule"),
        ("newuidmap", "chapter 11's --map subids"),
        ("pasta", "chapter 11's network without root"),
    ]
    .into_iter()
    .map(|(p, what)| ((m.has_program)(p), format!("{p} ({what})")))
    .chain([(
        tun_open,
        "/dev/net/tun open to every user (pasta and slirp4netns)".to_string(),
    )])
    .collect()
}

/// Free bytes (for an unprivileged user) on the filesystem that holds `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `s` is a buffer of the
    // size statvfs writes; it is read only when the call succeeded.
    if unsafe { libc::statvfs(path.as_ptr(), s.as_mut_ptr()) } != 0 {
        return None;
    }
    let s = unsafe { s.assume_init() };
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// `cargo xtask doctor`: every check, every chapter, the summary; true
/// only when every chapter is ready.
pub fn run() -> bool {
    let m = Machine::here();
    let checks = checks(&m);
    println!("doctor: what the chapters need from this machine (nothing is changed)");
    for c in &checks {
        if c.ready {
            println!("  ✓ {}", c.seen);
        } else {
            println!("  ✗ {}\n      fix: {}", c.seen, c.fix);
        }
    }
    println!("optional:");
    for (there, what) in optional(&m) {
        println!("  {} {what}", if there { "✓" } else { "-" });
    }
    let (ready, line) = summary(&checks);
    println!("{line}");
    if ready.len() < 12 {
        eprintln!(
            "error: {} of 12 chapters are not ready on this machine (see ✗ above)",
            12 - ready.len()
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use workshop_testkit::TempDir;

    /// A made-up machine that has everything: kernel 6.1, cgroup v2 with
    /// the three controllers, the modules, user namespaces allowed.
    fn healthy() -> (TempDir, Machine) {
        let dir = TempDir::new("doctor");
        let w = |p: &str, text: &str| write(&dir, p, text);
        w("proc/sys/kernel/osrelease", "6.1.0-57-amd64\n");
        for ns in ["pid", "mnt", "uts", "ipc", "net", "user", "cgroup"] {
            w(&format!("proc/self/ns/{ns}"), "");
        }
        w("proc/self/status", "Name:\tx\nSeccomp:\t0\n");
        w(
            "proc/self/mounts",
            "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n",
        );
        w("proc/filesystems", "nodev\tproc\nnodev\toverlay\n");
        w(
            "sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        );
        w("sys/fs/cgroup/cgroup.subtree_control", "cpu memory pids\n");
        w(
            "lib/modules/6.1.0-57-amd64/modules.dep",
            "kernel/drivers/net/veth.ko: \nkernel/net/bridge/bridge.ko: kernel/net/802/stp.ko\n",
        );
        w("proc/sys/kernel/unprivileged_userns_clone", "1\n");
        w("bin/busybox", "");
        let m = Machine {
            root: dir.path().to_path_buf(),
            has_program: Box::new(|_| true),
            is_root: true,
            free_bytes: Some(10 << 30),
        };
        (dir, m)
    }

    /// A file of the made-up machine, its directories made as needed.
    fn write(dir: &TempDir, path: &str, text: &str) {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_healthy_machine_is_ready_for_every_chapter() {
        let (_dir, m) = healthy();
        let checks = checks(&m);
        let failing: Vec<_> = checks.iter().filter(|c| !c.ready).collect();
        assert!(failing.is_empty(), "{failing:?}");
        assert_eq!(summary(&checks).1, "ready: 12/12 chapters");
    }

    #[test]
    fn user_namespaces_off_stops_chapters_11_and_12_with_the_sysctl_to_set() {
        let (dir, m) = healthy();
        write(&dir, "proc/sys/kernel/unprivileged_userns_clone", "0\n");
        let checks = checks(&m);
        let userns = checks
            .iter()
            .find(|c| c.need == Need::UnprivilegedUserns)
            .unwrap();
        assert!(!userns.ready);
        assert!(
            userns
                .fix
                .contains("sudo sysctl kernel.unprivileged_userns_clone=1"),
            "{}",
            userns.fix
        );
        assert_eq!(
            summary(&checks).1,
            "ready: 1–10; 11–12 need unprivileged user namespaces"
        );
    }

    #[test]
    fn a_missing_veth_module_stops_chapter_6_and_after() {
        let (dir, m) = healthy();
        write(
            &dir,
            "lib/modules/6.1.0-57-amd64/modules.dep",
            "kernel/net/bridge/bridge.ko:\n",
        );
        let (ready, line) = summary(&checks(&m));
        assert_eq!(ready, [1, 2, 3, 4, 5]);
        assert_eq!(line, "ready: 1–5; 6–12 need the veth module");
    }

    #[test]
    fn too_little_disk_stops_every_chapter_and_the_summary_says_0() {
        // As in cargo xtask vm-test's VM, whose root is a tmpfs of 1.8 GiB.
        let (_dir, mut m) = healthy();
        m.free_bytes = Some(1800 << 20);
        let checks = checks(&m);
        let disk = checks.iter().find(|c| c.need == Need::Disk).unwrap();
        assert!(
            !disk.ready && disk.seen.contains("1.8 GiB free"),
            "{disk:?}"
        );
        let (ready, line) = summary(&checks);
        assert!(ready.is_empty());
        assert_eq!(line, "ready: 0/12 chapters; 1–12 need 3 GiB of disk");
    }

    #[test]
    fn a_controller_not_enabled_names_the_file_and_the_fix() {
        let (dir, m) = healthy();
        write(&dir, "sys/fs/cgroup/cgroup.subtree_control", "cpu memory\n");
        let checks = checks(&m);
        let cg = checks.iter().find(|c| c.need == Need::Cgroups).unwrap();
        assert!(!cg.ready && cg.seen.contains("pids not enabled"), "{cg:?}");
        assert!(cg.fix.contains("+pids"), "{}", cg.fix);
        assert_eq!(summary(&checks).0, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn cgroup_v1_hybrid_with_the_three_hierarchies_is_ready() {
        let (dir, m) = healthy();
        write(&dir, "proc/self/mounts", "tmpfs /sys/fs/cgroup tmpfs ro 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n\
             cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n\
             cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n");
        assert!(checks(&m).iter().all(|c| c.ready));
    }

    #[test]
    fn an_old_kernel_stops_chapter_11_only_for_its_version() {
        let (dir, m) = healthy();
        write(&dir, "proc/sys/kernel/osrelease", "5.10.0-28-amd64\n");
        let modules = dir.path().join("lib/modules");
        std::fs::rename(
            modules.join("6.1.0-57-amd64"),
            modules.join("5.10.0-28-amd64"),
        )
        .unwrap();
        assert_eq!(
            summary(&checks(&m)).1,
            "ready: 1–10; 11–12 need Linux 5.11 or later"
        );
        assert_eq!(kernel_version("6.18.44-fc-v669"), Some((6, 18)));
    }

    #[test]
    fn without_root_or_sudo_only_chapter_11_is_ready() {
        let (_dir, mut m) = healthy();
        m.is_root = false;
        m.has_program = Box::new(|p| p != "sudo");
        assert_eq!(
            summary(&checks(&m)).1,
            "ready: 11; 1–10, 12 need root or sudo"
        );
    }

    #[test]
    fn a_kernel_with_no_module_list_is_assumed_to_have_them_built_in() {
        let (dir, m) = healthy();
        std::fs::remove_dir_all(dir.path().join("lib/modules")).unwrap();
        let checks = checks(&m);
        let veth = checks.iter().find(|c| c.need == Need::Veth).unwrap();
        assert!(
            veth.ready && veth.seen.contains("assumed built in"),
            "{veth:?}"
        );
    }

    #[test]
    fn chapter_ranges_read_as_an_instructor_writes_them() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1–3, 5, 7–8");
        assert_eq!(ranges(&[11]), "11");
    }
}
