//! `cargo xtask book`: real transcripts of each chapter's demo, for the book.

use crate::{cargo, root, CHAPTERS};
use anyhow::{Context, Result};
use std::process::{Command, Stdio};

pub fn run() -> Result<()> {
    let status = cargo()
        .args(["build", "--quiet"])
        .args(CHAPTERS.iter().flat_map(|c| ["--package", c]))
        .status()?;
    anyhow::ensure!(status.success(), "cargo build of the chapters failed");
    let dir = root().join("book/src/transcripts");
    std::fs::create_dir_all(&dir)?;
    for chapter in CHAPTERS {
        let transcript = transcript(chapter)?;
        let path = dir.join(format!("{chapter}.txt"));
        std::fs::write(&path, transcript).with_context(|| format!("write {}", path.display()))?;
        eprintln!(
            "wrote {}",
            path.strip_prefix(root()).unwrap_or(&path).display()
        );
    }
    if Command::new("mdbook")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        let status = Command::new("mdbook")
            .arg("build")
            .arg(root().join("book"))
            .status()?;
        anyhow::ensure!(status.success(), "mdbook build failed");
    } else {
        eprintln!(
            "mdbook is not installed: transcripts written, book not built (cargo install mdbook)"
        );
    }
    Ok(())
}

/// Run a chapter's demo with narration and container output interleaved as a
/// student sees them (one pipe for both), colour off.
fn transcript(chapter: &str) -> Result<String> {
    let bin = root().join("target/debug").join(chapter);
    let mut cmd = if nix::unistd::geteuid().is_root() {
        Command::new(&bin)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("--").arg(&bin);
        sudo
    };
    let (read, write) = nix::unistd::pipe()?;
    let write2 = write.try_clone()?;
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(write2))
        .spawn()
        .with_context(|| format!("failed to run {}", bin.display()))?;
    drop(cmd);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(read), &mut text)?;
    let status = child.wait()?;
    anyhow::ensure!(
        status.success(),
        "{chapter} demo failed ({status}):\n{text}"
    );
    let root = root().display().to_string();
    Ok(format!(
        "$ cargo run -p {chapter}\n{}",
        text.replace(&root, ".")
    ))
}
