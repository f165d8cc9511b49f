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
    // The network chapter pings across its veth: run it in a network
    // namespace of its own, so that nothing it does reaches this machine's network.
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    if chapter == "ch06-net" {
        argv.extend(["unshare".into(), "--net".into()]);
    }
    argv.push(bin.clone().into());
    if !nix::unistd::geteuid().is_root() {
        argv.insert(0, "--".into());
        argv.insert(0, "sudo".into());
    }
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
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
    let shown = if chapter == "ch06-net" {
        format!("$ sudo unshare --net target/debug/{chapter}")
    } else {
        format!("$ cargo run -p {chapter}")
    };
    Ok(format!("{shown}\n{}", text.replace(&root, ".")))
}
