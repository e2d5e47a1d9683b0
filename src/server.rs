//! Starting a whole broker: the reactor bound to the configured listener, driving a `Broker`.
//! `main` runs it on the main thread; tests run it in a thread of their own on port 0.

use crate::broker::Broker;
use crate::cluster::controller::Controller;
use crate::cluster::node::ClusterNode;
use crate::config::Config;
use crate::reactor::{Limits, Reactor, ShutdownHandle};
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub enum ServerError {
    Bind(String, io::Error),
    Start(crate::broker::StartError),
    Io(io::Error),
    /// The configuration describes a cluster this build cannot run.
    Cluster(String),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            ServerError::Start(e) => write!(f, "{e}"),
            ServerError::Io(e) => write!(f, "{e}"),
            ServerError::Cluster(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<io::Error> for ServerError {
    fn from(e: io::Error) -> Self {
        ServerError::Io(e)
    }
}

fn limits(c: &Config) -> Limits {
    Limits {
        max_request_bytes: c.socket_request_max_bytes,
        max_connections: c.max_connections,
        idle_timeout: Duration::from_millis(c.connections_max_idle_ms),
        queued_max_request_bytes: c.request_memory_budget(),
    }
}

fn listen_addr(c: &Config) -> Result<SocketAddr, ServerError> {
    let host = if c.listen_host.is_empty() {
        "0.0.0.0"
    } else {
        c.listen_host.as_str()
    };
    let s = format!("{host}:{}", c.port);
    s.to_socket_addrs()
        .map_err(|e| ServerError::Bind(s.clone(), e))?
        .next()
        .ok_or_else(|| ServerError::Bind(s, io::Error::other("no address")))
}

/// Binds, opens the broker's data and returns both, ready to run.
pub fn prepare(mut config: Config) -> Result<(Reactor, Broker), ServerError> {
    if is_controller_only(&config) {
        return Err(ServerError::Cluster(
            "process.roles=controller: a controller-only node runs with prepare_controller".into(),
        ));
    }
    if !config.quorum.is_standalone(config.node_id) {
        return Err(ServerError::Cluster(format!(
            "process.roles={} with voters {:?}: a cluster node runs with prepare_node",
            if config.quorum.controller {
                "broker,controller"
            } else {
                "broker"
            },
            config.quorum.voter_ids()
        )));
    }
    let reactor = bind_clients(&mut config)?;
    let broker = Broker::open(config, Instant::now()).map_err(ServerError::Start)?;
    Ok((reactor, broker))
}

/// A cluster named only by `controller.quorum.bootstrap.servers` is a dynamic quorum (KIP-853,
/// voters added at run time), which is not served: its voters must be listed.
fn check_static_quorum(config: &Config) -> Result<(), ServerError> {
    if config.quorum.voters.is_empty() {
        return Err(ServerError::Cluster(format!(
            "process.roles={}: controller.quorum.bootstrap.servers without \
             controller.quorum.voters describes a dynamic quorum (KIP-853), which is not served; \
             list every controller in controller.quorum.voters ({{id}}@{{host}}:{{port}},...)",
            match (config.quorum.broker, config.quorum.controller) {
                (true, true) => "broker,controller",
                (false, true) => "controller",
                _ => "broker",
            }
        )));
    }
    Ok(())
}

/// Binds the client listener. Port 0 (tests): the port the system picked is advertised.
fn bind_clients(config: &mut Config) -> Result<Reactor, ServerError> {
    let addr = listen_addr(config)?;
    let reactor =
        Reactor::bind(addr, limits(config)).map_err(|e| ServerError::Bind(addr.to_string(), e))?;
    if config.port == 0 {
        let bound = reactor.local_addr();
        config.port = bound.port();
        if config.advertised_port == 0 {
            config.advertised_port = bound.port();
        }
    }
    Ok(reactor)
}

/// A node of a multi-voter quorum with the controller role only: it runs the metadata quorum.
pub fn is_controller_only(config: &Config) -> bool {
    config.quorum.controller && !config.quorum.broker
}

/// A broker of a cluster: a combined node with other voters, or a broker-only node.
pub fn is_cluster_broker(config: &Config) -> bool {
    config.quorum.broker && !config.quorum.is_standalone(config.node_id)
}

/// Binds the client and controller listeners and opens the quorum's log and the broker's
/// partitions: a combined node of a cluster.
pub fn prepare_node(mut config: Config) -> Result<(Reactor, ClusterNode), ServerError> {
    check_static_quorum(&config)?;
    let mut reactor = bind_clients(&mut config)?;
    let now = Instant::now();
    if !config.quorum.controller {
        // A broker-only node: no controller listener, the cluster id of its voters.
        if config.cluster_id.is_none() {
            config.cluster_id = Some(crate::cluster::controller::cluster_id_for_voters(&config));
        }
        let listener_name = config.listener_name.clone();
        let node_config = config.clone();
        let broker =
            Broker::open_in_cluster(config, &listener_name, now).map_err(ServerError::Start)?;
        return Ok((reactor, ClusterNode::broker_only(broker, &node_config, now)));
    }
    let controller_addr = controller_addr(&config)?;
    let (listener, _) = reactor
        .listen_also(controller_addr)
        .map_err(|e| ServerError::Bind(controller_addr.to_string(), e))?;
    // The controller first: it writes meta.properties with the cluster's id.
    let controller =
        Controller::open(&config, now).map_err(|e| ServerError::Cluster(e.to_string()))?;
    let listener_name = config.listener_name.clone();
    let node_config = config.clone();
    let broker =
        Broker::open_in_cluster(config, &listener_name, now).map_err(ServerError::Start)?;
    let node = ClusterNode::new(broker, controller, &node_config, listener, now);
    Ok((reactor, node))
}

fn controller_addr(config: &Config) -> Result<SocketAddr, ServerError> {
    let (host, port) = config
        .quorum
        .controller_listener
        .clone()
        .ok_or_else(|| ServerError::Cluster("no controller listener".into()))?;
    let host = if host.is_empty() {
        "0.0.0.0".to_string()
    } else {
        host
    };
    let s = format!("{host}:{port}");
    s.to_socket_addrs()
        .map_err(|e| ServerError::Bind(s.clone(), e))?
        .next()
        .ok_or_else(|| ServerError::Bind(s.clone(), io::Error::other("no address")))
}

/// Binds the controller listener and opens the quorum's log: a controller-only node (its
/// broker decides the metadata changes forwarded to it; it serves no clients).
pub fn prepare_controller(config: Config) -> Result<(Reactor, ClusterNode), ServerError> {
    check_static_quorum(&config)?;
    let addr = controller_addr(&config)?;
    let reactor =
        Reactor::bind(addr, limits(&config)).map_err(|e| ServerError::Bind(addr.to_string(), e))?;
    let now = Instant::now();
    let controller =
        Controller::open(&config, now).map_err(|e| ServerError::Cluster(e.to_string()))?;
    let node_config = config.clone();
    let broker = Broker::open_in_cluster(config, "PLAINTEXT", now).map_err(ServerError::Start)?;
    Ok((
        reactor,
        ClusterNode::controller_only(broker, controller, &node_config, now),
    ))
}

/// Runs the broker on this thread until SIGTERM/SIGINT.
pub fn run(config: Config) -> Result<(), ServerError> {
    // Before anything opens files: connections and segments share the open-files limit.
    match crate::reactor::fdlimit::raise_nofile_limit() {
        Ok((before, after)) if before != after => {
            log::info!("open-files limit raised from {before} to {after}")
        }
        Ok(_) => {}
        Err(e) => log::warn!("cannot raise the open-files limit: {e}"),
    }
    if is_controller_only(&config) {
        let (mut reactor, mut controller) = prepare_controller(config)?;
        reactor.install_signal_handlers()?;
        log::info!("controller listening on {}", reactor.local_addr());
        reactor.run(&mut controller)?;
        return Ok(());
    }
    if is_cluster_broker(&config) {
        let (mut reactor, mut node) = prepare_node(config)?;
        reactor.install_signal_handlers()?;
        log::info!("node listening on {} for clients", reactor.local_addr());
        reactor.run(&mut node)?;
        return Ok(());
    }
    let (mut reactor, mut broker) = prepare(config)?;
    reactor.install_signal_handlers()?;
    log::info!(
        "listening on {} (up to {} connections, {} of buffered requests)",
        reactor.local_addr(),
        reactor.connection_cap(),
        match broker.config().request_memory_budget() {
            Some(b) => format!("{} MiB", b >> 20),
            None => "no limit".to_string(),
        }
    );
    reactor.run(&mut broker)?;
    Ok(())
}

/// A broker running in a background thread (for tests and embedding).
pub struct Running {
    pub addr: SocketAddr,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Running {
    /// Stops the broker gracefully (flush, checkpoints, clean-shutdown marker) and waits.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts a broker (or a node of a cluster) in a background thread.
pub fn spawn(config: Config) -> Result<Running, ServerError> {
    if is_controller_only(&config) {
        let (reactor, node) = prepare_controller(config)?;
        return run_in_thread("controller", reactor, node);
    }
    if is_cluster_broker(&config) {
        let (reactor, node) = prepare_node(config)?;
        return run_in_thread("node", reactor, node);
    }
    let (reactor, broker) = prepare(config)?;
    run_in_thread("broker", reactor, broker)
}

fn run_in_thread<S: crate::reactor::Service + Send + 'static>(
    name: &str,
    mut reactor: Reactor,
    mut service: S,
) -> Result<Running, ServerError> {
    let addr = reactor.local_addr();
    let stop = reactor.shutdown_handle();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || reactor.run(&mut service))?;
    Ok(Running {
        addr,
        stop,
        thread: Some(thread),
    })
}
