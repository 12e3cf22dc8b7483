use super::*;
use crate::config::Config;

fn cfg(extra: &str) -> MitigationConfig {
    Config::parse(
        &format!(
            "[mitigation]\nenabled = true\ndry_run = true\nprotect = [\"10.9.0.0/16\"]\nmax_announcements = 2\n{extra}\n[mitigation.bgp]\nnext_hop = \"10.99.0.2\"\ncommunities = [\"65001:666\"]\n\
             [[rule]]\nname = \"servers\"\nnetworks = [\"10.5.0.0/16\"]\nmitigate = [\"syn_in\"]\n"
        ),
        "t.toml",
    )
    .unwrap()
    .mitigation
}

fn open(id: u64, kind: AlertKind, subject: &str, rule: &str) -> AlertEvent {
    AlertEvent::of(
        Transition::Open,
        Alert {
            rule: rule.into(),
            ..Alert::sample(id, kind, subject)
        },
    )
}

fn close(ev: &AlertEvent) -> AlertEvent {
    AlertEvent::of(Transition::Close, ev.alert.clone())
}

fn whats(evs: &[AlertEvent]) -> Vec<(u64, What, Option<String>)> {
    evs.iter()
        .map(|e| {
            let m = e.mitigation.as_ref().unwrap();
            assert_eq!(e.event, Transition::Mitigation);
            (e.alert.id, m.what, m.reason.clone())
        })
        .collect()
}

/// A mitigator deciding without a speaker (the link is what the e2e tests
/// check against BIRD).
fn live(c: &MitigationConfig) -> Mitigator {
    Mitigator {
        cfg: MitigationConfig {
            dry_run: false,
            ..c.clone()
        },
        held: BTreeMap::new(),
        totals: Totals::default(),
        link: None,
    }
}

#[test]
fn chosen_kinds_are_announced_once_per_subject_and_withdrawn_with_the_last_alert() {
    let mut m = live(&cfg(""));
    let a = open(1, AlertKind::Inbound, "10.2.0.9", "default");
    let b = open(2, AlertKind::UdpIn, "10.2.0.9", "default");
    let scan = open(3, AlertKind::AddressScan, "10.2.0.7", "default");
    let evs = m.handle(&[a.clone(), b.clone(), scan], 1000);
    assert_eq!(
        whats(&evs),
        [
            (1, What::Announce, None),
            (2, What::Share, Some("already announced for alert 1".into()))
        ]
    );
    let act = evs[0].mitigation.as_ref().unwrap();
    assert_eq!(act.prefix, "10.2.0.9/32");
    assert_eq!(
        m.held[&"10.2.0.9".parse::<IpAddr>().unwrap()].routes[0].announce,
        "announce route 10.2.0.9/32 next-hop 10.99.0.2 community [65535:666 65001:666]"
    );
    assert!(
        m.handle(&[close(&a)], 2000).is_empty(),
        "alert 2 still holds it"
    );
    assert_eq!(
        whats(&m.handle(&[close(&b)], 3000)),
        [(2, What::Withdraw, None)]
    );
    assert!(m.report().announced.is_empty());
    assert_eq!(
        (m.report().totals.announced, m.report().totals.withdrawn),
        (1, 1)
    );
}

#[test]
fn protected_victims_the_budget_and_rules_are_respected_and_the_alert_says_why() {
    let mut m = live(&cfg(""));
    let evs = m.handle(
        &[
            open(1, AlertKind::Inbound, "10.9.3.4", "default"),
            open(2, AlertKind::Inbound, "10.2.0.1", "default"),
            open(3, AlertKind::Inbound, "10.2.0.2", "default"),
            open(4, AlertKind::Inbound, "10.2.0.3", "default"),
            // The rule acts on SYN floods only.
            open(5, AlertKind::Inbound, "10.5.0.1", "servers"),
            open(6, AlertKind::Inbound, "2001:db8::1", "default"),
        ],
        1000,
    );
    assert_eq!(
        whats(&evs),
        [
            (
                1,
                What::Refuse,
                Some("protected (mitigation.protect 10.9.0.0/16)".into())
            ),
            (2, What::Announce, None),
            (3, What::Announce, None),
            (
                4,
                What::Refuse,
                Some("mitigation.max_announcements (2) reached".into())
            ),
            (
                6,
                What::Refuse,
                Some("no IPv6 next hop (mitigation.bgp.next_hop_v6)".into())
            ),
        ]
    );
    let mut m = live(&cfg(""));
    let evs = m.handle(
        &[
            open(6, AlertKind::Inbound, "2001:db8::1", "default"),
            open(7, AlertKind::SynIn, "10.5.0.1", "servers"),
        ],
        1000,
    );
    assert_eq!(
        whats(&evs),
        [
            (
                6,
                What::Refuse,
                Some("no IPv6 next hop (mitigation.bgp.next_hop_v6)".into())
            ),
            (7, What::Announce, None),
        ]
    );
}

#[test]
fn a_dry_run_announces_nothing_and_says_what_it_would_have() {
    let mut m = Mitigator::start(&cfg("")).unwrap();
    assert!(m.link.is_none(), "a dry run opens no link");
    let evs = m.handle(&[open(1, AlertKind::Inbound, "10.2.0.9", "default")], 1000);
    assert_eq!(
        whats(&evs),
        [(1, What::DryRun, Some("mitigation.dry_run".into()))]
    );
    assert!(m.report().announced.is_empty());
    assert_eq!(m.report().totals.dry_run, 1);
    // Off: nothing at all.
    let mut off = Mitigator::off();
    assert!(
        off.handle(&[open(1, AlertKind::Inbound, "10.2.0.9", "default")], 1)
            .is_empty()
    );
}

#[test]
fn a_reload_keeps_routes_renders_them_anew_and_withdraws_what_is_now_protected() {
    let c = cfg("");
    let mut m = live(&c);
    m.handle(
        &[
            open(1, AlertKind::Inbound, "10.2.0.9", "default"),
            open(2, AlertKind::Inbound, "10.3.0.9", "default"),
        ],
        1000,
    );
    let before = m.held.clone();
    // The same settings: nothing changes.
    assert!(
        m.reconfigure(
            &MitigationConfig {
                dry_run: false,
                ..c.clone()
            },
            2000
        )
        .is_empty()
    );
    assert_eq!(m.held.len(), 2);
    assert_eq!(
        m.held[&"10.2.0.9".parse::<IpAddr>().unwrap()].routes,
        before[&"10.2.0.9".parse::<IpAddr>().unwrap()].routes
    );
    let mut c2 = c.clone();
    c2.dry_run = false;
    c2.protect
        .push(crate::rules::Cidr::parse("10.3.0.0/16").unwrap());
    c2.bgp.communities = vec![];
    let sock = std::env::temp_dir().join(format!("ta-mit-{}.sock", std::process::id()));
    c2.bgp.socket = sock.to_str().unwrap().into();
    let evs = m.reconfigure(&c2, 3000);
    assert_eq!(
        whats(&evs),
        [(
            2,
            What::Withdraw,
            Some("protected by the new configuration (10.3.0.0/16)".into())
        )]
    );
    assert_eq!(
        m.held[&"10.2.0.9".parse::<IpAddr>().unwrap()].routes[0].announce,
        "announce route 10.2.0.9/32 next-hop 10.99.0.2 community [65535:666]"
    );
    assert!(m.link.is_some(), "a new socket path starts the link there");
    m.stop();
    assert!(!sock.exists());
}
