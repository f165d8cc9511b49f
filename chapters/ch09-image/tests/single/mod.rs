//! What the build and interop tests share: their own `main` (a build
//! starts containers with clone(), which a threaded process should not do,
//! so these tests run one after another on the main thread), and a store
//! of the test's own with the busybox rootfs imported as its base image.
//! (`tests/common` is the import tests' image maker.)

#![allow(dead_code)] // each test binary uses its part

use ch09_image::commit::import_rootfs;
use ch09_image::{Image, Reference, Store};
use std::io::Write;
use std::path::Path;
use workshop_testkit::TempDir;

/// A test: its name (a sentence) and its body.
pub type Test = (&'static str, fn());

/// Run `tests` in order on this thread, as `cargo test` would print them;
/// a name given on the command line picks the tests whose names hold it.
/// Exits 1 if any failed.
pub fn run_tests(tests: &[Test]) {
    // As the chapter's binary does first thing: SIGCHLD (and Ctrl-C) wait
    // for the wait loop, or a container's exit could be missed.
    workshop::process::block_termination_signals().expect("block the termination signals");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    // libtest's own options, so that `cargo test -- NAME --exact --skip X`
    // means here what it means elsewhere.
    let (mut filters, mut skips, mut exact) = (Vec::new(), Vec::new(), false);
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--exact" => exact = true,
            "--skip" => skips.extend(words.next()),
            "--color" | "--format" | "--test-threads" | "--logfile" => {
                words.next(); // its value
            }
            w if w.starts_with('-') => {}
            _ => filters.push(word),
        }
    }
    let matches = |name: &str, pattern: &String| {
        if exact {
            name == pattern
        } else {
            name.contains(pattern.as_str())
        }
    };
    let chosen: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| matches(name, f)))
        .filter(|(name, _)| !skips.iter().any(|s| matches(name, s)))
        .collect();
    println!(
        "\nrunning {} tests (one at a time, on the main thread)",
        chosen.len()
    );
    let mut failed = Vec::new();
    for (name, test) in &chosen {
        print!("test {name} ... ");
        std::io::stdout().flush().ok();
        match std::panic::catch_unwind(test) {
            Ok(()) => println!("ok"),
            Err(_) => {
                println!("FAILED");
                failed.push(*name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; {} filtered out",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len(),
        tests.len() - chosen.len()
    );
    if !failed.is_empty() {
        println!("failures:\n    {}", failed.join("\n    "));
        std::process::exit(1);
    }
}

pub fn reference(text: &str) -> Reference {
    text.parse().unwrap()
}

/// The base image's name in every test store.
pub const BASE: &str = "workshop/busybox:latest";

/// A store of this test's own (never target/images), holding the busybox
/// rootfs as the image [`BASE`]. Removed when dropped.
pub struct Fixture {
    pub dir: TempDir,
    pub store: Store,
    pub base: Image,
}

impl Fixture {
    pub fn new(what: &str) -> Fixture {
        let rootfs = workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
        let dir = TempDir::new(what);
        let store = Store::open(&dir.path().join("store")).unwrap();
        let base = import_rootfs(&store, &rootfs, &reference(BASE)).unwrap();
        Fixture { dir, store, base }
    }

    /// A build context under the fixture's directory, with a Containerfile
    /// and `files` (path, content).
    pub fn context(
        &self,
        name: &str,
        containerfile: &str,
        files: &[(&str, &str)],
    ) -> std::path::PathBuf {
        let context = self.dir.path().join(name);
        std::fs::create_dir_all(&context).unwrap();
        std::fs::write(context.join("Containerfile"), containerfile).unwrap();
        for (path, content) in files {
            write(&context.join(path), content);
        }
        context
    }

    /// The names in the store's `layers/`.
    pub fn layer_dirs(&self) -> Vec<String> {
        names(&self.store.root.join("layers"))
    }
}

/// Write `content` to `path`, its directories made.
pub fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// The names in `dir`, sorted (none when it is not there).
pub fn names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
