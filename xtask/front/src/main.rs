//! `cargo xtask TASK`: `doctor` here, in seconds on a clean clone; every
//! other task (and `--help`) in the xtask package, through the same cargo.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "doctor") {
        if args.len() == 2 && (args[1] == "--help" || args[1] == "-h") {
            println!(
                "Before a class: what each chapter needs from this machine, ready or missing, with the fix (changes nothing)\n\nUsage: cargo xtask doctor\n\nExit status: 0 when all 12 chapters are ready, 1 otherwise"
            );
            return ExitCode::SUCCESS;
        }
        if args.len() > 1 {
            eprintln!("error: doctor takes no arguments (it only reads this machine)");
            return ExitCode::from(2);
        }
        return if xtask_front::doctor::run() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    // Cargo tells the programs it runs where it is.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // The xtask package needs most of the workspace: on a clean clone that
    // is a minute of building, which --quiet would leave silent.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| xtask_front::workspace_root().join("target"));
    if !target.join("debug/xtask").exists() {
        eprintln!("note: building the xtask package first (about a minute on a clean clone; once)");
    }
    let err = Command::new(&cargo)
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(&args)
        .exec();
    eprintln!(
        "error: failed to run {} run --package xtask: {err}",
        cargo.to_string_lossy()
    );
    ExitCode::from(127)
}
