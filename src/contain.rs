//! Panics stay where they happen: a bug in one partition's flush, retention or cleaning, or in
//! one timer job, is caught, logged with what was being done, and disables only that work; the
//! loop keeps serving everyone else.

use std::any::Any;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic is logged with `what` and returned as its message.
pub fn contain<T>(what: impl Display, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let msg = panic_message(payload.as_ref());
        log::error!("{what} panicked: {msg}");
        msg
    })
}

/// The text a panic was raised with.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(contain("adding", || 1 + 1), Ok(2));
        let r: Result<(), String> = contain("dividing", || panic!("by {}", 0));
        assert_eq!(r, Err("by 0".to_string()));
    }
}
