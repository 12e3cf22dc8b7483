use super::*;
use crate::aggregator::RuntimeInfo;
use crate::config::Config;
use crate::snapshot::{HostView, IfaceView};
use crate::wire::Addr;

#[test]
fn labels_are_escaped_and_hosts_bounded() {
    let mut c = Config::default();
    c.metrics.top_hosts = 2;
    let mut s = Snapshot::empty(&c, RuntimeInfo::default());
    s.ifaces.push(IfaceView {
        ifindex: 3,
        name: "we\"ird\\\n".into(),
        link: "ether".into(),
        present: true,
        totals: Default::default(),
        last_tick: Default::default(),
    });
    s.hosts = (1..=5u8)
        .map(|n| HostView {
            addr: Addr::from_v4([10, 0, 0, n]),
            sent_bytes: 100 - u64::from(n),
            sent_packets: 1,
            recv_bytes: 0,
            recv_packets: 0,
            contacted: 0,
            ports: 0,
            alerts: 0,
            destinations: Vec::new(),
        })
        .collect::<Vec<_>>()
        .into();
    s.ifaces[0].totals.gso_frames = 7;
    s.ifaces[0].totals.tunnel_packets = 11;
    s.ifaces[0].totals.tunnel_bytes = 1234;
    s.udp_flows_evicted = 42;
    // The third tick closed is tick 2 (the first is 0).
    (s.tick, s.ticks_closed) = (2, 3);
    let t = render(&s);
    assert!(t.contains("\ntrafficalerted_ticks_total 3\n"), "{t}");
    assert!(
        t.contains("trafficalerted_udp_flows_evicted_total 42"),
        "{t}"
    );
    assert!(t.contains(r#"trafficalerted_interface_gso_frames_total{interface="we\"ird\\\n"} 7"#));
    assert!(
        t.contains(r#"trafficalerted_interface_tunnel_packets_total{interface="we\"ird\\\n"} 11"#)
    );
    assert!(
        t.contains(r#"trafficalerted_interface_tunnel_bytes_total{interface="we\"ird\\\n"} 1234"#)
    );
    assert!(
        t.contains(r#"trafficalerted_interface_up{interface="we\"ird\\\n"} 1"#),
        "{t}"
    );
    assert!(t.contains(r#"trafficalerted_host_sent_bytes{host="10.0.0.2"} 98"#));
    assert!(!t.contains("10.0.0.3"), "only the top 2 hosts");
    assert!(t.contains(r#"trafficalerted_alerts_opened_total{kind="port_scan"} 0"#));
    check_families(&t);
}

#[test]
fn flow_exporter_interfaces_have_series_for_the_busiest_only() {
    use crate::flowin::report::InterfaceView;
    use crate::flowin::{ExporterView, FlowReport};
    let c = Config::default();
    let mut s = Snapshot::empty(&c, RuntimeInfo::default());
    let interfaces: Vec<InterfaceView> = (1..=40u32)
        .map(|i| InterfaceView {
            if_index: i,
            in_bytes: u64::from(i) * 1000,
            out_bytes: u64::from(i),
            ..InterfaceView::default()
        })
        .collect();
    s.flow_input = Some(std::sync::Arc::new(FlowReport {
        exporters: vec![ExporterView {
            interfaces,
            ..ExporterView::new("192.0.2.1".parse().unwrap(), String::new())
        }],
        ..FlowReport::default()
    }));
    let t = render(&s);
    let series: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("trafficalerted_flow_interface_bytes_total{"))
        .collect();
    assert_eq!(series.len(), 2 * METRIC_INTERFACES, "{series:?}");
    assert!(t.contains(r#"ifindex="40",direction="in"} 40000"#), "{t}");
    assert!(t.contains(r#"ifindex="25",direction="out"} 25"#), "{t}");
    assert!(!t.contains(r#"ifindex="24""#), "the 16 busiest: 25 to 40");
    check_families(&t);
}

/// Every sample line belongs to a family declared before it.
fn check_families(t: &str) {
    let mut declared = std::collections::HashSet::new();
    for line in t.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(
                declared.insert(rest.split(' ').next().unwrap().to_string()),
                "{line}"
            );
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(declared.contains(name), "{line}");
        }
    }
}
