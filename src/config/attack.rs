//! `[attack_pcap]`: a pcap of the packets of every flood alert.

use serde::{Deserialize, Serialize};

use super::units::Size;
use super::{ConfigError, Located};

/// Most packets one capture may ask for.
pub const PACKETS_MAX: u32 = 100_000;
/// Bounds of the captures' total size.
pub const MAX_SIZE_MIN: u64 = 1_000_000;
pub const MAX_SIZE_MAX: u64 = 1_000_000_000_000;

/// `[attack_pcap]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAttackPcap {
    pub packets: u32,
    pub dir: String,
    pub max_size: Size,
}

impl Default for RawAttackPcap {
    fn default() -> Self {
        RawAttackPcap {
            packets: 2000,
            dir: "/var/lib/trafficalerted/attacks".into(),
            max_size: Size(1_000_000_000),
        }
    }
}

/// The validated `[attack_pcap]`; captures are off when `packets` is 0 or
/// `dir` is empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttackPcapConfig {
    pub packets: u32,
    pub dir: String,
    pub max_size: Size,
}

pub(super) fn read(raw: RawAttackPcap, at: &Located<'_>) -> Result<AttackPcapConfig, ConfigError> {
    if raw.packets > PACKETS_MAX {
        return Err(at.invalid(
            &["attack_pcap", "packets"],
            format!("must be 0 (off) to {PACKETS_MAX}, got {}", raw.packets),
        ));
    }
    if !raw.dir.is_empty() && !raw.dir.starts_with('/') {
        return Err(at.invalid(
            &["attack_pcap", "dir"],
            format!(
                "must be an absolute path (or empty: off), got {:?}",
                raw.dir
            ),
        ));
    }
    if raw.max_size.0 < MAX_SIZE_MIN || raw.max_size.0 > MAX_SIZE_MAX {
        return Err(at.invalid(
            &["attack_pcap", "max_size"],
            format!("must be between 1M and 1T, got {}", raw.max_size.0),
        ));
    }
    Ok(AttackPcapConfig {
        packets: raw.packets,
        dir: raw.dir,
        max_size: raw.max_size,
    })
}
