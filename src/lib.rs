//! trafficalerted: watch every packet crossing a monitoring box and tell the
//! operator which hosts send too much and which scan.
#![forbid(unsafe_code)]

pub mod admission;
pub mod aggregator;
pub mod alert;
pub mod attacks;
pub mod capture;
pub mod cli;
pub mod config;
pub mod counters;
pub mod daemon;
pub mod detect;
pub mod distinct;
pub mod export;
pub mod flowin;
pub mod flows;
pub mod hosts;
pub mod http;
pub mod mitigation;
pub mod notify;
pub mod openmap;
pub mod pairs;
pub mod ranking;
pub mod rates;
pub mod replay;
pub mod rules;
pub mod shard;
pub mod sinks;
pub mod sketch;
pub mod snapshot;
pub mod wheel;
pub mod window;
pub mod wire;
