use super::*;

fn err(text: &str) -> String {
    Config::parse(text, "test.toml").unwrap_err().to_string()
}

#[test]
fn empty_file_is_the_defaults() {
    let c = Config::parse("", "empty").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.tick(), Duration::from_secs(1));
    assert_eq!(c.traffic.interval.0, Duration::from_secs(170));
    assert_eq!(c.interval_ticks(), 170);
    assert_eq!(c.capture.direction, CountDirection::Ingress);
    assert_eq!(c.http.listen, vec!["127.0.0.1:8698".parse().unwrap()]);
}

#[test]
fn documented_default_file_equals_built_in_defaults() {
    let c = Config::parse(DOCUMENTED_DEFAULT, "config/trafficalerted.toml").unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn documented_default_file_mentions_every_key() {
    let keys = [
        "tick",
        "interfaces",
        "exclude_interfaces",
        "workers",
        "pin_workers",
        "direction",
        "snaplen",
        "block_size",
        "block_count",
        "block_timeout",
        "fanout",
        "wait",
        "ring_memory_max",
        "skip_stacked",
        "interval",
        "byte_limit",
        "chart_min_bytes",
        "keep_destinations",
        "max_hosts",
        "max_pairs",
        "listen",
        "dry_run",
        "kinds",
        "protect",
        "max_announcements",
        "withdraw_on_shutdown",
        "socket",
        "blackhole",
        "communities",
        "next_hop",
        "next_hop_v6",
        "prefix_length_v4",
        "prefix_length_v6",
        "flowspec",
        "flowspec_action",
        "packets",
        "dir",
        "max_size",
        "resend",
        "instance",
        "ca_file",
        "collectors",
        "observation_domain",
        "template_refresh",
    ];
    for k in keys {
        let written = DOCUMENTED_DEFAULT.lines().any(|l| {
            l.trim_start()
                .trim_start_matches('#')
                .trim_start()
                .starts_with(&format!("{k} ="))
        });
        assert!(
            written,
            "config/trafficalerted.toml does not document `{k}`"
        );
    }
}

#[test]
fn alertmanager_resend_instance_and_rule_labels() {
    let c = Config::parse(
        "[alerts.webhook]\nurl = \"http://127.0.0.1:9093/api/v2/alerts\"\nformat = \"alertmanager\"\n\
         resend = \"30s\"\ninstance = \"edge-pair\"\n[[rule]]\nname = \"dc\"\nnetworks = [\"10.0.0.0/8\"]\n\
         labels = { team = \"noc\" }\n",
        "t.toml",
    )
    .unwrap();
    let w = c.alerts.webhook.unwrap();
    assert_eq!(
        (w.resend.0.as_secs(), w.instance.as_str()),
        (30, "edge-pair")
    );
    assert_eq!(w.rule_labels["dc"]["team"], "noc");
    let d = Config::parse(
        "[alerts.webhook]\nurl = \"http://127.0.0.1:9093/\"\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(d.alerts.webhook.unwrap().instance, host_name());
    for (text, key) in [
        (
            "[alerts.webhook]\nurl = \"http://x/\"\nresend = \"0s\"\n",
            "alerts.webhook.resend",
        ),
        (
            "[alerts.webhook]\nurl = \"http://x/\"\ninstance = \"\"\n",
            "alerts.webhook.instance",
        ),
        (
            "[[rule]]\nnetworks = [\"10.0.0.0/8\"]\nlabels = { instance = \"x\" }\n",
            "rule.0.labels",
        ),
        (
            "[[rule]]\nnetworks = [\"10.0.0.0/8\"]\nlabels = { \"a-b\" = \"x\" }\n",
            "rule.0.labels",
        ),
    ] {
        let e = err(text);
        assert!(e.contains(key), "{text:?}: {e}");
    }
}

#[test]
fn mitigation_keys_are_checked_with_their_line() {
    use crate::config::mitigation::{Community, FlowAction};
    let c = Config::parse(
        "[mitigation]\nenabled = true\nprotect = [\"10.0.0.0/24\"]\n[mitigation.bgp]\nnext_hop = \"10.99.0.2\"\n\
         communities = [\"65001:666\"]\nflowspec = true\nflowspec_action = \"8M\"\n\
         [[rule]]\nnetworks = [\"10.5.0.0/16\"]\nmitigate = [\"syn_in\"]\n",
        "t.toml",
    )
    .unwrap();
    let m = &c.mitigation;
    assert!(m.enabled && !m.dry_run);
    assert_eq!(m.bgp.communities, [Community(65001, 666)]);
    assert_eq!(m.bgp.flowspec_action, FlowAction::RateLimit(1_000_000));
    assert_eq!(m.kinds_of("rule 1"), crate::alert::AlertKind::SynIn.bit());
    assert_eq!(m.kinds_of("default"), m.kinds);
    for (text, key, line) in [
        (
            "[mitigation]\nenabled = true\n",
            "mitigation.bgp.next_hop",
            None,
        ),
        (
            "[mitigation]\nkinds = [\"synflood\"]\n",
            "mitigation.kinds",
            Some(2),
        ),
        (
            "[mitigation]\nprotect = [\"10.0.0.1/8\"]\n",
            "mitigation.protect",
            Some(2),
        ),
        (
            "[mitigation]\nmax_announcements = 0\n",
            "mitigation.max_announcements",
            Some(2),
        ),
        (
            "[mitigation.bgp]\nnext_hop = \"2001:db8::1\"\n",
            "mitigation.bgp.next_hop",
            Some(2),
        ),
        (
            "[mitigation.bgp]\ncommunities = [\"65536:1\"]\n",
            "mitigation.bgp.communities",
            Some(2),
        ),
        (
            "[mitigation.bgp]\nprefix_length_v4 = 16\n",
            "mitigation.bgp.prefix_length_v4",
            Some(2),
        ),
        (
            "[mitigation.bgp]\nflowspec_action = \"drop\"\n",
            "mitigation.bgp.flowspec_action",
            Some(2),
        ),
        (
            "[mitigation.bgp]\nsocket = \"rel.sock\"\n",
            "mitigation.bgp.socket",
            Some(2),
        ),
        (
            "[[rule]]\nnetworks = [\"10.0.0.0/8\"]\nmitigate = [\"x\"]\n",
            "rule.0.mitigate",
            Some(3),
        ),
    ] {
        let e = err(text);
        assert!(e.contains(key), "{text:?}: {e}");
        if let Some(l) = line {
            assert!(e.contains(&format!("line {l}")), "{text:?}: {e}");
        }
    }
}

#[test]
fn values_in_all_their_forms() {
    let c = Config::parse(
        r#"
tick = 2
[capture]
interfaces = ["eth0", "veth*"]
workers = 1
pin_workers = false
direction = "both"
snaplen = 256
block_size = "1MiB"
block_count = 8
block_timeout = "20ms"
fanout = "cpu"
wait = "poll"
ring_memory_max = "64MiB"
[traffic]
interval = "10m"
byte_limit = "2G"
chart_min_bytes = 5000
max_hosts = 100
max_pairs = 1000
[http]
listen = ["127.0.0.1:9000", "[::1]:9000"]
"#,
        "t",
    )
    .unwrap();
    assert_eq!(c.tick(), Duration::from_secs(2));
    assert_eq!(c.interval_ticks(), 300);
    assert_eq!(c.capture.workers, Some(1));
    assert!(!c.capture.pin_workers);
    assert!(Config::default().capture.pin_workers, "pinned by default");
    assert_eq!(c.capture.block_size, Some(1 << 20));
    assert_eq!(c.capture.ring_memory_max, Some(64 << 20));
    assert_eq!(c.capture.fanout, FanoutPolicy::Cpu);
    assert_eq!(c.capture.wait, WaitPolicy::Poll);
    assert_eq!(c.traffic.byte_limit, Size(2_000_000_000));
    assert_eq!(c.traffic.chart_min_bytes, Size(5000));
    assert_eq!(c.http.listen.len(), 2);
    assert!(c.capture.interfaces[1].matches("veth12"));
}

#[test]
fn unknown_key_names_key_and_line() {
    let e = err("tick = 1\n[traffic]\nbyte_limt = \"1G\"\n");
    assert!(e.contains("line 3"), "{e}");
    assert!(e.contains("byte_limt"), "{e}");
    assert!(
        e.contains("byte_limit"),
        "should list the allowed keys: {e}"
    );
}

#[test]
fn unknown_section() {
    let e = err("[trafic]\ninterval = 5\n");
    assert!(e.contains("trafic") && e.contains("line 1"), "{e}");
}

#[test]
fn bad_duration_names_key_line_and_format() {
    let e = err("[traffic]\n\ninterval = \"ten minutes\"\n");
    assert!(e.contains("traffic.interval"), "{e}");
    assert!(e.contains("line 3"), "{e}");
    assert!(e.contains("\"10m\""), "{e}");
}

#[test]
fn bad_size_names_key_and_units() {
    let e = err("[traffic]\nbyte_limit = \"1 gigabyte\"\n");
    assert!(
        e.contains("traffic.byte_limit") && e.contains("line 2"),
        "{e}"
    );
    assert!(e.contains("GiB"), "{e}");
}

#[test]
fn bad_enum_lists_choices() {
    let e = err("[capture]\ndirection = \"egress\"\n");
    assert!(e.contains("capture.direction"), "{e}");
    assert!(e.contains("ingress") && e.contains("both"), "{e}");
}

#[test]
fn wrong_type() {
    let e = err("[capture]\nsnaplen = \"big\"\n");
    assert!(e.contains("capture.snaplen") && e.contains("line 2"), "{e}");
}

#[test]
fn interval_must_be_whole_ticks() {
    let e = err("tick = \"2s\"\n[traffic]\ninterval = \"5s\"\n");
    assert!(
        e.contains("traffic.interval") && e.contains("line 3"),
        "{e}"
    );
    assert!(e.contains("whole number of ticks"), "{e}");
}

#[test]
fn range_checks() {
    assert!(err("tick = \"10ms\"").contains("`tick`"));
    assert!(err("[capture]\nsnaplen = 10").contains("between 64"));
    assert!(err("[capture]\nworkers = 0").contains("at least 1"));
    assert!(err("[capture]\nblock_size = 5000").contains("power of two"));
    assert!(err("[capture]\nblock_count = 0").contains("at least 1"));
    assert!(err("[capture]\nblock_timeout = \"2s\"").contains("shorter than the tick"));
    assert!(err("[traffic]\nmax_hosts = 0").contains("between 1"));
    assert!(err("[http]\nlisten = []").contains("at least one"));
    assert!(err("[http]\nlisten = \"localhost\"").contains("http.listen"));
    assert!(err("[capture]\ninterfaces = [\"\"]").contains("empty"));
}

#[test]
fn auto_values() {
    let c = Config::parse(
        "[capture]\nworkers = \"auto\"\nblock_size = \"auto\"\nblock_count = \"auto\"\nring_memory_max = \"auto\"\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.capture.workers, None);
    assert_eq!(c.capture.block_size, None);
    let e = err("[capture]\nworkers = \"many\"\n");
    assert!(e.contains("capture.workers") && e.contains("auto"), "{e}");
}

#[test]
fn syntax_error_has_a_line() {
    let e = err("tick = 1\n[capture\n");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn missing_file_names_path() {
    let e = Config::load(Path::new("/nonexistent/ta.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/ta.toml"), "{e}");
}

#[test]
fn rules_are_checked_with_their_position() {
    let e = err(
        "[[rule]]\nnetworks = [\"10.0.0.0/8\"]\nignore = true\n\n[[rule]]\nnetworks = [\"10.1.0.1/16\"]\nbyte_limit = 5\n",
    );
    assert!(e.contains("rule.1.networks") && e.contains("line 6"), "{e}");
    assert!(e.contains("10.1.0.0/16"), "suggests the network: {e}");
    let e = err("[[rule]]\nnetworks = [\"10.0.0.0/8\"]\nignore = true\nbyte_limit = 5\n");
    assert!(e.contains("rule.0.ignore") && e.contains("not both"), "{e}");
    let e = err("[[rule]]\nnetworks = [\"10.0.0.0/8\"]\n");
    assert!(e.contains("neither"), "{e}");
    let e = err("[[rule]]\nbyte_limit = 5\n");
    assert!(e.contains("at least one network"), "{e}");
    let c = Config::parse(
        "[[rule]]\nname = \"backup\"\nnetworks = [\"10.0.0.5\", \"2001:db8::/32\"]\nbyte_limit = \"1T\"\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.rules[0].name, "backup");
    let rs = c.rule_set();
    let id = rs.lookup(crate::wire::Addr::from_v4([10, 0, 0, 5]));
    assert_eq!(rs.limits(id).unwrap().byte_limit, Some(1_000_000_000_000));
}

#[test]
fn rate_limits_are_read_and_checked_with_their_key_and_line() {
    use crate::rates::{Class, Dir};
    let c = Config::parse(
        "tick = \"2s\"\n[rates.in]\nsyn_packets = \"10K\"\nbits = \"1G\"\n[rates.out]\nnew_flows = 500\n\
         [[rule]]\nnetworks = [\"2001:db8::/32\"]\nrates_in = { syn_packets = 5 }\n",
        "t",
    )
    .unwrap();
    // 5 s rounded up to whole 2 s ticks.
    assert_eq!(c.rates.window.0.as_secs(), 6);
    assert_eq!(c.rates.limits.get(Dir::In, Class::Syn, false), Some(10_000));
    assert_eq!(
        c.rates.limits.get(Dir::In, Class::All, true),
        Some(1_000_000_000)
    );
    assert_eq!(c.rates.limits.get(Dir::Out, Class::Flows, false), Some(500));
    assert!(c.rates.any(&c.rules));
    let rs = c.rule_set();
    let v6 = rs.lookup(crate::wire::Addr::from(
        "2001:db8::1".parse::<std::net::IpAddr>().unwrap(),
    ));
    let l = rs.limits(v6).unwrap();
    assert_eq!(l.rates.get(Dir::In, Class::Syn, false), Some(5));
    assert_eq!(
        l.rates.get(Dir::In, Class::All, true),
        Some(1_000_000_000),
        "default kept"
    );
    assert!(!Config::default().rates.any(&[]), "off by default");

    let e = err("[rates.in]\nudp_packets = 0\n");
    assert!(
        e.contains("rates.in.udp_packets") && e.contains("line 2"),
        "{e}"
    );
    let e = err("[rates]\nwindow = \"61s\"\n");
    assert!(e.contains("rates.window") && e.contains("60"), "{e}");
    let e = err("[rates]\nwindow = \"1500ms\"\n");
    assert!(e.contains("rates.window"), "{e}");
    let e = err("[rates.in]\nsyn_packet = 5\n");
    assert!(e.contains("syn_packet"), "{e}");
    let e = err("[[rule]]\nnetworks = [\"10.0.0.0/8\"]\nrates_out = { new_flows = 0 }\n");
    assert!(e.contains("rule.0.rates_out.new_flows"), "{e}");
}

#[test]
fn alert_sections_are_checked() {
    let e = err("[alerts.webhook]\nurl = \"ftp://alerts.example/hook\"\n");
    assert!(e.contains("alerts.webhook.url"), "{e}");
    let e = err(
        "[alerts.webhook]\nurl = \"https://alerts.example/hook\"\nca_file = \"/nonexistent/ca.pem\"\n",
    );
    assert!(
        e.contains("alerts.webhook.ca_file") && e.contains("/nonexistent/ca.pem"),
        "{e}"
    );
    let e = err("[alerts]\ndegraded_drop_ratio = 2.0\n");
    assert!(e.contains("degraded_drop_ratio"), "{e}");
    let e = err("[alerts.exec]\ncommand = []\n");
    assert!(e.contains("alerts.exec.command"), "{e}");
    let e = err("[scan]\nmax_contacted_ips = 0\n");
    assert!(e.contains("scan.max_contacted_ips"), "{e}");
    let e = err("[scan]\ncount = \"some\"\n");
    assert!(e.contains("\"initiations\", \"failed\""), "{e}");
    let c = Config::parse(
        "[alerts.webhook]\nurl = \"http://127.0.0.1:9/h\"\nformat = \"alertmanager\"\n",
        "t",
    )
    .unwrap();
    assert_eq!(
        c.alerts.webhook.unwrap().format,
        WebhookFormat::Alertmanager
    );
}

#[test]
fn auth_forms() {
    let c = Config::parse("[http.auth]\nbearer_token = \"s3cret\"\n", "t").unwrap();
    assert_eq!(c.http.auth, Some(Auth::Bearer("s3cret".into())));
    let v = serde_json::to_string(&c).unwrap();
    assert!(!v.contains("s3cret"), "the secret never shows: {v}");
    let c = Config::parse("[http.auth]\nuser = \"ops\"\npassword = \"pw\"\n", "t").unwrap();
    assert_eq!(
        c.http.auth,
        Some(Auth::Basic {
            user: "ops".into(),
            password: "pw".into()
        })
    );
    let dir = std::env::temp_dir().join(format!("ta-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("token");
    std::fs::write(&f, "from-file\n").unwrap();
    let c = Config::parse(
        &format!(
            "[http.auth]\nbearer_token_file = {:?}\n",
            f.to_string_lossy()
        ),
        "t",
    )
    .unwrap();
    assert_eq!(c.http.auth, Some(Auth::Bearer("from-file".into())));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err("[http.auth]\nuser = \"ops\"\n").contains("either bearer_token"));
    assert!(
        err("[http.auth]\nbearer_token = \"x\"\nbearer_token_file = \"/y\"\n").contains("not both")
    );
    assert!(
        err("[http.auth]\nbearer_token_file = \"/nonexistent/t\"\n")
            .contains("cannot read /nonexistent/t")
    );
    assert!(err("[metrics]\ntop_hosts = 100000\n").contains("metrics.top_hosts"));
}

#[test]
fn scan_interval_defaults_to_the_traffic_interval() {
    let c = Config::parse("[traffic]\ninterval = \"5m\"\n", "t").unwrap();
    assert_eq!(c.scan.interval.0.as_secs(), 300);
    assert_eq!(c.ticks(c.scan.port_interval), 600);
}

#[test]
fn capabilities_json_carries_human_units() {
    let v = serde_json::to_value(Config::default()).unwrap();
    assert_eq!(v["traffic"]["interval"], "170s");
    assert_eq!(v["capture"]["direction"], "ingress");
}

#[test]
fn attack_pcap_and_ipfix_keys_are_checked_with_their_line() {
    let c = Config::parse(
        "[attack_pcap]\npackets = 500\ndir = \"/tmp/a\"\nmax_size = \"10M\"\n\
         [export.ipfix]\ncollectors = [\"127.0.0.1:4739\", \"udp://[::1]:2055\", \"tcp://10.0.0.9:4739\"]\nobservation_domain = 7\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(
        (c.attack_pcap.packets, c.attack_pcap.max_size.0),
        (500, 10_000_000)
    );
    let shown: Vec<String> = c.ipfix.collectors.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        shown,
        [
            "udp://127.0.0.1:4739",
            "udp://[::1]:2055",
            "tcp://10.0.0.9:4739"
        ]
    );
    assert_eq!(c.ipfix.observation_domain, 7);
    for (text, key) in [
        ("[attack_pcap]\npackets = 100001\n", "attack_pcap.packets"),
        ("[attack_pcap]\ndir = \"rel/dir\"\n", "attack_pcap.dir"),
        ("[attack_pcap]\nmax_size = \"1K\"\n", "attack_pcap.max_size"),
        (
            "[export.ipfix]\ncollectors = [\"127.0.0.1\"]\n",
            "export.ipfix.collectors",
        ),
        (
            "[export.ipfix]\ncollectors = [\"sctp://127.0.0.1:4739\"]\n",
            "export.ipfix.collectors",
        ),
        (
            "[export.ipfix]\ntemplate_refresh = \"0s\"\n",
            "export.ipfix.template_refresh",
        ),
        ("[export.ipfix]\nqueue = 0\n", "export.ipfix.queue"),
    ] {
        let e = err(text);
        assert!(e.contains(key) && e.contains("line 2"), "{text:?}: {e}");
    }
}

#[test]
fn flow_input_keys_are_checked_with_their_line() {
    let c = Config::parse(
        "[flow_input]\nlisten = [\"0.0.0.0:2055\", \"[::]:6343\"]\n\
         [[flow_input.exporter]]\naddress = \"192.0.2.1\"\nsampling = 1000\nname = \"edge-1\"\n",
        "t.toml",
    )
    .unwrap();
    assert!(c.flow_input.is_on());
    let e = c.flow_input.exporter("192.0.2.1".parse().unwrap()).unwrap();
    assert_eq!((e.sampling, e.name.as_str()), (1000, "edge-1"));
    for (text, key) in [
        ("[flow_input]\nlisten = [\"2055\"]\n", "flow_input.listen"),
        (
            "[flow_input]\nlisten = [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n",
            "flow_input.listen",
        ),
        (
            "[flow_input]\nmax_exporters = 0\n",
            "flow_input.max_exporters",
        ),
        (
            "[flow_input]\nmax_templates = 70000\n",
            "flow_input.max_templates",
        ),
        (
            "[flow_input]\nheld_bytes = \"1K\"\n",
            "flow_input.held_bytes",
        ),
        (
            "[flow_input]\nreceive_buffer = \"2G\"\n",
            "flow_input.receive_buffer",
        ),
    ] {
        let e = err(text);
        assert!(e.contains(key) && e.contains("line 2"), "{text:?}: {e}");
    }
    for (text, key) in [
        (
            "[[flow_input.exporter]]\naddress = \"edge-1\"\n",
            "flow_input.exporter.address",
        ),
        (
            "[[flow_input.exporter]]\naddress = \"192.0.2.1\"\nsampling = 99999999\n",
            "flow_input.exporter.sampling",
        ),
    ] {
        let e = err(text);
        assert!(e.contains(key), "{text:?}: {e}");
    }
}
