//! mybox: a container built from your own exercises.
//!
//! `cargo run -p exercises --bin mybox -- [OPTIONS] -- COMMAND [ARGS...]`
//! (`-- --help` for the options).
//!
//! Each step of the container is a function you wrote in exercises/src,
//! chained in the order the chapters chain them. A step whose exercise is
//! still `todo!()` is left out, and mybox says so before it runs: the
//! container is exactly as good as your exercises.
//!
//! The code is in mybox/container.rs, which calls `under_test`: here your
//! exercises; the solutions build the same file as `solved-mybox`
//! (solutions/src/bin/mybox.rs), with `under_test` their own crate.
extern crate exercises as under_test;

#[path = "mybox/container.rs"]
mod container;

fn main() {
    container::main();
}
