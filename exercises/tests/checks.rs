//! The checks for the exercises: one set, in ../checks, shared with the solutions.
extern crate exercises as under_test;

#[path = "../checks/mod.rs"]
mod checks;
