//! A SysV shared memory segment the host makes, for the attack that looks
//! for the host's IPC objects from a container (`ws-attack --shm-key`).
//! Removed (IPC_RMID) when dropped.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::libc;

/// One segment of 4 KiB, mode 0600, under a key of its own.
pub struct HostSegment {
    pub key: i32,
    id: i32,
}

impl HostSegment {
    /// A new segment under a free key near `base` (keys already taken, by
    /// another run of a demo or a test, are skipped).
    pub fn create(base: i32) -> Result<HostSegment> {
        for attempt in 0..256 {
            let key = base | ((std::process::id() as i32).wrapping_add(attempt) & 0xffff);
            // SAFETY: shmget only takes numbers; it maps nothing.
            let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
            if id >= 0 {
                return Ok(HostSegment { key, id });
            }
            if Errno::last() != Errno::EEXIST {
                return Err(Errno::last()).context("failed to shmget() a segment on the host");
            }
        }
        anyhow::bail!("no free SysV key near {base:#x} for a segment")
    }

    pub fn id(&self) -> i32 {
        self.id
    }
}

impl Drop for HostSegment {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID with no buffer: removes our own segment.
        unsafe {
            libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}
