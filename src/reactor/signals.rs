//! SIGTERM/SIGINT -> graceful shutdown, without extra crates.
//!
//! The handler is async-signal-safe: it only stores to a static `AtomicBool` and writes one byte
//! to a non-blocking pipe whose read end is registered with the poll, so the loop wakes up.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use mio::unix::pipe;

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
/// `SIG_ERR` is `(sighandler_t) -1`.
const SIG_ERR: usize = usize::MAX;

static REQUESTED: AtomicBool = AtomicBool::new(false);
/// Write end of the wake-up pipe, -1 when none is installed.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" {
    fn signal(signum: c_int, handler: usize) -> usize;
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn __errno_location() -> *mut c_int;
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    fn __error() -> *mut c_int;
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno_ptr() -> *mut c_int {
    // SAFETY: returns the calling thread's errno slot; always valid.
    unsafe { __errno_location() }
}

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn errno_ptr() -> *mut c_int {
    // SAFETY: as above.
    unsafe { __error() }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
fn errno_ptr() -> *mut c_int {
    std::ptr::null_mut()
}

extern "C" fn on_signal(_signum: c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
    let fd = WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // write(2) may change errno; the interrupted code may be about to read it.
        let errno = errno_ptr();
        // SAFETY: errno_ptr is valid for this thread; write(2) is async-signal-safe and the
        // buffer is one valid byte. A full pipe (EAGAIN) is fine: a wake-up is already pending.
        unsafe {
            let saved = if errno.is_null() { 0 } else { *errno };
            let byte = 1u8;
            write(fd, &byte as *const u8 as *const c_void, 1);
            if !errno.is_null() {
                *errno = saved;
            }
        }
    }
}

/// Whether SIGTERM or SIGINT arrived since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The installed handlers' wake-up pipe. Register [`Signals::receiver`] with the poll; dropping
/// this stops the wake-ups (the flag is still set).
pub struct Signals {
    rx: pipe::Receiver,
    tx: pipe::Sender,
}

impl Signals {
    pub fn receiver(&mut self) -> &mut pipe::Receiver {
        &mut self.rx
    }

    /// Empties the pipe (its bytes carry no information beyond the wake-up).
    pub fn drain(&mut self) {
        let mut buf = [0u8; 64];
        loop {
            match self.rx.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break, // WouldBlock: empty
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // Make sure the handler never writes to a closed (and maybe reused) descriptor.
        let fd = self.tx.as_raw_fd();
        let _ = WRITE_FD.compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Installs handlers for SIGTERM and SIGINT. Meant to be called once, by `main`; a later call
/// moves the wake-ups to the new pipe.
pub fn install() -> io::Result<Signals> {
    let (tx, rx) = pipe::new()?;
    // Before this call a SIGTERM had its default action, so a set flag is from an earlier install.
    REQUESTED.store(false, Ordering::SeqCst);
    WRITE_FD.store(tx.as_raw_fd(), Ordering::SeqCst);
    // Built before the handlers so that an error below resets WRITE_FD through Drop.
    let signals = Signals { rx, tx };
    let handler = on_signal as extern "C" fn(c_int) as usize;
    for signum in [SIGTERM, SIGINT] {
        // SAFETY: the handler only touches atomics and calls write(2).
        if unsafe { signal(signum, handler) } == SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(signals)
}
