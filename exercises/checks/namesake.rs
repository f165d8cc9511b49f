//! The rule [`super::own_work`] applies: does a student's source reach the
//! chapter crate's function of the same name? Plain text in, plain text out,
//! so that it is unit-tested on strings (exercises/tests/namesake.rs: not
//! among the checks, which must all fail on the stubs).

/// The name of exercise `exercise`'s function in `source`: the first `fn`
/// after its `/// Exercise N.M:` line.
pub fn exercise_fn(source: &str, exercise: &str) -> Option<String> {
    let doc = format!("/// Exercise {exercise}:");
    let after = &source[source.find(&doc)?..];
    let tokens = tokens(after);
    let at = tokens.iter().position(|t| t == "fn")?;
    tokens.get(at + 1).cloned()
}

/// Where `source` reaches a chapter crate's `name` (`chNN_...::name(`,
/// through `use chNN_... as alias` or `extern crate chNN_... as alias`, or
/// a `use` of `name` from a chapter crate): the path as written.
pub fn namesake_call(source: &str, name: &str) -> Option<String> {
    let tokens = tokens(source);
    let is_chapter = |t: &str| {
        let b = t.as_bytes();
        b.len() > 5
            && t.starts_with("ch")
            && b[2].is_ascii_digit()
            && b[3].is_ascii_digit()
            && b[4] == b'_'
    };
    // Names that stand for a chapter crate (or something in one).
    let mut aliases: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let start = match tokens[i].as_str() {
            "use" => i + 1,
            "crate" if i > 0 && tokens[i - 1] == "extern" => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        let end = tokens[start..]
            .iter()
            .position(|t| t == ";")
            .map_or(tokens.len(), |n| start + n);
        let item = &tokens[start..end];
        let first = item.iter().find(|t| *t != "::").map(String::as_str);
        if first.is_some_and(|f| is_chapter(f) || aliases.contains(&f)) {
            if item.iter().any(|t| t == name) {
                return Some(format!("use {}", shown(item)));
            }
            for w in item.windows(2) {
                if w[0] == "as" {
                    aliases.push(&w[1]);
                }
            }
        }
        i = end;
    }
    for (i, t) in tokens.iter().enumerate() {
        if t != name || tokens.get(i + 1).map(String::as_str) != Some("(") {
            continue;
        }
        // Walk back over `seg::seg::` to the path's first segment.
        let mut j = i;
        let word = |t: &str| t.starts_with(|c: char| c.is_alphanumeric() || c == '_');
        while j >= 2 && tokens[j - 1] == "::" && word(&tokens[j - 2]) {
            j -= 2;
        }
        if j == i {
            continue; // a bare call: the student's own function
        }
        let first = tokens[j].as_str();
        if is_chapter(first) || aliases.contains(&first) {
            return Some(format!("{}(", shown(&tokens[j..=i])));
        }
    }
    None
}

/// Tokens as they would be written: a space between two words only.
fn shown(tokens: &[String]) -> String {
    let word = |t: &str| t.starts_with(|c: char| c.is_alphanumeric() || c == '_');
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 && word(t) && word(&tokens[i - 1]) {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// Rust source as tokens, enough to follow paths: identifiers, `::`, and
/// other characters one by one; comments, strings and whitespace dropped.
fn tokens(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = c.to_string();
            while let Some(&n) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                word.push(n);
                chars.next();
            }
            out.push(word);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.push("::".into());
        } else if c == '"' {
            // A string: skipped, escapes included.
            while let Some(n) = chars.next() {
                match n {
                    '\\' => {
                        chars.next();
                    }
                    '"' => break,
                    _ => {}
                }
            }
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}
