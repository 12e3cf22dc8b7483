//! From alert to action: routes toward the victims of chosen alerts,
//! announced to the upstream routers through a BGP speaker (ExaBGP), and
//! withdrawn when the alerts close.
//!
//! The decisions are made here, on the collector's thread, once per tick
//! from the tick's alert events: which subject gets a route, which is
//! protected, when the budget is spent. What is wanted is handed to the
//! [`link`] as a whole set; the speaker's side ([`bridge`]) compares it
//! with what it announced and sends only the difference, so a reload that
//! keeps a route does not flap it, and a reconnect after either side
//! restarted converges on what is wanted now.

pub mod bridge;
pub mod exabgp;
pub mod link;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertEvent, AlertKind, Transition};
use crate::config::mitigation::MitigationConfig;
use crate::wire::Addr;
use exabgp::{Flow, Matches, Route};

/// What was done about an alert's subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    /// Routes handed to the speaker.
    Announce,
    /// The subject's routes are already announced for another alert.
    Share,
    /// Routes taken back: the last alert holding them closed.
    Withdraw,
    /// Not announced; `reason` says why.
    Refuse,
    /// Dry run: what would have been announced, logged only.
    DryRun,
}

/// An action, as the alert history and the sinks record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub what: What,
    /// The blackhole prefix (empty if none).
    #[serde(default)]
    pub prefix: String,
    /// The FlowSpec rule, as ExaBGP is told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flowspec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at_ms: u64,
}

/// A subject's routes and the alerts that hold them.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub subject: IpAddr,
    pub prefix: String,
    pub flowspec: Option<String>,
    pub kind: AlertKind,
    pub alerts: BTreeSet<u64>,
    pub since_ms: u64,
    #[serde(skip)]
    routes: Vec<Route>,
    /// What the FlowSpec rule matches, from the first alert's fingerprint.
    #[serde(skip)]
    matches: Matches,
    /// The first alert, for the events of a withdrawal at a reload.
    #[serde(skip)]
    alert: Alert,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub announced: u64,
    pub withdrawn: u64,
    pub refused: u64,
    pub dry_run: u64,
}

/// What the API, metrics and dashboard show.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub enabled: bool,
    pub dry_run: bool,
    pub max_announcements: usize,
    pub announced: Vec<Held>,
    pub totals: Totals,
    pub speaker: link::Status,
}

/// The decisions and what they hold.
pub struct Mitigator {
    cfg: MitigationConfig,
    held: BTreeMap<IpAddr, Held>,
    totals: Totals,
    link: Option<link::Link>,
}

impl std::fmt::Debug for Mitigator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mitigator")
            .field("held", &self.held.len())
            .finish()
    }
}

impl Mitigator {
    /// Starts the speaker link if mitigation is on and not a dry run.
    pub fn start(cfg: &MitigationConfig) -> Result<Mitigator, link::LinkError> {
        let link = if cfg.enabled && !cfg.dry_run {
            Some(link::Link::start(&cfg.bgp.socket)?)
        } else {
            None
        };
        Ok(Mitigator {
            cfg: cfg.clone(),
            held: BTreeMap::new(),
            totals: Totals::default(),
            link,
        })
    }

    /// Nothing is acted on (replay, tests).
    pub fn off() -> Mitigator {
        let raw = crate::config::Config::default();
        Mitigator {
            cfg: raw.mitigation,
            held: BTreeMap::new(),
            totals: Totals::default(),
            link: None,
        }
    }

    /// Acts on the tick's events; returns the actions as events, after
    /// the openings and closings they follow.
    pub fn handle(&mut self, events: &[AlertEvent], now_ms: u64) -> Vec<AlertEvent> {
        if !self.cfg.enabled {
            return Vec::new();
        }
        let mut out = Vec::new();
        for ev in events {
            match ev.event {
                Transition::Open => {
                    if let Some(a) = self.open(&ev.alert, now_ms) {
                        out.push(action_event(&ev.alert, a));
                    }
                }
                Transition::Close => {
                    if let Some(a) = self.close(&ev.alert, now_ms) {
                        out.push(action_event(&ev.alert, a));
                    }
                }
                Transition::Mitigation => {}
            }
        }
        if !out.is_empty() {
            self.publish();
        }
        out
    }

    /// Acts on the alerts open at start (restored from the history).
    pub fn restore(&mut self, open: &[Alert], now_ms: u64) -> Vec<AlertEvent> {
        let events: Vec<AlertEvent> = open
            .iter()
            .map(|a| AlertEvent::of(Transition::Open, a.clone()))
            .collect();
        self.handle(&events, now_ms)
    }

    fn open(&mut self, a: &Alert, now_ms: u64) -> Option<Action> {
        if self.cfg.kinds_of(&a.rule) & a.kind.bit() == 0 {
            return None;
        }
        let refuse = |reason: String, totals: &mut Totals| {
            totals.refused += 1;
            log::warn!(
                "mitigation: not announcing {} for alert {} ({}): {reason}",
                a.subject,
                a.id,
                a.kind.name()
            );
            Some(Action {
                what: What::Refuse,
                prefix: String::new(),
                flowspec: None,
                reason: Some(reason),
                at_ms: now_ms,
            })
        };
        if let Some(h) = self.held.get_mut(&a.subject) {
            h.alerts.insert(a.id);
            return Some(Action {
                what: What::Share,
                prefix: h.prefix.clone(),
                flowspec: h.flowspec.clone(),
                reason: Some(format!(
                    "already announced for alert {}",
                    h.alerts.first().copied().unwrap_or(a.id)
                )),
                at_ms: now_ms,
            });
        }
        if let Some(n) = self
            .cfg
            .protect
            .iter()
            .find(|n| n.contains(Addr::from(a.subject)))
        {
            return refuse(
                format!("protected (mitigation.protect {n})"),
                &mut self.totals,
            );
        }
        let matches = Matches::of(a);
        let (routes, prefix, flowspec) = match routes_for(&self.cfg, a.subject, &matches) {
            Ok(r) => r,
            Err(why) => return refuse(why, &mut self.totals),
        };
        if self.cfg.dry_run {
            self.totals.dry_run += 1;
            log::info!(
                "mitigation (dry run): would send: {} for alert {} ({})",
                routes
                    .iter()
                    .map(|r| r.announce.as_str())
                    .collect::<Vec<_>>()
                    .join(" and "),
                a.id,
                a.kind.name()
            );
            return Some(Action {
                what: What::DryRun,
                prefix,
                flowspec,
                reason: Some("mitigation.dry_run".into()),
                at_ms: now_ms,
            });
        }
        if self.held.len() >= self.cfg.max_announcements {
            return refuse(
                format!(
                    "mitigation.max_announcements ({}) reached",
                    self.cfg.max_announcements
                ),
                &mut self.totals,
            );
        }
        self.totals.announced += 1;
        log::warn!(
            "mitigation: announcing {} for alert {} ({})",
            routes
                .iter()
                .map(|r| r.announce.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            a.id,
            a.kind.name()
        );
        self.held.insert(
            a.subject,
            Held {
                subject: a.subject,
                prefix: prefix.clone(),
                flowspec: flowspec.clone(),
                kind: a.kind,
                alerts: BTreeSet::from([a.id]),
                since_ms: now_ms,
                routes,
                matches,
                alert: a.clone(),
            },
        );
        Some(Action {
            what: What::Announce,
            prefix,
            flowspec,
            reason: None,
            at_ms: now_ms,
        })
    }

    fn close(&mut self, a: &Alert, now_ms: u64) -> Option<Action> {
        let h = self.held.get_mut(&a.subject)?;
        if !h.alerts.remove(&a.id) || !h.alerts.is_empty() {
            return None;
        }
        let h = self.held.remove(&a.subject)?;
        self.totals.withdrawn += 1;
        log::warn!(
            "mitigation: withdrawing {} (alert {} closed)",
            h.routes
                .iter()
                .map(|r| r.key.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            a.id
        );
        Some(Action {
            what: What::Withdraw,
            prefix: h.prefix,
            flowspec: h.flowspec,
            reason: None,
            at_ms: now_ms,
        })
    }

    /// The routes for an alert's subject: the blackhole route and the
    /// FlowSpec rule, as configured; or why there can be none.
    /// Hands the wanted set to the speaker.
    fn publish(&self) {
        if let Some(l) = &self.link {
            l.publish(self.held.values().flat_map(|h| h.routes.clone()).collect());
        }
    }

    /// A new configuration: routes are rendered again (a change of next
    /// hop or communities replaces them, without a withdrawal); routes
    /// of subjects now protected, or all when mitigation is switched off
    /// or to a dry run, are withdrawn.
    pub fn reconfigure(&mut self, cfg: &MitigationConfig, now_ms: u64) -> Vec<AlertEvent> {
        if *cfg == self.cfg {
            return Vec::new();
        }
        let mut out = Vec::new();
        let live = cfg.enabled && !cfg.dry_run;
        let link_changed = cfg.bgp.socket != self.cfg.bgp.socket || !live;
        self.cfg = cfg.clone();
        let subjects: Vec<IpAddr> = self.held.keys().copied().collect();
        for s in subjects {
            let protected = cfg.protect.iter().find(|n| n.contains(Addr::from(s)));
            let h = self.held.get_mut(&s).expect("listed above");
            let again = match (live, protected) {
                (true, None) => routes_for(cfg, s, &h.matches).ok(),
                _ => None,
            };
            if let Some((routes, prefix, flowspec)) = again {
                h.routes = routes;
                h.prefix = prefix;
                h.flowspec = flowspec;
                continue;
            }
            let h = self.held.remove(&s).expect("listed above");
            self.totals.withdrawn += 1;
            let reason = match protected {
                Some(n) => format!("protected by the new configuration ({n})"),
                None if !cfg.enabled => "mitigation switched off".into(),
                None if cfg.dry_run => "mitigation switched to a dry run".into(),
                None => "no route for it in the new configuration".into(),
            };
            log::warn!("mitigation: withdrawing {}: {reason}", h.subject);
            out.push(AlertEvent {
                event: Transition::Mitigation,
                alert: h.alert,
                mitigation: Some(Action {
                    what: What::Withdraw,
                    prefix: h.prefix,
                    flowspec: h.flowspec,
                    reason: Some(reason),
                    at_ms: now_ms,
                }),
            });
        }
        if link_changed {
            // The old link takes its routes back before it goes.
            if let Some(l) = self.link.take() {
                l.stop(true);
            }
        }
        if live && self.link.is_none() {
            match link::Link::start(&cfg.bgp.socket) {
                Ok(l) => self.link = Some(l),
                Err(e) => log::error!("mitigation: {e}; no route can be announced"),
            }
        }
        self.publish();
        out
    }

    /// Shutdown: withdraws everything if so configured (waiting a little
    /// for the speaker to take it), then closes the link.
    pub fn stop(mut self) {
        if let Some(l) = self.link.take() {
            if self.cfg.withdraw_on_shutdown && !self.held.is_empty() {
                log::info!(
                    "mitigation: withdrawing {} announcement(s) at shutdown",
                    self.held.len()
                );
            }
            l.stop(self.cfg.withdraw_on_shutdown);
        }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    pub fn speaker_status(&self) -> link::Status {
        self.link.as_ref().map(|l| l.status()).unwrap_or_default()
    }

    pub fn report(&self) -> Report {
        Report {
            enabled: self.cfg.enabled,
            dry_run: self.cfg.dry_run,
            max_announcements: self.cfg.max_announcements,
            announced: self.held.values().cloned().collect(),
            totals: self.totals,
            speaker: self.link.as_ref().map(|l| l.status()).unwrap_or_default(),
        }
    }
}

fn action_event(a: &Alert, act: Action) -> AlertEvent {
    AlertEvent {
        event: Transition::Mitigation,
        alert: a.clone(),
        mitigation: Some(act),
    }
}

/// The routes `cfg` makes for a subject: the blackhole route and the
/// FlowSpec rule, as configured; or why there can be none.
fn routes_for(
    cfg: &MitigationConfig,
    subject: IpAddr,
    matches: &Matches,
) -> Result<(Vec<Route>, String, Option<String>), String> {
    let b = &cfg.bgp;
    let mut routes = Vec::new();
    let mut prefix = String::new();
    let mut why_not = None;
    if b.blackhole {
        let (nh, len) = match subject {
            IpAddr::V4(_) => (b.next_hop.map(IpAddr::V4), b.prefix_length_v4),
            IpAddr::V6(_) => (b.next_hop_v6.map(IpAddr::V6), b.prefix_length_v6),
        };
        match nh {
            Some(nh) => {
                let r = exabgp::blackhole(subject, len, nh, &b.communities);
                prefix = exabgp::prefix(subject, len);
                routes.push(r);
            }
            None => {
                why_not = Some(match subject {
                    IpAddr::V4(_) => "no IPv4 next hop (mitigation.bgp.next_hop)",
                    IpAddr::V6(_) => "no IPv6 next hop (mitigation.bgp.next_hop_v6)",
                })
            }
        }
    }
    let mut flowspec = None;
    if b.flowspec {
        let f = Flow {
            subject,
            matches: *matches,
            action: b.flowspec_action,
        };
        flowspec = Some(f.describe());
        routes.push(exabgp::flow(&f));
    }
    if routes.is_empty() {
        return Err(why_not.unwrap_or("no route configured").to_string());
    }
    Ok((routes, prefix, flowspec))
}

#[cfg(test)]
mod tests;
