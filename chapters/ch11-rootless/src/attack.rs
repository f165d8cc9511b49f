//! The attacks every container from here on is tried with: what root in a
//! container could do to the host through what the container still
//! shares with it. Each is harmless (it reads, or writes a value back as
//! it was, or creates and removes its own things), and each reports what
//! the kernel answered: it worked (with the evidence), or it was refused
//! (with the errno, and the call that got it).
//!
//! They run inside a container as a program, `ws-attack`: the chapter's
//! own binary, copied into a layer of the container with the libraries it
//! loads, and started under that name (see [`install_into`]).

use anyhow::{Context, Result};
use nix::errno::Errno;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The name the chapter binary answers to as the attack program, and where
/// it is inside the container.
pub const PROGRAM: &str = "ws-attack";
pub const INSIDE: &str = "/usr/local/bin/ws-attack";

/// One attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attack {
    /// open_by_handle_at(): open a host file by its inode number ("shocker")
    Shocker,
    /// mount cgroupfs, and move out of the container's cgroup
    CgroupEscape,
    /// write a /proc/sys setting that is the host's (its own value back)
    SysctlWrite,
    /// see the host's SysV shared memory
    HostShm,
    /// mknod a disk's device node
    Mknod,
    /// open /proc/sysrq-trigger for writing (the host's magic SysRq keys)
    Sysrq,
    /// mount a filesystem of the host's kernel
    Mount,
}

impl Attack {
    pub const ALL: [Attack; 7] = [
        Attack::Shocker,
        Attack::CgroupEscape,
        Attack::SysctlWrite,
        Attack::HostShm,
        Attack::Mknod,
        Attack::Sysrq,
        Attack::Mount,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::Shocker => "shocker",
            Attack::CgroupEscape => "cgroup-escape",
            Attack::SysctlWrite => "sysctl-write",
            Attack::HostShm => "host-shm",
            Attack::Mknod => "mknod",
            Attack::Sysrq => "sysrq",
            Attack::Mount => "mount",
        }
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Attack {
    type Err = String;
    fn from_str(s: &str) -> Result<Attack, String> {
        Attack::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("no attack named {s:?}"))
    }
}

/// What the kernel answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It worked: the evidence, in a sentence.
    Worked(String),
    /// Refused: the errno, and the call that got it.
    Refused { errno: Errno, call: String },
}

/// One line of `ws-attack`'s output: `NAME: worked: EVIDENCE` or
/// `NAME: refused: ERRNO by CALL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub attack: Attack,
    pub outcome: Outcome,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Worked(evidence) => write!(f, "{}: worked: {evidence}", self.attack),
            Outcome::Refused { errno, call } => {
                write!(
                    f,
                    "{}: refused: {} by {call}",
                    self.attack,
                    errno_name(*errno)
                )
            }
        }
    }
}

impl FromStr for Report {
    type Err = String;
    fn from_str(line: &str) -> Result<Report, String> {
        let (name, rest) = line
            .split_once(": ")
            .ok_or_else(|| format!("not a report: {line:?}"))?;
        let attack = name.parse()?;
        let outcome = if let Some(evidence) = rest.strip_prefix("worked: ") {
            Outcome::Worked(evidence.to_string())
        } else if let Some(refused) = rest.strip_prefix("refused: ") {
            let (errno, call) = refused
                .split_once(" by ")
                .ok_or_else(|| format!("not a refusal: {line:?}"))?;
            Outcome::Refused {
                errno: errno_from_name(errno).ok_or_else(|| format!("no errno {errno:?}"))?,
                call: call.to_string(),
            }
        } else {
            return Err(format!("not a report: {line:?}"));
        };
        Ok(Report { attack, outcome })
    }
}

/// `EPERM`: the errno's name alone, as the man pages write it.
pub fn errno_name(errno: Errno) -> String {
    format!("{errno:?}")
}

fn errno_from_name(name: &str) -> Option<Errno> {
    (1..200)
        .map(Errno::from_raw)
        .find(|e| errno_name(*e) == name)
}

/// What the attacks need to know of the host, given on the command line by
/// whoever starts them: the key of a SysV shared memory segment the host
/// made (`--shm-key`).
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub shm_key: Option<i32>,
}

/// Run one attack, in this process (inside the container).
pub fn run(attack: Attack, targets: &Targets) -> Outcome {
    let _ = targets;
    Outcome::Refused {
        errno: Errno::ENOSYS,
        call: format!("{attack} (not written yet)"),
    }
}

/// Whether this process was started as [`PROGRAM`] (argv[0]).
pub fn called_as_attack() -> bool {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n == PROGRAM))
        .unwrap_or(false)
}

/// `ws-attack [--shm-key K] [NAME...]` (no name: every attack): one
/// [`Report`] line each on stdout. Exit 0 when every attack was refused,
/// 1 when any worked, 2 on bad usage.
pub fn main() -> std::process::ExitCode {
    let mut targets = Targets::default();
    let mut chosen = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let parsed = match arg.as_str() {
            "--shm-key" => args
                .next()
                .and_then(|k| k.parse().ok())
                .map(|k| targets.shm_key = Some(k))
                .ok_or_else(|| "--shm-key takes a number".to_string()),
            name => name.parse().map(|a| chosen.push(a)),
        };
        if let Err(e) = parsed {
            eprintln!("{PROGRAM}: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    if chosen.is_empty() {
        chosen = Attack::ALL.to_vec();
    }
    let mut any_worked = false;
    for attack in chosen {
        let outcome = run(attack, &targets);
        any_worked |= matches!(outcome, Outcome::Worked(_));
        println!("{}", Report { attack, outcome });
    }
    std::process::ExitCode::from(u8::from(any_worked))
}

/// Copy this program (the chapter binary, with the libraries it loads)
/// into `root` as [`INSIDE`]: a layer to put over a container's root, or a
/// rootfs of its own. Returns the path it wrote.
pub fn install_into(root: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to find this program")?;
    workshop_rootfs::install_program(root, &exe, Path::new(INSIDE))
        .with_context(|| format!("failed to put {} into {}", exe.display(), root.display()))?;
    Ok(root.join(INSIDE.trim_start_matches('/')))
}

/// Read `ws-attack`'s output back.
pub fn parse_reports(output: &str) -> Result<Vec<Report>, String> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_as_it_was_written() {
        for report in [
            Report {
                attack: Attack::Shocker,
                outcome: Outcome::Worked("read the host's /etc/hostname: box".into()),
            },
            Report {
                attack: Attack::Mount,
                outcome: Outcome::Refused {
                    errno: Errno::EPERM,
                    call: "mount(\"debugfs\")".into(),
                },
            },
        ] {
            let line = report.to_string();
            assert_eq!(line.parse::<Report>(), Ok(report), "{line}");
        }
        assert_eq!(
            Report {
                attack: Attack::SysctlWrite,
                outcome: Outcome::Refused {
                    errno: Errno::EROFS,
                    call: "open".into()
                }
            }
            .to_string(),
            "sysctl-write: refused: EROFS by open"
        );
        assert!("shocker: maybe".parse::<Report>().is_err());
    }
}
