//! The probe for the checks: see ../../../../exercises/checks/probe.rs.
extern crate variants as under_test;

#[path = "../../../../exercises/checks/probe.rs"]
mod probe;

fn main() {
    probe::main();
}
