//! The answers a student might give, kept beside the solution: each exercise
//! has wrong ones (the mistakes students really make) that its check must
//! catch, and right ones written another way than `solutions/` that its check
//! must pass. `cargo xtask verify` runs the checks against each, chosen by
//! `WORKSHOP_VARIANT=N.M/name` (the probe and every process it starts inherit
//! it); with no variant chosen every function is the solution's.
//!
//! Each chapter's module re-exports the solutions and replaces the exercised
//! functions with a `match` on the chosen variant, and lists its variants in
//! `VARIANTS`, each with the idea it gets wrong (or the other way it is right).

pub mod ch01_clone;
pub mod ch02_namespaces;
pub mod ch03_mount;
pub mod ch04_rootfs;
pub mod ch05_uts;
pub mod ch06_net;
pub mod ch07_cgroups;
pub mod ch08_overlay;
pub mod ch09_image;
pub mod ch10_bridge;
pub mod ch11_rootless;
pub mod ch12_hardened;

/// One answer to one exercise.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// "3.1"
    pub exercise: &'static str,
    /// A short name, unique within the exercise: "slave".
    pub name: &'static str,
    /// Whether the check must pass it (a right answer written another way).
    pub right: bool,
    /// The mistake it makes, or the other way it is right.
    pub why: &'static str,
    /// For a wrong answer: words the check's failure must say, so that it
    /// is caught for its own mistake (not by a setup error, say).
    pub because: &'static str,
}

impl Variant {
    /// The words the check must say when it catches this wrong answer.
    pub const fn because(self, words: &'static str) -> Variant {
        Variant {
            because: words,
            ..self
        }
    }
}

/// A wrong answer: its check must fail.
pub const fn wrong(exercise: &'static str, name: &'static str, why: &'static str) -> Variant {
    Variant {
        exercise,
        name,
        right: false,
        why,
        because: "",
    }
}

/// A right answer, written another way: its check must pass.
pub const fn right(exercise: &'static str, name: &'static str, why: &'static str) -> Variant {
    Variant {
        exercise,
        name,
        right: true,
        why,
        because: "",
    }
}

/// Every variant of every exercise.
pub fn all() -> Vec<Variant> {
    [
        ch01_clone::VARIANTS,
        ch02_namespaces::VARIANTS,
        ch03_mount::VARIANTS,
        ch04_rootfs::VARIANTS,
        ch05_uts::VARIANTS,
        ch06_net::VARIANTS,
        ch07_cgroups::VARIANTS,
        ch08_overlay::VARIANTS,
        ch09_image::VARIANTS,
        ch10_bridge::VARIANTS,
        ch11_rootless::VARIANTS,
        ch12_hardened::VARIANTS,
    ]
    .concat()
}

/// The environment variable that chooses a variant: `3.1/slave`.
pub const CHOICE: &str = "WORKSHOP_VARIANT";

/// The variant of `exercise` chosen for this run, if any.
pub fn chosen(exercise: &str) -> Option<String> {
    let choice = std::env::var(CHOICE).ok()?;
    let (ex, name) = choice.split_once('/')?;
    (ex == exercise).then(|| name.to_string())
}

/// A variant was chosen that the exercise's `match` does not know: a typo in
/// this crate, which verify reports as such (never as "caught").
pub fn unknown(exercise: &str, name: &str) -> ! {
    panic!("no variant {name:?} of exercise {exercise} in solutions/variants")
}
