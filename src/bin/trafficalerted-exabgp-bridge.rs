//! `trafficalerted-exabgp-bridge`: the program ExaBGP runs (its `process`
//! section) to announce the daemon's mitigation routes. A binary of its
//! own: the daemon's carries a file capability (CAP_NET_RAW), which a
//! speaker confined to CAP_NET_ADMIN (Debian's exabgp.service) may not
//! execute.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use trafficalerted::mitigation::bridge::{self, Options};

/// Carry trafficalerted's mitigation routes to ExaBGP: reads the daemon's
/// wanted routes from its socket, writes ExaBGP API commands to standard
/// output, passes ExaBGP's acknowledgements and session changes back.
#[derive(Debug, Parser)]
#[command(name = "trafficalerted-exabgp-bridge", version, about)]
struct Args {
    /// The daemon's socket (`mitigation.bgp.socket`).
    #[arg(
        long,
        default_value = "/run/trafficalerted/exabgp.sock",
        value_name = "PATH"
    )]
    socket: PathBuf,
    /// Withdraw the daemon's routes once it has been unreachable this many
    /// seconds (0: keep them until it returns).
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    orphan_after: u64,
}

fn main() {
    let a = Args::parse();
    bridge::run(&Options {
        socket: a.socket,
        orphan_after: (a.orphan_after > 0).then(|| Duration::from_secs(a.orphan_after)),
    })
}
