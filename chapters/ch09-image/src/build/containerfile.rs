//! A Containerfile (or Dockerfile), read into instructions: the subset this
//! builder runs (`FROM`, `RUN`, `COPY`, `ENV`, `WORKDIR`, `CMD`,
//! `ENTRYPOINT`), with comments and `\` line continuations. Anything else is
//! refused before any step runs, naming its line.

use anyhow::{bail, Result};

/// One instruction, as written (continuations joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The line it starts on, from 1.
    pub line: usize,
    pub op: Op,
    /// `RUN echo hi`: the keyword in capitals, then the arguments as
    /// written. The build cache keys on it.
    pub text: String,
}

/// What an instruction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `FROM NAME[:TAG]`, or `FROM scratch` (None).
    From(Option<String>),
    /// The command, as argv: the exec form's list, or `/bin/sh -c TEXT`.
    Run(Vec<String>),
    /// Sources (relative to the context) and the destination in the image.
    Copy {
        sources: Vec<String>,
        dest: String,
    },
    /// The words of `ENV`, quotes still in (expanded when the step runs,
    /// against the environment so far): `KEY=VALUE`... or `KEY VALUE`.
    Env(String),
    Workdir(String),
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
}

/// The instructions this builder runs, for the error that refuses others.
pub const SUPPORTED: &str = "FROM, RUN, COPY, ENV, WORKDIR, CMD, ENTRYPOINT";

/// Instructions of docker's that this builder does not run.
const NOT_SUPPORTED: [&str; 11] = [
    "ADD",
    "ARG",
    "LABEL",
    "EXPOSE",
    "USER",
    "VOLUME",
    "SHELL",
    "HEALTHCHECK",
    "ONBUILD",
    "STOPSIGNAL",
    "MAINTAINER",
];

/// Read the instructions of `text` (`file` names it in errors). The first
/// is a `FROM`, and the only one.
pub fn parse(text: &str, file: &str) -> Result<Vec<Instruction>> {
    let mut instructions: Vec<Instruction> = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue; // comments (and parser directives, which we do not take)
        }
        let start = index + 1;
        let mut joined = String::new();
        let mut current = raw.trim_end();
        loop {
            match current.strip_suffix('\\') {
                Some(head) => {
                    joined.push_str(head);
                    // The next line that is not a comment goes on.
                    let mut next = None;
                    for (_, raw) in lines.by_ref() {
                        let t = raw.trim();
                        if t.starts_with('#') {
                            continue; // a comment inside a continuation, as docker allows
                        }
                        next = Some(raw.trim_end());
                        break;
                    }
                    match next {
                        Some(line) => current = line,
                        None => break, // a `\` at the very end: nothing follows
                    }
                }
                None => {
                    joined.push_str(current);
                    break;
                }
            }
        }
        let joined = joined.trim();
        let (word, args) = match joined.split_once(char::is_whitespace) {
            Some((word, args)) => (word, args.trim()),
            None => (joined, ""),
        };
        let keyword = word.to_ascii_uppercase();
        let at = |what: String| anyhow::anyhow!("{file} line {start}: {what}");
        if args.is_empty() && SUPPORTED.split(", ").any(|k| k == keyword) {
            return Err(at(format!("{keyword} needs arguments")));
        }
        let op = match keyword.as_str() {
            "FROM" => {
                let words: Vec<&str> = args.split_whitespace().collect();
                match words.as_slice() {
                    [image] if image.starts_with("--") => {
                        return Err(at(format!("FROM {image}: options are not supported")))
                    }
                    [image] if image.eq_ignore_ascii_case("scratch") => Op::From(None),
                    [image] => Op::From(Some(image.to_string())),
                    _ => {
                        return Err(at(format!(
                            "FROM {args}: one image is all this builder takes (no `AS`, no multi-stage builds)"
                        )))
                    }
                }
            }
            "RUN" => {
                if args.starts_with("--") {
                    return Err(at(format!("RUN {args}: options are not supported")));
                }
                Op::Run(command(args))
            }
            "COPY" => {
                let words: Vec<String> = match exec_form(args) {
                    Some(words) => words,
                    None => args.split_whitespace().map(str::to_string).collect(),
                };
                if let Some(flag) = words.iter().find(|w| w.starts_with("--")) {
                    return Err(at(format!(
                        "COPY {flag}: options are not supported (files are copied as root:root, with their modes)"
                    )));
                }
                if let Some(pattern) = words.iter().find(|w| w.contains(['*', '?', '['])) {
                    return Err(at(format!(
                        "COPY {pattern}: wildcards are not supported: name the files or a directory"
                    )));
                }
                let Some((dest, sources)) = words.split_last().filter(|(_, s)| !s.is_empty())
                else {
                    return Err(at(format!("COPY {args}: needs a source and a destination")));
                };
                if sources.len() > 1 && !dest.ends_with('/') {
                    return Err(at(format!(
                        "COPY {args}: with several sources the destination is a directory and must end with /"
                    )));
                }
                Op::Copy {
                    sources: sources.to_vec(),
                    dest: dest.clone(),
                }
            }
            "ENV" => Op::Env(args.to_string()),
            "WORKDIR" => Op::Workdir(args.to_string()),
            "CMD" => Op::Cmd(command(args)),
            "ENTRYPOINT" => Op::Entrypoint(command(args)),
            other if NOT_SUPPORTED.contains(&other) => {
                return Err(at(format!(
                    "{other} is not supported by this builder (it runs {SUPPORTED})"
                )))
            }
            _ => {
                return Err(at(format!(
                    "unknown instruction {word:?} (this builder runs {SUPPORTED})"
                )))
            }
        };
        match (&op, instructions.is_empty()) {
            (Op::From(_), false) => {
                return Err(at(
                    "a second FROM: multi-stage builds are not supported".to_string()
                ))
            }
            (Op::From(_), true) => {}
            (_, true) => {
                return Err(at(format!(
                    "{keyword} before FROM: a Containerfile starts with FROM (an image, or scratch)"
                )))
            }
            (_, false) => {}
        }
        instructions.push(Instruction {
            line: start,
            op,
            text: format!("{keyword} {args}"),
        });
    }
    if instructions.is_empty() {
        bail!("{file} has no instructions: it starts with FROM (an image, or scratch)");
    }
    Ok(instructions)
}

/// The exec form `["a", "b"]` as its words, if `args` is one.
fn exec_form(args: &str) -> Option<Vec<String>> {
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(args)
        .ok()
        .filter(|words| !words.is_empty())
}

/// A command in the exec form (its list as it is) or the shell form
/// (`/bin/sh -c TEXT`), as docker reads `RUN`, `CMD` and `ENTRYPOINT`.
pub fn command(args: &str) -> Vec<String> {
    exec_form(args).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), args.to_string()])
}

/// `$NAME` and `${NAME}` replaced by their values in `env` (`KEY=VALUE`),
/// the empty string when unset; `\$` is a `$`.
pub fn expand(text: &str, env: &[String]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or("")
            .to_string()
    };
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'$') => out.push(chars.next().expect("peeked")),
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push_str(&lookup(&name));
            }
            '$' if chars
                .peek()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_') =>
            {
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_') {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                out.push_str(&lookup(&name));
            }
            c => out.push(c),
        }
    }
    out
}

/// The `KEY=VALUE` pairs of an `ENV`'s arguments: `KEY=VALUE ...` with
/// quotes (`"..."` expands variables, `'...'` does not) and `\` escapes,
/// or the old `KEY VALUE` form (the rest of the line is the value).
/// Variables are those of `env`, the environment before this `ENV`.
pub fn env_pairs(args: &str, env: &[String]) -> Result<Vec<(String, String)>> {
    let first = args.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let value = args[first.len()..].trim();
        if value.is_empty() {
            bail!("ENV {args}: a variable needs a value (ENV KEY=VALUE)");
        }
        return Ok(vec![(first.to_string(), expand(value, env))]);
    }
    let mut pairs = Vec::new();
    for word in words(args, env)? {
        let Some((key, value)) = word.split_once('=') else {
            bail!("ENV {args}: {word:?} is not KEY=VALUE");
        };
        if key.is_empty() {
            bail!("ENV {args}: a variable needs a name");
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// Words split at unquoted whitespace, quotes removed, variables expanded
/// outside single quotes.
fn words(args: &str, env: &[String]) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut plain = String::new(); // unquoted text waiting to be expanded
    let mut in_word = false;
    let mut chars = args.chars();
    let flush = |plain: &mut String, word: &mut String| {
        word.push_str(&expand(plain, env));
        plain.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    flush(&mut plain, &mut word);
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('$') => plain.push_str("\\$"),
                    Some(c) => {
                        flush(&mut plain, &mut word);
                        word.push(c);
                    }
                    None => plain.push('\\'),
                }
            }
            '\'' => {
                in_word = true;
                flush(&mut plain, &mut word);
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '\'' {
                        closed = true;
                        break;
                    }
                    word.push(c);
                }
                if !closed {
                    bail!("ENV {args}: a ' is not closed");
                }
            }
            '"' => {
                in_word = true;
                flush(&mut plain, &mut word);
                let mut quoted = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some(c @ ('"' | '\\')) => quoted.push(c),
                            Some('$') => quoted.push_str("\\$"),
                            Some(c) => {
                                quoted.push('\\');
                                quoted.push(c);
                            }
                            None => {}
                        },
                        c => quoted.push(c),
                    }
                }
                if !closed {
                    bail!("ENV {args}: a \" is not closed");
                }
                word.push_str(&expand(&quoted, env));
            }
            c => {
                in_word = true;
                plain.push(c);
            }
        }
    }
    if in_word {
        flush(&mut plain, &mut word);
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(text: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), text.into()]
    }

    #[test]
    fn the_subset_with_comments_and_continuations() {
        let text = "# syntax is ignored\n\
                    FROM base:v1\n\
                    \n\
                    run echo one \\\n\
                    # a comment inside\n\
                    \x20   && echo two\n\
                    RUN [\"/bin/echo\", \"exec form\"]\n\
                    COPY a b /dst/\n\
                    ENV A=1 B=\"two words\"\n\
                    WORKDIR /app\n\
                    CMD [\"sh\"]\n\
                    ENTRYPOINT echo hi\n";
        let got = parse(text, "Containerfile").unwrap();
        let ops: Vec<(usize, Op)> = got.iter().map(|i| (i.line, i.op.clone())).collect();
        assert_eq!(
            ops,
            vec![
                (2, Op::From(Some("base:v1".into()))),
                (4, Op::Run(sh("echo one     && echo two"))),
                (7, Op::Run(vec!["/bin/echo".into(), "exec form".into()])),
                (
                    8,
                    Op::Copy {
                        sources: vec!["a".into(), "b".into()],
                        dest: "/dst/".into()
                    }
                ),
                (9, Op::Env("A=1 B=\"two words\"".into())),
                (10, Op::Workdir("/app".into())),
                (11, Op::Cmd(vec!["sh".into()])),
                (12, Op::Entrypoint(sh("echo hi"))),
            ]
        );
        assert_eq!(got[1].text, "RUN echo one     && echo two");
    }

    #[test]
    fn what_is_not_run_is_refused_naming_the_line_and_the_instruction() {
        for (text, want) in [
            (
                "FROM a\nRUN x\nADD x /y\n",
                "Containerfile line 3: ADD is not supported",
            ),
            (
                "FROM a\n\nFROBNICATE x\n",
                "Containerfile line 3: unknown instruction \"FROBNICATE\"",
            ),
            ("RUN x\n", "line 1: RUN before FROM"),
            ("FROM a\nFROM b\n", "line 2: a second FROM"),
            ("FROM a AS b\n", "line 1: FROM a AS b: one image"),
            (
                "FROM a\nCOPY --chown=1 a b\n",
                "line 2: COPY --chown=1: options",
            ),
            ("FROM a\nCOPY *.txt /\n", "line 2: COPY *.txt: wildcards"),
            ("FROM a\nCOPY a b c\n", "must end with /"),
            ("FROM a\nCOPY a\n", "needs a source and a destination"),
            ("FROM a\nRUN\n", "line 2: RUN needs arguments"),
            ("# only a comment\n", "has no instructions"),
        ] {
            let err = parse(text, "Containerfile").unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn env_takes_both_forms_quotes_and_the_variables_before_it() {
        let env = vec!["PATH=/bin".to_string(), "HOME=/root".to_string()];
        let pairs = |args| env_pairs(args, &env).unwrap();
        assert_eq!(
            pairs("PATH=/app/bin:$PATH X=${HOME}/x"),
            [
                ("PATH".into(), "/app/bin:/bin".into()),
                ("X".into(), "/root/x".into())
            ]
        );
        assert_eq!(
            pairs(r#"A="two words" B='$HOME' C=a\ b D=\$HOME"#),
            [
                ("A".into(), "two words".into()),
                ("B".into(), "$HOME".into()),
                ("C".into(), "a b".into()),
                ("D".into(), "$HOME".into())
            ]
        );
        assert_eq!(
            pairs("GREETING hello   world $HOME"),
            [("GREETING".into(), "hello   world /root".into())]
        );
        assert!(env_pairs("A=\"open", &env).is_err());
        assert!(env_pairs("=x", &env).is_err());
    }
}
