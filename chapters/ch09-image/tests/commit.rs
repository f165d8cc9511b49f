//! commit.rs against a store of the test's own: the busybox rootfs as a
//! one-layer image, a config-only image over it (same layer, shared), and
//! `rmi` keeping what the other image still uses.

use ch09_image::commit::{base_config, import_rootfs, new_image};
use ch09_image::{Reference, Store};
use std::path::Path;
use workshop_testkit::TempDir;

fn reference(text: &str) -> Reference {
    text.parse().unwrap()
}

/// Names of the entries of `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_rootfs_becomes_one_layer_and_a_config_change_shares_it() {
    let rootfs = workshop_rootfs::ensure_default(|_| {}).expect("build the default rootfs");
    let dir = TempDir::new("ch09-commit");
    let store = Store::open(dir.path()).unwrap();

    let base = import_rootfs(&store, &rootfs, &reference("workshop/busybox")).unwrap();
    assert_eq!(base.diff_ids().len(), 1);
    let lowers = base.lowers(&store);
    assert!(lowers[0].join("bin/busybox").is_file(), "{lowers:?}");
    assert_eq!(
        std::fs::read(lowers[0].join("etc/passwd")).unwrap(),
        std::fs::read(rootfs.join("etc/passwd")).unwrap()
    );

    // A config-only change: no new layer, the same directory.
    let mut config = base_config(Some(&base)).unwrap();
    let mut inner = config.config().clone().unwrap_or_default();
    inner.set_env(Some(vec!["GREETING=hello".into()]));
    config.set_config(Some(inner));
    let lock = store.lock().unwrap();
    let app = new_image(
        &store,
        &lock,
        Some(&base),
        None,
        config,
        "ENV GREETING=hello",
        &reference("workshop/app:v1"),
    )
    .unwrap();
    drop(lock);
    assert_eq!(app.lowers(&store), lowers);
    assert_ne!(app.id, base.id);
    assert_eq!(names(&dir.path().join("layers")).len(), 1);

    // Importing the same directory again finds the layer it has.
    let again = import_rootfs(&store, &rootfs, &reference("workshop/busybox:again")).unwrap();
    assert_eq!(again.diff_ids(), base.diff_ids());
    assert_eq!(names(&dir.path().join("layers")).len(), 1);

    let listed: Vec<String> = store
        .images()
        .unwrap()
        .iter()
        .map(|i| i.reference.to_string())
        .collect();
    assert_eq!(
        listed,
        [
            "workshop/app:v1",
            "workshop/busybox:again",
            "workshop/busybox:latest"
        ]
    );

    // rmi of two of three: the layer stays for the third; then it goes.
    let removed = store.remove(&reference("workshop/busybox")).unwrap();
    assert!(removed.layers.is_empty(), "{removed:?}");
    store.remove(&reference("workshop/busybox:again")).unwrap();
    assert!(lowers[0].is_dir());
    let removed = store.remove(&reference("workshop/app:v1")).unwrap();
    assert_eq!(removed.layers, base.diff_ids());
    assert!(names(&dir.path().join("layers")).is_empty());
    assert!(names(&dir.path().join("blobs/sha256")).is_empty());

    let err = store.resolve(&reference("workshop/app:v1")).unwrap_err();
    assert!(err.to_string().contains("none yet"), "{err}");
}
