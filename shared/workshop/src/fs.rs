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
}
