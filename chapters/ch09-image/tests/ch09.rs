//! Chapter 9, checked against the kernel: an image runs with its config
//! honoured (Env, WorkingDir, User, Entrypoint + Cmd), with every option of
//! chapter 7; its layers are never written and the run's own directory goes
//! with it; unknown images and bad references are refused as they should be.
//! The images are made here, in a store of the test's own (`--store`).

use ch09_image::commit::{base_config, commit_dir, import_rootfs, new_image};
use ch09_image::{Image, Reference, Store};
use std::path::{Path, PathBuf};
use std::time::Duration;
use workshop_testkit::net_sandbox::NetSandbox;
use workshop_testkit::*;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_ch09-image");
const LIMIT: Duration = Duration::from_secs(60);

workshop_testkit::contract! {
    bin: BIN,
    setup: workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs"),
    network: host,
    demo: [],
    fault_matrix: ["--network", "none", "--pids-limit", "50"],
    bad_input: [
        ("--store", "/etc/passwd"),
        // ch07's options, which ch09 has too.
        ("--cpus", "0"),
        ("--pids-limit", "0"),
        ("--memory", "lots"),
        ("--hostname", "bad_name"),
        ("--network", "bridge"),
    ],
    without_root: ["--network", "none", "--", "true"],
    container_pid: ["--network", "none"],
}

/// A store of the test's own, with the busybox rootfs as `t/base`; removed
/// when dropped.
struct TestStore {
    dir: TempDir,
    store: Store,
    base: Image,
}

fn reference(text: &str) -> Reference {
    text.parse().unwrap()
}

impl TestStore {
    fn new(what: &str) -> TestStore {
        let rootfs = workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
        let dir = TempDir::new(what);
        let store = Store::open(dir.path()).unwrap();
        let base = import_rootfs(&store, &rootfs, &reference("t/base")).unwrap();
        TestStore { dir, store, base }
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// An image over the base: a layer holding `files` (path, text), if
    /// any, and the config as `edit` leaves it.
    fn image(
        &self,
        name: &str,
        files: &[(&str, &str)],
        edit: impl FnOnce(&mut oci_spec::image::Config),
    ) -> Image {
        let layer = (!files.is_empty()).then(|| {
            let from = self.dir.path().join(format!("layers/.partial-{name}"));
            for (rel, text) in files {
                let path = from.join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            let lock = self.store.lock().unwrap();
            commit_dir(&self.store, &lock, &from).unwrap()
        });
        let mut config = base_config(Some(&self.base)).unwrap();
        let mut c = config.config().clone().unwrap_or_default();
        edit(&mut c);
        config.set_config(Some(c));
        let lock = self.store.lock().unwrap();
        new_image(
            &self.store,
            &lock,
            Some(&self.base),
            layer.as_ref(),
            config,
            "test",
            &reference(name),
        )
        .unwrap()
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// ch09 in the test store: lo only, no narration; it must succeed.
fn ch09(store: &TestStore, args: &[&str]) -> String {
    let out = run(
        chapter(BIN)
            .args(["--store", store.path(), "--quiet"])
            .args(args),
        LIMIT,
    );
    assert!(
        out.status.success(),
        "ch09 {args:?}: {}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    stdout_of(&out)
}

/// Env, WorkingDir (made when missing), a numeric User, Entrypoint + Cmd;
/// a command given replaces Cmd and keeps the Entrypoint.
#[test]
fn run_honours_the_images_env_workdir_user_entrypoint_and_cmd() {
    require_root();
    let store = TestStore::new("ch09-config");
    store.image("t/app", &[], |c| {
        c.set_env(Some(strings(&["GREETING=hi", "PATH=/bin"])));
        c.set_working_dir(Some("/made/here".into()));
        c.set_user(Some("1234:567".into()));
        c.set_entrypoint(Some(strings(&["/bin/sh", "-c"])));
        c.set_cmd(Some(strings(&[
            "echo cmd; id -u; id -g; pwd; echo $GREETING $PATH",
        ])));
    });
    let out = ch09(&store, &["run", "--network", "none", "t/app"]);
    assert_eq!(out, "cmd\n1234\n567\n/made/here\nhi /bin\n");
    let out = ch09(
        &store,
        &["run", "--network", "none", "t/app", "--", "echo given"],
    );
    assert_eq!(
        out, "given\n",
        "the command replaces Cmd, after the Entrypoint"
    );
}

/// A user named in the image's own /etc/passwd (a name the host does not
/// have) runs with its uid, gid, supplementary groups and HOME.
#[test]
fn a_user_name_is_looked_up_in_the_images_own_passwd() {
    require_root();
    let store = TestStore::new("ch09-user");
    store.image(
        "t/user",
        &[
            (
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\nch09app:x:4321:4322::/home/ch09app:/bin/sh\n",
            ),
            (
                "etc/group",
                "root:x:0:\nch09app:x:4322:\nch09extra:x:4323:ch09app\n",
            ),
        ],
        |c| {
            c.set_user(Some("ch09app".into()));
        },
    );
    let out = ch09(
        &store,
        &[
            "run",
            "--network",
            "none",
            "t/user",
            "--",
            "sh",
            "-c",
            "id; echo $HOME",
        ],
    );
    assert_eq!(
        out,
        "uid=4321(ch09app) gid=4322(ch09app) groups=4322(ch09app),4323(ch09extra)\n/home/ch09app\n"
    );
}

/// An image with neither Entrypoint nor Cmd, run with no command: exit 1,
/// an error that says so.
#[test]
fn an_image_with_no_command_and_none_given_is_an_error_that_says_so() {
    require_root();
    let store = TestStore::new("ch09-nocmd");
    let out = run(
        chapter(BIN).args([
            "--store",
            store.path(),
            "run",
            "--network",
            "none",
            "t/base",
        ]),
        LIMIT,
    );
    let err = stderr_of(&out);
    assert_eq!(exit_code(out.status), 1, "{err}");
    assert!(err.contains("no command") && err.contains("Cmd"), "{err}");
}

/// Every option of chapter 7 (and 8's --keep) is taken by `run`: the
/// limits, the hostname, --keep; and the veth with --ip, in a network
/// namespace of the test's own.
#[test]
fn run_takes_every_option_of_chapter_7() {
    require_root();
    let store = TestStore::new("ch09-options");
    let out = ch09(
        &store,
        &[
            "run",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
            "--memory",
            "64M",
            "--network",
            "none",
            "--hostname",
            "box9",
            "t/base",
            "--",
            "sh",
            "-c",
            "hostname; cat /proc/self/cgroup",
        ],
    );
    assert!(out.starts_with("box9\n"), "{out}");
    assert!(
        out.contains("workshop"),
        "in a cgroup of the workshop's: {out}"
    );

    let sandbox = NetSandbox::new();
    let mut command = chapter(BIN);
    command.args([
        "--store",
        store.path(),
        "--quiet",
        "run",
        "--network",
        "veth",
        "--ip",
        "10.209.9.2/24",
        "t/base",
        "--",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    sandbox.enter_on_exec(&mut command);
    let out = run(&mut command, LIMIT);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("10.209.9.2/24"),
        "{}",
        stdout_of(&out)
    );

    let tool = spawn(chapter(BIN).args([
        "--store",
        store.path(),
        "run",
        "--network",
        "none",
        "--keep",
        "t/base",
        "--",
        "touch",
        "/kept",
    ]));
    let pid = tool.id();
    let out = wait_output(tool, LIMIT);
    let dir = run_dir(pid);
    let kept = dir.join("diff/kept").exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(kept, "--keep keeps the upper: {}", stderr_of(&out));
}

/// The layers directory of the run whose tool had `pid` (chapter 8's).
fn run_dir(pid: u32) -> PathBuf {
    Path::new(ch08_overlay::RUNS_DIR).join(pid.to_string())
}

/// A container that writes, deletes and renames in every layer of a
/// 2-layer image leaves each layer as it was; it saw its own changes, and
/// the run's directory is gone after it exits.
#[test]
fn the_images_layers_are_never_written_and_the_run_leaves_nothing() {
    require_root();
    let store = TestStore::new("ch09-layers");
    let image = store.image("t/two", &[("srv/top", "top\n")], |_| {});
    let lowers = image.lowers(&store.store);
    assert_eq!(lowers.len(), 2);
    let before: Vec<_> = lowers.iter().map(|l| tree_checksum(l)).collect();
    let script = "echo '# ch09' >> /etc/passwd && rm /etc/group && mv /srv/top /srv/moved \
                  && echo more >> /srv/moved && rm -rf /root && mkdir /root && touch /new \
                  && ls /etc /srv && echo done";
    let tool = spawn(chapter(BIN).args([
        "--store",
        store.path(),
        "--quiet",
        "run",
        "--network",
        "none",
        "t/two",
        "--",
        "sh",
        "-c",
        script,
    ]));
    let pid = tool.id();
    let out = wait_output(tool, LIMIT);
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}{}", stderr_of(&out));
    assert!(text.ends_with("done\n") && text.contains("moved"), "{text}");
    assert!(
        !text.contains("group"),
        "the container saw its own changes: {text}"
    );
    let after: Vec<_> = lowers.iter().map(|l| tree_checksum(l)).collect();
    for ((layer, before), after) in lowers.iter().zip(&before).zip(&after) {
        assert!(before == after, "the layer {} was written", layer.display());
    }
    assert!(!run_dir(pid).exists(), "the run left {:?}", run_dir(pid));
}

/// An image the store does not have: exit 1, and the error lists what it has.
#[test]
fn an_unknown_image_is_an_error_that_lists_the_store() {
    require_root();
    let store = TestStore::new("ch09-unknown");
    for args in [
        &["run", "nope", "--", "true"][..],
        &["rmi", "nope:v2"],
        &["save", "nope", "-o", "/tmp/x"],
    ] {
        let out = run(
            chapter(BIN).args(["--store", store.path()]).args(args),
            LIMIT,
        );
        let err = stderr_of(&out);
        assert_eq!(exit_code(out.status), 1, "{args:?}: {err}");
        assert!(
            err.contains("no image nope:") && err.contains("t/base:latest"),
            "{args:?}: the error lists the store's images: {err}"
        );
    }
}

/// A reference that does not parse is bad usage: exit 2, the value named,
/// before anything is done.
#[test]
fn bad_references_exit_2() {
    require_root();
    let store = TestStore::new("ch09-badref");
    for args in [
        &["run", "Upper", "--", "true"][..],
        &["rmi", "a//b"],
        &["build", "-t", "x:", "."],
        &["save", "a:b c", "-o", "/tmp/x"],
        &["import", "/tmp", "--name", "-x"],
    ] {
        let out = run(
            chapter(BIN).args(["--store", store.path()]).args(args),
            LIMIT,
        );
        let err = stderr_of(&out);
        assert_eq!(exit_code(out.status), 2, "{args:?}: {err}");
        let first = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            first.contains("invalid value") || first.contains("unexpected"),
            "{args:?}: {err}"
        );
    }
}

/// `--quiet` works before the subcommand and after it; the run options
/// before a subcommand are refused (exit 2), not ignored.
#[test]
fn quiet_goes_before_or_after_a_subcommand_and_run_options_do_not() {
    require_root();
    let store = TestStore::new("ch09-cli");
    for args in [&["--quiet", "images"][..], &["images", "--quiet"]] {
        let out = run(
            chapter(BIN).args(["--store", store.path()]).args(args),
            LIMIT,
        );
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        let text = stdout_of(&out);
        assert!(
            text.starts_with("NAME") && text.contains("t/base"),
            "{args:?}: {text}"
        );
        assert_eq!(stderr_of(&out), "", "{args:?}: --quiet says nothing");
    }
    let out = run(
        chapter(BIN).args(["--store", store.path(), "--cpus", "1", "images"]),
        LIMIT,
    );
    let err = stderr_of(&out);
    assert_eq!(exit_code(out.status), 2, "{err}");
    assert!(err.contains("--cpus") && err.contains("images"), "{err}");
}

/// `images` lists name, tag, 12 hex digits of the id, the layers and a size;
/// `rmi` removes one image and keeps the base layer another still uses.
#[test]
fn images_lists_the_store_and_rmi_keeps_what_another_image_uses() {
    require_root();
    let store = TestStore::new("ch09-images");
    let app = store.image("t/app:v1", &[("app", "app\n")], |_| {});
    let out = ch09(&store, &["images"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("t/app"))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &cells[..4],
        ["t/app", "v1", &app.id.digest()[..12], "2"],
        "{out}"
    );
    let out = ch09(&store, &["rmi", "t/app:v1"]);
    assert!(out.starts_with("Untagged: t/app:v1\n"), "{out}");
    let base_layer = store.base.lowers(&store.store).remove(0);
    assert!(base_layer.is_dir(), "the base's layer stays: {out}");
    assert!(
        !app.lowers(&store.store)[0].exists(),
        "the app's own layer goes: {out}"
    );
    assert!(!ch09(&store, &["images"]).contains("t/app"));
}

/// From a file to a run, through the command line: a docker-archive (gzip
/// layers: busybox and one of its own) imported with `import`, listed by
/// `images` with its two layers, and run with its own Cmd.
#[test]
fn an_imported_docker_archive_runs_with_its_own_cmd() {
    require_root();
    let store = TestStore::new("ch09-e2e");
    let files = TempDir::new("ch09-e2e-files");
    std::fs::write(files.path().join("hello"), "hello from the archive\n").unwrap();
    let mut image = common::TestImage::new(vec![
        common::busybox_layer(),
        common::tar_of_dir(files.path()),
    ])
    .gzipped();
    image.cmd = strings(&["/bin/sh", "-c", "cat /hello"]);
    let archive = files.path().join("image.tar");
    common::docker_archive(&[(&["t/archived:v1"], &image)]).write_tar(&archive);

    let out = ch09(&store, &["import", archive.to_str().unwrap()]);
    assert!(out.starts_with("t/archived:v1 sha256:"), "{out}");
    let out = ch09(&store, &["images"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("t/archived"))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(line.split_whitespace().nth(3), Some("2"), "{out}");
    let out = ch09(&store, &["run", "--network", "none", "t/archived:v1"]);
    assert_eq!(out, "hello from the archive\n");
}

/// An image whose User is not root: the kernel clears PR_SET_PDEATHSIG when
/// the container changes its uid, so a SIGKILLed tool left the container
/// running on (and the next run removed its layers under it). It must die
/// with the tool, as a root image's does.
#[test]
fn a_container_that_changed_its_user_dies_with_a_sigkilled_tool() {
    require_root();
    let store = TestStore::new("ch09-pdeathsig");
    store.image("t/user", &[], |c| {
        c.set_user(Some("4321:4321".into()));
    });
    let mut tool = spawn(
        std::process::Command::new(BIN)
            .args([
                "--store",
                store.path(),
                "--quiet",
                "run",
                "--network",
                "none",
            ])
            .args(["t/user", "--", "sleep", "30"]),
    );
    // The container, once it has exec'd its command: after the change of user.
    let container = wait_for_container(tool.id(), "sleep", LIMIT);
    let status = std::fs::read_to_string(format!("/proc/{container}/status")).unwrap();
    assert!(
        status.lines().any(|l| l.starts_with("Uid:\t4321\t")),
        "the container does not run as uid 4321:\n{status}"
    );
    tool.kill().unwrap(); // SIGKILL
    tool.wait().unwrap(); // not its output: the container holds the pipes open

    let survived = !wait_until_gone(container, Duration::from_secs(5));
    if survived {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(container as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(
        !survived,
        "the container (uid 4321, PID {container}) outlived its SIGKILLed tool"
    );
    // The next run reclaims what the killed one left (cgroup, layers).
    ch09(
        &store,
        &["run", "--network", "none", "t/user", "--", "true"],
    );
}
