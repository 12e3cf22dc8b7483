//! End-to-end tests: real packets through network namespaces made here,
//! counted by the real daemon and its ring crate, checked against the
//! kernel's own counters and the generators' known output.
//!
//! They need root and the tools `.ci/run` installs (iperf3, trafgen, ethtool,
//! ping, setpriv); without them they fail with a message saying so.

mod abuse;
mod alertmanager;
mod alerts;
mod attacks;
mod browser;
mod capture;
mod captures;
mod churn;
mod cli;
mod daemon;
mod decap;
mod fallback;
mod flow_input;
mod history;
mod http;
mod interfaces;
mod ipfix;
mod lifecycle;
mod mitigation;
mod netns;
mod privileges;
mod prometheus;
mod rates;
mod receiver;
mod reload;
mod replay;
mod ring;
mod sinks;
mod traffic;
mod webhook_tls;
