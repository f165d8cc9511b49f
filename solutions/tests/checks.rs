//! The checks for the solutions: one set, in ../../shared/checks, shared with the exercises.
extern crate solutions as under_test;

#[path = "../../shared/checks/mod.rs"]
mod checks;
