//! The checks for the exercises: one set, in ../../shared/checks, shared with the solutions.
extern crate exercises as under_test;

#[path = "../../shared/checks/mod.rs"]
mod checks;
