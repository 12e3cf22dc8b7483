//! `[flow_input]`: sFlow, NetFlow and IPFIX from routers.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::units::Size;
use super::{ConfigError, Located};

/// `[flow_input]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFlowInput {
    pub listen: Vec<String>,
    pub listen_tcp: Vec<String>,
    pub max_connections: usize,
    pub max_exporters: usize,
    pub max_templates: usize,
    pub held_bytes: Size,
    pub receive_buffer: Size,
    pub exporter: Vec<RawExporter>,
}

impl Default for RawFlowInput {
    fn default() -> Self {
        RawFlowInput {
            listen: Vec::new(),
            listen_tcp: Vec::new(),
            max_connections: 64,
            max_exporters: 256,
            max_templates: 4096,
            held_bytes: Size(1_000_000),
            receive_buffer: Size(4_000_000),
            exporter: Vec::new(),
        }
    }
}

/// `[[flow_input.exporter]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExporter {
    pub address: String,
    #[serde(default)]
    pub sampling: u32,
    #[serde(default)]
    pub name: String,
}

/// One exporter the operator describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExporterConfig {
    pub address: IpAddr,
    /// 1 in N packets sampled; 0 = as the exporter declares.
    pub sampling: u32,
    pub name: String,
}

/// The validated `[flow_input]`: off while `listen` is empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowInputConfig {
    pub listen: Vec<SocketAddr>,
    /// IPFIX over TCP (RFC 7011 section 10.4).
    pub listen_tcp: Vec<SocketAddr>,
    /// TCP connections open at once, all listeners together.
    pub max_connections: usize,
    pub max_exporters: usize,
    pub max_templates: usize,
    pub held_bytes: u64,
    pub receive_buffer: u64,
    pub exporters: Vec<ExporterConfig>,
}

impl FlowInputConfig {
    pub fn is_on(&self) -> bool {
        !self.listen.is_empty() || !self.listen_tcp.is_empty()
    }

    /// What the operator says of an exporter.
    pub fn exporter(&self, a: IpAddr) -> Option<&ExporterConfig> {
        self.exporters.iter().find(|e| e.address == a)
    }
}

pub(super) fn read(raw: RawFlowInput, at: &Located<'_>) -> Result<FlowInputConfig, ConfigError> {
    let key = |k: &'static str| ["flow_input", k];
    let listen = addresses(&raw.listen, &key("listen"), "0.0.0.0:2055", at)?;
    let listen_tcp = addresses(&raw.listen_tcp, &key("listen_tcp"), "0.0.0.0:4739", at)?;
    if !(1..=4096).contains(&raw.max_connections) {
        return Err(at.invalid(&key("max_connections"), "must be between 1 and 4096".into()));
    }
    if !(1..=65_536).contains(&raw.max_exporters) {
        return Err(at.invalid(&key("max_exporters"), "must be between 1 and 65536".into()));
    }
    if !(1..=65_536).contains(&raw.max_templates) {
        return Err(at.invalid(&key("max_templates"), "must be between 1 and 65536".into()));
    }
    if raw.held_bytes.0 < 64_000 || raw.held_bytes.0 > 256_000_000 {
        return Err(at.invalid(&key("held_bytes"), "must be between 64K and 256M".into()));
    }
    if raw.receive_buffer.0 < 64_000 || raw.receive_buffer.0 > 1_000_000_000 {
        return Err(at.invalid(&key("receive_buffer"), "must be between 64K and 1G".into()));
    }
    if raw.exporter.len() > raw.max_exporters {
        return Err(at.invalid(
            &["flow_input", "exporter"],
            format!(
                "{} exporters listed, more than max_exporters = {}",
                raw.exporter.len(),
                raw.max_exporters
            ),
        ));
    }
    let mut exporters: Vec<ExporterConfig> = Vec::new();
    for e in raw.exporter {
        let address = e.address.parse::<IpAddr>().map_err(|_| {
            at.invalid(
                &["flow_input", "exporter", "address"],
                format!("{:?} is not an IP address", e.address),
            )
        })?;
        if exporters.iter().any(|x| x.address == address) {
            return Err(at.invalid(
                &["flow_input", "exporter", "address"],
                format!("{address} is listed twice"),
            ));
        }
        if e.sampling > 1 << 24 {
            return Err(at.invalid(
                &["flow_input", "exporter", "sampling"],
                "must be between 0 (as declared) and 16777216".into(),
            ));
        }
        if e.name.len() > 64 || e.name.chars().any(char::is_control) {
            return Err(at.invalid(
                &["flow_input", "exporter", "name"],
                "at most 64 printable characters".into(),
            ));
        }
        exporters.push(ExporterConfig {
            address,
            sampling: e.sampling,
            name: e.name,
        });
    }
    Ok(FlowInputConfig {
        listen,
        listen_tcp,
        max_connections: raw.max_connections,
        max_exporters: raw.max_exporters,
        max_templates: raw.max_templates,
        held_bytes: raw.held_bytes.0,
        receive_buffer: raw.receive_buffer.0,
        exporters,
    })
}

/// At most 8 distinct socket addresses.
fn addresses(
    raw: &[String],
    key: &[&'static str],
    example: &str,
    at: &Located<'_>,
) -> Result<Vec<SocketAddr>, ConfigError> {
    if raw.len() > 8 {
        return Err(at.invalid(key, "at most 8 addresses".into()));
    }
    let mut out = Vec::new();
    for l in raw {
        let a = l.parse::<SocketAddr>().map_err(|_| {
            at.invalid(
                key,
                format!("{l:?} is not an address and port like \"{example}\" or \"[::]:6343\""),
            )
        })?;
        if out.contains(&a) {
            return Err(at.invalid(key, format!("{l:?} is listed twice")));
        }
        out.push(a);
    }
    Ok(out)
}
