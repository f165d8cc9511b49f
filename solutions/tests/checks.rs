//! The checks for the solutions: one set, in ../../exercises/checks, shared with the exercises.
extern crate solutions as under_test;

/// The probe binary of this package (each package builds its own, with its
/// own code under test).
const PROBE: &str = env!("CARGO_BIN_EXE_solutions-probe");

/// The container made of the package's exercises (the final check).
const MYBOX: &str = env!("CARGO_BIN_EXE_solved-mybox");

#[path = "../../exercises/checks/mod.rs"]
mod checks;
