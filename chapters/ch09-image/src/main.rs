//! Chapter 9: images: import them, run them, build them.
//!
//! `ch09-image` runs the guided demo (demo.rs); `ch09-image -- COMMAND` runs
//! COMMAND in the workshop's base image, with every option of chapter 8's
//! run; the subcommands are docker's: `import`, `images`, `rmi`, `run`,
//! `build`, `save`, `prune`.

use anyhow::{bail, Context, Result};
use ch06_net::netlink::Netlink;
use ch08_overlay::reclaim_what_killed_runs_left;
use ch09_image::cli::{Cli, Format, Sub};
use ch09_image::run::{base_image, image_lines, run_image, table};
use ch09_image::{build, import, save, Store};
use std::process::ExitCode;
use workshop::cli::Mode;
use workshop::Narrator;

mod demo;

fn main() -> ExitCode {
    workshop::main(
        "ch09-image",
        "to create namespaces, cgroups and mounts",
        run,
    )
}

fn run(cli: &Cli, say: &Narrator) -> Result<i32> {
    let store = match &cli.store {
        Some(dir) => Store::open(dir).with_context(|| format!("--store {}", dir.display()))?,
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
            print_removed(&removed);
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
        Some(Sub::Prune) => {
            let removed = build::prune_cache(&store)?;
            say.note(&format!(
                "the build cache is empty: {} blob(s) and {} layer(s) no image uses were removed",
                removed.blobs.len(),
                removed.layers.len()
            ));
            print_removed(&removed);
            return Ok(0);
        }
        Some(Sub::Save {
            image,
            output,
            format,
        }) => {
            let image = store.resolve(image)?;
            match format {
                Format::Oci if output.exists() && !output.is_dir() => bail!(
                    "{} is a file, and an OCI layout is a directory; for one tar file, as docker save writes, add --format docker-archive",
                    output.display()
                ),
                Format::Oci => save::save_oci(&store, &image, output)?,
                Format::DockerArchive => save::save_docker_archive(&store, &image, output)?,
            }
            return Ok(0);
        }
    }
    // No subcommand: the chapter contract, in the workshop's base image.
    let (argv, shell) = match cli.common.mode() {
        Mode::Demo => return demo::demo(&store, say).map(|()| 0),
        Mode::Run(argv) => (argv, false),
        Mode::Shell(_) => (Vec::new(), true),
    };
    let mut nl = Netlink::open()?;
    reclaim_what_killed_runs_left(&mut nl, say)?;
    let base = base_image(&store, say)?;
    run_image(&store, &base, &argv, shell, &cli.run, &mut nl, say)
}

/// What `rmi` and `prune` removed: blobs by digest, as docker says it, and
/// the unpacked layers' directories.
fn print_removed(removed: &ch09_image::store::Removed) {
    for digest in &removed.blobs {
        println!("Deleted: {digest}");
    }
    for diff_id in &removed.layers {
        println!("Deleted layer directory: layers/{}", diff_id.digest());
    }
}
