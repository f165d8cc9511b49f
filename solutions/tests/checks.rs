//! The checks for the solutions: one set, in ../../checks, shared with the exercises.
extern crate solutions as under_test;

#[path = "../../checks/mod.rs"]
mod checks;
