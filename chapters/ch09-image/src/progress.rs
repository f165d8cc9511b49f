//! A progress bar on stderr for imports (and builds): bytes done of the
//! total. Shown only when asked (never in `--quiet`), only when stderr is a
//! terminal, and only once the work has taken more than a second, so that a
//! quick import prints nothing at all.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Read};
use std::time::Duration;

/// How long the work runs before the bar appears.
pub const DELAY: Duration = Duration::from_secs(1);

/// A bar of bytes, hidden until [`DELAY`] has passed (and hidden for good
/// when it may not be shown).
pub struct Progress {
    bar: ProgressBar,
    may_show: bool,
}

/// Whether a bar may be shown: asked for, and stderr is a terminal.
pub fn may_show(asked: bool, stderr_is_terminal: bool) -> bool {
    asked && stderr_is_terminal
}

/// Whether a bar that may be shown is shown, `elapsed` into the work.
pub fn shown_after(may_show: bool, elapsed: Duration) -> bool {
    may_show && elapsed > DELAY
}

impl Progress {
    /// A bar for `total` bytes, labelled `message`; `asked` is false in
    /// `--quiet`.
    pub fn bytes(total: u64, message: impl Into<String>, asked: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(message.into());
        Progress {
            bar,
            may_show: may_show(asked, std::io::stderr().is_terminal()),
        }
    }

    /// Say what is being done now.
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// Count `n` more bytes done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        if self.bar.is_hidden() && shown_after(self.may_show, self.bar.elapsed()) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// `inner`, counting what is read from it.
    pub fn reader<R: Read>(&self, inner: R) -> Counting<'_, R> {
        Counting {
            inner,
            progress: self,
        }
    }

    /// Whether the bar is on the screen now.
    pub fn is_shown(&self) -> bool {
        !self.bar.is_hidden()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// A reader that counts its bytes on a [`Progress`].
pub struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_needs_asking_and_a_terminal() {
        assert!(may_show(true, true));
        assert!(!may_show(false, true), "--quiet");
        assert!(!may_show(true, false), "stderr piped");
    }

    #[test]
    fn the_bar_waits_a_second() {
        assert!(!shown_after(true, Duration::from_millis(900)));
        assert!(shown_after(true, Duration::from_millis(1100)));
        assert!(!shown_after(false, Duration::from_secs(60)));
    }

    #[test]
    fn a_bar_not_asked_for_stays_hidden_after_the_delay() {
        let progress = Progress::bytes(10, "test", false);
        std::thread::sleep(DELAY + Duration::from_millis(50));
        let mut read = progress.reader(&b"0123456789"[..]);
        std::io::copy(&mut read, &mut std::io::sink()).unwrap();
        assert!(!progress.is_shown());
    }
}
