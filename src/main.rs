//! `minikafka [server.properties | config.json]`: starts the broker from the embedded default
//! configuration, overridden by the file given and by environment variables.

use minikafka::config::Config;
use simplelog::{ColorChoice, ConfigBuilder, LevelFilter, TermLogger, TerminalMode};
use std::process::ExitCode;

fn level(name: &str) -> LevelFilter {
    match name.to_ascii_lowercase().as_str() {
        "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" | "warning" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => LevelFilter::Warn,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // kafka-storage.sh's subcommands (a node also formats its empty dir itself at start).
    match args.first().map(String::as_str) {
        Some("format") => {
            return match minikafka::format::format(&args[1..]) {
                Ok(msg) => {
                    println!("{msg}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("minikafka format: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("random-uuid") => {
            println!("{}", minikafka::format::random_cluster_id());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let (config, warnings) = match Config::load(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("minikafka: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let log_config = ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .build();
    let _ = TermLogger::init(
        level(&config.log_level),
        log_config,
        TerminalMode::Stderr,
        ColorChoice::Never,
    );
    for w in &warnings {
        log::warn!("{w}");
    }
    match minikafka::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("minikafka: {e}");
            ExitCode::FAILURE
        }
    }
}
