//! The images part of `cargo xtask bench` (chapter 9): a store of the
//! bench's own with a 3-layer image for the start-time ladder, then the
//! figures issue 13 asks for, each in one run: a rebuild with nothing
//! changed, an import of a 100 MB image against `tar -x` of its layers, and
//! the store's disk use against the sum of its images.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The bench's own image store, made from nothing each time.
pub struct Images {
    pub ch09: PathBuf,
    pub work: PathBuf,
    pub store: PathBuf,
}

/// The image of 3 layers the ladder starts: the base and two RUN layers.
pub const THREE_LAYERS: &str = "bench/three:latest";

impl Images {
    /// A fresh store under `work` holding the base image and [`THREE_LAYERS`].
    pub fn prepare(ch09: &Path, work: &Path) -> Result<Images> {
        let _ = std::fs::remove_dir_all(work);
        std::fs::create_dir_all(work)?;
        let images = Images {
            ch09: ch09.to_path_buf(),
            work: work.to_path_buf(),
            store: work.join("store"),
        };
        images.ch09(&["--", "/bin/true"])?; // makes workshop/busybox
        let context = images.context(
            "three",
            "FROM workshop/busybox\nRUN echo one > /one\nRUN echo two > /two\n",
            &[],
        )?;
        images.ch09(&["build", "-t", THREE_LAYERS, &context.display().to_string()])?;
        Ok(images)
    }

    /// `ch09-image --quiet --store STORE ARGS...`, which must succeed.
    pub fn ch09(&self, args: &[&str]) -> Result<Duration> {
        self.ch09_in(&self.store, args)
    }

    fn ch09_in(&self, store: &Path, args: &[&str]) -> Result<Duration> {
        let start = Instant::now();
        let out = Command::new(&self.ch09)
            .arg("--quiet")
            .arg("--store")
            .arg(store)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("failed to run ch09-image")?;
        let took = start.elapsed();
        if !out.status.success() {
            bail!(
                "ch09-image {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(took)
    }

    /// The argv that starts `/bin/true` in [`THREE_LAYERS`] with `options`.
    pub fn run_argv(&self, options: &[&str]) -> Vec<String> {
        let mut argv = vec![
            self.ch09.display().to_string(),
            "--quiet".into(),
            "--store".into(),
            self.store.display().to_string(),
            "run".into(),
        ];
        argv.extend(options.iter().map(|o| o.to_string()));
        argv.extend([THREE_LAYERS.into(), "--".into(), "/bin/true".into()]);
        argv
    }

    /// A build context `name` with a Containerfile and `files` beside it.
    fn context(&self, name: &str, containerfile: &str, files: &[(&str, &str)]) -> Result<PathBuf> {
        let dir = self.work.join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("Containerfile"), containerfile)?;
        for (file, text) in files {
            std::fs::write(dir.join(file), text)?;
        }
        Ok(dir)
    }

    /// The figures, one line each.
    pub fn figures(&self) -> Result<Vec<String>> {
        let mut lines = Vec::new();

        // A rebuild of an unchanged 5-step Containerfile: every step cached.
        let context = self.context(
            "five",
            "FROM workshop/busybox\nENV GREETING=hello\nCOPY hello.txt /srv/hello.txt\n\
             RUN echo built > /srv/built\nWORKDIR /srv\nCMD [\"cat\", \"hello.txt\"]\n",
            &[("hello.txt", "hello\n")],
        )?;
        let context = context.display().to_string();
        let build = ["build", "-t", "bench/five", &context];
        let first = self.ch09(&build)?;
        let mut again: Vec<Duration> = (0..7).map(|_| self.ch09(&build)).collect::<Result<_>>()?;
        again.sort();
        lines.push(format!(
            "rebuild of an unchanged 5-step Containerfile: {:.1} ms (median of 7; the first build took {:.0} ms)",
            ms(again[3]),
            ms(first)
        ));

        // Disk: the store against the sum of its images (before the big one).
        let names = ["workshop/busybox", THREE_LAYERS, "bench/five"];
        let mut sum = 0;
        for image in names {
            sum += self.layers_du(image)?;
        }
        lines.push(format!(
            "disk: {} images on one base ({}) take {} KiB of layers in the store; \
             each on its own would take {} KiB in all (du)",
            names.len(),
            names.join(", "),
            du_bytes(&self.store.join("layers"))? >> 10,
            sum >> 10
        ));

        // Import of a 100 MB image against `tar -x` of the same layer.
        let big = self.work.join("big");
        write_files(&big, 100, 1 << 20)?;
        let big_arg = big.display().to_string();
        self.ch09(&["import", &big_arg, "--name", "bench/big"])?;
        let archive = self.work.join("big.tar");
        let archive_arg = archive.display().to_string();
        self.ch09(&[
            "save",
            "bench/big",
            "-o",
            &archive_arg,
            "--format",
            "docker-archive",
        ])?;
        let layers = self.work.join("big-layers");
        let _ = std::fs::remove_dir_all(&layers);
        std::fs::create_dir_all(&layers)?;
        run(Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&layers))?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layers.join("manifest.json"))?)?;
        let layer_tars: Vec<PathBuf> = manifest[0]["Layers"]
            .as_array()
            .context("the saved archive's manifest.json has no Layers")?
            .iter()
            .filter_map(|l| l.as_str().map(|l| layers.join(l)))
            .collect();
        let (mut tar_x, mut import) = (Vec::new(), Vec::new());
        for round in 0..5 {
            let into = self.work.join(format!("untar-{round}"));
            std::fs::create_dir_all(&into)?;
            sync();
            let start = Instant::now();
            for layer in &layer_tars {
                run(Command::new("tar")
                    .arg("-xf")
                    .arg(layer)
                    .arg("-C")
                    .arg(&into))?;
            }
            tar_x.push(start.elapsed());
            let store = self.work.join(format!("import-{round}"));
            sync();
            import.push(self.ch09_in(&store, &["import", &archive_arg])?);
            let _ = std::fs::remove_dir_all(&into);
            let _ = std::fs::remove_dir_all(&store);
        }
        let (tar_x, import) = (best(&tar_x), best(&import));
        lines.push(format!(
            "import of a {} MB docker-archive: {:.0} ms, {:.2}× `tar -x` of its layer ({:.0} ms); best of 5 each",
            du_bytes(&big)? >> 20,
            ms(import),
            ms(import) / ms(tar_x),
            ms(tar_x)
        ));

        Ok(lines)
    }

    /// The layer directories of `image`, as chapter 9's store reads them.
    fn layer_dirs(&self, image: &str) -> Result<Vec<PathBuf>> {
        let store = ch09_image::Store::open(&self.store)?;
        let reference: ch09_image::Reference =
            image.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        Ok(store.resolve(&reference)?.lowers(&store))
    }

    fn layers_du(&self, image: &str) -> Result<u64> {
        self.layer_dirs(image)?.iter().map(|d| du_bytes(d)).sum()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn best(times: &[Duration]) -> Duration {
    *times.iter().min().expect("at least one run")
}

fn sync() {
    let _ = Command::new("sync").status();
}

fn run(command: &mut Command) -> Result<()> {
    let status = command.status()?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// `du -sb`: the bytes on disk `path` takes, in blocks of 1 byte units.
fn du_bytes(path: &Path) -> Result<u64> {
    let out = Command::new("du").arg("-sB1").arg(path).output()?;
    if !out.status.success() {
        bail!("du {} failed", path.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("du printed {text:?}"))
}

/// `count` files of `size` bytes of xorshift noise in `dir` (made anew):
/// nothing compresses them, as a real image's binaries barely do.
fn write_files(dir: &Path, count: usize, size: usize) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..count {
        let mut bytes = Vec::with_capacity(size);
        while bytes.len() < size {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        std::fs::write(dir.join(format!("file-{i:03}")), &bytes)?;
    }
    Ok(())
}
