//! The content store: `target/images`, itself an OCI image layout (so that
//! `skopeo inspect oci:target/images:NAME:TAG` reads it), plus each layer
//! unpacked once:
//!
//! ```text
//! target/images/
//!   oci-layout                 {"imageLayoutVersion": "1.0.0"}
//!   index.json                 one manifest per NAME:TAG (the ref.name annotation)
//!   blobs/sha256/HEX           manifests, configs, layer tars: named by their digest
//!   layers/HEX/                a layer unpacked (overlay whiteouts), named by its diff-id
//!   cache/KEY                  a build step's image: its manifest digest (build.rs)
//!   tmp/                       the directories of the build steps running
//!   lock                       held while the index or layers/ change
//! ```
//!
//! Everything is named by what it holds, so two images that share a base
//! share its blob and its directory on disk.

use crate::digest::{require_sha256, HashingReader};
use crate::reference::Reference;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{
    Descriptor, DescriptorBuilder, Digest, ImageConfiguration, ImageIndex, ImageIndexBuilder,
    ImageManifest, MediaType, OciLayoutBuilder, ANNOTATION_REF_NAME,
};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The store's directory under cargo's target directory.
pub const STORE_DIR: &str = "images";

/// An image store on disk.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

/// An image in the store: its name, its manifest and its config.
#[derive(Debug, Clone)]
pub struct Image {
    pub reference: Reference,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    /// The config's digest: the image's ID, as `docker images` shows it.
    pub id: Digest,
    pub config: ImageConfiguration,
}

/// What [`Store::remove`] removed.
#[derive(Debug, Default)]
pub struct Removed {
    /// Blobs no image refers to any more (manifests, configs, layers).
    pub blobs: Vec<Digest>,
    /// Unpacked layers no image uses any more, by diff-id.
    pub layers: Vec<Digest>,
}

/// The layers a running container stands on, each held with a shared
/// flock on its directory until dropped: [`Store::collect_garbage`] leaves
/// a layer so held where it is (as docker refuses to remove an image a
/// container uses), and removes it once it is free and unused.
pub struct LayersInUse {
    _held: Vec<nix::fcntl::Flock<fs::File>>,
}

/// An exclusive hold on the store (flock on `lock`), released on drop.
pub struct StoreLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

impl Image {
    /// The layers' diff-ids, the base first (the config's `rootfs.diff_ids`).
    pub fn diff_ids(&self) -> Vec<Digest> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse().expect("checked when read"))
            .collect()
    }

    /// The unpacked layers as overlay lowers: the top first, as
    /// `lowerdir=` wants them. A layer the image has twice (two steps that
    /// made the same tar: `RUN touch /a` twice) is stacked once, where it
    /// is highest: overlayfs refuses a directory twice (ELOOP), and the
    /// copy below changes nothing, as the one above shows all it holds.
    pub fn lowers(&self, store: &Store) -> Vec<PathBuf> {
        let mut lowers: Vec<PathBuf> = Vec::new();
        for dir in self.diff_ids().iter().rev().map(|d| store.layer_dir(d)) {
            if !lowers.contains(&dir) {
                lowers.push(dir);
            }
        }
        lowers
    }
}

impl Store {
    /// `target/images`, beside chapter 4's `target/rootfs`.
    pub fn default_dir() -> Result<PathBuf> {
        let rootfs = workshop_rootfs::default_dir()?;
        Ok(rootfs.with_file_name(STORE_DIR))
    }

    /// The store at [`Store::default_dir`], made if missing.
    pub fn open_default() -> Result<Store> {
        Store::open(&Store::default_dir()?)
    }

    /// The store at `root`, made (empty) if missing.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store {
            root: root.to_path_buf(),
        };
        store.refuse_a_foreign_directory()?;
        for dir in [store.root.join("blobs/sha256"), store.root.join("layers")] {
            fs::create_dir_all(&dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            let _lock = store.lock()?;
            if !layout.exists() {
                let value = OciLayoutBuilder::default()
                    .image_layout_version("1.0.0")
                    .build()?;
                write_atomically(&layout, &serde_json::to_vec(&value)?)?;
                let index = ImageIndexBuilder::default()
                    .schema_version(2u32)
                    .media_type(MediaType::ImageIndex)
                    .manifests(Vec::<Descriptor>::new())
                    .build()?;
                write_atomically(
                    &store.root.join("index.json"),
                    &serde_json::to_vec_pretty(&index)?,
                )?;
            }
        }
        Ok(store)
    }

    /// A store is made in a new or empty directory only (or one a store
    /// began): `--store ~` or `--store /etc` must not scatter blobs/,
    /// layers/ and index.json among the files already there.
    fn refuse_a_foreign_directory(&self) -> Result<()> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Ok(()); // not there yet: made below
        };
        if self.root.join("oci-layout").exists() {
            return Ok(());
        }
        let own = ["blobs", "layers", "lock", "index.json", "cache", "tmp"];
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !own.contains(&name.as_str()) && !name.starts_with('.') {
                bail!(
                    "{} is not an image store: it has no oci-layout and holds {name:?}; give a new or empty directory",
                    self.root.display()
                );
            }
        }
        Ok(())
    }

    /// Hold the store's lock: every change of `index.json` or `layers/`
    /// happens under it, so two imports or builds at once cannot lose a tag
    /// or unpack a layer twice into the same place.
    pub fn lock(&self) -> Result<StoreLock> {
        let path = self.root.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| anyhow!("failed to lock {}: {errno}", path.display()))?;
        Ok(StoreLock { _lock: lock })
    }

    /// Hold `lowers` (layer directories of this store) for a container that
    /// runs over them; refused if one is gone (its image was removed).
    pub fn hold_layers(&self, lowers: &[PathBuf]) -> Result<LayersInUse> {
        let _lock = self.lock()?; // no garbage collection between the check and the hold
        let mut held = Vec::new();
        for dir in lowers {
            let file = fs::File::open(dir).with_context(|| {
                format!(
                    "the layer {} is gone (its image was removed?)",
                    dir.display()
                )
            })?;
            let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockShared)
                .map_err(|(_, errno)| anyhow!("failed to lock {}: {errno}", dir.display()))?;
            held.push(lock);
        }
        Ok(LayersInUse { _held: held })
    }

    /// Where the blob `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.digest())
    }

    /// Where the layer whose diff-id is `diff_id` is unpacked.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.digest())
    }

    /// Copy a blob into the store, hashing it on the way. With `expected`,
    /// a blob whose bytes do not hash to it is refused (and not kept),
    /// naming both digests. Returns the digest and the size.
    pub fn put_blob(&self, reader: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        if let Some(expected) = expected {
            require_sha256(expected)?;
        }
        let dir = self.root.join("blobs/sha256");
        let tmp = dir.join(format!(".partial-{}-{}", std::process::id(), unique()));
        let result = (|| {
            let mut file = fs::File::create(&tmp)
                .with_context(|| format!("failed to create {}", tmp.display()))?;
            let mut hashing = HashingReader::new(reader);
            std::io::copy(&mut hashing, &mut file)
                .with_context(|| format!("failed to write {}", tmp.display()))?;
            file.sync_all().ok();
            let (digest, size) = hashing.finish();
            if let Some(expected) = expected {
                if *expected != digest {
                    bail!(
                        "the blob {expected} does not match its digest: its bytes hash to {digest}"
                    );
                }
            }
            fs::rename(&tmp, self.blob_path(&digest))
                .with_context(|| format!("failed to store the blob {digest}"))?;
            Ok((digest, size))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Store a value as a JSON blob; its descriptor, with `media_type`.
    pub fn put_json(
        &self,
        value: &impl serde::Serialize,
        media_type: MediaType,
    ) -> Result<Descriptor> {
        let bytes = serde_json::to_vec(value)?;
        let (digest, size) = self.put_blob(&bytes[..], None)?;
        Ok(DescriptorBuilder::default()
            .media_type(media_type)
            .digest(digest)
            .size(size)
            .build()?)
    }

    /// Read a blob's bytes, checked against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        require_sha256(digest)?;
        let path = self.blob_path(digest);
        let mut bytes = Vec::new();
        let mut hashing = HashingReader::new(
            fs::File::open(&path).with_context(|| format!("the store has no blob {digest}"))?,
        );
        hashing
            .read_to_end(&mut bytes)
            .with_context(|| format!("failed to read {}", path.display()))?;
        let (actual, _) = hashing.finish();
        if actual != *digest {
            bail!("the stored blob {digest} is damaged: its bytes hash to {actual}");
        }
        Ok(bytes)
    }

    /// The store's `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.root.join("index.json");
        ImageIndex::from_file(&path).with_context(|| format!("failed to read {}", path.display()))
    }

    /// Name the manifest `manifest` as `reference` (replacing what had that
    /// name). Returns the manifest digest the name had before, if another.
    /// The caller holds the lock.
    pub fn tag(
        &self,
        _lock: &StoreLock,
        reference: &Reference,
        manifest: &Descriptor,
    ) -> Result<Option<Digest>> {
        let mut index = self.index()?;
        let name = reference.to_string();
        let mut before = None;
        let mut manifests: Vec<Descriptor> = Vec::new();
        for d in index.manifests() {
            if ref_name(d).as_deref() == Some(name.as_str()) {
                before = Some(d.digest().clone());
            } else {
                manifests.push(d.clone());
            }
        }
        let mut named = manifest.clone();
        let mut annotations = named.annotations().clone().unwrap_or_default();
        annotations.insert(ANNOTATION_REF_NAME.to_string(), name);
        named.set_annotations(Some(annotations));
        manifests.push(named);
        manifests.sort_by_key(|d| ref_name(d).unwrap_or_default());
        index.set_manifests(manifests);
        write_atomically(
            &self.root.join("index.json"),
            &serde_json::to_vec_pretty(&index)?,
        )?;
        Ok(before.filter(|b| b != manifest.digest()))
    }

    /// The image named `reference`, or an error that names the images
    /// there are.
    pub fn resolve(&self, reference: &Reference) -> Result<Image> {
        let name = reference.to_string();
        let index = self.index()?;
        let Some(descriptor) = index
            .manifests()
            .iter()
            .find(|d| ref_name(d).as_deref() == Some(name.as_str()))
        else {
            let known: Vec<String> = index.manifests().iter().filter_map(ref_name).collect();
            bail!(
                "no image {name} in {} (there {}: {})",
                self.root.display(),
                if known.len() == 1 { "is" } else { "are" },
                if known.is_empty() {
                    "none yet; import or build one".to_string()
                } else {
                    known.join(", ")
                }
            );
        };
        self.image(reference.clone(), descriptor.digest())
    }

    /// The image whose manifest is `manifest_digest`, read and checked.
    pub fn image(&self, reference: Reference, manifest_digest: &Digest) -> Result<Image> {
        let manifest = ImageManifest::from_reader(&self.read_blob(manifest_digest)?[..])
            .with_context(|| {
                format!(
                    "the manifest {manifest_digest} of {reference} is not an OCI image manifest"
                )
            })?;
        let id = manifest.config().digest().clone();
        let config =
            ImageConfiguration::from_reader(&self.read_blob(&id)?[..]).with_context(|| {
                format!("the config {id} of {reference} is not an OCI image config")
            })?;
        for diff_id in config.rootfs().diff_ids() {
            let digest: Digest = diff_id.parse().map_err(|e| {
                anyhow!("{reference}: the diff-id {diff_id:?} is not a digest: {e}")
            })?;
            require_sha256(&digest)?;
        }
        if config.rootfs().diff_ids().len() != manifest.layers().len() {
            bail!(
                "{reference}: the manifest has {} layers but the config names {} diff-ids",
                manifest.layers().len(),
                config.rootfs().diff_ids().len()
            );
        }
        Ok(Image {
            reference,
            manifest_digest: manifest_digest.clone(),
            manifest,
            id,
            config,
        })
    }

    /// Every named image, sorted by name.
    pub fn images(&self) -> Result<Vec<Image>> {
        let mut images = Vec::new();
        for d in self.index()?.manifests() {
            if let Some(name) = ref_name(d) {
                let reference: Reference = name
                    .parse()
                    .map_err(|e| anyhow!("index.json names an image {name:?}: {e}"))?;
                let image = self.image(reference.clone(), d.digest()).with_context(|| {
                    format!("the image {reference} is damaged: `rmi {reference}` removes it")
                })?;
                images.push(image);
            }
        }
        images.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(images)
    }

    /// Remove the name `reference`, then every blob and unpacked layer that
    /// no remaining image uses, nor the build cache (`build::prune_cache`).
    pub fn remove(&self, reference: &Reference) -> Result<Removed> {
        let lock = self.lock()?;
        let mut index = self.index()?;
        let name = reference.to_string();
        if !index
            .manifests()
            .iter()
            .any(|d| ref_name(d).as_deref() == Some(name.as_str()))
        {
            self.resolve(reference)?; // the error that names the images there are
        }
        let kept: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| ref_name(d).as_deref() != Some(name.as_str()))
            .cloned()
            .collect();
        index.set_manifests(kept);
        write_atomically(
            &self.root.join("index.json"),
            &serde_json::to_vec_pretty(&index)?,
        )?;
        self.collect_garbage(&lock)
    }

    /// Remove blobs and layer directories that no named image uses, nor
    /// the build cache (its steps' images: `build::prune_cache` lets them
    /// go). The caller holds the lock.
    pub fn collect_garbage(&self, lock: &StoreLock) -> Result<Removed> {
        self.reclaim_killed(lock)?;
        let mut blobs_used = BTreeSet::new();
        let mut layers_used = BTreeSet::new();
        for image in self
            .images()?
            .into_iter()
            .chain(crate::build::cached_images(self)?)
        {
            blobs_used.insert(image.manifest_digest.digest().to_string());
            blobs_used.insert(image.id.digest().to_string());
            for layer in image.manifest.layers() {
                blobs_used.insert(layer.digest().digest().to_string());
            }
            for diff_id in image.diff_ids() {
                layers_used.insert(diff_id.digest().to_string());
            }
        }
        let mut removed = Removed::default();
        for (dir, used, out) in [
            ("blobs/sha256", &blobs_used, &mut removed.blobs),
            ("layers", &layers_used, &mut removed.layers),
        ] {
            let dir = self.root.join(dir);
            for entry in
                fs::read_dir(&dir).with_context(|| format!("failed to read {}", dir.display()))?
            {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.len() != 64 || used.contains(&name) {
                    continue; // a partial file of a running import is not ours to judge
                }
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    if in_use(&path) {
                        continue; // a running container stands on it: a later collection takes it
                    }
                    workshop_rootfs::remove_tree(&path)?;
                } else {
                    fs::remove_file(&path)
                        .with_context(|| format!("failed to remove {}", path.display()))?;
                }
                out.push(format!("sha256:{name}").parse().expect("64 hex digits"));
            }
        }
        Ok(removed)
    }

    /// Remove the files an import killed halfway left: its blobs being
    /// written (`blobs/sha256/.partial-PID-N`) and its gzipped archive
    /// decompressed (`.import-PID-N.tar`), once process PID is gone. (Its
    /// `layers/.partial-*` go when the next layer is unpacked.) The caller
    /// holds the lock.
    pub fn reclaim_killed(&self, _lock: &StoreLock) -> Result<()> {
        for (dir, prefix) in [("blobs/sha256", ".partial-"), ("", ".import-")] {
            let dir = self.root.join(dir);
            for entry in
                fs::read_dir(&dir).with_context(|| format!("failed to read {}", dir.display()))?
            {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = name
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.split('-').next())
                    .and_then(|pid| pid.parse::<i32>().ok())
                else {
                    continue;
                };
                if process_is_gone(pid) && entry.file_type()?.is_file() {
                    let path = entry.path();
                    fs::remove_file(&path)
                        .with_context(|| format!("failed to remove {}", path.display()))?;
                }
            }
        }
        Ok(())
    }

    /// The size on disk of each unpacked layer, by diff-id hex (for `images`).
    pub fn layer_sizes(&self) -> Result<HashMap<String, u64>> {
        let mut sizes = HashMap::new();
        let dir = self.root.join("layers");
        for entry in
            fs::read_dir(&dir).with_context(|| format!("failed to read {}", dir.display()))?
        {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                let stats = workshop_rootfs::stats(&entry.path())?;
                sizes.insert(
                    entry.file_name().to_string_lossy().into_owned(),
                    stats.bytes,
                );
            }
        }
        Ok(sizes)
    }
}

/// Whether a running container holds the layer directory `dir`
/// ([`Store::hold_layers`]): an exclusive flock on it cannot be had now.
fn in_use(dir: &Path) -> bool {
    let Ok(file) = fs::File::open(dir) else {
        return false;
    };
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err()
}

/// The `org.opencontainers.image.ref.name` of an index entry.
pub fn ref_name(descriptor: &Descriptor) -> Option<String> {
    descriptor
        .annotations()
        .as_ref()?
        .get(ANNOTATION_REF_NAME)
        .cloned()
}

/// Write `path` by writing a temporary file beside it and renaming it over,
/// so that a reader sees the old or the new file, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        unique()
    ));
    let mut file =
        fs::File::create(&tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("failed to write {}", path.display()))
}

/// A number unique within this process, for temporary names.
/// Whether no process `pid` exists (the one whose name a temporary file
/// or directory carries: then it was killed before it could remove it).
pub(crate) fn process_is_gone(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH)
}

pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{ImageConfigurationBuilder, ImageManifestBuilder, RootFsBuilder};
    use workshop_testkit::TempDir;

    fn reference(text: &str) -> Reference {
        text.parse().unwrap()
    }

    /// An image of one layer blob (not unpacked: these tests need no root),
    /// its config telling it apart by `cmd`; its manifest's descriptor.
    fn image(store: &Store, layer: &[u8], cmd: &str) -> Descriptor {
        let (diff_id, size) = store.put_blob(layer, None).unwrap();
        fs::create_dir_all(store.layer_dir(&diff_id)).unwrap();
        let config = ImageConfigurationBuilder::default()
            .config(
                oci_spec::image::ConfigBuilder::default()
                    .cmd(vec![cmd.to_string()])
                    .build()
                    .unwrap(),
            )
            .rootfs(
                RootFsBuilder::default()
                    .diff_ids(vec![diff_id.to_string()])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let config = store.put_json(&config, MediaType::ImageConfig).unwrap();
        let layer = DescriptorBuilder::default()
            .media_type(MediaType::ImageLayer)
            .digest(diff_id)
            .size(size)
            .build()
            .unwrap();
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config)
            .layers(vec![layer])
            .build()
            .unwrap();
        store.put_json(&manifest, MediaType::ImageManifest).unwrap()
    }

    fn entries(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn a_tag_names_one_manifest_and_a_new_one_replaces_it() {
        let dir = TempDir::new("ch09-store-tag");
        let store = Store::open(dir.path()).unwrap();
        let (one, two) = (image(&store, b"one", "1"), image(&store, b"two", "2"));
        let lock = store.lock().unwrap();
        assert_eq!(store.tag(&lock, &reference("app:v1"), &one).unwrap(), None);
        assert_eq!(
            store.tag(&lock, &reference("app:v1"), &one).unwrap(),
            None,
            "the same again"
        );
        let before = store.tag(&lock, &reference("app:v1"), &two).unwrap();
        assert_eq!(before.as_ref(), Some(one.digest()));
        assert_eq!(
            store.index().unwrap().manifests().len(),
            1,
            "one entry per name"
        );
        let app = store.resolve(&reference("app:v1")).unwrap();
        assert_eq!(&app.manifest_digest, two.digest());
        assert_eq!(app.diff_ids().len(), 1);
    }

    #[test]
    fn resolve_names_the_images_there_are() {
        let dir = TempDir::new("ch09-store-resolve");
        let store = Store::open(dir.path()).unwrap();
        let e = store
            .resolve(&reference("nothing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none yet"), "{e}");
        let one = image(&store, b"one", "1");
        let lock = store.lock().unwrap();
        store.tag(&lock, &reference("b:1"), &one).unwrap();
        store.tag(&lock, &reference("a:1"), &one).unwrap();
        let e = store.resolve(&reference("c")).unwrap_err().to_string();
        assert!(
            e.contains("no image c:latest") && e.contains("there are: a:1, b:1"),
            "{e}"
        );
        let names: Vec<String> = store
            .images()
            .unwrap()
            .iter()
            .map(|i| i.reference.to_string())
            .collect();
        assert_eq!(names, ["a:1", "b:1"]);
    }

    #[test]
    fn remove_takes_the_name_and_only_what_no_other_image_uses() {
        let dir = TempDir::new("ch09-store-remove");
        let store = Store::open(dir.path()).unwrap();
        let (one, two) = (image(&store, b"one", "1"), image(&store, b"two", "2"));
        {
            let lock = store.lock().unwrap();
            store.tag(&lock, &reference("one"), &one).unwrap();
            store.tag(&lock, &reference("one:again"), &one).unwrap();
            store.tag(&lock, &reference("two"), &two).unwrap();
        }
        // 2 manifests, 2 configs, 2 layer blobs; 2 layer directories.
        assert_eq!(entries(&dir.path().join("blobs/sha256")), 6);
        let removed = store.remove(&reference("one")).unwrap();
        assert!(
            removed.blobs.is_empty() && removed.layers.is_empty(),
            "one:again keeps it"
        );
        let removed = store.remove(&reference("one:again")).unwrap();
        assert_eq!((removed.blobs.len(), removed.layers.len()), (3, 1));
        assert!(!store.layer_dir(&removed.layers[0]).exists());
        assert_eq!(entries(&dir.path().join("blobs/sha256")), 3);
        assert_eq!(entries(&dir.path().join("layers")), 1);
        store.resolve(&reference("two")).unwrap();
        let e = store.remove(&reference("one")).unwrap_err().to_string();
        assert!(e.contains("no image one:latest"), "{e}");
    }

    #[test]
    fn rmi_leaves_the_layers_of_a_running_container_until_it_ends() {
        let dir = TempDir::new("ch09-store-in-use");
        let store = Store::open(dir.path()).unwrap();
        let one = image(&store, b"one", "1");
        store
            .tag(&store.lock().unwrap(), &reference("one"), &one)
            .unwrap();
        let lowers = store.resolve(&reference("one")).unwrap().lowers(&store);
        let held = store.hold_layers(&lowers).unwrap(); // as `run` does
        let removed = store.remove(&reference("one")).unwrap();
        assert!(removed.layers.is_empty(), "{removed:?}");
        assert!(lowers[0].is_dir(), "the container's root is still there");
        drop(held); // the container ended
        let removed = store.collect_garbage(&store.lock().unwrap()).unwrap();
        assert_eq!(removed.layers.len(), 1);
        assert!(!lowers[0].exists());
        let e = store.hold_layers(&lowers).err().unwrap().to_string();
        assert!(e.contains("is gone"), "{e}");
    }

    #[test]
    fn what_a_killed_import_left_is_reclaimed() {
        let dir = TempDir::new("ch09-store-killed");
        let store = Store::open(dir.path()).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap(); // reaped: its pid names no process now
        let left = [
            format!("blobs/sha256/.partial-{dead}-0"),
            format!(".import-{dead}-1.tar"),
        ];
        for file in &left {
            fs::write(dir.path().join(file), "half").unwrap();
        }
        let lock = store.lock().unwrap();
        store.collect_garbage(&lock).unwrap();
        for file in &left {
            assert!(!dir.path().join(file).exists(), "{file} is left");
        }
    }

    #[test]
    fn a_damaged_image_is_named_and_rmi_removes_it() {
        let dir = TempDir::new("ch09-store-damaged");
        let store = Store::open(dir.path()).unwrap();
        let (one, two) = (image(&store, b"one", "1"), image(&store, b"two", "2"));
        {
            let lock = store.lock().unwrap();
            store.tag(&lock, &reference("one"), &one).unwrap();
            store.tag(&lock, &reference("two"), &two).unwrap();
        }
        fs::remove_file(store.blob_path(one.digest())).unwrap(); // its manifest
        let e = format!("{:#}", store.images().unwrap_err());
        assert!(e.contains("`rmi one:latest` removes it"), "{e}");
        store.remove(&reference("one")).unwrap();
        let names: Vec<String> = store
            .images()
            .unwrap()
            .iter()
            .map(|i| i.reference.to_string())
            .collect();
        assert_eq!(names, ["two:latest"]);
    }

    #[test]
    fn a_store_is_made_in_a_new_or_empty_directory_only() {
        let dir = TempDir::new("ch09-store-foreign");
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let e = Store::open(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("not an image store") && e.contains("notes.txt"),
            "{e}"
        );
        assert!(!dir.path().join("blobs").exists(), "nothing made there");
        Store::open(&dir.path().join("new")).unwrap();
        Store::open(&dir.path().join("new")).unwrap(); // a store: opened again
        fs::create_dir(dir.path().join("empty")).unwrap();
        Store::open(&dir.path().join("empty")).unwrap();
        // A store whose making was cut before its oci-layout is finished.
        fs::create_dir_all(dir.path().join("cut/blobs/sha256")).unwrap();
        fs::create_dir_all(dir.path().join("cut/layers")).unwrap();
        Store::open(&dir.path().join("cut")).unwrap();
    }

    #[test]
    fn a_partial_blob_of_a_running_import_is_left_to_it() {
        let dir = TempDir::new("ch09-store-partial");
        let store = Store::open(dir.path()).unwrap();
        fs::write(dir.path().join("blobs/sha256/.partial-1-0"), "half").unwrap();
        fs::create_dir(dir.path().join("layers/.partial-1-0")).unwrap();
        let lock = store.lock().unwrap();
        let removed = store.collect_garbage(&lock).unwrap();
        assert!(removed.blobs.is_empty() && removed.layers.is_empty());
        assert!(dir.path().join("blobs/sha256/.partial-1-0").exists());
    }

    #[test]
    fn a_blob_that_does_not_hash_to_its_digest_is_not_kept() {
        let dir = TempDir::new("ch09-store-put");
        let store = Store::open(dir.path()).unwrap();
        let (abc, _) = crate::digest::sha256_of(&b"abc"[..]).unwrap();
        let e = store
            .put_blob(&b"abd"[..], Some(&abc))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&abc.to_string()) && e.contains("does not match"),
            "{e}"
        );
        assert_eq!(entries(&dir.path().join("blobs/sha256")), 0);
        store.put_blob(&b"abc"[..], Some(&abc)).unwrap();
        assert_eq!(store.read_blob(&abc).unwrap(), b"abc");
    }
}
