//! Claims on a piece of work shared by several `ride reproduce` processes (two campaign
//! chains, a chain and a user's run): whoever holds a unit's lock trains it, the others skip
//! it, so no two processes train the same row or cell into the same checkpoint.
//!
//! An advisory `flock` on a file that stays there (removing it on release would let a third
//! process lock a new file while a second still holds the unlinked one); the kernel drops the
//! lock when its holder exits, killed or not, so there is never a stale claim to clean up.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in a unit's folder (git-ignored).
pub const LOCK_FILE: &str = "running.lock";

/// A held claim; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    /// a sole holder wrote its name in the file, and clears it when it lets go
    exclusive: bool,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if self.exclusive {
            let _ = self.file.set_len(0);
        }
    }
}

/// What [`RunLock::try_acquire`] found.
#[derive(Debug)]
pub enum Claim {
    Held(RunLock),
    /// another process holds it; what it wrote in the file (its pid and start time)
    Busy(String),
}

impl RunLock {
    /// Claims `dir` (created if needed) for this process alone, without waiting.
    pub fn try_acquire(dir: &Path) -> Result<Claim> {
        Self::claim(dir, true)
    }

    /// Claims `dir` together with other shared holders (the single-row jobs of one table), but
    /// not while a process holds it alone (a whole-table run), without waiting.
    pub fn try_acquire_shared(dir: &Path) -> Result<Claim> {
        Self::claim(dir, false)
    }

    fn claim(dir: &Path, exclusive: bool) -> Result<Claim> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let locked = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match locked {
            Ok(()) if !exclusive => Ok(Claim::Held(RunLock {
                file,
                path,
                exclusive,
            })),
            Ok(()) => {
                let who = format!(
                    "pid {} since {} UTC",
                    std::process::id(),
                    crate::io::provenance::utc_of(std::time::SystemTime::now())
                );
                // only a sole holder writes, so the text is whole when another process reads it
                file.set_len(0)
                    .and_then(|()| file.rewind())
                    .and_then(|()| file.write_all(who.as_bytes()))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(Claim::Held(RunLock {
                    file,
                    path,
                    exclusive,
                }))
            }
            Err(TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = file.read_to_string(&mut who);
                let who = who.trim();
                Ok(Claim::Busy(if who.is_empty() {
                    "another process".into()
                } else {
                    format!("another process ({who})")
                }))
            }
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second claim on a held folder is refused and names the holder; once the first is
    /// dropped, the folder can be claimed again (the file stays); shared claims coexist.
    #[test]
    fn a_held_folder_is_busy_until_released() {
        let dir = std::env::temp_dir().join(format!("ride_run_lock_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let Claim::Held(first) = RunLock::try_acquire(&dir).unwrap() else {
            panic!("a fresh folder must be free");
        };
        assert!(first.path().is_file());
        match RunLock::try_acquire(&dir).unwrap() {
            Claim::Busy(who) => {
                assert!(
                    who.contains(&format!("pid {}", std::process::id())),
                    "{who}"
                )
            }
            Claim::Held(_) => panic!("a held folder was claimed twice"),
        }
        assert!(matches!(
            RunLock::try_acquire_shared(&dir).unwrap(),
            Claim::Busy(_)
        ));
        drop(first);
        // shared holders exclude a sole one, not each other
        let shared: Vec<Claim> = (0..2)
            .map(|_| RunLock::try_acquire_shared(&dir).unwrap())
            .collect();
        assert!(shared.iter().all(|c| matches!(c, Claim::Held(_))));
        assert!(matches!(
            RunLock::try_acquire(&dir).unwrap(),
            Claim::Busy(_)
        ));
        drop(shared);
        assert!(matches!(
            RunLock::try_acquire(&dir).unwrap(),
            Claim::Held(_)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
