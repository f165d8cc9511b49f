//! Real clients agree: an image built here (over the busybox rootfs, with
//! a RUN that writes, deletes a base file and replaces a directory, a
//! COPY, ENV and CMD), saved as an OCI layout, is read by `skopeo inspect`
//! with our layers and config, and unpacked by `umoci unpack` into the same
//! file tree as our overlay of its layers shows; saved as a docker-archive,
//! skopeo reads that too. Everything local: no registry, no network.
//!
//! skopeo and umoci come from Debian (`apt-get install -y skopeo umoci`,
//! as .ci/run does): without them these tests FAIL, saying so.

mod single;

use ch01_clone::observe;
use ch08_overlay::{mount_overlay, Layers};
use ch09_image::build::build;
use ch09_image::save::{save_docker_archive, save_oci};
use ch09_image::Image;
use nix::sched::CloneFlags;
use serde_json::Value;
use single::{reference, run_tests, write, Fixture};
use std::path::Path;
use std::process::Command;
use workshop::process::{argv, exec, Exit};

fn main() {
    run_tests(&[
        (
            "skopeo_reads_our_oci_layout_and_umoci_unpacks_the_tree_our_overlay_shows",
            skopeo_reads_our_oci_layout_and_umoci_unpacks_the_tree_our_overlay_shows,
        ),
        (
            "skopeo_reads_our_docker_archive",
            skopeo_reads_our_docker_archive,
        ),
        (
            "saving_twice_into_one_layout_keeps_both_names",
            saving_twice_into_one_layout_keeps_both_names,
        ),
    ]);
}

/// The install line CI runs for these tools.
const INSTALL: &str = "apt-get install -y skopeo umoci";

/// `tool ARGS`, which must succeed; its stdout. A missing tool fails the
/// test with the command that installs it.
fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} is needed for the interop tests ({e}): install it with `{INSTALL}`")
    });
    assert!(
        out.status.success(),
        "{name} {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// An image that exercises every kind of layer entry: two RUNs (the second
/// writes, makes a setuid file, a symlink, a hard link and a FIFO, appends
/// to a base file, deletes one (a whiteout), and replaces a directory the
/// first made (opaque)), a COPY, ENV and CMD.
fn built_image(fixture: &Fixture) -> Image {
    let context = fixture.context(
        "context",
        "FROM workshop/busybox\n\
         RUN mkdir /data && echo a > /data/a && echo b > /data/b\n\
         RUN echo new > /hello && chmod 4755 /hello \\\n\
         \x20   && ln -s /hello /hello-link && ln /hello /hello-hard && mkfifo /fifo \\\n\
         \x20   && echo changed >> /etc/passwd && rm /etc/group \\\n\
         \x20   && rm -rf /data && mkdir /data && echo c > /data/c\n\
         COPY app /app\n\
         ENV GREETING=hello\n\
         CMD [\"cat\", \"/hello\"]\n",
        &[("app/run.sh", "echo run\n"), ("app/lib/x", "x\n")],
    );
    build(
        &fixture.store,
        &context,
        None,
        &reference("workshop/app:v1"),
        false,
    )
    .unwrap_or_else(|e| panic!("build: {e:#}"))
    .image
}

/// `find`'s listing of a tree: path, type, mode, owner, size (not of
/// directories: overlayfs and ext4 count those differently), link count
/// and symlink target, sorted. The root itself left out.
const FIND_FORMAT: &str = "%P\t%y\t%m\t%U:%G\t%s\t%n\t%l\n";

fn normalise_listing(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with('\t')) // the root
        .map(|line| {
            let mut fields: Vec<&str> = line.split('\t').collect();
            if fields[1] == "d" {
                fields[4] = "-"; // a directory's size
                fields[5] = "-"; // and link count
            }
            fields.join("\t")
        })
        .collect();
    lines.sort();
    lines
}

/// What our overlay of `image`'s layers shows (read-only: an empty upper),
/// mounted in a mount namespace of its own and listed by `find`.
fn our_tree(fixture: &Fixture, image: &Image) -> Vec<String> {
    let layers = Layers::create(
        &fixture.dir.path().join("overlay"),
        image.lowers(&fixture.store),
        false,
    )
    .unwrap();
    let merged = layers.merged.to_string_lossy().into_owned();
    let seen = observe(CloneFlags::CLONE_NEWNS, || {
        ch03_mount::make_mounts_private()?; // the overlay stays in this namespace
        mount_overlay(&layers)?;
        exec(&argv(&["find", &merged, "-printf", FIND_FORMAT]))
    })
    .unwrap();
    assert_eq!(seen.exit, Exit::Code(0), "find: {}", seen.output);
    normalise_listing(&seen.output)
}

fn skopeo_reads_our_oci_layout_and_umoci_unpacks_the_tree_our_overlay_shows() {
    let fixture = Fixture::new("ch09-interop-oci");
    let image = built_image(&fixture);
    let layout = fixture.dir.path().join("oci");
    save_oci(&fixture.store, &image, &layout).unwrap();
    let at = format!("{}:workshop/app:v1", layout.display());

    // skopeo: our manifest, our layers, our config.
    let inspect = json(&tool("skopeo", &["inspect", &format!("oci:{at}")]));
    assert_eq!(
        inspect["Digest"].as_str(),
        Some(image.manifest_digest.to_string().as_str())
    );
    let ours: Vec<String> = image
        .manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    let theirs: Vec<String> = inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(theirs, ours, "the layers skopeo reads");
    assert_eq!(ours.len(), 4, "base, two RUNs, COPY");
    let config = json(&tool(
        "skopeo",
        &["inspect", "--config", &format!("oci:{at}")],
    ));
    let ours_config: Value = serde_json::to_value(&image.config).unwrap();
    assert_eq!(config["rootfs"], ours_config["rootfs"]);
    assert_eq!(config["config"], ours_config["config"]);
    assert!(config["config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&Value::from("GREETING=hello")));

    // umoci: unpacked, the same tree as our overlay shows.
    let bundle = fixture.dir.path().join("bundle");
    tool(
        "umoci",
        &["unpack", "--image", &at, bundle.to_str().unwrap()],
    );
    let rootfs = bundle.join("rootfs");
    let theirs = normalise_listing(&tool(
        "find",
        &[rootfs.to_str().unwrap(), "-printf", FIND_FORMAT],
    ));
    let ours = our_tree(&fixture, &image);
    for want in [
        "hello\tf\t4755\t0:0\t4\t2\t",
        "hello-hard\tf\t4755\t0:0\t4\t2\t",
        "hello-link\tl\t777\t0:0\t6\t1\t/hello",
        "fifo\tp\t644\t0:0\t0\t1\t",
        "data/c\tf\t644\t0:0\t2\t1\t",
        "app/lib/x\tf\t644\t0:0\t2\t1\t",
    ] {
        assert!(
            ours.contains(&want.to_string()),
            "{want:?} not in {ours:#?}"
        );
    }
    for gone in ["etc/group", "data/a", "data/b"] {
        assert!(
            !ours.iter().any(|l| l.starts_with(&format!("{gone}\t"))),
            "{gone} should be gone"
        );
    }
    let only_ours: Vec<&String> = ours.iter().filter(|l| !theirs.contains(l)).collect();
    let only_theirs: Vec<&String> = theirs.iter().filter(|l| !ours.contains(l)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "the trees differ:\nonly in our overlay: {only_ours:#?}\nonly in umoci's: {only_theirs:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/passwd"))
            .unwrap()
            .lines()
            .last(),
        Some("changed")
    );
}

fn skopeo_reads_our_docker_archive() {
    let fixture = Fixture::new("ch09-interop-archive");
    let image = built_image(&fixture);
    let archive = fixture.dir.path().join("app.tar");
    save_docker_archive(&fixture.store, &image, &archive).unwrap();
    let at = format!("docker-archive:{}", archive.display());
    let inspect = json(&tool("skopeo", &["inspect", &at]));
    let ours: Vec<Value> = image
        .manifest
        .layers()
        .iter()
        .map(|l| Value::from(l.digest().to_string()))
        .collect();
    assert_eq!(inspect["Layers"].as_array().unwrap(), &ours);
    assert!(inspect["Env"]
        .as_array()
        .unwrap()
        .contains(&Value::from("GREETING=hello")));
    let config = json(&tool("skopeo", &["inspect", "--config", &at]));
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["cat", "/hello"])
    );
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::to_value(&image.config).unwrap()["rootfs"]["diff_ids"]
    );
    // A copy reads every layer (a short or broken tar fails it). (A policy
    // is for pulls from registries; here both ends are local files.)
    let copy = fixture.dir.path().join("copied");
    tool(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            &at,
            &format!("oci:{}:copied", copy.display()),
        ],
    );
    let copied = json(&tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("oci:{}:copied", copy.display()),
        ],
    ));
    assert_eq!(copied["rootfs"], config["rootfs"]);
}

fn saving_twice_into_one_layout_keeps_both_names() {
    let fixture = Fixture::new("ch09-interop-two");
    let layout = fixture.dir.path().join("oci");
    save_oci(&fixture.store, &fixture.base, &layout).unwrap();
    let context = fixture.context("context", "FROM workshop/busybox\nENV A=1\n", &[]);
    let built = build(
        &fixture.store,
        &context,
        None,
        &reference("workshop/a:1"),
        false,
    )
    .unwrap();
    save_oci(&fixture.store, &built.image, &layout).unwrap();
    save_oci(&fixture.store, &built.image, &layout).unwrap(); // again: no second entry
    for name in ["workshop/busybox:latest", "workshop/a:1"] {
        let inspect = json(&tool(
            "skopeo",
            &["inspect", &format!("oci:{}:{name}", layout.display())],
        ));
        assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1, "{name}");
    }
    let index = json(&std::fs::read_to_string(layout.join("index.json")).unwrap());
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    // Not over a directory that holds something else.
    let other = fixture.dir.path().join("other");
    write(&other.join("file"), "x");
    let err = save_oci(&fixture.store, &built.image, &other).unwrap_err();
    assert!(err.to_string().contains("no OCI layout"), "{err}");
    assert!(Path::new(&other.join("file")).is_file());
}
