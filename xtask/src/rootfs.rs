//! `cargo xtask rootfs`: build the root filesystem the chapters use, in
//! `target/rootfs` (the same directory `workshop_rootfs::default_dir` finds
//! from a chapter binary). Runs as whoever calls cargo, never elevated.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use workshop_rootfs::{self as rootfs, SetuidBits, Source};

#[derive(Args)]
pub struct RootfsArgs {
    /// Build again even if a complete rootfs is already there
    #[arg(long)]
    rebuild: bool,
    /// Unpack this image instead: a .tar or .tar.gz (Alpine minirootfs, `docker export` output)
    #[arg(long, value_name = "FILE", group = "source")]
    from: Option<PathBuf>,
    /// With --from: keep the image's setuid/setgid bits (dropped by default).
    /// Needs root, and a directory above the rootfs closed to other users
    /// (`chmod 700 target`), since any user could otherwise run them
    #[arg(long, requires = "from")]
    keep_setuid: bool,
    /// Copy the host's own programs (sh, ls, ps, ip, ...) with the libraries they load
    #[arg(long, group = "source")]
    host_binaries: bool,
    /// Use this busybox binary (default: /bin/busybox when it exists)
    #[arg(long, value_name = "PATH", group = "source")]
    busybox: Option<PathBuf>,
}

pub fn run(args: RootfsArgs) -> Result<()> {
    let dir = rootfs::default_dir()?;
    let shown = rootfs::shown(&dir);
    let asked = if let Some(image) = args.from {
        let setuid = if args.keep_setuid {
            SetuidBits::Keep
        } else {
            SetuidBits::Drop
        };
        Some(Source::Tar(image, setuid))
    } else if args.host_binaries {
        Some(Source::HostBinaries)
    } else {
        args.busybox.map(Source::Busybox)
    };
    // Naming a source means "build from it": no --rebuild needed for that.
    if asked.is_none() && !args.rebuild && rootfs::is_built(&dir) {
        println!(
            "rootfs: {} is already built ({}); `cargo xtask rootfs --rebuild` redoes it",
            shown.display(),
            rootfs::stats(&dir)?
        );
        return Ok(());
    }
    let source = asked.unwrap_or_else(rootfs::default_source);
    println!("rootfs: building {} from {source}", shown.display());
    let start = Instant::now();
    rootfs::build_with(&dir, &source, &mut |line| {
        if line.starts_with("warning:") {
            eprintln!("  {line}");
        } else {
            println!("  {line}");
        }
    })?;
    rootfs::validate(&dir)?;
    println!(
        "rootfs: {} is ready: {} ({:.1}s); use it with `cargo run -p ch04-rootfs`, or any chapter's --rootfs {}",
        shown.display(),
        rootfs::stats(&dir)?,
        start.elapsed().as_secs_f64(),
        shown.display()
    );
    Ok(())
}
