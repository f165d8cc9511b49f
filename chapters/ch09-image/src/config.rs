//! An image config to the container's process: the command (`Entrypoint`
//! then `Cmd`, or the command given), `Env`, `WorkingDir` and `User`, by
//! docker's rules. Names in `User` are looked up in the image's own
//! `/etc/passwd` and `/etc/group`, never the host's: a name means what the
//! image says it means.

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};
use oci_spec::image::ImageConfiguration;
use std::convert::Infallible;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use workshop::error::hinted;
use workshop::process::ExecFailed;

/// The `PATH` docker gives a container whose image sets none.
pub const DEFAULT_PATH: &str = workshop::process::CONTAINER_PATH;

/// What the container runs, from an image's config and the command given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub argv: Vec<String>,
    /// `KEY=VALUE`, the config's `Env` (with a default `PATH` when it has
    /// none, and `HOME` from the user's passwd line when it has none).
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// The supplementary groups: the groups of the image's `/etc/group`
    /// that list the user by name.
    pub groups: Vec<u32>,
}

// ANCHOR: process
/// The process for `config`, by docker's rules: the command is `Entrypoint`
/// followed by `command` when one is given (it replaces `Cmd`, never the
/// `Entrypoint`), else by `Cmd`; neither and no command is an error. `Env`
/// gets a default `PATH` when it has none; `WorkingDir` is `/` when empty.
/// `User` is `uid`, `uid:gid`, `name` or `name:group`, names looked up in
/// the image's files, read through `lowers` (its layers, the top first).
pub fn process(
    config: &ImageConfiguration,
    command: &[String],
    lowers: &[PathBuf],
) -> Result<Process> {
    let empty = Default::default();
    let c = config.config().as_ref().unwrap_or(&empty);
    let entrypoint = c.entrypoint().clone().unwrap_or_default();
    let cmd = c.cmd().clone().unwrap_or_default();
    let argv: Vec<String> = if command.is_empty() {
        entrypoint.into_iter().chain(cmd).collect()
    } else {
        entrypoint
            .into_iter()
            .chain(command.iter().cloned())
            .collect()
    };
    if argv.is_empty() {
        bail!("the image has no command (neither Entrypoint nor Cmd) and none was given: give one after `--`");
    }

    let user = user(c.user().as_deref().unwrap_or(""), lowers)?;
    let mut env = c.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }

    let cwd = match c.working_dir().as_deref() {
        None | Some("") => PathBuf::from("/"),
        Some(dir) if dir.starts_with('/') => PathBuf::from(dir),
        Some(dir) => bail!("the image's WorkingDir {dir:?} is not an absolute path"),
    };
    Ok(Process {
        argv,
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        groups: user.groups,
    })
}
// ANCHOR_END: process

/// A user as the image's files name it.
#[derive(Debug, PartialEq, Eq)]
struct User {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    home: String,
}

/// `User`: empty (root), `uid`, `uid:gid`, `name`, `name:group`. A uid the
/// passwd file has takes its gid and home from there; a number it has not
/// is still a uid (gid 0, home `/`), as docker does; a name it has not is
/// an error, naming the file.
fn user(spec: &str, lowers: &[PathBuf]) -> Result<User> {
    let (who, group) = match spec.split_once(':') {
        Some((who, group)) => (who, Some(group)),
        None => (spec, None),
    };
    let passwd = read_in_layers(lowers, "etc/passwd").unwrap_or_default();
    // name:x:uid:gid:gecos:home:shell
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let entry = |f: &&Vec<&str>| match who.parse::<u32>() {
        Ok(uid) => f[2].parse() == Ok(uid),
        Err(_) => f[0] == who,
    };
    let (uid, mut gid, home, name) = match (entries.iter().find(entry), who.parse::<u32>()) {
        _ if who.is_empty() => (0, 0, "/root".to_string(), Some("root".to_string())),
        (Some(f), _) => (
            f[2].parse()
                .with_context(|| format!("/etc/passwd: bad uid {:?}", f[2]))?,
            f[3].parse()
                .with_context(|| format!("/etc/passwd: bad gid {:?}", f[3]))?,
            f[5].to_string(),
            Some(f[0].to_string()),
        ),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => {
            bail!("the image's User {spec:?}: no user {who:?} in the image's /etc/passwd")
        }
    };
    let groups_file = read_in_layers(lowers, "etc/group").unwrap_or_default();
    // name:x:gid:member,member
    let groups: Vec<Vec<&str>> = groups_file
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(group) = group {
        gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match groups.iter().find(|f| f[0] == group) {
                Some(f) => f[2]
                    .parse()
                    .with_context(|| format!("/etc/group: bad gid {:?}", f[2]))?,
                None => {
                    bail!("the image's User {spec:?}: no group {group:?} in the image's /etc/group")
                }
            },
        };
    }
    // (uid_t)-1 is no id: setresuid and setresgid take it as "leave this
    // one as it is", and the process would stay root.
    for (what, id) in [("uid", uid), ("gid", gid)] {
        if id == u32::MAX {
            bail!("the image's User {spec:?}: the {what} {id} is (uid_t)-1, which setresuid and setresgid read as \"unchanged\" (the process would stay root): refused");
        }
    }
    let mut supplementary = vec![gid];
    if let Some(name) = &name {
        for f in &groups {
            if f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if !supplementary.contains(&g) {
                        supplementary.push(g);
                    }
                }
            }
        }
    }
    Ok(User {
        uid,
        gid,
        groups: supplementary,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

/// The text of `rel` as the image shows it: from the top layer that has it,
/// unless a layer above deleted it (chapter 8's whiteouts and opaque
/// directories). `None` when the image has no such file.
pub fn read_in_layers(lowers: &[PathBuf], rel: &str) -> Option<String> {
    if !ch08_overlay::in_lowers(lowers, Path::new(rel)) {
        return None;
    }
    lowers.iter().find_map(|layer| {
        let path = layer.join(rel);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if meta.is_file() {
            std::fs::read_to_string(path).ok()
        } else {
            None
        }
    })
}

// ANCHOR: enter
impl Process {
    /// In the container, after the pivot: the working directory (made if
    /// missing, as docker does), then the user (groups, gid, uid: the uid
    /// last, while we may still change the others), then exec with the
    /// image's environment, `argv[0]` searched in the image's `PATH`.
    pub fn exec(&self) -> Result<Infallible> {
        std::fs::create_dir_all(&self.cwd)
            .with_context(|| format!("failed to create the WorkingDir {}", self.cwd.display()))?;
        let groups: Vec<Gid> = self.groups.iter().map(|&g| Gid::from_raw(g)).collect();
        // In a user namespace with one id mapped (chapter 11), setgroups()
        // is denied for good: there are no other groups to be in anyway.
        let denied =
            std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
        if !denied {
            nix::unistd::setgroups(&groups).context("failed to setgroups")?;
        }
        let (uid, gid) = (Uid::from_raw(self.uid), Gid::from_raw(self.gid));
        // EINVAL: an id the container's user namespace does not map
        // (chapter 11 with one id: only root exists in there).
        let hint_if_unmapped = |e: anyhow::Error| {
            if denied {
                hinted(
                    format!("{e:#}"),
                    "the image's user is not in the container's map: rootless, with one id mapped \
                     (--map self), only root exists; a range of /etc/subuid (--map subids) maps the rest",
                )
            } else {
                e
            }
        };
        nix::unistd::setresgid(gid, gid, gid)
            .with_context(|| format!("failed to setresgid to {}", self.gid))
            .map_err(hint_if_unmapped)?;
        nix::unistd::setresuid(uid, uid, uid)
            .with_context(|| format!("failed to setresuid to {}", self.uid))
            .map_err(hint_if_unmapped)?;
        // The kernel forgets PR_SET_PDEATHSIG with the uid: ask again, so
        // that the container still dies with a SIGKILLed tool.
        workshop::process::rearm_parent_death_signal()?;
        nix::unistd::chdir(&self.cwd)
            .with_context(|| format!("failed to chdir to {}", self.cwd.display()))?;
        self.execve()
    }
    // ANCHOR_END: enter

    /// execve `argv[0]`: a path as it is, a bare name tried in each
    /// directory of the image's `PATH` in turn (as execvp does, but with the
    /// container's PATH, not ours).
    fn execve(&self) -> Result<Infallible> {
        let cstrings = |list: &[String]| -> Result<Vec<CString>> {
            list.iter()
                .map(|a| {
                    CString::new(a.as_bytes()).with_context(|| format!("{a:?} contains a NUL byte"))
                })
                .collect()
        };
        let (args, env) = (cstrings(&self.argv)?, cstrings(&self.env)?);
        workshop::process::close_inherited_fds()?; // nothing of the host's crosses
        let program = &self.argv[0];
        let mut errno = Errno::ENOENT;
        for candidate in candidates(program, &self.env) {
            let path = CString::new(candidate.into_bytes()).context("a NUL byte in PATH")?;
            let Err(e) = nix::unistd::execve(&path, &args, &env);
            match e {
                Errno::ENOENT | Errno::ENOTDIR => {}
                Errno::EACCES => errno = Errno::EACCES, // try the rest, as execvp does
                e => {
                    errno = e;
                    break;
                }
            }
        }
        Err(ExecFailed {
            command: program.clone(),
            errno,
        }
        .into())
    }
}

/// Where to look for `program`: itself when it holds a `/`, else each
/// directory of `PATH` (from `env`), an empty entry meaning `.`.
fn candidates(program: &str, env: &[String]) -> Vec<String> {
    if program.contains('/') {
        return vec![program.to_string()];
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| {
            let dir = if dir.is_empty() { "." } else { dir };
            format!("{}/{program}", dir.trim_end_matches('/'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{Config, ImageConfigurationBuilder};

    fn config(edit: impl FnOnce(&mut Config)) -> ImageConfiguration {
        let mut c = Config::default();
        edit(&mut c);
        ImageConfigurationBuilder::default()
            .config(c)
            .build()
            .unwrap()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A layer with the given /etc/passwd and /etc/group.
    fn layer(passwd: &str, group: &str) -> workshop_testkit::TempDir {
        let dir = workshop_testkit::TempDir::new("ch09-config");
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(dir.path().join("etc/group"), group).unwrap();
        dir
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          app:x:1000:1001:the app:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1001:\nstaff:x:50:app,other\nwheel:x:10:root\n";

    #[test]
    fn a_command_given_replaces_cmd_but_keeps_the_entrypoint() {
        let c = config(|c| {
            c.set_entrypoint(Some(strings(&["/bin/echo", "entry"])));
            c.set_cmd(Some(strings(&["from-cmd"])));
        });
        let p = process(&c, &[], &[]).unwrap();
        assert_eq!(p.argv, strings(&["/bin/echo", "entry", "from-cmd"]));
        let p = process(&c, &strings(&["given"]), &[]).unwrap();
        assert_eq!(p.argv, strings(&["/bin/echo", "entry", "given"]));

        let only_cmd = config(|c| {
            c.set_cmd(Some(strings(&["sh", "-c", "x"])));
        });
        let p = process(&only_cmd, &strings(&["ls", "-l"]), &[]).unwrap();
        assert_eq!(p.argv, strings(&["ls", "-l"]));
        let p = process(&only_cmd, &[], &[]).unwrap();
        assert_eq!(p.argv, strings(&["sh", "-c", "x"]));
    }

    #[test]
    fn neither_entrypoint_nor_cmd_nor_a_command_is_an_error_that_says_so() {
        let err = process(&config(|_| {}), &[], &[]).unwrap_err().to_string();
        assert!(
            err.contains("no command") && err.contains("Entrypoint") && err.contains("Cmd"),
            "{err}"
        );
        // A config with no `config` object at all is the same.
        let bare = ImageConfigurationBuilder::default().build().unwrap();
        assert!(process(&bare, &[], &[]).is_err());
        assert!(process(&bare, &strings(&["true"]), &[]).is_ok());
    }

    #[test]
    fn env_gets_a_default_path_and_home_only_when_it_has_none() {
        let p = process(&config(|_| {}), &strings(&["true"]), &[]).unwrap();
        assert_eq!(
            p.env,
            strings(&[&format!("PATH={DEFAULT_PATH}"), "HOME=/root"])
        );
        let c = config(|c| {
            c.set_env(Some(strings(&["PATH=/opt/bin", "A=1", "HOME=/h"])));
        });
        let p = process(&c, &strings(&["true"]), &[]).unwrap();
        assert_eq!(p.env, strings(&["PATH=/opt/bin", "A=1", "HOME=/h"]));
    }

    #[test]
    fn working_dir_is_root_when_empty_and_must_be_absolute() {
        let cwd = |dir: Option<&str>| {
            process(
                &config(|c| {
                    c.set_working_dir(dir.map(String::from));
                }),
                &strings(&["true"]),
                &[],
            )
            .map(|p| p.cwd)
        };
        assert_eq!(cwd(None).unwrap(), Path::new("/"));
        assert_eq!(cwd(Some("")).unwrap(), Path::new("/"));
        assert_eq!(cwd(Some("/srv/app")).unwrap(), Path::new("/srv/app"));
        assert!(cwd(Some("srv")).is_err());
    }

    fn ids(spec: &str, lowers: &[PathBuf]) -> Result<(u32, u32, Vec<u32>, String)> {
        let c = config(|c| {
            c.set_user(Some(spec.to_string()));
        });
        let p = process(&c, &strings(&["true"]), lowers)?;
        let home = p.env.iter().find_map(|e| e.strip_prefix("HOME=")).unwrap();
        Ok((p.uid, p.gid, p.groups, home.to_string()))
    }

    #[test]
    fn numeric_users_need_no_files() {
        assert_eq!(ids("", &[]).unwrap(), (0, 0, vec![0], "/root".into()));
        assert_eq!(ids("1234", &[]).unwrap(), (1234, 0, vec![0], "/".into()));
        assert_eq!(
            ids("1234:99", &[]).unwrap(),
            (1234, 99, vec![99], "/".into())
        );
        assert!(ids("app", &[]).is_err());
        assert!(ids("1:x y", &[]).is_err());
    }

    #[test]
    fn minus_one_as_a_uid_or_gid_is_refused_not_run_as_root() {
        for spec in ["4294967295", "1000:4294967295", "4294967295:1000"] {
            let e = ids(spec, &[]).unwrap_err().to_string();
            assert!(e.contains("(uid_t)-1"), "{spec}: {e}");
        }
        let l = layer("ghost:x:4294967295:1:ghost:/:/bin/sh\n", "");
        let e = ids("ghost", &[l.path().to_path_buf()]).unwrap_err();
        assert!(e.to_string().contains("(uid_t)-1"), "{e}");
    }

    #[test]
    fn names_are_looked_up_in_the_images_own_files() {
        let l = layer(PASSWD, GROUP);
        let lowers = vec![l.path().to_path_buf()];
        // By name: uid, gid and home from passwd, supplementary groups from group.
        assert_eq!(
            ids("app", &lowers).unwrap(),
            (1000, 1001, vec![1001, 50], "/home/app".into())
        );
        // A uid passwd knows takes its gid from there.
        assert_eq!(ids("1000", &lowers).unwrap().1, 1001);
        assert_eq!(ids("app:staff", &lowers).unwrap().1, 50);
        assert_eq!(ids("app:7", &lowers).unwrap().1, 7);
        assert_eq!(ids("root", &lowers).unwrap().2, vec![0, 10]);
        let err = ids("nobody", &lowers).unwrap_err().to_string();
        assert!(
            err.contains("nobody") && err.contains("/etc/passwd"),
            "{err}"
        );
        let err = ids("app:nogroup", &lowers).unwrap_err().to_string();
        assert!(
            err.contains("nogroup") && err.contains("/etc/group"),
            "{err}"
        );
    }

    #[test]
    fn the_top_layer_wins_and_a_deleted_passwd_is_none() {
        let (top, base) = (layer("app:x:7:7::/top:/bin/sh\n", ""), layer(PASSWD, GROUP));
        let lowers = vec![top.path().to_path_buf(), base.path().to_path_buf()];
        assert_eq!(ids("app", &lowers).unwrap().0, 7);
        // A whiteout in the top layer hides the base's passwd.
        std::fs::remove_file(top.path().join("etc/passwd")).unwrap();
        nix::sys::stat::mknod(
            &top.path().join("etc/passwd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        assert!(read_in_layers(&lowers, "etc/passwd").is_none());
        assert!(ids("app", &lowers).is_err());
        assert_eq!(ids("1000", &lowers).unwrap().1, 0);
    }

    #[test]
    fn a_bare_name_is_searched_in_the_images_path() {
        let env = strings(&["PATH=/opt/bin::/bin/"]);
        assert_eq!(
            candidates("ls", &env),
            strings(&["/opt/bin/ls", "./ls", "/bin/ls"])
        );
        assert_eq!(candidates("./x", &env), strings(&["./x"]));
        assert_eq!(candidates("/bin/ls", &env), strings(&["/bin/ls"]));
        assert_eq!(candidates("ls", &[]).len(), DEFAULT_PATH.split(':').count());
    }
}
