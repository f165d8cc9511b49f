//! What the host machine has, read only: the programs on a root shell's
//! PATH and the settings that forbid unprivileged user namespaces. The
//! rootfs builder, chapter 11 and `cargo xtask doctor` ask the same
//! questions here; it uses the standard library only, so the doctor (the
//! first thing a student runs, on a clean clone) builds in seconds.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where host programs are looked up, like a root shell's PATH.
pub const PATH_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Where `name` is on the host, through [`PATH_DIRS`]: an executable file
/// (host symlinks followed, so /bin/sh finds dash).
pub fn find_program(name: &str) -> Option<PathBuf> {
    PATH_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| is_executable(p))
}

/// Where `name` is for whoever runs us: on their `$PATH` first, then in
/// [`PATH_DIRS`] (shadow's `newuidmap` lives in /usr/bin, but tools of
/// root's often sit in an sbin directory a user's PATH lacks).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    find_in(&std::env::var_os("PATH").unwrap_or_default(), name)
}

/// [`find_on_path`], with `path` as the PATH.
fn find_in(path: &std::ffi::OsStr, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .chain(PATH_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// An executable file (symlinks followed).
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The settings that forbid unprivileged user namespaces, each with the
/// value that does: (file, value that forbids, what it is).
pub const FORBIDDING: &[(&str, &str, &str)] = &[
    (
        "/proc/sys/kernel/unprivileged_userns_clone",
        "0",
        "Debian's and Ubuntu's switch for unprivileged user namespaces",
    ),
    (
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "Ubuntu 23.10+: AppArmor lets only programs with a profile that allows it create user namespaces",
    ),
    (
        "/proc/sys/user/max_user_namespaces",
        "0",
        "the most user namespaces a user may have at once",
    ),
];

/// The settings of [`FORBIDDING`] that are set to forbid, read from
/// `root` (`/` on the machine; a test gives a directory of its own).
pub fn forbidding_settings(root: &Path) -> Vec<(String, &'static str)> {
    FORBIDDING
        .iter()
        .filter_map(|(file, forbids, what)| {
            let path = root.join(file.trim_start_matches('/'));
            let value = std::fs::read_to_string(path).ok()?;
            (value.trim() == *forbids).then(|| (format!("{file} = {forbids}"), *what))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_executable_on_the_path_and_nothing_else() {
        let sh = find_program("sh").expect("every Debian has /bin/sh");
        assert!(
            sh.ends_with("sh") && PATH_DIRS.iter().any(|d| sh.starts_with(d)),
            "{sh:?}"
        );
        assert_eq!(find_program("no-such-program-ws"), None);
        // A file that is there but not executable is not a program.
        assert!(Path::new("/etc/passwd").is_file());
        assert_eq!(find_program("../etc/passwd"), None);
    }

    #[test]
    fn the_users_path_comes_first_then_roots_directories() {
        let dir = std::env::temp_dir().join(format!("ws-host-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // An `sh` of the user's own, executable, and a file that is not.
        let sh = dir.join("sh");
        std::fs::write(&sh, "#!/bin/true\n").unwrap();
        std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("notes"), "").unwrap();
        let found = (
            find_in(dir.as_os_str(), "sh"),
            find_in(dir.as_os_str(), "notes"),
            find_in("".as_ref(), "sh"),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.0, Some(sh), "the user's PATH first");
        assert_eq!(found.1, None, "not executable: not a program");
        // With nothing on PATH, root's directories still answer.
        assert_eq!(found.2, find_program("sh"));
        assert!(found.2.is_some());
    }

    #[test]
    fn a_setting_forbids_only_at_its_forbidding_value() {
        let root = std::env::temp_dir().join(format!("ws-host-{}", std::process::id()));
        let sys = root.join("proc/sys/user");
        std::fs::create_dir_all(&sys).unwrap();
        std::fs::write(sys.join("max_user_namespaces"), "15000\n").unwrap();
        assert!(forbidding_settings(&root).is_empty());
        std::fs::write(sys.join("max_user_namespaces"), "0\n").unwrap();
        let named = forbidding_settings(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(named.len(), 1, "{named:?}");
        assert_eq!(named[0].0, "/proc/sys/user/max_user_namespaces = 0");
    }
}
