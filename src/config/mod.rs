//! Broker configuration.
//!
//! Sources, later overriding earlier:
//! 1. built-in Kafka defaults, then the embedded `config.json` (repo top level);
//! 2. an optional JSON file (`--config FILE`, or a first argument ending in `.json` / starting with `{`);
//! 3. a Kafka `server.properties` file (the first argument otherwise), then `--override key=value` flags;
//! 4. environment variables (`BROKER_ID`, `BROKER_HOST`, `BROKER_PORT`, `LOG_DIR`, ...; see [`ENV_KEYS`]).
//!
//! Kafka settings we accept but do not act on, and keys we do not know, become warnings that the
//! caller logs once; a value that does not parse is an error naming the key and the value.

pub mod quorum;

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

const EMBEDDED_JSON: &str = include_str!("../../config.json");

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Everything the broker reads at start-up. Build with [`Config::default`] or [`Config::load`];
/// tests may use struct-update syntax (`Config { port: 0, ..Config::default() }`).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `node.id` / `broker.id`.
    pub node_id: i32,
    /// Address to bind; `0.0.0.0` for all interfaces.
    pub listen_host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Host put in Metadata / FindCoordinator responses.
    pub advertised_host: String,
    /// Port put in Metadata / FindCoordinator responses; 0 means "the port actually bound".
    pub advertised_port: u16,
    /// The log directory (Kafka's first `log.dirs` entry).
    pub log_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub min_insync_replicas: i32,
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.backoff.ms`: a follower's wait after a failed fetch.
    pub replica_fetch_backoff_ms: i64,
    /// `unclean.leader.election.enable`: elect an out-of-sync replica when no ISR member lives.
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`, `leader.imbalance.check.interval.seconds`,
    /// `leader.imbalance.per.broker.percentage`: preferred leaders restored periodically.
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_seconds: i64,
    pub leader_imbalance_per_broker_percentage: i32,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    /// Largest record batch a producer may send (`message.max.bytes`).
    pub message_max_bytes: usize,
    pub log_segment_bytes: u64,
    /// `log.roll.ms` (segment age before rolling).
    pub log_segment_ms: i64,
    /// -1 = keep forever.
    pub log_retention_ms: i64,
    /// -1 = no size limit.
    pub log_retention_bytes: i64,
    pub log_retention_check_interval_ms: i64,
    /// fsync after this many messages (u64::MAX = leave it to the OS, as Kafka does).
    pub log_flush_interval_messages: u64,
    /// fsync after this many ms (i64::MAX = never).
    pub log_flush_interval_ms: i64,
    /// `CreateTime` or `LogAppendTime`.
    pub log_message_timestamp_type: String,
    /// `delete`, `compact` or `compact,delete`.
    pub log_cleanup_policy: String,
    pub log_index_size_max_bytes: usize,
    pub log_index_interval_bytes: usize,
    pub log_cleaner_enable: bool,
    pub log_cleaner_delete_retention_ms: i64,
    pub log_cleaner_min_compaction_lag_ms: i64,
    pub log_cleaner_min_cleanable_ratio: f64,
    /// `producer`, `none`, `gzip`, `snappy`, `lz4`, `zstd`, `uncompressed`.
    pub compression_type: String,
    pub socket_request_max_bytes: usize,
    pub connections_max_idle_ms: u64,
    pub max_connections: usize,
    /// `queued.max.request.bytes`: request bytes the reactor holds at most, broker-wide, before
    /// it stops reading new requests; `<= 0` = unlimited (Kafka's default -1). Ours defaults to
    /// 100 MiB, one largest request (see `request_memory_budget`).
    pub queued_max_request_bytes: i64,
    pub offsets_topic_num_partitions: i32,
    /// Kafka's default is 3; a single broker can only host 1.
    pub offsets_topic_replication_factor: i16,
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are removed.
    pub offsets_retention_check_interval_ms: i64,
    pub group_initial_rebalance_delay_ms: i64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_max_size: i32,
    /// The producer-side default transaction timeout (used where a request carries none).
    pub transaction_timeout_ms: i64,
    pub transaction_max_timeout_ms: i64,
    pub transactional_id_expiration_ms: i64,
    pub transaction_abort_timed_out_interval_ms: i64,
    pub transaction_state_log_num_partitions: i32,
    pub transaction_state_log_replication_factor: i16,
    pub transaction_state_log_min_isr: i32,
    pub producer_id_expiration_ms: i64,
    /// `broker.session.timeout.ms`: a broker not heard from this long is fenced (controllers).
    pub broker_session_timeout_ms: i64,
    /// `broker.heartbeat.interval.ms`: how often a broker of a cluster heartbeats.
    pub broker_heartbeat_interval_ms: i64,
    /// The name of the client listener (from `listeners`; `PLAINTEXT` by default): the
    /// endpoint a broker registers and Metadata reports.
    pub listener_name: String,
    /// `metadata.log.max.record.bytes.between.snapshots`: metadata applied since the last
    /// snapshot before a controller takes the next one.
    pub metadata_snapshot_bytes: u64,
    /// `error`, `warn`, `info`, `debug`, `trace` or `off`.
    pub log_level: String,
    /// Overrides the cluster id that a new `meta.properties` gets.
    pub cluster_id: Option<String>,
    /// KRaft roles and controller quorum (`process.roles`, `controller.quorum.voters`, ...).
    pub quorum: quorum::QuorumConfig,
}

/// Why the configuration could not be loaded.
#[derive(Debug)]
pub enum ConfigError {
    /// A file could not be read.
    Io { path: PathBuf, err: io::Error },
    /// A JSON config file (or the embedded one) is malformed.
    Json { source: String, msg: String },
    /// A setting has a value we cannot use.
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
    /// Bad command-line arguments.
    Args(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, err } => write!(f, "cannot read {}: {err}", path.display()),
            ConfigError::Json { source, msg } => write!(f, "bad JSON config {source}: {msg}"),
            ConfigError::BadValue { key, value, reason } => {
                write!(f, "invalid value {value:?} for {key}: {reason}")
            }
            ConfigError::Args(msg) => write!(f, "bad arguments: {msg}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<io::Error> for ConfigError {
    fn from(err: io::Error) -> Self {
        ConfigError::Io {
            path: PathBuf::new(),
            err,
        }
    }
}

fn bad(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Default for Config {
    /// Built-in defaults plus the embedded `config.json`; no files, no environment.
    fn default() -> Self {
        let mut c = Config::unresolved();
        c.resolve();
        c
    }
}

impl Config {
    /// Kafka's defaults, before the embedded JSON. Advertised host/port are left empty so
    /// that `resolve` can derive them from whatever listener the later sources choose.
    fn builtin() -> Config {
        Config {
            node_id: 1,
            listen_host: "127.0.0.1".into(),
            port: 9092,
            advertised_host: String::new(),
            advertised_port: 0,
            log_dir: default_log_dir(),
            num_partitions: 1,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_backoff_ms: 1_000,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            leader_imbalance_per_broker_percentage: 10,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            message_max_bytes: 1_048_588,
            log_segment_bytes: 1 << 30,
            log_segment_ms: 7 * DAY_MS,
            log_retention_ms: 7 * DAY_MS,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_flush_interval_messages: u64::MAX,
            log_flush_interval_ms: i64::MAX,
            log_message_timestamp_type: "CreateTime".into(),
            log_cleanup_policy: "delete".into(),
            log_index_size_max_bytes: 10 * 1024 * 1024,
            log_index_interval_bytes: 4096,
            log_cleaner_enable: true,
            log_cleaner_delete_retention_ms: DAY_MS,
            log_cleaner_min_compaction_lag_ms: 0,
            log_cleaner_min_cleanable_ratio: 0.5,
            compression_type: "producer".into(),
            socket_request_max_bytes: 104_857_600,
            connections_max_idle_ms: 600_000,
            // Kafka's default: no limit but the open-files limit (see reactor::fdlimit).
            max_connections: 2_147_483_647,
            queued_max_request_bytes: 104_857_600,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 1,
            offsets_retention_ms: 7 * DAY_MS,
            offsets_retention_check_interval_ms: 600_000,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            group_max_size: i32::MAX,
            transaction_timeout_ms: 60_000,
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 7 * DAY_MS,
            transaction_abort_timed_out_interval_ms: 10_000,
            transaction_state_log_num_partitions: 50,
            transaction_state_log_replication_factor: 1,
            transaction_state_log_min_isr: 1,
            producer_id_expiration_ms: DAY_MS,
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 2_000,
            listener_name: "PLAINTEXT".into(),
            metadata_snapshot_bytes: 20 << 20,
            log_level: "warn".into(),
            cluster_id: None,
            quorum: quorum::QuorumConfig::default(),
        }
    }

    /// Built-in defaults with the embedded `config.json` applied, advertised address unresolved.
    fn unresolved() -> Config {
        let mut c = Config::builtin();
        // The embedded file is checked by a unit test; if it were broken we keep the built-ins.
        if let Err(e) = c.apply_json_str(EMBEDDED_JSON, "embedded config.json") {
            log::error!("{e}");
        }
        c
    }

    /// Fills in the advertised address from the listener when no source set it.
    fn resolve(&mut self) {
        if self.advertised_host.is_empty() {
            self.advertised_host = if is_wildcard(&self.listen_host) {
                "localhost".into()
            } else {
                self.listen_host.clone()
            };
        }
        if self.advertised_port == 0 {
            self.advertised_port = self.port;
        }
    }

    /// The defaults with an ephemeral port (advertised as the port actually bound) and the
    /// given log dir: for tests that start a broker in-process.
    pub fn ephemeral(log_dir: impl Into<PathBuf>) -> Config {
        Config {
            port: 0,
            advertised_port: 0,
            log_dir: log_dir.into(),
            ..Config::default()
        }
    }

    /// Loads the configuration from the command-line arguments (without the program name) and
    /// the process environment. Returns the config and the warnings to log once.
    ///
    /// Arguments: `[server.properties | config.json] [--config FILE.json] [--override key=value]...`
    pub fn load(args: &[String]) -> Result<(Config, Vec<String>), ConfigError> {
        Config::load_with(args, |k| std::env::var(k).ok())
    }

    /// `load` with an explicit environment, for tests.
    pub fn load_with(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut json_files: Vec<PathBuf> = Vec::new();
        let mut props_files: Vec<PathBuf> = Vec::new();
        let mut overrides: Vec<String> = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--config" | "-c" => match it.next() {
                    Some(p) => json_files.push(PathBuf::from(p)),
                    None => return Err(ConfigError::Args(format!("{a} needs a file"))),
                },
                "--override" => match it.next() {
                    Some(kv) => overrides.push(kv.clone()),
                    None => return Err(ConfigError::Args("--override needs key=value".into())),
                },
                s if s.starts_with("--override=") => {
                    overrides.push(s["--override=".len()..].to_string())
                }
                s if s.starts_with('-') && s.len() > 1 => {
                    return Err(ConfigError::Args(format!("unknown option {s}")))
                }
                s => {
                    if !json_files.is_empty() || !props_files.is_empty() {
                        return Err(ConfigError::Args(format!("unexpected argument {s}")));
                    }
                    let p = PathBuf::from(s);
                    if p.extension().is_some_and(|e| e == "json") {
                        json_files.push(p);
                    } else {
                        props_files.push(p);
                    }
                }
            }
        }

        let mut c = Config::unresolved();
        let mut warnings = Vec::new();
        if let Some(p) = env("MINIKAFKA_CONFIG").filter(|p| !p.is_empty()) {
            json_files.insert(0, PathBuf::from(p));
        }
        for p in &json_files {
            let text = read(p)?;
            c.apply_json_str(&text, &p.display().to_string())?;
        }
        let mut props = Properties::default();
        for p in &props_files {
            let text = read(p)?;
            // A "properties" argument that is really JSON is taken as JSON.
            if text.trim_start().starts_with('{') {
                c.apply_json_str(&text, &p.display().to_string())?;
            } else {
                props.extend(parse_properties(&text));
            }
        }
        for kv in &overrides {
            match kv.split_once('=') {
                Some((k, v)) => props.push(k.trim().to_string(), v.trim().to_string()),
                None => {
                    return Err(ConfigError::Args(format!(
                        "--override {kv}: need key=value"
                    )))
                }
            }
        }
        c.apply_properties(&props, &mut warnings)?;
        c.apply_env(env)?;
        c.resolve();
        Ok((c, warnings))
    }

    /// The defaults overridden by the text of a `server.properties` file (no environment).
    pub fn from_properties_str(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let mut c = Config::unresolved();
        let mut warnings = Vec::new();
        c.apply_properties(&parse_properties(text), &mut warnings)?;
        c.resolve();
        Ok((c, warnings))
    }

    /// The defaults overridden by a JSON config text (same shape as `config.json`; any subset).
    pub fn from_json_str(text: &str) -> Result<Config, ConfigError> {
        let mut c = Config::unresolved();
        c.apply_json_str(text, "JSON config")?;
        c.resolve();
        Ok(c)
    }

    /// Applies environment overrides; `get` looks a variable up (`|k| std::env::var(k).ok()`).
    /// Setting `BROKER_HOST`/`BROKER_PORT` also moves the advertised address unless
    /// `ADVERTISED_HOST`/`ADVERTISED_PORT` say otherwise.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for &key in ENV_KEYS {
            let Some(v) = get(key) else { continue };
            let v = v.trim();
            match key {
                "BROKER_ID" => self.node_id = num(key, v)?,
                "BROKER_HOST" => {
                    if self.advertised_host == self.listen_host
                        || (is_wildcard(&self.listen_host) && self.advertised_host == "localhost")
                    {
                        self.advertised_host.clear();
                    }
                    self.listen_host = v.to_string();
                }
                "BROKER_PORT" => {
                    if self.advertised_port == self.port {
                        self.advertised_port = 0;
                    }
                    self.port = num(key, v)?;
                }
                "ADVERTISED_HOST" => self.advertised_host = v.to_string(),
                "ADVERTISED_PORT" => self.advertised_port = num(key, v)?,
                "LOG_DIR" => {
                    if v.is_empty() {
                        return Err(bad(key, v, "empty path"));
                    }
                    self.log_dir = PathBuf::from(v);
                }
                "LOG_LEVEL" => self.log_level = log_level(key, v)?,
                "REPLICATION_FACTOR" => self.default_replication_factor = positive(key, v)?,
                "MIN_INSYNC_REPLICAS" => self.min_insync_replicas = positive(key, v)?,
                "NUM_PARTITIONS" => self.num_partitions = positive(key, v)?,
                "CLUSTER_ID" => self.cluster_id = Some(v.to_string()).filter(|s| !s.is_empty()),
                "AUTO_CREATE_TOPICS" => self.auto_create_topics_enable = boolean(key, v)?,
                "MAX_CONNECTIONS" => self.max_connections = num(key, v)?,
                _ => {}
            }
        }
        self.resolve();
        Ok(())
    }

    fn apply_json_str(&mut self, text: &str, source: &str) -> Result<(), ConfigError> {
        let j: JsonConfig = serde_json::from_str(text).map_err(|e| ConfigError::Json {
            source: source.to_string(),
            msg: e.to_string(),
        })?;
        self.apply_json(j)
    }

    fn apply_json(&mut self, j: JsonConfig) -> Result<(), ConfigError> {
        fn set<T>(dst: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *dst = v;
            }
        }
        let b = j.broker;
        set(&mut self.node_id, b.id);
        set(&mut self.listen_host, b.host);
        set(&mut self.port, b.port);
        set(&mut self.advertised_host, b.advertised_host);
        set(&mut self.advertised_port, b.advertised_port);
        set(&mut self.num_partitions, b.num_partitions);
        set(
            &mut self.auto_create_topics_enable,
            b.auto_create_topics_enable,
        );
        set(&mut self.message_max_bytes, b.message_max_bytes);
        set(
            &mut self.socket_request_max_bytes,
            b.socket_request_max_bytes,
        );
        set(&mut self.connections_max_idle_ms, b.connections_max_idle_ms);
        set(&mut self.max_connections, b.max_connections);
        if let Some(q) = b.queued_max_request_bytes {
            check_queued_max_request_bytes(q, self.socket_request_max_bytes)?;
            self.queued_max_request_bytes = q;
        }
        if b.cluster_id.is_some() {
            self.cluster_id = b.cluster_id;
        }
        let r = j.replication;
        set(&mut self.default_replication_factor, r.factor);
        set(&mut self.min_insync_replicas, r.min_insync_replicas);
        let l = j.log;
        if let Some(d) = l.dir {
            if d.is_empty() {
                return Err(bad("log.dir", &d, "empty path"));
            }
            self.log_dir = PathBuf::from(d);
        }
        set(&mut self.log_retention_ms, l.retention_ms);
        set(&mut self.log_retention_bytes, l.retention_bytes);
        set(&mut self.log_segment_bytes, l.segment_bytes);
        set(&mut self.log_segment_ms, l.segment_ms);
        set(&mut self.log_flush_interval_messages, l.flush_messages);
        set(&mut self.log_flush_interval_ms, l.flush_ms);
        if let Some(t) = l.message_timestamp_type {
            self.log_message_timestamp_type = timestamp_type("log.message_timestamp_type", &t)?;
        }
        set(&mut self.log_cleanup_policy, l.cleanup_policy);
        let g = j.group;
        set(
            &mut self.group_initial_rebalance_delay_ms,
            g.initial_rebalance_delay_ms,
        );
        set(
            &mut self.group_min_session_timeout_ms,
            g.min_session_timeout_ms,
        );
        set(
            &mut self.group_max_session_timeout_ms,
            g.max_session_timeout_ms,
        );
        let t = j.transaction;
        set(&mut self.transaction_timeout_ms, t.timeout_ms);
        set(&mut self.transaction_max_timeout_ms, t.max_timeout_ms);
        set(&mut self.transactional_id_expiration_ms, t.id_expiration_ms);
        if let Some(lv) = j.logging.level {
            self.log_level = log_level("logging.level", &lv)?;
        }
        Ok(())
    }

    /// Applies parsed `server.properties` entries (later entries win over earlier ones).
    fn apply_properties(
        &mut self,
        props: &Properties,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let map = props.last_values();
        let get = |k: &str| map.get(k).map(|v| v.as_str());

        // node.id and broker.id must agree when both are given, as in Kafka.
        match (get("node.id"), get("broker.id")) {
            (Some(n), Some(b)) => {
                let n: i32 = num("node.id", n)?;
                let b2: i32 = num("broker.id", b)?;
                if n != b2 && b2 != -1 {
                    return Err(bad("broker.id", b, format!("differs from node.id {n}")));
                }
                self.node_id = n;
            }
            (Some(n), None) => self.node_id = num("node.id", n)?,
            (None, Some(b)) => self.node_id = num("broker.id", b)?,
            (None, None) => {}
        }

        let controller_names: Vec<String> = get("controller.listener.names")
            .map(|s| split_list(s).map(|n| n.to_ascii_uppercase()).collect())
            .unwrap_or_else(|| vec!["CONTROLLER".to_string()]);
        let listeners = get("listeners")
            .map(|v| parse_listeners("listeners", v))
            .transpose()?;
        let given_node_id = get("node.id").or(get("broker.id")).map(|_| self.node_id);
        self.quorum = quorum::parse(
            &|k| get(k).map(str::to_string),
            given_node_id,
            listeners.as_deref(),
            &controller_names,
        )?;
        let mut chosen_name: Option<String> = None;
        // A controller-only node has no client listener: it binds its controller listener.
        let controller_only = self.quorum.controller && !self.quorum.broker;
        if let (false, Some(v), Some(ls)) = (controller_only, get("listeners"), listeners) {
            match pick_listener(&ls, &controller_names, None) {
                Some(l) => {
                    self.listen_host = if l.host.is_empty() {
                        "0.0.0.0".into()
                    } else {
                        l.host.clone()
                    };
                    self.port = l.port;
                    self.listener_name = l.name.clone();
                    chosen_name = Some(l.name.clone());
                    for other in ls.iter().filter(|o| o.name != l.name) {
                        if !controller_names.contains(&other.name) {
                            warnings.push(format!(
                                "listener {} ignored: only one client listener is served ({})",
                                other.name, l.name
                            ));
                        }
                    }
                }
                None => return Err(bad("listeners", v, "no broker (non-controller) listener")),
            }
        }
        if let Some(v) = get("advertised.listeners") {
            let ls = parse_listeners("advertised.listeners", v)?;
            if let Some(l) = pick_listener(&ls, &controller_names, chosen_name.as_deref()) {
                // An empty advertised host means "the canonical host name" in Kafka.
                self.advertised_host = if l.host.is_empty() || is_wildcard(&l.host) {
                    String::new()
                } else {
                    l.host.clone()
                };
                self.advertised_port = l.port;
            }
        }

        match (get("log.dirs"), get("log.dir")) {
            (Some(v), _) | (None, Some(v)) => {
                let mut dirs = split_list(v);
                let key = if get("log.dirs").is_some() {
                    "log.dirs"
                } else {
                    "log.dir"
                };
                let first = dirs.next().ok_or_else(|| bad(key, v, "no directory"))?;
                if dirs.next().is_some() {
                    warnings.push(format!("{key}: only the first directory ({first}) is used"));
                }
                self.log_dir = PathBuf::from(first);
            }
            (None, None) => {}
        }

        // Kafka's precedence: ms > minutes > hours; any negative value means "forever".
        let retention = if let Some(v) = get("log.retention.ms") {
            Some(num::<i64>("log.retention.ms", v)?)
        } else if let Some(v) = get("log.retention.minutes") {
            Some(scaled("log.retention.minutes", v, 60_000)?)
        } else if let Some(v) = get("log.retention.hours") {
            Some(scaled("log.retention.hours", v, 3_600_000)?)
        } else {
            None
        };
        if let Some(r) = retention {
            self.log_retention_ms = if r < 0 { -1 } else { r };
        }
        let roll = if let Some(v) = get("log.roll.ms") {
            Some(non_negative::<i64>("log.roll.ms", v)?)
        } else if let Some(v) = get("log.segment.ms") {
            Some(non_negative::<i64>("log.segment.ms", v)?)
        } else if let Some(v) = get("log.roll.hours") {
            Some(scaled("log.roll.hours", v, 3_600_000)?)
        } else {
            None
        };
        if let Some(r) = roll {
            if r <= 0 {
                return Err(bad("log.roll.ms", &r.to_string(), "must be positive"));
            }
            self.log_segment_ms = r;
        }
        if let Some(v) = get("offsets.retention.minutes") {
            self.offsets_retention_ms = scaled("offsets.retention.minutes", v, 60_000)?;
        }

        for (key, value) in props.entries.iter() {
            // Later duplicates win, so only act on the last occurrence of each key.
            if !map
                .get(key.as_str())
                .is_some_and(|v| std::ptr::eq(*v, value))
            {
                continue;
            }
            let (k, v) = (key.as_str(), value.trim());
            match k {
                "node.id"
                | "broker.id"
                | "process.roles"
                | "controller.quorum.voters"
                | "controller.quorum.bootstrap.servers"
                | "listeners"
                | "advertised.listeners"
                | "log.dirs"
                | "log.dir"
                | "log.retention.ms"
                | "log.retention.minutes"
                | "log.retention.hours"
                | "log.roll.ms"
                | "log.roll.hours"
                | "log.segment.ms"
                | "controller.listener.names"
                | "offsets.retention.minutes" => {}
                "num.partitions" => self.num_partitions = positive(k, v)?,
                "default.replication.factor" => self.default_replication_factor = positive(k, v)?,
                "min.insync.replicas" => self.min_insync_replicas = positive(k, v)?,
                "replica.lag.time.max.ms" => self.replica_lag_time_max_ms = positive(k, v)?,
                "replica.fetch.backoff.ms" => self.replica_fetch_backoff_ms = num(k, v)?,
                "unclean.leader.election.enable" => {
                    self.unclean_leader_election_enable = boolean(k, v)?
                }
                "auto.leader.rebalance.enable" => {
                    self.auto_leader_rebalance_enable = boolean(k, v)?
                }
                "leader.imbalance.check.interval.seconds" => {
                    self.leader_imbalance_check_interval_seconds = positive(k, v)?
                }
                "leader.imbalance.per.broker.percentage" => {
                    self.leader_imbalance_per_broker_percentage = num(k, v)?
                }
                "auto.create.topics.enable" => self.auto_create_topics_enable = boolean(k, v)?,
                "delete.topic.enable" => self.delete_topic_enable = boolean(k, v)?,
                "message.max.bytes" => self.message_max_bytes = num(k, v)?,
                "log.segment.bytes" => {
                    self.log_segment_bytes = num(k, v)?;
                    if self.log_segment_bytes < 14 {
                        return Err(bad(k, v, "must be at least 14"));
                    }
                }
                "log.retention.bytes" => self.log_retention_bytes = num(k, v)?,
                "log.retention.check.interval.ms" => {
                    self.log_retention_check_interval_ms = positive(k, v)?
                }
                "offsets.retention.check.interval.ms" => {
                    self.offsets_retention_check_interval_ms = positive(k, v)?
                }
                "log.flush.interval.messages" => {
                    let n: i64 = num(k, v)?;
                    if n < 1 {
                        return Err(bad(k, v, "must be at least 1"));
                    }
                    // Kafka's "never" is Long.MAX_VALUE.
                    self.log_flush_interval_messages =
                        if n == i64::MAX { u64::MAX } else { n as u64 };
                }
                "log.flush.interval.ms" => self.log_flush_interval_ms = non_negative(k, v)?,
                "log.message.timestamp.type" => {
                    self.log_message_timestamp_type = timestamp_type(k, v)?
                }
                "log.cleanup.policy" => self.log_cleanup_policy = cleanup_policy(k, v)?,
                "log.index.size.max.bytes" => self.log_index_size_max_bytes = num(k, v)?,
                "log.index.interval.bytes" => self.log_index_interval_bytes = num(k, v)?,
                "log.cleaner.enable" => self.log_cleaner_enable = boolean(k, v)?,
                "log.cleaner.delete.retention.ms" => {
                    self.log_cleaner_delete_retention_ms = non_negative(k, v)?
                }
                "log.cleaner.min.compaction.lag.ms" => {
                    self.log_cleaner_min_compaction_lag_ms = non_negative(k, v)?
                }
                "log.cleaner.min.cleanable.ratio" => {
                    let r: f64 = num(k, v)?;
                    if !(0.0..=1.0).contains(&r) {
                        return Err(bad(k, v, "must be between 0 and 1"));
                    }
                    self.log_cleaner_min_cleanable_ratio = r;
                }
                "compression.type" => self.compression_type = compression(k, v)?,
                "socket.request.max.bytes" => self.socket_request_max_bytes = positive(k, v)?,
                "connections.max.idle.ms" => self.connections_max_idle_ms = num(k, v)?,
                "max.connections" => self.max_connections = positive(k, v)?,
                "queued.max.request.bytes" => {
                    let q: i64 = num(k, v)?;
                    let max = match get("socket.request.max.bytes") {
                        Some(m) => positive("socket.request.max.bytes", m)?,
                        None => self.socket_request_max_bytes,
                    };
                    check_queued_max_request_bytes(q, max)?;
                    self.queued_max_request_bytes = q;
                }
                "offsets.topic.num.partitions" => {
                    self.offsets_topic_num_partitions = positive(k, v)?
                }
                "offsets.topic.replication.factor" => {
                    self.offsets_topic_replication_factor = positive(k, v)?
                }
                "group.initial.rebalance.delay.ms" => {
                    self.group_initial_rebalance_delay_ms = non_negative(k, v)?
                }
                "group.min.session.timeout.ms" => {
                    self.group_min_session_timeout_ms = non_negative(k, v)?
                }
                "group.max.session.timeout.ms" => {
                    self.group_max_session_timeout_ms = non_negative(k, v)?
                }
                "group.max.size" => self.group_max_size = positive(k, v)?,
                "transaction.max.timeout.ms" => self.transaction_max_timeout_ms = positive(k, v)?,
                "broker.session.timeout.ms" => self.broker_session_timeout_ms = positive(k, v)?,
                "broker.heartbeat.interval.ms" => {
                    self.broker_heartbeat_interval_ms = positive(k, v)?
                }
                "metadata.log.max.record.bytes.between.snapshots" => {
                    self.metadata_snapshot_bytes = positive(k, v)?
                }
                "transactional.id.expiration.ms" => {
                    self.transactional_id_expiration_ms = positive(k, v)?
                }
                "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                    self.transaction_abort_timed_out_interval_ms = positive(k, v)?
                }
                "transaction.state.log.num.partitions" => {
                    self.transaction_state_log_num_partitions = positive(k, v)?
                }
                "transaction.state.log.replication.factor" => {
                    self.transaction_state_log_replication_factor = positive(k, v)?
                }
                "transaction.state.log.min.isr" => {
                    self.transaction_state_log_min_isr = positive(k, v)?
                }
                "producer.id.expiration.ms" => self.producer_id_expiration_ms = positive(k, v)?,
                _ if IGNORED_KAFKA_KEYS.contains(&k)
                    || IGNORED_KAFKA_PREFIXES.iter().any(|p| k.starts_with(p)) =>
                {
                    warnings.push(format!("ignoring Kafka setting {k} (not supported)"))
                }
                _ => warnings.push(format!("unknown setting {k} ignored")),
            }
        }
        Ok(())
    }
}

/// Kafka refuses to start with a request memory pool smaller than one largest request.
fn check_queued_max_request_bytes(
    q: i64,
    socket_request_max_bytes: usize,
) -> Result<(), ConfigError> {
    if q > 0 && (q as u64) < socket_request_max_bytes as u64 {
        return Err(bad(
            "queued.max.request.bytes",
            &q.to_string(),
            format!("must be at least socket.request.max.bytes ({socket_request_max_bytes}), or -1 for no limit"),
        ));
    }
    Ok(())
}

impl Config {
    /// The reactor's broker-wide budget for buffered request bytes: `queued.max.request.bytes`
    /// (never below one largest request, `socket.request.max.bytes`), `None` when unlimited.
    pub fn request_memory_budget(&self) -> Option<usize> {
        if self.queued_max_request_bytes <= 0 {
            return None;
        }
        let q = usize::try_from(self.queued_max_request_bytes).unwrap_or(usize::MAX);
        Some(q.max(self.socket_request_max_bytes))
    }
}

/// Environment variables that `apply_env` reads.
pub const ENV_KEYS: &[&str] = &[
    "BROKER_ID",
    "BROKER_HOST",
    "BROKER_PORT",
    "ADVERTISED_HOST",
    "ADVERTISED_PORT",
    "LOG_DIR",
    "LOG_LEVEL",
    "REPLICATION_FACTOR",
    "MIN_INSYNC_REPLICAS",
    "NUM_PARTITIONS",
    "CLUSTER_ID",
    "AUTO_CREATE_TOPICS",
    "MAX_CONNECTIONS",
];

/// Kafka broker settings that are accepted without effect (one warning each).
const IGNORED_KAFKA_KEYS: &[&str] = &[
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    "num.network.threads",
    "num.io.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "security.inter.broker.protocol",
    "background.threads",
    "queued.max.requests",
    "request.timeout.ms",
    "metadata.log.dir",
    "metadata.log.segment.bytes",
    "metadata.max.retention.ms",
    "node.rack",
    "broker.rack",
    "log.preallocate",
    "offsets.topic.segment.bytes",
    "offsets.commit.timeout.ms",
    "transaction.state.log.segment.bytes",
];

const IGNORED_KAFKA_PREFIXES: &[&str] = &[
    "share.",
    "group.share.",
    "group.consumer.",
    "group.coordinator.",
    "zookeeper.",
    "ssl.",
    "sasl.",
    "listener.name.",
    "controller.",
    "metric.",
    "metrics.",
    "remote.log.",
    "quota.",
    "replica.",
    "log.cleaner.",
    "log.flush.",
    "authorizer.",
];

fn default_log_dir() -> PathBuf {
    std::env::temp_dir().join("minikafka-logs")
}

fn is_wildcard(host: &str) -> bool {
    matches!(host, "" | "0.0.0.0" | "::" | "[::]")
}

fn read(p: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(p).map_err(|err| ConfigError::Io {
        path: p.to_path_buf(),
        err,
    })
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

fn num<T: FromStr>(key: &str, v: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    v.trim()
        .parse::<T>()
        .map_err(|e| bad(key, v, e.to_string()))
}

fn positive<T: FromStr + PartialOrd + Default>(key: &str, v: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    let n: T = num(key, v)?;
    if n <= T::default() {
        return Err(bad(key, v, "must be positive"));
    }
    Ok(n)
}

fn non_negative<T: FromStr + PartialOrd + Default>(key: &str, v: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    let n: T = num(key, v)?;
    if n < T::default() {
        return Err(bad(key, v, "must not be negative"));
    }
    Ok(n)
}

/// A count of `unit_ms` units in ms; negative stays negative.
fn scaled(key: &str, v: &str, unit_ms: i64) -> Result<i64, ConfigError> {
    let n: i64 = num(key, v)?;
    n.checked_mul(unit_ms)
        .ok_or_else(|| bad(key, v, "out of range"))
}

fn boolean(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, v, "expected true or false")),
    }
}

fn timestamp_type(key: &str, v: &str) -> Result<String, ConfigError> {
    match v.trim() {
        t @ ("CreateTime" | "LogAppendTime") => Ok(t.to_string()),
        _ => Err(bad(key, v, "expected CreateTime or LogAppendTime")),
    }
}

fn cleanup_policy(key: &str, v: &str) -> Result<String, ConfigError> {
    let parts: Vec<&str> = split_list(v).collect();
    if parts.is_empty() || parts.iter().any(|p| *p != "delete" && *p != "compact") {
        return Err(bad(key, v, "expected delete, compact or both"));
    }
    Ok(parts.join(","))
}

fn compression(key: &str, v: &str) -> Result<String, ConfigError> {
    match v.trim() {
        t @ ("producer" | "none" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd") => {
            Ok(t.to_string())
        }
        _ => Err(bad(key, v, "unknown compression type")),
    }
}

fn log_level(key: &str, v: &str) -> Result<String, ConfigError> {
    let l = v.trim().to_ascii_lowercase();
    match l.as_str() {
        "off" | "error" | "warn" | "info" | "debug" | "trace" => Ok(l),
        "warning" => Ok("warn".into()),
        _ => Err(bad(
            key,
            v,
            "expected off, error, warn, info, debug or trace",
        )),
    }
}

/// One `NAME://host:port` entry of `listeners`.
#[derive(Debug, PartialEq)]
struct Listener {
    name: String,
    host: String,
    port: u16,
}

fn parse_listeners(key: &str, v: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out = Vec::new();
    for item in split_list(v) {
        let (name, rest) = item
            .split_once("://")
            .ok_or_else(|| bad(key, v, format!("{item}: expected NAME://host:port")))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad(key, v, format!("{item}: missing port")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port
            .parse()
            .map_err(|_| bad(key, v, format!("{item}: bad port")))?;
        out.push(Listener {
            name: name.trim().to_ascii_uppercase(),
            host: host.to_string(),
            port,
        });
    }
    if out.is_empty() {
        return Err(bad(key, v, "no listener"));
    }
    Ok(out)
}

/// The listener clients use: the one named `prefer` if any, else PLAINTEXT, else the first
/// that is not a controller listener.
fn pick_listener<'a>(
    ls: &'a [Listener],
    controller: &[String],
    prefer: Option<&str>,
) -> Option<&'a Listener> {
    prefer
        .and_then(|p| ls.iter().find(|l| l.name == p))
        .or_else(|| ls.iter().find(|l| l.name == "PLAINTEXT"))
        .or_else(|| ls.iter().find(|l| !controller.contains(&l.name)))
}

/// `server.properties` entries in file order (duplicates kept; the last one wins).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Properties {
    pub entries: Vec<(String, String)>,
}

impl Properties {
    fn push(&mut self, k: String, v: String) {
        self.entries.push((k, v));
    }
    fn extend(&mut self, other: Properties) {
        self.entries.extend(other.entries);
    }
    fn last_values(&self) -> HashMap<&str, &String> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v)).collect()
    }
    /// The last value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses Java `.properties` text: `#`/`!` comments, `=`, `:` or whitespace separators,
/// trailing-backslash continuations and the usual escapes (`\t`, `\n`, `\uXXXX`, ...).
pub fn parse_properties(text: &str) -> Properties {
    let mut props = Properties::default();
    let mut logical = String::new();
    let mut continuing = false;
    for raw in text.lines() {
        let line = raw.trim_start_matches([' ', '\t', '\x0c']);
        if !continuing {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            logical.clear();
        }
        // An odd number of trailing backslashes continues the line.
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continuing = true;
            continue;
        }
        logical.push_str(line);
        continuing = false;
        let (k, v) = split_entry(&logical);
        props.push(k, v);
    }
    if continuing && !logical.is_empty() {
        let (k, v) = split_entry(&logical);
        props.push(k, v);
    }
    props
}

/// Splits a logical line into an unescaped key and value.
fn split_entry(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key_end = chars.len();
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' | ' ' | '\t' | '\x0c' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(chars.len());
    let mut j = key_end;
    while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\x0c') {
        j += 1;
    }
    if j < chars.len() && matches!(chars[j], '=' | ':') {
        j += 1;
        while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\x0c') {
            j += 1;
        }
    }
    (
        unescape(&chars[..key_end]),
        unescape(&chars[j.min(chars.len())..]),
    )
}

fn unescape(cs: &[char]) -> String {
    let mut out = String::with_capacity(cs.len());
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = cs.get(i) else { break };
        i += 1;
        match e {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\x0c'),
            'u' => {
                let hex: String = cs[i..(i + 4).min(cs.len())].iter().collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == 4 => {
                        out.push(ch);
                        i += 4;
                    }
                    _ => out.push('u'),
                }
            }
            other => out.push(other),
        }
    }
    out
}

// ---- JSON shape (every field optional so that a file may set any subset) ----

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct JsonConfig {
    broker: JsonBroker,
    replication: JsonReplication,
    log: JsonLog,
    group: JsonGroup,
    transaction: JsonTransaction,
    logging: JsonLogging,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct JsonBroker {
    id: Option<i32>,
    host: Option<String>,
    port: Option<u16>,
    advertised_host: Option<String>,
    advertised_port: Option<u16>,
    num_partitions: Option<i32>,
    auto_create_topics_enable: Option<bool>,
    message_max_bytes: Option<usize>,
    socket_request_max_bytes: Option<usize>,
    connections_max_idle_ms: Option<u64>,
    max_connections: Option<usize>,
    queued_max_request_bytes: Option<i64>,
    cluster_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct JsonReplication {
    factor: Option<i16>,
    min_insync_replicas: Option<i32>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct JsonLog {
    dir: Option<String>,
    retention_ms: Option<i64>,
    retention_bytes: Option<i64>,
    segment_bytes: Option<u64>,
    segment_ms: Option<i64>,
    flush_messages: Option<u64>,
    flush_ms: Option<i64>,
    message_timestamp_type: Option<String>,
    cleanup_policy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct JsonGroup {
    initial_rebalance_delay_ms: Option<i64>,
    min_session_timeout_ms: Option<i32>,
    max_session_timeout_ms: Option<i32>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct JsonTransaction {
    timeout_ms: Option<i64>,
    max_timeout_ms: Option<i64>,
    id_expiration_ms: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct JsonLogging {
    level: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn embedded_json_parses_and_matches_kafka_defaults() {
        let mut c = Config::builtin();
        c.apply_json_str(EMBEDDED_JSON, "embedded").unwrap();
        let d = Config::default();
        assert_eq!(d.node_id, 1);
        assert_eq!(d.listen_host, "127.0.0.1");
        assert_eq!(d.port, 9092);
        assert_eq!(d.advertised_host, "127.0.0.1");
        assert_eq!(d.advertised_port, 9092);
        assert_eq!(d.num_partitions, 1);
        assert_eq!(d.default_replication_factor, 1);
        assert_eq!(d.min_insync_replicas, 1);
        assert!(d.auto_create_topics_enable);
        assert_eq!(d.message_max_bytes, 1_048_588);
        assert_eq!(d.log_segment_bytes, 1 << 30);
        assert_eq!(d.log_segment_ms, 604_800_000);
        assert_eq!(d.log_retention_ms, 604_800_000);
        assert_eq!(d.log_retention_bytes, -1);
        assert_eq!(d.log_flush_interval_messages, u64::MAX);
        assert_eq!(d.log_flush_interval_ms, i64::MAX);
        assert_eq!(d.log_message_timestamp_type, "CreateTime");
        assert_eq!(d.socket_request_max_bytes, 104_857_600);
        assert_eq!(d.connections_max_idle_ms, 600_000);
        assert_eq!(d.group_initial_rebalance_delay_ms, 3000);
        assert_eq!(d.transaction_timeout_ms, 60_000);
        assert_eq!(d.log_level, "warn");
        assert_eq!(d.cluster_id, None);
        assert_eq!(d.log_dir, default_log_dir());
    }

    #[test]
    fn ephemeral_config() {
        let c = Config::ephemeral("d");
        assert_eq!((c.port, c.advertised_port), (0, 0));
        assert_eq!(c.log_dir, PathBuf::from("d"));
    }

    #[test]
    fn properties_parser_handles_java_syntax() {
        let text = "# comment\n! also comment\n  key1 = value one \nkey2:v2\nkey3 v3\n\
                    multi = a,\\\n    b,\\\n    c\nesc\\=key=x\\ty\\u0041\nempty=\nlast=1\nlast=2\n";
        let p = parse_properties(text);
        assert_eq!(p.get("key1"), Some("value one "));
        assert_eq!(p.get("key2"), Some("v2"));
        assert_eq!(p.get("key3"), Some("v3"));
        assert_eq!(p.get("multi"), Some("a,b,c"));
        assert_eq!(p.get("esc=key"), Some("x\tyA"));
        assert_eq!(p.get("empty"), Some(""));
        assert_eq!(p.get("last"), Some("2"));
        assert_eq!(p.get("comment"), None);
    }

    #[test]
    fn kafka_kraft_server_properties() {
        let text = "process.roles=broker,controller\nnode.id=3\n\
            controller.quorum.voters=3@localhost:9093\n\
            listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
            inter.broker.listener.name=PLAINTEXT\n\
            advertised.listeners=PLAINTEXT://localhost:9092\n\
            controller.listener.names=CONTROLLER\n\
            listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
            num.network.threads=3\n\
            log.dirs=/tmp/kraft-combined-logs\nnum.partitions=3\n\
            offsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\n\
            transaction.state.log.min.isr=1\nlog.retention.hours=168\n\
            log.segment.bytes=1073741824\nlog.retention.check.interval.ms=300000\n\
            some.unknown.key=1\n";
        let (c, w) = Config::from_properties_str(text).unwrap();
        assert_eq!(c.node_id, 3);
        assert_eq!(c.listen_host, "0.0.0.0");
        assert_eq!(c.port, 9092);
        assert_eq!(c.advertised_host, "localhost");
        assert_eq!(c.advertised_port, 9092);
        assert_eq!(c.log_dir, PathBuf::from("/tmp/kraft-combined-logs"));
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.log_retention_ms, 168 * 3_600_000);
        assert!(c.quorum.is_standalone(3));
        for k in ["process.roles", "controller.quorum.voters"] {
            assert!(!w.iter().any(|x| x.contains(k)), "warning for {k}: {w:?}");
        }
        for k in [
            "inter.broker.listener.name",
            "listener.security.protocol.map",
            "num.network.threads",
            "some.unknown.key",
        ] {
            assert!(w.iter().any(|x| x.contains(k)), "no warning for {k}: {w:?}");
        }
        assert!(!w.iter().any(|x| x.contains("log.dirs")), "{w:?}");
    }

    #[test]
    fn listeners_pick_plaintext_or_first_non_controller() {
        let (c, _) = Config::from_properties_str(
            "listeners=CONTROLLER://localhost:9093,PLAINTEXT://localhost:9094",
        )
        .unwrap();
        assert_eq!((c.listen_host.as_str(), c.port), ("localhost", 9094));
        assert_eq!(
            (c.advertised_host.as_str(), c.advertised_port),
            ("localhost", 9094)
        );
        let (c, _) = Config::from_properties_str(
            "controller.listener.names=CTRL\nlisteners=CTRL://:1,BROKER://[::1]:2",
        )
        .unwrap();
        assert_eq!((c.listen_host.as_str(), c.port), ("::1", 2));
        assert!(Config::from_properties_str("listeners=CONTROLLER://:9093").is_err());
        assert!(Config::from_properties_str("listeners=PLAINTEXT://:99999").is_err());
        assert!(Config::from_properties_str("listeners=localhost:9092").is_err());
    }

    #[test]
    fn retention_precedence_ms_minutes_hours() {
        let (c, _) = Config::from_properties_str(
            "log.retention.hours=1\nlog.retention.minutes=2\nlog.retention.ms=3",
        )
        .unwrap();
        assert_eq!(c.log_retention_ms, 3);
        let (c, _) =
            Config::from_properties_str("log.retention.hours=1\nlog.retention.minutes=2").unwrap();
        assert_eq!(c.log_retention_ms, 120_000);
        let (c, _) = Config::from_properties_str("log.retention.hours=-1").unwrap();
        assert_eq!(c.log_retention_ms, -1);
    }

    #[test]
    fn many_numeric_settings() {
        let (c, w) = Config::from_properties_str(
            "broker.id=7\nlog.dir=/a\ndefault.replication.factor=2\nmin.insync.replicas=2\n\
             auto.create.topics.enable=FALSE\nmessage.max.bytes=100\nlog.segment.bytes=4096\n\
             log.roll.ms=1000\nlog.retention.bytes=5000\nlog.flush.interval.messages=1\n\
             log.flush.interval.ms=50\nsocket.request.max.bytes=999\nconnections.max.idle.ms=1\n\
             log.message.timestamp.type=LogAppendTime\ngroup.initial.rebalance.delay.ms=0\n\
             log.dirs=/b, /c",
        )
        .unwrap();
        assert_eq!(c.node_id, 7);
        assert_eq!(c.log_dir, PathBuf::from("/b"));
        assert!(w.iter().any(|x| x.contains("/b")));
        assert_eq!(c.default_replication_factor, 2);
        assert_eq!(c.min_insync_replicas, 2);
        assert!(!c.auto_create_topics_enable);
        assert_eq!(c.message_max_bytes, 100);
        assert_eq!(c.log_segment_bytes, 4096);
        assert_eq!(c.log_segment_ms, 1000);
        assert_eq!(c.log_retention_bytes, 5000);
        assert_eq!(c.log_flush_interval_messages, 1);
        assert_eq!(c.log_flush_interval_ms, 50);
        assert_eq!(c.socket_request_max_bytes, 999);
        assert_eq!(c.connections_max_idle_ms, 1);
        assert_eq!(c.log_message_timestamp_type, "LogAppendTime");
        assert_eq!(c.group_initial_rebalance_delay_ms, 0);
        // Kafka's "never" for flush messages.
        let (c, _) =
            Config::from_properties_str("log.flush.interval.messages=9223372036854775807").unwrap();
        assert_eq!(c.log_flush_interval_messages, u64::MAX);
    }

    #[test]
    fn request_memory_budget_and_connection_limit() {
        let d = Config::default();
        assert_eq!(d.request_memory_budget(), Some(104_857_600));
        assert_eq!(d.max_connections, 2_147_483_647);
        let (c, _) = Config::from_properties_str(
            "queued.max.request.bytes=209715200\nmax.connections=20000",
        )
        .unwrap();
        assert_eq!(c.request_memory_budget(), Some(209_715_200));
        assert_eq!(c.max_connections, 20_000);
        let (c, _) = Config::from_properties_str("queued.max.request.bytes=-1").unwrap();
        assert_eq!(c.request_memory_budget(), None);
        // Never below one largest request: the default follows a raised request limit...
        let (c, _) = Config::from_properties_str("socket.request.max.bytes=209715200").unwrap();
        assert_eq!(c.request_memory_budget(), Some(209_715_200));
        // ...and a smaller explicit value is refused, as Kafka refuses to start with it.
        for text in [
            "queued.max.request.bytes=1000",
            "socket.request.max.bytes=2000000\nqueued.max.request.bytes=1000000",
        ] {
            let e = Config::from_properties_str(text).unwrap_err().to_string();
            assert!(e.contains("queued.max.request.bytes"), "{text}: {e}");
        }
        let (c, _) = Config::from_properties_str(
            "socket.request.max.bytes=1000\nqueued.max.request.bytes=5000",
        )
        .unwrap();
        assert_eq!(c.request_memory_budget(), Some(5000));
        let c = Config::from_json_str(r#"{"broker": {"queued_max_request_bytes": -1}}"#).unwrap();
        assert_eq!(c.request_memory_budget(), None);
        assert!(Config::from_json_str(r#"{"broker": {"queued_max_request_bytes": 5}}"#).is_err());
        assert!(Config::from_properties_str("queued.max.request.bytes=lots").is_err());
    }

    #[test]
    fn bad_values_name_key_and_value() {
        for (text, key, value) in [
            ("num.partitions=abc", "num.partitions", "abc"),
            ("num.partitions=0", "num.partitions", "0"),
            (
                "auto.create.topics.enable=yes",
                "auto.create.topics.enable",
                "yes",
            ),
            (
                "log.message.timestamp.type=Now",
                "log.message.timestamp.type",
                "Now",
            ),
            ("node.id=1\nbroker.id=2", "broker.id", "2"),
            ("message.max.bytes=-5", "message.max.bytes", "-5"),
            ("log.retention.ms=1x", "log.retention.ms", "1x"),
        ] {
            let err = Config::from_properties_str(text).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(key) && msg.contains(value), "{text}: {msg}");
        }
    }

    #[test]
    fn json_overrides_subset_and_rejects_unknown() {
        let c = Config::from_json_str(
            r#"{"broker": {"id": 5, "port": 19092}, "log": {"dir": "x"}, "logging": {"level": "DEBUG"}}"#,
        )
        .unwrap();
        assert_eq!(c.node_id, 5);
        assert_eq!(c.port, 19092);
        assert_eq!(c.advertised_port, 19092);
        assert_eq!(c.log_dir, PathBuf::from("x"));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.default_replication_factor, 1);
        let e = Config::from_json_str(r#"{"broker": {"idd": 5}}"#).unwrap_err();
        assert!(e.to_string().contains("idd"), "{e}");
        assert!(Config::from_json_str("{").is_err());
        assert!(Config::from_json_str(r#"{"broker": {"port": 70000}}"#).is_err());
    }

    #[test]
    fn env_overrides() {
        let env = |k: &str| match k {
            "BROKER_ID" => Some("9".to_string()),
            "BROKER_HOST" => Some("0.0.0.0".to_string()),
            "BROKER_PORT" => Some("29092".to_string()),
            "LOG_DIR" => Some("/data/k".to_string()),
            "LOG_LEVEL" => Some("info".to_string()),
            "REPLICATION_FACTOR" => Some("3".to_string()),
            _ => None,
        };
        let mut c = Config::default();
        c.apply_env(env).unwrap();
        assert_eq!(c.node_id, 9);
        assert_eq!(c.listen_host, "0.0.0.0");
        assert_eq!(c.port, 29092);
        assert_eq!(c.advertised_host, "localhost");
        assert_eq!(c.advertised_port, 29092);
        assert_eq!(c.log_dir, PathBuf::from("/data/k"));
        assert_eq!(c.log_level, "info");
        assert_eq!(c.default_replication_factor, 3);

        let mut c = Config::default();
        let e = c
            .apply_env(|k| (k == "BROKER_PORT").then(|| "x".to_string()))
            .unwrap_err();
        assert!(e.to_string().contains("BROKER_PORT") && e.to_string().contains('x'));
        // An explicit advertised address is kept when the listener moves.
        let (mut c, _) =
            Config::from_properties_str("advertised.listeners=PLAINTEXT://kafka:1234").unwrap();
        c.apply_env(|k| (k == "BROKER_PORT").then(|| "1".to_string()))
            .unwrap();
        assert_eq!(
            (c.advertised_host.as_str(), c.advertised_port),
            ("kafka", 1234)
        );
    }

    #[test]
    fn load_from_files_args_and_env() {
        let dir =
            std::env::temp_dir().join(format!("minikafka-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let props = dir.join("server.properties");
        std::fs::write(
            &props,
            "node.id=4\nlisteners=PLAINTEXT://:9200\nnum.partitions=2\n",
        )
        .unwrap();
        let json = dir.join("c.json");
        std::fs::write(
            &json,
            r#"{"broker": {"id": 2}, "replication": {"factor": 1}}"#,
        )
        .unwrap();
        let args: Vec<String> = vec![
            props.display().to_string(),
            "--config".into(),
            json.display().to_string(),
            "--override".into(),
            "num.partitions=6".into(),
        ];
        let env = |k: &str| (k == "LOG_LEVEL").then(|| "error".to_string());
        let (c, w) = Config::load_with(&args, env).unwrap();
        assert_eq!(c.node_id, 4); // properties beat JSON
        assert_eq!(c.port, 9200);
        assert_eq!(c.num_partitions, 6); // --override beats the file
        assert_eq!(c.log_level, "error"); // env beats everything
        assert!(w.is_empty(), "{w:?}");

        // A JSON file as the first argument.
        let (c, _) = Config::load_with(&[json.display().to_string()], no_env).unwrap();
        assert_eq!(c.node_id, 2);
        // Errors: missing file, unknown flag.
        let missing = dir.join("nope.properties").display().to_string();
        let e = Config::load_with(&[missing], no_env).unwrap_err();
        assert!(e.to_string().contains("nope.properties"));
        assert!(Config::load_with(&["--bogus".into()], no_env).is_err());
        assert!(Config::load_with(&[], no_env).is_ok());
        std::fs::remove_dir_all(&dir).ok();
    }
}
