//! Files written so that a crash never leaves half of one: atomic writes (temporary file,
//! fsync, rename), the clean-up of temporaries a killed run left, and bounded reads.

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// Writes `bytes` to `path` atomically (temporary file in the same folder, fsync, rename).
/// Every step is checked; on any failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    // the rename would replace whatever is there: never a device, a FIFO or a folder
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.is_file() {
            bail!(
                "{}: exists and is not a regular file; refusing to replace it",
                path.display()
            );
        }
    }
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot flush {}", path.display()))?;
        drop(f);
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes temporary files of [`write_atomic`] left in `dir` by processes that were killed
/// (`.NAME.tmpPID` whose PID is not running).
pub fn remove_stale_temps(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp"))
            .map(|(_, pid)| pid)
        else {
            continue;
        };
        if !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Reads a regular file of at most `limit` bytes (model files, configs): devices, FIFOs and
/// absurdly large files are errors, not endless reads.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let m = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !m.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    if m.len() > limit {
        bail!(
            "{}: {} bytes is larger than any {what} ({limit} bytes at most)",
            path.display(),
            m.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}
