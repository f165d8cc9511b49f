//! The checks, run against the variant that WORKSHOP_VARIANT chooses (by
//! cargo xtask verify); with none chosen, against the solutions.
extern crate variants as under_test;

/// The probe binary of this package (each package builds its own, with its
/// own code under test).
const PROBE: &str = env!("CARGO_BIN_EXE_variants-probe");

/// The container made of the package's exercises (the final check).
const MYBOX: &str = env!("CARGO_BIN_EXE_variants-mybox");

#[path = "../../../exercises/checks/mod.rs"]
mod checks;
