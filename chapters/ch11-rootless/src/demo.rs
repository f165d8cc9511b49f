//! The guided demo of chapter 11.

use anyhow::Result;
use ch11_rootless::RootlessOptions;
use std::path::PathBuf;
use workshop::Narrator;

pub fn demo(options: &RootlessOptions, lowers: Vec<PathBuf>, say: &Narrator) -> Result<()> {
    let argv = workshop::process::argv(&["sh", "-c", "id; cat /proc/self/uid_map"]);
    ch11_rootless::run_rootless(options, lowers, say, || workshop::process::exec(&argv))?;
    Ok(())
}
