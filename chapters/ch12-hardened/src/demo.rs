//! The guided demo of chapter 12.

use anyhow::Result;
use ch12_hardened::RunOptions;
use workshop::Narrator;

pub fn demo(options: &RunOptions, say: &Narrator) -> Result<()> {
    let argv = workshop::process::argv(&[
        "sh",
        "-c",
        "grep -E 'Cap|Seccomp|NoNewPrivs' /proc/self/status; cat /proc/self/cgroup",
    ]);
    ch12_hardened::run(options, &argv, say)?;
    Ok(())
}
