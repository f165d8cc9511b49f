//! An image out of the store: as an OCI image layout (a directory) or as a
//! docker-archive tar (`docker load` reads it).
//!
//! ```text
//! OCI layout (DIR)                     docker-archive (FILE, a tar)
//!   oci-layout                           manifest.json   [{Config, RepoTags, Layers}]
//!   index.json   ref.name = NAME:TAG     repositories    {NAME: {TAG: top layer}}
//!   blobs/sha256/HEX ...                 HEX.json        the config
//!                                        HEX/layer.tar   each layer
//! ```

use crate::store::{ref_name, write_atomically, Image, Store};
use anyhow::{bail, Context, Result};
use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndex, ImageIndexBuilder, MediaType, OciLayoutBuilder,
    ANNOTATION_REF_NAME,
};
use std::collections::HashMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The blobs of `image`: manifest, config, layers (digest, size).
fn blobs(image: &Image, store: &Store) -> Result<Vec<Descriptor>> {
    let size = fs::metadata(store.blob_path(&image.manifest_digest))
        .with_context(|| format!("the store has no manifest {}", image.manifest_digest))?
        .len();
    let manifest = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .digest(image.manifest_digest.clone())
        .size(size)
        .build()?;
    Ok([manifest, image.manifest.config().clone()]
        .into_iter()
        .chain(image.manifest.layers().iter().cloned())
        .collect())
}

// ANCHOR: save_oci
/// Write `image` as an OCI image layout in the directory `dir` (made if
/// missing), named by its reference (`skopeo inspect oci:DIR:NAME:TAG`).
/// A layout already there gets the image added (a name it had is replaced);
/// any other directory with something in it is refused.
pub fn save_oci(store: &Store, image: &Image, dir: &Path) -> Result<()> {
    let layout = dir.join("oci-layout");
    if dir.exists()
        && !layout.exists()
        && fs::read_dir(dir)
            .with_context(|| format!("failed to read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} holds something and no OCI layout: save into an empty or a new directory",
            dir.display()
        );
    }
    let blob_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blob_dir)
        .with_context(|| format!("failed to create {}", blob_dir.display()))?;
    let descriptors = blobs(image, store)?;
    for blob in &descriptors {
        let to = blob_dir.join(blob.digest().digest());
        if to.is_file() {
            continue; // named by its content: the same bytes are there
        }
        let from = store.blob_path(blob.digest());
        let tmp = blob_dir.join(format!(".partial-{}", std::process::id()));
        fs::copy(&from, &tmp)
            .and_then(|_| fs::rename(&tmp, &to))
            .with_context(|| format!("failed to copy {} to {}", from.display(), to.display()))?;
    }
    let value = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()?;
    write_atomically(&layout, &serde_json::to_vec(&value)?)?;

    let name = image.reference.to_string();
    let index_path = dir.join("index.json");
    let mut manifests: Vec<Descriptor> = if index_path.exists() {
        ImageIndex::from_file(&index_path)
            .with_context(|| format!("failed to read {}", index_path.display()))?
            .manifests()
            .iter()
            .filter(|d| ref_name(d).as_deref() != Some(name.as_str()))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let mut named = descriptors[0].clone();
    named.set_annotations(Some(HashMap::from([(
        ANNOTATION_REF_NAME.to_string(),
        name,
    )])));
    manifests.push(named);
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()?;
    write_atomically(&index_path, &serde_json::to_vec_pretty(&index)?)
}
// ANCHOR_END: save_oci

// ANCHOR: save_docker_archive
/// Write `image` as a docker-archive tar file `file` (`docker load -i`).
pub fn save_docker_archive(store: &Store, image: &Image, file: &Path) -> Result<()> {
    let config_name = format!("{}.json", image.id.digest());
    let layer_names: Vec<String> = image
        .manifest
        .layers()
        .iter()
        .map(|l| format!("{}/layer.tar", l.digest().digest()))
        .collect();
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [image.reference.to_string()],
        "Layers": layer_names,
    }]);
    // The old `repositories` file: NAME -> TAG -> the top layer's ID.
    let top = image
        .manifest
        .layers()
        .last()
        .map(|l| l.digest().digest().to_string())
        .unwrap_or_default();
    let repositories = serde_json::json!({
        image.reference.name.clone(): { image.reference.tag.clone(): top }
    });

    let tmp = file.with_file_name(format!(
        ".{}.partial-{}",
        file.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let out = BufWriter::new(
            fs::File::create(&tmp)
                .with_context(|| format!("failed to create {}", tmp.display()))?,
        );
        let mut tar = tar::Builder::new(out);
        let mut add = |name: &str, size: u64, data: &mut dyn std::io::Read| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_size(size);
            tar.append_data(&mut header, name, data)
                .with_context(|| format!("failed to add {name} to {}", file.display()))
        };
        let config = fs::File::open(store.blob_path(&image.id))?;
        add(&config_name, config.metadata()?.len(), &mut &config)?;
        let mut added = std::collections::HashSet::new();
        for (layer, name) in image.manifest.layers().iter().zip(&layer_names) {
            if !added.insert(name) {
                continue; // two layers alike (two empty RUNs): one file serves both
            }
            let blob = fs::File::open(store.blob_path(layer.digest()))
                .with_context(|| format!("the store has no layer {}", layer.digest()))?;
            add(name, blob.metadata()?.len(), &mut &blob)?;
        }
        for (name, value) in [
            ("manifest.json", &manifest),
            ("repositories", &repositories),
        ] {
            let bytes = serde_json::to_vec(value)?;
            add(name, bytes.len() as u64, &mut &bytes[..])?;
        }
        let mut out = tar.into_inner()?;
        out.flush()?;
        out.get_ref().sync_all()?;
        drop(out);
        fs::rename(&tmp, file).with_context(|| format!("failed to write {}", file.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
// ANCHOR_END: save_docker_archive
