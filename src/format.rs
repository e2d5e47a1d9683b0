//! `minikafka format` and `minikafka random-uuid`, as Kafka's `kafka-storage.sh` has them.
//!
//! A node formats its empty log directory itself on first start, so `format` is never required;
//! it exists for operators who want to fix the cluster id up front (every node of a cluster
//! formatted with the same `--cluster-id`) or who script Kafka's own steps.

use crate::config::Config;
use crate::kafka_uuid::{random_uuid, uuid_from_string, uuid_to_string};
use crate::metadata::write_meta_properties;
use std::path::Path;

const USAGE: &str = "usage: minikafka format -c|--config server.properties -t|--cluster-id ID \
                     [--ignore-formatted] [--standalone]\n       minikafka random-uuid";

/// Runs `format` with its arguments (after the word `format`). Returns the lines to print and
/// whether it succeeded.
pub fn format(args: &[String]) -> Result<String, String> {
    let (mut config_args, mut cluster_id, mut ignore_formatted) = (Vec::new(), None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "--config" => config_args.push(it.next().ok_or(USAGE)?.clone()),
            "-t" | "--cluster-id" => cluster_id = Some(it.next().ok_or(USAGE)?.clone()),
            "-g" | "--ignore-formatted" => ignore_formatted = true,
            // One voter that is this node: nothing else to record in meta.properties.
            "-s" | "--standalone" => {}
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let cluster_id = cluster_id.ok_or_else(|| format!("--cluster-id is required\n{USAGE}"))?;
    // Kafka's cluster ids are base64url UUIDs (22 characters).
    if uuid_from_string(&cluster_id).is_none() {
        return Err(format!(
            "Cluster ID string {cluster_id} does not appear to be a valid UUID"
        ));
    }
    let (config, _warnings) =
        Config::load_with(&config_args, |_| None).map_err(|e| e.to_string())?;
    format_dir(
        &config.log_dir,
        &cluster_id,
        config.node_id,
        ignore_formatted,
    )
}

/// Writes `meta.properties` into `dir` (created if missing).
pub fn format_dir(
    dir: &Path,
    cluster_id: &str,
    node_id: i32,
    ignore_formatted: bool,
) -> Result<String, String> {
    let meta = dir.join("meta.properties");
    if meta.exists() {
        if ignore_formatted {
            return Ok(format!(
                "All of the log directories are already formatted ({}).",
                dir.display()
            ));
        }
        return Err(format!(
            "Log directory {} is already formatted. Use --ignore-formatted to ignore this directory and format the others.",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write_meta_properties(dir, cluster_id, node_id, &random_uuid()).map_err(|e| e.to_string())?;
    Ok(format!(
        "Formatting metadata directory {} with metadata.version (this build's).",
        dir.display()
    ))
}

/// A new cluster id, as `kafka-storage.sh random-uuid` prints it.
pub fn random_cluster_id() -> String {
    uuid_to_string(&random_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    #[test]
    fn formats_once_and_refuses_twice() {
        let d = TempDir::new("format");
        let dir = d.path().join("logs");
        let id = random_cluster_id();
        assert_eq!(id.len(), 22);
        format_dir(&dir, &id, 3, false).unwrap();
        let text = std::fs::read_to_string(dir.join("meta.properties")).unwrap();
        assert!(text.contains(&format!("cluster.id={id}\n")), "{text}");
        assert!(text.contains("node.id=3\n"), "{text}");
        let e = format_dir(&dir, &id, 3, false).unwrap_err();
        assert!(e.contains("is already formatted"), "{e}");
        format_dir(&dir, &id, 3, true).unwrap();
    }

    #[test]
    fn arguments_are_checked() {
        assert!(format(&[])
            .unwrap_err()
            .contains("--cluster-id is required"));
        let e = format(&["-t".into(), "not-a-uuid".into()]).unwrap_err();
        assert!(e.contains("does not appear to be a valid UUID"), "{e}");
        assert!(format(&["--bogus".into()])
            .unwrap_err()
            .contains("unknown argument"));
    }
}
