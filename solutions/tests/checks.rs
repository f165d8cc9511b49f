//! The checks for the solutions: one set, in ../../exercises/checks, shared with the exercises.
extern crate solutions as under_test;

#[path = "../../exercises/checks/mod.rs"]
mod checks;
