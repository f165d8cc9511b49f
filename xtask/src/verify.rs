//! `cargo xtask verify`.

use crate::{cargo, ensure, result_of, root};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub fn run() -> Result<()> {
    let mut failed = Vec::new();
    for (name, step) in [
        (
            "exercises are well-formed",
            exercises_are_well_formed as fn() -> Result<()>,
        ),
        ("book includes resolve", book_includes_resolve),
        ("book text fits the page", book_text_fits),
        (
            "every chapter page has its speaker notes",
            every_chapter_has_speaker_notes,
        ),
        (
            "every language has every message of the English book",
            crate::translation::every_message_is_translated,
        ),
        (
            "checks fail on the stubs and pass on the solutions",
            checks_discriminate,
        ),
        (
            "checks catch every wrong variant and pass every right one",
            variants_are_judged,
        ),
    ] {
        eprintln!("verify: {name}");
        if let Err(e) = step() {
            eprintln!("  ✗ {e:#}");
            if let Some(h) = e.downcast_ref::<workshop::error::Hinted>() {
                eprintln!("  hint: {}", h.hint);
            }
            failed.push(name);
        } else {
            eprintln!("  ✓ {name}");
        }
    }
    anyhow::ensure!(failed.is_empty(), "verify failed: {}", failed.join("; "));
    eprintln!("verify: all good");
    Ok(())
}

/// The public functions of an exercise or solution module, by name, with the
/// text from the end of the previous item to the end of the function.
fn functions(source: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut doc = String::new();
    let mut lines = source.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("pub fn ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let mut body = std::mem::take(&mut doc);
            body.push_str(line);
            body.push('\n');
            for l in lines.by_ref() {
                body.push_str(l);
                body.push('\n');
                if l == "}" {
                    break;
                }
            }
            out.insert(name, body);
        } else if t.starts_with("///") {
            doc.push_str(line);
            doc.push('\n');
        } else if !t.starts_with("#[") {
            doc.clear();
        }
    }
    out
}

fn exercises_are_well_formed() -> Result<()> {
    let mut problems = Vec::new();
    let dir = root().join("exercises/src");
    let mut modules = 0;
    for entry in std::fs::read_dir(&dir).context("read exercises/src")? {
        let path = entry?.path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(file.starts_with("ch") && file.ends_with(".rs")) {
            continue;
        }
        modules += 1;
        let stub = std::fs::read_to_string(&path)?;
        let solved_path = root().join("solutions/src").join(&file);
        let solved = std::fs::read_to_string(&solved_path).unwrap_or_default();
        ensure(!solved.is_empty(), &mut problems, || {
            format!("solutions/src/{file} is missing")
        });
        let (stubs, solutions) = (functions(&stub), functions(&solved));
        ensure(!stubs.is_empty(), &mut problems, || {
            format!("exercises/src/{file} has no exercise")
        });
        for (name, text) in &stubs {
            let at = format!("exercises/src/{file}: {name}");
            ensure(text.contains("// TODO"), &mut problems, || {
                format!("{at} has no `// TODO`")
            });
            ensure(text.contains("todo!(\""), &mut problems, || {
                format!("{at} has no todo!(\"...\") saying what to do")
            });
            ensure(text.contains("/// Exercise "), &mut problems, || {
                format!("{at} does not say which exercise it is")
            });
            let hints = text
                .lines()
                .skip_while(|l| !l.contains("/// Hint"))
                .skip(1)
                .take_while(|l| l.trim_start().starts_with("///"));
            let hint_text: String = hints.collect();
            let inline = text.lines().any(|l| {
                l.contains("/// Hint:")
                    && l.split("Hint:").nth(1).is_some_and(|h| h.trim().len() > 10)
            });
            ensure(
                inline || hint_text.trim_matches(['/', ' ', '-', '\n']).len() > 10,
                &mut problems,
                || format!("{at} has an empty hint"),
            );
            ensure(solutions.contains_key(name), &mut problems, || {
                format!("solutions/src/{file} does not solve {name}")
            });
        }
        for (name, text) in &solutions {
            ensure(!text.contains("todo!("), &mut problems, || {
                format!("solutions/src/{file}: {name} still has todo!()")
            });
        }
    }
    ensure(modules > 0, &mut problems, || {
        "no exercise modules found in exercises/src".into()
    });
    result_of(problems, "exercises")
}

/// `{{#include path:anchor}}` (and `#rustdoc_include`) in every book page must
/// name an existing file and, with an anchor, an ANCHOR / ANCHOR_END pair with
/// text between. Line-number includes are refused: they drift. And each
/// quotes where the lesson lives ([`misplaced_includes`]).
fn book_includes_resolve() -> Result<()> {
    let mut problems = Vec::new();
    let src = root().join("book/src");
    let mut count = 0;
    for page in walk(&src)? {
        if page.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&page)?;
        let rel_page = page
            .strip_prefix(root())
            .unwrap_or(&page)
            .display()
            .to_string();
        problems.extend(misplaced_includes(&rel_page, &text));
        for include in includes(&text) {
            count += 1;
            let at = format!("{rel_page}: {{{{#include {include}}}}}");
            let (file, anchor) = match include.split_once(':') {
                Some((f, a)) => (f, Some(a)),
                None => (include.as_str(), None),
            };
            let target = page.parent().unwrap().join(file);
            let Ok(content) = std::fs::read_to_string(&target) else {
                problems.push(format!("{at}: no file {}", target.display()));
                continue;
            };
            match anchor {
                None => ensure(!content.trim().is_empty(), &mut problems, || {
                    format!("{at}: the file is empty")
                }),
                Some(a) if a.chars().next().is_some_and(|c| c.is_ascii_digit()) || a.is_empty() => {
                    problems.push(format!(
                        "{at}: includes by line number drift; use an ANCHOR"
                    ))
                }
                Some(a) => match anchored(&content, a) {
                    Some(body) if !body.trim().is_empty() => {}
                    Some(_) => problems.push(format!("{at}: anchor `{a}` is empty")),
                    None => problems.push(format!(
                        "{at}: no ANCHOR: {a} ... ANCHOR_END: {a} in {file}"
                    )),
                },
            }
        }
    }
    ensure(count > 0, &mut problems, || {
        "the book includes no source at all".into()
    });
    eprintln!("  {count} includes checked");
    result_of(problems, "book")
}

/// What an instructor finds at the end of every chapter page: one folded
/// block of speaker notes with each of its parts.
const SPEAKER_NOTES: &str = "<details class=\"speaker-notes\">";
const SPEAKER_NOTES_PARTS: [&str; 4] = [
    "**Demo live:**",
    "**Students ask:**",
    "**The exercise:**",
    "**Time:**",
];

/// What is missing from a chapter page's speaker notes, one line each.
fn speaker_notes_problems(page: &str, text: &str) -> Vec<String> {
    let blocks: Vec<&str> = text
        .split(SPEAKER_NOTES)
        .skip(1)
        .map(|rest| rest.split("</details>").next().unwrap_or(rest))
        .collect();
    match blocks.as_slice() {
        [] => vec![format!(
            "{page}: no speaker notes ({SPEAKER_NOTES} at its end)"
        )],
        [notes] => SPEAKER_NOTES_PARTS
            .iter()
            .filter(|part| !notes.contains(*part))
            .map(|part| format!("{page}: its speaker notes have no {part}"))
            .collect(),
        _ => vec![format!(
            "{page}: {} blocks of speaker notes, not one",
            blocks.len()
        )],
    }
}

fn every_chapter_has_speaker_notes() -> Result<()> {
    let mut problems = Vec::new();
    for chapter in crate::CHAPTERS {
        let page = format!("book/src/{chapter}.md");
        let text =
            std::fs::read_to_string(root().join(&page)).with_context(|| format!("read {page}"))?;
        problems.extend(speaker_notes_problems(&page, &text));
    }
    result_of(problems, "speaker notes")
}

/// Every line of a `text` (or `transcript`, `diagram`, `console`, or
/// unlabelled) block in a book page, includes expanded, and of every
/// transcript is at most `book::WIDTH` columns: a longer one hides behind a
/// scrollbar in the rendered page. (`cargo xtask book` wraps transcripts;
/// `--reflow` wraps those already written.)
fn book_text_fits() -> Result<()> {
    let mut problems = Vec::new();
    let src = root().join("book/src");
    let mut checked = 0;
    for file in walk(&src)? {
        let rel = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&file)?;
        let lines: Vec<(usize, String)> = match file.extension().and_then(|e| e.to_str()) {
            Some("md") => text_block_lines(&text, file.parent().unwrap()),
            Some("txt") => text.lines().map(String::from).enumerate().collect(),
            _ => continue,
        };
        for (number, line) in lines {
            checked += 1;
            let width = line.chars().count();
            ensure(width <= crate::book::WIDTH, &mut problems, || {
                format!(
                    "{rel}:{}: {width} columns, over {}: {line}",
                    number + 1,
                    crate::book::WIDTH
                )
            });
        }
    }
    ensure(checked > 0, &mut problems, || {
        "no text block or transcript found in book/src".into()
    });
    eprintln!("  {checked} lines of text blocks and transcripts checked");
    result_of(problems, "book")
}

/// The lines (with their line number in the page) of a page's text-like
/// fenced blocks, an `{{#include}}` line replaced by what it includes.
fn text_block_lines(page: &str, dir: &Path) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut inside: Option<bool> = None; // Some(checked) within a block
    for (number, line) in page.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            inside = match inside {
                Some(_) => None,
                None => {
                    let lang = info.split([',', ' ']).next().unwrap_or("");
                    Some(matches!(
                        lang,
                        "" | "text" | "transcript" | "diagram" | "console"
                    ))
                }
            };
            continue;
        }
        if inside != Some(true) {
            continue;
        }
        match includes(line).first() {
            // transcripts are checked as files of their own
            Some(include) if include.starts_with("transcripts/") => {}
            Some(include) => {
                let (file, anchor) = match include.split_once(':') {
                    Some((f, a)) => (f, Some(a)),
                    None => (include.as_str(), None),
                };
                let content = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
                let body = match anchor {
                    Some(a) => anchored(&content, a).unwrap_or_default(),
                    None => content,
                };
                out.extend(body.lines().map(|l| (number, l.to_string())));
            }
            None => out.push((number, line.to_string())),
        }
    }
    out
}

/// The includes of the page `rel_page` (`book/src/chNN-x.md`, its `text`)
/// that quote the wrong place, one problem each, naming the page and the
/// line. No page quotes a file under `shared/`: that is plumbing no lesson
/// needs to show. A chapter's page quotes its own chapter's code, or an
/// earlier chapter's it builds on (and its transcripts), so that
/// `chapters/chNN-*/` holds everything page NN shows.
fn misplaced_includes(rel_page: &str, text: &str) -> Vec<String> {
    let page_dir = Path::new(rel_page).parent().unwrap_or(Path::new(""));
    let chapter_of =
        |name: &str| -> Option<u32> { name.strip_prefix("ch")?.get(..2)?.parse().ok() };
    let page_chapter = Path::new(rel_page)
        .file_name()
        .and_then(|n| chapter_of(&n.to_string_lossy()));
    let mut problems = Vec::new();
    for (number, line) in text.lines().enumerate() {
        for include in includes(line) {
            let file = include.split_once(':').map_or(include.as_str(), |(f, _)| f);
            let target = lexically_normal(&page_dir.join(file));
            let at = format!("{rel_page}:{}: {{{{#include {include}}}}}", number + 1);
            let mut parts = target.iter().map(|p| p.to_string_lossy());
            let (top, next) = (parts.next(), parts.next());
            if top.as_deref() == Some("shared") {
                problems.push(format!(
                    "{at} quotes {}, under shared/: a page quotes the chapters, never the \
                     plumbing (move what it shows into the chapter that teaches it)",
                    target.display()
                ));
                continue;
            }
            let Some(page_chapter) = page_chapter else {
                continue; // not a chapter's page: the introduction, the bench
            };
            if target.starts_with(page_dir.join("transcripts")) {
                continue; // the demo's own output
            }
            match (top.as_deref(), next.as_deref().and_then(chapter_of)) {
                (Some("chapters"), Some(quoted)) if quoted <= page_chapter => {}
                (Some("chapters"), Some(quoted)) => problems.push(format!(
                    "{at} quotes chapter {quoted} from chapter {page_chapter}'s page: \
                     a page quotes its own chapter, or an earlier one"
                )),
                _ => problems.push(format!(
                    "{at} quotes {}, outside chapters/: a chapter's page quotes \
                     chapters/ch{page_chapter:02}-*/ (or an earlier chapter)",
                    target.display()
                )),
            }
        }
    }
    problems
}

/// `path` with its `..` and `.` resolved by name (`book/src/../../a` is `a`).
fn lexically_normal(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn includes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for directive in ["{{#include ", "{{#rustdoc_include "] {
        let mut rest = text;
        while let Some(i) = rest.find(directive) {
            rest = &rest[i + directive.len()..];
            if let Some(end) = rest.find("}}") {
                out.push(rest[..end].trim().to_string());
                rest = &rest[end..];
            }
        }
    }
    out
}

/// The lines between `ANCHOR: name` and `ANCHOR_END: name`, as mdBook cuts them.
fn anchored(content: &str, name: &str) -> Option<String> {
    let is = |line: &str, tag: &str| {
        line.split(tag)
            .nth(1)
            .is_some_and(|rest| rest.split_whitespace().next() == Some(name))
    };
    let mut lines = content.lines();
    lines.by_ref().find(|l| is(l, "ANCHOR: "))?;
    let mut body = String::new();
    for l in lines {
        if is(l, "ANCHOR_END: ") {
            return Some(body);
        }
        if !l.contains("ANCHOR: ") && !l.contains("ANCHOR_END: ") {
            body.push_str(l);
            body.push('\n');
        }
    }
    None
}

fn walk(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

/// Run the shared checks against `package` and return each test's name and whether it passed.
fn check_results(package: &str) -> Result<BTreeMap<String, bool>> {
    Ok(run_checks(package, None, &[])?.0)
}

/// Run the checks of `package` whose names contain `filter` (all with none),
/// with `env` set: each test's name and whether it passed, and all it printed.
fn run_checks(
    package: &str,
    filter: Option<&str>,
    env: &[(&str, &str)],
) -> Result<(BTreeMap<String, bool>, String)> {
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--package",
        package,
        "--test",
        "checks",
        "--no-fail-fast",
        "--",
        "--color",
        "never",
    ]);
    cmd.args(filter)
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied());
    let out = cmd
        .output()
        .with_context(|| format!("failed to run cargo test -p {package}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut results = BTreeMap::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        if let Some((name, verdict)) = rest.rsplit_once(" ... ") {
            results.insert(name.to_string(), verdict.trim() == "ok");
        }
    }
    let said = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    if results.is_empty() {
        anyhow::bail!("cargo test -p {package} ran no check:\n{said}");
    }
    Ok((results, said))
}

/// One line of `variants-list`: exercise, name, right or wrong, why, and for
/// a wrong one the words its check must say when it catches it.
#[derive(Debug, PartialEq)]
struct Variant {
    exercise: String,
    name: String,
    right: bool,
    why: String,
    because: String,
}

fn parse_variants(listing: &str) -> Result<Vec<Variant>> {
    listing
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.splitn(5, '\t').collect();
            match fields[..] {
                [exercise, name, kind @ ("right" | "wrong"), why, because] => Ok(Variant {
                    exercise: exercise.into(),
                    name: name.into(),
                    right: kind == "right",
                    why: why.into(),
                    because: because.into(),
                }),
                _ => anyhow::bail!("variants-list printed {line:?}"),
            }
        })
        .collect()
}

/// The exercises, from the stubs' `/// Exercise N.M:` lines.
fn exercise_numbers() -> Result<Vec<String>> {
    let mut out = Vec::new();
    for path in walk(&root().join("exercises/src"))? {
        let text = std::fs::read_to_string(&path)?;
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("/// Exercise ") {
                if let Some((number, _)) = rest.split_once(':') {
                    out.push(number.to_string());
                }
            }
        }
    }
    out.sort_by_key(|n| {
        let (a, b) = n.split_once('.').unwrap_or((n, "0"));
        (a.parse::<u32>().unwrap_or(0), b.parse::<u32>().unwrap_or(0))
    });
    Ok(out)
}

/// What a variant's run says about its check.
fn verdict(
    variant: &Variant,
    results: &BTreeMap<String, bool>,
    said: &str,
) -> Result<&'static str, String> {
    if said.contains("in solutions/variants") && said.contains("no variant") {
        return Err(format!(
            "{} {}: its exercise's function does not know it (a typo in solutions/variants)",
            variant.exercise, variant.name
        ));
    }
    let failed = results.values().filter(|passed| !**passed).count();
    if !variant.right && failed > 0 {
        // Caught, but for its own mistake? The check must say the words the
        // variant names (a setup error or an unrelated failure does not).
        if variant.because.is_empty() {
            return Err(format!(
                "{} {}: a wrong variant with no `because` (the words its check must say when it catches it)",
                variant.exercise, variant.name
            ));
        }
        if !said.contains(&variant.because) {
            return Err(format!(
                "{} {}: its check failed, but without saying {:?}: caught for another reason than its mistake ({})",
                variant.exercise, variant.name, variant.because, variant.why
            ));
        }
    }
    match (variant.right, failed) {
        (false, 0) => Err(format!(
            "{} {}: a wrong answer that passes ({})",
            variant.exercise, variant.name, variant.why
        )),
        (false, _) => Ok("caught"),
        (true, 0) => Ok("passes"),
        (true, _) => Err(format!(
            "{} {}: a right answer that fails ({})",
            variant.exercise, variant.name, variant.why
        )),
    }
}

/// Every exercise has wrong variants and a right one; the checks catch every
/// wrong one and pass every right one.
fn variants_are_judged() -> Result<()> {
    let listing = cargo()
        .args([
            "run",
            "--quiet",
            "--package",
            "variants",
            "--bin",
            "variants-list",
        ])
        .output()
        .context("failed to run variants-list")?;
    anyhow::ensure!(
        listing.status.success(),
        "variants-list failed: {}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let variants = parse_variants(&String::from_utf8_lossy(&listing.stdout))?;
    let mut problems = Vec::new();
    for exercise in exercise_numbers()? {
        let of = |right: bool| {
            variants
                .iter()
                .filter(|v| v.exercise == exercise && v.right == right)
                .count()
        };
        ensure(of(false) > 0, &mut problems, || {
            format!("exercise {exercise} has no wrong variant in solutions/variants")
        });
        ensure(of(true) > 0, &mut problems, || {
            format!("exercise {exercise} has no right variant (another way to solve it)")
        });
    }
    let (mut caught, mut passed) = (0, 0);
    for v in &variants {
        let filter = format!("ex{}_", v.exercise.replace('.', "_"));
        let choice = format!("{}/{}", v.exercise, v.name);
        let (results, said) =
            run_checks("variants", Some(&filter), &[("WORKSHOP_VARIANT", &choice)])?;
        let kind = if v.right { "right" } else { "wrong" };
        match verdict(v, &results, &said) {
            Ok(word) => {
                eprintln!("    {:<5} {:<20} {kind}  {word}", v.exercise, v.name);
                if v.right {
                    passed += 1
                } else {
                    caught += 1
                }
            }
            Err(problem) => {
                eprintln!("    {:<5} {:<20} {kind}  ✗", v.exercise, v.name);
                problems.push(problem);
            }
        }
    }
    let wrong = variants.iter().filter(|v| !v.right).count();
    let right = variants.len() - wrong;
    if caught == wrong {
        eprintln!("  {wrong} wrong variants, all caught; {right} right ones, {passed} pass");
    } else {
        eprintln!("  {wrong} wrong variants, {caught} caught; {right} right ones, {passed} pass");
    }
    result_of(problems, "variants")
}

fn checks_discriminate() -> Result<()> {
    let mut problems = Vec::new();
    let stubs = check_results("exercises")?;
    let solved = check_results("solutions")?;
    for (name, passed) in &stubs {
        ensure(!passed, &mut problems, || {
            format!(
                "{name} passes on the unsolved stubs: it checks nothing (or exercises/ is solved)"
            )
        });
    }
    for (name, passed) in &solved {
        ensure(*passed, &mut problems, || {
            format!("{name} fails on the solutions")
        });
    }
    ensure(stubs.keys().eq(solved.keys()), &mut problems, || {
        "exercises and solutions do not run the same checks".into()
    });
    eprintln!(
        "  {} checks: all fail on the stubs, all pass on the solutions",
        solved.len()
    );
    result_of(problems, "checks")
}

#[cfg(test)]
mod tests {

    #[test]
    fn speaker_notes_are_one_block_with_every_part() {
        let full = "Text.\n\n<details class=\"speaker-notes\">\n<summary></summary>\n\n- **Demo live:** x\n- **Students ask:**\n  - *q?* a.\n- **The exercise:** y\n- **Time:** about 5 minutes\n\n</details>\n";
        assert_eq!(speaker_notes_problems("p", full), Vec::<String>::new());
        let none = speaker_notes_problems("p", "Text.\n<details class=\"hints\"></details>\n");
        assert!(none[0].contains("no speaker notes"), "{none:?}");
        let no_time = full.replace("- **Time:** about 5 minutes\n", "");
        assert_eq!(
            speaker_notes_problems("p", &no_time),
            ["p: its speaker notes have no **Time:**"]
        );
        // A part after the block's end is not in it.
        let outside = full.replace(
            "- **Time:** about 5 minutes\n\n</details>\n",
            "</details>\n- **Time:** 5\n",
        );
        assert_eq!(speaker_notes_problems("p", &outside).len(), 1);
        let twice = format!("{full}{full}");
        assert!(speaker_notes_problems("p", &twice)[0].contains("2 blocks"));
    }

    use super::*;

    #[test]
    fn variants_are_read_and_judged() {
        let listed = parse_variants(
            "3.1\tslave\twrong\tMS_SLAVE\tmaster:\n3.1\tlibc\tright\tthe same call\t\n",
        )
        .unwrap();
        assert_eq!(listed.len(), 2);
        assert!(!listed[0].right && listed[1].right);
        assert!(parse_variants("3.1\tx\tmaybe\twhy\t").is_err());
        let results = |verdicts: &[bool]| -> BTreeMap<String, bool> {
            verdicts
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("t{i}"), *v))
                .collect()
        };
        let (wrong, right) = (&listed[0], &listed[1]);
        assert_eq!(
            verdict(wrong, &results(&[true, false]), "/ is `master:1`"),
            Ok("caught")
        );
        // Failed, but not for its mistake (the words are not in the output).
        assert!(verdict(wrong, &results(&[false]), "probe: failed to mount")
            .unwrap_err()
            .contains("another reason"));
        assert!(verdict(wrong, &results(&[true]), "")
            .unwrap_err()
            .contains("a wrong answer that passes"));
        assert_eq!(verdict(right, &results(&[true]), ""), Ok("passes"));
        assert!(verdict(right, &results(&[false]), "").is_err());
        // A variant its function does not know fails loudly, never "caught".
        let typo = "panicked: no variant \"slave\" of exercise 3.1 in solutions/variants";
        assert!(verdict(wrong, &results(&[false]), typo)
            .unwrap_err()
            .contains("typo"));
    }

    #[test]
    fn finds_anchored_text() {
        let src =
            "a\n// ANCHOR: x\nfn x() {}\n// ANCHOR: y\ny\n// ANCHOR_END: y\n// ANCHOR_END: x\n";
        assert_eq!(anchored(src, "x").unwrap(), "fn x() {}\ny\n");
        assert_eq!(anchored(src, "y").unwrap(), "y\n");
        assert!(anchored(src, "z").is_none());
        assert!(
            anchored("// ANCHOR: xy\n1\n// ANCHOR_END: xy\n", "x").is_none(),
            "no prefix matches"
        );
    }

    #[test]
    fn text_blocks_are_found_and_their_includes_expanded() {
        let dir = std::env::temp_dir().join(format!("verify-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("t.txt"), "one\ntwo\n").unwrap();
        let page = "x\n```text\na\n{{#include t.txt}}\n```\n```rust\nskipped\n```\n```\nb\n```\n";
        let lines: Vec<String> = text_block_lines(page, &dir)
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(lines, ["a", "one", "two", "b"]);
    }

    #[test]
    fn finds_includes() {
        let page = "text {{#include ../../a.rs:one}} and\n```\n{{#rustdoc_include b.rs}}\n```";
        assert_eq!(
            includes(page),
            vec!["../../a.rs:one".to_string(), "b.rs".to_string()]
        );
    }

    #[test]
    fn a_page_that_quotes_shared_is_refused_naming_the_page_and_the_line() {
        let page = "# Chapter 3\n\n```rust\n{{#include ../../shared/x.rs:y}}\n```\n";
        let problems = misplaced_includes("book/src/ch03-mount.md", page);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("book/src/ch03-mount.md:4: {{#include ../../shared/x.rs:y}}"),
            "{}",
            problems[0]
        );
        assert!(problems[0].contains("under shared/"), "{}", problems[0]);
        // Any page: the introduction too.
        let intro = "{{#include ../../shared/workshop/src/cli.rs}}\n";
        assert_eq!(
            misplaced_includes("book/src/introduction.md", intro).len(),
            1
        );
    }

    #[test]
    fn a_page_quotes_its_own_chapter_or_an_earlier_one() {
        let page = "{{#include ../../chapters/ch03-mount/src/lib.rs:private}}\n\
                    {{#include ../../chapters/ch01-clone/src/lib.rs:clone_child}}\n\
                    {{#include transcripts/ch03-mount.txt}}\n";
        assert_eq!(
            misplaced_includes("book/src/ch03-mount.md", page),
            Vec::<String>::new()
        );
        let later = "x\n{{#include ../../chapters/ch05-uts/src/lib.rs:set}}\n";
        let problems = misplaced_includes("book/src/ch03-mount.md", later);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("book/src/ch03-mount.md:2: ")
                && problems[0].contains("chapter 5 from chapter 3's page"),
            "{}",
            problems[0]
        );
        let elsewhere = "{{#include ../../xtask/src/main.rs}}\n";
        assert_eq!(
            misplaced_includes("book/src/ch03-mount.md", elsewhere).len(),
            1
        );
        // Pages that are no chapter's quote what they need (but shared/).
        let bench = "{{#include transcripts/bench.txt}}\n";
        assert!(misplaced_includes("book/src/performance.md", bench).is_empty());
    }

    #[test]
    fn finds_functions_with_their_docs() {
        let src = "use x;\n\n/// Exercise 1.1: a\n/// Hint: b\npub fn a() {\n    todo!(\"a\")\n}\n\nfn private() {}\n";
        let f = functions(src);
        assert_eq!(f.len(), 1);
        assert!(f["a"].contains("Hint: b") && f["a"].contains("todo!"));
    }
}
