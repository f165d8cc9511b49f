//! Small filesystem plumbing the chapters share.

use anyhow::{Context, Result};
use std::path::Path;

/// Remove `path` with `remove` (`std::fs::remove_file`, `remove_dir_all`...);
/// `false` when it was gone already. Runs reclaim the same leftovers at the
/// same time (another test's, another worktree's), and one of them removing
/// a thing first is no failure of the other's.
pub fn remove_if_there(
    path: &Path,
    remove: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<bool> {
    match remove(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("failed to remove {}", path.display())),
    }
}

/// `remove_dir_all`, for a tree its owner may not be able to read: one an
/// overlay left in a user namespace holds `work/work` with mode 000, which
/// root removes anyway (CAP_DAC_OVERRIDE) and its owner may not. Each
/// directory is given `u+rwx` first (its owner may always chmod it), never
/// following a symlink.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
        done => return done,
    }
    fn open_up(dir: &Path) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(dir)?;
        if !meta.is_dir() {
            return Ok(());
        }
        let mode = meta.permissions().mode();
        if mode & 0o700 != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700))?;
        }
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                open_up(&entry.path())?;
            }
        }
        Ok(())
    }
    open_up(path)?;
    std::fs::remove_dir_all(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_whether_it_removed_and_fails_on_other_errors() {
        let dir = std::env::temp_dir().join(format!("workshop-fs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("file"), "x").unwrap();
        let file = |p: &Path| std::fs::remove_file(p);
        assert!(remove_if_there(&dir.join("file"), file).unwrap());
        assert!(!remove_if_there(&dir.join("file"), file).unwrap());
        // A directory is no file: an error other than "not found".
        assert!(remove_if_there(&dir.join("sub"), file).is_err());
        assert!(remove_if_there(&dir, |p| std::fs::remove_dir_all(p)).unwrap());
        assert!(!dir.exists());
    }

    #[test]
    fn removes_a_tree_with_a_directory_its_owner_cannot_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("workshop-fs-tree-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("work/work/deeper")).unwrap();
        std::fs::write(dir.join("work/work/deeper/f"), "x").unwrap();
        std::fs::set_permissions(
            dir.join("work/work"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
        assert!(
            remove_tree(&dir).is_err(),
            "gone: NotFound, as remove_dir_all says"
        );
    }
}
