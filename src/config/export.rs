//! `[export.ipfix]`: flow records to collectors.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::units::Span;
use super::{ConfigError, Located};

/// `[export]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawExport {
    pub ipfix: RawIpfix,
}

/// `[export.ipfix]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIpfix {
    pub collectors: Vec<String>,
    pub observation_domain: u32,
    pub template_refresh: Span,
    pub queue: usize,
}

impl Default for RawIpfix {
    fn default() -> Self {
        RawIpfix {
            collectors: Vec::new(),
            observation_domain: 1,
            template_refresh: Span(std::time::Duration::from_secs(60)),
            queue: 64,
        }
    }
}

/// A collector and how records reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collector {
    pub address: SocketAddr,
    /// Over TCP (RFC 7011 section 10.4), else UDP.
    pub tcp: bool,
}

impl std::fmt::Display for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tcp { "tcp" } else { "udp" };
        write!(f, "{scheme}://{}", self.address)
    }
}

impl Serialize for Collector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for Collector {
    type Err = ();
    /// `host:port` or `udp://host:port` (UDP), `tcp://host:port`.
    fn from_str(c: &str) -> Result<Collector, ()> {
        let (tcp, rest) = if let Some(r) = c.strip_prefix("tcp://") {
            (true, r)
        } else {
            (false, c.strip_prefix("udp://").unwrap_or(c))
        };
        let address = rest.parse().map_err(|_| ())?;
        Ok(Collector { address, tcp })
    }
}

/// The validated `[export.ipfix]`: off while `collectors` is empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpfixConfig {
    pub collectors: Vec<Collector>,
    pub observation_domain: u32,
    pub template_refresh: Span,
    /// Ticks of records waiting for the sender.
    pub queue: usize,
}

pub(super) fn read(raw: RawExport, at: &Located<'_>) -> Result<IpfixConfig, ConfigError> {
    let r = raw.ipfix;
    let key = |k: &'static str| ["export", "ipfix", k];
    if r.collectors.len() > 16 {
        return Err(at.invalid(&key("collectors"), "at most 16".into()));
    }
    let collectors = r
        .collectors
        .iter()
        .map(|c| {
            c.parse::<Collector>().map_err(|()| {
                at.invalid(
                    &key("collectors"),
                    format!("{c:?} is not an address and port like \"192.0.2.9:4739\", \"[2001:db8::9]:4739\" or \"tcp://192.0.2.9:4739\""),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let secs = r.template_refresh.0.as_secs();
    if !(1..=3600).contains(&secs) {
        return Err(at.invalid(&key("template_refresh"), "must be between 1s and 1h".into()));
    }
    if r.queue == 0 || r.queue > 10_000 {
        return Err(at.invalid(&key("queue"), "must be between 1 and 10000 ticks".into()));
    }
    Ok(IpfixConfig {
        collectors,
        observation_domain: r.observation_domain,
        template_refresh: r.template_refresh,
        queue: r.queue,
    })
}
