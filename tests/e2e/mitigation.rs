//! Mitigation through a real BGP speaker to a real router: the daemon in
//! the router namespace hands routes to ExaBGP (through
//! `trafficalerted exabgp-bridge`, which ExaBGP runs), ExaBGP announces
//! them over eBGP to BIRD 2 in a namespace of its own, and BIRD's own
//! tables (`birdc show route …`) are what the tests check.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::alerts::{now_ms, wait_open};
use crate::daemon::Daemon;

const BRIDGE: &str = env!("CARGO_BIN_EXE_trafficalerted-exabgp-bridge");
use crate::netns::{Netns, Proc, Topology, require, sh, unique, wait_until};

/// BIRD as the upstream router, ExaBGP as the daemon's speaker, on a veth
/// between the router namespace (10.99.0.2, AS 65002) and BIRD's
/// (10.99.0.1, AS 65001).
struct Upstream {
    ns: Netns,
    dir: PathBuf,
    router: Router,
    bird: Option<Proc>,
    _exabgp: Proc,
}

/// The upstream router.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Router {
    Bird,
    /// FRR's bgpd alone (no zebra), with README.md's configuration.
    Frr,
}

/// README.md's FRR configuration, the static discard route left out.
const FRR_CONF: &str = "hostname upstream
bgp community-list standard BLACKHOLE permit 65535:666
route-map RTBH-IN permit 10
 match community BLACKHOLE
 set ip next-hop 192.0.2.1
route-map RTBH-IN deny 20
route-map FLOWSPEC-IN permit 10
!
router bgp 65001
 bgp router-id 10.99.0.1
 neighbor 10.99.0.2 remote-as 65002
 neighbor 10.99.0.2 timers connect 1
 address-family ipv4 unicast
  neighbor 10.99.0.2 route-map RTBH-IN in
 exit-address-family
 address-family ipv4 flowspec
  neighbor 10.99.0.2 activate
  neighbor 10.99.0.2 route-map FLOWSPEC-IN in
 exit-address-family
";

impl Upstream {
    fn start(rtr: &Netns) -> Upstream {
        Self::start_with(rtr, Router::Bird)
    }

    fn start_with(rtr: &Netns, router: Router) -> Upstream {
        let ns = Netns::new("b");
        let id = unique("");
        let (b0, b1) = (format!("{id}b0"), format!("{id}b1"));
        sh(&[
            "ip", "link", "add", &b0, "netns", &ns.name, "type", "veth", "peer", "name", &b1,
            "netns", &rtr.name,
        ]);
        ns.ip(&["addr", "add", "10.99.0.1/24", "dev", &b0]);
        ns.ip(&["link", "set", &b0, "up"]);
        rtr.ip(&["addr", "add", "10.99.0.2/24", "dev", &b1]);
        rtr.ip(&["link", "set", &b1, "up"]);
        let dir = std::env::temp_dir().join(unique("bgp"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("bird.conf"),
            format!(
                r#"log "{log}" all;
router id 10.99.0.1;
protocol device {{}}
flow4 table flowtab4;
flow6 table flowtab6;
# As README.md's "Mitigation" has it: BLACKHOLE host routes drop traffic.
filter rtbh_in {{
  if (65535, 666) ~ bgp_community && net.len = 32 then {{
    dest = RTD_BLACKHOLE;
    accept;
  }}
  reject;
}}
protocol bgp speaker {{
  local 10.99.0.1 as 65001;
  neighbor 10.99.0.2 as 65002;
  hold time 9;
  connect retry time 1;
  ipv4 {{ import filter rtbh_in; export none; }};
  flow4 {{ table flowtab4; import all; export none; }};
  flow6 {{ table flowtab6; import all; export none; }};
}}
"#,
                log = dir.join("bird.log").display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("exabgp.conf"),
            format!(
                r#"process trafficalerted {{
  run {BRIDGE} --socket {sock};
  encoder json;
}}
neighbor 10.99.0.1 {{
  router-id 10.99.0.2;
  local-address 10.99.0.2;
  local-as 65002;
  peer-as 65001;
  hold-time 9;
  family {{ ipv4 unicast; ipv4 flow; ipv6 flow; }}
  api {{ processes [ trafficalerted ]; neighbor-changes; }}
}}
"#,
                sock = dir.join("exabgp.sock").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("exabgp.log")).unwrap();
        let conf = dir.join("exabgp.conf").to_string_lossy().into_owned();
        let exabgp = rtr.spawn(
            &[
                "env",
                "exabgp_daemon_user=root",
                "exabgp_daemon_daemonize=false",
                "exabgp_api_ack=true",
                "exabgp_api_cli=false",
                "exabgp_log_destination=stdout",
                "exabgp",
                &conf,
            ],
            Stdio::from(log.try_clone().unwrap()),
            Stdio::from(log),
        );
        std::fs::write(dir.join("bgpd.conf"), FRR_CONF).unwrap();
        std::fs::create_dir_all(dir.join("frr")).unwrap();
        let mut u = Upstream {
            ns,
            dir,
            router,
            bird: None,
            _exabgp: exabgp,
        };
        u.start_bird();
        u
    }

    fn start_bird(&mut self) {
        if self.router == Router::Frr {
            let d = self.dir.to_string_lossy().into_owned();
            self.bird = Some(self.ns.spawn(
                &[
                    "/usr/lib/frr/bgpd",
                    "-f",
                    &format!("{d}/bgpd.conf"),
                    "-Z",
                    "-S",
                    "-n",
                    "--vty_socket",
                    &format!("{d}/frr"),
                    "-i",
                    &format!("{d}/frr/bgpd.pid"),
                    "--log",
                    &format!("file:{d}/bird.log"),
                ],
                Stdio::null(),
                Stdio::null(),
            ));
            return;
        }
        let conf = self.dir.join("bird.conf").to_string_lossy().into_owned();
        let ctl = self.ctl();
        self.bird = Some(self.ns.spawn(
            &["bird", "-f", "-c", &conf, "-s", &ctl],
            Stdio::null(),
            Stdio::null(),
        ));
    }

    fn kill_bird(&mut self) {
        self.bird = None;
    }

    fn ctl(&self) -> String {
        self.dir.join("bird.ctl").to_string_lossy().into_owned()
    }

    fn socket(&self) -> String {
        self.dir.join("exabgp.sock").to_string_lossy().into_owned()
    }

    /// `birdc show route …` as BIRD answers it.
    fn show(&self, args: &[&str]) -> String {
        let ctl = self.ctl();
        let mut v = vec!["birdc", "-s", &ctl, "show", "route"];
        v.extend_from_slice(args);
        let out = std::process::Command::new(v[0])
            .args(&v[1..])
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The victim's blackhole route in BIRD, with its attributes.
    fn blackhole(&self, prefix: &str) -> Option<String> {
        let t = self.show(&["for", prefix, "all"]);
        t.contains(&format!("{prefix} ")).then_some(t)
    }

    fn flows(&self) -> String {
        self.show(&["table", "flowtab4", "all"])
    }

    /// `vtysh -c …` as FRR answers it.
    fn vtysh(&self, cmd: &str) -> String {
        let sock = self.dir.join("frr").to_string_lossy().into_owned();
        let out = std::process::Command::new("vtysh")
            .args(["--vty_socket", &sock, "-c", cmd])
            .output()
            .expect("vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn session_up(&self) -> bool {
        if self.router == Router::Frr {
            return self
                .vtysh("show bgp neighbors 10.99.0.2")
                .contains("BGP state = Established");
        }
        let ctl = self.ctl();
        let out = std::process::Command::new("birdc")
            .args(["-s", &ctl, "show", "protocols", "speaker"])
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).contains("Established")
    }

    fn logs(&self) -> String {
        let r = |n: &str| std::fs::read_to_string(self.dir.join(n)).unwrap_or_default();
        let tail = |s: String| {
            let v: Vec<&str> = s.lines().collect();
            v[v.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "--- exabgp:\n{}\n--- bird:\n{}",
            tail(r("exabgp.log")),
            tail(r("bird.log"))
        )
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.bird = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(socket: &str, mitigation: &str) -> String {
    format!(
        r#"
[traffic]
byte_limit = "1T"
[inbound]
enabled = false
[rates]
window = "1s"
[rates.in]
udp_packets = "2K"
[alerts]
hold_down = "2s"
[mitigation]
enabled = true
{mitigation}
[mitigation.bgp]
socket = "{socket}"
next_hop = "10.99.0.2"
communities = ["65001:666"]
flowspec = true
"#
    )
}

/// Waits until the bridge is connected and ExaBGP's session with BIRD is
/// up, as the daemon's API says.
fn speaker_ready(d: &Daemon<'_>, u: &Upstream) {
    let ok = wait_until(Duration::from_secs(40), || {
        let m = d.json("/api/v1/mitigation");
        (m["speaker"]["connected"] == true
            && m["speaker"]["neighbors"]["10.99.0.1"] == "up"
            && u.session_up())
        .then_some(())
    });
    assert!(
        ok.is_some(),
        "speaker not ready: {}\n{}\n--- daemon:\n{}",
        d.json("/api/v1/mitigation"),
        u.logs(),
        d.log()
    );
}

/// UDP to port 53 of 10.2.0.2 from random sources, `count` packets one
/// every 200 µs, in the background.
fn flood(t: &Topology, count: u64) -> Proc {
    let mac = t.rtr.mac(&t.r0);
    let packet = crate::traffic::spoofed_udp4(&mac, "10.2.0.2", 53, 68);
    let n = count.to_string();
    t.gen_ns.spawn(
        &[
            "trafgen",
            "-o",
            &t.g0,
            "-P",
            "1",
            "--no-sock-mem",
            "--notouch-irq",
            "-n",
            &n,
            "-t",
            "200us",
            &packet,
        ],
        Stdio::null(),
        Stdio::null(),
    )
}

fn mitigation_events(d: &Daemon<'_>) -> Vec<serde_json::Value> {
    d.history()
        .into_iter()
        .filter(|e| e["event"] == "mitigation")
        .collect()
}

#[test]
fn a_flood_is_blackholed_and_flowspec_filtered_in_bird_and_withdrawn_after_it() {
    require(&["bird", "birdc", "exabgp", "trafgen", "ethtool"]);
    let t = Topology::new();
    let mut u = Upstream::start(&t.rtr);
    let d = Daemon::start(&t.rtr, &config(&u.socket(), ""));
    speaker_ready(&d, &u);

    // ~5 000 packets per second for ~20 s (longer under load).
    let started = now_ms();
    let t0 = Instant::now();
    let mut sender = flood(&t, 100_000);
    let route = wait_until(Duration::from_secs(10), || u.blackhole("10.2.0.2/32"));
    let took = t0.elapsed();
    let Some(route) = route else {
        panic!(
            "no route in BIRD; mitigation: {}\n{}\n--- daemon:\n{}",
            d.json("/api/v1/mitigation"),
            u.logs(),
            d.log()
        );
    };
    eprintln!("route in BIRD {took:?} after the flood started:\n{route}");
    assert!(
        route.contains("(65535,666)") && route.contains("(65001,666)"),
        "BLACKHOLE and the configured community: {route}"
    );
    assert!(route.contains("BGP.next_hop: 10.99.0.2"), "{route}");
    assert!(route.contains("blackhole"), "BIRD drops it: {route}");
    assert!(took <= Duration::from_secs(3), "route after {took:?}");
    let a = wait_open(&d, "udp_in", "10.2.0.2");
    assert!(a["start_ms"].as_u64().unwrap() >= started);

    // The FlowSpec rule: the flood's protocol and port toward the victim.
    let flows = wait_until(Duration::from_secs(5), || {
        let f = u.flows();
        f.contains("dst 10.2.0.2/32; proto 17; dport 53;")
            .then_some(f)
    });
    assert!(flows.is_some(), "no FlowSpec rule in BIRD: {}", u.flows());
    assert!(
        flows.unwrap().contains("(generic, 0x80060000, 0x0)"),
        "traffic-rate 0: discard"
    );

    // The API and the history say what was announced.
    let m = d.json("/api/v1/mitigation");
    assert_eq!(m["announced"][0]["prefix"], "10.2.0.2/32", "{m}");
    assert_eq!(
        m["announced"][0]["flowspec"], "udp to 10.2.0.2/32 port 53: discard",
        "{m}"
    );
    let acts = mitigation_events(&d);
    assert_eq!(acts[0]["mitigation"]["what"], "announce", "{acts:?}");
    assert!(
        d.get("/metrics")
            .1
            .contains("trafficalerted_mitigation_announced 1"),
        "metrics"
    );
    assert!(
        d.out()
            .contains("MITIGATION=ANNOUNCE DST=10.2.0.2 PREFIX=10.2.0.2/32")
    );

    // BIRD restarted mid-attack: the route is back once the session is.
    u.kill_bird();
    std::thread::sleep(Duration::from_millis(500));
    u.start_bird();
    let t1 = Instant::now();
    let back = wait_until(Duration::from_secs(30), || u.blackhole("10.2.0.2/32"));
    assert!(
        back.is_some(),
        "route not announced again after BIRD's restart\n{}",
        u.logs()
    );
    eprintln!("route back {:?} after BIRD restarted", t1.elapsed());
    assert!(
        u.flows().contains("dst 10.2.0.2/32; proto 17; dport 53;"),
        "FlowSpec rule back too"
    );
    assert!(
        sender.wait_for(Duration::from_millis(10)).is_none(),
        "the flood must still run after BIRD came back (make it longer)"
    );

    // The flood ends: withdrawn within hold-down (2 s) + 2 ticks.
    assert!(
        sender.wait_for(Duration::from_secs(120)).is_some(),
        "trafgen"
    );
    let ended = Instant::now();
    let gone = wait_until(Duration::from_secs(20), || {
        u.blackhole("10.2.0.2/32")
            .is_none()
            .then(|| ended.elapsed())
    });
    let Some(gone) = gone else {
        panic!("route still in BIRD: {:?}", u.blackhole("10.2.0.2/32"));
    };
    eprintln!("route gone {gone:?} after the flood ended");
    assert!(gone <= Duration::from_secs(4), "withdrawn after {gone:?}");
    assert!(
        !u.flows().contains("10.2.0.2/32"),
        "FlowSpec withdrawn too: {}",
        u.flows()
    );
    let acts = mitigation_events(&d);
    assert_eq!(
        acts.last().unwrap()["mitigation"]["what"],
        "withdraw",
        "{acts:?}"
    );
    d.stop();
}

#[test]
fn a_protected_victim_and_a_dry_run_announce_nothing_and_say_why() {
    require(&["bird", "birdc", "exabgp", "trafgen", "ethtool"]);
    let t = Topology::new();
    let u = Upstream::start(&t.rtr);
    for (extra, what, reason) in [
        (
            "protect = [\"10.2.0.0/24\"]",
            "refuse",
            "protected (mitigation.protect 10.2.0.0/24)",
        ),
        ("dry_run = true", "dry_run", "mitigation.dry_run"),
    ] {
        let d = Daemon::start(&t.rtr, &config(&u.socket(), extra));
        if what == "refuse" {
            speaker_ready(&d, &u);
        }
        let mut sender = flood(&t, 10_000);
        wait_open(&d, "udp_in", "10.2.0.2");
        let act = wait_until(Duration::from_secs(5), || {
            mitigation_events(&d).into_iter().next()
        })
        .unwrap_or_else(|| panic!("no mitigation event ({extra}); log:\n{}", d.log()));
        assert_eq!(act["mitigation"]["what"], what, "{act}");
        assert_eq!(act["mitigation"]["reason"], reason, "{act}");
        assert!(
            sender.wait_for(Duration::from_secs(60)).is_some(),
            "trafgen"
        );
        std::thread::sleep(Duration::from_secs(1));
        let all = u.show(&["count"]);
        assert!(
            all.contains("Total: 0 of 0 routes"),
            "BIRD got a route ({extra}): {all}"
        );
        if what == "dry_run" {
            assert!(
                d.log().contains("would send: announce route 10.2.0.2/32"),
                "{}",
                d.log()
            );
        }
        d.stop();
    }
}

#[test]
fn frr_takes_the_blackhole_route_and_flowspec_rule_as_the_readme_configures_it() {
    require(&["vtysh", "exabgp", "trafgen", "ethtool"]);
    assert!(
        std::path::Path::new("/usr/lib/frr/bgpd").exists(),
        "FRR's bgpd is missing: apt-get install frr"
    );
    let t = Topology::new();
    let u = Upstream::start_with(&t.rtr, Router::Frr);
    let d = Daemon::start(&t.rtr, &config(&u.socket(), ""));
    speaker_ready(&d, &u);
    let mut sender = flood(&t, 30_000);
    let route = wait_until(Duration::from_secs(10), || {
        let r = u.vtysh("show ip bgp community 65535:666");
        r.contains("10.2.0.2/32").then_some(r)
    })
    .unwrap_or_else(|| panic!("no blackhole route in FRR\n{}\n{}", u.logs(), d.log()));
    assert!(
        route.contains("192.0.2.1"),
        "RTBH-IN set the discard next hop: {route}"
    );
    let fs = wait_until(Duration::from_secs(5), || {
        let f = u.vtysh("show bgp ipv4 flowspec detail");
        f.contains("Destination Address 10.2.0.2/32").then_some(f)
    })
    .unwrap_or_else(|| panic!("no FlowSpec rule in FRR\n{}", u.logs()));
    assert!(
        fs.contains("IP Protocol = 17") && fs.contains("Destination Port = 53"),
        "{fs}"
    );
    assert!(
        sender.wait_for(Duration::from_secs(60)).is_some(),
        "trafgen"
    );
    let gone = wait_until(Duration::from_secs(10), || {
        let r = u.vtysh("show ip bgp community 65535:666");
        let f = u.vtysh("show bgp ipv4 flowspec detail");
        (!r.contains("10.2.0.2/32") && !f.contains("10.2.0.2/32")).then_some(())
    });
    assert!(gone.is_some(), "still in FRR after the flood ended");
    d.stop();
}
