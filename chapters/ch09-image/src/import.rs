//! Images in from files: a docker-archive (`docker save`: `manifest.json`
//! and layer tars) or an OCI image layout (`index.json`, `blobs/sha256/`),
//! each as a tar file or a directory. Every blob is checked against its
//! digest; each layer is unpacked once into the store.

use crate::digest::require_sha256;
use crate::layer;
use crate::progress::Progress;
use crate::reference::Reference;
use crate::store::{ref_name, Image, Store, StoreLock};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{
    Descriptor, DescriptorBuilder, Digest, ImageConfiguration, ImageIndex, ImageManifest,
    ImageManifestBuilder, MediaType,
};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

/// What an import did, for the narration and `images`.
#[derive(Debug, Default)]
pub struct Imported {
    /// The images now in the store, by the names the archive gave them
    /// (or `name`, when given).
    pub images: Vec<Image>,
    /// Layers unpacked by this import.
    pub layers_unpacked: usize,
    /// Layers the store already had (shared with an image before).
    pub layers_shared: usize,
    /// "docker-archive" or "OCI layout", and "tar" or "directory".
    pub format: String,
}

// ANCHOR: import
/// Import the image(s) in `path` (a docker-archive or an OCI layout, a tar
/// file or a directory, told apart by their content, never by the name).
/// `name` names the image when the archive holds one; `progress` shows a
/// bar on stderr (only when stderr is a terminal).
pub fn import(
    store: &Store,
    path: &Path,
    name: Option<&Reference>,
    progress: bool,
) -> Result<Imported> {
    let archive = Archive::open(path, store)?;
    let failed = || format!("failed to import {}", path.display());
    let (found, format) = if archive.has("oci-layout") && archive.has("index.json") {
        (oci_images(&archive).with_context(failed)?, "OCI layout")
    } else if archive.has("manifest.json") {
        (
            docker_images(&archive).with_context(failed)?,
            "docker-archive",
        )
    } else {
        bail!(
            "{} is not an image: it has neither an oci-layout and index.json (an OCI image layout) nor a manifest.json (docker save)",
            path.display()
        );
    };
    let found = named(found, name, path)?;
    let lock = store.lock()?;
    store.reclaim_killed(&lock)?; // what an import killed before left
    let mut import = Import {
        store,
        lock: &lock,
        archive: &archive,
        blobs_before: store_blobs(store)?,
        blobs_put: Vec::new(),
        layers_made: Vec::new(),
        shared: 0,
    };
    let total = found.iter().map(|f| f.layer_bytes(&archive)).sum();
    let bar = Progress::bytes(total, format!("importing {}", path.display()), progress);
    let result = (|| -> Result<Vec<Image>> {
        let mut manifests = Vec::new();
        for image in &found {
            manifests.push(import.image(image, &bar)?);
        }
        // Named only once every blob of every image is in and checked.
        let mut images = Vec::new();
        for (image, manifest) in found.iter().zip(&manifests) {
            for reference in &image.names {
                store.tag(&lock, reference, manifest)?;
                images.push(store.image(reference.clone(), manifest.digest())?);
            }
        }
        Ok(images)
    })();
    match result {
        Ok(images) => Ok(Imported {
            images,
            layers_unpacked: import.layers_made.len(),
            layers_shared: import.shared,
            format: format!("{format} ({})", archive.kind()),
        }),
        Err(e) => {
            import.undo();
            Err(e.context(failed()))
        }
    }
}
// ANCHOR_END: import

/// An image found in the archive, before anything is stored.
#[derive(Debug)]
struct Found {
    /// The names it will have (after [`named`]).
    names: Vec<Reference>,
    /// What the archive called it, for messages.
    shown: String,
    source: ManifestSource,
}

#[derive(Debug)]
enum ManifestSource {
    /// An OCI layout's manifest blob (verified when read).
    Oci {
        descriptor: Box<Descriptor>,
        manifest: Box<ImageManifest>,
    },
    /// A docker-archive's entry: a config file and layer tars by path.
    Docker { config: String, layers: Vec<String> },
}

impl Found {
    /// The bytes of its layers in the archive, for the progress bar.
    fn layer_bytes(&self, archive: &Archive) -> u64 {
        match &self.source {
            ManifestSource::Oci { manifest, .. } => {
                manifest.layers().iter().map(|l| l.size()).sum()
            }
            ManifestSource::Docker { layers, .. } => {
                layers.iter().filter_map(|l| archive.size(l).ok()).sum()
            }
        }
    }
}

/// Give each image its names: `name` when given (one image only), else the
/// archive's; an image with none is refused.
fn named(mut found: Vec<Found>, name: Option<&Reference>, path: &Path) -> Result<Vec<Found>> {
    if found.is_empty() {
        bail!("{} holds no image", path.display());
    }
    if let Some(name) = name {
        if found.len() > 1 {
            let shown: Vec<&str> = found.iter().map(|f| f.shown.as_str()).collect();
            bail!(
                "{} holds {} images ({}): a name can only be given to one; import without a name",
                path.display(),
                found.len(),
                shown.join(", ")
            );
        }
        found[0].names = vec![name.clone()];
    }
    if let Some(unnamed) = found.iter().find(|f| f.names.is_empty()) {
        bail!(
            "{} does not name its image {}: give it a name (NAME[:TAG])",
            path.display(),
            unnamed.shown
        );
    }
    Ok(found)
}

/// A name from an archive, in the short form `docker images` shows:
/// `docker.io/library/busybox:1.36` is `busybox:1.36`, podman's
/// `localhost/app` is `app`.
pub fn familiar(name: &str) -> Result<Reference> {
    let mut short = name;
    for prefix in ["docker.io/", "index.docker.io/"] {
        if let Some(rest) = short.strip_prefix(prefix) {
            short = rest.strip_prefix("library/").unwrap_or(rest);
        }
    }
    if let Some(rest) = short.strip_prefix("localhost/") {
        short = rest;
    }
    short.parse().map_err(|e| {
        anyhow!(
            "the archive names an image {name:?}, which is not a name here ({e}): give it a name"
        )
    })
}

// ANCHOR: oci
/// The images of an OCI layout: each entry of `index.json`, an image
/// manifest or (one level down) an index of them, of which the one for
/// this machine's architecture.
fn oci_images(archive: &Archive) -> Result<Vec<Found>> {
    let index = ImageIndex::from_reader(archive.read_small("index.json")?)
        .context("index.json is not an OCI image index")?;
    let mut found: Vec<Found> = Vec::new();
    for entry in index.manifests() {
        let names = oci_names(entry)?;
        let descriptor = match media_kind(entry.media_type())? {
            Kind::Manifest => entry.clone(),
            Kind::Index => {
                let nested =
                    ImageIndex::from_reader(&archive.read_blob(entry)?[..]).with_context(|| {
                        format!("the blob {} is not an image index", entry.digest())
                    })?;
                let manifest = for_this_machine(&nested, entry.digest())?;
                if media_kind(manifest.media_type())? != Kind::Manifest {
                    bail!(
                        "the index {} names another index: only one level is followed",
                        entry.digest()
                    );
                }
                manifest
            }
            _ => bail!(
                "index.json names {} of media type {}, which is not an image manifest or index",
                entry.digest(),
                entry.media_type()
            ),
        };
        // The same manifest under two names is one image with both.
        if let Some(same) = found.iter_mut().find(|f| {
            matches!(&f.source, ManifestSource::Oci { descriptor: d, .. } if d.digest() == descriptor.digest())
        }) {
            same.names.extend(names);
            continue;
        }
        let manifest = ImageManifest::from_reader(&archive.read_blob(&descriptor)?[..])
            .with_context(|| {
                format!("the blob {} is not an image manifest", descriptor.digest())
            })?;
        found.push(Found {
            names,
            shown: ref_name(entry).unwrap_or_else(|| descriptor.digest().to_string()),
            source: ManifestSource::Oci {
                descriptor: Box::new(descriptor),
                manifest: Box::new(manifest),
            },
        });
    }
    Ok(found)
}

/// An index entry's names: containerd's `io.containerd.image.name` (the
/// full name; docker 25+ writes it, with only the tag as `ref.name`), else
/// `ref.name` as `NAME[:TAG]` (as skopeo's `oci:DIR:NAME:TAG` writes it).
fn oci_names(entry: &Descriptor) -> Result<Vec<Reference>> {
    let annotations = entry.annotations().clone().unwrap_or_default();
    let name = annotations
        .get("io.containerd.image.name")
        .or_else(|| annotations.get(oci_spec::image::ANNOTATION_REF_NAME));
    Ok(match name {
        Some(name) => vec![familiar(name)?],
        None => Vec::new(),
    })
}

/// Of a multi-platform index, the manifest for this machine (or the only one).
fn for_this_machine(index: &ImageIndex, digest: &Digest) -> Result<Descriptor> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let manifests = index.manifests();
    if let [only] = &manifests[..] {
        return Ok(only.clone());
    }
    manifests
        .iter()
        .find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                p.architecture().to_string() == arch && p.os().to_string() == "linux"
            })
        })
        .cloned()
        .ok_or_else(|| anyhow!("the index {digest} has no image for linux/{arch}"))
}
// ANCHOR_END: oci

/// What a media type is, as far as an import cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manifest,
    Index,
    Config,
    Layer,
}

/// OCI's media types and Docker v2's; anything else is refused.
fn media_kind(media_type: &MediaType) -> Result<Kind> {
    Ok(match media_type {
        MediaType::ImageManifest => Kind::Manifest,
        MediaType::ImageIndex => Kind::Index,
        MediaType::ImageConfig => Kind::Config,
        MediaType::ImageLayer
        | MediaType::ImageLayerGzip
        | MediaType::ImageLayerNonDistributable
        | MediaType::ImageLayerNonDistributableGzip => Kind::Layer,
        MediaType::Other(other) => match other.as_str() {
            "application/vnd.docker.distribution.manifest.v2+json" => Kind::Manifest,
            "application/vnd.docker.distribution.manifest.list.v2+json" => Kind::Index,
            "application/vnd.docker.container.image.v1+json" => Kind::Config,
            "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Kind::Layer,
            _ => bail!("the media type {other} is not one this import reads"),
        },
        other => bail!(
            "the media type {other} is not one this import reads (zstd layers: recompress with gzip)"
        ),
    })
}

// ANCHOR: docker
/// One entry of a docker-archive's `manifest.json` (docker's own format,
/// not OCI's: a small struct of our own).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The images of a docker-archive: one per entry of `manifest.json`.
fn docker_images(archive: &Archive) -> Result<Vec<Found>> {
    let entries: Vec<DockerEntry> = serde_json::from_reader(archive.read_small("manifest.json")?)
        .context("manifest.json is not a docker-archive manifest")?;
    entries
        .into_iter()
        .map(|entry| {
            let names = entry
                .repo_tags
                .iter()
                .flatten()
                .map(|t| familiar(t))
                .collect::<Result<Vec<_>>>()?;
            Ok(Found {
                shown: entry
                    .repo_tags
                    .as_ref()
                    .and_then(|t| t.first().cloned())
                    .unwrap_or_else(|| format!("with the config {}", entry.config)),
                names,
                source: ManifestSource::Docker {
                    config: entry.config,
                    layers: entry.layers,
                },
            })
        })
        .collect()
}

/// The digest a docker-archive path names, when it names one:
/// `blobs/sha256/HEX` (docker 25+), `HEX.json` (a config, older docker).
fn digest_in_path(path: &str) -> Option<Digest> {
    let file = path.rsplit('/').next()?;
    let hex = file.strip_suffix(".json").unwrap_or(file);
    let is_hex = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (is_hex && (path.starts_with("blobs/sha256/") || file.ends_with(".json")))
        .then(|| format!("sha256:{hex}").parse().ok())
        .flatten()
}
// ANCHOR_END: docker

/// One import at work: what it put in the store, so that a failure takes
/// it out again.
struct Import<'a> {
    store: &'a Store,
    lock: &'a StoreLock,
    archive: &'a Archive,
    blobs_before: BTreeSet<String>,
    blobs_put: Vec<Digest>,
    layers_made: Vec<Digest>,
    shared: usize,
}

impl Import<'_> {
    /// Store one image's blobs and unpack its layers; its manifest's
    /// descriptor, to be tagged.
    fn image(&mut self, found: &Found, bar: &Progress) -> Result<Descriptor> {
        bar.set_message(format!("importing {}", found.shown));
        match &found.source {
            ManifestSource::Oci {
                descriptor,
                manifest,
            } => {
                let config_kind = media_kind(manifest.config().media_type())?;
                if config_kind != Kind::Config {
                    bail!(
                        "the manifest {} names a config of media type {}",
                        descriptor.digest(),
                        manifest.config().media_type()
                    );
                }
                let (config, _) = self.config(
                    &blob_path(manifest.config().digest()),
                    Some(manifest.config().digest()),
                )?;
                let diff_ids = diff_ids(&config, manifest.layers().len(), &found.shown)?;
                for (layer, diff_id) in manifest.layers().iter().zip(&diff_ids) {
                    if media_kind(layer.media_type())? != Kind::Layer {
                        bail!(
                            "the manifest {} names a layer {} of media type {}",
                            descriptor.digest(),
                            layer.digest(),
                            layer.media_type()
                        );
                    }
                    self.layer(
                        &blob_path(layer.digest()),
                        Some(layer.digest()),
                        diff_id,
                        bar,
                    )?;
                }
                // The manifest as the archive has it (OCI, or Docker v2:
                // the same but for its media type), so its digest stays.
                let bytes = self.archive.read_blob(descriptor)?;
                self.put(&bytes[..], Some(descriptor.digest()))?;
                let mut named = (**descriptor).clone();
                named.set_annotations(None);
                named.set_platform(None);
                Ok(named)
            }
            ManifestSource::Docker { config, layers } => {
                // docker save writes no manifest blob: make an OCI one.
                let (config, config_descriptor) =
                    self.config(config, digest_in_path(config).as_ref())?;
                let diff_ids = diff_ids(&config, layers.len(), &found.shown)?;
                let mut descriptors = Vec::new();
                for (path, diff_id) in layers.iter().zip(&diff_ids) {
                    let (digest, size, gzip) =
                        self.layer(path, digest_in_path(path).as_ref(), diff_id, bar)?;
                    let media_type = if gzip {
                        MediaType::ImageLayerGzip
                    } else {
                        MediaType::ImageLayer
                    };
                    descriptors.push(
                        DescriptorBuilder::default()
                            .media_type(media_type)
                            .digest(digest)
                            .size(size)
                            .build()?,
                    );
                }
                let manifest = ImageManifestBuilder::default()
                    .schema_version(2u32)
                    .media_type(MediaType::ImageManifest)
                    .config(config_descriptor)
                    .layers(descriptors)
                    .build()?;
                let (digest, _) = self.put(&serde_json::to_vec(&manifest)?[..], None)?;
                Ok(DescriptorBuilder::default()
                    .media_type(MediaType::ImageManifest)
                    .size(fs::metadata(self.store.blob_path(&digest))?.len())
                    .digest(digest)
                    .build()?)
            }
        }
    }

    /// Read, check and store a config: it, parsed, and its descriptor.
    fn config(
        &mut self,
        path: &str,
        expected: Option<&Digest>,
    ) -> Result<(ImageConfiguration, Descriptor)> {
        let bytes = self.archive.read_small_bytes(path)?;
        let (digest, size) = self.put(&bytes[..], expected)?;
        let config = ImageConfiguration::from_reader(&bytes[..])
            .with_context(|| format!("the config {digest} is not an image config"))?;
        let descriptor = DescriptorBuilder::default()
            .media_type(MediaType::ImageConfig)
            .digest(digest)
            .size(size)
            .build()?;
        Ok((config, descriptor))
    }

    /// Store the layer at `path` (checked against `digest` when known) and
    /// unpack it (checked against `diff_id`) unless the store has it. Its
    /// digest, size, and whether it is gzipped.
    fn layer(
        &mut self,
        path: &str,
        digest: Option<&Digest>,
        diff_id: &Digest,
        bar: &Progress,
    ) -> Result<(Digest, u64, bool)> {
        let size = self.archive.size(path)?;
        let stored = digest.filter(|d| self.store.blob_path(d).is_file());
        let (digest, size, gzip, unpacked) = match stored {
            // The store has the blob: nothing to read (it was checked when put).
            Some(known) => {
                bar.inc(size);
                let blob = self.store.blob_path(known);
                let unpacked = layer::unpack_layer(self.store, self.lock, &blob, diff_id)?;
                let mut magic = [0u8; 2];
                fs::File::open(&blob)?.read_exact(&mut magic)?;
                let gzip = magic == [0x1f, 0x8b];
                if !unpacked {
                    // Both were in the store: that this blob is that layer is
                    // the archive's word only, until checked (the unpack
                    // checks it when it runs).
                    let tar = match gzip {
                        false => known.clone(),
                        true => {
                            let file = BufReader::new(fs::File::open(&blob)?);
                            crate::digest::sha256_of(flate2::bufread::MultiGzDecoder::new(file))?.0
                        }
                    };
                    if tar != *diff_id {
                        bail!("the layer {known} is not the diff-id {diff_id} the config names: its tar hashes to {tar}");
                    }
                }
                (known.clone(), fs::metadata(&blob)?.len(), gzip, unpacked)
            }
            None => {
                let put = layer::put_layer(
                    self.store,
                    self.lock,
                    bar.reader(self.archive.member(path)?),
                    digest,
                    diff_id,
                );
                // A docker-archive's layer is named by its path (no digest in it).
                let put = match digest {
                    Some(_) => put?,
                    None => put.with_context(|| format!("in the archive's {path}"))?,
                };
                if !self.blobs_before.contains(put.digest.digest()) {
                    self.blobs_put.push(put.digest.clone());
                }
                (put.digest, put.size, put.gzip, put.unpacked)
            }
        };
        if unpacked {
            self.layers_made.push(diff_id.clone());
        } else {
            self.shared += 1;
        }
        Ok((digest, size, gzip))
    }

    /// Put a blob into the store, checked against `expected`; remembered
    /// if new, for [`Import::undo`].
    fn put(&mut self, reader: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let (digest, size) = self.store.put_blob(reader, expected)?;
        if !self.blobs_before.contains(digest.digest()) {
            self.blobs_put.push(digest.clone());
        }
        Ok((digest, size))
    }

    /// Take out what this import put in: a failed import leaves nothing.
    fn undo(&self) {
        for digest in &self.blobs_put {
            if !self.blobs_before.contains(digest.digest()) {
                let _ = fs::remove_file(self.store.blob_path(digest));
            }
        }
        for diff_id in &self.layers_made {
            let _ = workshop_rootfs::remove_tree(&self.store.layer_dir(diff_id));
        }
    }
}

/// The config's diff-ids, one per layer of the manifest.
fn diff_ids(config: &ImageConfiguration, layers: usize, shown: &str) -> Result<Vec<Digest>> {
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| {
            let digest: Digest = d
                .parse()
                .map_err(|e| anyhow!("{shown}: the diff-id {d:?} is not a digest: {e}"))?;
            require_sha256(&digest)?;
            Ok(digest)
        })
        .collect::<Result<Vec<_>>>()?;
    if diff_ids.len() != layers {
        bail!(
            "{shown}: the manifest has {layers} layers but the config names {} diff-ids",
            diff_ids.len()
        );
    }
    Ok(diff_ids)
}

/// The hex names of the blobs the store holds now.
fn store_blobs(store: &Store) -> Result<BTreeSet<String>> {
    let dir = store.root.join("blobs/sha256");
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("failed to read {}", dir.display()))? {
        names.insert(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// An OCI layout's path of a blob.
fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.digest())
}

/// The most a JSON file of an archive may hold (a manifest, a config, an
/// index): a hostile archive does not get to fill our memory.
const JSON_LIMIT: u64 = 16 << 20;

// ANCHOR: archive
/// An archive to read files from by path: a directory, or a tar file
/// indexed once (each member's offset), then read member by member with a
/// seek, never unpacked to disk first.
enum Archive {
    Dir(PathBuf),
    Tar {
        file: PathBuf,
        members: HashMap<String, Member>,
        /// A gzipped tar is decompressed to here first (removed on drop).
        _unzipped: Option<TempFile>,
    },
}

#[derive(Debug, Clone)]
enum Member {
    File {
        offset: u64,
        size: u64,
    },
    /// A symlink or hard link, to this path in the archive.
    Link(String),
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl Archive {
    fn open(path: &Path, store: &Store) -> Result<Archive> {
        let meta =
            fs::metadata(path).with_context(|| format!("failed to read {}", path.display()))?;
        if meta.is_dir() {
            return Ok(Archive::Dir(path.canonicalize()?));
        }
        let mut file =
            fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
        let mut magic = [0u8; 6];
        let n = file.read(&mut magic)?;
        let mut unzipped = None;
        let mut tar_path = path.to_path_buf();
        let compression = workshop_rootfs::unpack::compression_of(&magic[..n])
            .with_context(|| format!("{} cannot be read", path.display()))?;
        if compression == "gzip" {
            {
                // `docker save | gzip`: decompressed once, beside the store's blobs.
                let temp = TempFile(store.root.join(format!(
                    ".import-{}-{}.tar",
                    std::process::id(),
                    crate::store::unique()
                )));
                let mut out = fs::File::create(&temp.0)
                    .with_context(|| format!("failed to create {}", temp.0.display()))?;
                file.seek(SeekFrom::Start(0))?;
                std::io::copy(
                    &mut flate2::read::MultiGzDecoder::new(BufReader::new(file)),
                    &mut out,
                )
                .with_context(|| format!("failed to decompress {}", path.display()))?;
                tar_path = temp.0.clone();
                unzipped = Some(temp);
            }
        }
        // The tar reader's own words would quote the file's first bytes
        // (a text file's lines, a binary's garbage): say what it is not.
        let members = index_tar(&tar_path).map_err(|_| {
            anyhow::anyhow!(
                "{} is not an image: neither a directory nor a tar file (gzipped or not)",
                path.display()
            )
        })?;
        Ok(Archive::Tar {
            file: tar_path,
            members,
            _unzipped: unzipped,
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Archive::Dir(_) => "directory",
            Archive::Tar { .. } => "tar",
        }
    }

    fn has(&self, path: &str) -> bool {
        self.size(path).is_ok()
    }

    /// Where the member `path` is: in a tar, following links (at most 8).
    fn locate(&self, path: &str) -> Result<Located> {
        let mut rel = normalize(path, "")?;
        match self {
            Archive::Dir(root) => {
                let full = root.join(&rel);
                let real = full
                    .canonicalize()
                    .with_context(|| format!("the archive has no {rel}"))?;
                if !real.starts_with(root) {
                    bail!("{rel} leads outside the archive (to {})", real.display());
                }
                Ok(Located::Path(real))
            }
            Archive::Tar { members, .. } => {
                for _ in 0..8 {
                    match members.get(&rel) {
                        Some(Member::File { offset, size }) => {
                            return Ok(Located::Range(*offset, *size))
                        }
                        Some(Member::Link(target)) => rel = target.clone(),
                        None => bail!("the archive has no {rel}"),
                    }
                }
                bail!("{path}: too many links in the archive")
            }
        }
    }

    fn size(&self, path: &str) -> Result<u64> {
        Ok(match self.locate(path)? {
            Located::Path(p) => {
                let meta = fs::metadata(&p)?;
                if !meta.is_file() {
                    bail!("{path} is not a file");
                }
                meta.len()
            }
            Located::Range(_, size) => size,
        })
    }

    /// The member `path`, to read.
    fn member(&self, path: &str) -> Result<Box<dyn Read + Send + '_>> {
        match (self.locate(path)?, self) {
            (Located::Path(p), _) => {
                Ok(Box::new(fs::File::open(&p).with_context(|| {
                    format!("failed to open {}", p.display())
                })?))
            }
            (Located::Range(offset, size), Archive::Tar { file, .. }) => {
                let mut f = fs::File::open(file)
                    .with_context(|| format!("failed to open {}", file.display()))?;
                f.seek(SeekFrom::Start(offset))?;
                Ok(Box::new(f.take(size)))
            }
            (Located::Range(..), Archive::Dir(_)) => unreachable!("a directory has paths"),
        }
    }

    /// A JSON member, at most [`JSON_LIMIT`] bytes.
    fn read_small(&self, path: &str) -> Result<std::io::Cursor<Vec<u8>>> {
        Ok(std::io::Cursor::new(self.read_small_bytes(path)?))
    }

    fn read_small_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let size = self.size(path)?;
        if size > JSON_LIMIT {
            bail!("{path} is {size} bytes: too big for a manifest or a config");
        }
        let mut bytes = Vec::new();
        self.member(path)?
            .read_to_end(&mut bytes)
            .with_context(|| format!("failed to read {path}"))?;
        Ok(bytes)
    }

    /// The blob `descriptor` names (a JSON one), checked against its digest.
    fn read_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let digest = descriptor.digest();
        require_sha256(digest)?;
        let path = blob_path(digest);
        let bytes = self
            .read_small_bytes(&path)
            .with_context(|| format!("the blob {digest} is missing or unreadable"))?;
        let (actual, _) = crate::digest::sha256_of(&bytes[..])?;
        if actual != *digest {
            bail!("the blob {digest} does not match its digest: its bytes hash to {actual}");
        }
        Ok(bytes)
    }
}

enum Located {
    Path(PathBuf),
    Range(u64, u64),
}

/// Every member of the tar at `path`: files by offset, links by target.
fn index_tar(path: &Path) -> Result<HashMap<String, Member>> {
    let file = fs::File::open(path)?;
    let mut archive = tar::Archive::new(file);
    let mut members = HashMap::new();
    for entry in archive.entries_with_seek()? {
        let entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let Ok(rel) = normalize(&name, "") else {
            continue; // `..` in a member's name: never read
        };
        let member = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Member::File {
                offset: entry.raw_file_position(),
                size: entry.size(),
            },
            kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                let target = entry.link_name_bytes().unwrap_or_default();
                let target = String::from_utf8_lossy(&target).into_owned();
                // A symlink's target is relative to its directory, a hard link's to the root.
                let base = if kind == tar::EntryType::Symlink {
                    rel.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("")
                } else {
                    ""
                };
                match normalize(&target, base) {
                    Ok(target) => Member::Link(target),
                    Err(_) => continue,
                }
            }
            _ => continue,
        };
        members.insert(rel, member);
    }
    Ok(members)
}

/// `path` (relative to `base`) as a clean relative path: no `.`, and `..`
/// only within the archive.
fn normalize(path: &str, base: &str) -> Result<String> {
    let mut parts: Vec<&str> = if Path::new(path).is_absolute() {
        Vec::new()
    } else {
        base.split('/').filter(|p| !p.is_empty()).collect()
    };
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => {
                parts.push(p.to_str().ok_or_else(|| anyhow!("{path:?} is not UTF-8"))?)
            }
            Component::ParentDir if parts.pop().is_none() => {
                bail!("{path} leads outside the archive")
            }
            _ => {}
        }
    }
    Ok(parts.join("/"))
}
// ANCHOR_END: archive

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_archives_are_shortened_as_docker_shows_them() {
        for (given, want) in [
            ("docker.io/library/busybox:1.36", "busybox:1.36"),
            ("docker.io/someone/app", "someone/app:latest"),
            ("localhost/app:v1", "app:v1"),
            ("quay.io/org/app:v2", "quay.io/org/app:v2"),
            ("busybox", "busybox:latest"),
        ] {
            assert_eq!(familiar(given).unwrap().to_string(), want, "{given}");
        }
        let e = familiar("registry:5000/app:v1").unwrap_err().to_string();
        assert!(e.contains("give it a name"), "{e}");
    }

    #[test]
    fn digests_are_read_from_docker_archive_paths_only_where_they_are() {
        let hex = "a".repeat(64);
        let want = Some(format!("sha256:{hex}"));
        let got = |p: &str| digest_in_path(p).map(|d| d.to_string());
        assert_eq!(got(&format!("blobs/sha256/{hex}")), want);
        assert_eq!(got(&format!("{hex}.json")), want);
        assert_eq!(
            got(&format!("{hex}/layer.tar")),
            None,
            "a v1 id is no digest"
        );
        assert_eq!(got(&format!("{hex}/json")), None);
        assert_eq!(got(&format!("blobs/sha256/{}", "A".repeat(64))), None);
    }

    #[test]
    fn archive_paths_stay_inside_the_archive() {
        assert_eq!(normalize("./manifest.json", "").unwrap(), "manifest.json");
        assert_eq!(normalize("../b/layer.tar", "a").unwrap(), "b/layer.tar");
        assert_eq!(normalize("/abs/x", "a").unwrap(), "abs/x");
        assert!(normalize("../x", "").is_err());
        assert!(normalize("../../x", "a").is_err());
    }
}
