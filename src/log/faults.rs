//! The seam between the storage code and the file system: every write, fsync and read of log,
//! index, checkpoint and metadata files goes through these functions, so tests can make them
//! fail as a dying disk would (EIO on fsync, ENOSPC on write, a torn write) for the files under
//! one directory, while the broker runs.
//!
//! Rules match by path prefix, so tests that run in parallel on their own temp dirs do not see
//! each other's faults. With no rule installed the cost is one relaxed atomic load per call.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The kind of file operation a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `pwrite`/`write` of data (log, index, checkpoint, metadata files).
    Write,
    /// `fsync`/`fdatasync` of a file or directory.
    Sync,
    /// `pread` of log or index data.
    Read,
    /// Creating or truncating a file, renaming, removing.
    Create,
}

/// One injected fault.
#[derive(Clone, Debug)]
pub struct Rule {
    pub prefix: PathBuf,
    pub op: Op,
    /// The `errno` returned (for example 5 = EIO, 28 = ENOSPC).
    pub errno: i32,
    /// Matching calls let through before the rule fires.
    pub skip: u64,
    /// A failing write first writes half of its bytes (a torn write).
    pub torn: bool,
}

struct Installed {
    id: u64,
    rule: Rule,
    seen: u64,
}

/// An `errno` that makes the operation panic instead (to test that panics stay contained).
pub const PANIC: i32 = -1;

static ARMED: AtomicBool = AtomicBool::new(false);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static RULES: Mutex<Vec<Installed>> = Mutex::new(Vec::new());

/// Removes its rule when dropped.
#[must_use = "the fault is removed when the guard is dropped"]
pub struct FaultGuard {
    id: u64,
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        let mut rules = RULES.lock().unwrap_or_else(|p| p.into_inner());
        rules.retain(|r| r.id != self.id);
        ARMED.store(!rules.is_empty(), Ordering::SeqCst);
    }
}

/// Makes every `op` on files under `prefix` fail with `errno` (after `rule.skip` calls).
#[doc(hidden)]
pub fn inject(rule: Rule) -> FaultGuard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut rules = RULES.lock().unwrap_or_else(|p| p.into_inner());
    rules.push(Installed { id, rule, seen: 0 });
    ARMED.store(true, Ordering::SeqCst);
    FaultGuard { id }
}

/// Shorthand: every `op` under `prefix` fails with `errno` from now on.
#[doc(hidden)]
pub fn fail(prefix: &Path, op: Op, errno: i32) -> FaultGuard {
    inject(Rule {
        prefix: prefix.to_path_buf(),
        op,
        errno,
        skip: 0,
        torn: false,
    })
}

/// The fault for this call, if a rule fires: `(errno, torn)`.
fn fault(path: &Path, op: Op) -> Option<(i32, bool)> {
    if !ARMED.load(Ordering::Relaxed) {
        return None;
    }
    let mut rules = RULES.lock().unwrap_or_else(|p| p.into_inner());
    for r in rules.iter_mut() {
        if r.rule.op == op && path.starts_with(&r.rule.prefix) {
            r.seen += 1;
            if r.seen > r.rule.skip {
                return Some((r.rule.errno, r.rule.torn));
            }
        }
    }
    None
}

fn injected(errno: i32, path: &Path, op: Op) -> io::Error {
    if errno == PANIC {
        panic!("injected panic: {op:?} of {}", path.display());
    }
    io::Error::from_raw_os_error(errno)
}

/// Fails if a rule says this operation on `path` fails (for operations not wrapped below).
pub fn check(path: &Path, op: Op) -> io::Result<()> {
    match fault(path, op) {
        Some((errno, _)) => Err(injected(errno, path, op)),
        None => Ok(()),
    }
}

pub fn write_all_at(file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
    if let Some((errno, torn)) = fault(path, Op::Write) {
        if torn {
            file.write_all_at(&buf[..buf.len() / 2], offset)?;
        }
        return Err(injected(errno, path, Op::Write));
    }
    file.write_all_at(buf, offset)
}

pub fn write_all(mut file: &File, path: &Path, buf: &[u8]) -> io::Result<()> {
    if let Some((errno, torn)) = fault(path, Op::Write) {
        if torn {
            file.write_all(&buf[..buf.len() / 2])?;
        }
        return Err(injected(errno, path, Op::Write));
    }
    file.write_all(buf)
}

pub fn read_exact_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> io::Result<()> {
    check(path, Op::Read)?;
    file.read_exact_at(buf, offset)
}

pub fn sync_data(file: &File, path: &Path) -> io::Result<()> {
    check(path, Op::Sync)?;
    file.sync_data()
}

pub fn sync_all(file: &File, path: &Path) -> io::Result<()> {
    check(path, Op::Sync)?;
    file.sync_all()
}

/// fsync of a directory (after files in it were created, renamed or removed).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    check(dir, Op::Sync)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_prefix_skip_and_go_away_with_their_guard() {
        let a = Path::new("/nonexistent-faults-test/a");
        let b = Path::new("/nonexistent-faults-test/b");
        {
            let _g = inject(Rule {
                prefix: a.to_path_buf(),
                op: Op::Sync,
                errno: 5,
                skip: 1,
                torn: false,
            });
            assert!(
                check(&a.join("x.log"), Op::Sync).is_ok(),
                "first call skipped"
            );
            let e = check(&a.join("x.log"), Op::Sync).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(5));
            assert!(check(&a.join("x.log"), Op::Write).is_ok(), "other op");
            assert!(check(&b.join("x.log"), Op::Sync).is_ok(), "other dir");
        }
        assert!(check(&a.join("x.log"), Op::Sync).is_ok(), "guard dropped");
    }
}
