//! mybox from the solutions: see ../../../exercises/src/bin/mybox.rs.
extern crate solutions as under_test;

#[path = "../../../exercises/src/bin/mybox/container.rs"]
mod container;

fn main() {
    container::main();
}
