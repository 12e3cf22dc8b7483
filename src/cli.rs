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
    /// Play capture files (pcap, pcapng; plain, gzip or zstd; `-` for
    /// standard input) through the detection, on the packets' clock.
    Replay {
        /// The files, played one after the other.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// `max`: as fast as it goes; `realtime`: paced by the timestamps,
        /// with the HTTP API and dashboard.
        #[arg(long, value_enum, default_value = "max")]
        speed: crate::replay::Speed,
        /// Only the alert lines on standard output: no other sink, no summary.
        #[arg(long, conflicts_with = "json")]
        alerts_only: bool,
        /// The summary as JSON on standard output.
        #[arg(long)]
        json: bool,
        /// Hosts and pairs listed in the summary (0: all).
        #[arg(long, default_value_t = 20, value_name = "N")]
        top: usize,
        /// Append the alerts to this history file (never the configured one).
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// No progress bar, even on a terminal.
        #[arg(long)]
        no_progress: bool,
    },
    /// Convert an original TrafficAlerted.conf to this daemon's TOML
    /// (printed to standard output).
    ConvertConfig {
        /// The old `Key: value` file.
        file: PathBuf,
    },
}
