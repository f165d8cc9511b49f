//! `cargo xtask bench`: how fast does a container start, against the tools
//! people know, measured in one run so that the ratios are fair on a noisy
//! machine; and the build times a student feels.
//!
//! Every command is run round-robin (one run of each, again and again), so
//! that a slow moment of the machine hits them all alike. Reported: median,
//! the 10th to 90th percentile spread, and ratios to bare `/bin/true` (the
//! floor: one fork and exec) and to `bwrap`.
//!
//! The chapters themselves make the per-step breakdown: each adds one thing
//! to the one before (ch01 a PID namespace, ch03 a mount namespace and /proc,
//! ch04 pivot_root and /dev, ch05 a UTS namespace, ch06 a network namespace
//! with lo up (`--network none`), ch07 a cgroup with limits), and then the
//! veth pair that ch06 and ch07 lay by default. That last step is measured
//! inside `unshare --net` (the veth must not touch this machine's network),
//! against the same wrapper around the container without it.
//!
//! Chapter 10's figure (issue 14) is a container joining a bridge that
//! another container holds, against chapter 6's start: both runs enter a
//! network namespace kept for the bench ([`BridgeBench`]), as the bridge
//! must outlive the runs.

use crate::{cargo, root, CHAPTERS};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs of each command (after 10 warm-up runs)
    #[arg(long, default_value_t = 100)]
    runs: usize,

    /// Skip the build-time measurements (a clean debug build takes a while)
    #[arg(long)]
    no_build_times: bool,

    /// Also write the report into the book (book/src/transcripts/bench.txt)
    #[arg(long)]
    book: bool,
}

/// One command to time.
struct Candidate {
    name: String,
    what: &'static str,
    argv: Vec<String>,
    times: Vec<Duration>,
}

impl Candidate {
    fn new(name: &str, what: &'static str, argv: &[&str]) -> Candidate {
        Candidate {
            name: name.into(),
            what,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            times: Vec::new(),
        }
    }

    fn run_once(&self) -> Result<Duration> {
        let start = Instant::now();
        let status = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("failed to run {}", self.argv.join(" ")))?;
        let elapsed = start.elapsed();
        if !status.success() {
            bail!("{} failed ({status}): `{}`", self.name, self.argv.join(" "));
        }
        Ok(elapsed)
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.times.clone();
        sorted.sort();
        sorted[((sorted.len() - 1) as f64 * p).round() as usize]
    }

    fn median(&self) -> Duration {
        self.percentile(0.5)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(args: Args) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "the bench starts containers, which needs root; run it as root (`sudo -E cargo xtask bench`): \
             sudo around each run would be timed too"
        );
    }
    let started = Instant::now();
    eprintln!("bench: building the chapters (release)");
    let status = cargo()
        .args(["build", "--quiet", "--release"])
        .args(CHAPTERS.iter().flat_map(|c| ["--package", c]))
        .args(["--package", "ch11-rootless"])
        .status()?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    let rootfs = workshop_rootfs::ensure_default(|line| eprintln!("bench: {line}"))?;
    let rootfs = rootfs.canonicalize()?;
    let release = root().join("target/release");
    let bin = |name: &str| release.join(name).display().to_string();
    let r = rootfs.display().to_string();

    let mut candidates = vec![
        Candidate::new(
            "/bin/true",
            "the floor: one fork and exec, nothing else",
            &["/bin/true"],
        ),
        Candidate::new(
            "unshare",
            "util-linux: PID, mount, UTS, IPC, network namespaces; no new root",
            &[
                "unshare",
                "--pid",
                "--fork",
                "--mount",
                "--uts",
                "--ipc",
                "--net",
                "/bin/true",
            ],
        ),
    ];
    let mut notes = Vec::new();
    if which("bwrap") {
        candidates.push(Candidate::new(
            "bwrap",
            "bubblewrap --unshare-all, the rootfs bind-mounted as /, /proc and /dev",
            &[
                "bwrap",
                "--unshare-all",
                "--bind",
                &r,
                "/",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "/bin/true",
            ],
        ));
    } else {
        notes.push("bwrap: not installed, skipped (apt install bubblewrap)".to_string());
    }
    // Rootless: chapter 11 as a normal user (nobody), against bubblewrap
    // as the same user in a user namespace of its own, each under the same
    // setpriv (its exec is in both times). Tried once first: a rootfs or a
    // build under a directory nobody may enter (/root) cannot be run so.
    let as_nobody = |argv: &[&str]| -> Vec<String> {
        [
            "setpriv",
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "env",
            "-u",
            "XDG_RUNTIME_DIR",
        ]
        .iter()
        .chain(argv)
        .map(|s| s.to_string())
        .collect()
    };
    let ch11 = bin("ch11-rootless");
    // Chapter 11 as nobody, `--network none --map self`, and `more` options.
    let ch11_as_nobody = |more: &[&str]| {
        let mut argv = vec![
            &*ch11,
            "--quiet",
            "--rootfs",
            &*r,
            "--network",
            "none",
            "--map",
            "self",
        ];
        argv.extend_from_slice(more);
        argv.extend(["--", "/bin/true"]);
        as_nobody(&argv)
    };
    let rootless = [
        Candidate {
            name: "rootless ch11".into(),
            what: "as nobody: chapter 11, a user namespace (--map self) over ch08's overlay, lo only",
            argv: ch11_as_nobody(&[]),
            times: Vec::new(),
        },
        Candidate {
            name: "rootless ch11 ro".into(),
            what: "as nobody: the same with --read-only: the rootfs read-only as /, no overlay, as bwrap's",
            argv: ch11_as_nobody(&["--read-only"]),
            times: Vec::new(),
        },
        Candidate {
            name: "rootless bwrap".into(),
            what: "as nobody: bubblewrap --unshare-user --unshare-all, the rootfs read-only as /, /proc and /dev",
            argv: as_nobody(&[
                "bwrap",
                "--unshare-user",
                "--unshare-all",
                "--ro-bind",
                &r,
                "/",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "/bin/true",
            ]),
            times: Vec::new(),
        },
    ];
    if !which("bwrap") || !which("setpriv") {
        notes.push(
            "rootless: needs bwrap and setpriv (apt install bubblewrap util-linux), skipped".into(),
        );
    } else {
        for c in rootless {
            match c.run_once() {
                Ok(_) => candidates.push(c),
                Err(e) => notes.push(format!(
                    "{}: skipped, it does not run as nobody ({e:#}): is the checkout under a directory others may enter?",
                    c.name
                )),
            }
        }
    }
    let runc_bundle = if which("runc") {
        Some(runc_bundle(&rootfs)?)
    } else {
        None
    };
    if let Some(bundle) = &runc_bundle {
        let b = bundle.display().to_string();
        candidates.push(Candidate::new(
            "runc",
            "runc run: an OCI runtime, every namespace, a cgroup, pivot_root",
            &[
                "runc",
                "run",
                "--bundle",
                &b,
                &format!("workshop-bench-{}", std::process::id()),
            ],
        ));
    } else {
        notes.push("runc: not installed, skipped (apt install runc)".to_string());
    }
    // A chapter running /bin/true in the rootfs, with `options`; `sandboxed`
    // puts it in a network namespace of its own (`unshare --net`).
    let chapter =
        |name: &str, what: &'static str, binary: &str, options: &[&str], sandboxed: bool| {
            let mut argv: Vec<String> = Vec::new();
            if sandboxed {
                argv.extend(["unshare".into(), "--net".into()]);
            }
            argv.extend([bin(binary), "--quiet".into()]);
            if binary != "ch01-clone" && binary != "ch03-mount" {
                argv.extend(["--rootfs".into(), r.clone()]); // ch04 on
            }
            argv.extend(options.iter().map(|o| o.to_string()));
            argv.extend(["--".into(), "/bin/true".into()]);
            Candidate {
                name: name.into(),
                what,
                argv,
                times: Vec::new(),
            }
        };
    let limits = ["--cpus", "0.5", "--pids-limit", "100", "--memory", "256M"];
    eprintln!("bench: a store of the bench's own, with an image of 3 layers");
    let images = crate::bench_images::Images::prepare(
        &release.join("ch09-image"),
        &root().join("target/bench/images"),
    )?;
    let none = ["--network", "none"];
    let none_limited: Vec<&str> = none.iter().chain(&limits).copied().collect();
    let ladder = vec![
        chapter(
            "ch01",
            "+ a PID namespace (clone)",
            "ch01-clone",
            &[],
            false,
        ),
        chapter(
            "ch03",
            "+ a mount namespace made private, a fresh /proc",
            "ch03-mount",
            &[],
            false,
        ),
        chapter(
            "ch04",
            "+ a /dev, pivot_root into the rootfs",
            "ch04-rootfs",
            &[],
            false,
        ),
        chapter(
            "ch05",
            "+ a UTS namespace and sethostname",
            "ch05-uts",
            &[],
            false,
        ),
        chapter(
            "ch06 none",
            "+ a network namespace, lo up (--network none)",
            "ch06-net",
            &none,
            false,
        ),
        chapter(
            "ch07 none",
            "+ a cgroup with --cpus 0.5 --pids-limit 100 --memory 256M: the full container, lo only",
            "ch07-cgroups",
            &none_limited,
            false,
        ),
        chapter(
            "ch08 none",
            "+ an overlay root: the rootfs as its lower, an upper of its own",
            "ch08-overlay",
            &none_limited,
            false,
        ),
        Candidate {
            name: "ch09 none".into(),
            what: "+ an image of 3 layers (ch08's overlay, the image's config), from the store",
            argv: images.run_argv(&none_limited),
            times: Vec::new(),
        },
        // Chapter 12: chapter 10's run mode (an overlay root, lo only) and
        // the hardening before the exec, with ch07 none's limits.
        chapter(
            "ch12 none",
            "+ hardened: IPC and cgroup namespaces, masked /proc, capabilities, seccomp",
            "ch12-hardened",
            &none_limited,
            false,
        ),
        // The veth needs a network namespace of its own around the run (so
        // that nothing reaches this machine's network): compare it with the
        // same wrapper around the container without it.
        chapter(
            "sandbox ch07 none",
            "(unshare --net around ch07 none: the baseline for the veth)",
            "ch07-cgroups",
            &none_limited,
            true,
        ),
        chapter(
            "sandbox ch07",
            "(unshare --net around ch07 with its default veth: the full container as it starts)",
            "ch07-cgroups",
            &limits,
            true,
        ),
    ];
    // Issue 14: a container that joins the bridge another container holds,
    // against chapter 6's start (its veth to the host), each run entering a
    // network namespace kept for the bench (the bridge must outlive the
    // runs), with chapter 8 (chapter 6's veth, over an overlay root) to
    // tell what the bridge adds from what the overlay does.
    eprintln!(
        "bench: a chapter 10 container holding the bridge wsbr0, in a network namespace of its own"
    );
    let bridge_bench = BridgeBench::start(&bin("ch10-bridge"), &r)?;
    let entered = |holder: &NetHolder, name: &str, what: &'static str, binary: &str| Candidate {
        name: name.into(),
        what,
        argv: holder.enter(
            [&bin(binary), "--quiet", "--rootfs", &r, "--", "/bin/true"]
                .map(String::from)
                .to_vec(),
        ),
        times: Vec::new(),
    };
    let ladder = ladder.into_iter().chain([
        entered(
            &bridge_bench.veth,
            "ns ch06 veth",
            "(nsenter into a network namespace kept for the bench) chapter 6: a veth pair to the host, a subnet of its own",
            "ch06-net",
        ),
        entered(
            &bridge_bench.veth_ch08,
            "ns ch08 veth",
            "(another such namespace) chapter 8: chapter 6's veth, a cgroup, an overlay root",
            "ch08-overlay",
        ),
        entered(
            &bridge_bench.bridge,
            "ns ch10 join",
            "(nsenter into the namespace where a ch10 container holds wsbr0) chapter 8's container on the bridge: the next free address, a veth made a port of wsbr0, the hosts file",
            "ch10-bridge",
        ),
    ]);
    let first_ladder = candidates.len();
    candidates.extend(ladder);

    eprintln!(
        "bench: {} commands, 10 warm-up runs then {} timed runs each, round-robin",
        candidates.len(),
        args.runs
    );
    for _ in 0..10 {
        for c in &candidates {
            c.run_once()?;
        }
    }
    for _ in 0..args.runs {
        for c in candidates.iter_mut() {
            let t = c.run_once()?;
            c.times.push(t);
        }
    }
    if let Some(bundle) = runc_bundle {
        let _ = std::fs::remove_dir_all(bundle);
    }
    if let Some(left) = bridge_bench.stop()? {
        notes.push(left);
    }

    let floor = candidates[0].median();
    let find = |name: &str| {
        candidates
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.median())
    };
    let bwrap = find("bwrap");
    let mut report = String::new();
    let mut line = |s: String| {
        println!("{s}");
        report.push_str(&s);
        report.push('\n');
    };
    line(format!(
        "Container start times: median of {} runs each, round-robin, release builds ({} CPUs)",
        args.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    ));
    line(String::new());
    line(format!(
        "{:<18} {:>8} {:>15} {:>8} {:>8}  {}",
        "command", "median", "p10 - p90", "× true", "× bwrap", "what it does"
    ));
    for (i, c) in candidates.iter().enumerate() {
        if i == first_ladder {
            line(String::new());
            line("the course's chapters, each adding one step to the one before:".into());
        }
        let vs_bwrap = bwrap.map_or("-".to_string(), |b| {
            format!("{:.2}", ms(c.median()) / ms(b))
        });
        line(format!(
            "{:<18} {:>6.2}ms {:>6.2} - {:>5.2}ms {:>8.1} {:>8}  {}",
            c.name,
            ms(c.median()),
            ms(c.percentile(0.1)),
            ms(c.percentile(0.9)),
            ms(c.median()) / ms(floor),
            vs_bwrap,
            c.what
        ));
    }
    for n in &notes {
        line(format!("note: {n}"));
    }

    line(String::new());
    line("what each step adds (difference of medians):".into());
    let steps = [
        ("PID namespace + clone", "/bin/true", "ch01"),
        ("mount namespace, private, /proc", "ch01", "ch03"),
        ("/dev and pivot_root", "ch03", "ch04"),
        ("UTS namespace + hostname", "ch04", "ch05"),
        ("network namespace, lo up", "ch05", "ch06 none"),
        ("cgroup with three limits", "ch06 none", "ch07 none"),
        ("an overlay root", "ch07 none", "ch08 none"),
        ("an image of 3 layers", "ch08 none", "ch09 none"),
        (
            "veth pair, subnet, addresses",
            "sandbox ch07 none",
            "sandbox ch07",
        ),
        (
            "a cgroup and an overlay root (ch08)",
            "ns ch06 veth",
            "ns ch08 veth",
        ),
        (
            "a port of the bridge, not a subnet",
            "ns ch08 veth",
            "ns ch10 join",
        ),
    ];
    for (what, from, to) in steps {
        if let (Some(a), Some(b)) = (find(from), find(to)) {
            line(format!("  {what:<34} {:>+6.2} ms", ms(b) - ms(a)));
        }
    }

    line(String::new());
    // bwrap --unshare-all gives a network namespace with lo up and no
    // cable: the same as ch07 --network none.
    if let (Some(full), Some(b)) = (find("ch07 none"), bwrap) {
        line(format!(
            "the full container with --network none (ch07 none) takes {:.2}× bwrap's time",
            ms(full) / ms(b)
        ));
        if let (Some(a), Some(v)) = (find("sandbox ch07 none"), find("sandbox ch07")) {
            let with_veth = ms(full) + (ms(v) - ms(a));
            line(format!(
                "with its default veth (ch07 none + the veth step), {:.2}× bwrap's time",
                with_veth / ms(b)
            ));
        }
    }

    for (name, how) in [
        ("rootless ch11", "--network none --map self"),
        ("rootless ch11 ro", "--network none --map self --read-only"),
    ] {
        if let (Some(ch11), Some(b)) = (find(name), find("rootless bwrap")) {
            let ratio = ms(ch11) / ms(b);
            line(format!(
                "rootless, as nobody: ch11 {how} takes {ratio:.2}× bwrap --unshare-user --unshare-all's time ({:.2} ms against {:.2} ms; issue 15 asks at most 1.0×: {})",
                ms(ch11),
                ms(b),
                if ratio <= 1.0 { "met" } else { "NOT met" }
            ));
        }
    }
    for (name, target) in [("ch08 none", None), ("ch09 none", Some(1.2))] {
        if let (Some(t), Some(base)) = (find(name), find("ch07 none")) {
            let ratio = ms(t) / ms(base);
            line(format!(
                "{name} takes {ratio:.2}× ch07 none's time{}",
                target.map_or(String::new(), |t: f64| format!(
                    " (issue 13 asks at most {t}×: {})",
                    if ratio <= t { "met" } else { "NOT met" }
                ))
            ));
        }
    }
    // Chapter 12's issue: the hardened start at most 1.1× chapter 7's full
    // start; against ch08 none (the same overlay root) it is the hardening's cost.
    if let (Some(hardened), Some(ch07), Some(ch08)) =
        (find("ch12 none"), find("ch07 none"), find("ch08 none"))
    {
        let ratio = ms(hardened) / ms(ch07);
        line(format!(
            "ch12 none (hardened) takes {ratio:.2}× ch07 none's time (the issue asks at most 1.1×: {}), {:+.2} ms over ch08 none (the same overlay root)",
            if ratio <= 1.1 { "met" } else { "NOT met" },
            ms(hardened) - ms(ch08)
        ));
    }
    if let (Some(join), Some(veth)) = (find("ns ch10 join"), find("ns ch06 veth")) {
        let ratio = ms(join) / ms(veth);
        line(format!(
            "ns ch10 join (a container joining the bridge another holds) takes {ratio:.2}× ns ch06 veth's time (chapter 6's start, veth only; issue 14 asks at most 1.2×: {})",
            if ratio <= 1.2 { "met" } else { "NOT met" }
        ));
    }
    line(String::new());
    eprintln!("bench: images: a rebuild, an import of 100 MB, the store's disk use");
    for figure in images.figures()? {
        line(figure);
    }
    let _ = std::fs::remove_dir_all(&images.work);

    if !args.no_build_times {
        line(String::new());
        let (clean, rebuild) = build_times()?;
        line(format!("clean debug build of the workspace: {clean:.1} s (cargo build --workspace --all-targets, empty target dir)"));
        line(format!(
            "rebuild after editing one exercise: {rebuild:.2} s (cargo test -p exercises --no-run)"
        ));
    }
    line(format!(
        "(the bench took {:.0} s)",
        started.elapsed().as_secs_f64()
    ));

    let out = root().join("target/bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("report.txt"), &report)?;
    if args.book {
        let shown = crate::book::normalise(&report, &root().display().to_string());
        std::fs::write(root().join("book/src/transcripts/bench.txt"), shown)?;
        eprintln!("bench: wrote book/src/transcripts/bench.txt");
    }
    Ok(())
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// An OCI bundle for runc: `runc spec`'s defaults, running /bin/true in our
/// rootfs, its cgroup path relative (beneath the cgroup we live in).
fn runc_bundle(rootfs: &Path) -> Result<PathBuf> {
    let bundle = root().join("target/bench/runc-bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(&bundle)?;
    let status = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .status()?;
    anyhow::ensure!(status.success(), "runc spec failed");
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/true"]);
    spec["root"]["path"] = rootfs.display().to_string().into();
    spec["root"]["readonly"] = true.into();
    spec["linux"]["cgroupsPath"] = format!("workshop-bench-runc-{}", std::process::id()).into();
    std::fs::write(&path, serde_json::to_string_pretty(&spec)?)?;
    Ok(bundle)
}

/// A clean debug build of the workspace in a scratch target dir, then the
/// rebuild after an edit to one exercise file (its mtime and content).
fn build_times() -> Result<(f64, f64)> {
    let scratch = root().join("target/bench/build");
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "bench: clean debug build of the workspace in {}",
        scratch.display()
    );
    let start = Instant::now();
    let status = cargo()
        .args(["build", "--quiet", "--workspace", "--all-targets"])
        .env("CARGO_TARGET_DIR", &scratch)
        .status()?;
    anyhow::ensure!(status.success(), "clean build failed");
    let clean = start.elapsed().as_secs_f64();
    let exercise = root().join("exercises/src/ch01_clone.rs");
    let original = std::fs::read_to_string(&exercise)?;
    std::fs::write(
        &exercise,
        format!("{original}// edited by cargo xtask bench\n"),
    )?;
    let start = Instant::now();
    let status = cargo()
        .args(["test", "--quiet", "-p", "exercises", "--no-run"])
        .env("CARGO_TARGET_DIR", &scratch)
        .stderr(Stdio::null())
        .status();
    let rebuild = start.elapsed().as_secs_f64();
    std::fs::write(&exercise, original)?;
    anyhow::ensure!(status?.success(), "rebuild failed");
    let _ = std::fs::remove_dir_all(&scratch);
    Ok((clean, rebuild))
}

/// A network namespace that outlives the runs measured in it, for the
/// figure of chapter 10 (a container joining a bridge that is already
/// there): held by a process of the bench's, `unshare --net ARGV` (which
/// execs ARGV, so the holder's PID is ARGV's), and entered by each run
/// with `nsenter --net=/proc/PID/ns/net`. Stopped with SIGTERM (a chapter
/// stops its container and cleans up), at the latest when dropped.
struct NetHolder {
    child: Option<std::process::Child>,
    what: String,
}

impl NetHolder {
    fn start(what: &str, argv: &[String]) -> Result<NetHolder> {
        let child = Command::new("unshare")
            .args(["--net", "--"])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!("failed to start {what}: `unshare --net {}`", argv.join(" "))
            })?;
        Ok(NetHolder {
            child: Some(child),
            what: what.into(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// `/proc/PID/ns/net`.
    fn namespace(&self) -> String {
        format!("/proc/{}/ns/net", self.pid())
    }

    /// `argv`, run in the holder's network namespace.
    fn enter(&self, argv: Vec<String>) -> Vec<String> {
        let mut entered = vec!["nsenter".to_string(), format!("--net={}", self.namespace())];
        entered.extend(argv);
        entered
    }

    /// Wait (at most `limit`) until `ready` says yes; fails if the holder
    /// ended first, with what it said.
    fn wait_until(&mut self, limit: Duration, ready: impl Fn(&NetHolder) -> bool) -> Result<()> {
        let start = Instant::now();
        while !ready(self) {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait()? {
                let mut said = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut said);
                }
                self.child = None;
                bail!(
                    "{} ended ({status}) before it was ready: {}",
                    self.what,
                    said.trim()
                );
            }
            if start.elapsed() > limit {
                bail!("{} was not ready after {} s", self.what, limit.as_secs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// SIGTERM, then wait for it (SIGKILL after 10 s). Returns its status.
    fn stop(&mut self) -> Result<Option<std::process::ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            if start.elapsed() > Duration::from_secs(10) {
                eprintln!("bench: {} did not stop after SIGTERM: SIGKILL", self.what);
                let _ = child.kill();
                return Ok(Some(child.wait()?));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NetHolder {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Chapter 10's state of the bridge in the namespace at `/proc/PID/ns/net`
/// (`/run/workshop-bridge-net-INODE`), as `ch10_bridge::State::here` names
/// it from inside.
fn bridge_state_of(namespace: &str) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(namespace).ok()?.ino();
    Some(PathBuf::from(format!("/run/workshop-bridge-net-{inode}")))
}

/// The namespaces of issue 14's figure: one where chapter 6 lays its veth,
/// one where chapter 8 does (to tell the overlay from the bridge), one
/// where a long-running chapter 10 container holds the bridge that each
/// measured run joins.
struct BridgeBench {
    /// Chapter 6's runs' namespace, and chapter 8's: one each, as a run
    /// deletes the pair of the run before it in its namespace if the kernel
    /// has not yet (it does in the background), which would time a delete.
    veth: NetHolder,
    veth_ch08: NetHolder,
    bridge: NetHolder,
    /// `/run/workshop-bridge-net-INODE` of the bridge's namespace.
    state: PathBuf,
}

/// The name the holder of the bridge has on it.
const HOLDER_NAME: &str = "bench-holder";

impl BridgeBench {
    fn start(ch10: &str, rootfs: &str) -> Result<BridgeBench> {
        let veth = NetHolder::start(
            "chapter 6's runs' namespace (sleep)",
            &["sleep".into(), "86400".into()],
        )?;
        let veth_ch08 = NetHolder::start(
            "chapter 8's runs' namespace (sleep)",
            &["sleep".into(), "86400".into()],
        )?;
        let mut bridge = NetHolder::start(
            "the container that holds the bridge (ch10-bridge)",
            &[
                ch10.into(),
                "--quiet".into(),
                "--rootfs".into(),
                rootfs.into(),
                "--name".into(),
                HOLDER_NAME.into(),
                "--".into(),
                "/bin/sleep".into(),
                "86400".into(),
            ],
        )?;
        // Ready when the holder's name is in the bridge's hosts file: join's
        // last step.
        bridge.wait_until(Duration::from_secs(30), |h| {
            bridge_state_of(&h.namespace())
                .and_then(|s| std::fs::read_to_string(s.join("hosts")).ok())
                .is_some_and(|hosts| hosts.contains(HOLDER_NAME))
        })?;
        let state = bridge_state_of(&bridge.namespace()).context("the bridge's namespace")?;
        Ok(BridgeBench {
            veth,
            veth_ch08,
            bridge,
            state,
        })
    }

    /// Stop both; chapter 10's holder, the last one on the bridge, removes
    /// it and its state. Returns a note if it left its state behind (which
    /// is removed here).
    fn stop(mut self) -> Result<Option<String>> {
        self.veth.stop()?;
        self.veth_ch08.stop()?;
        let status = self.bridge.stop()?;
        if self.state.exists() {
            std::fs::remove_dir_all(&self.state)?;
            return Ok(Some(format!(
                "ch10-bridge, stopped with SIGTERM ({}), left {} (removed by the bench)",
                status.map_or("?".into(), |s| s.to_string()),
                self.state.display()
            )));
        }
        Ok(None)
    }
}
