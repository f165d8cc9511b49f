//! Chapter 5 exercises: a hostname of the container's own.
//!
//! Check your work with `cargo test -p exercises ch05`.

use anyhow::Result;
use nix::unistd::Pid;

/// Exercise 5.1: refuse a bad hostname before anything is created.
///
/// Return `Ok(())` for a name that is 1 to 64 bytes long and made of labels
/// separated by single dots, each label 1 to 63 characters of ASCII letters,
/// digits and hyphens, not starting or ending with a hyphen. Otherwise return
/// `Err` with a message that says what is wrong.
///
/// Hints:
/// - `name.split('.')` gives the labels; an empty label means a leading,
///   trailing or doubled dot.
/// - `char::is_ascii_alphanumeric` and `str::starts_with('-')`.
pub fn validate_hostname(name: &str) -> Result<(), String> {
    // TODO: check the length, then each label.
    todo!("exercise 5.1: validate a hostname")
}

/// Exercise 5.2: start `argv` in a new UTS namespace named `hostname`.
///
/// Refuse an invalid name (with your `validate_hostname`) *before* creating
/// anything; otherwise clone a child with `CLONE_NEWUTS`, set its hostname,
/// exec `argv`, and return the child's PID. The check runs `hostname` this
/// way, and checks that the host kept its own name.
///
/// Hints:
/// - `ch01_clone::clone_child(flags, || { ...; workshop::process::exec(argv) })`
///   does the clone for you (chapter 1).
/// - `nix::unistd::sethostname(name)`, in the child, never in the parent.
/// - `anyhow::bail!` (or `anyhow::anyhow!`) turns your `String` error into an error.
pub fn spawn_with_hostname(hostname: &str, argv: &[String]) -> Result<Pid> {
    // TODO: validate, then clone with CLONE_NEWUTS, sethostname, exec.
    todo!("exercise 5.2: a child in a new UTS namespace with its own hostname")
}

/// Exercise 5.3: a NIS domain name as well (the chapter sets only the hostname).
///
/// Called in the container's UTS namespace (the check makes one and calls
/// you in it): set the namespace's domain name, the one `domainname` and
/// `uname()` report, to `name`, and leave the hostname as it is. Refuse a
/// name that is empty or longer than 64 bytes with `Err`, before any syscall;
/// a name of exactly 64 bytes is fine. Do not make a namespace of your own:
/// the caller is already in the right one.
///
/// Hints:
/// - there is no `nix::unistd::setdomainname`; `nix::libc::setdomainname(ptr, len)`
///   is (unsafe: it takes a pointer and a length, in bytes, with no NUL), or
///   write the name to `/proc/sys/kernel/domainname`, which is per namespace.
/// - `std::io::Error::last_os_error()` says why a libc call returned -1.
pub fn set_domainname(name: &str) -> Result<()> {
    // TODO: refuse an empty or too long name, then set the domain name.
    todo!("exercise 5.3: set the UTS namespace's domain name")
}
