//! Error reporting for the chapter binaries: `error: ...` and `hint: ...`
//! lines, exit 1 for a failure of the tool, 128+N when interrupted by signal N.

use nix::sys::signal::Signal;
use owo_colors::{OwoColorize, Style};
use std::fmt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// An error with a hint: what the student can do about it.
#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// Build an error that carries a `hint:` line.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted {
        message: message.into(),
        hint: hint.into(),
    }
    .into()
}

/// Extension to add a hint to any error while keeping its cause.
pub trait HintExt<T> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> HintExt<T> for Result<T, E> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| {
            let e: anyhow::Error = e.into();
            let message = format!("{e:#}");
            hinted(message, hint)
        })
    }
}

/// The tool was told to stop (SIGINT, SIGTERM): the container has been killed,
/// everything the tool made has been removed, and it exits 128+N.
#[derive(Debug)]
pub struct Interrupted(pub Signal);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the container was killed, and nothing it used is left",
            self.0.as_str()
        )
    }
}

impl std::error::Error for Interrupted {}

/// The end of every chapter's `main`: turn the result into an exit code and
/// print errors as `error:` / `hint:` lines.
pub fn report(result: anyhow::Result<i32>, say: &crate::Narrator) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            if let Some(Interrupted(sig)) = err.downcast_ref::<Interrupted>() {
                if !say.is_quiet() {
                    let stopped = paint("stopped:", Style::new().yellow().bold(), say.uses_color());
                    eprintln!("{stopped} {err}");
                }
                return ExitCode::from(128 + *sig as u8);
            }
            eprint!("{}", lines(&err, say.uses_color()));
            ExitCode::from(1)
        }
    }
}

/// Print `err` on stderr as [`report`] does: an `error:` line, and a `hint:`
/// line when a [`Hinted`] is in its chain. For errors raised in a child (the
/// container before its exec), which has no `report` of its own; coloured as
/// the tool's narration is (see [`color_errors`]).
pub fn print(err: &anyhow::Error) {
    eprint!("{}", lines(err, COLOR.load(Ordering::Relaxed)));
}

/// Whether [`print()`] colours its lines: set with the narration's colour
/// (`Narrator::new`), before any child exists; children inherit it.
pub fn color_errors(on: bool) {
    COLOR.store(on, Ordering::Relaxed);
}

static COLOR: AtomicBool = AtomicBool::new(false);

/// `error: MESSAGE: CAUSE: ...` and, if the chain holds a hint, `hint: HINT`.
fn lines(err: &anyhow::Error, color: bool) -> String {
    let mut out = format!(
        "{} {err:#}\n",
        paint("error:", Style::new().red().bold(), color)
    );
    if let Some(h) = err.chain().find_map(|e| e.downcast_ref::<Hinted>()) {
        out += &format!(
            "{} {}\n",
            paint("hint:", Style::new().yellow().bold(), color),
            h.hint
        );
    }
    out
}

fn paint(text: &str, style: Style, color: bool) -> String {
    if color {
        text.style(style).to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_with_a_hint_prints_both_lines() {
        let err = hinted(
            "failed to mount a tmpfs on /r/dev: ENOENT",
            "the rootfs needs /dev",
        )
        .context("in the container");
        assert_eq!(
            lines(&err, false),
            "error: in the container: failed to mount a tmpfs on /r/dev: ENOENT\n\
             hint: the rootfs needs /dev\n"
        );
    }

    #[test]
    fn an_error_without_a_hint_prints_one_line() {
        let err = anyhow::anyhow!("failed to exec x");
        assert_eq!(lines(&err, false), "error: failed to exec x\n");
        assert!(lines(&err, true).contains("\u{1b}["));
    }
}
