//! Requests waiting for data or a deadline: long-poll fetches.
//!
//! A parked fetch keeps its own frame and is simply run again when something was appended or
//! its deadline passed; the fetch handler decides whether it now has enough to answer.

use crate::reactor::ConnId;
use std::time::Instant;

pub struct ParkedFetch {
    pub conn: ConnId,
    pub frame: Vec<u8>,
    pub deadline: Instant,
}

#[derive(Default)]
pub struct Parked {
    fetches: Vec<ParkedFetch>,
}

impl Parked {
    pub fn park(&mut self, p: ParkedFetch) {
        self.fetches.push(p);
    }

    /// Takes the fetches to run again: all of them after an append, else those past deadline.
    pub fn take_ready(&mut self, now: Instant, appended: bool) -> Vec<ParkedFetch> {
        if appended {
            return std::mem::take(&mut self.fetches);
        }
        let mut ready = Vec::new();
        let mut i = 0;
        while i < self.fetches.len() {
            if self.fetches[i].deadline <= now {
                ready.push(self.fetches.swap_remove(i));
            } else {
                i += 1;
            }
        }
        ready
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.fetches.iter().map(|p| p.deadline).min()
    }

    pub fn remove_conn(&mut self, conn: ConnId) {
        self.fetches.retain(|p| p.conn != conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadlines_and_appends() {
        let t0 = Instant::now();
        let mut p = Parked::default();
        for (conn, ms) in [(1, 500), (2, 100)] {
            p.park(ParkedFetch {
                conn,
                frame: vec![],
                deadline: t0 + Duration::from_millis(ms),
            });
        }
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_millis(100)));
        assert!(p.take_ready(t0, false).is_empty());
        let r = p.take_ready(t0 + Duration::from_millis(200), false);
        assert_eq!(r.iter().map(|x| x.conn).collect::<Vec<_>>(), vec![2]);
        assert_eq!(p.take_ready(t0, true).len(), 1);
        assert_eq!(p.next_deadline(), None);
    }
}
