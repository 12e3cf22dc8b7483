//! The original TrafficAlerted's `Key: value` config, converted to ours.
//!
//! ```text
//! TrafficInterval: 300
//! ByteLimit: 1M
//! ExcludedInterfaces: "lo","dummy0"
//! ```
//!
//! Its reader took everything after the first `:` up to a `#`, trimmed; so
//! does this one. Keys it did not know are kept as comments and reported.

use std::fmt::Write as _;

/// The result of a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The configuration in TOML.
    pub toml: String,
    /// Keys that have no equivalent, with their lines.
    pub unknown: Vec<(usize, String)>,
}

/// True if `text` looks like an original TrafficAlerted config rather than
/// TOML: `Key: value` lines and nothing TOML-shaped.
pub fn looks_legacy(text: &str) -> bool {
    let mut keyed = false;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with('[') || t.contains('=') {
            return false;
        }
        if let Some((k, _)) = t.split_once(':') {
            if !k.trim().is_empty() && k.trim().chars().all(|c| c.is_ascii_alphanumeric()) {
                keyed = true;
            }
        }
    }
    keyed
}

/// Converts; an error names the line and the key.
pub fn convert(text: &str) -> Result<Converted, String> {
    let mut traffic = String::new();
    let mut scan = String::new();
    let mut capture = String::new();
    let mut unknown = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some((key, value)) = t.split_once(':') else {
            return Err(format!(
                "line {n}: {t:?} is not a `Key: value` line (the colon is missing)"
            ));
        };
        let key = key.trim();
        // The user's line, not one of the TOML made from it.
        if let Some(first) = seen.insert(key.to_string(), n) {
            return Err(format!(
                "line {n}: {key} is given twice (first on line {first})"
            ));
        }
        let value = value.split('#').next().unwrap_or("").trim();
        let bad = |what: &str| format!("line {n}: {key}: {value:?} is not {what}");
        let int = || value.parse::<u64>().map_err(|_| bad("a whole number"));
        let boolean = || match value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad("true or false")),
        };
        let size = || {
            super::units::parse_size(value)
                .map(|_| value.to_string())
                .map_err(|_| bad("a size like 1M or 300K"))
        };
        match key {
            "TrafficInterval" => {
                let _ = writeln!(traffic, "interval = {}", int()?);
            }
            "ByteLimit" => {
                let _ = writeln!(traffic, "byte_limit = \"{}\"", size()?);
            }
            "ChartMinBytes" => {
                let _ = writeln!(traffic, "chart_min_bytes = \"{}\"", size()?);
            }
            "NoDestinations" => {
                if boolean()? {
                    let _ = writeln!(traffic, "keep_destinations = 0");
                    let _ = writeln!(scan, "address_scan = false");
                }
            }
            "ExcludedInterfaces" => {
                let names = interface_list(value).map_err(|e| format!("line {n}: {key}: {e}"))?;
                let quoted: Vec<String> = names.iter().map(|s| toml_string(s)).collect();
                let _ = writeln!(capture, "exclude_interfaces = [{}]", quoted.join(", "));
            }
            "ContactedIPsAnalyze" => {
                let _ = writeln!(scan, "address_scan = {}", boolean()?);
            }
            "NumberContactedIPs" => {
                let _ = writeln!(scan, "max_contacted_ips = {}", int()?);
            }
            "AnalyzePorts" => {
                let _ = writeln!(scan, "port_scan = {}", boolean()?);
            }
            "NumContactedPorts" => {
                let _ = writeln!(scan, "max_contacted_ports = {}", int()?);
            }
            "PortInterval" => {
                let _ = writeln!(scan, "port_interval = {}", int()?);
            }
            _ => unknown.push((n, key.to_string())),
        }
    }
    let mut out = String::from(
        "# Converted from a TrafficAlerted.conf by `trafficalerted convert-config`.\n# Every other key keeps its default: see `trafficalerted default-config`.\n",
    );
    for (name, body) in [
        ("capture", &capture),
        ("traffic", &traffic),
        ("scan", &scan),
    ] {
        if !body.is_empty() {
            let _ = write!(out, "\n[{name}]\n{body}");
        }
    }
    if !unknown.is_empty() {
        out.push_str("\n# Keys of the old file with no equivalent here:\n");
        for (n, k) in &unknown {
            let _ = writeln!(out, "#   line {n}: {k}");
        }
    }
    Ok(Converted { toml: out, unknown })
}

/// `"lo","dummy0"` as the original wrote it (quotes optional).
/// `s` as a TOML basic string: quotes, backslashes and control characters
/// escaped the way TOML reads them (Rust's `{:?}` writes `\u{1b}`, which
/// TOML does not).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn interface_list(v: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in v.split(',') {
        let p = part.trim().trim_matches('"').trim();
        if p.is_empty() {
            continue;
        }
        if p.contains(char::is_whitespace) {
            return Err(format!("{p:?} is not an interface name"));
        }
        out.push(p.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn errors_name_the_users_line_and_odd_names_stay_valid_toml() {
        let e = convert("TrafficInterval: 300\nByteLimit: 1M\nTrafficInterval: 400\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("first on line 1"), "{e}");
        let e = convert("TrafficInterval 300\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("colon"), "{e}");
        let c = convert("ExcludedInterfaces: eth\u{1b}0,we\"ird\\x\n").unwrap();
        let cfg = Config::parse(&c.toml, "converted").unwrap();
        let names: Vec<String> = cfg
            .capture
            .exclude_interfaces
            .iter()
            .map(|g| g.as_str().to_string())
            .collect();
        assert!(names.contains(&"eth\u{1b}0".to_string()), "{names:?}");
    }

    const ORIGINAL: &str = r#"# Configuration file for TrafficAlerted
# The amount of time for which "ByteLimit" applies
TrafficInterval: 300
ByteLimit: 1M
NoDestinations: false
ChartMinBytes: 10M
ExcludedInterfaces: "lo","dummy0"
ContactedIPsAnalyze: true
NumberContactedIPs: 15
AnalyzePorts: false
NumContactedPorts: 100
PortInterval: 600
"#;

    #[test]
    fn the_original_sample_converts_to_an_equivalent_config() {
        assert!(looks_legacy(ORIGINAL));
        let c = convert(ORIGINAL).unwrap();
        assert!(c.unknown.is_empty());
        let cfg = Config::parse(&c.toml, "converted").unwrap();
        assert_eq!(cfg.traffic.interval.0.as_secs(), 300);
        assert_eq!(cfg.traffic.byte_limit.0, 1_000_000);
        assert_eq!(cfg.traffic.chart_min_bytes.0, 10_000_000);
        assert_eq!(cfg.traffic.keep_destinations, 100);
        let ex: Vec<&str> = cfg
            .capture
            .exclude_interfaces
            .iter()
            .map(|g| g.as_str())
            .collect();
        assert_eq!(ex, ["lo", "dummy0"]);
        assert!(cfg.scan.address_scan);
        assert_eq!(cfg.scan.max_contacted_ips, 15);
        assert_eq!(
            cfg.scan.interval.0.as_secs(),
            300,
            "scans count over the traffic interval, as before"
        );
        assert!(!cfg.scan.port_scan);
        assert_eq!(cfg.scan.port_interval.0.as_secs(), 600);
    }

    #[test]
    fn no_destinations_switches_address_scans_off_too() {
        let c = convert("NoDestinations: true\n").unwrap();
        let cfg = Config::parse(&c.toml, "converted").unwrap();
        assert_eq!(cfg.traffic.keep_destinations, 0);
        assert!(!cfg.scan.address_scan);
    }

    #[test]
    fn unknown_keys_are_kept_as_comments() {
        let c = convert("TrafficInterval: 60\nFancyKey: 3\n").unwrap();
        assert_eq!(c.unknown, vec![(2, "FancyKey".to_string())]);
        assert!(c.toml.contains("line 2: FancyKey"));
        Config::parse(&c.toml, "converted").unwrap();
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let e = convert("TrafficInterval: 60\nByteLimit: lots\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("ByteLimit"), "{e}");
        let e = convert("AnalyzePorts: yes\n").unwrap_err();
        assert!(e.contains("true or false"), "{e}");
    }

    #[test]
    fn toml_is_not_legacy() {
        assert!(!looks_legacy("tick = 1\n[traffic]\ninterval = 10\n"));
        assert!(!looks_legacy(""));
        assert!(!looks_legacy(crate::config::DOCUMENTED_DEFAULT));
    }

    #[test]
    fn trailing_comments_are_dropped() {
        let c = convert("ByteLimit: 5M # five megabytes\n").unwrap();
        assert_eq!(
            Config::parse(&c.toml, "c").unwrap().traffic.byte_limit.0,
            5_000_000
        );
    }
}
