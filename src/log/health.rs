//! Whether a log directory can still be trusted (Kafka's `LogDirFailureChannel`).
//!
//! An I/O error on a log directory — a failed fsync above all — takes the directory offline for
//! the rest of the process's life: after a failed fsync Linux may have dropped the dirty pages
//! and marked them clean, so a retried fsync can "succeed" without the data on disk (the 2018
//! "fsyncgate" failure PostgreSQL fixed by treating it as fatal). Offline, the directory's
//! partitions refuse writes with KAFKA_STORAGE_ERROR and serve only what was fsynced before the
//! failure; nothing more is written there (no checkpoints, no clean-shutdown marker), so a
//! restart recovers from the last state known to be on disk.
//!
//! A full disk (ENOSPC, EDQUOT) on a write is not a failure of the directory: the write is
//! undone, answered KAFKA_STORAGE_ERROR, and writes resume once space is freed.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Left in a log directory when it goes offline, so that the next start rewrites what it
/// recovers there before trusting it.
pub const FAILED_MARKER: &str = ".log_dir_failed";

pub struct DirHealth {
    dir: PathBuf,
    offline: AtomicBool,
    reason: Mutex<Option<String>>,
}

/// Shared by the partition logs, the log manager and the metadata log of one directory.
pub type SharedHealth = Arc<DirHealth>;

impl DirHealth {
    pub fn new(dir: &Path) -> SharedHealth {
        Arc::new(DirHealth {
            dir: dir.to_path_buf(),
            offline: AtomicBool::new(false),
            reason: Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Relaxed)
    }

    /// Why the directory went offline.
    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Takes the directory offline (once; later calls only log at debug).
    pub fn fail(&self, what: &str, err: &dyn std::fmt::Display) {
        let mut reason = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if reason.is_some() {
            log::debug!("{}: also failed: {what}: {err}", self.dir.display());
            return;
        }
        let text = format!("{what}: {err}");
        log::error!(
            "log directory {} is OFFLINE after an I/O error ({text}). Its partitions answer \
             KAFKA_STORAGE_ERROR and nothing more is written there. Check the disk, then restart \
             the broker: it recovers from the last state known to be on disk.",
            self.dir.display()
        );
        self.offline.store(true, Ordering::SeqCst);
        // Best effort: the disk is failing, and without the marker the next start still
        // recovers (it only skips the rewrite).
        if let Err(e) = write_marker(&self.dir, &text) {
            log::warn!("{}: cannot leave {FAILED_MARKER}: {e}", self.dir.display());
        }
        *reason = Some(text);
    }

    /// After an error from a write: a full disk is left to the caller (the write was undone),
    /// anything else takes the directory offline. Returns whether it was a full disk.
    pub fn on_write_error(&self, what: &str, err: &io::Error) -> bool {
        if is_disk_full(err) {
            log::warn!("{}: {what}: {err}", self.dir.display());
            true
        } else {
            self.fail(what, err);
            false
        }
    }
}

fn write_marker(dir: &Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    let path = dir.join(FAILED_MARKER);
    let mut f = std::fs::File::create(&path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::File::open(dir)?.sync_all()
}

/// ENOSPC or EDQUOT: space may come back, the data already written is fine.
pub fn is_disk_full(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}
