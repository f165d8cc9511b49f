//! Run an image: its layers, the top first, are chapter 8's lowers, and its
//! config is the process (chapter 8's run, with the image's user,
//! environment and working directory set after the pivot).

use crate::commit::import_rootfs;
use crate::config;
use crate::reference::Reference;
use crate::store::{Image, Store};
use anyhow::Result;
use ch06_net::netlink::Netlink;
use ch08_overlay::{run_over_layers, RunOptions};
use workshop::Narrator;

/// The workshop's base image: chapter 4's busybox rootfs as one layer.
pub const BASE_IMAGE: &str = "workshop/busybox:latest";

/// The base image, made from the default rootfs (built if missing) on first
/// use, saying so that once.
pub fn base_image(store: &Store, say: &Narrator) -> Result<Image> {
    let reference: Reference = BASE_IMAGE.parse().expect("a valid reference");
    if let Ok(image) = store.resolve(&reference) {
        return Ok(image);
    }
    let rootfs = workshop_rootfs::ensure_default(|line| say.note(line))?;
    let image = import_rootfs(store, &rootfs, &reference)?;
    say.note(&format!(
        "made {BASE_IMAGE} from {} (once: the store keeps it)",
        rootfs.display()
    ));
    Ok(image)
}

// ANCHOR: run_image
/// `run IMAGE [-- COMMAND]`: the image's layers as the lowers (the top
/// first), the process from its config (`shell`: `/bin/sh` instead of its
/// Entrypoint and Cmd), in chapter 8's container. Returns its exit code.
pub fn run_image(
    store: &Store,
    image: &Image,
    command: &[String],
    shell: bool,
    options: &RunOptions,
    nl: &mut Netlink,
    say: &Narrator,
) -> Result<i32> {
    let lowers = image.lowers(store);
    let sh = ["/bin/sh".to_string()];
    let mut process = config::process(&image.config, if shell { &sh } else { command }, &lowers)?;
    if shell {
        process.argv = sh.to_vec(); // as `docker run --entrypoint /bin/sh`
        if let Ok(prompt) = std::env::var("PS1") {
            process.env.push(format!("PS1={prompt}")); // the prompt workshop::start set
        }
    }
    say.note(&format!(
        "{}: {} layer(s), user {}:{}, in {}",
        image.reference,
        lowers.len(),
        process.uid,
        process.gid,
        process.cwd.display()
    ));
    let _held = store.hold_layers(&lowers)?; // an rmi meanwhile leaves them be
    run_over_layers(options, lowers, nl, say, || process.exec())
}
// ANCHOR_END: run_image

/// One line of `images`: NAME, TAG, IMAGE ID (12 hex digits of the
/// config's digest, as docker shows it), LAYERS, SIZE (of its unpacked
/// layers, each counted once per image though images may share them).
pub fn image_lines(store: &Store) -> Result<Vec<[String; 5]>> {
    let sizes = store.layer_sizes()?;
    let mut lines = vec![["NAME", "TAG", "IMAGE ID", "LAYERS", "SIZE"].map(String::from)];
    for image in store.images()? {
        let diff_ids = image.diff_ids();
        let bytes: u64 = diff_ids.iter().filter_map(|d| sizes.get(d.digest())).sum();
        lines.push([
            image.reference.name.clone(),
            image.reference.tag.clone(),
            image.id.digest()[..12].to_string(),
            diff_ids.len().to_string(),
            human_size(bytes),
        ]);
    }
    Ok(lines)
}

/// Lines as a table: each column as wide as its widest cell.
pub fn table(lines: &[[String; 5]]) -> String {
    let widths: Vec<usize> = (0..5)
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A size as docker prints it: `4.1MB` (powers of 1000).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .chars()
            .take(4)
            .collect::<String>()
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_123_456), "4.12MB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(123_456_789), "123MB");
    }

    #[test]
    fn a_table_pads_each_column_to_its_widest_cell() {
        let lines = [
            ["NAME", "TAG", "IMAGE ID", "LAYERS", "SIZE"].map(String::from),
            ["a/long-name", "v1", "0123456789ab", "3", "1MB"].map(String::from),
        ];
        assert_eq!(
            table(&lines),
            "NAME         TAG  IMAGE ID      LAYERS  SIZE\n\
             a/long-name  v1   0123456789ab  3       1MB\n"
        );
    }
}
