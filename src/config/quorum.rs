//! KRaft settings: a node's roles and the controller quorum it belongs to, read from Kafka's own
//! keys (`process.roles`, `node.id`, `controller.quorum.voters`,
//! `controller.quorum.bootstrap.servers`, `controller.listener.names`, `listeners`) and checked
//! the way Kafka's `KafkaConfig.validateValues` checks them, with Kafka's messages.
//!
//! A node without `process.roles` is a standalone broker (what it was before these keys were
//! read); so is a combined node whose only voter is itself. Anything else is a cluster member.

use super::{bad, split_list, ConfigError, Listener};

/// One entry of `controller.quorum.voters` (`{id}@{host}:{port}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// What this node is in a KRaft cluster.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct QuorumConfig {
    /// `process.roles` given at all: without it the node is a standalone combined node.
    pub roles_set: bool,
    pub broker: bool,
    pub controller: bool,
    /// `controller.quorum.voters`, in the order given.
    pub voters: Vec<Voter>,
    /// `controller.quorum.bootstrap.servers` (host, port).
    pub bootstrap_servers: Vec<(String, u16)>,
    /// The listener this node's controller binds: the first entry of `listeners` whose name is
    /// in `controller.listener.names` (controller role only).
    pub controller_listener: Option<(String, u16)>,
    /// `controller.listener.names`, upper-cased (default `CONTROLLER`).
    pub controller_listener_names: Vec<String>,
}

impl QuorumConfig {
    /// A single node with nobody to talk to: no `process.roles`, or a combined node whose only
    /// voter (or, with no voters, whose only bootstrap controller, as `kafka-storage format
    /// --standalone` sets it up) is itself.
    pub fn is_standalone(&self, node_id: i32) -> bool {
        if !self.roles_set {
            return true;
        }
        if !(self.broker && self.controller) {
            return false;
        }
        match self.voters.as_slice() {
            [only] => only.id == node_id,
            [] => {
                self.bootstrap_servers.len() <= 1
                    && match (&self.controller_listener, self.bootstrap_servers.first()) {
                        (Some((_, own)), Some((_, port))) => own == port,
                        _ => true,
                    }
            }
            _ => false,
        }
    }

    /// The voter ids, sorted.
    pub fn voter_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.voters.iter().map(|v| v.id).collect();
        ids.sort_unstable();
        ids
    }
}

/// Reads and checks the KRaft keys. `listeners` is the parsed `listeners` value (None when the
/// key is absent) and `node_id` the configured `node.id`, if any.
pub(super) fn parse(
    get: &dyn Fn(&str) -> Option<String>,
    node_id: Option<i32>,
    listeners: Option<&[Listener]>,
    controller_names: &[String],
) -> Result<QuorumConfig, ConfigError> {
    let mut q = QuorumConfig {
        controller_listener_names: controller_names.to_vec(),
        ..QuorumConfig::default()
    };
    if let Some(ls) = listeners {
        check_distinct_listeners(ls, get("listeners").as_deref().unwrap_or(""))?;
    }
    let roles = match get("process.roles") {
        Some(v) if !v.trim().is_empty() => v,
        _ => return Ok(q), // standalone; the voters, if any, are not read
    };
    q.roles_set = true;
    let mut seen: Vec<&str> = Vec::new();
    for role in split_list(&roles) {
        match role {
            "broker" => q.broker = true,
            "controller" => q.controller = true,
            other => {
                return Err(bad(
                    "process.roles",
                    &roles,
                    format!(
                        "Unknown process role '{other}' (only 'broker' and 'controller' are allowed roles)"
                    ),
                ))
            }
        }
        if seen.contains(&role) {
            return Err(bad(
                "process.roles",
                &roles,
                "Duplicate role names found in `process.roles`",
            ));
        }
        seen.push(role);
    }
    if seen.is_empty() {
        q.roles_set = false;
        return Ok(q);
    }
    let node_id = node_id.ok_or_else(|| {
        bad(
            "node.id",
            "",
            "Missing configuration `node.id` which is required when `process.roles` is defined \
             (i.e. when running in KRaft mode).",
        )
    })?;
    if node_id < 0 {
        return Err(bad("node.id", &node_id.to_string(), "must be 0 or more"));
    }
    if let Some(v) = get("controller.quorum.voters") {
        q.voters = parse_voters(&v)?;
    }
    if let Some(v) = get("controller.quorum.bootstrap.servers") {
        for item in split_list(&v) {
            let (host, port) = host_port(item).ok_or_else(|| {
                bad(
                    "controller.quorum.bootstrap.servers",
                    &v,
                    format!(
                        "Failed to parse host and port from {item}. Each entry should be in the \
                         form \"{{host}}:{{port}}\""
                    ),
                )
            })?;
            q.bootstrap_servers.push((host, port));
        }
    }
    if q.voters.is_empty() && q.bootstrap_servers.is_empty() {
        return Err(bad(
            "controller.quorum.voters",
            "",
            "If using process.roles, either controller.quorum.bootstrap.servers must contain the \
             set of bootstrap controllers or controller.quorum.voters must contain a parseable \
             set of controllers.",
        ));
    }
    let voter_ids = q.voter_ids();
    let listeners = listeners.unwrap_or(&[]);
    let controller_listeners: Vec<&Listener> = listeners
        .iter()
        .filter(|l| controller_names.contains(&l.name))
        .collect();
    if q.controller {
        if !voter_ids.is_empty() && !voter_ids.contains(&node_id) {
            return Err(bad(
                "controller.quorum.voters",
                &get("controller.quorum.voters").unwrap_or_default(),
                format!(
                    "If process.roles contains the 'controller' role, the node id {node_id} must \
                     be included in the set of voters controller.quorum.voters={voter_ids:?}"
                ),
            ));
        }
        let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        if controller_listeners.is_empty()
            || !controller_names.iter().all(|n| names.contains(&n.as_str()))
        {
            return Err(bad(
                "controller.listener.names",
                &controller_names.join(","),
                "controller.listener.names must only contain values appearing in the 'listeners' \
                 configuration when running the KRaft controller role",
            ));
        }
        let first = controller_names
            .iter()
            .find_map(|n| controller_listeners.iter().find(|l| &l.name == n))
            .expect("checked above");
        q.controller_listener = Some((first.host.clone(), first.port));
        if !q.broker && controller_listeners.len() != listeners.len() {
            return Err(bad(
                "listeners",
                &get("listeners").unwrap_or_default(),
                "The listeners config must only contain KRaft controller listeners from \
                 controller.listener.names when process.roles=controller",
            ));
        }
    } else {
        if voter_ids.contains(&node_id) {
            return Err(bad(
                "controller.quorum.voters",
                &get("controller.quorum.voters").unwrap_or_default(),
                format!(
                    "If process.roles contains just the 'broker' role, the node id {node_id} must \
                     not be included in the set of voters controller.quorum.voters={voter_ids:?}"
                ),
            ));
        }
        if !controller_listeners.is_empty() {
            return Err(bad(
                "controller.listener.names",
                &controller_names.join(","),
                "controller.listener.names must not contain a value appearing in the 'listeners' \
                 configuration when running KRaft with just the broker role",
            ));
        }
    }
    Ok(q)
}

/// `{id}@{host}:{port},...` as Kafka's `QuorumConfig.parseVoterConnections` reads it. Unlike
/// Kafka, which keeps the last of two entries for one id, a repeated id or address is refused:
/// a file naming a voter twice is a mistake that would otherwise split the quorum's idea of who
/// votes.
pub fn parse_voters(v: &str) -> Result<Vec<Voter>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    const FORM: &str = "Each entry should be in the form `{id}@{host}:{port}`.";
    let mut out: Vec<Voter> = Vec::new();
    for item in split_list(v) {
        let (id, addr) = match item.split('@').collect::<Vec<_>>()[..] {
            [id, addr] => (id, addr),
            _ => {
                return Err(bad(
                    KEY,
                    v,
                    format!("Invalid configuration value for {KEY}. {FORM}"),
                ))
            }
        };
        let id: i32 = id.trim().parse().map_err(|_| {
            bad(
                KEY,
                v,
                format!("Failed to parse voter ID as an integer from {id}"),
            )
        })?;
        let (host, port) = host_port(addr).ok_or_else(|| {
            bad(
                KEY,
                v,
                format!("Failed to parse host and port from entry {item} for the configuration {KEY}. {FORM}"),
            )
        })?;
        if host == "0.0.0.0" {
            return Err(bad(
                KEY,
                v,
                format!("Host string ({host}) is not routeable"),
            ));
        }
        if out.iter().any(|o| o.id == id) {
            return Err(bad(KEY, v, format!("voter id {id} appears twice")));
        }
        if let Some(o) = out.iter().find(|o| o.host == host && o.port == port) {
            return Err(bad(
                KEY,
                v,
                format!(
                    "voters {} and {id} have the same address {host}:{port}",
                    o.id
                ),
            ));
        }
        out.push(Voter { id, host, port });
    }
    Ok(out)
}

/// Kafka's `CoreUtils.validate`: no two listeners share a name or a port.
fn check_distinct_listeners(ls: &[Listener], raw: &str) -> Result<(), ConfigError> {
    for (i, l) in ls.iter().enumerate() {
        for o in &ls[..i] {
            if o.name == l.name {
                return Err(bad(
                    "listeners",
                    raw,
                    format!("Each listener must have a different name, listeners: {raw}"),
                ));
            }
            if o.port == l.port && l.port != 0 {
                return Err(bad(
                    "listeners",
                    raw,
                    format!("Each listener must have a different port, listeners: {raw}"),
                ));
            }
        }
    }
    Ok(())
}

/// `host:port`, `[v6]:port`; the host must not be empty, the port must be a number.
fn host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.trim().rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    valid.then(|| Some((host.to_string(), port.parse().ok()?)))?
}

#[cfg(test)]
mod tests {
    use super::super::{parse_listeners, Config};
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        Config::from_properties_str(text)
            .map(|(c, _)| c)
            .map_err(|e| e.to_string())
    }

    const COMBINED: &str = "process.roles=broker,controller\nnode.id=1\n\
        listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n";

    #[test]
    fn kafka_single_node_files_are_standalone() {
        // Kafka 3.x's config/kraft/server.properties and 4.x's config/server.properties.
        let c = load(&format!(
            "{COMBINED}controller.quorum.voters=1@localhost:9093\n"
        ))
        .unwrap();
        assert!(c.quorum.roles_set && c.quorum.broker && c.quorum.controller);
        assert_eq!(c.quorum.controller_listener, Some((String::new(), 9093)));
        assert!(c.quorum.is_standalone(1));
        let c = load(&format!(
            "{COMBINED}controller.quorum.bootstrap.servers=localhost:9093\n"
        ))
        .unwrap();
        assert!(c.quorum.is_standalone(1));
        // No process.roles: standalone, whatever else is there.
        let c = load("listeners=PLAINTEXT://:9092\n").unwrap();
        assert!(!c.quorum.roles_set && c.quorum.is_standalone(c.node_id));
    }

    #[test]
    fn three_voters_make_a_cluster() {
        let c = load(&format!(
            "{COMBINED}controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9193,3@[::1]:9293\n"
        ))
        .unwrap();
        assert_eq!(c.quorum.voter_ids(), vec![1, 2, 3]);
        assert_eq!(
            c.quorum.voters[2],
            Voter {
                id: 3,
                host: "::1".into(),
                port: 9293
            }
        );
        assert!(!c.quorum.is_standalone(1));
        // A broker-only node.
        let c = load(
            "process.roles=broker\nnode.id=4\nlisteners=PLAINTEXT://:9092\n\
             controller.quorum.voters=1@127.0.0.1:9093\n",
        )
        .unwrap();
        assert!(c.quorum.broker && !c.quorum.controller && !c.quorum.is_standalone(4));
        assert_eq!(c.quorum.controller_listener, None);
    }

    #[test]
    fn kafka_refuses_these_and_so_do_we() {
        let cases: &[(&str, &str)] = &[
            ("process.roles=broker,broker\nnode.id=1\ncontroller.quorum.voters=2@h:1\nlisteners=PLAINTEXT://:9092", "Duplicate role names"),
            ("process.roles=leader\nnode.id=1", "Unknown process role 'leader'"),
            ("process.roles=broker,controller\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.quorum.voters=1@h:9093", "Missing configuration `node.id`"),
            (COMBINED, "either controller.quorum.bootstrap.servers"),
            (&format!("{COMBINED}controller.quorum.voters=2@h:9093"), "node id 1 must be included in the set of voters"),
            ("process.roles=broker\nnode.id=1\nlisteners=PLAINTEXT://:9092\ncontroller.quorum.voters=1@h:9093", "must not be included in the set of voters"),
            ("process.roles=broker\nnode.id=4\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.quorum.voters=1@h:9093", "must not contain a value appearing in the 'listeners'"),
            ("process.roles=broker,controller\nnode.id=1\nlisteners=PLAINTEXT://:9092\ncontroller.quorum.voters=1@h:9093", "must only contain values appearing in the 'listeners'"),
            ("process.roles=controller\nnode.id=1\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.quorum.voters=1@h:9093", "must only contain KRaft controller listeners"),
            (&format!("{COMBINED}controller.quorum.voters=1@h"), "Failed to parse host and port"),
            (&format!("{COMBINED}controller.quorum.voters=x@h:1"), "Failed to parse voter ID"),
            (&format!("{COMBINED}controller.quorum.voters=1h:1"), "Each entry should be in the form"),
            (&format!("{COMBINED}controller.quorum.voters=1@0.0.0.0:1"), "not routeable"),
            // A file naming a voter twice.
            (&format!("{COMBINED}controller.quorum.voters=1@h:9093,1@h:9094"), "voter id 1 appears twice"),
            (&format!("{COMBINED}controller.quorum.voters=1@h:9093,2@h:9093"), "the same address h:9093"),
            ("listeners=PLAINTEXT://:9092,CONTROLLER://:9092", "Each listener must have a different port"),
            ("listeners=PLAINTEXT://:9092,PLAINTEXT://:9093", "Each listener must have a different name"),
        ];
        for (text, want) in cases {
            match load(text) {
                Ok(c) => panic!("accepted {text:?}: {:?}", c.quorum),
                Err(e) => assert!(e.contains(want), "{text:?}: {e} (wanted {want:?})"),
            }
        }
    }

    #[test]
    fn voters_parse_like_kafka() {
        let v = parse_voters(" 1@a:1 , 2@b.example:2,").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[1].id, v[1].host.as_str(), v[1].port),
            (2, "b.example", 2)
        );
        assert!(parse_voters("1@a:99999").is_err());
        let ls = parse_listeners("listeners", "A://:1,B://:2").unwrap();
        assert!(check_distinct_listeners(&ls, "").is_ok());
    }
}
