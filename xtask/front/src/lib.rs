//! The front of `cargo xtask` (the alias in .cargo/config.toml runs this
//! package): `doctor` is answered here, everything else by the xtask package.
//! The doctor is the first thing a student runs, on a clone that has built
//! nothing yet; the xtask package needs most of the workspace built (about
//! 40 s here), this one the standard library and libc (about 2 s).

pub mod doctor;

use std::path::PathBuf;

/// The workspace's root (this package is xtask/front).
pub fn workspace_root() -> PathBuf {
    let front = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    front
        .ancestors()
        .nth(2)
        .expect("xtask/front has a grandparent")
        .to_path_buf()
}
