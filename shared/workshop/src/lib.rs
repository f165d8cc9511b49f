//! `workshop`: everything in the Container Workshop that is not the lesson.
//!
//! The chapters hold the system calls; this crate holds the plumbing around
//! them: the common command line, the narration, privilege checks, process
//! supervision (waiting, signals, exit codes), error reporting, root
//! filesystems built from what the host has (no download), and the
//! support the tests use to prove that the host is left as it was.

pub mod cli;
pub mod error;
pub mod narrate;
pub mod privileges;
pub mod process;

pub use cli::Common;
pub use error::{hinted, report, Interrupted};
pub use narrate::Narrator;

/// What every chapter does before anything else: block the termination
/// signals (they are handled where the tool waits), check for the capability
/// the chapter needs, and with `--shell` prepare the prompt and the terminal.
pub fn start(common: &Common, tool: &str, why: &str) -> anyhow::Result<()> {
    process::block_termination_signals()?;
    privileges::require(privileges::Capability::SysAdmin, tool, why)?;
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
