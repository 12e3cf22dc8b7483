//! HTTP POST of each alert event to a URL, with a timeout and retries with
//! backoff. Either the event as JSON, or the list Prometheus Alertmanager's
//! `/api/v2/alerts` takes.
//!
//! `http://` or `https://` ([`super::http_client`]: hyper and rustls, the
//! system's CAs or a configured one).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::{Inbox, SinkStats};
use std::collections::BTreeMap;

use crate::alert::{Alert, AlertEvent, Transition};
use crate::config::{RESEND_ENDS, WebhookConfig, WebhookFormat};

use super::http_client::{Client, STOP_TIMEOUT};
/// How long a stopping webhook keeps trying; what is left after it is
/// recorded as undelivered without a try.
const STOP_BUDGET: Duration = Duration::from_secs(3);

/// Where to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `https://`
    pub tls: bool,
}

impl Endpoint {
    /// Parses `http[s]://host[:port]/path`.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (rest, tls) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(r), _) => (r, false),
            (_, Some(r)) => (r, true),
            _ => {
                return Err(format!(
                    "{url:?}: expected an URL like \"http://127.0.0.1:9093/api/v2/alerts\" or \"https://alerts.example.net/hook\""
                ));
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "{url:?}: no host (or credentials in the URL, which are not supported)"
            ));
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            let (h, p) = h
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed [ in the host"))?;
            (h.to_string(), p.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            None | Some("") if tls => 443,
            None | Some("") => 80,
            Some(p) => p
                .parse()
                .map_err(|_| format!("{url:?}: the port must be a number from 1 to 65535"))?,
        };
        if host.is_empty() || port == 0 || path.contains([' ', '\r', '\n']) {
            return Err(format!("{url:?}: not a valid http URL"));
        }
        Ok(Endpoint {
            host,
            port,
            path: path.to_string(),
            tls,
        })
    }

    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The webhook sink.
#[derive(Debug)]
pub struct Webhook {
    endpoint: Endpoint,
    ca_file: Option<std::path::PathBuf>,
    /// Made on the sink's thread at the first post.
    client: Option<Client>,
    format: WebhookFormat,
    timeout: Duration,
    retries: u32,
    /// Alertmanager: open alerts are posted again this often.
    resend: Duration,
    instance: String,
    rule_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Alertmanager: the open alerts, posted again every `resend`.
    open: BTreeMap<u64, Alert>,
}

impl Webhook {
    /// `restored`: alerts open at start, kept alive in Alertmanager.
    pub fn new(c: &WebhookConfig, restored: &[Alert]) -> Webhook {
        Webhook {
            // Validated with the config.
            endpoint: Endpoint::parse(&c.url).unwrap_or(Endpoint {
                host: "127.0.0.1".into(),
                port: 80,
                path: "/".into(),
                tls: false,
            }),
            ca_file: (!c.ca_file.is_empty()).then(|| c.ca_file.clone().into()),
            client: None,
            format: c.format,
            timeout: c.timeout.0,
            retries: c.retries,
            resend: c.resend.0,
            instance: c.instance.clone(),
            rule_labels: c.rule_labels.clone(),
            open: restored.iter().map(|a| (a.id, a.clone())).collect(),
        }
    }

    /// Posts events until the queue closes; for Alertmanager, posts the
    /// open alerts again every `resend` meanwhile.
    pub fn run(&mut self, rx: &Inbox, stats: &SinkStats) {
        let mut last_log: Option<Instant> = None;
        let mut stop_seen: Option<Instant> = None;
        let am = self.format == WebhookFormat::Alertmanager;
        let mut next_resend = Instant::now() + self.resend;
        loop {
            let ev = if am {
                match rx.recv_timeout(next_resend.saturating_duration_since(Instant::now())) {
                    Ok(ev) => ev,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        next_resend = Instant::now() + self.resend;
                        // Stopping: the queue is what is left to do.
                        if !stats.stopping.load(Ordering::Relaxed) {
                            self.resend_open(&mut last_log);
                        }
                        continue;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(ev) => ev,
                    Err(_) => break,
                }
            };
            match ev.event {
                Transition::Open => {
                    self.open.insert(ev.alert.id, ev.alert.clone());
                }
                Transition::Close => {
                    self.open.remove(&ev.alert.id);
                }
                Transition::Mitigation => {}
            }
            if stats.stopping.load(Ordering::Relaxed) {
                let since = *stop_seen.get_or_insert_with(Instant::now);
                // Past the stop budget: recorded, not tried.
                if since.elapsed() >= STOP_BUDGET {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    stats.not_delivered(&ev);
                    continue;
                }
            }
            let body = self.body(&ev);
            let mut delay = Duration::from_millis(500);
            let mut result = Err(String::new());
            for attempt in 0..=self.retries {
                // Stopping: one short try each, no back-off.
                let stopping = stats.stopping.load(Ordering::Relaxed);
                let timeout = if stopping {
                    self.timeout.min(STOP_TIMEOUT)
                } else {
                    self.timeout
                };
                result = self.post(&body, timeout, &stats.stopping);
                if result.is_ok() || stopping {
                    break;
                }
                if attempt < self.retries {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
            match result {
                Ok(()) => {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    if stats.stopping.load(Ordering::Relaxed) {
                        stats.not_delivered(&ev);
                    }
                    let now = Instant::now();
                    if last_log.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
                        last_log = Some(now);
                        log::warn!(
                            "webhook http://{}{}: alert {} not delivered after {} attempt(s): {e}",
                            self.endpoint.host_header(),
                            self.endpoint.path,
                            ev.alert.id,
                            self.retries + 1
                        );
                    }
                }
            }
        }
    }

    /// The request body for an event.
    pub fn body(&self, ev: &AlertEvent) -> Vec<u8> {
        match self.format {
            WebhookFormat::Json => serde_json::to_vec(ev).unwrap_or_default(),
            WebhookFormat::Alertmanager => {
                let ends = match ev.event {
                    Transition::Close => ev.alert.end_ms.unwrap_or(ev.alert.last_update_ms),
                    _ => self.ends_ahead(&ev.alert),
                };
                serde_json::to_vec(&[self.am_alert(&ev.alert, ends)]).unwrap_or_default()
            }
        }
    }

    /// An open alert's end: [`RESEND_ENDS`] re-sends from now.
    fn ends_ahead(&self, a: &Alert) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(a.last_update_ms, |d| d.as_millis() as u64);
        now.max(a.start_ms) + (self.resend * RESEND_ENDS).as_millis() as u64
    }

    fn am_alert(&self, a: &Alert, ends_ms: u64) -> serde_json::Value {
        let mut v = alertmanager_alert(a, ends_ms, &self.instance);
        if let (Some(extra), Some(labels)) = (
            self.rule_labels.get(&a.rule),
            v.get_mut("labels").and_then(|l| l.as_object_mut()),
        ) {
            for (k, val) in extra {
                labels.insert(k.clone(), serde_json::Value::String(val.clone()));
            }
        }
        v
    }

    /// Posts every open alert again (one request), with its end moved
    /// ahead: Alertmanager keeps them firing while this box lives, and
    /// resolves them a few re-sends after it stops.
    fn resend_open(&mut self, last_log: &mut Option<Instant>) {
        if self.open.is_empty() {
            return;
        }
        let list: Vec<serde_json::Value> = self
            .open
            .values()
            .map(|a| self.am_alert(a, self.ends_ahead(a)))
            .collect();
        let body = serde_json::to_vec(&list).unwrap_or_default();
        if let Err(e) = self.post(&body, self.timeout, &AtomicBool::new(false)) {
            let now = Instant::now();
            if last_log.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
                *last_log = Some(now);
                log::warn!(
                    "webhook {}://{}{}: re-sending {} open alert(s) failed: {e}",
                    if self.endpoint.tls { "https" } else { "http" },
                    self.endpoint.host_header(),
                    self.endpoint.path,
                    self.open.len()
                );
            }
        }
    }

    /// POSTs through the kept client (made on first use, on the sink's
    /// own thread).
    fn post(
        &mut self,
        body: &[u8],
        timeout: Duration,
        stopping: &AtomicBool,
    ) -> Result<(), String> {
        if self.client.is_none() {
            self.client = Some(Client::new(self.endpoint.clone(), self.ca_file.as_deref())?);
        }
        match &mut self.client {
            Some(c) => c.post(body, timeout, stopping),
            None => Err("no client".into()),
        }
    }
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// One alert as Alertmanager's `/api/v2/alerts` takes it, ending at
/// `ends_ms` (an open alert: a few re-sends ahead; a closed one: its end).
pub fn alertmanager_alert(a: &Alert, ends_ms: u64, instance: &str) -> serde_json::Value {
    let ends = ends_ms;
    let role = if a.kind.subject_is_source() {
        "source"
    } else {
        "destination"
    };
    json!({
        "labels": {
            "alertname": format!("trafficalerted_{}", a.kind.name()),
            "kind": a.kind.name(),
            "subject": a.subject.to_string(),
            "rule": a.rule,
            "severity": if a.degraded { "warning-degraded" } else { "warning" },
            "instance": instance,
        },
        "annotations": {
            "summary": format!("{} {} {}: {} {:?} over {}s (limit {})", a.kind.event_word(), role, a.subject, a.value, a.unit, a.window_secs, a.threshold),
            "alert_id": a.id.to_string(),
            "peak": a.peak.to_string(),
        },
        "startsAt": rfc3339(a.start_ms),
        "endsAt": rfc3339(ends),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_urls() {
        let e = Endpoint::parse("http://127.0.0.1:9093/api/v2/alerts").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 9093, "/api/v2/alerts")
        );
        let e = Endpoint::parse("http://alerts.lan").unwrap();
        assert_eq!((e.port, e.path.as_str()), (80, "/"));
        let e = Endpoint::parse("http://[::1]:8080/hook").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 8080));
        assert_eq!(e.host_header(), "[::1]:8080");
    }

    #[test]
    fn alertmanager_body_has_labels_and_times() {
        use crate::alert::{Alert, AlertKind, Unit};
        let a = Alert {
            start_ms: 1_700_000_000_000,
            last_update_ms: 1_700_000_060_000,
            end_ms: Some(1_700_000_120_000),
            value: 300,
            peak: 400,
            threshold: 100,
            unit: Unit::Ports,
            window_secs: 600,
            ..Alert::sample(9, AlertKind::PortScan, "10.1.0.2")
        };
        let cfg = WebhookConfig {
            url: "http://127.0.0.1:9093/api/v2/alerts".into(),
            format: WebhookFormat::Alertmanager,
            timeout: crate::config::units::Span(Duration::from_secs(5)),
            retries: 0,
            queue: 1,
            resend: crate::config::units::Span(Duration::from_secs(60)),
            instance: "edge-1".into(),
            rule_labels: [(
                "default".to_string(),
                [("team".to_string(), "noc".to_string())].into(),
            )]
            .into(),
            ca_file: String::new(),
        };
        let hook = Webhook::new(&cfg, &[]);
        let v: serde_json::Value =
            serde_json::from_slice(&hook.body(&AlertEvent::of(Transition::Close, a.clone())))
                .unwrap();
        let x = &v[0];
        assert_eq!(x["labels"]["instance"], "edge-1");
        assert_eq!(x["labels"]["team"], "noc");
        assert_eq!(x["labels"]["alertname"], "trafficalerted_port_scan");
        assert_eq!(x["labels"]["subject"], "10.1.0.2");
        assert_eq!(x["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(x["endsAt"], "2023-11-14T22:15:20.000Z");
        assert_eq!(x["annotations"]["alert_id"], "9");
        // Open: its end four re-sends (4 min) ahead, not a day.
        let v: serde_json::Value = serde_json::from_slice(&hook.body(&AlertEvent::of(
            Transition::Open,
            Alert { end_ms: None, ..a },
        )))
        .unwrap();
        let ends = humantime::parse_rfc3339(v[0]["endsAt"].as_str().unwrap()).unwrap();
        let ahead = ends.duration_since(SystemTime::now()).unwrap();
        assert!(
            ahead > Duration::from_secs(230) && ahead <= Duration::from_secs(240),
            "{ahead:?}"
        );
    }

    #[test]
    fn refuses_what_it_cannot_post_to() {
        let e = Endpoint::parse("https://alerts.example.net/hook").unwrap();
        assert_eq!((e.tls, e.port), (true, 443));
        assert!(Endpoint::parse("ftp://x/").is_err());
        assert!(Endpoint::parse("http://:80/").is_err());
        assert!(Endpoint::parse("http://x:99999/").is_err());
        assert!(Endpoint::parse("http://user:pw@x/").is_err());
        assert!(Endpoint::parse("http://[::1/").is_err());
    }
}
