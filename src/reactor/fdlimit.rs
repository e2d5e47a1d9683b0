//! The open-files limit: raised from soft to hard at start, and a share of it kept for the log
//! so that a flood of connections cannot starve segment files (an EMFILE on a segment would be
//! an I/O error of the log directory).

// `rlim_t` is u64 on Linux but not everywhere.
#![allow(clippy::unnecessary_cast)]

use std::io;

/// The soft `RLIMIT_NOFILE` now in force, if it can be read (`None` = unlimited or unknown).
pub fn nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass; no other memory is touched.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(lim.rlim_cur as u64)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (as servers started by hand usually need:
/// the soft default is often 1024). Returns (before, after).
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as above.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = lim.rlim_cur as u64;
    if lim.rlim_cur == lim.rlim_max {
        return Ok((before, before));
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((before, lim.rlim_max as u64))
}

/// File descriptors kept for everything but client connections (segments, indexes,
/// checkpoints, the metadata log, the poll itself): a quarter of the limit, at least 64 and at
/// most 16,384.
pub fn reserved_for_files(limit: u64) -> u64 {
    (limit / 4).clamp(64, 16_384)
}

/// How many connections may be open at once: `max.connections`, but never so many that the
/// files the broker needs could not be opened.
pub fn connection_cap(max_connections: usize, limit: Option<u64>) -> usize {
    match limit {
        None => max_connections,
        Some(l) => {
            let usable = l.saturating_sub(reserved_for_files(l)).max(1);
            max_connections.min(usize::try_from(usable).unwrap_or(usize::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_keeps_a_share_of_descriptors_for_files() {
        assert_eq!(connection_cap(usize::MAX, None), usize::MAX);
        assert_eq!(connection_cap(usize::MAX, Some(1024)), 768);
        assert_eq!(connection_cap(100, Some(1024)), 100);
        assert_eq!(connection_cap(usize::MAX, Some(20_000)), 15_000);
        assert_eq!(
            connection_cap(usize::MAX, Some(1 << 20)),
            (1 << 20) - 16_384
        );
        assert_eq!(connection_cap(usize::MAX, Some(10)), 1);
    }

    #[test]
    fn raising_is_idempotent() {
        let (_, after) = raise_nofile_limit().unwrap();
        assert_eq!(nofile_limit(), Some(after));
        assert_eq!(raise_nofile_limit().unwrap(), (after, after));
    }
}
