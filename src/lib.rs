//! trafficalerted: watch every packet crossing a monitoring box and tell the
//! operator which hosts send too much and which scan.
#![forbid(unsafe_code)]

pub mod aggregator;
pub mod capture;
pub mod cli;
pub mod config;
pub mod counters;
pub mod daemon;
pub mod http;
pub mod shard;
pub mod snapshot;
pub mod wire;
