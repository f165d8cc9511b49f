//! A network without root. Chapter 6's veth needs CAP_NET_ADMIN in the
//! host's network namespace (its host end lives there), which a user
//! namespace of the student's does not give. What is left: `lo` alone, or a
//! program of the student's own that carries the container's packets out
//! through ordinary sockets on the host: pasta (Debian: passt) or
//! slirp4netns, a small TCP/IP stack in user space behind a tap device in
//! the container. Podman uses the same two.

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use workshop::error::hinted;

/// `--network`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// pasta if installed, else slirp4netns if installed, else lo only
    #[default]
    Auto,
    /// pasta (Debian: passt): the host's addresses and routes, copied into the container
    Pasta,
    /// slirp4netns: a tap0 with 10.0.2.100/24 behind a user-space NAT
    Slirp4netns,
    /// Only lo, up: nothing in or out
    None,
}

/// `--network`, as a clap group a later chapter can flatten.
#[derive(clap::Args, Debug, Clone)]
pub struct NetworkOption {
    /// The container's network: pasta or slirp4netns (a user-space network), or none (lo only)
    #[arg(long, value_enum, default_value_t = Choice::Auto)]
    pub network: Choice,
}

/// The network chosen, once `auto` is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pasta,
    Slirp4netns,
    LoopbackOnly,
}

/// The network of one run: what was chosen, and the helper process, which
/// goes when this is dropped (and with the tool, were it killed).
pub struct Network {
    kind: Kind,
    /// Why this one, when `auto` chose lo only.
    pub fallback: Option<String>,
    program: Option<PathBuf>,
    helper: Option<Helper>,
}

/// pasta or slirp4netns, running for one container: killed when dropped.
struct Helper {
    child: Child,
    /// slirp4netns's `--exit-fd`: closing it tells it to exit.
    _exit: Option<OwnedFd>,
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Network {
    /// Settle `choice`, saying which network the container gets and why.
    pub fn choose(choice: Choice) -> Result<Network> {
        let find = crate::idmap::find_program;
        let mut fallback = None;
        let (kind, program) = match choice {
            Choice::None => (Kind::LoopbackOnly, None),
            Choice::Pasta => (
                Kind::Pasta,
                Some(find("pasta").ok_or_else(|| missing("pasta", "passt"))?),
            ),
            Choice::Slirp4netns => (
                Kind::Slirp4netns,
                Some(find("slirp4netns").ok_or_else(|| missing("slirp4netns", "slirp4netns"))?),
            ),
            Choice::Auto => match (find("pasta"), find("slirp4netns"), tun_usable()) {
                (Some(p), _, true) => (Kind::Pasta, Some(p)),
                (None, Some(s), true) => (Kind::Slirp4netns, Some(s)),
                (None, None, _) => {
                    fallback = Some("neither pasta nor slirp4netns is installed (`sudo apt install passt` for one)".into());
                    (Kind::LoopbackOnly, None)
                }
                (_, _, false) => {
                    fallback = Some(format!(
                        "{TUN} is not open to you, and pasta and slirp4netns need it"
                    ));
                    (Kind::LoopbackOnly, None)
                }
            },
        };
        if program.is_some() && !tun_usable() {
            return Err(hinted(
                format!(
                    "{TUN} is not open to you for reading and writing, and {} needs it for its tap device",
                    if kind == Kind::Pasta { "pasta" } else { "slirp4netns" }
                ),
                format!("most distributions make it mode 666 (`ls -l {TUN}`); ask root to `chmod 666 {TUN}`, or use --network none"),
            ));
        }
        Ok(Network {
            kind,
            fallback,
            program,
            helper: None,
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    // ANCHOR: connect
    /// From the host, once the container's maps are written, before it
    /// runs: start the user-space network in its namespaces, and wait until
    /// it is ready. `pasta PID` joins the container's user and network
    /// namespaces and makes a tap device there with the host's addresses
    /// (`--config-net`); it writes its PID file once ready. slirp4netns
    /// says so on a pipe. Both run as our children, for as long as the
    /// container: given a PID, neither leaves by itself when the container
    /// is gone, so the tool ends them (and the kernel does, if the tool is
    /// killed: PR_SET_PDEATHSIG).
    pub fn connect(&mut self, container: Pid) -> Result<()> {
        let Some(program) = &self.program else {
            return Ok(()); // lo only: the container brings it up itself
        };
        match self.kind {
            Kind::Pasta => self.helper = Some(start_pasta(program, container)?),
            Kind::Slirp4netns => self.helper = Some(start_slirp(program, container)?),
            Kind::LoopbackOnly => {}
        }
        Ok(())
    }
    // ANCHOR_END: connect
}

/// The tun/tap device pasta and slirp4netns open to make the container's
/// tap device.
pub const TUN: &str = "/dev/net/tun";

/// Whether this user may open [`TUN`] for reading and writing.
pub fn tun_usable() -> bool {
    nix::unistd::access(
        TUN,
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    )
    .is_ok()
}

fn missing(program: &str, package: &str) -> anyhow::Error {
    hinted(
        format!("{program} is not installed"),
        format!("install it (Debian, Ubuntu: `sudo apt install {package}`), or use --network none"),
    )
}

/// `slirp4netns --configure --ready-fd R --exit-fd E PID tap0`, waited
/// for until it writes "1" on its ready pipe.
fn start_slirp(program: &std::path::Path, container: Pid) -> Result<Helper> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).context("failed to make a pipe");
    let ((ready_read, ready_write), (exit_read, exit_write)) = (pipe()?, pipe()?);
    // The two ends slirp4netns keeps must survive its exec: no CLOEXEC on
    // those (this process has one thread: no other child can inherit them).
    for end in [&ready_write, &exit_read] {
        fcntl(end, FcntlArg::F_SETFD(FdFlag::empty())).context("failed to clear FD_CLOEXEC")?;
    }
    let ready_fd = ready_write.as_raw_fd();
    let exit_fd = exit_read.as_raw_fd();
    let child = Command::new(program)
        .args([
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            &format!("--ready-fd={ready_fd}"),
            &format!("--exit-fd={exit_fd}"),
            &container.to_string(),
            "tap0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null()) // it tells of every tap fd it passes
        .dies_with_us()
        .spawn()
        .with_context(|| format!("failed to run {}", program.display()))?;
    drop(ready_write);
    drop(exit_read);
    let mut slirp = Helper {
        child,
        _exit: Some(exit_write),
    };
    let mut byte = [0u8; 1];
    let n = nix::unistd::read(&ready_read, &mut byte)
        .context("failed to read slirp4netns's ready pipe")?;
    if n != 1 {
        let status = slirp.child.wait()?;
        return Err(hinted(
            format!("slirp4netns for {container} exited before it was ready ({status})"),
            "run `slirp4netns --configure PID tap0` by hand to see what it says, or use --network none",
        ));
    }
    Ok(slirp)
}

/// `pasta --config-net --foreground --pid FILE PID`, waited for until it
/// writes its PID file (or exits, failing).
fn start_pasta(program: &std::path::Path, container: Pid) -> Result<Helper> {
    let runs = crate::runs_dir()?;
    let pid_file = runs.join(format!("pasta-{container}.pid"));
    let _ = std::fs::remove_file(&pid_file);
    let child = Command::new(program)
        .args(["--config-net", "--quiet", "--foreground", "--pid"])
        .arg(&pid_file)
        // As root, pasta drops to nobody, who may not enter the container's
        // user namespace (root's): stay root, then.
        .args(if nix::unistd::geteuid().is_root() {
            &["--runas", "0"][..]
        } else {
            &[]
        })
        .arg(container.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .dies_with_us()
        .spawn()
        .with_context(|| format!("failed to run {}", program.display()))?;
    let mut pasta = Helper { child, _exit: None };
    let start = std::time::Instant::now();
    loop {
        if pid_file.exists() {
            let _ = std::fs::remove_file(&pid_file);
            let _ = std::fs::remove_dir(&runs); // only if empty: a run's layers keep it
            return Ok(pasta);
        }
        if let Some(status) = pasta.child.try_wait()? {
            let mut said = String::new();
            if let Some(mut e) = pasta.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut said);
            }
            // It says each line twice when it cannot reach syslog.
            let said: Vec<&str> = said.lines().filter(|l| !l.contains("to syslog")).collect();
            bail!(
                "pasta --config-net {container} failed ({status}): {}",
                said.join("; ")
            );
        }
        if start.elapsed() > std::time::Duration::from_secs(10) {
            bail!("pasta --config-net {container} was not ready within 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// A helper that dies with the tool: PR_SET_PDEATHSIG, asked for in the
/// child between fork and exec.
trait DiesWithUs {
    fn dies_with_us(&mut self) -> &mut Self;
}

impl DiesWithUs for Command {
    fn dies_with_us(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl() is async-signal-safe, and touches nothing of ours.
        unsafe {
            self.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            })
        }
    }
}

/// In the container, first: bring `lo` up, unless pasta did (it does).
pub fn inside(kind: Kind) -> Result<()> {
    match kind {
        Kind::Pasta => Ok(()),
        Kind::Slirp4netns | Kind::LoopbackOnly => ch06_net::bring_up_loopback(),
    }
}
