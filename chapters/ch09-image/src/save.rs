//! An image out of the store: as an OCI image layout (a directory) or as a
//! docker-archive tar (`docker load` reads it).

use crate::store::{Image, Store};
use anyhow::{bail, Result};
use std::path::Path;

/// Write `image` as an OCI image layout in the directory `dir` (made if
/// missing), named by its reference (`skopeo inspect oci:DIR:NAME:TAG`).
pub fn save_oci(store: &Store, image: &Image, dir: &Path) -> Result<()> {
    let _ = (store, image);
    bail!("saving to {} is not written yet", dir.display())
}

/// Write `image` as a docker-archive tar file `file` (`docker load -i`).
pub fn save_docker_archive(store: &Store, image: &Image, file: &Path) -> Result<()> {
    let _ = (store, image);
    bail!("saving to {} is not written yet", file.display())
}
