//! raft-rs logs through `slog`; the broker logs through `log`. This drain forwards each slog record
//! to `log` under the target `minikafka::raft`, with the level mapped and the key-value pairs
//! appended as `key=value`. Nothing is formatted when `log` would discard the record.

use std::fmt::{self, Write as _};

use slog::{Drain, Key, Level, OwnedKVList, Record, Serializer, KV};

pub(crate) const TARGET: &str = "minikafka::raft";

/// The slog→log bridge.
pub struct LogDrain;

fn level(l: Level) -> log::Level {
    match l {
        Level::Critical | Level::Error => log::Level::Error,
        Level::Warning => log::Level::Warn,
        Level::Info => log::Level::Info,
        Level::Debug => log::Level::Debug,
        Level::Trace => log::Level::Trace,
    }
}

struct Pairs(String);

impl Serializer for Pairs {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl Drain for LogDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let lvl = level(record.level());
        if lvl > log::max_level() || !log::log_enabled!(target: TARGET, lvl) {
            return Ok(());
        }
        let mut pairs = Pairs(String::new());
        let _ = record.kv().serialize(record, &mut pairs);
        let _ = values.serialize(record, &mut pairs);
        log::log!(target: TARGET, lvl, "{}{}", record.msg(), pairs.0);
        Ok(())
    }
}

/// A slog logger for one node's raft-rs instance.
pub fn logger(node_id: u64) -> slog::Logger {
    slog::Logger::root(LogDrain, slog::o!("raft_id" => node_id))
}
