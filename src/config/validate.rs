//! A parsed config made into a [`Config`]: every value checked, every
//! error naming its key and the line it is written on.

use super::*;

impl Config {
    pub(super) fn from_raw(raw: RawConfig, at: &Located<'_>) -> Result<Config, ConfigError> {
        let tick = raw.tick;
        let tick_ms = tick.0.as_millis();
        if !(limits::TICK_MIN_MS..=limits::TICK_MAX_MS).contains(&tick_ms) {
            return Err(at.invalid(
                &["tick"],
                format!(
                    "must be between 100ms and 60s, got {}",
                    units::format_duration(tick.0)
                ),
            ));
        }
        let whole_ticks = |key: &[&str], d: Span| -> Result<(), ConfigError> {
            let ms = d.0.as_millis();
            if ms == 0 || ms % tick_ms != 0 {
                return Err(at.invalid(
                    key,
                    format!(
                        "must be a positive whole number of ticks (tick = {}), got {}",
                        units::format_duration(tick.0),
                        units::format_duration(d.0)
                    ),
                ));
            }
            Ok(())
        };

        let c = raw.capture;
        if !(limits::SNAPLEN_MIN..=limits::SNAPLEN_MAX).contains(&c.snaplen) {
            return Err(at.invalid(
                &["capture", "snaplen"],
                format!(
                    "must be between {} and {} bytes, got {}",
                    limits::SNAPLEN_MIN,
                    limits::SNAPLEN_MAX,
                    c.snaplen
                ),
            ));
        }
        let workers = match c.workers.0 {
            None => None,
            Some(0) => {
                return Err(at.invalid(
                    &["capture", "workers"],
                    "must be at least 1, or \"auto\" for one per core less the aggregator threads' cores".into(),
                ));
            }
            Some(n) => Some(n),
        };
        let block_size = match c.block_size.0 {
            None => None,
            Some(Size(b)) => {
                if b < 4096 || !b.is_power_of_two() || b > (1 << 30) {
                    return Err(at.invalid(
                        &["capture", "block_size"],
                        format!("must be a power of two between 4KiB and 1GiB, got {b}"),
                    ));
                }
                Some(b)
            }
        };
        let block_count = match c.block_count.0 {
            None => None,
            Some(0) => {
                return Err(at.invalid(
                    &["capture", "block_count"],
                    "must be at least 1, or \"auto\"".into(),
                ));
            }
            Some(n) => Some(n),
        };
        if let (Some(bs), Some(n)) = (block_size, block_count) {
            if bs.saturating_mul(u64::from(n)) > (1 << 40) {
                return Err(at.invalid(
                    &["capture", "block_count"],
                    "block_size × block_count exceeds 1 TiB".into(),
                ));
            }
        }
        let bt = c.block_timeout.0.as_millis();
        if bt == 0 || bt > limits::BLOCK_TIMEOUT_MAX_MS {
            return Err(at.invalid(
                &["capture", "block_timeout"],
                "must be between 1ms and 10s".into(),
            ));
        }
        if bt >= tick_ms {
            return Err(at.invalid(
                &["capture", "block_timeout"],
                format!(
                    "must be shorter than the tick ({}), or packets miss their tick",
                    units::format_duration(tick.0)
                ),
            ));
        }
        let ring_memory_max = match c.ring_memory_max.0 {
            None => None,
            Some(Size(m)) if m < (1 << 20) => {
                return Err(at.invalid(
                    &["capture", "ring_memory_max"],
                    format!("must be at least 1MiB, got {m}"),
                ));
            }
            Some(Size(m)) => Some(m),
        };
        let check_decap = |key: &[&str], list: &[String]| -> Result<(), ConfigError> {
            let mut d = crate::wire::Decap::NONE;
            for e in list {
                d.add(e).map_err(|m| at.invalid(key, m))?;
            }
            Ok(())
        };
        check_decap(&["capture", "decapsulate"], &c.decapsulate)?;
        for (pattern, list) in &c.decapsulate_interfaces {
            let key = ["capture", "decapsulate_interfaces", pattern.as_str()];
            Glob::new(pattern).map_err(|m| at.invalid(&key, m))?;
            check_decap(&key, list)?;
        }
        let aggregators = match c.aggregators.0 {
            None => None,
            Some(n) if (1..=limits::AGGREGATORS_MAX).contains(&n) => Some(n),
            Some(n) => {
                return Err(at.invalid(
                    &["capture", "aggregators"],
                    format!(
                        "must be between 1 and {}, or \"auto\", got {n}",
                        limits::AGGREGATORS_MAX
                    ),
                ));
            }
        };
        let interfaces = globs(&c.interfaces, &["capture", "interfaces"], at)?;
        let exclude_interfaces = globs(
            &c.exclude_interfaces,
            &["capture", "exclude_interfaces"],
            at,
        )?;

        let t = raw.traffic;
        whole_ticks(&["traffic", "interval"], t.interval)?;
        if t.max_hosts == 0 || t.max_hosts > limits::MAX_HOSTS_MAX {
            return Err(at.invalid(
                &["traffic", "max_hosts"],
                format!("must be between 1 and {}", limits::MAX_HOSTS_MAX),
            ));
        }
        if t.max_pairs == 0 || t.max_pairs > limits::MAX_PAIRS_MAX {
            return Err(at.invalid(
                &["traffic", "max_pairs"],
                format!("must be between 1 and {}", limits::MAX_PAIRS_MAX),
            ));
        }
        if t.byte_limit.0 == 0 {
            return Err(at.invalid(&["traffic", "byte_limit"], "must be at least 1 byte".into()));
        }

        if let Some(p) = t.packet_limit {
            if p.0 == 0 {
                return Err(at.invalid(
                    &["traffic", "packet_limit"],
                    "must be at least 1 packet".into(),
                ));
            }
        }

        let sc = raw.scan;
        let scan_interval = sc.interval.unwrap_or(t.interval);
        whole_ticks(&["scan", "interval"], scan_interval)?;
        whole_ticks(&["scan", "port_interval"], sc.port_interval)?;
        for (key, v) in [
            ("max_contacted_ips", sc.max_contacted_ips),
            ("max_contacted_ports", sc.max_contacted_ports),
        ] {
            if v == 0 || v > limits::SCAN_THRESHOLD_MAX {
                return Err(at.invalid(
                    &["scan", key],
                    format!("must be between 1 and {}", limits::SCAN_THRESHOLD_MAX),
                ));
            }
        }

        let ib = raw.inbound;
        if ib.byte_limit.0 == 0 {
            return Err(at.invalid(&["inbound", "byte_limit"], "must be at least 1 byte".into()));
        }
        if ib.packet_limit.is_some_and(|p| p.0 == 0) {
            return Err(at.invalid(
                &["inbound", "packet_limit"],
                "must be at least 1 packet".into(),
            ));
        }

        let rate_config = rates::read(&raw.rates, tick_ms, at)?;

        let al = raw.alerts;
        if let Some(h) = al.hold_down {
            whole_ticks(&["alerts", "hold_down"], h)?;
        }
        if !(0.0..=1.0).contains(&al.degraded_drop_ratio) {
            return Err(at.invalid(
                &["alerts", "degraded_drop_ratio"],
                format!(
                    "must be a fraction between 0 and 1, got {}",
                    al.degraded_drop_ratio
                ),
            ));
        }
        if al.history_max_size.0 < 64 * 1024 {
            return Err(at.invalid(
                &["alerts", "history_max_size"],
                "must be at least 64KiB".into(),
            ));
        }
        let mut rule_labels = std::collections::BTreeMap::new();
        for (i, r) in raw.rule.iter().enumerate() {
            for (k, v) in &r.labels {
                if !label_ok(k) || RESERVED_LABELS.contains(&k.as_str()) || v.len() > 256 {
                    return Err(at.invalid_path(
                        &["rule".into(), i.to_string(), "labels".into()],
                        format!(
                            "{k:?}: a label name is letters, digits and _ (not first a digit, not __…, not one of {}), its value at most 256 bytes",
                            RESERVED_LABELS.join(", ")
                        ),
                    ));
                }
            }
            if !r.labels.is_empty() {
                let name = r.name.clone().unwrap_or_else(|| format!("rule {}", i + 1));
                rule_labels.entry(name).or_insert_with(|| r.labels.clone());
            }
        }
        let webhook = match al.webhook {
            None => None,
            Some(w) => {
                if w.resend.0 < std::time::Duration::from_secs(1)
                    || w.resend.0 > std::time::Duration::from_secs(3600)
                {
                    return Err(at.invalid(
                        &["alerts", "webhook", "resend"],
                        "must be between 1s and 1h".into(),
                    ));
                }
                if !w.ca_file.is_empty() {
                    crate::sinks::http_client::tls_config(Some(std::path::Path::new(&w.ca_file)))
                        .map_err(|m| at.invalid(&["alerts", "webhook", "ca_file"], m))?;
                }
                let instance = w.instance.unwrap_or_else(host_name);
                if instance.is_empty() || instance.len() > 256 {
                    return Err(at.invalid(
                        &["alerts", "webhook", "instance"],
                        "must be 1 to 256 bytes".into(),
                    ));
                }
                crate::sinks::webhook::Endpoint::parse(&w.url)
                    .map_err(|m| at.invalid(&["alerts", "webhook", "url"], m))?;
                if w.timeout.0.is_zero() {
                    return Err(
                        at.invalid(&["alerts", "webhook", "timeout"], "must be positive".into())
                    );
                }
                if w.queue == 0 {
                    return Err(
                        at.invalid(&["alerts", "webhook", "queue"], "must be at least 1".into())
                    );
                }
                Some(WebhookConfig {
                    url: w.url,
                    format: w.format,
                    timeout: w.timeout,
                    retries: w.retries,
                    queue: w.queue,
                    resend: w.resend,
                    instance,
                    rule_labels,
                    ca_file: w.ca_file,
                })
            }
        };
        let exec = match al.exec {
            None => None,
            Some(e) => {
                if e.command.is_empty() || e.command[0].is_empty() {
                    return Err(at.invalid(
                        &["alerts", "exec", "command"],
                        "needs the program to run, e.g. [\"/usr/local/bin/notify\", \"--quiet\"]"
                            .into(),
                    ));
                }
                if e.timeout.0.is_zero() {
                    return Err(
                        at.invalid(&["alerts", "exec", "timeout"], "must be positive".into())
                    );
                }
                if e.max_running == 0 || e.queue == 0 {
                    return Err(at.invalid(
                        &[
                            "alerts",
                            "exec",
                            if e.queue == 0 { "queue" } else { "max_running" },
                        ],
                        "must be at least 1".into(),
                    ));
                }
                Some(ExecConfig {
                    command: e.command,
                    timeout: e.timeout,
                    max_running: e.max_running,
                    queue: e.queue,
                })
            }
        };

        let mut rules = Vec::new();
        let mut rule_kinds = std::collections::BTreeMap::new();
        for (i, r) in raw.rule.into_iter().enumerate() {
            let idx = i.to_string();
            let key =
                |k: &'static str| -> Vec<String> { vec!["rule".into(), idx.clone(), k.into()] };
            if r.networks.is_empty() {
                return Err(
                    at.invalid_path(&key("networks"), "a rule needs at least one network".into())
                );
            }
            let networks = r
                .networks
                .iter()
                .map(|n| Cidr::parse(n))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| at.invalid_path(&key("networks"), m))?;
            let limits = Limits {
                byte_limit: r.byte_limit.map(|v| v.0),
                packet_limit: r.packet_limit.map(|v| v.0),
                max_contacted_ips: r.max_contacted_ips,
                max_contacted_ports: r.max_contacted_ports,
                inbound_byte_limit: r.inbound_byte_limit.map(|v| v.0),
                inbound_packet_limit: r.inbound_packet_limit.map(|v| v.0),
                rates: rates::limits(
                    &r.rates_in,
                    &r.rates_out,
                    &key("rates_in"),
                    &key("rates_out"),
                    at,
                )?,
            };
            for (k, v) in [
                ("max_contacted_ips", r.max_contacted_ips),
                ("max_contacted_ports", r.max_contacted_ports),
            ] {
                if v.is_some_and(|v| v == 0 || v > limits::SCAN_THRESHOLD_MAX) {
                    return Err(at.invalid_path(
                        &key(k),
                        format!("must be between 1 and {}", limits::SCAN_THRESHOLD_MAX),
                    ));
                }
            }
            let action = if r.ignore {
                if limits != Limits::default() {
                    return Err(at.invalid_path(
                        &key("ignore"),
                        "a rule either ignores its networks or sets limits for them, not both"
                            .into(),
                    ));
                }
                Action::Ignore
            } else if limits == Limits::default() && r.mitigate.is_none() && r.labels.is_empty() {
                return Err(at.invalid_path(
                    &key("networks"),
                    "the rule neither ignores its networks (ignore = true) nor sets a limit".into(),
                ));
            } else {
                Action::Limits(limits)
            };
            let name = r.name.unwrap_or_else(|| format!("rule {}", i + 1));
            if let Some(m) = &r.mitigate {
                let mask = mitigation::kinds(m, &key("mitigate"), at)?;
                rule_kinds.entry(name.clone()).or_insert(mask);
            }
            rules.push(Rule {
                name,
                networks,
                action,
            });
        }
        if rules.len() > usize::from(u16::MAX - 1) {
            return Err(at.invalid(&["rule"], "too many rules".into()));
        }

        let mitigation_config = mitigation::read(raw.mitigation, rule_kinds, at)?;
        let attack_config = attack::read(raw.attack_pcap, at)?;
        let ipfix_config = export::read(raw.export, at)?;
        let flow_input_config = flow_input::read(raw.flow_input, at)?;

        let listen = raw.http.listen.0;
        if listen.is_empty() {
            return Err(at.invalid(&["http", "listen"], "needs at least one address".into()));
        }
        let auth = match raw.http.auth {
            None => None,
            Some(a) => Some(auth(a, at)?),
        };
        if raw.metrics.top_hosts > limits::TOP_HOSTS_MAX {
            return Err(at.invalid(
                &["metrics", "top_hosts"],
                format!(
                    "at most {}: every host is a set of series",
                    limits::TOP_HOSTS_MAX
                ),
            ));
        }

        let config = Config {
            tick,
            capture: CaptureConfig {
                interfaces,
                exclude_interfaces,
                workers,
                pin_workers: c.pin_workers,
                direction: c.direction,
                snaplen: c.snaplen,
                block_size,
                block_count,
                block_timeout: c.block_timeout,
                fanout: c.fanout,
                wait: c.wait,
                ring_memory_max,
                skip_stacked: c.skip_stacked,
                decapsulate: c.decapsulate,
                decapsulate_interfaces: c.decapsulate_interfaces,
                aggregators,
            },
            traffic: TrafficConfig {
                interval: t.interval,
                byte_limit: t.byte_limit,
                packet_limit: t.packet_limit,
                chart_min_bytes: t.chart_min_bytes,
                keep_destinations: t.keep_destinations,
                max_hosts: t.max_hosts,
                max_pairs: t.max_pairs,
            },
            scan: ScanConfig {
                address_scan: sc.address_scan,
                max_contacted_ips: sc.max_contacted_ips,
                interval: scan_interval,
                port_scan: sc.port_scan,
                max_contacted_ports: sc.max_contacted_ports,
                port_interval: sc.port_interval,
                count: sc.count,
            },
            inbound: InboundConfig {
                enabled: ib.enabled,
                byte_limit: ib.byte_limit,
                packet_limit: ib.packet_limit,
            },
            rates: rate_config,
            mitigation: mitigation_config,
            attack_pcap: attack_config,
            ipfix: ipfix_config,
            flow_input: flow_input_config,
            alerts: AlertsConfig {
                hold_down: al.hold_down,
                log: al.log,
                history_file: al.history_file,
                history_max_size: al.history_max_size,
                history_keep: al.history_keep,
                degraded_drop_ratio: al.degraded_drop_ratio,
                webhook,
                exec,
            },
            rules,
            http: HttpConfig { listen, auth },
            metrics: MetricsConfig {
                top_hosts: raw.metrics.top_hosts,
            },
        };
        bounds::check(&config, at)?;
        Ok(config)
    }
}

/// A secret given inline or as a file to read (trailing newline dropped).
fn secret(
    inline: Option<String>,
    file: Option<String>,
    key: &'static str,
    at: &Located<'_>,
) -> Result<Option<String>, ConfigError> {
    let value = match (inline, file) {
        (Some(_), Some(_)) => {
            return Err(at.invalid(
                &["http", "auth", key],
                format!("give {key} or {key}_file, not both"),
            ));
        }
        (Some(v), None) => v,
        (None, Some(path)) => file::read_regular(Path::new(&path), file::MAX_CONFIG_BYTES)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| at.invalid(&["http", "auth", key], format!("cannot read {path}: {e}")))?,
        (None, None) => return Ok(None),
    };
    if value.is_empty() {
        return Err(at.invalid(&["http", "auth", key], "must not be empty".into()));
    }
    Ok(Some(value))
}

fn auth(a: raw::RawAuth, at: &Located<'_>) -> Result<Auth, ConfigError> {
    let token = secret(a.bearer_token, a.bearer_token_file, "bearer_token", at)?;
    let password = secret(a.password, a.password_file, "password", at)?;
    match (token, a.user, password) {
        (Some(t), None, None) => Ok(Auth::Bearer(t)),
        (None, Some(user), Some(password)) if !user.is_empty() && !user.contains(':') => {
            Ok(Auth::Basic { user, password })
        }
        (None, Some(_), Some(_)) => Err(at.invalid(
            &["http", "auth", "user"],
            "must not be empty or contain ':'".into(),
        )),
        _ => Err(at.invalid(
            &["http", "auth"],
            "set either bearer_token (or bearer_token_file), or user and password (or password_file)".into(),
        )),
    }
}

fn globs(list: &[String], key: &[&str], at: &Located<'_>) -> Result<Vec<Glob>, ConfigError> {
    list.iter()
        .map(|s| Glob::new(s).map_err(|m| at.invalid(key, m)))
        .collect()
}

/// Config text kept around to point validation errors at their line.
pub(crate) struct Located<'a> {
    text: Option<&'a str>,
    origin: &'a str,
}

impl<'a> Located<'a> {
    pub(crate) fn new(text: &'a str, origin: &'a str) -> Self {
        Located {
            text: Some(text),
            origin,
        }
    }

    pub(crate) fn none() -> Self {
        Located {
            text: None,
            origin: "built-in defaults",
        }
    }

    pub(super) fn invalid(&self, key: &[&str], message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            line: self.text.and_then(|t| line_of_key(t, key)),
            key: key.join("."),
            message,
        }
    }

    pub(super) fn invalid_path(&self, key: &[String], message: String) -> ConfigError {
        let k: Vec<&str> = key.iter().map(String::as_str).collect();
        self.invalid(&k, message)
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` (a path of table names and a key) is written.
pub(super) fn line_of_key(text: &str, key: &[&str]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let (last, parents) = key.split_last()?;
    let mut parents = parents.iter().peekable();
    while let Some(name) = parents.next() {
        let (_, v) = table.iter().find(|(k, _)| k.get_ref() == name)?;
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            // An array of tables ([[rule]]): the next segment is the index.
            DeValue::Array(a) => {
                let i: usize = parents.next()?.parse().ok()?;
                match a.get(i)?.get_ref() {
                    DeValue::Table(t) => table = t,
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    let (k, _) = table.iter().find(|(k, _)| k.get_ref() == last)?;
    Some(line_of_offset(text, k.span().start))
}
