//! The book in other languages: a gettext catalog per language,
//! `book/po/LANG.po`, kept in step with the English text by
//! mdbook-i18n-helpers (`mdbook-xgettext` extracts the English messages,
//! `mdbook-gettext` puts the translations in when the book is built with
//! `MDBOOK_BOOK__LANGUAGE=LANG`). Code blocks, commands and program output
//! are never in the catalog (the book's preprocessor marks them
//! `<!-- i18n:skip -->`): they stay as they are in every language.
//!
//! `cargo xtask verify` fails when a catalog lacks a message of the English
//! book, has it untranslated or fuzzy (its English changed since), or
//! translates it with other inline code or other link targets than the
//! English has: a translation cannot silently fall behind.

use crate::root;
use anyhow::{Context, Result};
use polib::catalog::Catalog;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The languages the book is translated into: (code, name in itself, the
/// book's title in it: book.toml's title is not in the catalog).
pub const LANGUAGES: &[(&str, &str, &str)] = &[(
    "zh-CN",
    "简体中文",
    "容器工坊：从系统调用开始构建一个 Linux 容器",
)];

/// `cargo xtask books`: the English book into book/build, then each
/// language's into book/build/LANG (after: the English build empties
/// book/build).
pub fn build_books() -> Result<()> {
    let status = Command::new("mdbook")
        .arg("build")
        .arg(root().join("book"))
        .status()
        .context("failed to run mdbook (cargo install mdbook --version 0.5.4 --locked)")?;
    anyhow::ensure!(status.success(), "mdbook build failed");
    for (lang, _, title) in LANGUAGES {
        let status = Command::new("mdbook")
            .arg("build")
            .arg(root().join("book"))
            .arg("-d")
            .arg(root().join("book/build").join(lang))
            .env("MDBOOK_BOOK__LANGUAGE", lang)
            .env("MDBOOK_BOOK__TITLE", title)
            .status()
            .context("failed to run mdbook")?;
        anyhow::ensure!(status.success(), "mdbook build of the {lang} book failed");
    }
    Ok(())
}

/// The English book's messages, as mdbook-xgettext extracts them: msgid ->
/// the pages it is on.
pub fn english_messages() -> Result<BTreeMap<String, String>> {
    let out = std::env::temp_dir().join(format!("workshop-pot-{}", std::process::id()));
    let status = Command::new("mdbook")
        .arg("build")
        .arg(root().join("book"))
        .arg("-d")
        .arg(&out)
        .env(
            "MDBOOK_OUTPUT",
            r#"{"xgettext": {"pot-file": "messages.pot", "granularity": 0}}"#,
        )
        .env_remove("MDBOOK_BOOK__LANGUAGE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let pot = out.join("messages.pot");
    let parsed = match status {
        Ok(s) if s.success() => polib::po_file::parse(&pot)
            .map_err(|e| anyhow::anyhow!("failed to read {}: {e}", pot.display())),
        Ok(_) => Err(workshop::error::hinted(
            "mdbook could not extract the book's messages (mdbook build with the xgettext renderer failed)",
            "the extractor is mdbook-i18n-helpers' mdbook-xgettext: cargo install mdbook-i18n-helpers --version 0.4.0 --locked",
        )),
        Err(e) => Err(anyhow::anyhow!("failed to run mdbook: {e}")),
    };
    let _ = std::fs::remove_dir_all(&out);
    let catalog = parsed?;
    Ok(catalog
        .messages()
        .map(|m| (m.msgid().to_string(), pages_of(m.source())))
        .collect())
}

/// `src/ch01-clone.md src/SUMMARY.md` (a message's `#:` line) as
/// `ch01-clone, SUMMARY`.
fn pages_of(source: &str) -> String {
    source
        .split_whitespace()
        .map(|s| {
            let s = s.split(':').next().unwrap_or(s);
            s.trim_start_matches("src/").trim_end_matches(".md")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The inline code spans of a message (`` `x` ``, ``` ``x`` ```), sorted.
fn code_spans(text: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let fence = &rest[start..start + ticks];
        let after = start + ticks;
        match rest[after..].find(fence) {
            Some(end) => {
                spans.push(&rest[start..after + end + ticks]);
                rest = &rest[after + end + ticks..];
            }
            None => break,
        }
    }
    spans.sort_unstable();
    spans
}

/// The targets of a message's links, `](target)`, sorted.
fn link_targets(text: &str) -> Vec<&str> {
    let mut targets: Vec<&str> = text
        .split("](")
        .skip(1)
        .filter_map(|t| t.split(')').next())
        .collect();
    targets.sort_unstable();
    targets
}

/// What is wrong with `catalog` against the English `messages`, one line
/// each: missing, untranslated, fuzzy, or other code or links.
pub fn problems(messages: &BTreeMap<String, String>, catalog: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    for (msgid, pages) in messages {
        let shown: String = msgid
            .chars()
            .take(70)
            .collect::<String>()
            .replace('\n', " ");
        let what = match catalog.find_message(None, msgid, None) {
            None => "missing",
            Some(m) if !m.is_translated() => "untranslated",
            Some(m) if m.is_fuzzy() => "fuzzy (its English changed: check the translation)",
            Some(m) => {
                let msgstr = m.msgstr().unwrap_or_default();
                if code_spans(msgid) != code_spans(msgstr) {
                    "translated with other inline code than the English (code stays as it is)"
                } else if link_targets(msgid) != link_targets(msgstr) {
                    "translated with other link targets than the English"
                } else {
                    continue;
                }
            }
        };
        out.push(format!("{pages}: {what}: {shown:?}"));
    }
    out
}

/// `cargo xtask verify`'s step: every language has every message.
pub fn every_message_is_translated() -> Result<()> {
    let messages = english_messages()?;
    anyhow::ensure!(
        messages.len() > 100,
        "mdbook-xgettext found only {} messages in the book",
        messages.len()
    );
    let mut failed = Vec::new();
    for (lang, name, _) in LANGUAGES {
        let path = root().join(format!("book/po/{lang}.po"));
        let catalog = read_catalog(&path)?;
        let problems = problems(&messages, &catalog);
        if problems.is_empty() {
            eprintln!(
                "    {lang} ({name}): all {} messages translated",
                messages.len()
            );
            continue;
        }
        for p in problems.iter().take(20) {
            eprintln!("    {lang}: {p}");
        }
        if problems.len() > 20 {
            eprintln!("    {lang}: ... and {} more", problems.len() - 20);
        }
        failed.push(format!(
            "book/po/{lang}.po: {} of {} messages of the English book are not translated as they should be",
            problems.len(),
            messages.len()
        ));
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(workshop::error::hinted(
        failed.join("; "),
        "bring the catalog up to date and translate what it marks (book/po/README.md: msgmerge, then a PO editor)",
    ))
}

fn read_catalog(path: &Path) -> Result<Catalog> {
    anyhow::ensure!(path.is_file(), "{} does not exist", path.display());
    polib::po_file::parse(path)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("failed to read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polib::message::Message;
    use polib::metadata::CatalogMetadata;

    fn catalog(entries: &[(&str, &str, bool)]) -> Catalog {
        let mut c = Catalog::new(CatalogMetadata::new());
        for (id, text, fuzzy) in entries {
            let mut flags = polib::message::MessageFlags::new();
            if *fuzzy {
                flags.add_flag("fuzzy");
            }
            c.append_or_update(
                Message::build_singular()
                    .with_msgid(id.to_string())
                    .with_msgstr(text.to_string())
                    .with_flags(flags)
                    .done(),
            );
        }
        c
    }

    fn english(ids: &[&str]) -> BTreeMap<String, String> {
        ids.iter()
            .map(|id| (id.to_string(), "ch03-mount".to_string()))
            .collect()
    }

    #[test]
    fn a_full_translation_has_no_problems() {
        let en = english(&["Run `ps -e` in [the container](ch03-mount.md)."]);
        let zh = catalog(&[(
            "Run `ps -e` in [the container](ch03-mount.md).",
            "在[容器](ch03-mount.md)里运行 `ps -e`。",
            false,
        )]);
        assert_eq!(problems(&en, &zh), Vec::<String>::new());
    }

    #[test]
    fn each_way_of_falling_behind_is_caught_and_named() {
        let en = english(&[
            "New text.",
            "Not yet.",
            "Changed.",
            "Run `ls /`.",
            "[a](b.md)",
        ]);
        let zh = catalog(&[
            ("Not yet.", "", false),
            ("Changed.", "旧的翻译。", true),
            ("Run `ls /`.", "运行 `ls`。", false),
            ("[a](b.md)", "[甲](c.md)", false),
        ]);
        let found = problems(&en, &zh);
        let said = |what: &str, id: &str| {
            found
                .iter()
                .any(|p| p.contains(what) && p.contains(id) && p.starts_with("ch03-mount: "))
        };
        assert!(said("missing", "New text."), "{found:?}");
        assert!(said("untranslated", "Not yet."), "{found:?}");
        assert!(said("fuzzy", "Changed."), "{found:?}");
        assert!(said("other inline code", "Run `ls /`."), "{found:?}");
        assert!(said("other link targets", "[a](b.md)"), "{found:?}");
        assert_eq!(found.len(), 5, "{found:?}");
    }

    #[test]
    fn code_spans_are_compared_whole_and_in_any_order() {
        assert_eq!(code_spans("`a` and ``b`c`` then `d"), ["``b`c``", "`a`"]);
        assert_eq!(code_spans("`x` before `y`"), code_spans("先 `y`，后 `x`"));
        assert_eq!(link_targets("[a](x.md) [b](y.md#z)"), ["x.md", "y.md#z"]);
        assert_eq!(
            pages_of("src/ch01-clone.md src/SUMMARY.md:3"),
            "ch01-clone, SUMMARY"
        );
    }
}
