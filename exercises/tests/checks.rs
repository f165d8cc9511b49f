//! The checks for the exercises: one set, in ../checks, shared with the solutions.
extern crate exercises as under_test;

/// The probe binary of this package (each package builds its own, with its
/// own code under test).
const PROBE: &str = env!("CARGO_BIN_EXE_exercises-probe");

/// The container made of the package's exercises (the final check).
const MYBOX: &str = env!("CARGO_BIN_EXE_mybox");

#[path = "../checks/mod.rs"]
mod checks;
