//! Chapter 9 exercises, solved.

use anyhow::{bail, Context, Result};
use nix::sys::stat::{mknod, Mode, SFlag};
use sha2::{Digest, Sha256};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Exercise 9.1: an OCI whiteout, made an overlay whiteout.
pub fn apply_whiteout(layer: &Path, entry: &Path) -> Result<bool> {
    let Some(name) = entry.file_name().and_then(|n| n.to_str()) else {
        return Ok(false);
    };
    let dir = layer.join(entry.parent().unwrap_or(Path::new("")));
    if name == ".wh..wh..opq" {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let path = CString::new(dir.as_os_str().as_bytes())?;
        // SAFETY: NUL-terminated strings and a one-byte value, alive for the call.
        let rc = unsafe {
            nix::libc::lsetxattr(
                path.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("failed to make {} opaque", dir.display()));
        }
        return Ok(true);
    }
    let Some(hidden) = name.strip_prefix(".wh.") else {
        return Ok(false);
    };
    if hidden.is_empty() {
        bail!("{}: a whiteout with no name", entry.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let path = dir.join(hidden);
    mknod(&path, SFlag::S_IFCHR, Mode::empty(), 0)
        .with_context(|| format!("failed to make the whiteout {}", path.display()))?;
    Ok(true)
}

/// Exercise 9.2: copy a blob, verified against its digest on the way.
pub fn copy_verified(mut blob: impl Read, name: &str, digest: &str, to: &Path) -> Result<u64> {
    let expected = digest
        .strip_prefix("sha256:")
        .filter(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .with_context(|| {
            format!(
                "{name}: {digest:?} is not a sha256 digest (sha256: and 64 lowercase hex digits)"
            )
        })?;
    let tmp = to.with_file_name(format!(
        ".{}.partial",
        to.file_name().unwrap_or_default().to_string_lossy()
    ));
    let copied = (|| -> Result<(String, u64)> {
        let mut out = std::fs::File::create(&tmp)
            .with_context(|| format!("failed to create {}", tmp.display()))?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = match blob.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(|| format!("failed to read {name}")),
            };
            hash.update(&buf[..n]);
            out.write_all(&buf[..n])
                .with_context(|| format!("failed to write {}", tmp.display()))?;
            size += n as u64;
        }
        out.sync_all()?;
        let hex = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok((hex, size))
    })();
    let (got, size) = match copied {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if got != expected {
        let _ = std::fs::remove_file(&tmp);
        bail!("{name}: its bytes are sha256:{got}, not {digest} as the manifest says: refused");
    }
    std::fs::rename(&tmp, to)
        .with_context(|| format!("failed to rename {} to {}", tmp.display(), to.display()))?;
    Ok(size)
}
