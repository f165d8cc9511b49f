//! Chapter 9: images: import them, run them, build them.
//!
//! `ch09-image` runs the guided demo (the rootfs as an image, an image of our
//! own over it, and a run whose lowers are its layers and whose process is
//! its config); `ch09-image -- COMMAND` runs COMMAND in the workshop's base
//! image, with every option of chapter 8's run; the subcommands are docker's:
//! `import`, `images`, `rmi`, `run`, `build`, `save`.

use anyhow::{bail, Context, Result};
use ch01_clone::observe;
use ch06_net::bring_up_loopback;
use ch06_net::netlink::Netlink;
use ch08_overlay::{enter_layers, reclaim_what_killed_runs_left, Layers, FLAGS};
use ch09_image::cli::{Cli, Format, Sub};
use ch09_image::commit::{base_config, new_image, place_layer_dir, store_layer_tar};
use ch09_image::run::{base_image, image_lines, run_image, table, BASE_IMAGE};
use ch09_image::{build, config, import, save, Image, Reference, Store};
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::Narrator;

fn main() -> ExitCode {
    workshop::main(
        "ch09-image",
        "to create namespaces, cgroups and mounts",
        run,
    )
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    let store = match &cli.store {
        Some(dir) => Store::open(dir)
            .with_context(|| format!("--store {}: not an image store", dir.display()))?,
        None => Store::open_default()?,
    };
    let progress = !say.is_quiet();
    match &cli.subcommand {
        None => {}
        Some(Sub::Import { path, name }) => {
            let is_layout = ["index.json", "manifest.json"]
                .iter()
                .any(|f| path.join(f).exists());
            let images = if path.is_dir() && !is_layout {
                let Some(name) = name else {
                    bail!(
                        "{} is a plain directory: give the image a --name NAME[:TAG]",
                        path.display()
                    )
                };
                vec![ch09_image::commit::import_rootfs(&store, path, name)?]
            } else {
                let imported = import::import(&store, path, name.as_ref(), progress)?;
                say.note(&format!(
                    "{} layer(s) unpacked, {} shared with images the store had",
                    imported.layers_unpacked, imported.layers_shared
                ));
                imported.images
            };
            for image in images {
                println!("{} {}", image.reference, image.id);
            }
            return Ok(0);
        }
        Some(Sub::Images) => {
            print!("{}", table(&image_lines(&store)?));
            return Ok(0);
        }
        Some(Sub::Rmi { image }) => {
            let removed = store.remove(image)?;
            println!("Untagged: {image}");
            for digest in removed.blobs.iter().chain(&removed.layers) {
                println!("Deleted: {digest}");
            }
            return Ok(0);
        }
        Some(Sub::Run {
            run,
            shell,
            image,
            command,
        }) => {
            let mut nl = Netlink::open()?;
            reclaim_what_killed_runs_left(&mut nl, say)?;
            let image = store.resolve(image)?;
            if *shell {
                workshop::prepare_shell("ch09-image"); // as `--shell` before a subcommand does
            }
            return run_image(&store, &image, command, *shell, run, &mut nl, say);
        }
        Some(Sub::Build { tag, file, context }) => {
            let built = build::build(&store, context, file.as_deref(), tag, progress)?;
            say.note(&format!(
                "{} step(s) from the cache, {} container(s) started",
                built.cached, built.containers
            ));
            println!("{} {}", built.image.reference, built.image.id);
            return Ok(0);
        }
        Some(Sub::Save {
            image,
            output,
            format,
        }) => {
            let image = store.resolve(image)?;
            match format {
                Format::Oci => save::save_oci(&store, &image, output)?,
                Format::DockerArchive => save::save_docker_archive(&store, &image, output)?,
            }
            return Ok(0);
        }
    }
    // No subcommand: the chapter contract, in the workshop's base image.
    let (argv, shell) = match cli.common.mode() {
        Mode::Demo => return demo(&store, say).map(|()| 0),
        Mode::Run(argv) => (argv, false),
        Mode::Shell(_) => (Vec::new(), true),
    };
    let mut nl = Netlink::open()?;
    reclaim_what_killed_runs_left(&mut nl, say)?;
    let base = base_image(&store, say)?;
    run_image(&store, &base, &argv, shell, &cli.run, &mut nl, say)
}

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
    let layer = store_layer_tar(store, |out| {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic); // the same files, the same digest
        tar.append_dir_all(".", &dir)?;
        tar.finish()?;
        Ok(())
    })?;
    let lock = store.lock()?;
    place_layer_dir(store, &lock, &layer, &dir)?;
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

fn demo(store: &Store, say: &Narrator) -> Result<()> {
    say.title("Chapter 9 · images: layers with a name and a config");
    say.step("the base image: chapter 4's rootfs as one layer")?;
    for stale in ch08_overlay::reclaim_stale()? {
        say.note(&format!(
            "removed {}, the layers of a run that was killed",
            stale.display()
        ));
    }
    let base = base_image(store, say)?;
    say.host(&format!("{BASE_IMAGE}: id {}", base.id));
    say.host(&format!(
        "manifest: blobs/sha256/{}",
        base.manifest_digest.digest()
    ));
    for diff_id in base.diff_ids() {
        say.host(&format!("layer:    layers/{}/", diff_id.digest()));
    }
    say.note(&format!(
        "(paths relative to the store, {})",
        store.root.display()
    ));
    say.note("Everything is named by the sha256 of what it holds: the same bytes, the same name.");

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
        "process: {:?} as {}:{} in {}, env {:?}",
        process.argv,
        process.uid,
        process.gid,
        process.cwd.display(),
        process.env
    ));
    let layers = Layers::for_this_run(lowers, false)?;
    let seen = observe(FLAGS, || {
        bring_up_loopback()?; // no cable in the demo: lo only
        enter_layers(&layers)?; // chapter 8
        process.exec() // this chapter: the user, the directory, the environment
    })?;
    say.container(seen.output.trim_end());
    drop(layers);
    say.note("`app` is a name only the image knows: the host's /etc/passwd was never read.");
    // The next steps (a build, a cached rebuild, save, two images on one
    // base and the store's du against their sum) go here, each its own step.
    say.finish("Try it: ch09-image run workshop/demo, or ch09-image run --shell workshop/demo.")
}
