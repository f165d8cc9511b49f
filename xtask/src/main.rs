//! `cargo xtask TASK`: the project's own checks and generators.
//!
//! - `verify`: every check fails on the unsolved exercises and passes on the
//!   solutions; every exercise has a TODO, a todo!() and a hint; every
//!   `{{#include}}` in the book resolves to non-empty text, and quotes its
//!   page's chapter (or an earlier one), never shared/.
//! - `book`: run each chapter's demo and write its real transcript into the
//!   book, then build the book if mdbook is installed.
//! - `rootfs`: build the root filesystem the chapters use (target/rootfs)
//!   from busybox, the host's binaries, or a tar image; nothing downloaded.
//! - `vm-test`: run the chapters' tests in qemu on a stock Debian kernel with
//!   cgroup v2 and every controller (the kernel comes from `apt-get download`).

mod bench;
mod bench_images;
mod book;
mod rootfs;
mod translation;
mod verify;
mod vm;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Container Workshop developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Before a class: what each chapter needs from this machine, ready or missing, with the fix (changes nothing)
    Doctor,
    /// Prove the exercises teach: checks fail on the stubs, pass on the solutions; book includes resolve
    Verify,
    /// Regenerate the transcripts the book shows (runs each chapter's demo; needs root or sudo)
    Book(book::Args),
    /// Build the book in every language: English into book/build, 简体中文 into book/build/zh-CN
    Books,
    /// mdBook runs this (book.toml): dedent quoted code, unlink rustdoc links
    #[command(hide = true)]
    BookPreprocess { args: Vec<String> },
    /// Build the root filesystem the chapters use, in target/rootfs (from busybox, the host's binaries, or --from an image)
    Rootfs(rootfs::RootfsArgs),
    /// Run the chapters' tests in qemu on a stock Debian kernel with cgroup v2 (no KVM needed; downloads the kernel package once)
    VmTest(vm::VmTestArgs),
    /// Time a container's start against /bin/true, unshare, bwrap and runc, step by step; and the build times
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        // `cargo xtask doctor` never gets here (xtask-front answers it, built
        // in seconds); `cargo run -p xtask -- doctor` does.
        Task::Doctor => {
            if xtask_front::doctor::run() {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "not every chapter is ready on this machine"
                ))
            }
        }
        Task::Verify => verify::run(),
        Task::Book(args) => book::run(args),
        Task::Books => translation::build_books(),
        Task::BookPreprocess { args } => book::preprocess(&args),
        Task::Rootfs(args) => rootfs::run(args),
        Task::VmTest(args) => vm::run(args),
        Task::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chapters' own `error:` and `hint:` lines (uncoloured).
            workshop::error::print(&e);
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_path_buf()
}

/// The chapters, in order: (package name, directory under chapters/).
pub const CHAPTERS: [&str; 12] = [
    "ch01-clone",
    "ch02-namespaces",
    "ch03-mount",
    "ch04-rootfs",
    "ch05-uts",
    "ch06-net",
    "ch07-cgroups",
    "ch08-overlay",
    "ch09-image",
    "ch10-bridge",
    "ch11-rootless",
    "ch12-hardened",
];

/// `cargo` as the one that runs us.
pub fn cargo() -> std::process::Command {
    let mut cmd =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

pub fn ensure(ok: bool, problems: &mut Vec<String>, problem: impl FnOnce() -> String) {
    if !ok {
        problems.push(problem());
    }
}

pub fn result_of(problems: Vec<String>, what: &str) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    for p in &problems {
        eprintln!("  ✗ {p}");
    }
    anyhow::bail!("{what}: {} problem(s)", problems.len())
}
