//! A test image maker: images made here from the local busybox rootfs and
//! small hand-made layers, written as a docker-archive or an OCI layout,
//! as a directory or a tar, gzip or not. Nothing is downloaded.

#![allow(dead_code)] // each test file uses its own part of it

use oci_spec::image::{
    ConfigBuilder, DescriptorBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, RootFsBuilder, ANNOTATION_REF_NAME,
};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use workshop_testkit::Tarball;

/// The sha256 of `bytes`, as `sha256:HEX`.
pub fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

pub fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The busybox rootfs (built under target/rootfs on first use) as an
/// uncompressed layer tar: the base layer of the test images.
pub fn busybox_layer() -> Vec<u8> {
    static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let rootfs = workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
        tar_of_dir(&rootfs)
    })
    .clone()
}

/// An uncompressed tar of the directory `dir` (symlinks kept as symlinks),
/// in a stable order.
pub fn tar_of_dir(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut paths = Vec::new();
    workshop_rootfs::walk(dir, &mut |p, _| {
        paths.push(p.to_path_buf());
        Ok(())
    })
    .unwrap();
    paths.sort();
    for path in paths {
        let rel = path.strip_prefix(dir).unwrap();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() || meta.is_file() || meta.file_type().is_symlink() {
            builder.append_path_with_name(&path, rel).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

/// A small layer from a [`Tarball`] (hostile entries are possible).
pub fn layer_of(tar: &mut Tarball) -> Vec<u8> {
    tar.bytes()
}

/// An image to write: uncompressed layer tars (the base first), a config.
#[derive(Clone)]
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    /// Gzip the layers in the archive.
    pub gzip: bool,
    pub cmd: Vec<String>,
    /// Diff-ids to write instead of the real ones (to test a mismatch).
    pub diff_ids: Option<Vec<String>>,
    /// Media type of the layers, instead of the right one.
    pub layer_media_type: Option<String>,
}

impl TestImage {
    pub fn new(layers: Vec<Vec<u8>>) -> TestImage {
        TestImage {
            layers,
            gzip: false,
            cmd: vec!["/bin/sh".into()],
            diff_ids: None,
            layer_media_type: None,
        }
    }

    pub fn gzipped(mut self) -> TestImage {
        self.gzip = true;
        self
    }

    /// The layer blobs as the archive holds them.
    pub fn blobs(&self) -> Vec<Vec<u8>> {
        self.layers
            .iter()
            .map(|l| if self.gzip { gzip(l) } else { l.clone() })
            .collect()
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.diff_ids
            .clone()
            .unwrap_or_else(|| self.layers.iter().map(|l| digest(l)).collect())
    }

    /// The config's JSON.
    pub fn config(&self) -> Vec<u8> {
        let config = ImageConfigurationBuilder::default()
            .architecture(oci_spec::image::Arch::Amd64)
            .os(oci_spec::image::Os::Linux)
            .config(
                ConfigBuilder::default()
                    .cmd(self.cmd.clone())
                    .env(vec!["PATH=/bin".to_string()])
                    .build()
                    .unwrap(),
            )
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(self.diff_ids())
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        serde_json::to_vec(&config).unwrap()
    }

    /// The OCI manifest's JSON.
    pub fn manifest(&self) -> Vec<u8> {
        let config = self.config();
        let layer_type = match (&self.layer_media_type, self.gzip) {
            (Some(t), _) => MediaType::from(t.as_str()),
            (None, true) => MediaType::ImageLayerGzip,
            (None, false) => MediaType::ImageLayer,
        };
        // Docker v2's media types throughout, when its layer type is asked for.
        let docker =
            matches!(&self.layer_media_type, Some(t) if t.starts_with("application/vnd.docker"));
        let (manifest_type, config_type) = match docker {
            true => (
                MediaType::from("application/vnd.docker.distribution.manifest.v2+json"),
                MediaType::from("application/vnd.docker.container.image.v1+json"),
            ),
            false => (MediaType::ImageManifest, MediaType::ImageConfig),
        };
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(manifest_type)
            .config(descriptor(config_type, &config))
            .layers(
                self.blobs()
                    .iter()
                    .map(|b| descriptor(layer_type.clone(), b))
                    .collect::<Vec<_>>(),
            )
            .build()
            .unwrap();
        serde_json::to_vec(&manifest).unwrap()
    }
}

pub fn descriptor(media_type: MediaType, bytes: &[u8]) -> oci_spec::image::Descriptor {
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest(bytes).parse::<oci_spec::image::Digest>().unwrap())
        .size(bytes.len() as u64)
        .build()
        .unwrap()
}

/// Files of an archive being made, by path: written as a directory or a tar.
#[derive(Default)]
pub struct Files(pub Vec<(String, Vec<u8>)>, pub Vec<(String, String)>);

impl Files {
    pub fn put(&mut self, path: &str, bytes: Vec<u8>) {
        if !self.0.iter().any(|(p, _)| p == path) {
            self.0.push((path.to_string(), bytes));
        }
    }

    /// A symlink `path` -> `target` (docker save links a layer it has twice).
    pub fn link(&mut self, path: &str, target: &str) {
        self.1.push((path.to_string(), target.to_string()));
    }

    /// Write the files under the directory `dir`.
    pub fn write_dir(&self, dir: &Path) -> PathBuf {
        for (path, bytes) in &self.0 {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, bytes).unwrap();
        }
        for (path, target) in &self.1 {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, full).unwrap();
        }
        dir.to_path_buf()
    }

    /// The files as one tar.
    pub fn tar(&self) -> Vec<u8> {
        let mut tar = Tarball::new();
        for (path, bytes) in &self.0 {
            tar.file(path, bytes, 0o644);
        }
        for (path, target) in &self.1 {
            tar.symlink(path, target);
        }
        tar.bytes()
    }

    pub fn write_tar(&self, file: &Path) -> PathBuf {
        std::fs::write(file, self.tar()).unwrap();
        file.to_path_buf()
    }
}

/// An OCI image layout of `images`, each named by its `ref.name`.
pub fn oci_layout(images: &[(&str, &TestImage)]) -> Files {
    let mut files = Files::default();
    files.put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    let mut manifests = Vec::new();
    for (name, image) in images {
        let blob = |files: &mut Files, bytes: &[u8]| {
            files.put(
                &format!("blobs/sha256/{}", hex(&digest(bytes))),
                bytes.to_vec(),
            );
        };
        blob(&mut files, &image.config());
        for layer in image.blobs() {
            blob(&mut files, &layer);
        }
        let manifest = image.manifest();
        blob(&mut files, &manifest);
        let mut d = descriptor(MediaType::ImageManifest, &manifest);
        d.set_annotations(Some(HashMap::from([(
            ANNOTATION_REF_NAME.to_string(),
            name.to_string(),
        )])));
        manifests.push(d);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .unwrap();
    files.put("index.json", serde_json::to_vec(&index).unwrap());
    files
}

/// A docker-archive (`docker save`, before docker 25) of `images`: layers
/// at `ID/layer.tar` (a layer two images share is written once, the second
/// a symlink to it, as docker does), configs at `HEX.json`.
pub fn docker_archive(images: &[(&[&str], &TestImage)]) -> Files {
    let mut files = Files::default();
    let mut entries = Vec::new();
    let mut written: HashMap<String, String> = HashMap::new();
    for (n, (tags, image)) in images.iter().enumerate() {
        let config = image.config();
        let config_path = format!("{}.json", hex(&digest(&config)));
        files.put(&config_path, config);
        let mut layers = Vec::new();
        for (i, blob) in image.blobs().iter().enumerate() {
            let id = format!("{:064x}", n * 100 + i + 1);
            let path = format!("{id}/layer.tar");
            match written.get(&digest(blob)) {
                Some(first) => files.link(&path, &format!("../{first}")),
                None => {
                    files.put(&path, blob.clone());
                    written.insert(digest(blob), path.clone());
                }
            }
            layers.push(path);
        }
        entries.push(serde_json::json!({
            "Config": config_path,
            "RepoTags": tags,
            "Layers": layers,
        }));
    }
    files.put("manifest.json", serde_json::to_vec(&entries).unwrap());
    files
}
