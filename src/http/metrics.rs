//! `/metrics` in the Prometheus text exposition format (version 0.0.4),
//! rendered once per snapshot however many scrapers ask.
//!
//! Per-host series exist only for the `[metrics] top_hosts` largest senders
//! of the window, so the number of series stays bounded whatever the
//! traffic; they are gauges over the traffic window, not counters, because
//! hosts come and go.

use std::fmt::Write;

use hyper::Response;
use hyper::StatusCode;
use hyper::body::Bytes;

use super::api::iface_rates;
use super::respond::{Body, bytes};
use crate::alert::{AlertKind, KINDS};
use crate::snapshot::Snapshot;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn response(snap: &Snapshot) -> Response<Body> {
    let text = snap.metrics_text.get_or_init(|| Bytes::from(render(snap)));
    bytes(StatusCode::OK, CONTENT_TYPE, text.clone())
}

/// The tick's metrics with the HTTP server's own counters after them
/// (those move between ticks; the rest is shared bytes).
pub fn with_server(r: Response<Body>, conns: &super::conns::Conns) -> Response<Body> {
    use std::sync::atomic::Ordering::Relaxed;
    let (parts, body) = r.into_parts();
    let text = super::cache::whole(body).unwrap_or_default();
    let st = &conns.stats;
    let mut o = Out {
        s: String::from_utf8_lossy(&text).into_owned(),
    };
    o.family(
        "trafficalerted_http_connections_total",
        "counter",
        "HTTP connections: accepted, refused (a client address at its budget, or every slot busy), or closed while idle to make room.",
    );
    for (outcome, v) in [
        ("accepted", &st.accepted),
        ("refused_per_client", &st.refused_per_client),
        ("refused_full", &st.refused_full),
        ("closed_idle", &st.closed_idle),
    ] {
        o.sample(
            "trafficalerted_http_connections_total",
            &[("outcome", outcome)],
            v.load(Relaxed),
        );
    }
    o.family(
        "trafficalerted_http_connections_open",
        "gauge",
        "HTTP connections open now.",
    );
    o.sample(
        "trafficalerted_http_connections_open",
        &[],
        conns.open() as u64,
    );
    o.family(
        "trafficalerted_http_busy_total",
        "counter",
        "Requests answered 503 because answers being sent held their memory budget.",
    );
    o.sample("trafficalerted_http_busy_total", &[], st.busy.load(Relaxed));
    let body = http_body_util::Full::new(Bytes::from(o.s));
    Response::from_parts(parts, http_body_util::Either::Left(body))
}

/// Writes families: one `# HELP`/`# TYPE` header, then its samples.
struct Out {
    s: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.s, "# HELP {name} {help}");
        let _ = writeln!(self.s, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.s.push_str(name);
        if !labels.is_empty() {
            self.s.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.s.push(',');
                }
                self.s.push_str(k);
                self.s.push_str("=\"");
                escape(&mut self.s, v);
                self.s.push('"');
            }
            self.s.push('}');
        }
        let _ = writeln!(self.s, " {value}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The whole exposition for one snapshot.
pub fn render(snap: &Snapshot) -> String {
    let mut o = Out {
        s: String::with_capacity(16 * 1024),
    };
    o.family(
        "trafficalerted_build_info",
        "gauge",
        "Version of the running daemon.",
    );
    o.sample(
        "trafficalerted_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    o.one(
        "trafficalerted_start_time_seconds",
        "gauge",
        "When the daemon started, seconds since the Unix epoch.",
        snap.runtime.started_ms as f64 / 1000.0,
    );
    o.one(
        "trafficalerted_ticks_total",
        "counter",
        "Ticks closed since start.",
        snap.ticks_closed,
    );
    o.one(
        "trafficalerted_tick_seconds",
        "gauge",
        "Length of a tick.",
        snap.tick_ms as f64 / 1000.0,
    );
    o.one(
        "trafficalerted_tick_duration_seconds",
        "gauge",
        "Time the last tick took to merge, detect and publish.",
        snap.health.merge_micros as f64 / 1e6,
    );
    o.one(
        "trafficalerted_late_shards_total",
        "counter",
        "Worker shards that missed their tick (their packets counted in a later one).",
        snap.late_shards_total,
    );
    o.one(
        "trafficalerted_udp_flows_evicted_total",
        "counter",
        "Live UDP flows pushed out of the workers' flow tables by others (their answers then count as initiations).",
        snap.udp_flows_evicted,
    );
    o.one(
        "trafficalerted_workers",
        "gauge",
        "Capture worker threads.",
        snap.runtime.workers,
    );
    o.one(
        "trafficalerted_packets_total",
        "counter",
        "IP packets counted since start.",
        snap.lifetime.packets,
    );
    o.one(
        "trafficalerted_bytes_total",
        "counter",
        "IP bytes (layer 3) counted since start.",
        snap.lifetime.bytes,
    );
    o.one(
        "trafficalerted_window_drop_ratio",
        "gauge",
        "Share of packets the kernel dropped over the traffic window.",
        snap.drop_ratio,
    );

    ifaces(&mut o, snap);
    tables(&mut o, snap);
    alerts(&mut o, snap);
    sinks(&mut o, snap);
    mitigation(&mut o, snap);
    export(&mut o, snap);
    flow_input(&mut o, snap);
    hosts(&mut o, snap);
    o.s
}

fn ifaces(o: &mut Out, snap: &Snapshot) {
    type Get = fn(&crate::counters::IfaceReport) -> u64;
    let counters: [(&str, &str, Get); 12] = [
        (
            "trafficalerted_interface_frames_total",
            "Frames read from the interface's rings.",
            |r| r.frames,
        ),
        (
            "trafficalerted_interface_wire_bytes_total",
            "Bytes of those frames as on the wire.",
            |r| r.wire_bytes,
        ),
        (
            "trafficalerted_interface_ip_packets_total",
            "IP packets counted on the interface.",
            |r| r.ip_packets,
        ),
        (
            "trafficalerted_interface_ip_bytes_total",
            "IP bytes (layer 3) counted on the interface.",
            |r| r.ip_bytes,
        ),
        (
            "trafficalerted_interface_kernel_packets_total",
            "Packets the kernel passed to the rings (PACKET_STATISTICS).",
            |r| r.kernel_packets,
        ),
        (
            "trafficalerted_interface_ring_drops_total",
            "Packets the kernel dropped because a ring was full.",
            |r| r.kernel_drops,
        ),
        (
            "trafficalerted_interface_ring_freezes_total",
            "Times a ring froze because it was full.",
            |r| r.kernel_freezes,
        ),
        (
            "trafficalerted_interface_outgoing_skipped_total",
            "Outgoing frames skipped (direction = ingress).",
            |r| r.outgoing_skipped,
        ),
        (
            "trafficalerted_interface_ring_corrupt_total",
            "Ring blocks or frames with impossible headers, skipped.",
            |r| r.ring_corrupt,
        ),
        (
            "trafficalerted_interface_tunnel_packets_total",
            "Packets of tunnels looked into (capture.decapsulate); the packets inside count as IP packets.",
            |r| r.tunnel_packets,
        ),
        (
            "trafficalerted_interface_tunnel_bytes_total",
            "Layer-3 bytes of the tunnel packets looked into.",
            |r| r.tunnel_bytes,
        ),
        (
            "trafficalerted_interface_gso_frames_total",
            "Frames GRO merged from several TCP segments (Linux 6.3+ marks them): packets and header bytes are undercounted.",
            |r| r.gso_frames,
        ),
    ];
    o.family(
        "trafficalerted_interface_up",
        "gauge",
        "1 while the interface exists and is watched.",
    );
    for v in &snap.ifaces {
        o.sample(
            "trafficalerted_interface_up",
            &[("interface", &v.name)],
            u8::from(v.present),
        );
    }
    for (name, help, get) in counters {
        o.family(name, "counter", help);
        for v in &snap.ifaces {
            o.sample(name, &[("interface", &v.name)], get(&v.totals));
        }
    }
    o.family(
        "trafficalerted_interface_bytes_per_second",
        "gauge",
        "IP bytes per second over the last tick.",
    );
    for r in iface_rates(snap) {
        o.sample(
            "trafficalerted_interface_bytes_per_second",
            &[("interface", &r.view.name)],
            r.rate.ip_bytes_per_sec,
        );
    }
    o.family(
        "trafficalerted_interface_non_ip_frames_total",
        "counter",
        "Frames that carry no IP, by what they carry.",
    );
    for v in &snap.ifaces {
        for (kind, n) in &v.totals.non_ip {
            o.sample(
                "trafficalerted_interface_non_ip_frames_total",
                &[("interface", &v.name), ("kind", kind)],
                n,
            );
        }
    }
    o.family(
        "trafficalerted_parser_errors_total",
        "counter",
        "Packets with a malformed header, by layer and problem.",
    );
    for v in &snap.ifaces {
        for (reason, n) in &v.totals.malformed {
            o.sample(
                "trafficalerted_parser_errors_total",
                &[("interface", &v.name), ("reason", reason)],
                n,
            );
        }
    }
}

fn tables(o: &mut Out, snap: &Snapshot) {
    let t = &snap.tables;
    o.family(
        "trafficalerted_table_entries",
        "gauge",
        "Entries in a bounded table.",
    );
    o.sample(
        "trafficalerted_table_entries",
        &[("table", "hosts")],
        t.hosts,
    );
    o.sample(
        "trafficalerted_table_entries",
        &[("table", "pairs")],
        t.pairs,
    );
    o.family(
        "trafficalerted_table_capacity",
        "gauge",
        "Most entries a table may hold (config).",
    );
    o.sample(
        "trafficalerted_table_capacity",
        &[("table", "hosts")],
        t.max_hosts,
    );
    o.sample(
        "trafficalerted_table_capacity",
        &[("table", "pairs")],
        t.max_pairs,
    );
    o.one(
        "trafficalerted_table_memory_bytes",
        "gauge",
        "Heap bytes held by the host and pair tables.",
        t.bytes,
    );
    let u = &snap.lifetime_untracked;
    o.family(
        "trafficalerted_untracked_bytes_total",
        "counter",
        "Bytes counted in totals but not per host or pair, because the table was full.",
    );
    for (table, n) in [
        ("sources", u.src_bytes),
        ("destinations", u.dst_bytes),
        ("pairs", u.pair_bytes),
    ] {
        o.sample(
            "trafficalerted_untracked_bytes_total",
            &[("table", table)],
            n,
        );
    }
    o.family(
        "trafficalerted_screened_packets_total",
        "counter",
        "Packets whose source the workers left to the untracked totals as they arrived: a new host the tables had no room left for.",
    );
    o.sample(
        "trafficalerted_screened_packets_total",
        &[],
        u.screened_packets,
    );
}

fn alerts(o: &mut Out, snap: &Snapshot) {
    let mut open = [0u64; KINDS];
    for a in snap.alerts.iter() {
        open[a.kind.index()] += 1;
    }
    let fams: [(&str, &str, &str, &[u64; KINDS]); 3] = [
        (
            "trafficalerted_alerts_open",
            "gauge",
            "Alerts open now.",
            &open,
        ),
        (
            "trafficalerted_alerts_opened_total",
            "counter",
            "Alerts opened since start.",
            &snap.alerts_opened,
        ),
        (
            "trafficalerted_alerts_closed_total",
            "counter",
            "Alerts closed since start.",
            &snap.alerts_closed,
        ),
    ];
    for (name, kind, help, counts) in fams {
        o.family(name, kind, help);
        for k in AlertKind::ALL {
            o.sample(name, &[("kind", k.name())], counts[k.index()]);
        }
    }
}

fn sinks(o: &mut Out, snap: &Snapshot) {
    o.family(
        "trafficalerted_sink_events_total",
        "counter",
        "Alert events per sink: queued, delivered, failed, or dropped because its queue was full.",
    );
    for s in &snap.sinks {
        for (outcome, n) in [
            ("queued", s.queued),
            ("delivered", s.delivered),
            ("failed", s.failed),
            ("dropped", s.dropped),
        ] {
            o.sample(
                "trafficalerted_sink_events_total",
                &[("sink", s.name), ("outcome", outcome)],
                n,
            );
        }
    }
    o.family(
        "trafficalerted_sink_restarts_total",
        "counter",
        "Times a sink's thread failed and was started again (each time, one event counts as failed).",
    );
    for s in &snap.sinks {
        o.sample(
            "trafficalerted_sink_restarts_total",
            &[("sink", s.name)],
            s.restarts,
        );
    }
}

fn export(o: &mut Out, snap: &Snapshot) {
    let Some(e) = &snap.export else { return };
    o.family(
        "trafficalerted_ipfix_total",
        "counter",
        "IPFIX export: records made, messages sent (per collector), ticks dropped (queue full), send errors, data messages a TCP collector did not get while its session was down.",
    );
    for (what, n) in [
        ("records", e.records),
        ("messages", e.messages),
        ("dropped_ticks", e.dropped_ticks),
        ("send_errors", e.send_errors),
        ("unsent", e.unsent),
    ] {
        o.sample("trafficalerted_ipfix_total", &[("what", what)], n);
    }
}

/// Interfaces of one exporter with series in `/metrics`, the busiest.
const METRIC_INTERFACES: usize = 16;

fn flow_input(o: &mut Out, snap: &Snapshot) {
    let Some(f) = &snap.flow_input else { return };
    let name = |e: &crate::flowin::ExporterView| e.address.to_string();
    o.family(
        "trafficalerted_flow_datagrams_total",
        "counter",
        "Flow datagrams received per exporter (sFlow, NetFlow, IPFIX), dropped ones included.",
    );
    for e in &f.exporters {
        o.sample(
            "trafficalerted_flow_datagrams_total",
            &[("exporter", &name(e))],
            e.datagrams,
        );
    }
    o.family(
        "trafficalerted_flow_records_total",
        "counter",
        "Flow records and sFlow samples counted per exporter.",
    );
    for e in &f.exporters {
        o.sample(
            "trafficalerted_flow_records_total",
            &[("exporter", &name(e))],
            e.records,
        );
    }
    o.family(
        "trafficalerted_flow_traffic_total",
        "counter",
        "Packets and bytes the exporter's records stand for, scaled by the sampling rate.",
    );
    for e in &f.exporters {
        o.sample(
            "trafficalerted_flow_traffic_total",
            &[("exporter", &name(e)), ("unit", "packets")],
            e.packets,
        );
        o.sample(
            "trafficalerted_flow_traffic_total",
            &[("exporter", &name(e)), ("unit", "bytes")],
            e.bytes,
        );
    }
    o.family(
        "trafficalerted_flow_sampling_rate",
        "gauge",
        "The 1-in-N sampling rate applied to the exporter's last record.",
    );
    for e in &f.exporters {
        o.sample(
            "trafficalerted_flow_sampling_rate",
            &[("exporter", &name(e))],
            e.sampling,
        );
    }
    o.family(
        "trafficalerted_flow_dropped_total",
        "counter",
        "Flow datagrams dropped per exporter and reason; held data sets pushed out before their template came (held_set_dropped); templates refused by a full table.",
    );
    for e in &f.exporters {
        for (reason, n) in &e.dropped {
            o.sample(
                "trafficalerted_flow_dropped_total",
                &[("exporter", &name(e)), ("reason", reason)],
                n,
            );
        }
        o.sample(
            "trafficalerted_flow_dropped_total",
            &[("exporter", &name(e)), ("reason", "held_set_dropped")],
            e.held_dropped,
        );
        o.sample(
            "trafficalerted_flow_dropped_total",
            &[("exporter", &name(e)), ("reason", "template_table_full")],
            e.templates_refused,
        );
    }
    o.family(
        "trafficalerted_flow_interface_bytes_total",
        "counter",
        "Bytes (scaled) per exporter interface, by the records' input or output interface; the 16 busiest interfaces of each exporter.",
    );
    for e in &f.exporters {
        // A bound on the series: 256 exporters of 512 interfaces would be
        // a quarter of a million. The API lists every interface kept.
        let mut busiest: Vec<_> = e.interfaces.iter().collect();
        busiest.sort_by_key(|i| std::cmp::Reverse(i.in_bytes.saturating_add(i.out_bytes)));
        busiest.truncate(METRIC_INTERFACES);
        busiest.sort_by_key(|i| i.if_index);
        for i in busiest {
            let idx = i.if_index.to_string();
            for (dir, n) in [("in", i.in_bytes), ("out", i.out_bytes)] {
                o.sample(
                    "trafficalerted_flow_interface_bytes_total",
                    &[
                        ("exporter", &name(e)),
                        ("ifindex", &idx),
                        ("direction", dir),
                    ],
                    n,
                );
            }
        }
    }
    o.one(
        "trafficalerted_flow_exporters_refused_total",
        "counter",
        "Flow datagrams from exporters beyond flow_input.max_exporters, dropped.",
        f.exporters_refused,
    );
    o.one(
        "trafficalerted_flow_receive_errors_total",
        "counter",
        "Errors reading the flow-input sockets.",
        f.receive_errors,
    );
    o.one(
        "trafficalerted_flow_socket_drops_total",
        "counter",
        "Flow datagrams the sockets dropped for want of buffer room (the kernel's count).",
        f.socket_drops,
    );
    o.one(
        "trafficalerted_flow_tcp_connections",
        "gauge",
        "IPFIX-over-TCP connections open now.",
        f.tcp_connections,
    );
    o.one(
        "trafficalerted_flow_tcp_sessions_total",
        "counter",
        "IPFIX-over-TCP connections accepted since start.",
        f.tcp_sessions,
    );
    o.one(
        "trafficalerted_flow_tcp_connections_refused_total",
        "counter",
        "IPFIX-over-TCP connections closed at once because flow_input.max_connections were open.",
        f.tcp_connections_refused,
    );
    o.one(
        "trafficalerted_flow_tcp_connections_closed_idle_total",
        "counter",
        "IPFIX-over-TCP connections that had sent no whole message for 10 s, closed to make room for a new one while flow_input.max_connections were open.",
        f.tcp_connections_closed_idle,
    );
    o.one(
        "trafficalerted_flow_templates",
        "gauge",
        "NetFlow v9 and IPFIX templates known.",
        f.templates,
    );
    o.one(
        "trafficalerted_flow_held_sets",
        "gauge",
        "Data sets waiting for their template.",
        f.held_sets_now,
    );
}

fn mitigation(o: &mut Out, snap: &Snapshot) {
    let Some(m) = &snap.mitigation else { return };
    o.one(
        "trafficalerted_mitigation_announced",
        "gauge",
        "Subjects with routes announced now.",
        m.announced.len(),
    );
    o.family(
        "trafficalerted_mitigation_actions_total",
        "counter",
        "Mitigation actions since start: announced, withdrawn, refused (protected, budget spent, no next hop), dry_run.",
    );
    for (what, n) in [
        ("announced", m.totals.announced),
        ("withdrawn", m.totals.withdrawn),
        ("refused", m.totals.refused),
        ("dry_run", m.totals.dry_run),
    ] {
        o.sample(
            "trafficalerted_mitigation_actions_total",
            &[("action", what)],
            n,
        );
    }
    o.one(
        "trafficalerted_bgp_bridge_connected",
        "gauge",
        "1 while the ExaBGP bridge is connected to the daemon.",
        u8::from(m.speaker.connected),
    );
    o.family(
        "trafficalerted_bgp_session_up",
        "gauge",
        "1 while ExaBGP's BGP session with the peer is up, as the bridge last said.",
    );
    for (peer, state) in &m.speaker.neighbors {
        o.sample(
            "trafficalerted_bgp_session_up",
            &[("peer", peer)],
            u8::from(state == "up"),
        );
    }
    o.family(
        "trafficalerted_bgp_commands_total",
        "counter",
        "Commands ExaBGP carried out (done) or refused (failed).",
    );
    o.sample(
        "trafficalerted_bgp_commands_total",
        &[("outcome", "done")],
        m.speaker.commands_done,
    );
    o.sample(
        "trafficalerted_bgp_commands_total",
        &[("outcome", "failed")],
        m.speaker.commands_failed,
    );
}

fn hosts(o: &mut Out, snap: &Snapshot) {
    let top = snap.config["metrics"]["top_hosts"].as_u64().unwrap_or(20) as usize;
    // Snapshot hosts are already ordered by bytes sent, largest first.
    let hosts = &snap.hosts[..snap.hosts.len().min(top)];
    type Get = fn(&crate::snapshot::HostView) -> u64;
    let fams: [(&str, &str, Get); 6] = [
        (
            "trafficalerted_host_sent_bytes",
            "IP bytes the host sent over the traffic window (top hosts only).",
            |h| h.sent_bytes,
        ),
        (
            "trafficalerted_host_sent_packets",
            "IP packets the host sent over the traffic window (top hosts only).",
            |h| h.sent_packets,
        ),
        (
            "trafficalerted_host_received_bytes",
            "IP bytes the host received over the traffic window (top hosts only).",
            |h| h.recv_bytes,
        ),
        (
            "trafficalerted_host_received_packets",
            "IP packets the host received over the traffic window (top hosts only).",
            |h| h.recv_packets,
        ),
        (
            "trafficalerted_host_contacted_addresses",
            "Distinct addresses the host initiated contact to in the scan window (top hosts only).",
            |h| u64::from(h.contacted),
        ),
        (
            "trafficalerted_host_contacted_ports",
            "Distinct ports the host initiated contact to in the port window (top hosts only).",
            |h| u64::from(h.ports),
        ),
    ];
    let names: Vec<String> = hosts.iter().map(|h| h.addr.to_string()).collect();
    for (name, help, get) in fams {
        o.family(name, "gauge", help);
        for (h, n) in hosts.iter().zip(&names) {
            o.sample(name, &[("host", n)], get(h));
        }
    }
}

#[cfg(test)]
mod tests;
