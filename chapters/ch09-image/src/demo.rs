//! The guided demo of chapter 9 (`ch09-image` with no arguments): the rootfs
//! as an image, an image of our own over it, a run whose lowers are its
//! layers and whose process is its config, then a build, the same build
//! again from the cache, two images on one base, and a save.

use anyhow::{Context, Result};
use ch01_clone::observe;
use ch06_net::bring_up_loopback;
use ch08_overlay::{enter_layers, Layers, FLAGS};
use ch09_image::commit::{base_config, commit_dir, new_image};
use ch09_image::run::{base_image, image_lines, table, BASE_IMAGE};
use ch09_image::{build, config, save, Image, Reference, Store};
use workshop::Narrator;

/// The demo's own image: the base, a layer with a user `app` (in the
/// image's /etc/passwd only) and a file, and a config that says who runs
/// what, where, with which environment.
fn demo_image(store: &Store, base: &Image) -> Result<Image> {
    let dir = store
        .root
        .join(format!("layers/.partial-demo-{}", std::process::id()));
    let write = |rel: &str, text: &str| -> Result<()> {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
        std::fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))
    };
    write(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/srv/app:/bin/sh\n",
    )?;
    write("etc/group", "root:x:0:\napp:x:1000:\n")?;
    write("srv/app/hello.txt", "hello from the image's top layer\n")?;
    let lock = store.lock()?;
    let layer = commit_dir(store, &lock, &dir)?; // the same files, the same digest
    let mut config = base_config(Some(base))?;
    let mut c = config.config().clone().unwrap_or_default();
    c.set_env(Some(vec!["GREETING=hello from the image's Env".into()]));
    c.set_working_dir(Some("/srv/app".into()));
    c.set_user(Some("app".into()));
    c.set_cmd(Some(vec![
        "sh".into(),
        "-c".into(),
        "id; pwd; echo $GREETING; cat hello.txt".into(),
    ]));
    config.set_config(Some(c));
    let reference: Reference = "workshop/demo:latest".parse().expect("a valid reference");
    new_image(
        store,
        &lock,
        Some(base),
        Some(&layer),
        config,
        "demo: a user, a file, a config",
        &reference,
    )
}

pub fn demo(store: &Store, say: &Narrator) -> Result<()> {
    say.title("Chapter 9 · images: layers with a name and a config");
    say.step("the base image: chapter 4's rootfs as one layer")?;
    for stale in ch08_overlay::reclaim_stale()? {
        say.note(&format!(
            "removed {}, the layers of a run that was killed",
            stale.display()
        ));
    }
    let base = base_image(store, say)?;
    let short = |hex: &str| format!("{}…", &hex[..12]);
    say.host(&format!(
        "{BASE_IMAGE}: id sha256:{} (its config's digest)",
        short(base.id.digest())
    ));
    say.host(&format!(
        "manifest: blobs/sha256/{}",
        short(base.manifest_digest.digest())
    ));
    for diff_id in base.diff_ids() {
        say.host(&format!("layer:    layers/{}/", short(diff_id.digest())));
    }
    say.note(&format!(
        "(paths relative to the store, {})",
        store.root.display()
    ));
    say.note("Everything is named by the sha256 of what it holds (64 hex digits, 12 shown here): the same bytes, the same name.");

    say.step("an image of our own: one more layer, and a config")?;
    let image = demo_image(store, &base)?;
    let c = image.config.config().clone().unwrap_or_default();
    say.host(&format!(
        "{}: Env {:?}, WorkingDir {:?}, User {:?}, Cmd {:?}",
        image.reference,
        c.env().clone().unwrap_or_default(),
        c.working_dir().clone().unwrap_or_default(),
        c.user().clone().unwrap_or_default(),
        c.cmd().clone().unwrap_or_default()
    ));
    say.shell("ch09-image images");
    say.host(table(&image_lines(store)?).trim_end());
    say.note("Both images list the base layer; the store holds it once.");

    say.step("run it: its layers are the lowers, its config is the process")?;
    let lowers = image.lowers(store);
    let process = config::process(&image.config, &[], &lowers)?;
    say.host(&format!(
        "lowerdir={}",
        lowers
            .iter()
            .map(|l| format!(
                "layers/{}",
                &l.file_name().unwrap_or_default().to_string_lossy()[..12]
            ))
            .collect::<Vec<_>>()
            .join(":")
    ));
    say.note("The top layer first, as in chapter 8: its /etc/passwd hides the base's.");
    say.host(&format!(
        "process: {:?} as {}:{} in {}",
        process.argv,
        process.uid,
        process.gid,
        process.cwd.display(),
    ));
    let env: Vec<&str> = process
        .env
        .iter()
        .map(|e| match e.strip_prefix("PATH=") {
            Some(path) if path == config::DEFAULT_PATH => "PATH=(docker's default)",
            _ => e.as_str(),
        })
        .collect();
    say.host(&format!("env: {}", env.join("  ")));
    let layers = Layers::for_this_run(lowers, false)?;
    let seen = observe(FLAGS, || {
        bring_up_loopback()?; // no cable in the demo: lo only
        enter_layers(&layers)?; // chapter 8
        process.exec() // this chapter: the user, the directory, the environment
    })?;
    say.container(seen.output.trim_end());
    drop(layers);
    say.note("`app` is a name only the image knows: the host's /etc/passwd was never read.");
    build_demo(store, say)?;
    say.finish(
        "Try it: cargo run -p ch09-image -- run --network none workshop/demo\n\
         Next, chapter 10: a bridge for many containers, and published ports.",
    )
}

/// A scratch store for the demo's builds, under the store's `tmp/` (where a
/// killed build's directories are reclaimed by the next build): every demo
/// builds from nothing, and it goes at the end.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = workshop_rootfs::remove_tree(&self.0);
    }
}

/// The entries of a layer's tar, as the image holds it.
fn tar_entries(store: &Store, diff_id: &oci_spec::image::Digest) -> Result<Vec<String>> {
    let file = std::fs::File::open(store.blob_path(diff_id))?;
    let mut names = Vec::new();
    for entry in tar::Archive::new(file).entries()? {
        names.push(entry?.path()?.display().to_string());
    }
    Ok(names)
}

/// Bytes of the files of `dirs`, each directory counted once.
fn bytes_of(dirs: &[std::path::PathBuf]) -> Result<u64> {
    let mut seen = std::collections::BTreeSet::new();
    let mut bytes = 0;
    for dir in dirs {
        if seen.insert(dir.clone()) {
            bytes += workshop_rootfs::stats(dir)?.bytes;
        }
    }
    Ok(bytes)
}

const CONTAINERFILE: &str = "\
FROM workshop/busybox
ENV GREETING=hello
RUN echo hi >/built && rm /etc/group && rm -r /root && mkdir /root
COPY hello.txt /srv/hello.txt
WORKDIR /srv
CMD [\"cat\", \"hello.txt\"]
";

/// The demo's second half: a build, the same build again, two images on
/// one base, and the image saved as an OCI layout.
fn build_demo(store: &Store, say: &Narrator) -> Result<()> {
    say.step("build an image from a Containerfile")?;
    let scratch = Scratch(
        store
            .root
            .join(format!("tmp/demo-{}-0", std::process::id())),
    );
    let s = Store::open(&scratch.0.join("store"))?;
    let rootfs = workshop_rootfs::ensure_default(|line| say.note(line))?;
    ch09_image::commit::import_rootfs(&s, &rootfs, &BASE_IMAGE.parse().expect("valid"))?;
    let context = scratch.0.join("context");
    std::fs::create_dir_all(&context)?;
    std::fs::write(context.join("Containerfile"), CONTAINERFILE)?;
    std::fs::write(context.join("hello.txt"), "hello from COPY\n")?;
    say.note("(in a scratch store of its own, so that every demo builds from nothing)");
    say.host(&format!("Containerfile:\n{}", CONTAINERFILE.trim_end()));
    let tag: Reference = "workshop/built:latest".parse().expect("valid");
    let started = std::time::Instant::now();
    let built = build::build(&s, &context, None, &tag, false)?;
    say.host(&format!(
        "{}: {} steps, {} container(s) started, {} from the cache, {} layers",
        built.image.reference,
        built.steps,
        built.containers,
        built.cached,
        built.image.diff_ids().len()
    ));
    say.note(&format!(
        "(it took {:.0} ms: one container per RUN)",
        started.elapsed().as_secs_f64() * 1e3
    ));
    let diff_ids = built.image.diff_ids();
    if let Some(run_layer) = diff_ids.get(1) {
        let entries = tar_entries(&s, run_layer)?;
        say.host(&format!(
            "the RUN layer's tar ({}…): {}",
            &run_layer.digest()[..12],
            entries.join("  ")
        ));
        say.note("In a layer tar a deletion is a file .wh.NAME and an opaque directory holds .wh..wh..opq (the OCI's words); unpacked as a lower, they are chapter 8's 0/0 device and xattr again.");
    }

    say.step("build it again: nothing changed, so nothing runs")?;
    let started = std::time::Instant::now();
    let again = build::build(&s, &context, None, &tag, false)?;
    say.host(&format!(
        "{} steps, {} container(s) started, {} from the cache, in {:.1} ms; {}",
        again.steps,
        again.containers,
        again.cached,
        started.elapsed().as_secs_f64() * 1e3,
        if again.image.id == built.image.id {
            "the same image id".to_string()
        } else {
            format!("a new image id, {}", again.image.id)
        }
    ));
    say.note("Each step's key is the sha256 of the image before it, the instruction and, for COPY, the files: the same key, the same step, taken from the cache.");

    say.step("two images on one base: the base is on disk once")?;
    let other_context = scratch.0.join("other");
    std::fs::create_dir_all(&other_context)?;
    std::fs::write(
        other_context.join("Containerfile"),
        "FROM workshop/busybox\nRUN echo other > /other\n",
    )?;
    let other = build::build(
        &s,
        &other_context,
        None,
        &"workshop/other".parse().expect("valid"),
        false,
    )?;
    say.host(table(&image_lines(&s)?).trim_end());
    let each: u64 = [&built.image, &other.image]
        .iter()
        .map(|image| bytes_of(&image.lowers(&s)))
        .sum::<Result<u64>>()?;
    let store_bytes = workshop_rootfs::stats(&s.root.join("layers"))?.bytes;
    say.host(&format!(
        "the store's layers: {} KiB; the two images, each on its own: {} KiB",
        store_bytes >> 10,
        each >> 10
    ));
    say.note("Both are FROM workshop/busybox: its layer is one directory that both stack.");

    say.step("save: an OCI image layout that other tools read")?;
    let out = scratch.0.join("saved");
    save::save_oci(&s, &built.image, &out)?;
    let mut files = Vec::new();
    workshop_rootfs::walk(&out, &mut |path, meta| {
        if meta.is_file() {
            let rel = path
                .strip_prefix(&out)
                .unwrap_or(path)
                .display()
                .to_string();
            let shown = match rel.strip_prefix("blobs/sha256/") {
                Some(hex) => format!("blobs/sha256/{}…", &hex[..12.min(hex.len())]),
                None => rel,
            };
            files.push(format!("{shown} ({} bytes)", meta.len()));
        }
        Ok(())
    })?;
    files.sort();
    say.host(&files.join("\n"));
    say.note("skopeo reads it, and umoci unpacks it to the same tree our overlay shows (cargo test -p ch09-image --test interop runs both):");
    say.shell("skopeo inspect oci:DIR:workshop/built:latest");
    Ok(())
}
