//! All partition logs of one log directory, with Kafka's checkpoint files and clean-shutdown
//! marker (Kafka's `LogManager`).

use super::cleaner::Cleaner;
use super::faults;
use super::health::{DirHealth, SharedHealth};
use super::partition::{PartitionLog, RecoveryState};
use super::{LogConfig, LogError};
use crate::contain::contain;
use crate::kafka_uuid::{uuid_from_string, uuid_to_string};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// Owned by the metadata module.
const METADATA_TOPIC: &str = "__cluster_metadata";
const PARTITION_METADATA: &str = "partition.metadata";

pub struct LogManager {
    pub(super) dir: PathBuf,
    default_config: LogConfig,
    pub(super) logs: HashMap<String, HashMap<i32, PartitionLog>>,
    had_clean_shutdown: bool,
    /// Compaction state between `clean_step` calls.
    pub(super) cleaner: Cleaner,
    /// Whether the directory can still be written (shared with every partition log in it).
    pub(super) health: SharedHealth,
}

/// `<topic>-<partition>` → `(topic, partition)`; `None` for anything else (including Kafka's
/// `-delete` / `-future` / `-stray` directories).
fn parse_partition_dir(name: &str) -> Option<(&str, i32)> {
    let (topic, p) = name.rsplit_once('-')?;
    if topic.is_empty() || p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic, p.parse().ok()?))
}

impl LogManager {
    /// Opens every `<topic>-<partition>` directory in `log_dir` (not the metadata log). After a
    /// clean shutdown no segment is scanned; otherwise each partition recovers from its
    /// checkpointed recovery point (from the start if it has none).
    pub fn open(
        log_dir: &Path,
        default_config: LogConfig,
        now_ms: i64,
    ) -> Result<LogManager, LogError> {
        fs::create_dir_all(log_dir)?;
        let marker = log_dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        let recovery = load_checkpoint_or_empty(&log_dir.join(RECOVERY_POINT_CHECKPOINT));
        let starts = load_checkpoint_or_empty(&log_dir.join(LOG_START_OFFSET_CHECKPOINT));
        let failed_marker = log_dir.join(super::health::FAILED_MARKER);
        let failed_before = failed_marker.exists();
        if failed_before {
            log::warn!(
                "{} went offline in the previous run: rewriting and syncing what was not \
                 known to be on disk",
                log_dir.display()
            );
        }
        let mut mgr = LogManager {
            dir: log_dir.to_path_buf(),
            default_config,
            logs: HashMap::new(),
            had_clean_shutdown: clean,
            cleaner: Cleaner::load(log_dir),
            health: DirHealth::new(log_dir),
        };
        let mut dirs = Vec::new();
        for entry in fs::read_dir(log_dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            if let Some(name) = entry.file_name().to_str() {
                if let Some((t, p)) = parse_partition_dir(name) {
                    if t != METADATA_TOPIC {
                        dirs.push((t.to_string(), p));
                    }
                }
            }
        }
        for (topic, p) in dirs {
            let key = (topic.clone(), p);
            let rp = recovery.get(&key).copied();
            let state = RecoveryState {
                // A partition missing from the checkpoint is scanned whole even after a clean
                // shutdown: nothing vouches for it.
                recovery_point: if clean && rp.is_some() {
                    None
                } else {
                    Some(rp.unwrap_or(0))
                },
                log_start_offset: starts.get(&key).copied().unwrap_or(0),
                rewrite_recovered: failed_before,
            };
            let dir = log_dir.join(format!("{topic}-{p}"));
            let mut log = PartitionLog::open_with(&dir, mgr.default_config.clone(), now_ms, state)?;
            log.set_health(mgr.health.clone());
            mgr.logs.entry(topic).or_default().insert(p, log);
        }
        if clean {
            // From here on a crash must trigger recovery: the removal has to be durable
            // before anything is appended.
            fs::remove_file(&marker)?;
            sync_dir(log_dir)?;
        }
        if failed_before {
            // Every partition was rewritten and synced (or open failed): the directory is
            // trusted again.
            fs::remove_file(&failed_marker)?;
            sync_dir(log_dir)?;
        }
        Ok(mgr)
    }

    /// The health of this log directory, to share with whatever else writes there (the
    /// metadata log).
    pub fn health(&self) -> &SharedHealth {
        &self.health
    }

    /// Whether the directory went offline after an I/O error.
    pub fn is_offline(&self) -> bool {
        self.health.is_offline()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    /// Whether the previous run ended with `shutdown`.
    pub fn had_clean_shutdown(&self) -> bool {
        self.had_clean_shutdown
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<&PartitionLog> {
        self.logs.get(topic)?.get(&partition)
    }

    pub fn get_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionLog> {
        self.logs.get_mut(topic)?.get_mut(&partition)
    }

    /// Every open partition.
    pub fn partitions(&self) -> impl Iterator<Item = (&str, i32, &PartitionLog)> {
        self.logs
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, l)| (t.as_str(), *p, l)))
    }

    /// Opens or creates the partition's log and writes its `partition.metadata`. An existing
    /// log is returned as it is (its config replaced by `config`).
    pub fn create(
        &mut self,
        topic: &str,
        partition: i32,
        topic_id: [u8; 16],
        config: LogConfig,
        now_ms: i64,
    ) -> Result<&mut PartitionLog, LogError> {
        let dir = self.dir.join(format!("{topic}-{partition}"));
        let exists = self.get(topic, partition).is_some();
        if !exists && self.health.is_offline() {
            return Err(LogError::Offline);
        }
        if !exists {
            let mut log = PartitionLog::open_with(
                &dir,
                config.clone(),
                now_ms,
                RecoveryState {
                    recovery_point: Some(0),
                    log_start_offset: 0,
                    rewrite_recovered: false,
                },
            )
            .map_err(|e| self.write_failed("creating a partition log", e))?;
            log.set_health(self.health.clone());
            self.logs
                .entry(topic.to_string())
                .or_default()
                .insert(partition, log);
        }
        if read_partition_metadata(&dir)? != Some(topic_id) {
            write_partition_metadata(&dir, &topic_id)
                .map_err(|e| self.write_failed("writing partition.metadata", e.into()))?;
        }
        let log = self
            .get_mut(topic, partition)
            .ok_or_else(|| LogError::Corrupt("partition vanished".into()))?;
        log.set_config(config);
        Ok(log)
    }

    /// A full disk is reported; any other error takes the directory offline.
    fn write_failed(&self, what: &str, e: LogError) -> LogError {
        if let LogError::Io(err) = &e {
            self.health.on_write_error(what, err);
        }
        e
    }

    /// Closes the partition and deletes its directory (DeleteTopics).
    pub fn delete(&mut self, topic: &str, partition: i32) -> Result<bool, LogError> {
        if self.health.is_offline() {
            return Err(LogError::Offline);
        }
        let Some(ps) = self.logs.get_mut(topic) else {
            return Ok(false);
        };
        let Some(log) = ps.remove(&partition) else {
            return Ok(false);
        };
        if ps.is_empty() {
            self.logs.remove(topic);
        }
        self.cleaner.forget(&self.dir, topic, partition);
        let dir = log.dir().to_path_buf();
        drop(log);
        // Rename first (as Kafka does) so a crash mid-delete never leaves a half partition
        // that would be loaded again.
        let trash = self.dir.join(format!(
            "{topic}-{partition}.{}-delete",
            uuid::Uuid::new_v4().simple()
        ));
        let removed = (|| {
            fs::rename(&dir, &trash)?;
            sync_dir(&self.dir)?;
            fs::remove_dir_all(&trash)
        })();
        removed.map_err(|e| self.write_failed("deleting a partition", e.into()))?;
        Ok(true)
    }

    /// Flushes each partition whose `flush.messages` / `flush.ms` is due: call once per loop
    /// turn, so all appends of the turn share the fsync. Every due partition is tried; the
    /// ones whose fsync failed are returned (the directory is then offline, see `health`),
    /// so that what waited for them is answered with an error.
    pub fn flush_due(&mut self, now_ms: i64) -> Vec<(String, i32)> {
        let mut failed = Vec::new();
        for (topic, ps) in self.logs.iter_mut() {
            for (&p, log) in ps.iter_mut() {
                if !log.needs_flush(now_ms) {
                    continue;
                }
                match contain(format_args!("flushing {topic}-{p}"), || {
                    log.flush_at(now_ms)
                }) {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => log::error!("flushing {topic}-{p}: {e}"),
                    // Whether anything reached the disk is unknown: the partition goes offline.
                    Err(why) => log.mark_failed(format!("its flush panicked: {why}")),
                }
                failed.push((topic.clone(), p));
            }
        }
        failed
    }

    /// Applies `retention.ms` / `retention.bytes` to every partition (deleting a segment is an
    /// unlink, so one call is cheap). Returns the segments deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        if self.health.is_offline() {
            return Ok(0);
        }
        let mut n = 0;
        for (topic, ps) in self.logs.iter_mut() {
            for (p, log) in ps.iter_mut() {
                let r = contain(format_args!("retention of {topic}-{p}"), || {
                    log.enforce_retention(now_ms)
                });
                match r {
                    Ok(r) => n += r?,
                    Err(why) => log.mark_failed(format!("its retention panicked: {why}")),
                }
                // Producers idle past producer.id.expiration.ms go with the same timer.
                log.expire_producers(now_ms);
            }
        }
        Ok(n)
    }

    /// Writes both checkpoint files (temp file + fsync + rename). Nothing is written to an
    /// offline directory; a failure other than a full disk takes it offline.
    pub fn checkpoint(&mut self) -> Result<(), LogError> {
        if self.health.is_offline() {
            return Err(LogError::Offline);
        }
        self.write_checkpoints()
            .map_err(|e| self.write_failed("writing checkpoints", e.into()))
    }

    fn write_checkpoints(&self) -> io::Result<()> {
        let mut rp = Vec::new();
        let mut start = Vec::new();
        for (t, p, log) in self.partitions() {
            rp.push((t.to_string(), p, log.recovery_point()));
            start.push((t.to_string(), p, log.log_start_offset()));
        }
        write_checkpoint(&self.dir.join(RECOVERY_POINT_CHECKPOINT), &rp)?;
        write_checkpoint(&self.dir.join(LOG_START_OFFSET_CHECKPOINT), &start)?;
        Ok(())
    }

    /// Closes every log, checkpoints, and leaves the clean-shutdown marker. An offline
    /// directory is left untouched and without the marker, so the next start recovers it
    /// from what is on disk; a partition that failed on its own also keeps the marker away.
    pub fn shutdown(&mut self) -> Result<(), LogError> {
        self.cleaner.stop();
        if self.health.is_offline() {
            log::warn!(
                "{} is offline: not closing its logs cleanly; the next start recovers them",
                self.dir.display()
            );
            return Err(LogError::Offline);
        }
        let mut all_closed = true;
        for (t, ps) in self.logs.iter_mut() {
            for (p, log) in ps.iter_mut() {
                if let Err(e) = log.close() {
                    log::error!("closing {t}-{p}: {e}");
                    all_closed = false;
                }
            }
        }
        self.checkpoint()?;
        if !all_closed || self.health.is_offline() {
            return Err(LogError::Offline);
        }
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        let written = (|| {
            let f = File::create(&marker)?;
            faults::write_all(&f, &marker, b"{\"version\":0,\"brokerEpoch\":-1}")?;
            faults::sync_all(&f, &marker)?;
            sync_dir(&self.dir)
        })();
        if let Err(e) = written {
            // Without a durable marker the next start simply recovers.
            let _ = fs::remove_file(&marker);
            return Err(self.write_failed("writing the clean-shutdown marker", e.into()));
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    faults::sync_dir(dir)
}

fn load_checkpoint_or_empty(path: &Path) -> HashMap<(String, i32), i64> {
    match read_checkpoint(path) {
        Ok(m) => m,
        Err(e) => {
            log::warn!("ignoring {}: {}", path.display(), e);
            HashMap::new()
        }
    }
}

/// Reads a Kafka offset checkpoint file: `0`, a count, then `topic partition offset` lines.
/// A missing file is empty.
pub fn read_checkpoint(path: &Path) -> io::Result<HashMap<(String, i32), i64>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return Err(bad("unsupported checkpoint version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("bad checkpoint count"))?;
    let mut out = HashMap::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split_whitespace();
        let (Some(t), Some(p), Some(o), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("bad checkpoint line"));
        };
        let p: i32 = p.parse().map_err(|_| bad("bad partition"))?;
        let o: i64 = o.parse().map_err(|_| bad("bad offset"))?;
        out.insert((t.to_string(), p), o);
    }
    if out.len() != count {
        return Err(bad("checkpoint shorter than its count"));
    }
    Ok(out)
}

/// Writes a Kafka offset checkpoint file atomically.
pub fn write_checkpoint(path: &Path, entries: &[(String, i32, i64)]) -> io::Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for (t, p, o) in entries {
        text.push_str(&format!("{t} {p} {o}\n"));
    }
    write_atomically(path, text.as_bytes())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        faults::check(&tmp, faults::Op::Create)?;
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        faults::write_all(&f, &tmp, bytes)?;
        faults::sync_all(&f, &tmp)?;
    }
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Kafka's `partition.metadata`: `version: 0` and the topic id as Kafka prints a `Uuid`
/// (URL-safe base64 without padding).
fn write_partition_metadata(dir: &Path, id: &[u8; 16]) -> io::Result<()> {
    let text = format!("version: 0\ntopic_id: {}\n", uuid_to_string(id));
    write_atomically(&dir.join(PARTITION_METADATA), text.as_bytes())
}

/// The topic id in a partition directory's `partition.metadata`, if there is a valid one.
pub fn read_partition_metadata(dir: &Path) -> io::Result<Option<[u8; 16]>> {
    let text = match fs::read_to_string(dir.join(PARTITION_METADATA)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .and_then(|v| uuid_from_string(v.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_metadata_round_trips_in_kafkas_uuid_form() {
        let dir = std::env::temp_dir().join(format!("minikafka-pm-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let id: [u8; 16] = *uuid::Uuid::parse_str("b0d2a2a1-5d63-4f67-9c44-58cbd2ffd3f1")
            .unwrap()
            .as_bytes();
        write_partition_metadata(&dir, &id).unwrap();
        let text = fs::read_to_string(dir.join(PARTITION_METADATA)).unwrap();
        assert_eq!(text, "version: 0\ntopic_id: sNKioV1jT2ecRFjL0v_T8Q\n");
        assert_eq!(read_partition_metadata(&dir).unwrap(), Some(id));
        // The CodeCrafters harness writes standard base64 with padding.
        fs::write(
            dir.join(PARTITION_METADATA),
            "version: 0\ntopic_id: sNKioV1jT2ecRFjL0v/T8Q==",
        )
        .unwrap();
        assert_eq!(read_partition_metadata(&dir).unwrap(), Some(id));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn partition_dir_names() {
        assert_eq!(parse_partition_dir("foo-0"), Some(("foo", 0)));
        assert_eq!(parse_partition_dir("a-b-12"), Some(("a-b", 12)));
        assert_eq!(parse_partition_dir("foo-0.abc-delete"), None);
        assert_eq!(parse_partition_dir("foo"), None);
        assert_eq!(parse_partition_dir("-1"), None);
    }
}
