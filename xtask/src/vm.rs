//! `cargo xtask vm-test`: run the chapters' tests on a stock Debian kernel
//! with cgroup v2 and every controller, under qemu, whatever the host runs.
//!
//! 1. the kernel: `apt-get download` of the package `linux-image-amd64`
//!    depends on, unpacked with `dpkg-deb -x` into `target/vm/` (never
//!    installed on the host) and kept there for the next run;
//! 2. the tests: `cargo test --no-run` of [`PACKAGES`], linked statically
//!    (`+crt-static`), in `target/vm-build`; cargo's JSON messages name the
//!    test executables and the chapter binaries, whose absolute paths the
//!    tests have compiled in (`CARGO_BIN_EXE_*`);
//! 3. the initramfs: a newc cpio written here ([`cpio`]) with a static
//!    busybox, the kernel modules the chapters need and those they depend
//!    on ([`MODULES`]), the host programs busybox has not with their shared
//!    libraries ([`PROGRAMS`]: `nft`, for chapter 10), those executables at
//!    the same absolute paths, cargo's `CACHEDIR.TAG` (so
//!    `workshop_rootfs::default_dir` finds the target dir) and an `/init`
//!    script ([`init_script`]);
//! 4. qemu with software emulation (TCG: no KVM needed) and no network
//!    device; its serial console is streamed here, and the run passes only
//!    when `/init` reports that every test executable passed.

mod cpio;

use crate::{cargo, root};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};
use workshop::error::hinted;
use workshop_rootfs::{elf, shown};

/// The packages whose tests run in the VM: the chapters that need a real
/// kernel of their own (namespaces, mounts, pivot_root, cgroups), and the
/// exercise checks against the solutions, so that they run on cgroup v2 too.
/// Add a chapter here to test it there too.
pub const PACKAGES: &[&str] = &[
    "ch01-clone",
    "ch02-namespaces",
    "ch03-mount",
    "ch04-rootfs",
    "ch05-uts",
    "ch06-net",
    "ch07-cgroups",
    "ch08-overlay",
    "ch09-image",
    "ch10-bridge",
    "ch11-rootless",
    "ch12-hardened",
    // The exercise checks, against the solutions: the probe
    // (`solutions-probe`) goes in as a binary of the package.
    "solutions",
    // `cargo xtask doctor`: its fault tests, and its binary, which /init
    // runs before the tests so that the log shows what it says on cgroup v2.
    "xtask-front",
];

/// A test that cannot run in the VM, and why. Only for a missing tool: a
/// busybox initramfs has no util-linux, procps or iproute2. A test that fails
/// in the VM for any other reason is a finding, not a skip.
pub struct Skip {
    pub package: &'static str,
    /// The test's full name, as `--list` prints it (matched with `--exact`).
    pub test: &'static str,
    pub reason: &'static str,
}

pub const SKIPS: &[Skip] = &[
    Skip {
        package: "ch03-mount",
        test: "shell_on_a_terminal_is_pid_1_and_returns_its_exit_code",
        reason: "it needs util-linux `script` for a pseudo-terminal; busybox has no `script`",
    },
    Skip {
        package: "ch06-net",
        test: "a_stale_pair_from_a_killed_run_is_reclaimed",
        reason: "it lays a stale pair with iproute2's `ip link add ... peer name`; busybox's ip ignores the peer's name",
    },
    Skip {
        package: "ch06-net",
        test: "a_pair_whose_pid_was_reused_is_reclaimed_and_a_live_runs_is_not",
        reason: "it names a stale pair's peer and sets its alias with iproute2; busybox's ip can do neither",
    },
    Skip {
        package: "ch09-image",
        test: "skopeo_reads_our_oci_layout_and_umoci_unpacks_the_tree_our_overlay_shows",
        reason: "it runs skopeo and umoci (Debian packages, installed by .ci/run on the host, where it runs)",
    },
    Skip {
        package: "ch09-image",
        test: "skopeo_reads_our_docker_archive",
        reason: "it runs skopeo (installed by .ci/run on the host, where it runs)",
    },
    Skip {
        package: "ch09-image",
        test: "saving_twice_into_one_layout_keeps_both_names",
        reason: "it reads both names back with skopeo (installed by .ci/run on the host, where it runs)",
    },
    Skip {
        package: "ch09-image",
        test: "an_oci_layout_made_by_umoci_and_a_docker_archive_made_by_skopeo_are_imported",
        reason: "it runs umoci and skopeo (installed by .ci/run on the host, where it runs)",
    },
];

/// The kernel: whatever this Debian package depends on (the current stock
/// kernel of the release).
const KERNEL_META_PACKAGE: &str = "linux-image-amd64";
/// The VM is x86_64, and so is everything built for it.
const TARGET: &str = "x86_64-unknown-linux-gnu";
const QEMU: &str = "qemu-system-x86_64";
const BUSYBOX: &str = "/bin/busybox";
/// The initramfs (677 MiB of static test executables with chapter 9) lives
/// twice in memory while /init copies it into a tmpfs, and the tests write
/// their rootfs copies and image stores there too: with 2048 MiB the last
/// package (the exercise checks) could no longer start its probe.
const MEMORY_MIB: u32 = 4096;
const CPUS: u32 = 2;
/// The kernel's command line. `panic=-1` with qemu's `-no-reboot`: a panic
/// (or an /init that dies) ends qemu at once instead of hanging.
/// `cgroup_no_v1=all`: no controller can be bound to a v1 hierarchy.
const KERNEL_ARGS: &str = "console=ttyS0 quiet panic=-1 cgroup_no_v1=all";
/// The prefix of every line of this task's and of the VM's /init.
const SAY: &str = "vm-test:";
/// What /init prints when /sys/fs/cgroup is a cgroup2 mount.
const CGROUP2_SAID: &str = "stat -f -c %T /sys/fs/cgroup: cgroup2fs";
/// What /init prints, followed by their number, when every test executable passed.
const ALL_PASSED: &str = "vm-test: all test executables passed:";

#[derive(Args)]
pub struct VmTestArgs {
    /// Kill the VM if it has not powered off after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1200)]
    timeout: u64,
    /// Test only this package (repeatable; default: all the VM's packages)
    #[arg(long, short = 'p', value_name = "PACKAGE")]
    package: Vec<String>,
    /// Run the tests of the skip list too (SKIPS in xtask/src/vm.rs), to see that each still fails only for its missing tool
    #[arg(long)]
    no_skips: bool,
}

pub fn run(args: VmTestArgs) -> Result<()> {
    let start = Instant::now();
    if !cfg!(target_arch = "x86_64") {
        bail!("vm-test boots an x86_64 kernel and builds for {TARGET}: run it on an x86_64 host");
    }
    let root = root();
    let vm_dir = root.join("target/vm");
    let build_dir = root.join("target/vm-build");
    let packages = packages(&args.package)?;
    let qemu = workshop_host::find_on_path(QEMU).ok_or_else(|| {
        hinted(
            format!("{QEMU} is not installed"),
            "apt-get install qemu-system-x86 (no KVM needed: the VM runs under software emulation)",
        )
    })?;
    let busybox = static_busybox()?;
    let programs = programs(&packages)?;
    fs::create_dir_all(&vm_dir)
        .with_context(|| format!("failed to create {}", vm_dir.display()))?;

    let kernel = kernel(&vm_dir)?;
    say(&format!(
        "kernel {} (Debian {} {}), {} in {}",
        kernel.release,
        kernel.package,
        kernel.version,
        if kernel.downloaded {
            "downloaded and unpacked"
        } else {
            "cached"
        },
        shown(&kernel.dir).display()
    ));

    say(&format!(
        "building {} statically ({TARGET}, +crt-static) in {}",
        packages.join(" "),
        shown(&build_dir).display()
    ));
    let built = build(&build_dir, &packages)?;
    let mut skips = skips_for(&built, &packages)?;
    say(&format!(
        "all static: test executables {}, chapter binaries {}",
        built.tests.len(),
        built.bins.len()
    ));
    if args.no_skips {
        for skip in skips.drain(..) {
            say(&format!(
                "running {} {} although it is on the skip list ({})",
                skip.package, skip.test, skip.reason
            ));
        }
    }

    let initramfs = vm_dir.join("initramfs.cpio");
    let packed = Instant::now();
    let modules = modules(&kernel)?;
    let loads: Vec<&Load> = modules.iter().map(|(load, _)| load).collect();
    let in_vm: Vec<&Program> = programs.iter().map(|(p, _)| *p).collect();
    let script = init_script(&built, &skips, &loads, &in_vm);
    let (entries, bytes) =
        write_initramfs(&initramfs, &busybox, &modules, &programs, &built, &script)?;
    say(&format!(
        "initramfs {}: {entries} entries, {} MiB, uncompressed ({:.1} s)",
        shown(&initramfs).display(),
        bytes >> 20,
        packed.elapsed().as_secs_f64()
    ));
    say(&format!(
        "modules /init loads, in order: {}",
        loads
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    for (p, placements) in &programs {
        say(&format!(
            "{} from the host, with {} files of its loader and libraries",
            p.in_vm().display(),
            placements.len() - 1
        ));
    }
    for skip in &skips {
        say(&format!(
            "will skip {} {}: {}",
            skip.package, skip.test, skip.reason
        ));
    }

    say(&format!(
        "booting qemu (TCG software emulation, {CPUS} CPUs, {MEMORY_MIB} MiB, no network device, time limit {} s); its serial console follows",
        args.timeout
    ));
    let outcome = boot(
        &qemu,
        &kernel.vmlinuz,
        &initramfs,
        Duration::from_secs(args.timeout),
    )?;
    let totals = Totals::of(&outcome.lines);
    say(&format!(
        "qemu ran {:.1} s from start to {} ({}); vm-test took {:.1} s in all",
        outcome.elapsed.as_secs_f64(),
        if outcome.exited.is_some() {
            "power-off"
        } else {
            "being killed"
        },
        match outcome.init_at {
            Some(at) => format!("/init started after {:.1} s", at.as_secs_f64()),
            None => "/init never started".into(),
        },
        start.elapsed().as_secs_f64()
    ));
    // The plain closing line CI reads: passed, failed, skipped.
    println!(
        "vm-test: {} passed, {} failed, {} skipped",
        totals.passed,
        totals.failed,
        totals.ignored + totals.filtered
    );
    verdict(&outcome, &totals, built.tests.len())
}

fn say(line: &str) {
    println!("{SAY} {line}");
}

/// The packages to test: [`PACKAGES`], or the ones asked for (which must be
/// among them).
fn packages(asked: &[String]) -> Result<Vec<String>> {
    let all: Vec<String> = PACKAGES.iter().copied().map(str::to_string).collect();
    if asked.is_empty() {
        return Ok(all);
    }
    for p in asked {
        if !all.contains(p) {
            return Err(hinted(
                format!("{p} is not one of the packages vm-test runs"),
                format!(
                    "choose among {} (the list is PACKAGES in xtask/src/vm.rs)",
                    all.join(", ")
                ),
            ));
        }
    }
    // Chapter 11's attack tests run chapter 7's container too (the
    // before): its binary must be built, so its package comes along.
    let mut chosen = asked.to_vec();
    for (asked_for, needs) in NEEDS {
        if chosen.iter().any(|p| p == asked_for) && !chosen.iter().any(|p| p == needs) {
            chosen.push(needs.to_string());
        }
    }
    Ok(chosen)
}

/// A package whose tests run another package's binary: (the package, the one it needs).
const NEEDS: &[(&str, &str)] = &[("ch11-rootless", "ch07-cgroups")];

/// /bin/busybox, which must be the static one (Debian's busybox-static):
/// the initramfs has no shared libraries.
fn static_busybox() -> Result<PathBuf> {
    let path = PathBuf::from(BUSYBOX);
    let hint = "apt-get install busybox-static (the VM's /init and tools; the dynamic `busybox` package will not do)";
    if !path.is_file() {
        return Err(hinted(format!("{BUSYBOX} is not installed"), hint));
    }
    match elf::read(&path)? {
        Some(e) if e.is_static() => Ok(path),
        _ => Err(hinted(format!("{BUSYBOX} is not a static binary"), hint)),
    }
}

// ---------------------------------------------------------------- kernel

struct Kernel {
    /// The Debian package: linux-image-6.1.0-56-amd64.
    package: String,
    /// Its version: 6.1.192-2.
    version: String,
    /// The kernel release: 6.1.0-56-amd64.
    release: String,
    /// target/vm/<package>: the unpacked package.
    dir: PathBuf,
    vmlinuz: PathBuf,
    downloaded: bool,
}

/// Written into an unpacked kernel package once it is complete; holds the
/// package's version.
const KERNEL_MARKER: &str = ".workshop-kernel";

/// The current stock kernel, unpacked under `vm_dir`: from the cache when it
/// is there, else downloaded (never installed on the host).
fn kernel(vm_dir: &Path) -> Result<Kernel> {
    let package = match current_kernel_package() {
        Ok(p) => p,
        Err(e) => {
            // apt knows no kernel (no `apt-get update` yet): a cached one will do.
            if let Some(cached) = newest_cached_kernel(vm_dir) {
                eprintln!("warning: {e:#}; using the cached {cached}");
                cached
            } else {
                return Err(e);
            }
        }
    };
    let mut dir = vm_dir.join(&package);
    let mut package = package;
    let downloaded = if dir.join(KERNEL_MARKER).is_file() {
        false
    } else if let Err(e) = download_kernel(vm_dir, &package, &dir) {
        // No network, or stale lists: an older cached kernel still does.
        let Some(cached) = newest_cached_kernel(vm_dir) else {
            return Err(e);
        };
        eprintln!("warning: {e:#}; using the cached {cached} instead");
        dir = vm_dir.join(&cached);
        package = cached;
        false
    } else {
        true
    };
    let version = fs::read_to_string(dir.join(KERNEL_MARKER))?
        .trim()
        .to_string();
    let vmlinuz = vmlinuz_in(&dir)?;
    let release = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .unwrap_or("?")
        .to_string();
    Ok(Kernel {
        package,
        version,
        release,
        dir,
        vmlinuz,
        downloaded,
    })
}

/// The package `linux-image-amd64` depends on (apt's lists, no network), or
/// failing that the newest `linux-image-X.Y.Z-N-amd64` apt knows.
fn current_kernel_package() -> Result<String> {
    let no_lists = || {
        hinted(
            format!("apt knows no {KERNEL_META_PACKAGE} package to take the kernel from"),
            "run `apt-get update` once (as root) so apt can find and download the kernel package; nothing is installed",
        )
    };
    let depends = Command::new("apt-cache")
        .args(["depends", KERNEL_META_PACKAGE])
        .stderr(Stdio::null())
        .output();
    let depends = match depends {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(_) => {
            return Err(hinted(
                "apt-cache is not available",
                "vm-test takes Debian's stock kernel with apt-get download: run it on Debian or a derivative",
            ))
        }
    };
    if let Some(p) = kernel_dependency(&depends) {
        return Ok(p);
    }
    let names = Command::new("apt-cache")
        .args(["pkgnames", "linux-image-"])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    newest_kernel_package(names.lines()).ok_or_else(no_lists)
}

/// `Depends: linux-image-6.1.0-56-amd64` in `apt-cache depends` output.
fn kernel_dependency(depends: &str) -> Option<String> {
    depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| kernel_package_version(p).is_some())
        .map(str::to_string)
}

/// The numbers in `linux-image-6.1.0-56-amd64` ([6, 1, 0, 56]), or None if
/// the name is not a stock amd64 kernel image (`-cloud-amd64`, `-rt-`,
/// `-unsigned`, `-dbg` are not).
fn kernel_package_version(name: &str) -> Option<Vec<u64>> {
    let middle = name.strip_prefix("linux-image-")?.strip_suffix("-amd64")?;
    let (release, abi) = middle.split_once('-')?;
    let mut numbers: Vec<u64> = release
        .split('.')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    if numbers.len() != 3 {
        return None;
    }
    numbers.push(abi.parse().ok()?);
    Some(numbers)
}

fn newest_kernel_package<'a>(names: impl Iterator<Item = &'a str>) -> Option<String> {
    names
        .map(str::trim)
        .filter_map(|n| kernel_package_version(n).map(|v| (v, n)))
        .max()
        .map(|(_, n)| n.to_string())
}

fn newest_cached_kernel(vm_dir: &Path) -> Option<String> {
    let entries = fs::read_dir(vm_dir).ok()?;
    let names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join(KERNEL_MARKER).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    newest_kernel_package(names.iter().map(String::as_str))
}

/// `apt-get download PACKAGE` into a scratch dir, `dpkg-deb -x` beside
/// `dir`, then the marker, then renamed into place: a run killed halfway
/// leaves nothing that looks complete.
fn download_kernel(vm_dir: &Path, package: &str, dir: &Path) -> Result<()> {
    let scratch = vm_dir.join(format!(".download.{}", std::process::id()));
    let unpacking = vm_dir.join(format!(".{package}.unpacking.{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    let _ = fs::remove_dir_all(&unpacking);
    fs::create_dir_all(&scratch)?;
    // apt's download sandbox user (_apt) must be able to write here, or apt
    // warns that it downloads unsandboxed.
    fs::set_permissions(&scratch, fs::Permissions::from_mode(0o777))?;
    say(&format!(
        "downloading {package} from the Debian archive (apt-get download; nothing is installed)"
    ));
    let result = (|| {
        let out = Command::new("apt-get")
            .args(["download", "-q", package])
            .current_dir(&scratch)
            .stdin(Stdio::null())
            .output()
            .context("failed to run apt-get")?;
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            return Err(hinted(
                format!("apt-get download {package} failed"),
                "run `apt-get update` once (as root) so apt knows where to fetch the package, then try again",
            ));
        }
        let deb = fs::read_dir(&scratch)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .context("apt-get download left no .deb file")?;
        let version = checked_output(
            Command::new("dpkg-deb")
                .args(["-f"])
                .arg(&deb)
                .arg("Version"),
        )?;
        say(&format!(
            "unpacking {} ({} MiB) with dpkg-deb -x",
            deb.file_name().unwrap_or_default().to_string_lossy(),
            fs::metadata(&deb)?.len() >> 20
        ));
        checked_output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacking))?;
        vmlinuz_in(&unpacking)?;
        fs::write(
            unpacking.join(KERNEL_MARKER),
            format!("{}\n", version.trim()),
        )?;
        let _ = fs::remove_dir_all(dir);
        fs::rename(&unpacking, dir).with_context(|| {
            format!(
                "failed to rename {} to {}",
                unpacking.display(),
                dir.display()
            )
        })
    })();
    let _ = fs::remove_dir_all(&scratch);
    if result.is_err() {
        let _ = fs::remove_dir_all(&unpacking);
    }
    result
}

/// The one `boot/vmlinuz-*` of an unpacked kernel package.
fn vmlinuz_in(dir: &Path) -> Result<PathBuf> {
    let boot = dir.join("boot");
    let found: Vec<PathBuf> = fs::read_dir(&boot)
        .with_context(|| format!("failed to read {}", boot.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one vmlinuz-* in {}, found {}",
            boot.display(),
            found.len()
        ),
    }
}

/// Run a command to success and return its stdout.
fn checked_output(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("failed to run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

// ----------------------------------------------------------------- build

/// A test executable and the package it tests.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TestExe {
    package: String,
    path: PathBuf,
}

#[derive(Debug, Default)]
struct Built {
    tests: Vec<TestExe>,
    /// The chapter binaries, at the paths `CARGO_BIN_EXE_*` holds.
    bins: Vec<PathBuf>,
    /// Cargo's `CACHEDIR.TAG` at the top of the target dir.
    cachedir_tag: PathBuf,
}

/// `cargo test --no-run` of `packages` for [`TARGET`] with `+crt-static`.
/// The explicit `--target` keeps RUSTFLAGS off build scripts and proc
/// macros, which must stay dynamic host programs.
fn build(build_dir: &Path, packages: &[String]) -> Result<Built> {
    let mut cmd = cargo();
    cmd.env("CARGO_TARGET_DIR", build_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args(["test", "--no-run", "--target", TARGET])
        .arg("--message-format=json-render-diagnostics");
    for p in packages {
        cmd.args(["-p", p]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to run cargo")?;
    let mut messages = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut messages)?;
    if !child.wait()?.success() {
        bail!("cargo test --no-run --target {TARGET} failed (see its errors above)");
    }
    let manifests = manifests_of(packages)?;
    let mut built = artifacts(&messages, &manifests)?;
    built.cachedir_tag = build_dir.join("CACHEDIR.TAG");
    if !built.cachedir_tag.is_file() {
        bail!("cargo left no {}", built.cachedir_tag.display());
    }
    for exe in built.tests.iter().map(|t| &t.path).chain(&built.bins) {
        match elf::read(exe)? {
            Some(e) if e.is_static() => {}
            Some(e) => {
                return Err(hinted(
                    format!(
                        "{} is not static (it loads {})",
                        exe.display(),
                        e.interpreter
                            .map(|i| i.display().to_string())
                            .unwrap_or_else(|| e.needed.join(", "))
                    ),
                    "the VM has no shared libraries: the build needs RUSTFLAGS=\"-C target-feature=+crt-static\" with an explicit --target, and glibc's static libraries (libc6-dev)",
                ))
            }
            None => bail!("{} is not an ELF executable", exe.display()),
        }
    }
    Ok(built)
}

/// Each package's Cargo.toml (path -> package), as cargo itself knows it
/// (`cargo metadata`): a chapter's under chapters/, `solutions` at the root,
/// `xtask-front` in xtask/front.
fn manifests_of(packages: &[String]) -> Result<BTreeMap<PathBuf, String>> {
    let metadata =
        checked_output(cargo().args(["metadata", "--no-deps", "--format-version", "1"]))?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).context("cargo metadata printed no JSON")?;
    let manifests: BTreeMap<PathBuf, String> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["name"].as_str()?, p["manifest_path"].as_str()?)))
        .filter(|(name, _)| packages.iter().any(|p| p == name))
        .map(|(name, manifest)| (PathBuf::from(manifest), name.to_string()))
        .collect();
    if manifests.len() != packages.len() {
        bail!("cargo metadata does not know every one of {packages:?}");
    }
    Ok(manifests)
}

/// The test executables and binaries of our `manifests` (Cargo.toml path ->
/// package) among cargo's `compiler-artifact` messages, one JSON object a line.
fn artifacts(messages: &str, manifests: &BTreeMap<PathBuf, String>) -> Result<Built> {
    let mut built = Built::default();
    for line in messages.lines().filter(|l| l.starts_with('{')) {
        let msg: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("cargo said {line}"))?;
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let Some(package) = msg["manifest_path"]
            .as_str()
            .and_then(|m| manifests.get(Path::new(m)))
        else {
            continue;
        };
        let is_bin = msg["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
        if msg["profile"]["test"] == true {
            built.tests.push(TestExe {
                package: package.clone(),
                path: exe.into(),
            });
        } else if is_bin {
            built.bins.push(exe.into());
        }
    }
    built
        .tests
        .sort_by(|a, b| (&a.package, &a.path).cmp(&(&b.package, &b.path)));
    built.tests.dedup();
    built.bins.sort();
    built.bins.dedup();
    if built.tests.is_empty() {
        bail!("cargo built no test executable");
    }
    Ok(built)
}

/// The skips of [`SKIPS`] for the packages under test, each checked against
/// the tests the package really has (run with `--list` here on the host), so
/// that a renamed test cannot leave a stale skip behind.
fn skips_for(built: &Built, packages: &[String]) -> Result<Vec<&'static Skip>> {
    let mut names: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for t in &built.tests {
        let listed = checked_output(Command::new(&t.path).args(["--list", "--format", "terse"]))?;
        names.entry(&t.package).or_default().extend(
            listed
                .lines()
                .filter_map(|l| l.strip_suffix(": test"))
                .map(str::to_string),
        );
    }
    let mut skips = Vec::new();
    for skip in SKIPS
        .iter()
        .filter(|s| packages.iter().any(|p| p == s.package))
    {
        if !names
            .get(skip.package)
            .is_some_and(|n| n.contains(skip.test))
        {
            bail!(
                "the VM skip list (SKIPS in xtask/src/vm.rs) names {} test `{}`, which does not exist: remove or rename it",
                skip.package,
                skip.test
            );
        }
        skips.push(skip);
    }
    Ok(skips)
}

// ------------------------------------------------------------- initramfs

/// The VM's /init, a busybox sh script in two stages.
///
/// Stage 1 runs on the initramfs itself, which is the kernel's initial
/// rootfs: pivot_root refuses to move it (EINVAL), and the chapters
/// pivot_root, so it copies everything into a tmpfs and `switch_root`s there.
/// Stage 2 mounts what a machine has, cgroup2 with every controller enabled
/// at the root, runs each test executable and reports, then powers off.
fn init_script(built: &Built, skips: &[&Skip], modules: &[&Load], programs: &[&Program]) -> String {
    let mut runs = String::new();
    for skip in skips {
        let _ = writeln!(
            runs,
            "say \"skip {} {}: {}\"",
            skip.package,
            skip.test,
            skip.reason.replace(['"', '`', '$', '\\'], "'")
        );
    }
    for t in &built.tests {
        let mut line = format!(
            "run_tests {} {}",
            t.package,
            sh_quote(&t.path.to_string_lossy())
        );
        for skip in skips.iter().filter(|s| s.package == t.package) {
            let _ = write!(line, " --skip {}", skip.test);
        }
        let _ = writeln!(runs, "{line}");
    }
    let mut loads = String::new();
    for m in modules {
        let at = m.in_vm();
        let _ = writeln!(
            loads,
            "insmod {at} || say \"warning: could not load the {} module (insmod {at}): {}\"",
            m.name, m.needed_by
        );
    }
    let mut says = String::new();
    for p in programs {
        let _ = writeln!(says, "say \"{0} --version: $({0} --version 2>&1)\"", p.name);
    }
    let doctor = match built.bins.iter().find(|b| b.ends_with("xtask-front")) {
        Some(front) => format!(
            "say \"cargo xtask doctor, as a student would run it first:\"\n{} doctor; say \"doctor exited $?\"",
            sh_quote(&front.to_string_lossy())
        ),
        None => String::new(),
    };
    INIT.replace("@MODULES@", loads.trim_end())
        .replace("@PROGRAMS@", says.trim_end())
        .replace("@DOCTOR@", &doctor)
        .replace("@RUNS@", runs.trim_end())
        .replace("@COUNT@", &built.tests.len().to_string())
}

/// `text` as one word for sh: in single quotes, each `'` written as `'\''`.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

const INIT: &str = r#"#!/bin/sh
# The /init of `cargo xtask vm-test` (written by xtask/src/vm.rs).
export PATH=/bin HOME=/root RUST_BACKTRACE=1 NO_COLOR=1
say() { echo "vm-test: $*"; }

if [ "$1" != stage2 ]; then
    mount -t proc proc /proc
    say "stage 1, up $(cut -d' ' -f1 /proc/uptime) s: copying the initramfs into a tmpfs (pivot_root cannot leave the initial rootfs)"
    umount /proc
    mount -t tmpfs -o mode=0755 root /newroot
    for entry in /*; do
        [ "$entry" = /newroot ] || cp -a "$entry" /newroot/
    done
    exec switch_root /newroot /init stage2
    say "FAILED: switch_root did not run"
    poweroff -f
fi

mount -t proc proc /proc
say "stage 2, up $(cut -d' ' -f1 /proc/uptime) s: mounting /sys, /dev and cgroup2"
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# No tmpfs on /tmp: the root is a tmpfs already, and a checkout under /tmp
# (where CI may clone) holds the test executables at their absolute paths.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for controller in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$controller" > /sys/fs/cgroup/cgroup.subtree_control ||
        say "warning: could not enable the $controller controller"
done
ip link set lo up
hostname workshop-vm
# Debian builds veth, overlay, bridge and nf_tables as modules
# (CONFIG_VETH=m, CONFIG_OVERLAY_FS=m, ...), and this VM has no modprobe:
# load each by its file, after the ones it needs.
@MODULES@
# The host programs that came in with their shared libraries, if any.
@PROGRAMS@

say "kernel $(uname -r), $(nproc) CPUs, $(free -m | awk '/^Mem:/ { print $2 }') MiB"
say "cat /proc/self/cgroup: $(cat /proc/self/cgroup)"
# busybox's stat has no name for CGROUP2_SUPER_MAGIC (it prints UNKNOWN):
# name it from the magic number, which is shown too.
fstype=$(stat -f -c %T /sys/fs/cgroup)
magic=$(stat -f -c %t /sys/fs/cgroup)
[ "$magic" = 63677270 ] && fstype=cgroup2fs
say "stat -f -c %T /sys/fs/cgroup: $fstype (f_type 0x$magic)"
say "cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
say "cgroup.subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
@DOCTOR@

cd /tmp
failed=""
run_tests() {
    package=$1 exe=$2
    shift 2
    say "running $package $(basename "$exe")"
    "$exe" --test-threads=2 --color never --exact "$@" < /dev/null
    code=$?
    if [ $code = 0 ]; then
        say "ok: $package $(basename "$exe")"
    else
        say "FAILED: $package $(basename "$exe") exited $code"
        failed="$failed $package/$(basename "$exe")"
    fi
}
started=$(cut -d' ' -f1 /proc/uptime)
@RUNS@
say "tests took $(awk -v s="$started" '{ printf "%.1f", $1 - s }' /proc/uptime) s; up $(cut -d' ' -f1 /proc/uptime) s"
if [ -z "$failed" ]; then
    say "all test executables passed: @COUNT@"
else
    say "some test executables failed:$failed"
fi
poweroff -f
"#;

/// A driver the stock kernel builds as a module (`=m` in its config) and a
/// chapter needs: the initramfs carries it and the modules it depends on,
/// and /init loads them with busybox's insmod, each after the ones it
/// needs. The VM has no modprobe to find them, and Debian's package has no
/// `modules.dep` (depmod makes it at install): each module's own `depends=`
/// (its `.modinfo` section, as `modinfo -F depends` shows it) says.
struct Module {
    /// As `lsmod` names it: `veth` is `kernel/drivers/net/veth.ko`.
    name: &'static str,
    /// Who needs it, for the warning when it does not load.
    needed_by: &'static str,
}

const MODULES: &[Module] = &[
    Module {
        name: "veth",
        needed_by: "chapters 6 and 7 lay a veth pair",
    },
    Module {
        name: "overlay",
        needed_by: "chapter 8 mounts the container's root as an overlay",
    },
    Module {
        name: "tun",
        needed_by: "chapter 11's pasta and slirp4netns open /dev/net/tun",
    },
    Module {
        name: "bridge",
        needed_by: "chapter 10 makes the bridge wsbr0",
    },
    // Chapter 10's `nft -f -`: a table of family ip (nf_tables), a chain of
    // type nat (nft_chain_nat, with nf_nat and nf_conntrack beneath it) and
    // a masquerade statement (nft_masq). nf_tables and nf_conntrack need
    // libcrc32c, which asks the crypto API for "crc32c" (a soft dependency,
    // not in `depends=`): the generic one, as TCG's CPU may lack SSE 4.2.
    Module {
        name: "crc32c_generic",
        needed_by: "libcrc32c (for nf_tables and nf_conntrack) asks for crc32c",
    },
    Module {
        name: "nft_chain_nat",
        needed_by: "chapter 10's masquerade rule is in a chain of type nat",
    },
    Module {
        name: "nft_masq",
        needed_by: "chapter 10's masquerade rule",
    },
];

/// A module to load in the VM, in the order of the list it is in.
#[derive(Debug, PartialEq, Eq)]
struct Load {
    name: String,
    /// Who needs it: a chapter (one of [`MODULES`]), or the module that
    /// depends on it.
    needed_by: String,
}

impl Load {
    /// Where the VM's /init finds it: `/lib/veth.ko`.
    fn in_vm(&self) -> String {
        format!("/lib/{}.ko", self.name)
    }
}

/// What the kernel package says of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Built into the kernel (`modules.builtin`): nothing to load.
    BuiltIn,
    /// A file, and the modules it depends on (`depends=`).
    File(Vec<String>),
}

/// The order to load `wanted` in: each module after what it depends on
/// (depth first), each once, the built-in ones left out. `kind_of` tells
/// what the kernel package says of a module, by its name.
fn load_order(
    wanted: &[Module],
    kind_of: &mut dyn FnMut(&str) -> Result<Kind>,
) -> Result<Vec<Load>> {
    fn visit(
        name: &str,
        needed_by: String,
        kind_of: &mut dyn FnMut(&str) -> Result<Kind>,
        order: &mut Vec<Load>,
        seen: &mut BTreeSet<String>,
    ) -> Result<()> {
        if !seen.insert(name.to_string()) {
            return Ok(());
        }
        let Kind::File(depends) = kind_of(name)? else {
            return Ok(());
        };
        for dep in &depends {
            visit(dep, format!("{name} needs it"), kind_of, order, seen)?;
        }
        order.push(Load {
            name: name.to_string(),
            needed_by,
        });
        Ok(())
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for m in wanted {
        visit(m.name, m.needed_by.into(), kind_of, &mut order, &mut seen)
            .with_context(|| format!("{} in the VM", m.needed_by))?;
    }
    Ok(order)
}

/// A module's name from its file: `nf_conntrack` for
/// `kernel/net/netfilter/nf_conntrack.ko`. The kernel spells `-` as `_`.
fn module_name(file: &str) -> Option<String> {
    let base = file.rsplit('/').next()?;
    Some(base.strip_suffix(".ko")?.replace('-', "_"))
}

/// The `key=value` strings of a module's `.modinfo` section (a 64-bit
/// little-endian ELF relocatable file, as x86_64's modules are).
fn modinfo(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let at = |offset: usize, len: usize| bytes.get(offset..offset.checked_add(len)?);
    let u16_at = |o| at(o, 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |o| at(o, 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
    let u64_at = |o| at(o, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    if at(0, 6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    // (name's offset in the section names, offset, size) of section i.
    let section = |i: usize| {
        let h = shoff.checked_add(i.checked_mul(shentsize)?)?;
        Some((u32_at(h)?, u64_at(h + 24)?, u64_at(h + 32)?))
    };
    let (_, names, names_len) = section(shstrndx)?;
    let names = at(names, names_len)?;
    for i in 0..shnum {
        let (name, offset, size) = section(i)?;
        let name = names.get(name..)?.split(|b| *b == 0).next()?;
        if name == b".modinfo" {
            return Some(
                at(offset, size)?
                    .split(|b| *b == 0)
                    .filter_map(|s| std::str::from_utf8(s).ok()?.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
    }
    None
}

/// The modules a module depends on, from its `depends=` (comma-separated,
/// empty for none).
fn depends_of(file: &Path) -> Result<Vec<String>> {
    let bytes = fs::read(file).with_context(|| format!("failed to read {}", file.display()))?;
    let info =
        modinfo(&bytes).with_context(|| format!("{} has no .modinfo section", file.display()))?;
    Ok(info
        .iter()
        .filter(|(k, _)| k == "depends")
        .flat_map(|(_, v)| v.split(','))
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect())
}

/// The [`MODULES`] of the unpacked kernel package and what they depend on,
/// in the order to load them, each with its file on the host. Debian ships
/// them uncompressed (busybox's insmod reads them as they are).
fn modules(kernel: &Kernel) -> Result<Vec<(Load, PathBuf)>> {
    let dir = kernel.dir.join("lib/modules").join(&kernel.release);
    let builtin_list = dir.join("modules.builtin");
    let builtin: BTreeSet<String> = fs::read_to_string(&builtin_list)
        .with_context(|| format!("failed to read {}", builtin_list.display()))?
        .lines()
        .filter_map(module_name)
        .collect();
    // Every module file of the package, by name.
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut dirs = vec![dir.join("kernel")];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("failed to read {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(name) = path.to_str().and_then(module_name) {
                files.insert(name, path);
            }
        }
    }
    let mut kind_of = |name: &str| -> Result<Kind> {
        if builtin.contains(name) {
            return Ok(Kind::BuiltIn);
        }
        match files.get(name) {
            Some(file) => Ok(Kind::File(depends_of(file)?)),
            None => bail!(
                "the kernel package {} has no module {name} under {}",
                kernel.package,
                shown(&dir).display()
            ),
        }
    };
    let order = load_order(MODULES, &mut kind_of)?;
    Ok(order
        .into_iter()
        .map(|load| {
            let file = files[&load.name].clone();
            (load, file)
        })
        .collect())
}

/// A host program that a chapter's tests run in the VM and busybox has not:
/// the initramfs carries it at `/bin/NAME`, with the dynamic loader and
/// every shared library it loads, where the host has them (found as the
/// rootfs builder finds them, [`elf::Search::libraries_of`]).
struct Program {
    name: &'static str,
    /// The Debian package that has it.
    debian: &'static str,
    /// The packages whose tests need it: it goes in when one of them is tested.
    packages: &'static [&'static str],
    needed_by: &'static str,
}

const PROGRAMS: &[Program] = &[
    Program {
        name: "nft",
        debian: "nftables",
        packages: &["ch10-bridge"],
        needed_by: "chapter 10 adds its masquerade rule with `nft -f -`",
    },
    Program {
        name: "strace",
        debian: "strace",
        packages: &["ch10-bridge"],
        needed_by: "chapter 10's test kills a run at each of its netlink requests and writes with `strace --inject`",
    },
    // Chapter 11 runs as a test user. newuidmap and newgidmap are setuid
    // root (the initramfs keeps the mode bits: without them --map subids
    // fails); pasta execs pasta.avx2 where the CPU has AVX2 (it falls back
    // to itself, with a warning, where that is missing).
    Program {
        name: "newuidmap",
        debian: "uidmap",
        packages: &["ch11-rootless"],
        needed_by: "chapter 11's --map subids writes the user's /etc/subuid range with newuidmap",
    },
    Program {
        name: "newgidmap",
        debian: "uidmap",
        packages: &["ch11-rootless"],
        needed_by: "chapter 11's --map subids writes the user's /etc/subgid range with newgidmap",
    },
    Program {
        name: "pasta",
        debian: "passt",
        packages: &["ch11-rootless"],
        needed_by: "chapter 11's --network pasta",
    },
    Program {
        name: "pasta.avx2",
        debian: "passt",
        packages: &["ch11-rootless"],
        needed_by: "chapter 11's --network pasta (pasta execs it on a CPU with AVX2)",
    },
    Program {
        name: "slirp4netns",
        debian: "slirp4netns",
        packages: &["ch11-rootless"],
        needed_by: "chapter 11's --network slirp4netns",
    },
    Program {
        name: "setpriv",
        debian: "util-linux",
        packages: &["ch11-rootless"],
        needed_by: "chapter 11's tests drop from root to the test user after setting up as root",
    },
];

impl Program {
    /// Where it is in the VM: on /init's PATH, which is /bin.
    fn in_vm(&self) -> PathBuf {
        Path::new("/bin").join(self.name)
    }
}

/// The [`PROGRAMS`] the `packages` under test need, each with what goes
/// into the initramfs for it: the program itself first, then its loader
/// and libraries.
fn programs(packages: &[String]) -> Result<Vec<(&'static Program, Vec<elf::Placement>)>> {
    let search = elf::Search::host();
    PROGRAMS
        .iter()
        .filter(|p| packages.iter().any(|t| p.packages.contains(&t.as_str())))
        .map(|p| {
            let Some(host) = workshop_rootfs::find_host_program(p.name) else {
                return Err(hinted(
                    format!("`{}` is not installed: {} in the VM", p.name, p.needed_by),
                    format!(
                        "apt-get install {} (vm-test copies it into the VM with its libraries)",
                        p.debian
                    ),
                ));
            };
            let mut placements = vec![elf::Placement::Copy {
                from: host.clone(),
                to: p.in_vm(),
            }];
            placements.extend(
                search
                    .libraries_of(&host, &p.in_vm())
                    .with_context(|| format!("failed to find what {} loads", host.display()))?,
            );
            Ok((p, placements))
        })
        .collect()
}

/// Write the initramfs to `path` (through a temporary file beside it):
/// busybox and its applet links, /dev/console, the test executables and
/// chapter binaries at their absolute paths, cargo's CACHEDIR.TAG, /init.
/// Returns the number of entries and the size in bytes.
fn write_initramfs(
    path: &Path,
    busybox: &Path,
    modules: &[(Load, PathBuf)],
    programs: &[(&Program, Vec<elf::Placement>)],
    built: &Built,
    init: &str,
) -> Result<(usize, u64)> {
    let tmp = path.with_extension(format!("partial.{}", std::process::id()));
    let mtime = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let file =
        fs::File::create(&tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
    let mut w = cpio::Writer::new(BufWriter::with_capacity(1 << 20, file), mtime);
    let mut entries = 0usize;
    let mut count = |r: Result<()>| r.map(|()| entries += 1);

    for dir in ["/dev", "/proc", "/sys", "/root", "/etc", "/newroot"] {
        count(w.dir(dir, 0o755))?;
    }
    count(w.dir("/tmp", 0o1777))?;
    count(w.char_device("/dev/console", 0o600, 5, 1))?;
    count(w.file_bytes(
        "/etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    ))?;
    count(w.file_bytes("/etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n"))?;
    count(w.file_bytes("/init", 0o755, init.as_bytes()))?;

    // busybox, an applet link for each applet, and the usual dirs pointing at /bin.
    count(copy_file(&mut w, busybox, "/bin/busybox"))?;
    for applet in applets(busybox)? {
        // A program of the host's, if it has the applet's name, is the one.
        if !programs.iter().any(|(p, _)| p.name == applet) {
            count(w.symlink(&format!("/bin/{applet}"), "busybox"))?;
        }
    }
    count(w.symlink("/sbin", "bin"))?;
    count(w.symlink("/usr/bin", "../bin"))?;
    count(w.symlink("/usr/sbin", "../bin"))?;
    // The kernel modules the chapters need, which /init loads.
    count(w.dir("/lib", 0o755))?;
    for (load, from) in modules {
        count(copy_file(&mut w, from, &load.in_vm()))?;
    }
    // The host programs, their loader and libraries (two programs may
    // share some: each goes in once).
    let mut placed = BTreeSet::new();
    let utf8 = |p: &Path| {
        p.to_str()
            .map(str::to_string)
            .with_context(|| format!("{} is not UTF-8", p.display()))
    };
    for placement in programs.iter().flat_map(|(_, placements)| placements) {
        match placement {
            elf::Placement::Copy { from, to } => {
                let to = utf8(to)?;
                if placed.insert(to.clone()) {
                    count(copy_file(&mut w, from, &to))?;
                }
            }
            elf::Placement::Link { at, target } => {
                let at = utf8(at)?;
                if placed.insert(at.clone()) {
                    count(w.symlink(&at, &utf8(target)?))?;
                }
            }
        }
    }

    let ours = built
        .tests
        .iter()
        .map(|t| &t.path)
        .chain(&built.bins)
        .chain([&built.cachedir_tag]);
    for file in ours {
        let inside = file
            .to_str()
            .with_context(|| format!("{} is not UTF-8", file.display()))?;
        count(copy_file(&mut w, file, inside))?;
    }
    let out = w.finish()?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    let bytes = file.metadata()?.len();
    drop(file);
    fs::rename(&tmp, path)
        .with_context(|| format!("failed to rename {} to {}", tmp.display(), path.display()))?;
    Ok((entries, bytes))
}

fn copy_file<W: std::io::Write>(w: &mut cpio::Writer<W>, from: &Path, to: &str) -> Result<()> {
    let mut file =
        fs::File::open(from).with_context(|| format!("failed to open {}", from.display()))?;
    let meta = file.metadata()?;
    w.file(to, meta.mode() & 0o7777, meta.len(), &mut file)
        .with_context(|| format!("failed to add {} to the initramfs", from.display()))
}

/// The applets this busybox has (`busybox --list`).
fn applets(busybox: &Path) -> Result<Vec<String>> {
    let list = checked_output(Command::new(busybox).arg("--list"))?;
    Ok(list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_string)
        .collect())
}

// ------------------------------------------------------------------ qemu

struct Outcome {
    /// The serial console, line by line.
    lines: Vec<String>,
    /// From qemu's start to its exit.
    elapsed: Duration,
    /// From qemu's start to the first line of /init.
    init_at: Option<Duration>,
    /// None: killed at the time limit.
    exited: Option<std::process::ExitStatus>,
}

/// Boot the VM and stream its console until it powers off, or kill it (by
/// its PID) at `limit`.
fn boot(qemu: &Path, vmlinuz: &Path, initramfs: &Path, limit: Duration) -> Result<Outcome> {
    let mut child = Command::new(qemu)
        .args([
            "-accel",
            "tcg",
            "-m",
            &MEMORY_MIB.to_string(),
            "-smp",
            &CPUS.to_string(),
        ])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", KERNEL_ARGS])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("failed to start {}", qemu.display()))?;
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
            let text = printable(&String::from_utf8_lossy(&buf));
            if text
                .split('\n')
                .any(|line| tx.send(line.to_string()).is_err())
            {
                break;
            }
            buf.clear();
        }
    });
    let mut outcome = Outcome {
        lines: Vec::new(),
        elapsed: Duration::ZERO,
        init_at: None,
        exited: None,
    };
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if outcome.init_at.is_none() && line.starts_with(SAY) {
                    outcome.init_at = Some(started.elapsed());
                }
                println!("{line}");
                outcome.lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                outcome.exited = Some(child.wait()?);
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                eprintln!(
                    "{SAY} the VM is still running after {} s: killing qemu (pid {})",
                    limit.as_secs(),
                    child.id()
                );
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    outcome.elapsed = started.elapsed();
    let _ = reader.join();
    Ok(outcome)
}

/// A console line without its terminal controls: the firmware clears the
/// screen with escape sequences (`ESC [ 2 J`) and resets the terminal
/// (`ESC c`, which becomes a line break, as it starts a fresh screen), and
/// a line ends in CR LF.
fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters, then one final byte in @..~; else ESC + one char.
                if chars.next_if_eq(&'[').is_some() {
                    while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {}
                } else if chars.next() == Some('c') && !out.is_empty() {
                    out.push('\n');
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// What libtest said across all the test executables ("test result: ..." lines).
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
    filtered: u64,
    results: usize,
}

impl Totals {
    fn of(lines: &[String]) -> Totals {
        let mut t = Totals::default();
        for line in lines {
            let Some(rest) = line.find("test result: ").map(|at| &line[at..]) else {
                continue;
            };
            t.results += 1;
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(what), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let n = n.parse::<u64>().unwrap_or(0);
                match (what, part.trim_end().ends_with("filtered out")) {
                    ("passed", _) => t.passed += n,
                    ("failed", _) => t.failed += n,
                    ("ignored", _) => t.ignored += n,
                    (_, true) => {
                        let n = part.split_whitespace().next().and_then(|n| n.parse().ok());
                        t.filtered += n.unwrap_or(0);
                    }
                    _ => {}
                }
            }
        }
        t
    }
}

/// Ok only when /init said every test executable passed, libtest reported
/// for each of them with no failure, and qemu powered off by itself.
fn verdict(outcome: &Outcome, totals: &Totals, executables: usize) -> Result<()> {
    let all_passed = format!("{ALL_PASSED} {executables}");
    let said_pass = outcome.lines.iter().any(|l| l.trim_end() == all_passed);
    let Some(status) = outcome.exited else {
        return Err(hinted(
            "the VM did not power off in time (qemu was killed)",
            "the console above shows where it stopped; under software emulation the tests are slow: raise --timeout if they were still running",
        ));
    };
    if outcome.init_at.is_none() {
        return Err(hinted(
            format!("the VM never reached /init (qemu {status})"),
            "the kernel's messages above say why: a kernel that cannot unpack the initramfs, or too little memory",
        ));
    }
    if !outcome.lines.iter().any(|l| l.contains(CGROUP2_SAID)) {
        bail!(
            "the VM did not report /sys/fs/cgroup as cgroup2fs: the tests did not run on cgroup v2"
        );
    }
    if !said_pass || totals.failed > 0 {
        bail!(
            "tests failed in the VM: {} passed, {} failed (see the console above)",
            totals.passed,
            totals.failed
        );
    }
    if totals.results != executables {
        bail!(
            "{executables} test executables ran, but {} reported a result",
            totals.results
        );
    }
    if !status.success() {
        bail!("qemu exited with {status} after the tests passed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_is_the_dependency_of_the_meta_package() {
        let out = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            kernel_dependency(out).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(kernel_dependency("linux-image-amd64\n"), None);
    }

    #[test]
    fn the_newest_stock_kernel_is_chosen_by_number_not_by_text() {
        let names = [
            "linux-image-6.1.0-9-amd64",
            "linux-image-6.1.0-56-amd64",
            "linux-image-6.1.0-56-cloud-amd64",
            "linux-image-6.1.0-57-rt-amd64",
            "linux-image-6.1.0-60-amd64-unsigned",
            "linux-image-6.1.0-10-amd64",
            "linux-image-amd64",
        ];
        assert_eq!(
            newest_kernel_package(names.into_iter()).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(
            newest_kernel_package(["linux-image-amd64"].into_iter()),
            None
        );
    }

    #[test]
    fn artifacts_are_told_apart_by_cargos_messages() {
        let manifest = "/w/chapters/ch03-mount/Cargo.toml";
        let messages = [
            format!(r#"{{"reason":"compiler-artifact","manifest_path":"{manifest}","target":{{"kind":["bin"],"name":"ch03-mount"}},"profile":{{"test":false}},"executable":"/w/t/debug/ch03-mount"}}"#),
            format!(r#"{{"reason":"compiler-artifact","manifest_path":"{manifest}","target":{{"kind":["test"],"name":"ch03"}},"profile":{{"test":true}},"executable":"/w/t/debug/deps/ch03-1"}}"#),
            format!(r#"{{"reason":"compiler-artifact","manifest_path":"{manifest}","target":{{"kind":["lib"],"name":"ch03_mount"}},"profile":{{"test":false}},"executable":null}}"#),
            r#"{"reason":"compiler-artifact","manifest_path":"/w/shared/workshop/Cargo.toml","target":{"kind":["lib"],"name":"workshop"},"profile":{"test":true},"executable":"/w/t/debug/deps/workshop-1"}"#.to_string(),
            r#"{"reason":"build-finished","success":true}"#.to_string(),
        ]
        .join("\n");
        let manifests = BTreeMap::from([(PathBuf::from(manifest), "ch03-mount".to_string())]);
        let built = artifacts(&messages, &manifests).unwrap();
        assert_eq!(
            built.tests,
            [TestExe {
                package: "ch03-mount".into(),
                path: "/w/t/debug/deps/ch03-1".into()
            }]
        );
        assert_eq!(built.bins, [PathBuf::from("/w/t/debug/ch03-mount")]);
    }

    #[test]
    fn console_lines_lose_their_terminal_controls() {
        assert_eq!(
            printable("\u{1b}c\u{1b}[?7l\u{1b}[2J\u{1b}[0mSeaBIOS (version 1.16)\r\n"),
            "SeaBIOS (version 1.16)"
        );
        assert_eq!(
            printable("Booting from ROM...\u{1b}c\u{1b}[?7l\u{1b}[2Jvm-test: stage 1\n"),
            "Booting from ROM...\nvm-test: stage 1"
        );
        assert_eq!(printable("test x ... ok\r\n"), "test x ... ok");
        assert_eq!(printable("a\tb ünïcode\n"), "a\tb ünïcode");
    }

    #[test]
    fn libtest_results_are_added_up() {
        let lines: Vec<String> = [
            "test result: ok. 11 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 3.20s",
            "noise [   12.3] test result: FAILED. 7 passed; 2 failed; 1 ignored; 0 measured; 1 filtered out; finished in 9.01s",
            "vm-test: ok",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            Totals::of(&lines),
            Totals {
                passed: 18,
                failed: 2,
                ignored: 1,
                filtered: 1,
                results: 2
            }
        );
    }

    #[test]
    fn init_runs_every_executable_with_its_skips_and_says_why() {
        let built = Built {
            tests: vec![
                TestExe {
                    package: "ch01-clone".into(),
                    path: "/w/t/deps/ch01-1".into(),
                },
                TestExe {
                    package: "ch03-mount".into(),
                    path: "/w/t/deps/ch03-1".into(),
                },
            ],
            ..Built::default()
        };
        let skips: Vec<&Skip> = SKIPS.iter().collect();
        let init = init_script(&built, &skips, &[], &[]);
        assert!(init.starts_with("#!/bin/sh\n"));
        assert!(init.contains("\nrun_tests ch01-clone '/w/t/deps/ch01-1'\n"));
        assert!(init.contains(
            "\nrun_tests ch03-mount '/w/t/deps/ch03-1' --skip shell_on_a_terminal_is_pid_1_and_returns_its_exit_code\n"
        ));
        assert!(init.contains("say \"skip ch03-mount shell_on_a_terminal_is_pid_1_and_returns_its_exit_code: it needs util-linux 'script'"));
        assert!(init.contains("say \"all test executables passed: 2\""));
        assert!(!init.contains("@RUNS@") && !init.contains("@COUNT@"));
        assert!(!init.contains("@MODULES@"));
    }

    /// What Debian's 6.1.0-57-amd64 says of the modules vm-test loads and
    /// of what they depend on (`depends=` of each, and modules.builtin).
    fn debian_6_1(name: &str) -> Result<Kind> {
        let depends: &[&str] = match name {
            "veth" | "overlay" | "tun" | "llc" | "nfnetlink" | "libcrc32c" | "crc32c_generic"
            | "nf_defrag_ipv4" | "nf_defrag_ipv6" => &[],
            "ipv6" => return Ok(Kind::BuiltIn),
            "stp" => &["llc"],
            "bridge" => &["llc", "stp"],
            "nf_tables" => &["nfnetlink", "libcrc32c"],
            "nf_conntrack" => &["nf_defrag_ipv4", "nf_defrag_ipv6", "libcrc32c"],
            "nf_nat" => &["nf_conntrack", "libcrc32c"],
            "nft_chain_nat" => &["nf_tables", "nf_nat"],
            "nft_masq" => &["nf_tables", "nf_nat", "nf_conntrack"],
            _ => bail!("no module {name}"),
        };
        Ok(Kind::File(depends.iter().map(|d| d.to_string()).collect()))
    }

    #[test]
    fn modules_load_after_what_they_depend_on_each_once() {
        let order = load_order(MODULES, &mut debian_6_1).unwrap();
        let names: Vec<&str> = order.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "veth",
                "overlay",
                "tun",
                "llc",
                "stp",
                "bridge",
                "crc32c_generic",
                "nfnetlink",
                "libcrc32c",
                "nf_tables",
                "nf_defrag_ipv4",
                "nf_defrag_ipv6",
                "nf_conntrack",
                "nf_nat",
                "nft_chain_nat",
                "nft_masq",
            ]
        );
        for (i, load) in order.iter().enumerate() {
            let Kind::File(depends) = debian_6_1(&load.name).unwrap() else {
                panic!("{} is built in", load.name)
            };
            for dep in depends {
                let at = order.iter().position(|o| o.name == dep).unwrap();
                assert!(at < i, "{} is loaded before {dep}", load.name);
            }
        }
        assert_eq!(order[3].needed_by, "bridge needs it");
        assert_eq!(order[5].in_vm(), "/lib/bridge.ko");
        // A built-in module is not loaded, nor are its dependencies looked at.
        let wanted = [Module {
            name: "ipv6",
            needed_by: "test",
        }];
        assert_eq!(load_order(&wanted, &mut debian_6_1).unwrap(), []);
        let wanted = [Module {
            name: "nope",
            needed_by: "a test wants nope",
        }];
        let missing = load_order(&wanted, &mut debian_6_1).unwrap_err();
        assert_eq!(
            format!("{missing:#}"),
            "a test wants nope in the VM: no module nope"
        );
    }

    #[test]
    fn module_names_spell_dashes_as_underscores() {
        assert_eq!(
            module_name("kernel/arch/x86/crypto/crc32c-intel.ko").as_deref(),
            Some("crc32c_intel")
        );
        assert_eq!(
            module_name("kernel/net/bridge/bridge.ko").as_deref(),
            Some("bridge")
        );
        assert_eq!(module_name("modules.builtin"), None);
    }

    /// A 64-bit little-endian ELF file with no content but its section
    /// headers: the null section, the section names, and a `.modinfo`.
    fn module_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        let names = b"\0.shstrtab\0.modinfo\0";
        let mut file = vec![0u8; 64];
        file[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let names_at = file.len();
        file.extend_from_slice(names);
        let modinfo_at = file.len();
        file.extend_from_slice(modinfo);
        let shoff = file.len();
        file[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        file[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        file[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        file[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        for (name, offset, size) in [
            (0u32, 0usize, 0usize),
            (1, names_at, names.len()),
            (11, modinfo_at, modinfo.len()),
        ] {
            let mut header = [0u8; 64];
            header[..4].copy_from_slice(&name.to_le_bytes());
            header[24..32].copy_from_slice(&(offset as u64).to_le_bytes());
            header[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            file.extend_from_slice(&header);
        }
        file
    }

    #[test]
    fn a_modules_dependencies_are_read_from_its_modinfo_section() {
        let bytes = module_with_modinfo(
            b"alias=rtnl-link-bridge\0license=GPL\0depends=llc,stp\0intree=Y\0name=bridge\0",
        );
        let info = modinfo(&bytes).unwrap();
        assert!(
            info.contains(&("depends".into(), "llc,stp".into())),
            "{info:?}"
        );
        assert!(info.contains(&("name".into(), "bridge".into())), "{info:?}");
        let dir = std::env::temp_dir().join(format!("vm-modinfo-test.{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (bridge, veth) = (dir.join("bridge.ko"), dir.join("veth.ko"));
        fs::write(&bridge, &bytes).unwrap();
        fs::write(&veth, module_with_modinfo(b"depends=\0name=veth\0")).unwrap();
        let (of_bridge, of_veth) = (depends_of(&bridge), depends_of(&veth));
        fs::write(&veth, b"not an ELF file").unwrap();
        let of_junk = depends_of(&veth);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(of_bridge.unwrap(), ["llc", "stp"]);
        assert_eq!(of_veth.unwrap(), Vec::<String>::new());
        assert!(of_junk.is_err());
    }

    #[test]
    fn init_loads_the_modules_in_order_before_the_tests() {
        let order = load_order(MODULES, &mut debian_6_1).unwrap();
        let loads: Vec<&Load> = order.iter().collect();
        let init = init_script(&Built::default(), &[], &loads, &[]);
        let tests_start = init.find("run_tests() {").expect("the run_tests function");
        let mut last = 0;
        for name in [
            "veth",
            "overlay",
            "tun",
            "llc",
            "stp",
            "bridge",
            "nf_tables",
            "nft_masq",
        ] {
            let line = format!("\ninsmod /lib/{name}.ko || say ");
            let at = init
                .find(&line)
                .unwrap_or_else(|| panic!("/init does not load {name}.ko:\n{init}"));
            assert!(
                at < tests_start,
                "{name}.ko is loaded after the tests start"
            );
            assert!(at > last, "{name}.ko is loaded out of order");
            last = at;
        }
    }

    #[test]
    fn init_shows_the_host_programs_it_carries() {
        let nft: Vec<&Program> = PROGRAMS.iter().filter(|p| p.name == "nft").collect();
        let init = init_script(&Built::default(), &[], &[], &nft);
        assert!(init.contains("\nsay \"nft --version: $(nft --version 2>&1)\"\n"));
        assert!(!init.contains("@PROGRAMS@"));
        assert_eq!(nft[0].in_vm(), Path::new("/bin/nft"));
    }

    #[test]
    fn init_runs_the_doctor_before_the_tests_when_it_is_built() {
        let without = init_script(&Built::default(), &[], &[], &[]);
        assert!(!without.contains("doctor") && !without.contains("@DOCTOR@"));
        let built = Built {
            bins: vec![PathBuf::from("/w/target/vm-build/x/debug/xtask-front")],
            ..Built::default()
        };
        let init = init_script(&built, &[], &[], &[]);
        let doctor = init
            .find("\n'/w/target/vm-build/x/debug/xtask-front' doctor; say \"doctor exited $?\"\n")
            .expect(&init);
        assert!(
            doctor
                < init
                    .find("@RUNS@")
                    .unwrap_or(init.find("started=").unwrap())
        );
    }

    #[test]
    fn nft_goes_in_only_with_chapter_10() {
        assert!(programs(&["ch06-net".to_string()]).unwrap().is_empty());
    }

    #[test]
    fn paths_are_quoted_for_sh() {
        assert_eq!(sh_quote("/work/my repo/t"), "'/work/my repo/t'");
        assert_eq!(sh_quote("/it's"), r"'/it'\''s'");
    }

    #[test]
    fn every_skip_is_for_a_package_the_vm_may_test() {
        for s in SKIPS {
            assert!(PACKAGES.contains(&s.package), "{}", s.package);
            assert!(!s.reason.is_empty());
        }
    }
}
