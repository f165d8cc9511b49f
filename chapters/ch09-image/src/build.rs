//! Build an image from a Containerfile: `FROM`, `RUN`, `COPY`, `ENV`,
//! `WORKDIR`, `CMD`, `ENTRYPOINT`. Each `RUN` runs in a container over the
//! layers so far and its upper becomes a new layer; a cache keyed on the
//! parent, the instruction and (for `COPY`) the files' content skips what
//! is unchanged.
//!
//! Every step makes an image (a config and a manifest in the store, named
//! by nothing); the last one gets the tag. The cache is a directory of
//! small files, `cache/KEY`, each holding the manifest digest of the image
//! a step made, KEY being the sha256 of the parent image's manifest digest,
//! the instruction's text and, for `COPY`, the digest of the files copied.
//! A rebuild with nothing changed finds every step there, reads a few small
//! blobs, and starts no container. The store's garbage collection keeps
//! what the cache points to ([`cached_images`]); [`prune_cache`] lets it go,
//! as `docker builder prune` does.

mod containerfile;

pub use containerfile::{parse, Instruction, Op};

use crate::commit::{self, NewLayer};
use crate::config::Process;
use crate::digest::sha256_of;
use crate::reference::Reference;
use crate::store::{write_atomically, Image, Removed, Store};
use anyhow::{anyhow, bail, Context, Result};
use ch01_clone::observe;
use ch08_overlay::{enter_layers, in_lowers, is_whiteout, Layers, FLAGS};
use oci_spec::image::{DescriptorBuilder, Digest, MediaType};
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};
use workshop::process::Exit;

/// What a build did.
#[derive(Debug)]
pub struct Built {
    pub image: Image,
    /// Instructions after `FROM`: one step each.
    pub steps: usize,
    /// Steps whose layer (or config change) came from the cache.
    pub cached: usize,
    /// Containers started (one per `RUN` not cached).
    pub containers: usize,
}

/// The store's cache directory: `cache/KEY` holds a manifest digest.
pub const CACHE_DIR: &str = "cache";
/// Where a build's steps work: `tmp/KIND-PID-N`, on the store's filesystem
/// so that an upper moves into `layers/` with a rename.
const TMP_DIR: &str = "tmp";

/// The image so far.
struct State {
    /// None: `FROM scratch`, nothing made yet.
    image: Option<Image>,
    /// Whether this Containerfile has set `CMD` (an `ENTRYPOINT` clears an
    /// inherited `CMD`, not one set here: docker's rule).
    cmd_set: bool,
}

// ANCHOR: build
/// Build `context` (a directory with a `Containerfile` or `Dockerfile`, or
/// `file` when given) into the image `tag`. Like every chapter's run, call
/// it from a process that has blocked the termination signals
/// (`workshop::main` does), one thread only: `RUN` steps clone().
pub fn build(
    store: &Store,
    context: &Path,
    file: Option<&Path>,
    tag: &Reference,
    progress: bool,
) -> Result<Built> {
    let context = fs::canonicalize(context)
        .with_context(|| format!("the build context {} is not there", context.display()))?;
    if !context.is_dir() {
        bail!("the build context {} is not a directory", context.display());
    }
    let file = match file {
        Some(file) => file.to_path_buf(),
        None => ["Containerfile", "Dockerfile"]
            .iter()
            .map(|name| context.join(name))
            .find(|path| path.is_file())
            .ok_or_else(|| {
                anyhow!(
                    "{} has no Containerfile or Dockerfile (or name one with -f FILE)",
                    context.display()
                )
            })?,
    };
    let text =
        fs::read_to_string(&file).with_context(|| format!("failed to read {}", file.display()))?;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let instructions = parse(&text, &name)?; // every line checked before any step runs
    reclaim_stale(store)?;

    let (from, steps) = instructions.split_first().expect("parse returns a FROM");
    let mut state = State {
        image: match &from.op {
            Op::From(Some(base)) => {
                let base: Reference = base
                    .parse()
                    .map_err(|e| anyhow!("{name} line {}: {e}", from.line))?;
                Some(
                    store
                        .resolve(&base)
                        .with_context(|| format!("{name} line {}: {}", from.line, from.text))?,
                )
            }
            _ => None,
        },
        cmd_set: false,
    };
    let mut bar = Progress::new(progress, steps.len());
    let (mut cached, mut containers) = (0, 0);
    for (n, step) in steps.iter().enumerate() {
        let what = format!(
            "step {}/{} ({name} line {}: {})",
            n + 1,
            steps.len(),
            step.line,
            step.text
        );
        workshop::process::stop_if_interrupted()?; // a Ctrl-C between steps stops here
        bar.step(n, &what);
        let key = cache_key(&context, &state, step).with_context(|| what.clone())?;
        match cached_image(store, &key) {
            Some(image) => {
                state.image = Some(image);
                cached += 1;
            }
            None => {
                let image = run_step(store, &context, &state, step, &key, &mut containers)
                    .with_context(|| format!("{what} failed"))?;
                state.image = Some(image);
            }
        }
        state.cmd_set |= matches!(step.op, Op::Cmd(_));
    }
    bar.finish();

    let Some(image) = state.image else {
        bail!("{name} makes nothing: FROM scratch needs a step after it");
    };
    let lock = store.lock()?;
    // A prune or rmi between two steps may have taken a step's image (it was
    // in the cache only): never name an image the store no longer holds.
    let manifest = fs::metadata(store.blob_path(&image.manifest_digest));
    let (Ok(manifest), true) = (manifest, whole(store, &image)) else {
        bail!(
            "the store changed during the build (a prune or rmi took a step's image): build again"
        );
    };
    let size = manifest.len();
    let descriptor = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .digest(image.manifest_digest.clone())
        .size(size)
        .build()?;
    store.tag(&lock, tag, &descriptor)?;
    drop(lock);
    Ok(Built {
        image: Image {
            reference: tag.clone(),
            ..image
        },
        steps: steps.len(),
        cached,
        containers,
    })
}
// ANCHOR_END: build

// ANCHOR: cache_key
/// A step's cache key: the sha256 of the image it starts from (its
/// manifest's digest: its layers and config), the instruction as written,
/// and for `COPY` the digest of the files it copies. Equal keys, equal
/// results: a rebuild takes the image made before.
fn cache_key(context: &Path, state: &State, step: &Instruction) -> Result<String> {
    let mut hash = Sha256::new();
    hash.update(b"workshop build cache 1\n");
    match &state.image {
        Some(image) => hash.update(image.manifest_digest.to_string()),
        None => hash.update("scratch"),
    }
    hash.update(b"\n");
    hash.update(step.text.as_bytes());
    hash.update(b"\n");
    match &step.op {
        Op::Copy { sources, .. } => hash.update(copy_digest(context, sources)?.as_bytes()),
        Op::Entrypoint(_) if state.cmd_set => hash.update(b"CMD set"), // see State::cmd_set
        _ => {}
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
// ANCHOR_END: cache_key

/// The image a step of key `key` made before, if the cache has it and
/// the store still holds all of it.
fn cached_image(store: &Store, key: &str) -> Option<Image> {
    let text = fs::read_to_string(store.root.join(CACHE_DIR).join(key)).ok()?;
    let digest: Digest = text.trim().parse().ok()?;
    let image = store.image(cache_label(key), &digest).ok()?;
    whole(store, &image).then_some(image)
}

/// Whether the store holds all of `image`: its config, its layer blobs
/// and their unpacked directories.
fn whole(store: &Store, image: &Image) -> bool {
    store.blob_path(&image.id).is_file()
        && image
            .manifest
            .layers()
            .iter()
            .all(|l| store.blob_path(l.digest()).is_file())
        && image.diff_ids().iter().all(|d| store.layer_dir(d).is_dir())
}

/// The name a cached step's image carries in memory (never in the index).
fn cache_label(key: &str) -> Reference {
    Reference {
        name: "build-cache".to_string(),
        tag: key[..12].to_string(),
    }
}

/// Every image the build cache points to, whole: the store's garbage
/// collection keeps them ([`Store::collect_garbage`]).
pub fn cached_images(store: &Store) -> Result<Vec<Image>> {
    let dir = store.root.join(CACHE_DIR);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(Vec::new()); // no build yet
    };
    let mut images = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.len() == 64 {
            images.extend(cached_image(store, &name));
        }
    }
    Ok(images)
}

/// Forget the build cache (`docker builder prune`), then remove what no
/// named image uses any more.
pub fn prune_cache(store: &Store) -> Result<Removed> {
    let lock = store.lock()?;
    let dir = store.root.join(CACHE_DIR);
    if dir.exists() {
        workshop_rootfs::remove_tree(&dir)?;
    }
    store.collect_garbage(&lock)
}

// ANCHOR: run_step
/// Run one step that the cache did not have: its image, written to the
/// store and remembered under `key`.
fn run_step(
    store: &Store,
    context: &Path,
    state: &State,
    step: &Instruction,
    key: &str,
    containers: &mut usize,
) -> Result<Image> {
    let parent = state.image.as_ref();
    let mut image_config = commit::base_config(parent)?;
    let mut config = image_config.config().clone().unwrap_or_default();
    let mut env = config.env().clone().unwrap_or_default();
    let lowers = parent.map(|p| p.lowers(store)).unwrap_or_default();
    let mut staged = None; // the new layer's directory, as an upper
    match &step.op {
        Op::Run(argv) => {
            // The config so far as `run` would start it, but RUN's command
            // is the whole command: no Entrypoint before it (docker's rule).
            let mut for_run = image_config.clone();
            let mut without_entrypoint = config.clone();
            without_entrypoint.set_entrypoint(None);
            for_run.set_config(Some(without_entrypoint));
            let process = crate::config::process(&for_run, argv, &lowers)?;
            staged = Some(run_in_container(store, lowers, &process)?);
            *containers += 1;
        }
        Op::Copy { sources, dest } => {
            let workdir = config.working_dir().clone().unwrap_or_default();
            staged = Some(stage_copy(
                store, context, &lowers, sources, dest, &workdir,
            )?);
        }
        Op::Env(args) => {
            for (key, value) in containerfile::env_pairs(args, &env)? {
                env.retain(|kv| kv.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
                env.push(format!("{key}={value}"));
            }
            config.set_env(Some(env));
        }
        Op::Workdir(dir) => {
            let current = config.working_dir().clone().unwrap_or_default();
            let dir = Path::new("/")
                .join(current)
                .join(containerfile::expand(dir, &env));
            config.set_working_dir(Some(normalise(&dir).to_string_lossy().into_owned()));
        }
        Op::Cmd(argv) => {
            config.set_cmd(Some(argv.clone()));
        }
        Op::Entrypoint(argv) => {
            config.set_entrypoint(Some(argv.clone()));
            if !state.cmd_set {
                config.set_cmd(None); // an inherited CMD was for another entrypoint
            }
        }
        Op::From(_) => unreachable!("parse allows one FROM, the first"),
    }
    image_config.set_config(Some(config));

    // Under the lock from the first blob to the cache entry: a garbage
    // collection (rmi) at the same time sees all of it, or none.
    let lock = store.lock()?;
    let layer: Option<NewLayer> = match &staged {
        Some(staged) => Some(commit::commit_dir(store, &lock, &staged.upper)?),
        None => None,
    };
    let manifest = commit::write_image(
        store,
        &lock,
        parent,
        layer.as_ref(),
        image_config,
        &step.text,
    )?;
    let cache = store.root.join(CACHE_DIR);
    fs::create_dir_all(&cache).with_context(|| format!("failed to create {}", cache.display()))?;
    write_atomically(
        &cache.join(key),
        format!("{}\n", manifest.digest()).as_bytes(),
    )?;
    drop(staged); // the run's work and merged directories go
    store.image(cache_label(key), manifest.digest())
}
// ANCHOR_END: run_step

/// A new layer's directory while a step makes it, and what to remove after.
struct Staged {
    upper: PathBuf,
    _layers: Option<Layers>,
    _dir: Option<TmpDir>,
}

// ANCHOR: run_in_container
/// Run `process` (the step's command with the config's environment,
/// working directory and user) in a container over `lowers` (the image so
/// far), lo its only network; its upper, if it exits 0. Anything else
/// fails the step, with the exit code and the end of what it printed.
fn run_in_container(store: &Store, lowers: Vec<PathBuf>, process: &Process) -> Result<Staged> {
    if lowers.is_empty() {
        bail!("RUN needs a layer to run in, and FROM scratch has none yet: COPY a shell in first");
    }
    let _held = store.hold_layers(&lowers)?; // an rmi or prune meanwhile leaves them be
    let layers = Layers::create(&tmp_dir(store, "run")?, lowers, false)?;
    let seen = observe(FLAGS, || {
        ch06_net::bring_up_loopback()?; // lo only: no way out
        ch05_uts::set_hostname("build")?;
        enter_layers(&layers)?; // chapter 8: the overlay, then pivot_root into it
        let null = fs::File::open("/dev/null").context("failed to open /dev/null")?;
        nix::unistd::dup2_stdin(null).context("failed to dup2 /dev/null onto stdin")?;
        process.exec() // the working directory (made if missing), the user, the image's env
    })?;
    if seen.exit != Exit::Code(0) {
        let output = seen.output.trim_end();
        let tail: Vec<&str> = output.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{} ended with {}{}",
            process.argv.join(" "),
            seen.exit,
            if tail.is_empty() {
                String::new()
            } else {
                format!(", after printing:\n{}", tail.join("\n"))
            }
        );
    }
    Ok(Staged {
        upper: layers.upper.clone(),
        _layers: Some(layers),
        _dir: None,
    })
}
// ANCHOR_END: run_in_container

// ANCHOR: copy
/// Lay out what `COPY sources dest` adds, as an upper would hold it: the
/// files, owned by root with their modes, and the directories on the way
/// with the attributes they have in the image (0755 root when new).
fn stage_copy(
    store: &Store,
    context: &Path,
    lowers: &[PathBuf],
    sources: &[String],
    dest: &str,
    workdir: &str,
) -> Result<Staged> {
    let dir = TmpDir::create(store, "copy")?;
    let root = dir.0.clone();
    let dest_path = normalise(&Path::new("/").join(workdir).join(dest));
    let rel_dest = dest_path.strip_prefix("/").expect("normalised is absolute");
    let into_dir = dest.ends_with('/')
        || sources.len() > 1
        || image_entry(lowers, rel_dest).is_some_and(|m| m.is_dir());
    for source in sources {
        let from = resolve_source(context, source)?;
        let meta =
            fs::metadata(&from).with_context(|| format!("failed to stat {}", from.display()))?;
        if meta.is_dir() {
            make_parents(&root, lowers, rel_dest)?;
            copy_tree(&from, &root.join(rel_dest))?;
        } else {
            let target = if into_dir {
                let name = Path::new(source)
                    .file_name()
                    .ok_or_else(|| anyhow!("COPY {source}: the source names no file"))?;
                rel_dest.join(name)
            } else {
                rel_dest.to_path_buf()
            };
            if target.as_os_str().is_empty() {
                bail!("COPY {source} {dest}: a file cannot replace /");
            }
            make_parents(&root, lowers, target.parent().unwrap_or(Path::new("")))?;
            copy_entry(&from, &root.join(&target), &meta)?;
        }
    }
    Ok(Staged {
        upper: root,
        _layers: None,
        _dir: Some(dir),
    })
}
// ANCHOR_END: copy

// ANCHOR: resolve_source
/// A `COPY` source inside the context, with every symlink resolved: one
/// that leads out of the context (`../x`, or a link to `/etc`) is refused.
fn resolve_source(context: &Path, source: &str) -> Result<PathBuf> {
    let rel = Path::new(source.trim_start_matches('/')); // `/x` is the context's x, as docker reads it
    if rel
        .components()
        .try_fold(0i32, |depth, c| match c {
            Component::ParentDir if depth == 0 => None,
            Component::ParentDir => Some(depth - 1),
            Component::Normal(_) => Some(depth + 1),
            _ => Some(depth),
        })
        .is_none()
    {
        bail!(
            "COPY {source}: outside the build context {}",
            context.display()
        );
    }
    let path = context.join(rel);
    let real = fs::canonicalize(&path).with_context(|| {
        format!(
            "COPY {source}: no such file in the build context {}",
            context.display()
        )
    })?;
    if !real.starts_with(context) {
        bail!(
            "COPY {source}: it leads to {}, outside the build context {} (a symlink may not lead out)",
            real.display(),
            context.display()
        );
    }
    Ok(real)
}
// ANCHOR_END: resolve_source

/// The digest of what `COPY sources` copies: each entry's name, type,
/// mode and content (or link target), in a stable order.
fn copy_digest(context: &Path, sources: &[String]) -> Result<String> {
    let mut hash = Sha256::new();
    for source in sources {
        let from = resolve_source(context, source)?;
        hash.update(source.as_bytes());
        hash.update(b"\0");
        let mut entries = Vec::new();
        workshop_rootfs::walk(&from, &mut |path, meta| {
            entries.push((path.to_path_buf(), meta.clone()));
            Ok(())
        })?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, meta) in entries {
            let rel = path.strip_prefix(&from).expect("walked beneath it");
            hash.update(rel.as_os_str().as_bytes());
            hash.update(format!("\0{:o}\0", meta.mode()).as_bytes());
            if meta.is_file() {
                let (digest, _) = sha256_of(
                    fs::File::open(&path)
                        .with_context(|| format!("failed to open {}", path.display()))?,
                )?;
                hash.update(digest.to_string().as_bytes());
            } else if meta.file_type().is_symlink() {
                hash.update(fs::read_link(&path)?.as_os_str().as_bytes());
            }
            hash.update(b"\0");
        }
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Copy the contents of the directory `from` into `to` (made if missing),
/// symlinks as symlinks.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(from)
        .with_context(|| format!("failed to read {}", from.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for name in names {
        let path = from.join(&name);
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("failed to stat {}", path.display()))?;
        copy_entry(&path, &to.join(&name), &meta)?;
    }
    Ok(())
}

/// Copy one file, directory (with what it holds) or symlink, owned by root.
fn copy_entry(from: &Path, to: &Path, meta: &fs::Metadata) -> Result<()> {
    let kind = meta.file_type();
    if let Ok(old) = fs::symlink_metadata(to) {
        if !(old.is_dir() && kind.is_dir()) {
            workshop_rootfs::remove_tree(to)?; // a later source wins
        }
    }
    let mode = fs::Permissions::from_mode(meta.mode() & 0o7777);
    if kind.is_dir() {
        if !to.is_dir() {
            fs::create_dir(to).with_context(|| format!("failed to create {}", to.display()))?;
        }
        copy_tree(from, to)?;
        fs::set_permissions(to, mode)?;
    } else if kind.is_symlink() {
        let target = fs::read_link(from)?;
        std::os::unix::fs::symlink(&target, to)
            .with_context(|| format!("failed to create {}", to.display()))?;
    } else if kind.is_file() {
        fs::copy(from, to)
            .with_context(|| format!("failed to copy {} to {}", from.display(), to.display()))?;
        fs::set_permissions(to, mode)?;
    } else {
        bail!(
            "COPY: {} is not a file, directory or symlink",
            from.display()
        );
    }
    std::os::unix::fs::lchown(to, Some(0), Some(0))
        .with_context(|| format!("failed to chown {}", to.display()))?;
    Ok(())
}

/// Make `rel` and the directories above it in the staged layer `root`,
/// each with its mode and owner in the image (0755 root:root when the
/// image has none). A symlink or a file on the way is refused: this
/// builder does not resolve a destination through the image's symlinks.
fn make_parents(root: &Path, lowers: &[PathBuf], rel: &Path) -> Result<()> {
    let mut at = PathBuf::new();
    for part in rel.components() {
        at.push(part);
        let staged = root.join(&at);
        if staged.is_dir() {
            continue;
        }
        let (mode, uid, gid) = match image_entry(lowers, &at) {
            None => (0o755, 0, 0),
            Some(meta) if meta.is_dir() => (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            Some(meta) if meta.file_type().is_symlink() => bail!(
                "COPY into /{}: a symlink in the image; name the directory it leads to",
                at.display()
            ),
            Some(_) => bail!(
                "COPY into /{}: the image has a file there, not a directory",
                at.display()
            ),
        };
        fs::create_dir(&staged)
            .with_context(|| format!("failed to create {}", staged.display()))?;
        fs::set_permissions(&staged, fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::lchown(&staged, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// What `rel` is in the image whose layers are `lowers` (the top first),
/// as its overlay would show it: the top layer that has it, unless a
/// whiteout or an opaque directory above hides it.
fn image_entry(lowers: &[PathBuf], rel: &Path) -> Option<fs::Metadata> {
    if rel.as_os_str().is_empty() || !in_lowers(lowers, rel) {
        return None;
    }
    // in_lowers has checked that every directory on the way is one, in
    // each layer looked at: joining `rel` follows no symlink.
    lowers
        .iter()
        .find_map(|layer| fs::symlink_metadata(layer.join(rel)).ok())
        .filter(|meta| !is_whiteout(meta))
}

/// `/a/./b/../c` as `/a/c`, lexically; `..` stops at `/`.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// A directory of a step's work under the store's `tmp/`, removed when
/// dropped.
struct TmpDir(PathBuf);

impl TmpDir {
    fn create(store: &Store, kind: &str) -> Result<TmpDir> {
        let path = tmp_dir(store, kind)?;
        fs::create_dir(&path).with_context(|| format!("failed to create {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        Ok(TmpDir(path))
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = workshop_rootfs::remove_tree(&self.0);
    }
}

/// A new path `tmp/KIND-PID-N` (not made yet; its parent is).
fn tmp_dir(store: &Store, kind: &str) -> Result<PathBuf> {
    let tmp = store.root.join(TMP_DIR);
    fs::create_dir_all(&tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
    Ok(tmp.join(format!(
        "{kind}-{}-{}",
        std::process::id(),
        crate::store::unique()
    )))
}

/// Remove what builds that were killed left in `tmp/` (their PID runs no
/// more).
fn reclaim_stale(store: &Store) -> Result<()> {
    let Ok(entries) = fs::read_dir(store.root.join(TMP_DIR)) else {
        return Ok(()); // no build yet
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').nth(1).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if crate::store::process_is_gone(pid) {
            workshop_rootfs::remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

/// A bar on stderr for a build that takes more than a second, when asked
/// for and stderr is a terminal. No ticker thread: steps start containers
/// with clone(), which a threaded process should not do.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    shown: bool,
}

impl Progress {
    fn new(wanted: bool, steps: usize) -> Progress {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(steps as u64),
                indicatif::ProgressDrawTarget::hidden(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            shown: false,
        }
    }

    /// Step `done + 1` starts: `what`.
    fn step(&mut self, done: usize, what: &str) {
        let Some(bar) = &self.bar else { return };
        if !self.shown && self.started.elapsed() > Duration::from_secs(1) {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            self.shown = true;
        }
        bar.set_position(done as u64);
        bar.set_message(what.to_string());
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_lexically_and_stop_at_the_root() {
        assert_eq!(normalise(Path::new("/a/./b/../c/")), Path::new("/a/c"));
        assert_eq!(normalise(Path::new("/../../etc")), Path::new("/etc"));
        assert_eq!(normalise(Path::new("/")), Path::new("/"));
    }
}
