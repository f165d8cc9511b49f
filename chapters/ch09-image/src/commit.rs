//! A new image from an image and one change: a layer, a config change, or
//! both. `docker commit` and each step of a build are this; so is
//! `docker import` of a directory, an image of one layer over nothing.

use crate::reference::Reference;
use crate::store::{Image, Store, StoreLock};
use anyhow::{bail, Context, Result};
use oci_spec::image::{
    Config, Descriptor, DescriptorBuilder, Digest, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageManifestBuilder, MediaType,
};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A layer tar in the store: uncompressed, so its digest is its diff-id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLayer {
    pub diff_id: Digest,
    pub size: u64,
}

/// Store the uncompressed layer tar that `write_tar` writes, as a blob.
pub fn store_layer_tar(
    store: &Store,
    write_tar: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<NewLayer> {
    let tmp = store.root.join(format!(
        "blobs/sha256/.layer-{}-{}",
        std::process::id(),
        crate::store::unique()
    ));
    let result = (|| {
        let mut out = BufWriter::new(
            fs::File::create(&tmp)
                .with_context(|| format!("failed to create {}", tmp.display()))?,
        );
        write_tar(&mut out)?;
        out.flush()?;
        drop(out);
        let (diff_id, size) = store.put_blob(fs::File::open(&tmp)?, None)?;
        Ok(NewLayer { diff_id, size })
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// Put the layer `layer`'s files at `layers/HEX` by moving the directory
/// `from` there (a build step's upper is already the unpacked layer, in
/// overlay's form), unless the store has that layer already (then `from` is
/// removed). The caller holds the lock.
pub fn place_layer_dir(
    store: &Store,
    _lock: &StoreLock,
    layer: &NewLayer,
    from: &Path,
) -> Result<PathBuf> {
    let dir = store.layer_dir(&layer.diff_id);
    if dir.exists() {
        workshop_rootfs::remove_tree(from)?;
    } else {
        fs::rename(from, &dir)
            .with_context(|| format!("failed to move {} to {}", from.display(), dir.display()))?;
    }
    Ok(dir)
}

/// A layer of the files in `dir` (a build step's upper, or files laid out
/// by hand): packed into a tar as [`crate::pack::pack_upper`] writes one,
/// `dir` made what that tar unpacks to, then moved into the store as the
/// layer's directory: nothing is unpacked again. `dir` should be on the
/// store's filesystem (under its `layers/` or `tmp/`), so the move is a
/// rename. The caller holds the lock.
pub fn commit_dir(store: &Store, lock: &StoreLock, dir: &Path) -> Result<NewLayer> {
    let layer = store_layer_tar(store, |out| crate::pack::pack_upper(dir, out))?;
    crate::pack::settle_upper(dir)?; // as its tar would unpack
    place_layer_dir(store, lock, &layer, dir)?;
    Ok(layer)
}

/// The config a new image starts from: its parent's, or an empty one for
/// this machine's architecture and Linux.
pub fn base_config(parent: Option<&Image>) -> Result<ImageConfiguration> {
    Ok(match parent {
        Some(parent) => parent.config.clone(),
        None => ImageConfigurationBuilder::default()
            .config(Config::default())
            .build()?,
    })
}

/// Make and name a new image: `parent`'s layers (none for `None`), plus
/// `layer` on top when given, with `config` (already changed by the caller:
/// env, cmd, ...) and one history line `created_by`. The new layer's tar
/// must be in the store ([`store_layer_tar`]) and its directory in place
/// ([`place_layer_dir`]). The caller holds the lock.
pub fn new_image(
    store: &Store,
    lock: &StoreLock,
    parent: Option<&Image>,
    layer: Option<&NewLayer>,
    config: ImageConfiguration,
    created_by: &str,
    reference: &Reference,
) -> Result<Image> {
    let manifest_descriptor = write_image(store, lock, parent, layer, config, created_by)?;
    store.tag(lock, reference, &manifest_descriptor)?;
    store.image(reference.clone(), manifest_descriptor.digest())
}

/// [`new_image`] without the name: its config and manifest written to the
/// store, the manifest's descriptor returned (a build's steps before the
/// last are images no name points to: the build cache does). The caller
/// holds the lock.
pub fn write_image(
    store: &Store,
    _lock: &StoreLock,
    parent: Option<&Image>,
    layer: Option<&NewLayer>,
    mut config: ImageConfiguration,
    created_by: &str,
) -> Result<Descriptor> {
    let mut layers = match parent {
        Some(parent) => parent.manifest.layers().clone(),
        None => Vec::new(),
    };
    let mut diff_ids: Vec<String> = match parent {
        Some(parent) => parent.config.rootfs().diff_ids().clone(),
        None => Vec::new(),
    };
    if let Some(layer) = layer {
        if !store.blob_path(&layer.diff_id).is_file() || !store.layer_dir(&layer.diff_id).is_dir() {
            bail!("the layer {} is not in the store yet", layer.diff_id);
        }
        layers.push(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageLayer)
                .digest(layer.diff_id.clone())
                .size(layer.size)
                .build()?,
        );
        diff_ids.push(layer.diff_id.to_string());
    }
    let mut rootfs = config.rootfs().clone();
    rootfs.set_diff_ids(diff_ids);
    config.set_rootfs(rootfs);
    let mut history = config.history().clone().unwrap_or_default();
    let mut line = HistoryBuilder::default().created_by(created_by.to_string());
    if layer.is_none() {
        line = line.empty_layer(true);
    }
    history.push(line.build()?);
    config.set_history(Some(history));
    let config_descriptor = store.put_json(&config, MediaType::ImageConfig)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_descriptor)
        .layers(layers)
        .build()?;
    store.put_json(&manifest, MediaType::ImageManifest)
}

/// `docker import` of a directory: an image of one layer holding the files
/// of `dir` (chapter 4's rootfs, for one), named `reference`. The tar is
/// packed as a build step's upper is (a fixed order, every mtime 0), so the
/// same files make the same layer and the same image, whenever imported.
pub fn import_rootfs(store: &Store, dir: &Path, reference: &Reference) -> Result<Image> {
    let layer = store_layer_tar(store, |out| {
        crate::pack::pack_upper(dir, out)
            .with_context(|| format!("failed to pack {}", dir.display()))
    })?;
    let lock = store.lock()?;
    if !store.layer_dir(&layer.diff_id).is_dir() {
        let partial = store.root.join(format!(
            "layers/.partial-{}-{}",
            std::process::id(),
            crate::store::unique()
        ));
        if partial.exists() {
            workshop_rootfs::remove_tree(&partial)?;
        }
        let options = workshop_rootfs::unpack::Options::for_this_process(
            workshop_rootfs::unpack::SetuidBits::Keep,
        );
        workshop_rootfs::unpack::unpack(&store.blob_path(&layer.diff_id), &partial, options)?;
        place_layer_dir(store, &lock, &layer, &partial)?;
    }
    let config = base_config(None)?;
    new_image(
        store,
        &lock,
        None,
        Some(&layer),
        config,
        &format!("import {}", dir.display()),
        reference,
    )
}
