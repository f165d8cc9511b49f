//! Names on the bridge: one `/etc/hosts` for every container on it, written
//! from the leases by the tool, and mounted read-only onto each container's
//! `/etc/hosts`. A bind mount shows the file itself (its inode), so when a
//! container comes or goes, rewriting the file in place updates every
//! container's view at once: the next lookup (`ping web`) reads it anew.
//!
//! Docker's user-defined networks answer names with a DNS server of their
//! own at 127.0.0.11 instead; a hosts file needs no server and no port, and
//! the C library and busybox read it before any DNS.

use crate::lease::Lease;
use anyhow::{Context, Result};
use nix::libc;
use std::ffi::CString;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The name the host has on the bridge, from every container.
pub const HOST_NAME: &str = "host.workshop.internal";

/// The hosts file of a bridge whose gateway is `gateway`, with every lease.
pub fn render(gateway: Ipv4Addr, leases: &[Lease]) -> String {
    let mut text = String::from(
        "# written by ch10-bridge: the containers on the bridge, by name\n\
         127.0.0.1\tlocalhost\n",
    );
    text.push_str(&format!("{gateway}\t{HOST_NAME}\n"));
    for lease in leases.iter().filter(|l| !l.name.is_empty()) {
        text.push_str(&format!("{}\t{}\n", lease.address, lease.name));
    }
    text
}

/// What is written over a file of `old_len` bytes before it is cut to
/// `text`'s length: `text`, then, if the old was longer, one comment line
/// (`#####`) up to its end, so that no piece of an old line follows. Not
/// past 64 KiB: a file that big is not the tool's (a container's root can
/// remount it writable), and is cut at once.
fn over_old(text: &str, old_len: usize) -> String {
    let mut out = text.to_string();
    let pad = old_len.checked_sub(text.len() + 1);
    if let Some(pad) = pad.filter(|&p| p < 64 * 1024) {
        out.push_str(&"#".repeat(pad));
        out.push('\n');
    }
    out
}

/// Replace the content of `path`, keeping its inode: the containers' bind
/// mounts show this very file (a new file renamed over it would be another
/// inode, which they would never see). The new content is written over the
/// old from the start (with a comment line over what is left of the old),
/// then the file cut to its length: a reader in between sees the new
/// names, never an empty file nor a piece of an old line.
pub fn write_in_place(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW) // a symlink put there is not followed (ELOOP)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => workshop::error::hinted(
                format!("{} is a symbolic link: not written through", path.display()),
                format!("it is the bridge's own file, for the containers only: `rm {}` (the next run writes it again)", path.display()),
            ),
            _ => anyhow::Error::new(e).context(format!("failed to open {}", path.display())),
        })?;
    let old_len = file.metadata().map_or(0, |m| m.len() as usize);
    file.write_all(over_old(text, old_len).as_bytes())
        .and_then(|()| file.set_len(text.len() as u64))
        .with_context(|| format!("failed to write {}", path.display()))
}

// ANCHOR: open_tree
/// In the container, while the host's files are still visible (before
/// `pivot_root`): a bind mount of `hosts`, made but not attached anywhere
/// yet (`open_tree` with `OPEN_TREE_CLONE`, Linux 5.2): a file descriptor
/// that [`attach_hosts`] puts in place once the container is in its root.
pub fn detach_bind_of(hosts: &Path) -> Result<OwnedFd> {
    let path = CString::new(hosts.as_os_str().as_bytes())?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_SYMLINK_NOFOLLOW as u32;
    // SAFETY: a plain system call with a valid NUL-terminated path.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("open_tree({}, OPEN_TREE_CLONE)", hosts.display()));
    }
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
// ANCHOR_END: open_tree

// ANCHOR: attach
/// In the container, in its root: attach the bind mount onto `/etc/hosts`
/// (`move_mount`; the file is made if the image has none), then make it
/// read-only: the file is every container's, none may change another's
/// names. `mount --bind HOSTS /etc/hosts && mount -o remount,bind,ro /etc/hosts`.
pub fn attach_hosts(tree: OwnedFd) -> Result<()> {
    let target = Path::new("/etc/hosts");
    make_file_if_missing(target)?; // an image may have none
    let empty = CString::default();
    let to = CString::new("/etc/hosts")?;
    // SAFETY: a plain system call with valid descriptors and paths.
    let done = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if done < 0 {
        return Err(std::io::Error::last_os_error()).context("move_mount(.., \"/etc/hosts\")");
    }
    let flags = nix::mount::MsFlags::MS_BIND
        | nix::mount::MsFlags::MS_REMOUNT
        | nix::mount::MsFlags::MS_RDONLY;
    nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .context("failed to make /etc/hosts read-only")
}
// ANCHOR_END: attach

/// `target`, made an empty file if the image has none (and its directory);
/// a directory there is refused, as a file cannot be mounted on it.
fn make_file_if_missing(target: &Path) -> Result<()> {
    match std::fs::symlink_metadata(target) {
        Err(_) => {
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("failed to make {}", dir.display()))?;
            }
            std::fs::File::create(target)
                .with_context(|| format!("failed to make {}", target.display()))?;
            Ok(())
        }
        Ok(meta) if meta.is_dir() => Err(workshop::error::hinted(
            format!(
                "the image's {} is a directory: the bridge's names (a file) cannot go there",
                target.display()
            ),
            "give it back its file (a layer without the directory), or run with --network veth",
        )),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(n: u8, name: &str) -> Lease {
        Lease {
            address: Ipv4Addr::new(10, 201, 0, n),
            owner: "o".into(),
            name: name.into(),
            veth: String::new(),
            path: Default::default(),
        }
    }

    #[test]
    fn lists_the_host_and_each_named_lease() {
        let text = render(
            Ipv4Addr::new(10, 201, 0, 1),
            &[lease(2, "web"), lease(3, ""), lease(4, "db")],
        );
        assert!(
            text.contains("10.201.0.1\thost.workshop.internal\n"),
            "{text}"
        );
        assert!(text.contains("10.201.0.2\tweb\n"), "{text}");
        assert!(text.contains("10.201.0.4\tdb\n"), "{text}");
        assert!(!text.contains("10.201.0.3"), "{text}");
    }

    #[test]
    fn a_reader_before_the_cut_sees_only_whole_lines_of_the_new_text() {
        let gateway = Ipv4Addr::new(10, 201, 0, 1);
        let old = render(
            gateway,
            &[lease(2, "alpha"), lease(3, "bravo"), lease(4, "charlie")],
        );
        // bravo left: without care the reader sees "ha\n" (a piece of
        // "alpha") or a piece such as "0.4\tcharlie" (glibc reads 0.0.0.4).
        for new in [
            render(gateway, &[lease(2, "al"), lease(3, "bravo")]),
            render(gateway, &[lease(3, "bravo")]),
            render(gateway, &[]),
        ] {
            // The file between the write and the cut: the new bytes over the old.
            let written = over_old(&new, old.len());
            let mut seen = written.clone().into_bytes();
            seen.extend_from_slice(&old.as_bytes()[written.len().min(old.len())..]);
            let seen = String::from_utf8(seen).unwrap();
            for line in seen.lines() {
                assert!(
                    new.lines().any(|l| l == line) || line.is_empty() || line.starts_with('#'),
                    "a reader before the cut sees {line:?}, a piece of an old line:\n{seen}"
                );
            }
            assert!(written.starts_with(&new));
        }
        // A file a root in a container made huge (remount rw, then write):
        // the next rewrite does not pad a gigabyte of '#' in memory.
        let new = render(gateway, &[]);
        assert!(over_old(&new, 1 << 30).len() <= new.len() + 64 * 1024);
    }

    #[test]
    fn rewrites_in_place_keeping_the_inode() {
        use std::os::unix::fs::MetadataExt;
        let path = std::env::temp_dir().join(format!("ch10-hosts-{}", std::process::id()));
        write_in_place(&path, "a long first version\n").unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        write_in_place(&path, "short\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "short\n");
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
        std::fs::remove_file(&path).unwrap();
    }
}
