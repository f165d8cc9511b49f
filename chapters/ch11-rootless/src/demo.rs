//! The guided demo of chapter 11, run as the student, with no sudo: who
//! you are on the host; a user namespace before its map (nobody, with every
//! capability over nothing); the map; a container that is root inside and
//! you outside, seen from both sides; the attacks, refused; limits and
//! network without root; nothing left.

use anyhow::{Context, Result};
use ch01_clone::Capture;
use ch08_overlay::Layers;
use ch11_rootless::attack::{self, Outcome, Report};
use ch11_rootless::cgroup::{self, Delegation};
use ch11_rootless::idmap::{self, Mapping};
use ch11_rootless::net::{self, Kind};
use ch11_rootless::shm::HostSegment;
use ch11_rootless::{
    forbidding_settings, runs_dir, start_in_user_namespace, RootlessOptions, FLAGS,
};
use nix::unistd::{Pid, Uid};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use workshop::process::{argv, exec};
use workshop::Narrator;

pub fn demo(options: &RootlessOptions, lowers: Vec<PathBuf>, say: &Narrator) -> Result<()> {
    say.title("Chapter 11 · a rootless container: root inside, yourself outside");
    let me = idmap::Me::now();
    let who = me.name.clone().unwrap_or_else(|| me.uid.to_string());

    say.step("who you are on the host")?;
    say.shell("id -u; grep CapEff /proc/self/status");
    let status = std::fs::read_to_string("/proc/self/status")?;
    let cap_eff = workshop::privileges::effective_capabilities(&status).unwrap_or(0);
    say.host(&format!("uid {} ({who}), CapEff {cap_eff:016x}", me.uid));
    if me.uid == 0 {
        say.warn("you are root: root inside will be root outside, which is no rootless container;");
        say.note("run this chapter as yourself, without sudo: `target/debug/ch11-rootless`");
    } else {
        say.note("no capability at all: no mount, no namespace but one, no cgroup of your own");
    }
    let forbidding = forbidding_settings(Path::new("/"));
    if forbidding.is_empty() {
        say.ok("this kernel lets a normal user create user namespaces (nothing in /proc/sys forbids it)");
    } else {
        for (setting, what) in &forbidding {
            say.warn(&format!("{setting}: {what}"));
        }
    }

    say.step("a new user namespace, before its map: nobody, with every capability over nothing")?;
    say.syscall("unshare(CLONE_NEWUSER), in a child");
    say.shell("unshare --user sh -c 'id -u; grep CapEff /proc/self/status'");
    let (uid, caps) = unmapped_probe()?;
    say.container(&format!("uid {uid}, CapEff {caps}"));
    say.note("65534 is the kernel's overflow id: any id the namespace has no map for.");
    say.note("The capabilities are real, but only over what this user namespace owns.");

    say.step("the map: who each id inside is on the host")?;
    let mapping = idmap::plan_for_me(options.map)?;
    describe_mapping(&mapping, me.uid, me.gid, say);

    say.step("a container in it: root inside, you outside")?;
    let mut network = net::Network::choose(options.network.network)?;
    say.syscall(&format!(
        "clone(child, stack, {})",
        ch01_clone::describe(FLAGS)
    ));
    let marker = "made-inside";
    let script = format!(
        "id; cat /proc/self/uid_map; grep CapEff /proc/self/status; hostname; ps -o pid,user,comm; \
         touch /{marker}; ls -ln /{marker} /etc/passwd; read go"
    );
    let mut seen_from_host = Vec::new();
    let inside = contained(
        &lowers,
        &mapping,
        &mut network,
        &argv(&["sh", "-c", &script]),
        |pid, layers| {
            let made = layers.upper.join(marker);
            wait_for_path(&made, Duration::from_secs(10))?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
            let uid_line = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .unwrap_or("Uid: ?");
            seen_from_host.push(format!(
                "/proc/{pid}/status  {}",
                uid_line.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
            let meta = std::fs::metadata(&made)?;
            use std::os::unix::fs::MetadataExt;
            seen_from_host.push(format!(
                "{} is owned by {}:{} (the container's upper, on the host)",
                made.display(),
                meta.uid(),
                meta.gid()
            ));
            Ok(())
        },
    )?;
    for line in inside.lines().filter(|l| !l.trim().is_empty()) {
        say.container(line);
    }
    for line in &seen_from_host {
        say.host(line);
    }
    say.note("root inside (uid 0, every capability), and you on the host: the same process.");
    say.note(
        "The rootfs's files show the owner the map gives them: yours are root's inside; the host",
    );
    say.note("root's are 65534 (nobody), and root inside may read them but not change them.");

    say.step("what root in here cannot do to the host")?;
    attacks(&lowers, &mapping, &mut network, say)?;

    say.step("limits without root: a cgroup delegated to you, or none")?;
    let found = match (ch07_cgroups::cgroup::detect(), cgroup::our_cgroup()) {
        (Ok(version), Ok(ours)) => cgroup::delegation(version, &ours, Uid::current().as_raw()),
        (Err(e), _) | (_, Err(e)) => Delegation::No(format!("{e:#}")),
    };
    match found {
        Delegation::Ours { dir, offered } => {
            say.ok(&format!(
                "{} is yours: it offers {}",
                dir.display(),
                offered.join(" ")
            ));
            say.note(
                "--cpus, --pids-limit and --memory work: the container's cgroup goes beneath it",
            );
        }
        Delegation::No(why) => {
            say.host(&why);
            say.note("so --cpus, --pids-limit and --memory are not applied (a warning says so), as in rootless podman;");
            say.note(&format!(
                "with systemd and cgroup v2: `{}`",
                cgroup::HOW_TO_DELEGATE
            ));
        }
    }

    say.step("a network without root")?;
    match network.kind() {
        Kind::LoopbackOnly => {
            say.note("lo only: a veth needs CAP_NET_ADMIN in the host's network namespace, which you do not have;");
            say.note(network.fallback.as_deref().unwrap_or("asked for with --network none"));
        }
        kind => say.note(&format!(
            "{}: a user-space network stack of yours carries the container's packets through ordinary sockets",
            if kind == Kind::Pasta { "pasta" } else { "slirp4netns" }
        )),
    }
    let addresses = contained(
        &lowers,
        &mapping,
        &mut network,
        &argv(&["ip", "-o", "-4", "addr"]),
        |_, _| Ok(()),
    )?;
    for line in addresses.lines().filter(|l| !l.trim().is_empty()) {
        say.container(&squeeze(line.split('\\').next().unwrap_or(line)));
    }

    say.step("nothing left")?;
    let dir = runs_dir()?;
    let left = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    if left == 0 {
        let _ = std::fs::remove_dir(&dir);
    }
    say.host(&format!("{}: {left} run directories left", dir.display()));
    say.finish("A normal user made every namespace, an overlay, a /proc and a pivot_root; the host saw only its own uid. Chapter 12 hardens a container whose root is the host's root.")
}

/// A child that enters a new user namespace and reports what it is there
/// before any map: its uid and its effective capabilities.
fn unmapped_probe() -> Result<(String, String)> {
    let capture = Capture::new()?;
    let pid = ch01_clone::clone_child(nix::sched::CloneFlags::CLONE_NEWUSER, || {
        capture.redirect()?;
        let status = std::fs::read_to_string("/proc/self/status")?;
        let caps = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap_or("?")
            .trim()
            .to_string();
        println!("{} {caps}", nix::unistd::getuid());
        std::process::exit(0)
    })
    .map_err(|e| e.context("a user namespace of your own"))?;
    let (output, _) = capture.collect(pid)?;
    let mut words = output.split_whitespace();
    Ok((
        words.next().unwrap_or("?").to_string(),
        words.next().unwrap_or("?").to_string(),
    ))
}

fn describe_mapping(mapping: &Mapping, uid: u32, gid: u32, say: &Narrator) {
    // The notes first: beneath a shell line they would read as more of it.
    match &mapping.helpers {
        None => {
            say.note(
                "one id each: your own, as root. A user may map only itself, and must give up",
            );
            say.note(
                "setgroups() first, or dropping a group inside could get past a \"not this group\"",
            );
            say.note("permission on the host.");
            say.syscall("write /proc/PID/setgroups, uid_map, gid_map (from the host)");
            say.shell(&format!(
                "echo deny > /proc/PID/setgroups; echo '0 {uid} 1' > /proc/PID/uid_map; echo '0 {gid} 1' > /proc/PID/gid_map"
            ));
        }
        Some((newuidmap, newgidmap)) => {
            say.note(
                "your own id as root, and a range root granted you in /etc/subuid as ids 1 and up:",
            );
            say.note("an image's other users (chapter 9's User) exist too, each a real, unused id on the host.");
            say.syscall(
                "newuidmap and newgidmap (setuid root), which check /etc/subuid and /etc/subgid",
            );
            say.shell(&format!(
                "{} PID {}; {} PID {}",
                newuidmap.display(),
                numbers(&mapping.uids),
                newgidmap.display(),
                numbers(&mapping.gids)
            ));
        }
    }
    for range in &mapping.uids {
        say.host(&format!(
            "uid_map  {range}   (inside {}..{} = host {}..{})",
            range.inside,
            range.inside + range.count - 1,
            range.outside,
            range.outside + range.count - 1
        ));
    }
}

fn numbers(ranges: &[idmap::IdRange]) -> String {
    ranges
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The attacks of chapter 12's list, run in this chapter's container: a
/// host SysV segment made first (for the IPC one), removed after.
fn attacks(
    lowers: &[PathBuf],
    mapping: &Mapping,
    network: &mut net::Network,
    say: &Narrator,
) -> Result<()> {
    let layer = runs_dir()?.join(format!("attack-{}", std::process::id()));
    std::fs::create_dir_all(&layer)
        .with_context(|| format!("failed to create {}", layer.display()))?;
    let _layer = RemoveOnDrop(layer.clone());
    attack::install_into(&layer)?;
    let segment = HostSegment::create(0x5753_0000)?;
    say.host(&format!(
        "a SysV shared memory segment of yours: key {:#x} (ipcs -m lists it)",
        segment.key
    ));
    let with_layer: Vec<PathBuf> = std::iter::once(layer.clone())
        .chain(lowers.iter().cloned())
        .collect();
    say.shell(&format!("{} --shm-key {:#x}", attack::INSIDE, segment.key));
    let output = contained(
        &with_layer,
        mapping,
        network,
        &argv(&[attack::INSIDE, "--shm-key", &segment.key.to_string()]),
        |_, _| Ok(()),
    )?;
    let reports = attack::parse_reports(&output).map_err(|e| anyhow::anyhow!("{e}: {output}"))?;
    for Report { attack, outcome } in &reports {
        match outcome {
            Outcome::Refused { errno, call } => {
                say.ok(&format!(
                    "{attack}: refused, {} by {call}",
                    attack::errno_name(*errno)
                ));
                if *attack == attack::Attack::Sysrq && *errno == nix::errno::Errno::ENOENT {
                    say.note("(this kernel has no magic SysRq: no /proc/sysrq-trigger to attack)");
                }
            }
            Outcome::Worked(evidence) => say.warn(&format!("{attack}: worked: {evidence}")),
        }
    }
    let worked = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Worked(_)))
        .count();
    if worked > 0 {
        anyhow::bail!("{worked} of the attacks worked against the rootless container (see above)");
    }
    say.note(
        "chapter 12's demo (as root) shows each of them working against chapter 7's container.",
    );
    say.note("Each refused here: the kernel checks capabilities in the user namespace that owns what is touched,");
    say.note("and the host's files, devices, sysctls and cgroups belong to the host's, where you have none.");
    Ok(())
}

/// Run `argv` in this chapter's container over `lowers`, its output
/// captured; `while_running` looks from the host while the container waits
/// on its stdin (closed once it returns). Returns what the container printed.
fn contained(
    lowers: &[PathBuf],
    mapping: &Mapping,
    network: &mut net::Network,
    argv: &[String],
    while_running: impl FnOnce(Pid, &Layers) -> Result<()>,
) -> Result<String> {
    let layers = Layers::in_runs_dir(&runs_dir()?, lowers.to_vec(), false)?;
    let capture = Capture::new()?;
    let (hold_read, hold_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("failed to make a pipe")?;
    let kind = network.kind();
    let pid = start_in_user_namespace(
        FLAGS,
        mapping,
        None,
        |pid| network.connect(pid),
        || {
            capture.redirect()?;
            // Our copy of the write end is close-on-exec: it goes with the exec.
            nix::unistd::dup2_stdin(&hold_read).context("failed to dup2 the pipe onto stdin")?;
            net::inside(kind)?;
            ch05_uts::set_hostname("rootless")?;
            ch11_rootless::enter_layers(&layers)?;
            exec(argv)
        },
    )?;
    drop(hold_read);
    let looked = while_running(pid, &layers);
    drop(hold_write); // the container's `read` returns
    let (output, _exit) = capture.collect(pid)?;
    looked?;
    Ok(output)
}

fn wait_for_path(path: &Path, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > limit {
            anyhow::bail!("{} did not appear within {limit:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn squeeze(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = workshop_rootfs::remove_tree(&self.0);
    }
}
