//! The narration: one coloured header per step, the system call, the equivalent
//! shell command (dimmed), then what the host and the container each see.
//!
//! Narration goes to stderr so that stdout carries only the container's own
//! output: `ch01-clone -- sh -c 'echo $$' > out` puts just `1` in `out`.
//! `--quiet` turns it all off.

use crate::cli::Common;
use owo_colors::{OwoColorize, Style};
use std::cell::Cell;
use std::fmt::Display;
use std::io::Write;

#[derive(Debug, Clone)]
pub struct Narrator {
    quiet: bool,
    color: bool,
    step: Cell<u32>,
}

const LABEL_WIDTH: usize = 10;

impl Narrator {
    pub fn new(common: &Common) -> Self {
        Self::with(common.quiet, common.use_color())
    }

    pub fn with(quiet: bool, color: bool) -> Self {
        crate::error::color_errors(color); // a container's own errors, printed in the child, match
        Narrator {
            quiet,
            color,
            step: Cell::new(0),
        }
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    pub fn uses_color(&self) -> bool {
        self.color
    }

    /// Style `text` when colour is on.
    pub fn paint(&self, text: impl Display, style: Style) -> String {
        if self.color {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    }

    fn emit(&self, line: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
    }

    /// The chapter's title, once, at the start of the demo.
    pub fn title(&self, text: &str) {
        self.emit(&self.paint(text, Style::new().bold().underline()));
    }

    /// A numbered step header: `━━ 2 · make the mount tree private`. First,
    /// a Ctrl-C (SIGINT, SIGTERM, SIGHUP) that came while no container was
    /// running, and waits blocked, stops the demo here: `say.step(..)?`, and
    /// no demo can forget to look between its steps.
    pub fn step(&self, title: &str) -> anyhow::Result<()> {
        crate::process::stop_if_interrupted()?;
        let n = self.step.get() + 1;
        self.step.set(n);
        self.emit("");
        self.emit(&self.paint(format!("━━ {n} · {title}"), Style::new().bold().cyan()));
        Ok(())
    }

    fn labelled(&self, label: &str, label_style: Style, text: &str, text_style: Style) {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        let pad = format!("{label:<LABEL_WIDTH$}");
        self.emit(&format!(
            "   {} {}",
            self.paint(pad, label_style),
            self.paint(first, text_style)
        ));
        for line in lines {
            self.emit(&format!(
                "   {:LABEL_WIDTH$} {}",
                "",
                self.paint(line, text_style)
            ));
        }
    }

    /// The system call this step makes, with its arguments.
    pub fn syscall(&self, text: &str) {
        self.labelled(
            "syscall",
            Style::new().yellow(),
            text,
            Style::new().yellow(),
        );
    }

    /// The shell command that does the same thing, as a teaching aid.
    pub fn shell(&self, text: &str) {
        self.labelled(
            "shell",
            Style::new().dimmed(),
            &format!("$ {text}"),
            Style::new().dimmed(),
        );
    }

    /// What the container sees.
    pub fn container(&self, text: &str) {
        self.labelled(
            "container",
            Style::new().green().bold(),
            text,
            Style::new().green(),
        );
    }

    /// What the host sees.
    pub fn host(&self, text: &str) {
        self.labelled(
            "host",
            Style::new().blue().bold(),
            text,
            Style::new().blue(),
        );
    }

    /// A sentence of explanation.
    pub fn note(&self, text: &str) {
        self.labelled("", Style::new(), text, Style::new());
    }

    /// A check the demo made on the kernel's state and that held.
    pub fn ok(&self, text: &str) {
        self.labelled("✓", Style::new().green().bold(), text, Style::new());
    }

    /// Something the student should look at twice.
    pub fn warn(&self, text: &str) {
        self.labelled(
            "!",
            Style::new().yellow().bold(),
            text,
            Style::new().yellow(),
        );
    }

    /// In the run mode (`-- COMMAND`, `--shell`), once the container exists:
    /// its PID on the host, which `kill`, `nsenter` and `/proc/PID` on the
    /// host want, and its PID inside, both as the kernel numbers them (the
    /// `NSpid` line of /proc/PID/status). One line on stderr, none with --quiet:
    /// `container: PID 48213 on the host, 1 inside`.
    pub fn container_started(&self, pid: nix::unistd::Pid) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let where_inside = match innermost_pid(&status) {
            Some(inside) if inside != pid.as_raw() as u32 => format!(", {inside} inside"),
            _ => String::new(),
        };
        self.emit(&format!(
            "{} PID {pid} on the host{where_inside}",
            self.paint("container:", Style::new().green().bold())
        ));
    }

    /// A blank line and a closing sentence: the demo's last words, unless a
    /// Ctrl-C came during its last step (as at a [`step`](Self::step), the
    /// demo stops instead, exit 128+N).
    pub fn finish(&self, text: &str) -> anyhow::Result<()> {
        crate::process::stop_if_interrupted()?;
        self.emit("");
        self.emit(&self.paint(text, Style::new().bold()));
        Ok(())
    }
}

/// The last number of the `NSpid:` line: the PID in the innermost PID namespace.
fn innermost_pid(status: &str) -> Option<u32> {
    crate::process::nspid(status).last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_only_with_colour() {
        let plain = Narrator::with(false, false);
        assert_eq!(plain.paint("x", Style::new().red()), "x");
        let coloured = Narrator::with(false, true);
        assert!(coloured.paint("x", Style::new().red()).contains("\u{1b}["));
    }

    #[test]
    fn steps_are_numbered() {
        let n = Narrator::with(true, false);
        n.step("a").unwrap();
        n.step("b").unwrap();
        assert_eq!(n.step.get(), 2);
    }

    /// A SIGINT that waits, blocked, stops the next step (and counts no step),
    /// as it stops a demo between two of its steps.
    #[test]
    fn a_pending_interrupt_stops_the_next_step() {
        use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
        let n = Narrator::with(true, false);
        n.step("before").unwrap();
        // Blocked in this thread only, and raised for this thread only
        // (raise is tgkill to the caller): the harness's other threads never see it.
        let mut sigint = SigSet::empty();
        sigint.add(Signal::SIGINT);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&sigint), None).unwrap();
        nix::sys::signal::raise(Signal::SIGINT).unwrap();
        let stopped = n.step("after");
        let not_finished = n.finish("the end");
        // Take the pending SIGINT back (sigwait consumes it), then unblock.
        assert_eq!(sigint.wait().unwrap(), Signal::SIGINT);
        pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&sigint), None).unwrap();
        let err = stopped.expect_err("a pending SIGINT stops the step");
        assert!(
            matches!(
                err.downcast_ref::<crate::Interrupted>(),
                Some(crate::Interrupted(Signal::SIGINT))
            ),
            "{err:#}"
        );
        assert_eq!(n.step.get(), 1, "the stopped step is not counted");
        assert!(not_finished.is_err(), "nor does the demo finish");
        n.step("again").unwrap();
    }

    #[test]
    fn the_innermost_pid_is_the_last_of_nspid() {
        assert_eq!(innermost_pid("Name:\tsleep\nNSpid:\t48213\t1\n"), Some(1));
        assert_eq!(innermost_pid("NSpid:\t48213\n"), Some(48213));
        assert_eq!(innermost_pid("Name:\tsleep\n"), None);
    }
}
