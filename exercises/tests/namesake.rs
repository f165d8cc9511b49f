//! The rule that refuses an answer calling the chapter's namesake, tested on
//! strings (the rule: ../checks/namesake.rs, applied by the checks).

#[path = "../checks/namesake.rs"]
mod namesake;

use namesake::{exercise_fn, namesake_call};

/// Exercise 3.1's stub with `BODY` as the body of its function, `TOP` at the
/// top of the file and `BELOW` after the function.
const STUB: &str = "use anyhow::Result;\nTOP\n\n\
    /// Exercise 3.1: make every mount private.\n\
    /// Hint: `ch03_mount::make_mounts_private()` is the chapter's.\n\
    pub fn make_mounts_private() -> Result<()> {\n    BODY\n}\nBELOW\n";

fn file(top: &str, body: &str, below: &str) -> String {
    STUB.replace("TOP", top)
        .replace("BODY", body)
        .replace("BELOW", below)
}

fn reach(top: &str, body: &str, below: &str) -> Option<String> {
    namesake_call(&file(top, body, below), "3.1").expect("the function is found")
}

#[test]
fn the_exercise_function_is_found_by_its_doc_line() {
    assert_eq!(
        exercise_fn(&file("", "", ""), "3.1").as_deref(),
        Ok("make_mounts_private")
    );
    // With attributes and more doc in between.
    let source = "/// Exercise 1.2: the exit code.\n/// more\n#[allow(unused)]\n#[must_use]\n\
                  pub(crate) const fn exit_code(s: [u8; 2]) -> Option<i32> { None }";
    assert_eq!(exercise_fn(source, "1.2").as_deref(), Ok("exit_code"));
}

#[test]
fn a_missing_doc_line_fails_loudly() {
    let without = file("", "ch03_mount::make_mounts_private()", "")
        .replace("/// Exercise 3.1: make every mount private.\n", "");
    for outcome in [
        exercise_fn(&without, "3.1").map(|_| None),
        namesake_call(&without, "3.1"),
    ] {
        let why = outcome.expect_err("no doc line: refused, not passed");
        assert!(
            why.contains("the doc line `/// Exercise 3.1:` above your function is missing"),
            "{why}"
        );
    }
    // Another exercise's doc line is not this one's.
    assert!(exercise_fn(&file("", "", ""), "3.2").is_err());
    // In a comment or a string, it is not a doc line.
    for hidden in [
        "// /// Exercise 3.2: x\nfn f() {}",
        "/* /// Exercise 3.2: x */ fn f() {}",
        "const S: &str = \"\n/// Exercise 3.2: x\n\"; fn f() {}",
    ] {
        assert!(exercise_fn(hidden, "3.2").is_err(), "{hidden}");
    }
    // A doc line left above something that is not the function.
    let stray = "/// Exercise 3.2: x\nuse std::path::Path;\npub fn mount_proc() {}";
    let why = exercise_fn(stray, "3.2").unwrap_err();
    assert!(why.contains("is not right above a function"), "{why}");
}

#[test]
fn an_answer_that_reaches_the_chapters_namesake_is_refused() {
    for (top, body, caught) in [
        ("", "ch03_mount::make_mounts_private()", "ch03_mount::make_mounts_private"),
        ("", "::ch03_mount::make_mounts_private ()", "::ch03_mount::make_mounts_private"),
        ("", "ch03_mount ::\n  make_mounts_private()", "ch03_mount::make_mounts_private"),
        ("", "ch04_rootfs::make_mounts_private()", "ch04_rootfs::make_mounts_private"),
        ("", "ch03_mount::make_mounts_private::<>()", "ch03_mount::make_mounts_private"),
        // a function pointer: not a call where it is named
        (
            "",
            "let f = ch03_mount::make_mounts_private; f()",
            "ch03_mount::make_mounts_private",
        ),
        (
            "",
            "Some(ch03_mount::make_mounts_private).map(|f| f()).unwrap()",
            "ch03_mount::make_mounts_private",
        ),
        // an alias of the chapter crate, at the top or in the body
        (
            "use ch03_mount as m;",
            "m::make_mounts_private()",
            "m::make_mounts_private, through `use ch03_mount as m`",
        ),
        (
            "use ch03_mount::{self as m};",
            "let f = m::make_mounts_private; f()",
            "m::make_mounts_private, through `use ch03_mount::{self as m}`",
        ),
        (
            "",
            "use ch03_mount as m; m::make_mounts_private()",
            "m::make_mounts_private, through `use ch03_mount as m`",
        ),
        (
            "extern crate ch03_mount as c;",
            "c::make_mounts_private()",
            "c::make_mounts_private, through `extern crate ch03_mount as c`",
        ),
        // the chapter's function imported under another name
        (
            "use ch03_mount::{make_mounts_private as mp};",
            "mp()",
            "mp, through `use ch03_mount::{make_mounts_private as mp}`",
        ),
        (
            "use ch03_mount as m;\nuse m::make_mounts_private as mp;",
            "mp()",
            "mp, through `use m::make_mounts_private as mp`",
        ),
        // a glob or a plain import inside the function: the bare name is the chapter's
        (
            "",
            "use ch03_mount::*; make_mounts_private()",
            "make_mounts_private, through `use ch03_mount::*`",
        ),
        (
            "",
            "{ use ch03_mount::*; make_mounts_private() }",
            "make_mounts_private, through `use ch03_mount::*`",
        ),
        (
            "",
            "use ch03_mount::{make_mounts_private}; let f = make_mounts_private; f()",
            "make_mounts_private, through `use ch03_mount::{make_mounts_private}`",
        ),
        (
            "",
            "use ch03_mount::make_mounts_private; make_mounts_private()",
            "make_mounts_private, through `use ch03_mount::make_mounts_private`",
        ),
        // strings and chars on the way must not hide the call
        (
            "",
            "let c = '\"'; ch03_mount::make_mounts_private()",
            "ch03_mount::make_mounts_private",
        ),
        (
            "",
            "let c = '{'; let d = '\\''; ch03_mount::make_mounts_private()",
            "ch03_mount::make_mounts_private",
        ),
        (
            "",
            "let url = \"http://example.org\"; ch03_mount::make_mounts_private()",
            "ch03_mount::make_mounts_private",
        ),
        (
            "",
            "let s = r#\"a \" } { quote\"#; ch03_mount::make_mounts_private()",
            "ch03_mount::make_mounts_private",
        ),
        (
            "",
            "let s = \"}\"; /* } */ ch03_mount::make_mounts_private()",
            "ch03_mount::make_mounts_private",
        ),
        (
            "",
            "fn inner<'a>(x: &'a str) -> &'a str { x } inner(\"\"); ch03_mount::make_mounts_private()",
            "ch03_mount::make_mounts_private",
        ),
    ] {
        assert_eq!(
            reach(top, body, "").as_deref(),
            Some(caught),
            "top: {top}\nbody: {body}"
        );
    }
}

#[test]
fn a_legit_answer_passes() {
    let below_3_2 = "/// Exercise 3.2: proc.\npub fn mount_proc() -> Result<()> {\n    \
                     ch03_mount::make_mounts_private()?; ch03_mount::mount_proc()\n}\n";
    for (top, body, below) in [
        // the student's own work, and the chapter's other helpers
        (
            "",
            "mount(None::<&str>, \"/\", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?; Ok(())",
            "",
        ),
        ("", "ch03_mount::remount_private_helper()", ""),
        ("", "crate::ch03_mount::make_mounts_private()", ""),
        ("", "super::make_mounts_private()", ""),
        ("", "self.make_mounts_private()", ""),
        ("", "todo!()", ""),
        // the names in strings, comments and docs
        ("", "let s = \"ch03_mount::make_mounts_private()\"; Ok(())", ""),
        ("", "let s = r#\"ch03_mount::make_mounts_private()\"#; Ok(())", ""),
        ("", "// ch03_mount::make_mounts_private()\nOk(())", ""),
        ("", "/* ch03_mount::make_mounts_private() */ Ok(())", ""),
        ("", "/* /* nested */ ch03_mount::make_mounts_private() */ Ok(())", ""),
        // another exercise in the same file calls the chapter's function
        ("", "Ok(())", below_3_2),
        (
            "",
            "Ok(())",
            "fn helper() { ch03_mount::make_mounts_private().unwrap() }",
        ),
        // an import at the top that only another function uses
        (
            "use ch03_mount::make_mounts_private as chapters;",
            "Ok(())",
            "fn other() -> Result<()> { chapters() }",
        ),
        (
            "use ch03_mount as m;",
            "Ok(())",
            "fn other() -> Result<()> { m::make_mounts_private() }",
        ),
        // a glob at the top: the student's own `fn make_mounts_private`
        // shadows it, so a bare call is recursion, not the chapter's
        ("use ch03_mount::*;", "make_mounts_private()", ""),
        ("", "make_mounts_private()", ""),
        // the chapter crate's other functions, through an alias or a glob
        (
            "use ch03_mount as m;",
            "m::mount_proc()?; Ok(())",
            "",
        ),
        ("", "use ch03_mount::*; mount_proc()", ""),
        // an import inside another function
        (
            "",
            "Ok(())",
            "fn other() { use ch03_mount::*; make_mounts_private().unwrap() }",
        ),
        // chars and strings that look like braces, and a lifetime
        (
            "",
            "let c = '}'; let d = \"}\"; let e = '\\u{7d}'; let f: &'static str = \"{\"; Ok(())",
            "fn after() { ch03_mount::make_mounts_private().unwrap() }",
        ),
    ] {
        assert_eq!(
            reach(top, body, below),
            None,
            "top: {top}\nbody: {body}\nbelow: {below}"
        );
    }
}

/// The reviewer's cases: the rule looked at the whole file, so another
/// exercise that calls the chapter's function made this one fail.
#[test]
fn another_exercise_calling_the_chapter_is_not_this_ones_business() {
    let ch01 = "use nix::sys::wait::WaitStatus;\n\
        /// Exercise 1.2: the exit code.\n\
        pub fn exit_code(status: WaitStatus) -> Option<i32> {\n\
            match status { WaitStatus::Exited(_, c) => Some(c), \
            WaitStatus::Signaled(_, s, _) => Some(128 + s as i32), _ => None }\n}\n\
        /// Exercise 1.3: an init.\n\
        pub fn init(argv: &[String]) -> Result<i32> {\n\
            let st = nix::sys::wait::waitpid(None, None)?;\n\
            Ok(ch01_clone::exit_code(st).unwrap_or(127))\n}\n";
    assert_eq!(namesake_call(ch01, "1.2"), Ok(None));
    assert_eq!(namesake_call(ch01, "1.3"), Ok(None));
    let ch05 = "/// Exercise 5.1: refuse a bad hostname.\n\
        pub fn validate_hostname(name: &str) -> Result<(), String> {\n\
            if name.is_empty() || name.len() > 64 { return Err(\"length\".into()); }\n\
            Ok(())\n}\n\
        /// Exercise 5.2: start argv in a new UTS namespace.\n\
        pub fn spawn_with_hostname(hostname: &str, argv: &[String]) -> Result<Pid> {\n\
            ch05_uts::validate_hostname(hostname).map_err(anyhow::Error::msg)?;\n\
            todo!()\n}\n";
    assert_eq!(namesake_call(ch05, "5.1"), Ok(None));
    assert_eq!(namesake_call(ch05, "5.2"), Ok(None));
    // and the same files with the namesake in the exercise's own function
    let own = ch01.replace(
        "match status {",
        "return ch01_clone::exit_code(status); match status {",
    );
    assert_eq!(
        namesake_call(&own, "1.2").unwrap().as_deref(),
        Some("ch01_clone::exit_code")
    );
}

/// The stubs as shipped: every exercise's function is found by its doc
/// line, and none reaches its namesake.
#[test]
fn the_stubs_pass_the_rule() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut seen = 0;
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for line in source.lines() {
            let Some(rest) = line.strip_prefix("/// Exercise ") else {
                continue;
            };
            let exercise = rest.split(':').next().unwrap();
            assert!(
                exercise_fn(&source, exercise).is_ok(),
                "{path:?} {exercise}"
            );
            assert_eq!(
                namesake_call(&source, exercise),
                Ok(None),
                "{path:?} {exercise}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} exercises found in {src}");
}
