//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Watch every packet crossing this box; tell which hosts send too much and
/// which scan.
#[derive(Debug, Parser)]
#[command(name = "trafficalerted", version, about)]
pub struct Cli {
    /// Config file (TOML). Default: /etc/trafficalerted/trafficalerted.toml
    /// if it exists, else the built-in defaults.
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture and serve the API (the default).
    Run,
    /// Check a config file and print the effective configuration.
    CheckConfig {
        /// The file to check (default: the -c file or the default path).
        file: Option<PathBuf>,
    },
    /// Print the documented default config file.
    DefaultConfig,
    /// Convert an original TrafficAlerted.conf to this daemon's TOML
    /// (printed to standard output).
    ConvertConfig {
        /// The old `Key: value` file.
        file: PathBuf,
    },
}
