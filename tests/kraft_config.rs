//! The binary with Kafka's KRaft keys: `format` and `random-uuid` as kafka-storage.sh has them,
//! a formatted directory's cluster id kept at start, and configurations Kafka refuses refused
//! with Kafka's message and exit code 2 before anything is written.

mod common;

use common::*;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_minikafka"))
}

fn properties(dir: &std::path::Path, port: u16, extra: &str) -> std::path::PathBuf {
    let p = dir.join("server.properties");
    // Two free ports asked one after the other can be the same one.
    let controller_port = std::iter::repeat_with(free_port)
        .find(|&c| c != port)
        .unwrap();
    std::fs::write(
        &p,
        format!(
            "process.roles=broker,controller\nnode.id=1\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{}\n\
             controller.listener.names=CONTROLLER\nlog.dirs={}\n{extra}",
            controller_port,
            dir.join("logs").display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn format_then_start_keeps_the_cluster_id() {
    let d = TempDir::new("kraft-format");
    let port = free_port();
    let props = properties(
        d.path(),
        port,
        "controller.quorum.voters=1@127.0.0.1:9093\n",
    );
    let out = bin().arg("random-uuid").output().unwrap();
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(id.len(), 22, "{id}");
    let out = bin()
        .args(["format", "-c"])
        .arg(&props)
        .args(["-t", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Formatting twice is refused unless told to ignore it, as kafka-storage.sh does.
    let again = bin()
        .args(["format", "-c"])
        .arg(&props)
        .args(["-t", &id])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is already formatted"));
    let b = BrokerProcess::start(&props, port, d.path());
    drop(b);
    let meta = std::fs::read_to_string(d.path().join("logs/meta.properties")).unwrap();
    assert!(meta.contains(&format!("cluster.id={id}\n")), "{meta}");
}

#[test]
fn configurations_kafka_refuses_are_refused() {
    let d = TempDir::new("kraft-bad");
    for (extra, want) in [
        (
            "controller.quorum.voters=1@127.0.0.1:9093,1@127.0.0.1:9094\n",
            "voter id 1 appears twice",
        ),
        (
            "controller.quorum.voters=2@127.0.0.1:9093\n",
            "node id 1 must be included in the set of voters",
        ),
        ("", "either controller.quorum.bootstrap.servers"),
    ] {
        let props = properties(d.path(), free_port(), extra);
        let out = bin().arg(&props).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert!(err.contains(want), "{extra}: {err}");
        assert!(
            !d.path().join("logs").exists(),
            "nothing written for a refused config"
        );
    }
}

#[test]
fn a_dynamic_quorum_of_several_nodes_is_refused_with_a_clear_error() {
    let d = TempDir::new("kraft-dynamic");
    let port = free_port();
    let text = format!(
        "process.roles=broker,controller\nnode.id=1\n\
         controller.quorum.bootstrap.servers=127.0.0.1:{},127.0.0.1:{}\n\
         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{}\n\
         controller.listener.names=CONTROLLER\nlog.dirs={}\n",
        free_port(),
        free_port(),
        free_port(),
        d.path().join("logs").display()
    );
    let props = d.path().join("server.properties");
    std::fs::write(&props, text).unwrap();
    let out = bin().arg(&props).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("dynamic quorum (KIP-853)"), "{err}");
}
