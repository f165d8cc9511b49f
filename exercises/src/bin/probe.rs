//! The probe for the checks: see ../../checks/probe.rs.
extern crate exercises as under_test;

#[path = "../../checks/probe.rs"]
mod probe;

fn main() {
    probe::main();
}
