//! Support for the tests: run a chapter binary, find its container, and prove
//! that the host is as it was (mounts, hostname, links, cgroups).

pub mod container_pid;
pub mod early_kill;
pub mod net_sandbox;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What a chapter must leave exactly as it found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSnapshot {
    /// `/proc/self/mountinfo` of the test process, byte for byte.
    pub mountinfo: String,
    pub hostname: String,
    /// Names of the network links (`/sys/class/net`), sorted.
    pub links: Vec<String>,
    /// The workshop's cgroup directories (there should be none between runs).
    pub cgroups: Vec<std::path::PathBuf>,
}

impl HostSnapshot {
    pub fn take() -> HostSnapshot {
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
        let hostname = nix::unistd::gethostname()
            .expect("gethostname")
            .to_string_lossy()
            .into_owned();
        let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        links.sort();
        let cgroups = crate::cgroup::workshop_dirs();
        HostSnapshot {
            mountinfo,
            hostname,
            links,
            cgroups,
        }
    }

    /// Panic with a readable diff unless the host is as it was at `self`.
    pub fn assert_unchanged(&self, what: &str) {
        let now = HostSnapshot::take();
        if now.mountinfo != self.mountinfo {
            let before: Vec<&str> = self.mountinfo.lines().collect();
            let after: Vec<&str> = now.mountinfo.lines().collect();
            let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
            let new: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
            panic!("{what}: the host's mounts changed\n  gone: {gone:#?}\n  new: {new:#?}");
        }
        assert_eq!(
            now.hostname, self.hostname,
            "{what}: the host's hostname changed"
        );
        assert_eq!(
            now.links, self.links,
            "{what}: the host's network links changed"
        );
        assert_eq!(
            now.cgroups, self.cgroups,
            "{what}: the workshop's cgroup directories changed"
        );
    }
}

/// Whether this process can do what the chapters do. Checks that need root
/// call [`require_root`] first, which fails loudly rather than skip.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn require_root() {
    assert!(
        is_root(),
        "this check creates namespaces and needs root; run `cargo test` (it asks sudo for you) or run it as root"
    );
}

/// A chapter binary, with narration off and colour off.
pub fn chapter(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

/// Run a chapter to the end with a time limit, returning its output.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chapter");
    wait_output(child, limit)
}

/// Wait for a spawned child's output, killing it if it runs past `limit`.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "timed out after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The PIDs of `pid`'s children, from the kernel (`/proc/PID/task/*/children`).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                kids.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    kids
}

/// Wait until the tool `pid` has a child whose command line starts with `argv0`
/// (the container has exec'd its command), and return that child's PID.
pub fn wait_for_container(pid: u32, argv0: &str, limit: Duration) -> u32 {
    let start = Instant::now();
    while start.elapsed() < limit {
        for kid in children_of(pid) {
            let cmdline = std::fs::read(format!("/proc/{kid}/cmdline")).unwrap_or_default();
            let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            if Path::new(&*String::from_utf8_lossy(first))
                .file_name()
                .is_some_and(|n| n == argv0)
            {
                return kid;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no child `{argv0}` of {pid} appeared within {limit:?}");
}

/// Whether a process exists (and is not a zombie waiting to be reaped).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// The `NSpid:` line of a process: its PID in each PID namespace it is in,
/// outermost first (`[48213, 1]` for PID 1 of a container).
pub fn nspid(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The inode of `/proc/PID/ns/KIND` (or of this process with `pid` = "self").
pub fn ns_inode(pid: &str, kind: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .expect("stat a namespace file")
        .ino()
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `script` with `sh -c` in a sandbox that stands in for a systemd host:
/// a mount namespace of the test's own whose mounts are all shared, as
/// systemd makes the host's. The namespace starts private (unshare's default)
/// and is made shared inside, so its peer groups are its own: even a chapter
/// that wrongly propagated a mount would only reach the sandbox, never the
/// real host.
pub fn run_in_shared_sandbox(script: &str, limit: Duration) -> Output {
    require_root();
    let script = format!("mount --make-rshared / && {script}");
    run(
        Command::new("unshare").args(["--mount", "sh", "-c", &script]),
        limit,
    )
}

/// Run `script` with `sh -c` in a network namespace of its own (`unshare
/// --net`): both ends of every veth the chapter makes live there, and no
/// packet can leave it. The script reads the kernel's state back (`ip -o
/// link`) before the namespace goes.
pub fn run_in_net_sandbox(script: &str, limit: Duration) -> Output {
    require_root();
    run(
        Command::new("unshare").args(["--net", "sh", "-c", script]),
        limit,
    )
}

/// Exit code of a finished chapter run: its code, or 128+N if it was killed by signal N.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Start `bin args` (its command exec's `argv0`, e.g. `sleep`), wait until the
/// container is up, send `signal` to the tool, and wait for the tool to end.
/// Returns the tool's exit code and the container's host PID. The caller
/// asserts on both and on the host snapshot.
pub fn signal_mid_run(
    bin: &str,
    args: &[&str],
    argv0: &str,
    signal: nix::sys::signal::Signal,
) -> (i32, u32) {
    let tool = chapter(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chapter");
    let container = wait_for_container(tool.id(), argv0, Duration::from_secs(10));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(tool.id() as i32), signal)
        .expect("signal the tool");
    let out = wait_output(tool, Duration::from_secs(10));
    (exit_code(out.status), container)
}

/// The fault case: send `signal` to the tool mid-run (its command execs
/// `argv0`), then prove the tool exited 128+N, the container is gone, and the
/// host is exactly as before.
pub fn assert_signal_leaves_nothing(
    bin: &str,
    args: &[&str],
    argv0: &str,
    signal: nix::sys::signal::Signal,
) {
    require_root();
    let host = HostSnapshot::take();
    let (exit, container) = signal_mid_run(bin, args, argv0, signal);
    assert_eq!(
        exit,
        128 + signal as i32,
        "{bin} after {signal:?}: exit code"
    );
    assert!(
        wait_until_gone(container, Duration::from_secs(10)),
        "{bin}: the container survived {signal:?}"
    );
    host.assert_unchanged(&format!("{bin} after {signal:?}"));
}

/// The fault matrix for one chapter: the container exits 0, exits non-zero,
/// the tool gets SIGINT, SIGTERM, or SIGKILL mid-run followed by a new run;
/// after each, the host's mounts, hostname, links and workshop cgroups are
/// exactly as before. `options` come before the command (e.g. limits).
pub fn fault_matrix(bin: &str, options: &[&str]) {
    require_root();
    let with = |command: &[&str]| -> Vec<String> {
        options
            .iter()
            .chain(["--quiet", "--"].iter())
            .chain(command.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let host = HostSnapshot::take();
    for (command, code) in [(&["true"][..], 0), (&["sh", "-c", "exit 3"][..], 3)] {
        let out = run(chapter(bin).args(with(command)), Duration::from_secs(60));
        assert_eq!(
            exit_code(out.status),
            code,
            "{bin} {command:?}: {}",
            stderr_of(&out)
        );
        host.assert_unchanged(&format!("{bin} after {command:?}"));
    }
    let sleep: Vec<String> = with(&["sleep", "30"]);
    let sleep: Vec<&str> = sleep.iter().map(String::as_str).collect();
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        assert_signal_leaves_nothing(bin, &sleep, "sleep", signal);
    }
    // SIGKILL: the tool cannot clean up. The container dies with it
    // (PR_SET_PDEATHSIG) and what the kernel ties to it goes; what it cannot
    // (an empty cgroup directory) the next run reclaims. After that new run,
    // the host must be exactly as before.
    let (exit, container) = signal_mid_run(bin, &sleep, "sleep", nix::sys::signal::Signal::SIGKILL);
    assert_eq!(exit, 137, "{bin} after SIGKILL");
    assert!(
        wait_until_gone(container, Duration::from_secs(10)),
        "{bin}: the container survived SIGKILL of the tool"
    );
    // After a SIGKILL, a new run starts and ends clean (and reclaims what it finds).
    let out = run(chapter(bin).args(with(&["true"])), Duration::from_secs(60));
    assert_eq!(
        exit_code(out.status),
        0,
        "{bin}: the run after a SIGKILL: {}",
        stderr_of(&out)
    );
    host.assert_unchanged(&format!("{bin} after SIGKILL and a new run"));
}

/// The bad-input matrix for one chapter: each (option, value) must be refused
/// with exit 1 or 2 and an `error:` that names the option and the value,
/// before anything is created. The options every chapter has are added.
pub fn bad_input_matrix(bin: &str, cases: &[(&str, &str)]) {
    require_root();
    let host = HostSnapshot::take();
    let common = [
        ("--color", ""),
        ("--color", "purple"),
        ("--color", "ALWAYS!"),
    ];
    for (option, value) in common.iter().chain(cases.iter()) {
        let out = run(
            chapter(bin).args([option, value, "--", "true"]),
            Duration::from_secs(60),
        );
        let err = stderr_of(&out);
        let code = exit_code(out.status);
        assert!(
            code == 1 || code == 2,
            "{bin} {option} {value:?}: exit {code}\n{err}"
        );
        let first = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("{bin} {option} {value:?}: no error: line\n{err}"));
        assert!(
            first.contains(option),
            "{bin} {option} {value:?}: the error does not name the option: {first}"
        );
        assert!(
            first.contains(value),
            "{bin} {option} {value:?}: the error does not name the value: {first}"
        );
    }
    host.assert_unchanged(&format!("{bin} bad input"));
}

/// Wait (a little) for a process to be gone: the kernel may take a moment to
/// deliver PR_SET_PDEATHSIG and the reaper to reap.
pub fn wait_until_gone(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Run a chapter binary as user `nobody`, to see what a student who forgot
/// sudo sees. The binary is copied where `nobody` can reach it.
pub fn run_as_nobody(bin: &str, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = std::env::temp_dir().join(format!(
        "workshop-nobody-{}-{}",
        std::process::id(),
        args.len()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    let copy = dir.join(Path::new(bin).file_name().expect("binary name"));
    std::fs::copy(bin, &copy).expect("copy binary");
    let out = run(
        chapter(copy.to_str().expect("utf-8 path"))
            .args(args)
            .uid(65534)
            .gid(65534),
        Duration::from_secs(10),
    );
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// A directory under the system temp dir, removed (whatever is in it, even
/// read-only directories) when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// `/tmp/workshop-WHAT-PID-N`, new and empty, mode 0755.
    pub fn new(what: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("workshop-{what}-{}-{n}", std::process::id()));
        let _ = crate::rootfs::remove_tree(&path);
        std::fs::create_dir(&path).expect("create a temp dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = crate::rootfs::remove_tree(&self.0);
    }
}

/// A tar archive made by a test, hostile entries included: paths and link
/// targets are written raw into the header, so `../x`, `/abs/../../x` and
/// `evil -> /` are all possible (tar's own `Builder` refuses `..`).
pub struct Tarball(tar::Builder<Vec<u8>>);

impl Default for Tarball {
    fn default() -> Self {
        Tarball(tar::Builder::new(Vec::new()))
    }
}

impl Tarball {
    pub fn new() -> Tarball {
        Tarball::default()
    }

    /// Any entry, written raw: `kind`, `mode` (setuid bits included) and the
    /// link target as given, uid and gid 0.
    pub fn raw(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        link: &str,
        data: &[u8],
    ) -> &mut Self {
        let mut header = tar::Header::new_ustar();
        let old = header.as_old_mut();
        assert!(
            path.len() < old.name.len() && link.len() < old.linkname.len(),
            "short names only"
        );
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        self.0
            .append(&header, data)
            .expect("append to an in-memory tar");
        self
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.raw(path, tar::EntryType::Directory, mode, "", b"")
    }

    pub fn file(&mut self, path: &str, content: &[u8], mode: u32) -> &mut Self {
        self.raw(path, tar::EntryType::Regular, mode, "", content)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Symlink, 0o777, target, b"")
    }

    pub fn hard_link(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Link, 0o644, target, b"")
    }

    /// A character device entry (device 0,0: only its type matters here).
    pub fn char_device(&mut self, path: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Char, 0o666, "", b"")
    }

    pub fn fifo(&mut self, path: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Fifo, 0o644, "", b"")
    }

    /// A block device entry (device 0,0).
    pub fn block_device(&mut self, path: &str) -> &mut Self {
        self.raw(path, tar::EntryType::Block, 0o660, "", b"")
    }

    /// A GNU sparse file of `real_size` bytes, holding `chunks` (offset,
    /// data) and holes everywhere else: the archive carries the data only.
    /// At most 4 chunks (no extension headers); every chunk but the last a
    /// multiple of 512 bytes long, as GNU tar writes them.
    pub fn sparse(&mut self, path: &str, real_size: u64, chunks: &[(u64, &[u8])]) -> &mut Self {
        assert!(chunks.len() <= 4, "at most 4 chunks in the GNU header");
        let mut header = tar::Header::new_gnu();
        {
            let old = header.as_old_mut();
            assert!(path.len() < old.name.len(), "short names only");
            old.name[..path.len()].copy_from_slice(path.as_bytes());
        }
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        let data: Vec<u8> = chunks.iter().flat_map(|(_, d)| d.iter().copied()).collect();
        header.set_size(data.len() as u64);
        let gnu = header.as_gnu_mut().expect("a GNU header");
        for (slot, (offset, chunk)) in gnu.sparse.iter_mut().zip(chunks) {
            octal(&mut slot.offset, *offset);
            octal(&mut slot.numbytes, chunk.len() as u64);
        }
        octal(&mut gnu.realsize, real_size);
        header.set_cksum();
        self.0
            .append(&header, &data[..])
            .expect("append to an in-memory tar");
        self
    }

    /// The archive as a .tar file's bytes.
    pub fn bytes(&mut self) -> Vec<u8> {
        self.0
            .get_ref()
            .clone()
            .into_iter()
            .chain([0u8; 1024])
            .collect()
    }

    /// The archive as a .tar.gz file's bytes.
    pub fn gzipped(&mut self) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&self.bytes()).expect("gzip in memory");
        gz.finish().expect("gzip in memory")
    }

    /// Write the archive to `path` (gzipped when `gzip`).
    pub fn write_to(&mut self, path: &Path, gzip: bool) {
        let bytes = if gzip { self.gzipped() } else { self.bytes() };
        std::fs::write(path, bytes).expect("write a test tarball");
    }
}

/// A tar number field: octal digits, NUL-terminated.
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}\0", width = field.len() - 1);
    assert_eq!(digits.len(), field.len(), "{value} does not fit");
    field.copy_from_slice(digits.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nspid() {
        assert_eq!(nspid("Name:\tsh\nNSpid:\t48213\t1\n"), vec![48213, 1]);
        assert_eq!(nspid("Name:\tsh\n"), Vec::<u32>::new());
    }

    #[test]
    fn this_process_is_alive_and_has_no_children_yet() {
        let me = std::process::id();
        assert!(is_alive(me));
        assert!(!is_alive(u32::MAX));
    }
}
