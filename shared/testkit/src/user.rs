//! A normal user, made for a test and removed after it: what a rootless
//! container (chapter 11) is run as. With `useradd` (the host), a user of
//! its own with a range of subordinate ids (/etc/subuid, /etc/subgid), as
//! a student has; `userdel` removes it all. Without (the VM's busybox), the
//! lines are written into the VM's throwaway /etc by hand, and left.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// useradd and userdel lock /etc/passwd and give up at once when another
/// holds it: one at a time, within this test binary.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// A user of the test's own. Dropping it removes it (with useradd).
#[derive(Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The range /etc/subuid and /etc/subgid grant it, if any.
    pub subids: Option<(u32, u32)>,
    made_with_useradd: bool,
}

impl TestUser {
    /// Make a new user, `wst-PID-N`. Needs root.
    pub fn create() -> TestUser {
        crate::require_root();
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("wst-{}-{n}", std::process::id());
        let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        if Path::new("/usr/sbin/useradd").exists() {
            let out = crate::run(
                Command::new("/usr/sbin/useradd")
                    .args(["--no-create-home", "--home-dir", "/nonexistent"])
                    .args(["--shell", "/usr/sbin/nologin", "--user-group"])
                    .arg(&name),
                Duration::from_secs(30),
            );
            assert!(
                out.status.success(),
                "useradd {name}: {}",
                crate::stderr_of(&out)
            );
            let user = nix::unistd::User::from_name(&name)
                .expect("getpwnam")
                .expect("the user useradd made");
            let subids = subids_of(&name);
            return TestUser {
                name,
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
                subids,
                made_with_useradd: true,
            };
        }
        // No useradd: the VM, whose /etc is a throwaway initramfs.
        // This test's own n, not N read again: two tests making users at
        // once would read the same N, and get the same uid (and each
        // other's runs dir, whose runs the other's reclaim took for dead).
        let uid = 20000 + (std::process::id() % 1000) * 100 + n as u32 % 100;
        // A range of its own for each: 4096 ids, so that the largest
        // (uid 119999) still ends below 2^32 (at 409 600 000 or so).
        const RANGE: u32 = 4096;
        let start = 300_000 + (uid - 20000) * RANGE;
        let append = |file: &str, line: String| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(file)
                .unwrap_or_else(|e| panic!("open {file}: {e}"));
            writeln!(f, "{line}").unwrap_or_else(|e| panic!("append to {file}: {e}"));
        };
        append(
            "/etc/passwd",
            format!("{name}:x:{uid}:{uid}::/nonexistent:/bin/sh"),
        );
        append("/etc/group", format!("{name}:x:{uid}:"));
        append("/etc/subuid", format!("{name}:{start}:{RANGE}"));
        append("/etc/subgid", format!("{name}:{start}:{RANGE}"));
        TestUser {
            name,
            uid,
            gid: uid,
            subids: Some((start, RANGE)),
            made_with_useradd: false,
        }
    }

    /// `program`, to be run as this user: its uid, gid and no other groups,
    /// an environment of its own (HOME, USER, no XDG_RUNTIME_DIR of root's),
    /// narration and colour off.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = crate::chapter(program.as_ref().to_str().expect("utf-8 path"));
        cmd.uid(self.uid)
            .gid(self.gid) // and, as root, std drops the supplementary groups
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("SUDO_UID")
            .env_remove("SUDO_GID")
            .env_remove("SUDO_USER")
            .env("HOME", "/nonexistent")
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .current_dir("/");
        cmd
    }

    /// The words that run a program as this user from a root shell (a
    /// script that sets up something as root first, then drops to the
    /// user): `setpriv` to its uid and gid with no other groups, then `env`
    /// with the environment of [`TestUser::command`]. Append the program
    /// and its arguments.
    ///
    /// util-linux's setpriv, by its path: a busybox shell that prefers its
    /// applets (the VM's) would run busybox's setpriv for a bare
    /// `setpriv`, which has no --reuid.
    pub fn setpriv_argv(&self) -> Vec<String> {
        let setpriv = workshop_rootfs::find_host_program("setpriv")
            .expect("setpriv is not installed: apt-get install util-linux");
        [
            setpriv.to_str().expect("a UTF-8 path"),
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
            "--clear-groups",
            "env",
            "-u",
            "XDG_RUNTIME_DIR",
            "-u",
            "SUDO_UID",
            "-u",
            "SUDO_GID",
            "-u",
            "SUDO_USER",
            "HOME=/nonexistent",
            &format!("USER={}", self.name),
            &format!("LOGNAME={}", self.name),
            "NO_COLOR=1",
        ]
        .map(String::from)
        .to_vec()
    }

    /// Where chapter 11 keeps this user's runs when it has no
    /// XDG_RUNTIME_DIR (as [`TestUser::command`] runs it).
    pub fn rootless_runs_dir(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/tmp/workshop-rootless-{}", self.uid))
    }

    /// Fail with a clear message when this user cannot reach `path` (a
    /// chapter binary or a rootfs under a directory only root may enter,
    /// such as a clone in /root).
    pub fn assert_can_reach(&self, path: &Path) {
        let mut dir = Some(path);
        while let Some(d) = dir {
            let meta = std::fs::metadata(d).unwrap_or_else(|e| panic!("stat {}: {e}", d.display()));
            let others_x = meta.mode() & 0o001 != 0;
            let owner_x = meta.uid() == self.uid && meta.mode() & 0o100 != 0;
            assert!(
                !meta.is_dir() || others_x || owner_x,
                "{} is not open to other users (mode {:o}), so the test user {} cannot reach {}: \
                 run the tests from a checkout under a directory others may enter (e.g. /tmp or /work, not /root)",
                d.display(),
                meta.mode() & 0o7777,
                self.name,
                path.display()
            );
            dir = d.parent();
        }
    }
}

fn subids_of(name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/subuid").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // What a run of this user's left in /tmp (a kept upper, a killed
        // run's layers) is the test's: userdel leaves /tmp alone, and the
        // next user given this uid would find it.
        let _ = workshop_rootfs::remove_tree(&self.rootless_runs_dir());
        if !self.made_with_useradd {
            return; // the VM's /etc goes with the VM
        }
        let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        // Its processes are the test's runs, ended by now; userdel refuses
        // a user that still has one, so give stragglers a moment.
        for _ in 0..50 {
            let out = Command::new("/usr/sbin/userdel").arg(&self.name).output();
            match out {
                Ok(o) if o.status.success() => return,
                Ok(o) if o.status.code() == Some(8) => {
                    std::thread::sleep(Duration::from_millis(100))
                } // in use
                Ok(o) => {
                    eprintln!(
                        "userdel {}: {}",
                        self.name,
                        String::from_utf8_lossy(&o.stderr)
                    );
                    return;
                }
                Err(e) => {
                    eprintln!("userdel {}: {e}", self.name);
                    return;
                }
            }
        }
    }
}
