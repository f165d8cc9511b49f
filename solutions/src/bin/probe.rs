//! The probe for the checks: see ../../../shared/checks/probe.rs.
extern crate solutions as under_test;

#[path = "../../../shared/checks/probe.rs"]
mod probe;

fn main() {
    probe::main();
}
