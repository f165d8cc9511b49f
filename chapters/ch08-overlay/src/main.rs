//! Chapter 8: the container's root as an overlay of read-only layers and an
//! upper of its own.
//!
//! `ch08-overlay` runs the guided demo (copy-up, a whiteout, an opaque
//! directory, and the diff read back from the upper); `ch08-overlay -- COMMAND`
//! runs COMMAND in chapter 7's container, limits, veth, hostname and all,
//! whose root is now an overlay: `--layer DIR` (repeatable, the first is the
//! top) stacks more read-only layers over the rootfs, and `--keep` keeps the
//! upper after the run. The rootfs itself is never written.

use anyhow::Result;
use ch01_clone::observe;
use ch04_rootfs::RootfsOption;
use ch06_net::bring_up_loopback;
use ch06_net::netlink::Netlink;
use ch08_overlay::{
    diff, enter_layers, is_opaque, is_whiteout, parse_layer, reclaim_what_killed_runs_left,
    run_over_layers, Layers, RunOptions, FLAGS,
};
use clap::Parser;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::process::{exec, Exit};
use workshop::{ChapterCli, Common, Narrator};

/// Chapter 8: the container's root as an overlay of read-only layers and an
/// upper of its own.
#[derive(Parser)]
#[command(
    version,
    after_help = "Example: ch08-overlay --layer ./tools --keep -- sh"
)]
struct Cli {
    /// A read-only layer over the rootfs; repeat it, the first is the top
    #[arg(long = "layer", value_name = "DIR", value_parser = parse_layer)]
    layers: Vec<PathBuf>,

    // `--keep`, and chapter 7's options: limits, network, hostname.
    #[command(flatten)]
    run: RunOptions,

    #[command(flatten)]
    rootfs: RootfsOption,

    #[command(flatten)]
    common: Common,
}

impl ChapterCli for Cli {
    fn common(&self) -> &Common {
        &self.common
    }

    fn reject_conflicts(&self) {
        self.run.network.reject_conflicts::<Cli>();
    }
}

fn main() -> ExitCode {
    workshop::main(
        "ch08-overlay",
        "to create namespaces, cgroups and mounts",
        run,
    )
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    let mut nl = Netlink::open()?;
    if cli.common.mode() != Mode::Demo {
        // The demo does it after its first step header, so that what it
        // writes before that is the same however the last runs ended.
        reclaim_what_killed_runs_left(&mut nl, say)?;
    }
    let root = cli.rootfs.resolve(|line| say.note(line))?;
    // The lowers, the top first: the --layer options, then the rootfs.
    let lowers: Vec<PathBuf> = cli.layers.iter().cloned().chain([root]).collect();
    match cli.common.mode() {
        Mode::Demo => demo(lowers, &mut nl, say).map(|()| 0),
        // Chapter 7's container over the layers (the lib's run_over_layers).
        Mode::Run(argv) | Mode::Shell(argv) => {
            run_over_layers(&cli.run, lowers, &mut nl, say, || exec(&argv))
        }
    }
}

/// What the demo shows of a file on the host: its size (or that it is a
/// whiteout) and its inode, its path shown relative to `under`.
fn stat_line(path: &Path, under: &Path) -> String {
    let shown = path.strip_prefix(under).unwrap_or(path);
    match std::fs::symlink_metadata(path) {
        Err(_) => format!("{}: (none)", shown.display()),
        Ok(meta) if is_whiteout(&meta) => format!(
            "{}: c 0,0 (a whiteout), inode {}",
            shown.display(),
            meta.ino()
        ),
        Ok(meta) => format!(
            "{}: {} bytes, inode {}",
            shown.display(),
            meta.len(),
            meta.ino()
        ),
    }
}

fn demo(lowers: Vec<PathBuf>, nl: &mut Netlink, say: &Narrator) -> Result<()> {
    say.title("Chapter 8 · overlay: what a container is made of");
    let base = lowers
        .last()
        .cloned()
        .expect("the rootfs is always a lower");
    let layers = Layers::for_this_run(lowers, false)?;

    say.step("the layers of one container")?;
    reclaim_what_killed_runs_left(nl, say)?;
    say.host(&format!(
        "lower (read-only, shared): {}",
        layers
            .lowers
            .iter()
            .map(|l| l.display().to_string())
            .collect::<Vec<_>>()
            .join(" over ")
    ));
    say.host(&format!("the run's own: {}/", layers.dir.display()));
    say.host("upper (its own): diff/   work: work/   mount point: merged/");
    say.note("(paths below are relative to the run's own directory)");
    say.syscall(&format!(
        "mount(\"overlay\", \"merged\", \"overlay\", 0,\n      \"{}\"\n      \"{}\")",
        ch08_overlay::overlay_options(&layers.lowers, Path::new("diff"), Path::new("work"))?,
        ch08_overlay::VOLATILE
    ));
    say.note("In lowerdir=a:b the first is the top: a name in a hides the same name in b.");
    say.note("volatile: the upper goes at exit, so nothing need be synced to disk.");

    let passwd = base.join("etc/passwd");
    let before = stat_line(&passwd, Path::new(""));
    say.step("a container writes, deletes, renames and replaces a directory")?;
    let script =
        "cat /etc/nsswitch.conf >/dev/null; echo '# the container was here' >> /etc/passwd; \
                  rm /etc/group; mv /etc/hosts /etc/hosts.old; \
                  rm -rf /root && mkdir /root && echo hi > /root/note; echo new > /hello";
    say.container(script);
    let seen = observe(FLAGS, || {
        bring_up_loopback()?; // no cable in the demo: lo only
        enter_layers(&layers)?;
        exec(&["sh".into(), "-c".into(), script.into()])
    })?;
    if seen.exit != Exit::Code(0) {
        say.warn(&format!(
            "the container ended with {}: {}",
            seen.exit,
            seen.output.trim()
        ));
    }

    say.step("what the host sees: the base is untouched, the upper holds the changes")?;
    say.host(&format!("before: {before}"));
    say.host(&format!("after:  {}", stat_line(&passwd, Path::new(""))));
    say.host(&format!(
        "copied up: {}",
        stat_line(&layers.upper.join("etc/passwd"), &layers.dir)
    ));
    say.note("The first write copied the whole file up; the lower's file kept its inode.");
    say.host(&format!(
        "read only: {}",
        stat_line(&layers.upper.join("etc/nsswitch.conf"), &layers.dir)
    ));
    say.note("A file only read is read from the lower: the upper holds nothing for it.");
    say.host(&stat_line(&layers.upper.join("etc/group"), &layers.dir));
    say.note("A deletion of a lower's file is a whiteout in the upper: a 0/0 character device.");
    say.host(&format!(
        "diff/root: trusted.overlay.opaque={}",
        if is_opaque(&layers.upper.join("root")) {
            "y"
        } else {
            "(none)"
        }
    ));
    say.note(
        "A directory removed and made again is opaque: the lowers' contents of it are hidden.",
    );

    say.step("the diff, read from the upper alone (docker diff)")?;
    for change in diff(&layers.upper, &layers.lowers)? {
        say.host(&change.to_string());
    }

    say.step("a second container over the same base sees none of it")?;
    let second = Layers::create(&layers.dir.join("second"), layers.lowers.clone(), false)?;
    let script = "tail -n1 /etc/passwd; ls /etc/group /hello 2>&1";
    say.container(script);
    let seen = observe(FLAGS, || {
        bring_up_loopback()?;
        enter_layers(&second)?;
        exec(&["sh".into(), "-c".into(), script.into()])
    })?;
    say.container(seen.output.trim_end());
    say.host(&format!(
        "its upper: {} change(s); the first's: {}",
        diff(&second.upper, &second.lowers)?.len(),
        diff(&layers.upper, &layers.lowers)?.len()
    ));
    say.note("Each container has its own upper over the one shared, read-only base.");
    drop(second);
    drop(layers); // both uppers go: the base is as it was

    say.finish("Next, chapter 9: images, their layers stacked as these lowers.")
}
