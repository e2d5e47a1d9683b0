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
