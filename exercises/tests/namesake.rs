//! The rule that refuses an answer calling the chapter's namesake, tested on
//! strings (the rule: ../checks/namesake.rs, applied by the checks).

#[path = "../checks/namesake.rs"]
mod namesake;

use namesake::{exercise_fn, namesake_call};

#[test]
fn an_answer_that_calls_the_chapters_namesake_is_refused() {
    let stub = "/// Exercise 3.1: make every mount private.\n\
                /// Hint: `ch03_mount::make_mounts_private()` is the chapter's.\n\
                pub fn make_mounts_private() -> Result<()> {\n    BODY\n}\n";
    let answer = |body: &str| stub.replace("BODY", body);
    assert_eq!(
        exercise_fn(&answer(""), "3.1").as_deref(),
        Some("make_mounts_private")
    );
    assert_eq!(exercise_fn(&answer(""), "3.2"), None);
    let name = "make_mounts_private";
    for (body, caught) in [
        (
            "ch03_mount::make_mounts_private()",
            "ch03_mount::make_mounts_private(",
        ),
        (
            "::ch03_mount::make_mounts_private ()",
            "ch03_mount::make_mounts_private(",
        ),
        (
            "ch03_mount ::\n  make_mounts_private()",
            "ch03_mount::make_mounts_private(",
        ),
        (
            "m::make_mounts_private() }\nuse ch03_mount as m; fn x() {",
            "m::make_mounts_private(",
        ),
        (
            "c::ch03_mount::make_mounts_private() }\nextern crate ch03_mount as c; fn x() {",
            "c::ch03_mount::make_mounts_private(",
        ),
        (
            "mp() }\nuse ch03_mount::{make_mounts_private as mp}; fn x() {",
            "use ch03_mount::{make_mounts_private as mp}",
        ),
        (
            "ch04_rootfs::make_mounts_private()",
            "ch04_rootfs::make_mounts_private(",
        ),
    ] {
        assert_eq!(
            namesake_call(&answer(body), name).as_deref(),
            Some(caught),
            "{body}"
        );
    }
    for body in [
        // the student's own work, and the chapter's other helpers
        "mount(None::<&str>, \"/\", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?; Ok(())",
        "ch03_mount::remount_private_helper()",
        "crate::ch03_mount::make_mounts_private()",
        "super::make_mounts_private()",
        "let s = \"ch03_mount::make_mounts_private()\"; Ok(())",
        "// ch03_mount::make_mounts_private()\nOk(())",
        "todo!()",
    ] {
        assert_eq!(namesake_call(&answer(body), name), None, "{body}");
    }
}
