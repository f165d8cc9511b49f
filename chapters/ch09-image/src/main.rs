//! Chapter 9: images: import them, run them, build them.

fn main() {
    eprintln!("ch09-image: being written");
    std::process::exit(1);
}
