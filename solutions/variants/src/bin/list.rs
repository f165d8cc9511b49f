//! The variants, one a line (`3.1\tslave\twrong\twhy\tbecause`), for cargo xtask verify.

fn main() {
    for v in variants::all() {
        let kind = if v.right { "right" } else { "wrong" };
        println!(
            "{}\t{}\t{kind}\t{}\t{}",
            v.exercise, v.name, v.why, v.because
        );
    }
}
