//! Error reporting for the chapter binaries: `error: ...` and `hint: ...`
//! lines, exit 1 for a failure of the tool, 128+N when interrupted by signal N.

use nix::sys::signal::Signal;
use owo_colors::{OwoColorize, Style};
use std::fmt;
use std::process::ExitCode;

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
    let quiet = say.is_quiet();
    let paint = |text: &str, style: Style| {
        if say.uses_color() {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            if let Some(Interrupted(sig)) = err.downcast_ref::<Interrupted>() {
                if !quiet {
                    eprintln!("{} {err}", paint("stopped:", Style::new().yellow().bold()));
                }
                return ExitCode::from(128 + *sig as u8);
            }
            eprintln!("{} {err:#}", paint("error:", Style::new().red().bold()));
            if let Some(h) = err.chain().find_map(|e| e.downcast_ref::<Hinted>()) {
                eprintln!(
                    "{} {}",
                    paint("hint:", Style::new().yellow().bold()),
                    h.hint
                );
            }
            ExitCode::from(1)
        }
    }
}
