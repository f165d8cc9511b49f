//! mybox from the variants: see ../../../../exercises/src/bin/mybox.rs.
extern crate variants as under_test;

#[path = "../../../../exercises/src/bin/mybox/container.rs"]
mod container;

fn main() {
    container::main();
}
