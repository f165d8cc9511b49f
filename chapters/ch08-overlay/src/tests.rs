//! The diff on layers made by hand (whiteouts and opaque directories as the
//! kernel writes them: both need root, which these tests run as), and on an
//! upper the kernel itself wrote, through a real overlay mount.

use super::*;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ch08-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Make `rel` beneath it: a directory if it ends in '/', else a file.
    fn make(&self, rel: &str) -> PathBuf {
        let path = self.0.join(rel.trim_end_matches('/'));
        if rel.ends_with('/') {
            std::fs::create_dir_all(&path).unwrap();
        } else {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, rel).unwrap();
        }
        path
    }

    /// A whiteout at `rel`: a 0/0 character device.
    fn whiteout(&self, rel: &str) {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).unwrap();
    }

    /// Mark directory `rel` opaque.
    fn opaque(&self, rel: &str) {
        let path = CString::new(self.make(&format!("{rel}/")).as_os_str().as_bytes()).unwrap();
        let name = CString::new(OPAQUE_XATTR).unwrap();
        // SAFETY: NUL-terminated strings and a one-byte value, alive for the call.
        let answer =
            unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
        assert_eq!(answer, 0, "{}", std::io::Error::last_os_error());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lines(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

#[test]
fn a_new_name_is_added_and_a_name_of_the_lower_is_changed() {
    let (lower, upper) = (Scratch::new(), Scratch::new());
    lower.make("etc/passwd");
    upper.make("etc/passwd");
    upper.make("etc/motd");
    upper.make("srv/app/run");
    assert_eq!(
        lines(&diff(&upper.0, std::slice::from_ref(&lower.0)).unwrap()),
        [
            "C /etc",
            "A /etc/motd",
            "C /etc/passwd",
            "A /srv",
            "A /srv/app",
            "A /srv/app/run"
        ]
    );
}

#[test]
fn a_whiteout_is_a_deletion_of_what_the_lower_had_only() {
    let (lower, upper) = (Scratch::new(), Scratch::new());
    lower.make("bin/ls");
    lower.make("tmp/");
    upper.whiteout("bin/ls");
    upper.whiteout("tmp/never-was"); // hides nothing: not a change
    assert_eq!(
        lines(&diff(&upper.0, std::slice::from_ref(&lower.0)).unwrap()),
        ["C /bin", "D /bin/ls", "C /tmp"]
    );
}

#[test]
fn an_opaque_directory_deletes_what_the_lower_had_beneath_it() {
    let (lower, upper) = (Scratch::new(), Scratch::new());
    lower.make("data/a");
    lower.make("data/b/c");
    lower.make("data/keep/x");
    upper.opaque("data");
    upper.make("data/a");
    upper.make("data/keep/y");
    upper.make("data/new");
    assert_eq!(
        lines(&diff(&upper.0, std::slice::from_ref(&lower.0)).unwrap()),
        [
            "C /data",
            "C /data/a",
            "D /data/b",
            "C /data/keep",
            "D /data/keep/x",
            "A /data/keep/y",
            "A /data/new"
        ]
    );
}

#[test]
fn without_the_xattr_a_directory_is_not_opaque() {
    let (lower, upper) = (Scratch::new(), Scratch::new());
    lower.make("data/a");
    upper.make("data/new");
    assert!(!is_opaque(&upper.0.join("data")));
    assert_eq!(
        lines(&diff(&upper.0, std::slice::from_ref(&lower.0)).unwrap()),
        ["C /data", "A /data/new"]
    );
}

#[test]
fn the_first_lower_is_the_top_and_hides_the_ones_below() {
    let (top, base) = (Scratch::new(), Scratch::new());
    base.make("etc/hosts");
    base.make("etc/old");
    base.make("opt/tool/bin");
    top.whiteout("etc/old"); // the top layer deleted it
    top.opaque("opt"); // and replaced /opt
    top.make("opt/other");
    let lowers = [top.0.clone(), base.0.clone()];
    assert!(in_lowers(&lowers, Path::new("etc/hosts")));
    assert!(!in_lowers(&lowers, Path::new("etc/old")));
    assert!(!in_lowers(&lowers, Path::new("opt/tool")));
    assert!(in_lowers(&lowers, Path::new("opt/other")));
    // In the other order the base is the top, and its names show again.
    let reversed = [base.0.clone(), top.0.clone()];
    assert!(in_lowers(&reversed, Path::new("etc/old")));
    assert!(in_lowers(&reversed, Path::new("opt/tool")));

    let upper = Scratch::new();
    upper.make("etc/old"); // the name is back: new to the image, so A
    assert_eq!(
        lines(&diff(&upper.0, &lowers).unwrap()),
        ["C /etc", "A /etc/old"]
    );
}

#[test]
fn the_options_put_the_first_lower_first_and_refuse_separators() {
    let lowers = [PathBuf::from("/l/top"), PathBuf::from("/l/base")];
    assert_eq!(
        overlay_options(&lowers, Path::new("/r/diff"), Path::new("/r/work")).unwrap(),
        "lowerdir=/l/top:/l/base,upperdir=/r/diff,workdir=/r/work"
    );
    for bad in ["/l/a:b", "/l/a,b"] {
        let err = overlay_options(&[PathBuf::from(bad)], Path::new("/u"), Path::new("/w"));
        assert!(err.is_err(), "{bad} accepted");
    }
}

#[test]
fn layers_are_removed_when_dropped_unless_kept() {
    let scratch = Scratch::new();
    for keep in [false, true] {
        let dir = scratch.0.join(format!("run-{keep}"));
        let layers = Layers::create(&dir, vec![scratch.0.clone()], keep).unwrap();
        assert!(layers.upper.is_dir() && layers.work.is_dir() && layers.merged.is_dir());
        std::fs::write(layers.upper.join("file"), "x").unwrap();
        drop(layers);
        assert_eq!(dir.exists(), keep, "keep: {keep}");
    }
    assert!(Layers::create(&scratch.0.join("none"), vec![], false).is_err());
    // The kept one is never taken over by a new run of the same name.
    let again = Layers::create(&scratch.0.join("run-true"), vec![scratch.0.clone()], false);
    assert!(again.is_err(), "a kept run's directory was reused");
    assert!(scratch.0.join("run-true/diff/file").exists());
}

/// The runs directory goes with the last run that used it (the host keeps
/// no empty /tmp/workshop-overlay), and not before: another run's directory,
/// or a kept one, keeps it.
#[test]
fn the_runs_directory_goes_with_the_last_run() {
    let scratch = Scratch::new();
    let runs = scratch.0.join("runs");
    let lower = vec![scratch.0.clone()];
    let layers = Layers::in_runs_dir(&runs, lower.clone(), false).unwrap();
    let other = runs.join("another-run");
    std::fs::create_dir(&other).unwrap();
    drop(layers);
    assert!(
        runs.is_dir(),
        "removed while another run's directory was in it"
    );
    std::fs::remove_dir(&other).unwrap();
    let layers = Layers::in_runs_dir(&runs, lower.clone(), false).unwrap();
    drop(layers);
    assert!(!runs.exists(), "the last run left {}", runs.display());
    let kept = Layers::in_runs_dir(&runs, lower, true).unwrap();
    drop(kept);
    assert!(runs.is_dir(), "a kept run's directory keeps it");
}

/// The kernel's own upper: a real overlay, mounted in a mount namespace of a
/// thread of its own (gone with the thread), written through, then read back.
/// What it deleted, changed and made opaque is what diff says, and the lower
/// is untouched.
#[test]
fn diff_reads_the_upper_the_kernel_wrote() {
    let (lower, run) = (Scratch::new(), Scratch::new());
    lower.make("etc/hosts");
    lower.make("etc/gone");
    lower.make("var/lib/a");
    lower.make("var/lib/b");
    let layers = Layers::create(&run.0.join("layers"), vec![lower.0.clone()], false).unwrap();
    let merged = layers.merged.clone();
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .unwrap();
            mount_overlay(&layers).unwrap();
            std::fs::write(merged.join("etc/hosts"), "changed").unwrap();
            std::fs::remove_file(merged.join("etc/gone")).unwrap();
            std::fs::write(merged.join("etc/new"), "new").unwrap();
            std::fs::remove_dir_all(merged.join("var/lib")).unwrap();
            std::fs::create_dir(merged.join("var/lib")).unwrap();
            std::fs::write(merged.join("var/lib/c"), "c").unwrap();
            nix::mount::umount(&merged).unwrap();
        })
        .join()
        .unwrap();
    });
    assert_eq!(
        lines(&diff(&layers.upper, &layers.lowers).unwrap()),
        [
            "C /etc",
            "D /etc/gone",
            "C /etc/hosts",
            "A /etc/new",
            "C /var",
            "C /var/lib",
            "D /var/lib/a",
            "D /var/lib/b",
            "A /var/lib/c"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(lower.0.join("etc/hosts")).unwrap(),
        "etc/hosts"
    );
    assert!(lower.0.join("etc/gone").exists() && lower.0.join("var/lib/b").exists());
}

/// Two runs reclaim the same killed run's directory at once: the one that
/// finds it gone already has nothing to do, and no error.
#[test]
fn a_stale_directory_another_run_removed_first_is_no_error() {
    let scratch = Scratch::new();
    let dir = scratch.0.join("12345");
    std::fs::create_dir_all(dir.join("diff/a")).unwrap();
    assert!(remove_stale(&dir).unwrap(), "it removed it");
    assert!(!dir.exists());
    assert!(!remove_stale(&dir).unwrap(), "gone already: not an error");
}

/// What reclaim_stale does with a killed run's directory.
fn remove_stale(dir: &std::path::Path) -> anyhow::Result<bool> {
    workshop::fs::remove_if_there(dir, |p| std::fs::remove_dir_all(p))
}
