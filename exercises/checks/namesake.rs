//! The rule [`super::own_work`] applies: does the function a student wrote
//! for an exercise reach the chapter crate's function of the same name?
//! Plain text in, plain text out, so that it is unit-tested on strings
//! (exercises/tests/namesake.rs: not among the checks, which must all fail
//! on the stubs).
//!
//! Only the body of the exercise's own function is searched (another
//! exercise in the same file may call the chapter's function: that is not
//! this one's business), and only what Rust would resolve to the chapter's
//! function there: a path `chNN_x::...::NAME` (called or not: a function
//! pointer counts), the same through an alias of a chapter crate (`use chNN_x
//! as m;` then `m::NAME`), a name imported from a chapter crate (`use
//! chNN_x::NAME as n;` then `n`), and a bare `NAME` that an import inside the
//! body brings in (`use chNN_x::*;`): at the top of the file such an import
//! is shadowed by the student's own `fn NAME`, and a bare `NAME(` there is
//! recursion. Comments, strings (raw ones too) and char literals are skipped.

use std::collections::HashMap;

/// The name of exercise `exercise`'s function in `source`: the `fn` right
/// below its `/// Exercise N.M:` doc line; or what is missing, said for the
/// student.
pub fn exercise_fn(source: &str, exercise: &str) -> Result<String, String> {
    let tokens = tokens(source);
    own_function(&tokens, exercise).map(|f| f.name)
}

/// Where the body of exercise `exercise`'s function reaches the chapter
/// crate's function of the same name: the path as written (and the import
/// it goes through, if any); `Err` as [`exercise_fn`].
pub fn namesake_call(source: &str, exercise: &str) -> Result<Option<String>, String> {
    let tokens = tokens(source);
    let f = own_function(&tokens, exercise)?;
    let name = f.name.as_str();
    let body = f.body.0..f.body.1;

    // The imports in scope in the body: the file's own (outside every brace)
    // and the body's.
    let mut depth = 0usize;
    let mut uses: Vec<(std::ops::Range<usize>, bool)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            "use" | "crate" if tokens[i] == "use" || (i > 0 && tokens[i - 1] == "extern") => {
                let in_body = body.contains(&i);
                let end = tokens[i..]
                    .iter()
                    .position(|t| t == ";")
                    .map_or(tokens.len(), |n| i + n);
                if depth == 0 || in_body {
                    uses.push((i + 1..end, in_body));
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut imports: Vec<Import> = Vec::new();
    for (range, in_body) in &uses {
        let item = &tokens[range.clone()];
        if tokens[range.start - 1] == "crate" {
            // extern crate chNN_x as c;
            if let [krate, as_, alias] = item {
                if as_ == "as" {
                    imports.push(Import {
                        local: alias.clone(),
                        path: vec![krate.clone()],
                        glob: false,
                        in_body: *in_body,
                        written: format!("extern crate {}", shown(item)),
                    });
                }
            }
            continue;
        }
        let written = format!("use {}", shown(item));
        use_tree(item, &mut Vec::new(), *in_body, &written, &mut imports);
    }

    // What a name stands for: a chapter crate or a module of one (`Module`),
    // or the chapter's `name` itself (`Namesake`). Imports may go through
    // one another, in any order: resolve until nothing changes.
    #[derive(Clone, PartialEq)]
    enum Meaning {
        Module,
        Namesake(String),
    }
    let mut names: HashMap<String, Meaning> = HashMap::new();
    loop {
        let before = names.len();
        for im in &imports {
            let first = im.path[0].as_str();
            if !(is_chapter(first) || names.get(first) == Some(&Meaning::Module)) {
                continue;
            }
            if im.glob {
                // At the top of the file, the student's own `fn name`
                // shadows what a glob brings: only the body's globs count.
                if im.in_body {
                    names.insert(name.to_string(), Meaning::Namesake(im.written.clone()));
                }
            } else if im.path.last().map(String::as_str) == Some(name) {
                if im.in_body || im.local != name {
                    names.insert(im.local.clone(), Meaning::Namesake(im.written.clone()));
                }
            } else if !names.contains_key(&im.local) {
                names.insert(im.local.clone(), Meaning::Module);
            }
        }
        if names.len() == before {
            break;
        }
    }

    // The paths in the body, outside its imports.
    let in_use = |k: usize| uses.iter().any(|(r, _)| k + 1 >= r.start && k < r.end);
    let mut k = body.start;
    while k < body.end {
        if !is_word(&tokens[k]) || in_use(k) {
            k += 1;
            continue;
        }
        // A path starts here unless `::` or `.` comes before (a segment of
        // a longer path, a method or a field).
        let before = k.checked_sub(1).map(|b| tokens[b].as_str());
        let leading =
            before == Some("::") && !(k >= 2 && (is_word(&tokens[k - 2]) || tokens[k - 2] == ">"));
        if matches!(before, Some("::" | "." | "fn")) && !leading {
            k += 1;
            continue;
        }
        let mut end = k;
        while end + 2 < body.end && tokens[end + 1] == "::" && is_word(&tokens[end + 2]) {
            end += 2;
        }
        let path = &tokens[k..=end];
        let first = path[0].as_str();
        let reached = if is_chapter(first) || names.get(first) == Some(&Meaning::Module) {
            path.iter().skip(1).any(|s| s == name).then(String::new)
        } else {
            match names.get(first) {
                Some(Meaning::Namesake(through)) => Some(through.clone()),
                _ => None,
            }
        };
        if let Some(through) = reached {
            let mut shown_path = shown(path);
            if leading {
                shown_path.insert_str(0, "::");
            }
            if !through.is_empty() {
                shown_path = format!("{shown_path}, through `{through}`");
            }
            if let Some(via) = names
                .get(first)
                .filter(|m| **m == Meaning::Module)
                .and_then(|_| imports.iter().find(|im| im.local == first))
            {
                shown_path = format!("{shown_path}, through `{}`", via.written);
            }
            return Ok(Some(shown_path));
        }
        k = end + 1;
    }
    Ok(None)
}

/// One name an import binds: `local` for `path` (or every name of `path`,
/// for a glob).
struct Import {
    local: String,
    path: Vec<String>,
    glob: bool,
    in_body: bool,
    written: String,
}

/// The names a use tree (`a::b::{c as d, e::*, self}`) binds, after `prefix`.
fn use_tree(
    item: &[String],
    prefix: &mut Vec<String>,
    in_body: bool,
    written: &str,
    out: &mut Vec<Import>,
) {
    let depth = prefix.len();
    let mut i = 0;
    let push = |out: &mut Vec<Import>, prefix: &[String], local: Option<&String>, glob| {
        let Some(last) = local.or(prefix.last()) else {
            return;
        };
        out.push(Import {
            local: last.clone(),
            path: prefix.to_vec(),
            glob,
            in_body,
            written: written.to_string(),
        });
    };
    while i < item.len() {
        let t = item[i].as_str();
        match t {
            "::" => {}
            "*" => push(out, prefix, None, true),
            "{" => {
                // Split the group at its top-level commas.
                let mut level = 0;
                let mut start = i + 1;
                for j in i + 1..item.len() {
                    match item[j].as_str() {
                        "{" => level += 1,
                        "}" if level > 0 => level -= 1,
                        "," | "}" if level == 0 => {
                            use_tree(&item[start..j], prefix, in_body, written, out);
                            start = j + 1;
                            if item[j] == "}" {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                prefix.truncate(depth);
                return;
            }
            "as" => {
                push(out, prefix, item.get(i + 1), false);
                prefix.truncate(depth);
                return;
            }
            "self" if !prefix.is_empty() => {}
            _ => prefix.push(t.to_string()),
        }
        i += 1;
    }
    if prefix.len() > depth && item.last().map(String::as_str) != Some("*") {
        push(out, prefix, None, false);
    }
    prefix.truncate(depth);
}

/// Exercise `exercise`'s function: its name and its body (token indices,
/// braces excluded).
struct Function {
    name: String,
    body: (usize, usize),
}

fn own_function(tokens: &[String], exercise: &str) -> Result<Function, String> {
    let doc = format!("Exercise {exercise}:");
    let missing = format!(
        "the doc line `/// Exercise {exercise}:` above your function is missing: the check \
         finds your function by it (put it back, as the stub had it)"
    );
    let at = tokens
        .iter()
        .position(|t| {
            t.strip_prefix(DOC)
                .is_some_and(|d| d.trim_start().starts_with(&doc))
        })
        .ok_or(missing)?;
    let not_above = format!(
        "the doc line `/// Exercise {exercise}:` is not right above a function: the check finds \
         your function by it (keep it just above `pub fn`, as the stub had it)"
    );
    // Below the doc: more doc, attributes, `pub`, `const`, `unsafe`... then `fn`.
    let mut i = at + 1;
    let mut brackets = 0;
    loop {
        let t = tokens.get(i).ok_or(not_above.clone())?.as_str();
        match t {
            "[" => brackets += 1,
            "]" => brackets -= 1,
            "fn" if brackets == 0 => break,
            _ if brackets > 0 || t.starts_with(DOC) => {}
            "#" | "pub" | "(" | ")" | "crate" | "super" | "in" | "self" | "const" | "async"
            | "unsafe" | "extern" => {}
            _ => return Err(not_above),
        }
        i += 1;
    }
    let name = tokens
        .get(i + 1)
        .filter(|t| is_word(t))
        .ok_or(not_above.clone())?
        .clone();
    // The body: the first `{` outside the parameters, to its match.
    let mut level = 0i32;
    let mut j = i + 2;
    while j < tokens.len() {
        match tokens[j].as_str() {
            "(" | "[" => level += 1,
            ")" | "]" => level -= 1,
            "{" if level == 0 => break,
            ";" if level == 0 => return Err(not_above),
            _ => {}
        }
        j += 1;
    }
    let start = j + 1;
    let mut level = 1;
    let mut end = start;
    while end < tokens.len() {
        match tokens[end].as_str() {
            "{" => level += 1,
            "}" => {
                level -= 1;
                if level == 0 {
                    break;
                }
            }
            _ => {}
        }
        end += 1;
    }
    Ok(Function {
        name,
        body: (start.min(tokens.len()), end),
    })
}

/// A doc comment's token starts with this (no other token can: it is not
/// a character of Rust).
const DOC: &str = "\u{0}///";

/// Is `t` a chapter crate's name (`chNN_...`)?
fn is_chapter(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() > 5
        && t.starts_with("ch")
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit()
        && b[4] == b'_'
}

fn is_word(t: &str) -> bool {
    t.starts_with(|c: char| c.is_alphanumeric() || c == '_')
}

/// Tokens as they would be written: a space between two words only.
fn shown(tokens: &[String]) -> String {
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 && is_word(t) && is_word(&tokens[i - 1]) {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// Rust source as tokens, enough to follow paths and braces: identifiers
/// (raw ones without their `r#`), `::`, `///` doc comments (as [`DOC`] and
/// their text), and other characters one by one. Comments, strings (raw,
/// byte and C ones too), char literals, lifetimes and whitespace are dropped.
fn tokens(source: &str) -> Vec<String> {
    let c: Vec<char> = source.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let word_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '/' && at(i + 1) == '/' {
            let end = c[i..]
                .iter()
                .position(|&n| n == '\n')
                .map_or(c.len(), |n| i + n);
            if at(i + 2) == '/' && at(i + 3) != '/' {
                let text: String = c[i + 3..end].iter().collect();
                out.push(format!("{DOC}{text}"));
            }
            i = end;
        } else if ch == '/' && at(i + 1) == '*' {
            // Block comments nest.
            let mut level = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    level += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    level -= 1;
                    i += 2;
                    if level == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(&c, i + 1);
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // An escaped char: '\n', '\'', '\u{7b}'.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3; // 'a', '"', '{'
            } else {
                i += 1; // a lifetime or a label: its name follows as a word
            }
        } else if word_char(ch) {
            let start = i;
            while i < c.len() && word_char(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let prefix = matches!(word.as_str(), "r" | "br" | "cr");
            if prefix && (at(i) == '"' || at(i) == '#') {
                // A raw string r#"..."#, unless r#ident (a raw identifier).
                let mut j = i;
                while at(j) == '#' {
                    j += 1;
                }
                if at(j) == '"' {
                    let hashes = j - i;
                    let mut k = j + 1;
                    while k < c.len() && !(c[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#')) {
                        k += 1;
                    }
                    i = k + 1 + hashes;
                    continue;
                }
                if word == "r" && j == i + 1 && word_char(at(j)) {
                    continue; // r#ident: the identifier follows as a word
                }
            }
            if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                i = skip_string(&c, i + 1);
                continue;
            }
            if word == "b" && at(i) == '\'' {
                continue; // b'x': the char literal follows
            }
            out.push(word);
        } else if ch == ':' && at(i + 1) == ':' {
            out.push("::".into());
            i += 2;
        } else {
            if !ch.is_whitespace() {
                out.push(ch.to_string());
            }
            i += 1;
        }
    }
    out
}

/// Past the end of a string whose opening `"` is just before `i`.
fn skip_string(c: &[char], mut i: usize) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}
