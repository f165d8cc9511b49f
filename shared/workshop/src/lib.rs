//! `workshop`: the plumbing every chapter binary links, and no lesson.
//!
//! The chapters hold the system calls; this crate holds what goes around
//! them: the common command line and the one entry point ([`main`]), the
//! narration, privilege checks, process supervision (waiting, signals, exit
//! codes) and error reporting. Root filesystems are `workshop-rootfs`'s job,
//! and the tests' support is `workshop-testkit`'s (see shared/README.md).

pub mod cli;
pub mod error;
pub mod fs;
pub mod narrate;
pub mod privileges;
pub mod process;

pub use cli::{ChapterCli, Common};
pub use error::{hinted, report, Interrupted};
pub use narrate::Narrator;

/// A chapter binary's `main`: the story starts here, and every chapter starts
/// it the same way. In order: parse the command line (clap exits 2 on bad
/// usage, before anything else), refuse a mistyped option and the chapter's
/// conflicting ones (exit 2), set up the narrator, [`start`] (signals,
/// privileges, `--shell`), then the chapter's own `run`; its result becomes
/// the exit code, an error the `error:` and `hint:` lines (see [`report`]).
///
/// ```text
/// fn main() -> ExitCode {
///     workshop::main("ch01-clone", "to create a PID namespace", run)
/// }
/// ```
pub fn main<C: ChapterCli>(
    tool: &str,
    why: &str,
    run: impl FnOnce(&C, &Narrator) -> anyhow::Result<i32>,
) -> std::process::ExitCode {
    main_needing(tool, Some(why), run)
}

/// [`main`] for a chapter that needs no privilege at all (chapter 11, the
/// rootless container: it runs as the student, and never asks for sudo).
pub fn main_unprivileged<C: ChapterCli>(
    tool: &str,
    run: impl FnOnce(&C, &Narrator) -> anyhow::Result<i32>,
) -> std::process::ExitCode {
    main_needing(tool, None, run)
}

/// [`main`], with CAP_SYS_ADMIN checked when `why` says what it is for.
fn main_needing<C: ChapterCli>(
    tool: &str,
    why: Option<&str>,
    run: impl FnOnce(&C, &Narrator) -> anyhow::Result<i32>,
) -> std::process::ExitCode {
    let cli = C::parse();
    cli.common().reject_mistyped_option::<C>();
    cli.reject_conflicts();
    let say = Narrator::new(cli.common());
    let result = start(cli.common(), tool, why).and_then(|()| run(&cli, &say));
    report(result, &say)
}

/// What every chapter does before anything else: block the termination
/// signals (they are handled where the tool waits), check for the capability
/// the chapter needs (`why` it needs it; none for chapter 11), and with
/// `--shell` prepare the prompt and the terminal.
pub fn start(common: &Common, tool: &str, why: Option<&str>) -> anyhow::Result<()> {
    process::block_termination_signals()?;
    if let Some(why) = why {
        privileges::require(privileges::Capability::SysAdmin, tool, why)?;
    }
    if common.shell {
        prepare_shell(tool);
    }
    Ok(())
}

/// Before starting an interactive shell in a container: a prompt that says
/// where it is, and, on a terminal, the terminal for the shell's own process
/// group (so job control works and its exit code comes back).
pub fn prepare_shell(tool: &str) {
    std::env::set_var("PS1", format!("[{tool}] # "));
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        process::give_the_terminal_to_the_container();
    }
}
