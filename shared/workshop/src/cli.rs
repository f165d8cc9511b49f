//! The command line every chapter shares: `chNN [OPTIONS] [-- COMMAND [ARGS...]]`.

use clap::{Args, ValueEnum};
use std::io::IsTerminal;

/// Options every chapter has. Chapters `#[command(flatten)]` this into their own
/// clap struct and add the options their lesson introduces.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Start an interactive shell inside the container
    #[arg(long, conflicts_with = "command")]
    pub shell: bool,

    /// Print no narration: only the container's own output
    #[arg(long, short)]
    pub quiet: bool,

    /// When to colour the narration (NO_COLOR in the environment means never)
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Command to run inside the container, as with `docker run IMAGE COMMAND`.
    /// Without one, the chapter runs its guided demo.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// A chapter's own command line (its clap struct), as [`crate::main`] needs
/// it: the options every chapter shares, and a hook for the conflicts
/// between options that clap cannot express.
pub trait ChapterCli: clap::Parser {
    /// The options every chapter has (`#[command(flatten)] common: Common`).
    fn common(&self) -> &Common;

    /// Refuse option values that clash with one another (exit 2), right after
    /// parsing; chapter 6's `--ip` with `--network none`, for one. None by default.
    fn reject_conflicts(&self) {}
}

/// What the chapter was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// No command: narrate the lesson and run a few observations.
    Demo,
    /// Run this command inside the container and exit with its exit code.
    Run(Vec<String>),
    /// `--shell`: an interactive shell inside the container.
    Shell(Vec<String>),
}

impl Common {
    /// A mistyped option (`--shel`) would otherwise be taken as the command to
    /// run. Unless `--` came first, a command that starts with '-' is a usage
    /// error (exit 2), with the closest real option suggested. Called right
    /// after parsing, by [`crate::main`].
    pub fn reject_mistyped_option<C: clap::CommandFactory>(&self) {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if let Some(word) = mistyped(&self.command, &args) {
            let command = C::command();
            let names: Vec<String> = command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .map(|l| format!("--{l}"))
                .collect();
            let tip = closest(word, &names).map_or(String::new(), |n| {
                format!("\n\n  tip: a similar option exists: '{n}'")
            });
            let message = format!(
                "unexpected argument '{word}' found{tip}\n  tip: a command that starts with '-' goes after '--'"
            );
            command
                .clone()
                .error(clap::error::ErrorKind::UnknownArgument, message)
                .exit();
        }
    }

    pub fn mode(&self) -> Mode {
        if self.shell {
            Mode::Shell(vec!["/bin/sh".into()])
        } else if self.command.is_empty() {
            Mode::Demo
        } else {
            Mode::Run(self.command.clone())
        }
    }

    /// Whether narration is coloured: `--color`, then NO_COLOR, then "is stderr a terminal".
    pub fn use_color(&self) -> bool {
        color_wanted(
            self.color,
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            std::io::stderr().is_terminal(),
        )
    }
}

/// The command's first word, if it starts with '-' and no `--` came before it.
fn mistyped<'a>(command: &'a [String], args: &[String]) -> Option<&'a str> {
    let first = command.first()?;
    if !first.starts_with('-') {
        return None;
    }
    let dashdash = args.iter().position(|a| a == "--");
    let at = args.iter().position(|a| a == first);
    match (dashdash, at) {
        (Some(d), Some(a)) if d < a => None,
        _ => Some(first),
    }
}

/// The option name closest to `word` (edit distance at most 2).
fn closest(word: &str, names: &[String]) -> Option<String> {
    let distance = |a: &str, b: &str| {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for i in 1..=a.len() {
            let mut previous = row[0];
            row[0] = i;
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let next = (row[j] + 1).min(row[j - 1] + 1).min(previous + cost);
                previous = row[j];
                row[j] = next;
            }
        }
        row[b.len()]
    };
    names
        .iter()
        .map(|n| (distance(word, n), n))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, n)| n.clone())
}

fn color_wanted(choice: ColorChoice, no_color_env: bool, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color_env && terminal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: Common,
    }

    fn parse(args: &[&str]) -> Result<Common, clap::Error> {
        Cli::try_parse_from(std::iter::once("chNN").chain(args.iter().copied())).map(|c| c.common)
    }

    #[test]
    fn command_after_double_dash_or_without_it() {
        // `cargo run -p ch01-clone -- sh -c 'echo $$'` hands the binary `sh -c ...`
        // with the `--` already consumed by cargo: both spellings must work.
        for args in [&["--", "sh", "-c", "echo $$"][..], &["sh", "-c", "echo $$"]] {
            let c = parse(args).unwrap();
            assert_eq!(
                c.mode(),
                Mode::Run(vec!["sh".into(), "-c".into(), "echo $$".into()])
            );
        }
    }

    #[test]
    fn options_before_the_command_belong_to_the_tool() {
        let c = parse(&["--quiet", "--", "ps", "-e"]).unwrap();
        assert!(c.quiet);
        assert_eq!(c.mode(), Mode::Run(vec!["ps".into(), "-e".into()]));
        // ...and options after the command belong to the command.
        let c = parse(&["ls", "--quiet"]).unwrap();
        assert!(!c.quiet);
    }

    #[test]
    fn a_mistyped_option_is_not_a_command() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            mistyped(&args(&["--shel"]), &args(&["--shel"])),
            Some("--shel")
        );
        assert_eq!(
            mistyped(&args(&["--hostnme", "box1"]), &args(&["--hostnme", "box1"])),
            Some("--hostnme")
        );
        // After `--`, anything is the command, even a leading dash.
        assert_eq!(
            mistyped(&args(&["-x"]), &args(&["--quiet", "--", "-x"])),
            None
        );
        assert_eq!(
            mistyped(&args(&["sh", "-c", "x"]), &args(&["sh", "-c", "x"])),
            None
        );
        let names = args(&["--shell", "--quiet", "--color", "--hostname"]);
        assert_eq!(closest("--shel", &names).as_deref(), Some("--shell"));
        assert_eq!(closest("--hostnme", &names).as_deref(), Some("--hostname"));
        assert_eq!(closest("--frobnicate", &names), None);
    }

    #[test]
    fn no_command_is_the_demo_and_shell_excludes_a_command() {
        assert_eq!(parse(&[]).unwrap().mode(), Mode::Demo);
        assert!(matches!(
            parse(&["--shell"]).unwrap().mode(),
            Mode::Shell(_)
        ));
        assert!(parse(&["--shell", "--", "ls"]).is_err());
        assert!(parse(&["--color", "purple"]).is_err());
    }

    #[test]
    fn colour_follows_flag_then_no_color_then_terminal() {
        assert!(color_wanted(ColorChoice::Always, true, false));
        assert!(!color_wanted(ColorChoice::Never, false, true));
        assert!(color_wanted(ColorChoice::Auto, false, true));
        assert!(!color_wanted(ColorChoice::Auto, true, true));
        assert!(!color_wanted(ColorChoice::Auto, false, false));
    }
}
