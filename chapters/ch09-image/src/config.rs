//! An image config to the container's process: the command (`Entrypoint`
//! then `Cmd`, or the command given), `Env`, `WorkingDir` and `User`.

use anyhow::{bail, Result};
use oci_spec::image::ImageConfiguration;
use std::path::PathBuf;

/// What the container runs, from an image's config and the command given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub argv: Vec<String>,
    /// `KEY=VALUE`, the config's `Env` (with a default `PATH` when it has none).
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

/// The process for `config`: `Entrypoint` + (`command`, or else `Cmd`),
/// `Env`, `WorkingDir` (`/` when empty), `User` (numeric `uid[:gid]`).
pub fn process(config: &ImageConfiguration, command: &[String]) -> Result<Process> {
    let _ = (config, command);
    bail!("not written yet")
}
