//! `cargo xtask TASK`: `doctor` here, in seconds on a clean clone; every
//! other task (and `--help`) in the xtask package, through the same cargo.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "doctor") {
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
