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

/// The validated `[export.ipfix]`: off while `collectors` is empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpfixConfig {
    pub collectors: Vec<SocketAddr>,
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
            c.parse::<SocketAddr>().map_err(|_| {
                at.invalid(
                    &key("collectors"),
                    format!("{c:?} is not an address and port like \"192.0.2.9:4739\" or \"[2001:db8::9]:4739\""),
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
